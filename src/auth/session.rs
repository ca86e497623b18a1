//! The SSO session as the browser carries it.

use crate::store::db::Connection;
use crate::store::{self, StoreError, sessions::Session};
use crate::web::cookies;
use actix_web::HttpRequest;

/// The live session of this browser, if any.
pub fn current(req: &HttpRequest, conn: &Connection, now: i64) -> Result<Option<Session>, StoreError> {
    match cookies::value(req, cookies::SESSION) {
        Some(token) => store::sessions::by_token(conn, &token, now),
        None => Ok(None),
    }
}
