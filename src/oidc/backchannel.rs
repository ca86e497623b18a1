//! OpenID Connect Back-Channel Logout 1.0: when a session ends — RP-initiated logout, sign-out,
//! a password change, an admin's revocation, a disabled user — every app that received tokens
//! in it and registered a `backchannel_logout_uri` is sent a signed logout token. The
//! deliveries are queued in the transaction that ends the session (`store::logout`) and sent by
//! this worker, with retries and backoff; each attempt's result goes to the audit log.

use super::jwt;
use crate::AppState;
use crate::store::{self, StoreError, logout::Delivery};
use serde::Serialize;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Back-Channel Logout 1.0 §2.4: the event a logout token carries.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// §2.4: `typ` of a logout token (RFC 8725 §3.11: explicit typing).
pub const TYP: &str = "logout+jwt";
/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 6;
/// How long a worker holds a delivery it is sending.
const LEASE_SECS: i64 = 30;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct LogoutClaims {
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    /// Both `sub` and, when the session is known, `sid` (§2.4: at least one; never `nonce`).
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    events: serde_json::Value,
}

/// The signed logout token for `d`, with the app's ID-token algorithm.
pub fn logout_token(state: &AppState, d: &Delivery, alg: &str, now: i64) -> String {
    let claims = LogoutClaims {
        iss: state.config.issuer().to_string(),
        aud: d.client_id.clone(),
        iat: now,
        exp: now + 120,
        jti: crate::crypto::random_token(),
        sub: d.user_id.clone(),
        sid: d.session_id.clone(),
        events: serde_json::json!({ EVENT: {} }),
    };
    jwt::sign(&state.keys.active_for(alg, now), TYP, &claims)
}

/// Seconds to wait after `attempts` failed attempts: 5 s, 10 s, 20 s… up to an hour.
pub fn backoff(attempts: i64) -> i64 {
    (5i64 << attempts.clamp(0, 10)).min(3600)
}

/// Resolves names to public addresses only: a name that points inside latchkey's network (or
/// is made to, by DNS rebinding) gets no connection.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| super::clients::public_ip(a.ip())).collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether latchkey may POST to `uri` itself: the registration rule again, at send time (an
/// internal address only when configured for development).
fn allowed(uri: &str, private_ok: bool) -> bool {
    private_ok || super::clients::public_https(uri)
}

/// Runs until the server's state is gone (the server stopped).
pub async fn run(state: Weak<AppState>) {
    let private_ok = state.upgrade().is_some_and(|s| s.config.server.backchannel_private_addresses);
    // No proxy from the environment: a proxy would resolve the name itself, past `PublicOnly`.
    let builder = reqwest::Client::builder().timeout(TIMEOUT).connect_timeout(Duration::from_secs(3)).redirect(reqwest::redirect::Policy::none()).no_proxy();
    let builder = if private_ok { builder } else { builder.dns_resolver(std::sync::Arc::new(PublicOnly)) };
    let http = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "back-channel logout is off: no HTTP client");
            return;
        }
    };
    loop {
        let Some(state) = state.upgrade() else { return };
        if let Err(e) = tick(&state, &http).await {
            tracing::error!(error = %e, "back-channel logout deliveries failed");
        }
        drop(state);
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn tick(state: &Arc<AppState>, http: &reqwest::Client) -> Result<(), StoreError> {
    let now = state.clock.now();
    let due = {
        let s = state.clone();
        actix_web::web::block(move || store::logout::take_due(&mut *s.pool.get()?, now, LEASE_SECS, 20))
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))??
    };
    // Sent side by side: one slow app holds up nobody else's (each send is bounded by TIMEOUT,
    // well inside the lease).
    let sends: Vec<_> = due.into_iter().map(|d| actix_web::rt::spawn(deliver(state.clone(), http.clone(), d))).collect();
    for send in sends {
        match send.await {
            Ok(Err(e)) => tracing::error!(error = %e, "recording a back-channel logout delivery failed"),
            Err(e) => tracing::error!(error = %e, "a back-channel logout delivery panicked"),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

async fn deliver(state: Arc<AppState>, http: reqwest::Client, d: Delivery) -> Result<(), StoreError> {
    let now = state.clock.now();
    let alg = store::clients::by_id(&*state.pool.get()?, &d.client_id)?.map(|c| c.id_token_alg).unwrap_or_else(|| "RS256".into());
    let (ok, result, retry) = if !allowed(&d.uri, state.config.server.backchannel_private_addresses) {
        (false, "refused: not an https URL to a public address".to_string(), false)
    } else {
        let token = logout_token(&state, &d, &alg, now);
        let answer = http.post(&d.uri).header("cache-control", "no-store").form(&[("logout_token", token)]).send().await.map(|r| r.status());
        match answer {
            Ok(s) if s.is_success() => (true, format!("delivered (HTTP {})", s.as_u16()), false),
            Ok(s) => (false, format!("the app answered HTTP {}", s.as_u16()), true),
            Err(e) if e.is_timeout() => (false, "no answer within 5 s".to_string(), true),
            Err(_) => (false, "could not connect".to_string(), true),
        }
    };
    let attempt = d.attempts + 1;
    let retry_at = (retry && attempt < MAX_ATTEMPTS).then(|| state.clock.now() + backoff(d.attempts));
    let action = match (ok, retry_at) {
        (true, _) => "backchannel_logout_delivered",
        (false, Some(_)) => "backchannel_logout_retrying",
        (false, None) => "backchannel_logout_failed",
    };
    let detail = format!("app {}, attempt {attempt}: {result}", d.client_id);
    let conn = state.pool.get()?;
    store::logout::attempted(&conn, d.id, &result, retry_at, state.clock.now())?;
    store::mfa::audit(&conn, None, Some(&d.user_id), action, Some(&detail), state.clock.now())?;
    tracing::info!(client_id = %d.client_id, attempt, ok, "back-channel logout");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(super::backoff(0), 5);
        assert_eq!(super::backoff(1), 10);
        assert_eq!(super::backoff(3), 40);
        assert_eq!(super::backoff(30), 3600);
    }
}
