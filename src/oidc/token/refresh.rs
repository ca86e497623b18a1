//! RFC 6749 §6 with rotation (RFC 9700 §4.14.2): every use returns a new refresh token; a
//! rotated token presented again means theft, and the whole family is revoked.

use crate::AppState;
use crate::crypto::secret_hash;
use crate::gate::{self, Outcome, Refusal, Target, Way};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::tokens::{TokenResponse, has_scope};
use crate::policy::{self, model::ClientAppType};
use crate::store::db::Connection;
use crate::store::{self, StoreError, clients::Client, tokens::Grant};
use crate::web::params::Params;

pub fn exchange(
    state: &AppState,
    conn: &mut Connection,
    client: &Client,
    params: &Params,
    request: &policy::Request,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let presented_hash = secret_hash(presented);
    let next = crate::crypto::random_token();

    // Row-locked: the one read-then-write that matters, spending the token, is a conditional
    // update (rotate_refresh), so refreshes of different families need not take turns.
    let outcome = store::decide_row_locked(conn, |tx| -> Result<Refreshed, StoreError> {
        let invalid = || Ok(Refreshed::Refused(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")));
        let Some((row, grant, person)) = store::tokens::refresh_grant_and_person(tx, &presented_hash)? else { return invalid() };
        if grant.client_id != client.id {
            return Ok(Refreshed::Refused(OAuthError::invalid_grant("the refresh token was issued to another client")));
        }
        if grant.revoked_at.is_some() || row.expires_at <= now {
            return invalid();
        }
        if row.rotated_at.is_some() {
            store::tokens::revoke_grant(tx, &grant.id, now)?;
            return Ok(Refreshed::Replayed(grant.id));
        }
        // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
        let scope = match params.get("scope") {
            None => grant.scope.clone(),
            Some(asked) => {
                if let Some(extra) = asked.split(' ').find(|s| !has_scope(&grant.scope, s)) {
                    let why = format!("scope {extra:?} was not granted originally");
                    return Ok(Refreshed::Refused(OAuthError::new(ErrorCode::InvalidScope, why)));
                }
                asked.to_string()
            }
        };
        let Some(user_id) = grant.user_id.as_deref() else { return invalid() };
        // The gate, with no person present: anything short of Issue ends this refresh, and the
        // token stays unspent for after the person signs in again. A grant born from the
        // password grant stays legacy authentication.
        let client_app_type = if grant.legacy { ClientAppType::Legacy } else { ClientAppType::Refresh };
        let ask = gate::Ask {
            way: Way::Refresh,
            client_app_type,
            auth_time: grant.auth_time,
            profile: person.as_ref(),
            ..gate::Ask::interactive(Target::App(client.id.clone()), user_id, request, &grant.amr)
        };
        let verdict = gate::check(tx, &ask, now)?;
        if verdict.issued().is_none() {
            let reason = match &verdict.outcome {
                Outcome::Refuse(Refusal::NeedsInteraction(_)) | Outcome::Refuse(Refusal::Blocked { .. }) => {
                    format!("{}: sign in again", verdict.outcome_reason())
                }
                _ => "the user can no longer use this application".to_string(),
            };
            gate::log(tx, &verdict, "failure", Some(&format!("refresh: {reason}")), now)?;
            return Ok(Refreshed::Refused(OAuthError::invalid_grant(reason)));
        }
        // The family keeps the absolute lifetime it started with; rotation does not extend it.
        if !store::tokens::rotate_refresh(tx, &presented_hash, &secret_hash(&next), &grant.id, now, row.expires_at)? {
            store::tokens::revoke_grant(tx, &grant.id, now)?;
            return Ok(Refreshed::Replayed(grant.id));
        }
        Ok(Refreshed::Issued(grant, scope))
    })?;
    let (grant, scope) = match outcome {
        Refreshed::Issued(g, s) => (g, s),
        Refreshed::Refused(e) => return Err(e),
        Refreshed::Replayed(grant_id) => {
            // A rotated token presented again means theft: the whole family has ended.
            tracing::warn!(client_id = %client.id, grant = %grant_id, "rotated refresh token reused; family revoked");
            return Err(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked"));
        }
    };
    let user_id = grant.user_id.clone().expect("checked above");
    let (access_token, expires_in) = super::user_access_token(state, &grant, &user_id, &scope, now);
    let mut response = super::bearer(access_token, expires_in, scope);
    response.refresh_token = Some(next);
    Ok(response)
}

/// What one refresh did, deciding what the transaction commits.
enum Refreshed {
    Issued(Grant, String),
    /// A rotated token came back: its family is revoked (committed).
    Replayed(String),
    /// Refused: nothing spent; only the sign-in log row of a policy refusal is kept.
    Refused(OAuthError),
}

impl store::Outcome for Refreshed {
    fn commits(&self) -> bool {
        true
    }
}
