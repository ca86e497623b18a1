//! What people approved that third-party apps may see (OIDC Core §3.1.2.4).

use super::{Result, json_list, to_json};
use crate::store::db::{Connection, OptionalExtension, params};

/// The scopes `user_id` approved for `client_id`, if any.
pub fn scopes(conn: &Connection, user_id: &str, client_id: &str) -> Result<Option<Vec<String>>> {
    let row: Option<String> = conn
        .prepare_cached("SELECT scopes FROM consents WHERE user_id = ?1 AND client_id = ?2")?
        .query_row(params![user_id, client_id], |r| r.get(0))
        .optional()?;
    row.as_deref().map(json_list).transpose()
}

/// Records approval of `scopes` (added to what was approved before).
pub fn grant(conn: &Connection, user_id: &str, client_id: &str, scopes: &[String], now: i64) -> Result<()> {
    let mut all = self::scopes(conn, user_id, client_id)?.unwrap_or_default();
    for s in scopes {
        if !all.contains(s) {
            all.push(s.clone());
        }
    }
    conn.execute(
        "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        params![user_id, client_id, to_json(&all), now],
    )?;
    Ok(())
}

/// Withdraws a consent and revokes the app's grants for the user (its refresh and access
/// tokens stop working). False if there was none.
pub fn revoke(conn: &Connection, user_id: &str, client_id: &str, now: i64) -> Result<bool> {
    let n = conn.execute("DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2", params![user_id, client_id])?;
    conn.execute("UPDATE grants SET revoked_at = ?3 WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL", params![user_id, client_id, now])?;
    Ok(n == 1)
}

/// One app a person approved.
#[derive(Debug, Clone)]
pub struct Consent {
    pub client_id: String,
    pub app: String,
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

/// A user's consents, newest first.
pub fn for_user(conn: &Connection, user_id: &str) -> Result<Vec<Consent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.name, k.scopes, k.granted_at FROM consents k JOIN clients c ON c.id = k.client_id WHERE k.user_id = ?1 ORDER BY k.granted_at DESC",
    )?;
    let rows: Vec<(String, String, String, i64)> =
        stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<crate::store::db::Result<_>>()?;
    rows.into_iter().map(|(client_id, app, scopes, granted_at)| Ok(Consent { client_id, app, scopes: json_list(&scopes)?, granted_at })).collect()
}
