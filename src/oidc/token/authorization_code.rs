//! RFC 6749 §4.1.3 with PKCE (RFC 7636) and OIDC Core §3.1.3: a one-time code becomes tokens.

use crate::AppState;
use crate::crypto::{b64url, constant_time_eq, secret_hash, sha256};
use crate::oidc::error::OAuthError;
use crate::oidc::jwt::at_hash;
use crate::oidc::tokens::{self, IdClaims, TokenResponse, has_scope};
use crate::store::db::Connection;
use crate::store::{self, StoreError, clients::Client, tokens::Grant};
use crate::web::params::Params;

/// RFC 7636 §4.1: 43 to 128 characters from the unreserved set.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

struct Redeemed {
    grant: Grant,
    nonce: Option<String>,
    refresh_token: Option<String>,
}

/// What presenting a code did.
enum Redemption {
    Redeemed(Redeemed),
    /// Used before: the grant from its first use is revoked (committed).
    Replayed,
    /// Refused: nothing written.
    Refused(OAuthError),
}

impl store::Outcome for Redemption {
    fn commits(&self) -> bool {
        !matches!(self, Redemption::Refused(_))
    }
}

pub fn exchange(state: &AppState, conn: &mut Connection, client: &Client, params: &Params, now: i64) -> Result<TokenResponse, OAuthError> {
    let code = params.get("code").ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| OAuthError::invalid_request("redirect_uri is missing"))?;
    let verifier = params.get("code_verifier");
    if verifier.is_some_and(|v| !valid_verifier(v)) {
        return Err(OAuthError::invalid_request("code_verifier must be 43-128 unreserved characters (RFC 7636 §4.1)"));
    }
    let code_hash = secret_hash(code);
    let refresh_ttl = state.config.tokens.refresh_token_ttl_secs;

    // One transaction: the code is checked and spent, the grant and refresh token created, or
    // (on replay) the grant issued from the first use revoked — all or nothing.
    let outcome = store::decide(conn, |tx| -> Result<Redemption, StoreError> {
        let refused = |why: &str| Ok(Redemption::Refused(OAuthError::invalid_grant(why)));
        let Some(row) = store::codes::code_by_hash(tx, &code_hash)? else {
            return refused("the authorization code is invalid");
        };
        if row.client_id != client.id {
            return refused("the authorization code was issued to another client");
        }
        if let Some(first_grant) = &row.grant_id {
            // RFC 6749 §4.1.2: a code used twice revokes every token issued from it.
            store::tokens::revoke_grant(tx, first_grant, now)?;
            tracing::warn!(client_id = %client.id, "authorization code replayed; its tokens are revoked");
            return Ok(Redemption::Replayed);
        }
        if row.expires_at <= now {
            return refused("the authorization code has expired");
        }
        if row.redirect_uri != redirect_uri {
            return refused("redirect_uri does not match the authorization request");
        }
        match (&row.code_challenge, verifier) {
            (Some(challenge), Some(v)) => {
                if !constant_time_eq(b64url(&sha256(v.as_bytes())).as_bytes(), challenge.as_bytes()) {
                    return refused("code_verifier does not match the code_challenge");
                }
            }
            (Some(_), None) => return refused("code_verifier is missing"),
            // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is an injection sign.
            (None, Some(_)) => return refused("code_verifier given but no code_challenge was"),
            (None, None) => {}
        }
        // A code from a session that has since ended (signed out, password changed, revoked)
        // gives nothing.
        if !store::sessions::is_live_session_of(tx, &row.session_id, &row.user_id, now)? {
            return refused("the session this code was issued in has ended");
        }
        if store::users::by_id(tx, &row.user_id)?.is_none_or(|u| u.disabled) {
            return refused("the user can no longer sign in");
        }
        let grant = Grant {
            id: crate::crypto::new_uuid(),
            client_id: client.id.clone(),
            user_id: Some(row.user_id.clone()),
            session_id: Some(row.session_id.clone()),
            scope: row.scope.clone(),
            auth_time: Some(row.auth_time),
            amr: row.amr.clone(),
            revoked_at: None,
            legacy: false,
        };
        store::tokens::insert_grant(tx, &grant, now)?;
        if !store::codes::mark_redeemed(tx, &code_hash, &grant.id)? {
            return refused("the authorization code has already been used");
        }
        let refresh_token = if has_scope(&row.scope, "offline_access") && client.allows_grant("refresh_token") {
            let token = crate::crypto::random_token();
            store::tokens::insert_refresh(tx, &secret_hash(&token), &grant.id, now, now + refresh_ttl)?;
            Some(token)
        } else {
            None
        };
        store::codes::purge_codes(tx, now - 86_400)?;
        Ok(Redemption::Redeemed(Redeemed { grant, nonce: row.nonce, refresh_token }))
    })?;
    let outcome = match outcome {
        Redemption::Redeemed(r) => r,
        Redemption::Replayed => return Err(OAuthError::invalid_grant("the authorization code has already been used")),
        Redemption::Refused(e) => return Err(e),
    };

    let user_id = outcome.grant.user_id.clone().expect("code grants have a user");
    let (access_token, expires_in) = super::user_access_token(state, &outcome.grant, &user_id, &outcome.grant.scope, now);
    let key = state.keys.active_for(&client.id_token_alg, now);
    let groups = if has_scope(&outcome.grant.scope, "groups") { Some(store::directory::group_names_of(conn, &user_id)?) } else { None };
    let id_claims = IdClaims {
        iss: state.config.issuer().to_string(),
        sub: user_id,
        aud: client.id.clone(),
        exp: now + state.config.tokens.id_token_ttl_secs,
        iat: now,
        auth_time: outcome.grant.auth_time.unwrap_or(now),
        nonce: outcome.nonce,
        at_hash: at_hash(&access_token),
        sid: outcome.grant.session_id.clone().unwrap_or_default(),
        amr: outcome.grant.amr.clone(),
        acr: crate::auth::flow::Level::of(&outcome.grant.amr).acr().to_string(),
        groups,
    };
    let mut response = super::bearer(access_token, expires_in, outcome.grant.scope.clone());
    response.id_token = Some(tokens::id_token(&key, &id_claims));
    response.refresh_token = outcome.refresh_token;
    Ok(response)
}
