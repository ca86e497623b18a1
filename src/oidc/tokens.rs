//! What latchkey signs: ID tokens (OIDC Core §2) and JWT access tokens (RFC 9068).

use super::jwt::{self, TYP_ACCESS, TYP_ID};
use super::keys::SigningKey;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// The grant (token family) this token belongs to; revoking the grant revokes the token.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gid: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    pub at_hash: String,
    pub sid: String,
    pub amr: Vec<String>,
    pub acr: String,
    /// The names of the user's groups, with the `groups` scope.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub groups: Option<Vec<String>>,
}

/// The successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

pub fn access_token(key: &SigningKey, claims: &AccessClaims) -> String {
    jwt::sign(key, TYP_ACCESS, claims)
}

pub fn id_token(key: &SigningKey, claims: &IdClaims) -> String {
    jwt::sign(key, TYP_ID, claims)
}

pub fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// Why an access token is not accepted; shown to the bearer as `error_description`.
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    #[error("{0}")]
    Jwt(#[from] jwt::VerifyError),
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the token claims are malformed")]
    Claims,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Verifies a latchkey access token: signature, type, issuer, expiry, and that neither the
/// token nor its grant has been revoked.
pub fn check_access_token(state: &crate::AppState, conn: &crate::store::db::Connection, token: &str, now: i64) -> Result<AccessClaims, AccessTokenError> {
    let claims = jwt::verify(&state.keys, token, TYP_ACCESS, now)?;
    let claims: AccessClaims = serde_json::from_value(claims).map_err(|_| AccessTokenError::Claims)?;
    if claims.iss != state.config.issuer() {
        return Err(AccessTokenError::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(AccessTokenError::Expired);
    }
    if crate::store::tokens::access_token_revoked(conn, &claims.jti, claims.gid.as_deref())? {
        return Err(AccessTokenError::Revoked);
    }
    Ok(claims)
}
