//! RFC 6749 §6 with rotation (RFC 9700 §4.14.2): every use returns a new refresh token; a
//! rotated token presented again means theft, and the whole family is revoked.

use crate::AppState;
use crate::crypto::secret_hash;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::tokens::{TokenResponse, has_scope};
use crate::policy::{self, evaluate::Decision, model::ClientAppType};
use crate::store::{self, StoreError, clients::Client, tokens::Grant};
use crate::web::params::Params;
use rusqlite::Connection;

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

    let (outcome, scope) = store::transaction(conn, |tx| -> Result<Result<(Grant, String), OAuthError>, StoreError> {
        let invalid = || Ok(Err(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")));
        let Some(row) = store::tokens::refresh_by_hash(tx, &presented_hash)? else { return invalid() };
        let Some(grant) = store::tokens::grant(tx, &row.grant_id)? else { return invalid() };
        if grant.client_id != client.id {
            return Ok(Err(OAuthError::invalid_grant("the refresh token was issued to another client")));
        }
        if grant.revoked_at.is_some() || row.expires_at <= now {
            return invalid();
        }
        // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
        let scope = match params.get("scope") {
            None => grant.scope.clone(),
            Some(asked) => {
                if let Some(extra) = asked.split(' ').find(|s| !has_scope(&grant.scope, s)) {
                    let why = format!("scope {extra:?} was not granted originally");
                    return Ok(Err(OAuthError::new(ErrorCode::InvalidScope, why)));
                }
                asked.to_string()
            }
        };
        if row.rotated_at.is_some() || !store::tokens::mark_rotated(tx, &presented_hash, now)? {
            store::tokens::revoke_grant(tx, &grant.id, now)?;
            tracing::warn!(client_id = %client.id, grant = %grant.id, "rotated refresh token reused; family revoked");
            return invalid();
        }
        let user_ok = match &grant.user_id {
            Some(uid) => store::users::by_id(tx, uid)?.is_some_and(|u| !u.disabled),
            None => false,
        };
        // An app that requires assignment stops refreshing for a user no longer assigned.
        let assigned = match (&grant.user_id, client.assignment_required) {
            (_, false) => true,
            (Some(u), true) => store::directory::is_assigned(tx, &client.id, u)?,
            (None, true) => false,
        };
        if !user_ok || !assigned {
            return invalid();
        }
        // Conditional access runs again with no person present: anything short of allow ends
        // this refresh (and the token stays unspent, for after the person signs in again).
        let ctx = policy::context(tx, grant.user_id.as_deref(), &client.id, ClientAppType::Refresh, request, &grant.amr, grant.auth_time, now)?;
        let eval = policy::decide(tx, &ctx)?;
        let refused = match &eval.decision {
            Decision::Allow => None,
            Decision::Block { policy: name } => Some(policy::blocked_reason(name)),
            Decision::Require { policies, .. } => Some(format!("conditional access requires the user to sign in again ({})", policies.join(", "))),
        };
        if let Some(reason) = refused {
            policy::log(tx, &ctx, &eval, "failure", Some(&reason), now)?;
            return Ok(Err(OAuthError::invalid_grant(reason)));
        }
        // The family keeps the absolute lifetime it started with; rotation does not extend it.
        store::tokens::insert_refresh(tx, &secret_hash(&next), &grant.id, now, row.expires_at)?;
        Ok(Ok((grant, scope)))
    })??;

    let user_id = outcome.user_id.clone().expect("checked above");
    let (access_token, expires_in) = super::user_access_token(state, &outcome, &user_id, &scope, now);
    let mut response = super::bearer(access_token, expires_in, scope);
    response.refresh_token = Some(next);
    Ok(response)
}
