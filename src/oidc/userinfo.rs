//! The UserInfo endpoint (OIDC Core §5.3), GET or POST, with a bearer access token
//! (RFC 6750 §2.1 header, or §2.2 form body on POST).

use super::error::{ErrorCode, OAuthError};
use super::tokens::{check_access_token, has_scope};
use crate::AppState;
use crate::store;
use crate::store::db::Connection;
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

fn invalid_token(d: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidToken, d)
}

/// The bearer token from the Authorization header, or from a form body on POST.
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Result<String, OAuthError> {
    let from_header = match req.headers().get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Some(token.trim().to_string()),
                _ => return Err(invalid_token("the Authorization header must use the Bearer scheme")),
            }
        }
        None => None,
    };
    let from_body =
        if req.method() == Method::POST && !body.is_empty() { super::token::form_params(req, body)?.get("access_token").map(str::to_string) } else { None };
    match (from_header, from_body) {
        // RFC 6750 §2: a client MUST NOT use more than one method to transmit the token.
        (Some(_), Some(_)) => Err(OAuthError::invalid_request("send the access token in one place only")),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(invalid_token("an access token is required")),
    }
}

pub async fn userinfo(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let token = bearer_token(&req, &body)?;
    let out = crate::web::db(&state, move |state, conn| claims_of(state, conn, &token)).await?;
    Ok(crate::web::no_store(&mut HttpResponse::Ok()).json(Value::Object(out)))
}

/// The claims the access token's scopes release about its user.
fn claims_of(state: &AppState, conn: &Connection, token: &str) -> Result<Map<String, Value>, OAuthError> {
    let now = state.clock.now();
    let claims = check_access_token(state, conn, token, now).map_err(|e| match e {
        // A storage fault is not a dead token: the app should retry, not sign the person out.
        super::tokens::AccessTokenError::Store(e) => OAuthError::from(e),
        e => invalid_token(e.to_string()),
    })?;
    if claims.gid.is_none() || !has_scope(&claims.scope, "openid") {
        return Err(invalid_token("the token was not issued for OpenID Connect sign-in"));
    }
    let user = store::users::by_id(conn, &claims.sub)?.filter(|u| !u.disabled).ok_or_else(|| invalid_token("the user no longer exists or is disabled"))?;
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    if has_scope(&claims.scope, "profile") {
        out.insert("preferred_username".into(), json!(user.username));
        out.insert("updated_at".into(), json!(user.updated_at));
        if let Some(name) = &user.name {
            out.insert("name".into(), json!(name));
        }
    }
    if has_scope(&claims.scope, "email")
        && let Some(email) = &user.email
    {
        out.insert("email".into(), json!(email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    if has_scope(&claims.scope, "groups") {
        out.insert("groups".into(), json!(store::directory::group_names_of(conn, &user.id)?));
    }
    Ok(out)
}
