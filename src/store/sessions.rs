use super::{Result, json_list, to_json};
use rusqlite::{Connection, OptionalExtension, params};

/// A single sign-on session. The browser holds a random token; only its hash is stored.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub csrf_token: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    /// When the session was last used for something that tracks activity (the admin console).
    pub last_seen_at: i64,
}

/// Starts a session and returns it with the cookie value the browser must hold.
#[tracing::instrument(skip(conn, amr))]
pub fn create(conn: &Connection, user_id: &str, amr: &[String], now: i64, ttl: i64) -> Result<(Session, String)> {
    let token = crate::crypto::random_token();
    let session = Session {
        id: crate::crypto::new_uuid(),
        user_id: user_id.to_string(),
        csrf_token: crate::crypto::random_token(),
        auth_time: now,
        amr: amr.to_vec(),
        last_seen_at: now,
    };
    conn.execute(
        "INSERT INTO sessions (id, token_hash, user_id, csrf_token, auth_time, amr, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?7)",
        params![session.id, crate::crypto::secret_hash(&token), session.user_id, session.csrf_token, now, to_json(&session.amr), now + ttl],
    )?;
    Ok((session, token))
}

/// The live session behind a cookie value: not ended, not expired, and its user not disabled.
pub fn by_token(conn: &Connection, token: &str, now: i64) -> Result<Option<Session>> {
    let row = conn
        .prepare_cached(
            "SELECT s.id, s.user_id, s.csrf_token, s.auth_time, s.amr, coalesce(s.last_seen_at, s.auth_time)
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2 AND u.disabled = 0",
        )?
        .query_row(params![crate::crypto::secret_hash(token), now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, String>(4)?, r.get(5)?)))
        .optional()?;
    let Some((id, user_id, csrf_token, auth_time, amr, last_seen_at)) = row else { return Ok(None) };
    Ok(Some(Session { id, user_id, csrf_token, auth_time, amr: json_list(&amr)?, last_seen_at }))
}

/// Ends a session; the apps it gave tokens to are queued a back-channel logout.
pub fn end(conn: &Connection, id: &str, now: i64) -> Result<()> {
    super::logout::session_ending(conn, id, now)?;
    conn.execute("UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL", params![id, now])?;
    Ok(())
}

pub fn touch(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1")?.execute(params![id, now])?;
    Ok(())
}
