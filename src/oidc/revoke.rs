//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole grant, including
//! the access tokens issued under it (§2.1); revoking an access token revokes just that one.
//! Unknown, foreign or already-dead tokens still get 200 (§2.2).

use super::client_auth;
use super::error::OAuthError;
use super::jwt::{self, TYP_ACCESS};
use super::tokens::AccessClaims;
use crate::AppState;
use crate::crypto::secret_hash;
use crate::store;
use actix_web::{HttpRequest, HttpResponse, web};

pub async fn revoke(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let params = super::token::form_params(&req, &body)?;
    let headers = req.headers().clone();
    crate::web::db(&state, move |state, conn| {
        let client = client_auth::authenticate(&headers, &params, conn, state.clock.now())?.client;
        let token = params.get("token").ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
        let now = state.clock.now();
        if let Some((_, grant)) = store::tokens::refresh_and_grant(conn, &secret_hash(token))? {
            if grant.client_id == client.id {
                store::tokens::revoke_grant(conn, &grant.id, now)?;
            }
        } else if let Ok(claims) = jwt::verify(&state.keys, token, TYP_ACCESS, now)
            && let Ok(c) = serde_json::from_value::<AccessClaims>(claims)
            && c.client_id == client.id
            && c.exp > now
        {
            store::tokens::revoke_access_token(conn, &c.jti, c.exp, now)?;
        }
        Ok::<_, OAuthError>(())
    })
    .await?;
    Ok(crate::web::no_store(&mut HttpResponse::Ok()).finish())
}
