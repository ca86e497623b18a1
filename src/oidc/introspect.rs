//! Token introspection (RFC 7662). Only confidential clients may ask, and only about tokens
//! issued to themselves; anything else is `{"active": false}`.

use super::client_auth;
use super::error::OAuthError;
use super::tokens::check_access_token;
use crate::AppState;
use crate::crypto::secret_hash;
use crate::store;
use crate::store::db::Connection;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

fn access_token(state: &AppState, conn: &Connection, client_id: &str, token: &str, now: i64) -> Option<Value> {
    let c = check_access_token(state, conn, token, now).ok()?;
    (c.client_id == client_id).then(|| {
        let mut v = json!({
            "active": true, "token_type": "Bearer", "client_id": c.client_id, "sub": c.sub, "aud": c.aud,
            "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti,
        });
        if !c.scope.is_empty() {
            v["scope"] = json!(c.scope);
        }
        if let Some(t) = c.auth_time {
            v["auth_time"] = json!(t);
        }
        v
    })
}

fn refresh_token(conn: &Connection, client_id: &str, token: &str, now: i64) -> Result<Option<Value>, store::StoreError> {
    let Some((row, grant)) = store::tokens::refresh_and_grant(conn, &secret_hash(token))? else { return Ok(None) };
    let live = row.rotated_at.is_none() && row.expires_at > now && grant.revoked_at.is_none() && grant.client_id == client_id;
    Ok(live.then(|| {
        json!({
            "active": true, "token_type": "refresh_token", "client_id": grant.client_id,
            "sub": grant.user_id, "scope": grant.scope, "exp": row.expires_at,
        })
    }))
}

pub async fn introspect(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let params = super::token::form_params(&req, &body)?;
    let headers = req.headers().clone();
    let body = crate::web::db(&state, move |state, conn| {
        let caller = client_auth::authenticate(&headers, &params, conn, state.clock.now())?;
        if caller.client.is_public {
            return Err(OAuthError::invalid_client("introspection requires a confidential client"));
        }
        let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let now = state.clock.now();
        let id = &caller.client.id;
        let found = if looks_like_jwt(token) { access_token(state, conn, id, token, now) } else { refresh_token(conn, id, token, now)? };
        Ok(found.unwrap_or_else(|| json!({ "active": false })))
    })
    .await?;
    Ok(crate::web::no_store(&mut HttpResponse::Ok()).json(body))
}
