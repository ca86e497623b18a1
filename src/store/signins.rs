use super::Result;
use rusqlite::{Connection, params};

/// One sign-in attempt, successful or not.
#[derive(Debug, Default)]
pub struct SignIn<'a> {
    pub user_id: Option<&'a str>,
    pub username: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub result: &'a str,
    pub reason: Option<&'a str>,
    /// RFC 8176 amr of a successful sign-in.
    pub methods: Option<&'a [String]>,
}

pub fn record(conn: &Connection, s: &SignIn<'_>, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO signin_log (at, user_id, username, client_id, ip, user_agent, result, reason, methods)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![now, s.user_id, s.username, s.client_id, s.ip, s.user_agent, s.result, s.reason, s.methods.map(super::to_json)])?;
    Ok(())
}

#[derive(Debug)]
pub struct SignInRow {
    pub at: i64,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub result: String,
    pub reason: Option<String>,
    pub methods: Option<String>,
}

/// The newest `limit` rows, newest first.
pub fn recent(conn: &Connection, limit: i64) -> Result<Vec<SignInRow>> {
    let mut stmt = conn.prepare(
        "SELECT at, user_id, username, client_id, ip, user_agent, result, reason, methods FROM signin_log ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(SignInRow {
            at: r.get(0)?,
            user_id: r.get(1)?,
            username: r.get(2)?,
            client_id: r.get(3)?,
            ip: r.get(4)?,
            user_agent: r.get(5)?,
            result: r.get(6)?,
            reason: r.get(7)?,
            methods: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
