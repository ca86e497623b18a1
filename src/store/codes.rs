//! Pending authorization requests and one-time authorization codes.

use super::{Result, StoreError, json_list, to_json};
use crate::store::db::{Connection, OptionalExtension, params};

pub struct PendingRequest {
    pub browser_hash: String,
    pub csrf_token: String,
    pub params: String,
}

/// Parks a pending sign-in opened by client `ip`, unless that client already has `max_open`
/// unexpired ones (`TooManyPending`): anonymous requests must not grow the database without
/// bound. The count and the insert are one statement, so concurrent requests cannot overshoot.
pub fn insert_request(conn: &Connection, id: &str, req: &PendingRequest, ip: &str, max_open: i64, now: i64, ttl: i64) -> Result<()> {
    purge_requests(conn, now)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO auth_requests (id, browser_hash, csrf_token, params, created_at, expires_at, ip)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
             WHERE (SELECT COUNT(*) FROM auth_requests WHERE ip = ?7 AND expires_at > ?5) < ?8",
        )?
        .execute(params![id, req.browser_hash, req.csrf_token, req.params, now, now + ttl, ip, max_open])?;
    match inserted {
        0 => Err(StoreError::TooManyPending),
        _ => Ok(()),
    }
}

/// Housekeeping: drops pending sign-ins nobody finished.
pub fn purge_requests(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.prepare_cached("DELETE FROM auth_requests WHERE expires_at <= ?1")?.execute([now])?)
}

pub fn request(conn: &Connection, id: &str, now: i64) -> Result<Option<PendingRequest>> {
    Ok(conn
        .prepare_cached("SELECT browser_hash, csrf_token, params FROM auth_requests WHERE id = ?1 AND expires_at > ?2")?
        .query_row(params![id, now], |r| Ok(PendingRequest { browser_hash: r.get(0)?, csrf_token: r.get(1)?, params: r.get(2)? }))
        .optional()?)
}

pub fn delete_request(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM auth_requests WHERE id = ?1", [id])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub expires_at: i64,
    /// Set once the code has been redeemed: the grant its tokens belong to.
    pub grant_id: Option<String>,
}

pub fn insert_code(conn: &Connection, code_hash: &str, c: &Code, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, user_id, session_id, scope, nonce,
             code_challenge, auth_time, amr, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            code_hash,
            c.client_id,
            c.redirect_uri,
            c.user_id,
            c.session_id,
            c.scope,
            c.nonce,
            c.code_challenge,
            c.auth_time,
            to_json(&c.amr),
            now,
            c.expires_at
        ],
    )?;
    Ok(())
}

pub fn code_by_hash(conn: &Connection, code_hash: &str) -> Result<Option<Code>> {
    let row = conn
        .prepare_cached(
            "SELECT client_id, redirect_uri, user_id, session_id, scope, nonce, code_challenge, auth_time, amr,
                    expires_at, grant_id
             FROM authorization_codes WHERE code_hash = ?1",
        )?
        .query_row([code_hash], |r| {
            Ok((
                Code {
                    client_id: r.get(0)?,
                    redirect_uri: r.get(1)?,
                    user_id: r.get(2)?,
                    session_id: r.get(3)?,
                    scope: r.get(4)?,
                    nonce: r.get(5)?,
                    code_challenge: r.get(6)?,
                    auth_time: r.get(7)?,
                    amr: vec![],
                    expires_at: r.get(9)?,
                    grant_id: r.get(10)?,
                },
                r.get::<_, String>(8)?,
            ))
        })
        .optional()?;
    let Some((mut code, amr)) = row else { return Ok(None) };
    code.amr = json_list(&amr)?;
    Ok(Some(code))
}

/// Marks the code redeemed under `grant_id`; false if someone redeemed it first.
pub fn mark_redeemed(conn: &Connection, code_hash: &str, grant_id: &str) -> Result<bool> {
    let n = conn.execute("UPDATE authorization_codes SET grant_id = ?2 WHERE code_hash = ?1 AND grant_id IS NULL", params![code_hash, grant_id])?;
    Ok(n == 1)
}

/// Drops codes that expired long enough ago that a replay no longer needs detecting.
pub fn purge_codes(conn: &Connection, before: i64) -> Result<()> {
    conn.execute("DELETE FROM authorization_codes WHERE expires_at < ?1", [before])?;
    Ok(())
}

/// Saves a pending sign-in's progress (who passed which factor so far).
pub fn update_request(conn: &Connection, id: &str, params: &str) -> Result<()> {
    conn.execute("UPDATE auth_requests SET params = ?2 WHERE id = ?1", crate::store::db::params![id, params])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingRequest {
        PendingRequest { browser_hash: "b".into(), csrf_token: "c".into(), params: "{}".into() }
    }

    #[test]
    fn one_client_holds_at_most_the_cap_of_open_sign_ins_and_expired_ones_go() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        for i in 0..3 {
            insert_request(&conn, &format!("a{i}"), &pending(), "192.0.2.1", 3, 100, 900).unwrap();
        }
        assert!(matches!(insert_request(&conn, "a3", &pending(), "192.0.2.1", 3, 100, 900), Err(StoreError::TooManyPending)));
        insert_request(&conn, "b0", &pending(), "192.0.2.2", 3, 100, 900).unwrap();
        // Finished or expired requests free their place.
        delete_request(&conn, "a0").unwrap();
        insert_request(&conn, "a4", &pending(), "192.0.2.1", 3, 100, 900).unwrap();
        insert_request(&conn, "a5", &pending(), "192.0.2.1", 3, 1000, 900).unwrap();
        let left: i64 = conn.query_row("SELECT COUNT(*) FROM auth_requests", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 1, "housekeeping removed the expired rows");
        assert_eq!(purge_requests(&conn, 2000).unwrap(), 1);
    }
}
