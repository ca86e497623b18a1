//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3): client_secret_basic, client_secret_post, or none for public clients.

use super::error::OAuthError;
use crate::crypto::{constant_time_eq, secret_hash};
use crate::store::clients::Client;
use crate::store::db::Connection;
use crate::web::params::Params;
use actix_web::http::header;
use actix_web::http::header::HeaderMap;
use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SecretBasic,
    SecretPost,
    None,
}

pub struct Authenticated {
    pub client: Client,
    pub method: Method,
}

struct Presented {
    client_id: String,
    secret: Option<String>,
    method: Method,
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
fn form_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8().ok().map(|c| c.into_owned())
}

/// The longest client id worth looking up.
const MAX_CLIENT_ID: usize = 128;

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| OAuthError::invalid_client("malformed Authorization header"))?;
            let (scheme, creds) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client("only the Basic scheme authenticates clients"));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(creds.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = form_decode(id).zip(form_decode(secret)).ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            Some((id, secret))
        }
        None => None,
    };
    match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
            Err(OAuthError::invalid_request("use either HTTP Basic or client_secret in the body, not both"))
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request("client_id in the body does not match the Basic credentials"));
            }
            Ok(Presented { client_id: id, secret: Some(secret), method: Method::SecretBasic })
        }
        (None, Some(secret)) => {
            let id = params.get("client_id").ok_or_else(|| OAuthError::invalid_request("client_id is missing"))?;
            Ok(Presented { client_id: id.into(), secret: Some(secret.into()), method: Method::SecretPost })
        }
        (None, None) => {
            let id = params.get("client_id").ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
            Ok(Presented { client_id: id.into(), secret: None, method: Method::None })
        }
    }
}

/// Identifies and authenticates the calling client. Every failure is `invalid_client`
/// (401 with WWW-Authenticate), never saying which part was wrong.
pub fn authenticate(headers: &HeaderMap, params: &Params, conn: &Connection, now: i64) -> Result<Authenticated, OAuthError> {
    let p = presented(headers, params)?;
    // Client ids are latchkey's UUIDs: anything much longer is no client, and buys no lookup.
    if p.client_id.len() > MAX_CLIENT_ID {
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    let failed = || OAuthError::invalid_client("client authentication failed");
    let client = crate::store::cache::client(conn, &p.client_id)?.filter(|c| c.enabled).map(|c| (*c).clone()).ok_or_else(failed)?;
    match (&p.secret, &client.secret_hash) {
        (None, None) => {}
        (Some(secret), Some(stored)) => {
            let presented = secret_hash(secret);
            // An expired secret is refused like a wrong one.
            let live = client.secret_expires_at.is_none_or(|until| until > now);
            let current = live && constant_time_eq(presented.as_bytes(), stored.as_bytes());
            // During a rotation's grace period the previous secret still works.
            let previous = match (&client.previous_secret_hash, client.previous_secret_expires_at) {
                (Some(old), Some(until)) if until > now => constant_time_eq(presented.as_bytes(), old.as_bytes()),
                _ => false,
            };
            if !current && !previous {
                return Err(failed());
            }
        }
        _ => return Err(failed()),
    }
    Ok(Authenticated { client, method: p.method })
}
