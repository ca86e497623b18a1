//! OAuth 2.0 errors as the RFCs spell them. Token-style endpoints answer with the JSON body of
//! RFC 6749 §5.2; the authorization endpoint redirects them (§4.1.2.1) once the client and
//! redirect_uri are known to be genuine.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    UnsupportedResponseType,
    AccessDenied,
    LoginRequired,
    InteractionRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    UnsupportedTokenType,
    InvalidToken,
    ServerError,
    /// RFC 6749 §4.1.2.1; used on every endpoint when storage is briefly unusable (503).
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::AccessDenied => "access_denied",
            Self::LoginRequired => "login_required",
            Self::InteractionRequired => "interaction_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RegistrationNotSupported => "registration_not_supported",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidToken => "invalid_token",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }

    /// Logs an internal fault in full and answers `server_error` without details.
    pub fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error while answering an OAuth request");
        Self::new(ErrorCode::ServerError, "the server could not complete the request")
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        // A memory connection's refusal: the request is done again on a real connection, so
        // this answer is discarded, and it is no fault to log.
        if e.not_in_memory() {
            return Self::new(ErrorCode::ServerError, "the server could not complete the request");
        }
        if e.unavailable() {
            metrics::counter!("latchkey_db_unavailable_total").increment(1);
            tracing::warn!(error = %e, "storage unavailable while answering an OAuth request");
            return Self::new(ErrorCode::TemporarilyUnavailable, "the server is temporarily unable to answer; try again shortly");
        }
        Self::server(e)
    }
}

impl From<crate::auth::password_step::StepError> for OAuthError {
    fn from(e: crate::auth::password_step::StepError) -> Self {
        match e {
            crate::auth::password_step::StepError::Store(e) => e.into(),
            e => Self::server(e),
        }
    }
}

impl From<r2d2::Error> for OAuthError {
    fn from(e: r2d2::Error) -> Self {
        crate::store::StoreError::from(e).into()
    }
}

impl From<crate::store::db::Error> for OAuthError {
    fn from(e: crate::store::db::Error) -> Self {
        crate::store::StoreError::from(e).into()
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        crate::web::no_store(&mut res);
        match self.code {
            // RFC 6749 §5.2: a 401 for invalid_client carries WWW-Authenticate for the scheme used.
            ErrorCode::InvalidClient => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="latchkey""#));
            }
            // RFC 6750 §3: bearer-token errors are reported in WWW-Authenticate.
            ErrorCode::InvalidToken => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(r#"Bearer realm="latchkey", error="invalid_token", error_description="{}""#, self.description.replace('"', "'")),
                ));
            }
            ErrorCode::TemporarilyUnavailable => {
                res.insert_header((header::RETRY_AFTER, crate::store::RETRY_AFTER_SECS.to_string()));
            }
            _ => {}
        }
        res.json(json!({ "error": self.code.as_str(), "error_description": self.description }))
    }
}
