//! The token endpoint (RFC 6749 §3.2): client authentication, then one module per grant.

mod authorization_code;
mod client_credentials;
mod password;
mod refresh;

use super::client_auth;
use super::error::{ErrorCode, OAuthError};
use super::tokens::{AccessClaims, TokenResponse};
use crate::AppState;
use crate::store::clients::Client;
use crate::store::db::Connection;
use crate::web::params::Params;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};

/// Rejects bodies that are not form-encoded (RFC 6749 §3.2 requires that media type).
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))
}

pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let params = form_params(&req, &body)?;
    let (headers, request) = (req.headers().clone(), crate::policy::Request::of(&req));
    // A client-credentials grant needs the app, the policies and a signature: from the
    // in-memory copies, on this thread, when they are current (nothing is written unless the
    // gate refuses); anything more, and it is done again on a real connection like any grant.
    let from_memory = match (&state.memory, params.get("grant_type")) {
        (Some(memory), Some("client_credentials")) => {
            let conn = Connection::memory(memory);
            let now = state.clock.now();
            let out = client_for(&headers, &params, &conn, now).and_then(|(client, _)| {
                let response = client_credentials::exchange(&state, &conn, &client, &params, &request, now)?;
                Ok((response, "client_credentials".to_string(), client.id))
            });
            let answered = !conn.needed_database();
            if answered
                && let Ok((_, _, app)) = &out
                && crate::telemetry::metrics_on()
            {
                metrics::counter!("latchkey_token_grants_from_memory_total", "app" => app.clone()).increment(1);
            }
            answered.then_some(out)
        }
        _ => None,
    };
    let (response, grant_type, client_id) = match from_memory {
        Some(out) => out?,
        // A lease: the password grant hands its connection back while the hash waits its turn.
        None => {
            crate::web::db_lease(&state, move |state, conn| {
                let now = state.clock.now();
                let (client, grant_type) = client_for(&headers, &params, conn, now)?;
                let response = match grant_type {
                    "authorization_code" => authorization_code::exchange(state, conn, &client, &params, now)?,
                    "refresh_token" => refresh::exchange(state, conn, &client, &params, &request, now)?,
                    "password" => password::exchange(state, conn, &client, &params, &request, now)?,
                    _ => client_credentials::exchange(state, conn, &client, &params, &request, now)?,
                };
                Ok::<_, OAuthError>((response, grant_type.to_string(), client.id))
            })
            .await?
        }
    };
    if crate::telemetry::metrics_on() {
        metrics::counter!("latchkey_token_grants_total", "grant_type" => grant_type, "app" => client_id).increment(1);
    }
    Ok(crate::web::no_store(&mut HttpResponse::Ok()).json(response))
}

/// The authenticated client and the grant type it asked for, one latchkey supports and the
/// client is allowed.
fn client_for<'p>(headers: &HeaderMap, params: &'p Params, conn: &Connection, now: i64) -> Result<(Client, &'p str), OAuthError> {
    let client = client_auth::authenticate(headers, params, conn, now)?.client;
    let grant_type = params.get("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type is missing"))?;
    if !matches!(grant_type, "authorization_code" | "refresh_token" | "client_credentials" | "password") {
        return Err(OAuthError::new(ErrorCode::UnsupportedGrantType, format!("grant_type {grant_type:?} is not supported")));
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, format!("this client is not allowed the {grant_type} grant")));
    }
    Ok((client, grant_type))
}

/// Signs an access token for a user grant; shared by the code and refresh grants.
pub(crate) fn user_access_token(state: &AppState, grant: &crate::store::tokens::Grant, user_id: &str, scope: &str, now: i64) -> (String, i64) {
    let ttl = state.config.tokens.access_token_ttl_secs;
    let claims = AccessClaims {
        iss: state.config.issuer().to_string(),
        sub: user_id.to_string(),
        aud: grant.client_id.clone(),
        client_id: grant.client_id.clone(),
        exp: now + ttl,
        iat: now,
        jti: crate::crypto::random_token(),
        scope: scope.to_string(),
        auth_time: grant.auth_time,
        sid: grant.session_id.clone(),
        gid: Some(grant.id.clone()),
    };
    (super::tokens::access_token(&state.keys.active_for(&state.config.tokens.access_token_alg, now), &claims), ttl)
}

pub(crate) fn bearer(access_token: String, expires_in: i64, scope: String) -> TokenResponse {
    TokenResponse { access_token, token_type: "Bearer", expires_in, id_token: None, refresh_token: None, scope }
}
