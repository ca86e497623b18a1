//! RFC 6749 §4.4: a confidential client gets an access token for itself. No person, no
//! refresh token, no ID token; nothing is written to the database.

use crate::AppState;
use crate::gate;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::tokens::{AccessClaims, TokenResponse};
use crate::policy;
use crate::store::clients::Client;
use crate::store::db::Connection;
use crate::web::params::Params;

pub fn exchange(
    state: &AppState,
    conn: &Connection,
    client: &Client,
    params: &Params,
    request: &policy::Request,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "public clients cannot use client_credentials"));
    }
    // latchkey defines no API scopes yet; the OIDC scopes describe a person, which this grant has not.
    if let Some(scope) = params.get("scope") {
        return Err(OAuthError::new(ErrorCode::InvalidScope, format!("scope {scope:?} cannot be granted to a client acting for itself")));
    }
    // The sign-in gate, with the app itself as the target: only policies that name client
    // credentials apply to an app acting as itself.
    let verdict = gate::check(conn, &gate::Ask::app_itself(&client.id, request), now)?;
    if let gate::Outcome::Refuse(refusal) = &verdict.outcome {
        let reason = refusal.log_reason();
        gate::log(conn, &verdict, "failure", Some(&reason), now)?;
        return Err(OAuthError::invalid_grant(reason));
    }
    let ttl = state.config.tokens.access_token_ttl_secs;
    let claims = AccessClaims {
        iss: state.config.issuer().to_string(),
        // RFC 9068 §2.2: with no resource owner, sub is the client's own identifier.
        sub: client.id.clone(),
        aud: client.id.clone(),
        client_id: client.id.clone(),
        exp: now + ttl,
        iat: now,
        jti: crate::crypto::random_token(),
        scope: String::new(),
        auth_time: None,
        sid: None,
        gid: None,
    };
    let token = crate::oidc::tokens::access_token(&state.keys.active_for(&state.config.tokens.access_token_alg, now), &claims);
    Ok(super::bearer(token, ttl, String::new()))
}
