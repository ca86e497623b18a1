//! OpenID Connect Discovery 1.0 §3 metadata and the JWK Set. The metadata lists exactly what
//! latchkey implements, nothing more.

use crate::AppState;
use crate::auth::flow::{ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

pub const SCOPES: &[&str] = &["openid", "profile", "email", "groups", "offline_access"];

pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let iss = state.config.issuer();
    let url = |path: &str| format!("{iss}{path}");
    let body = json!({
        "issuer": iss,
        "authorization_endpoint": url(super::AUTHORIZE_PATH),
        "token_endpoint": url(super::TOKEN_PATH),
        "userinfo_endpoint": url(super::USERINFO_PATH),
        "jwks_uri": url(super::JWKS_PATH),
        "revocation_endpoint": url(super::REVOKE_PATH),
        "introspection_endpoint": url(super::INTROSPECT_PATH),
        "end_session_endpoint": url(super::LOGOUT_PATH),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": crate::oidc::keys::ALGORITHMS,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA, ACR_PHISHING_RESISTANT],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": crate::i18n::SUPPORTED,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "acr",
            "name", "preferred_username", "updated_at", "email", "email_verified", "groups"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
    });
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=300")).json(body)
}

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let body = state.keys.jwks(state.clock.now());
    // Short cache: relying parties must see a rotated key soon after it starts signing.
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .insert_header((header::CONTENT_TYPE, "application/jwk-set+json"))
        .body(body.to_string())
}
