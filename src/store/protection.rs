//! Lockout counters, sign-in history, and password resets in progress.

use super::{Result, json_list, to_json};
use crate::store::db::{Connection, OptionalExtension, params};

#[derive(Debug, Clone, Default)]
pub struct Lockout {
    pub failures: i64,
    pub locked_until: i64,
    pub lockouts: i64,
}

pub fn lockout(conn: &Connection, user_id: &str, familiar: bool) -> Result<Option<Lockout>> {
    Ok(conn
        .prepare_cached("SELECT failures, locked_until, lockouts FROM lockouts WHERE user_id = ?1 AND familiar = ?2")?
        .query_row(params![user_id, familiar], |r| Ok(Lockout { failures: r.get(0)?, locked_until: r.get(1)?, lockouts: r.get(2)? }))
        .optional()?)
}

pub fn set_lockout(conn: &Connection, user_id: &str, familiar: bool, failures: i64, locked_until: i64, lockouts: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO lockouts (user_id, familiar, failures, locked_until, lockouts) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(user_id, familiar) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until,
             lockouts = excluded.lockouts",
    )?
    .execute(params![user_id, familiar, failures, locked_until, lockouts])?;
    Ok(())
}

/// The networks and platforms a user has signed in from successfully.
pub fn history(conn: &Connection, user_id: &str) -> Result<(Vec<String>, Vec<String>)> {
    let mut stmt = conn.prepare_cached("SELECT network, platform FROM signin_history WHERE user_id = ?1")?;
    let rows: Vec<(String, String)> = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<crate::store::db::Result<_>>()?;
    Ok(rows.into_iter().unzip())
}

pub fn record_success(conn: &Connection, user_id: &str, network: &str, platform: &str, now: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO signin_history (user_id, network, platform, last_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id, network, platform) DO UPDATE SET last_at = excluded.last_at",
    )?
    .execute(params![user_id, network, platform, now])?;
    Ok(())
}

/// Wrong passwords for a user since `since`, from the sign-in log.
/// The addresses of the account's wrong passwords since `since` (at most 1000: smart lockout
/// stops far fewer).
pub fn recent_failures(conn: &Connection, user_id: &str, since: i64) -> Result<Vec<Option<String>>> {
    let mut stmt = conn.prepare_cached("SELECT ip FROM signin_log WHERE user_id = ?1 AND at >= ?2 AND failure = 'wrong_password' LIMIT 1000")?;
    Ok(stmt.query_map(params![user_id, since], |r| r.get(0))?.collect::<crate::store::db::Result<_>>()?)
}

pub fn set_session_risk(conn: &Connection, session_id: &str, risk: &str, reasons: &[String]) -> Result<()> {
    conn.execute("UPDATE sessions SET sign_in_risk = ?2, risk_reasons = ?3 WHERE id = ?1", params![session_id, risk, to_json(reasons)])?;
    Ok(())
}

pub fn session_risk(conn: &Connection, session_id: &str) -> Result<(String, Vec<String>)> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT sign_in_risk, risk_reasons FROM sessions WHERE id = ?1")?
        .query_row([session_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((risk, reasons)) = row else { return Ok(("none".into(), vec![])) };
    Ok((risk, reasons.as_deref().map(json_list).transpose()?.unwrap_or_default()))
}

#[derive(Debug, Clone)]
pub struct Reset {
    pub id: String,
    pub browser_hash: String,
    pub csrf_token: String,
    pub username: String,
    pub user_id: Option<String>,
    pub verified: Vec<String>,
    pub email_code_hash: Option<String>,
    pub email_code_expires: Option<i64>,
    pub attempts: i64,
    /// Codes e-mailed in this reset, and when the last one went.
    pub email_sends: i64,
    pub email_sent_at: Option<i64>,
}

pub fn insert_reset(conn: &Connection, r: &Reset, ip: Option<&str>, now: i64, ttl: i64) -> Result<()> {
    conn.execute("DELETE FROM reset_requests WHERE expires_at <= ?1", [now])?;
    conn.execute(
        "INSERT INTO reset_requests (id, browser_hash, csrf_token, username, user_id, ip, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![r.id, r.browser_hash, r.csrf_token, r.username, r.user_id, ip, now, now + ttl],
    )?;
    Ok(())
}

pub fn reset(conn: &Connection, id: &str, now: i64) -> Result<Option<Reset>> {
    let row = conn
        .query_row(
            "SELECT id, browser_hash, csrf_token, username, user_id, verified, email_code_hash, email_code_expires, attempts,
                 email_sends, email_sent_at
             FROM reset_requests WHERE id = ?1 AND expires_at > ?2",
            params![id, now],
            |r| {
                Ok((
                    Reset {
                        id: r.get(0)?,
                        browser_hash: r.get(1)?,
                        csrf_token: r.get(2)?,
                        username: r.get(3)?,
                        user_id: r.get(4)?,
                        verified: vec![],
                        email_code_hash: r.get(6)?,
                        email_code_expires: r.get(7)?,
                        attempts: r.get(8)?,
                        email_sends: r.get(9)?,
                        email_sent_at: r.get(10)?,
                    },
                    r.get::<_, String>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((mut reset, verified)) = row else { return Ok(None) };
    reset.verified = json_list(&verified)?;
    Ok(Some(reset))
}

pub fn update_reset(conn: &Connection, r: &Reset) -> Result<()> {
    conn.execute(
        "UPDATE reset_requests SET verified = ?2, email_code_hash = ?3, email_code_expires = ?4, attempts = ?5, email_sends = ?6,
             email_sent_at = ?7 WHERE id = ?1",
        params![r.id, to_json(&r.verified), r.email_code_hash, r.email_code_expires, r.attempts, r.email_sends, r.email_sent_at],
    )?;
    Ok(())
}

pub fn delete_reset(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM reset_requests WHERE id = ?1", [id])?;
    Ok(())
}

/// After a password reset: every session ends and every grant (refresh and access tokens) is
/// revoked.
pub fn end_everything(conn: &Connection, user_id: &str, now: i64) -> Result<()> {
    end_everything_except(conn, user_id, None, now)?;
    // Sign-ins in progress were started with what just stopped being trusted: they go too.
    conn.execute(&format!("DELETE FROM auth_requests WHERE {} = ?1", conn.json_text("params", "user_id")), [user_id])?;
    Ok(())
}

/// `end_everything`, keeping the session `keep` (the one the person changed their password in).
pub fn end_everything_except(conn: &Connection, user_id: &str, keep: Option<&str>, now: i64) -> Result<()> {
    super::logout::sessions_ending(conn, user_id, keep, now)?;
    conn.execute("UPDATE sessions SET ended_at = ?2 WHERE user_id = ?1 AND ended_at IS NULL AND id IS DISTINCT FROM ?3", params![user_id, now, keep])?;
    conn.execute("UPDATE grants SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL", params![user_id, now])?;
    // Codes not yet redeemed go too, the kept session's included: one minted with a copy of its
    // cookie just before the change must not start a token family after it.
    conn.execute("DELETE FROM authorization_codes WHERE user_id = ?1 AND grant_id IS NULL", params![user_id])?;
    Ok(())
}

pub struct EmailConfirmation {
    pub email: String,
    pub code_hash: String,
    pub expires_at: i64,
    pub attempts: i64,
}

pub fn put_email_confirmation(conn: &Connection, user_id: &str, email: &str, code_hash: &str, expires_at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO email_confirmations (user_id, email, code_hash, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id) DO UPDATE SET email = excluded.email, code_hash = excluded.code_hash,
             expires_at = excluded.expires_at, attempts = 0",
        params![user_id, email, code_hash, expires_at],
    )?;
    Ok(())
}

pub fn email_confirmation(conn: &Connection, user_id: &str) -> Result<Option<EmailConfirmation>> {
    Ok(conn
        .query_row("SELECT email, code_hash, expires_at, attempts FROM email_confirmations WHERE user_id = ?1", [user_id], |r| {
            Ok(EmailConfirmation { email: r.get(0)?, code_hash: r.get(1)?, expires_at: r.get(2)?, attempts: r.get(3)? })
        })
        .optional()?)
}

pub fn email_confirmation_failed(conn: &Connection, user_id: &str) -> Result<()> {
    conn.execute("UPDATE email_confirmations SET attempts = attempts + 1 WHERE user_id = ?1", [user_id])?;
    Ok(())
}

pub fn delete_email_confirmation(conn: &Connection, user_id: &str) -> Result<()> {
    conn.execute("DELETE FROM email_confirmations WHERE user_id = ?1", [user_id])?;
    Ok(())
}

/// One attempt budget's state.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    pub window_start: i64,
    pub spent: i64,
    pub paused_until: i64,
    pub pauses: i64,
}

pub fn budget(conn: &Connection, subject: &str, kind: &str) -> Result<Option<Budget>> {
    Ok(conn
        .prepare_cached("SELECT window_start, spent, paused_until, pauses FROM attempt_budgets WHERE subject = ?1 AND kind = ?2")?
        .query_row(params![subject, kind], |r| Ok(Budget { window_start: r.get(0)?, spent: r.get(1)?, paused_until: r.get(2)?, pauses: r.get(3)? }))
        .optional()?)
}

pub fn put_budget(conn: &Connection, subject: &str, kind: &str, b: &Budget) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO attempt_budgets (subject, kind, window_start, spent, paused_until, pauses) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(subject, kind) DO UPDATE SET window_start = excluded.window_start, spent = excluded.spent,
             paused_until = excluded.paused_until, pauses = excluded.pauses",
    )?
    .execute(params![subject, kind, b.window_start, b.spent, b.paused_until, b.pauses])?;
    Ok(())
}

/// Ends a user's pauses and counts (an administrator's "Unlock").
pub fn clear_budgets(conn: &Connection, subject: &str) -> Result<()> {
    conn.execute("DELETE FROM attempt_budgets WHERE subject = ?1", [subject])?;
    Ok(())
}

/// What is locked or paused for a user now, as (what, until): smart lockout per kind of
/// location, and spent attempt budgets.
pub fn locks(conn: &Connection, user_id: &str, now: i64) -> Result<Vec<(String, i64)>> {
    let mut out = vec![];
    let mut stmt = conn.prepare_cached("SELECT familiar, locked_until FROM lockouts WHERE user_id = ?1 AND locked_until > ?2")?;
    for row in stmt.query_map(params![user_id, now], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?)))? {
        let (familiar, until) = row?;
        let what = if familiar { "Sign-in from familiar networks (smart lockout)" } else { "Sign-in from unfamiliar networks (smart lockout)" };
        out.push((what.to_string(), until));
    }
    let mut stmt = conn.prepare_cached("SELECT kind, paused_until FROM attempt_budgets WHERE subject = ?1 AND paused_until > ?2")?;
    for row in stmt.query_map(params![format!("user:{user_id}"), now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (kind, until) = row?;
        let what = match kind.as_str() {
            "password" => "Sign-in from unfamiliar networks (smart lockout)",
            "password_familiar" => "Sign-in from familiar networks (smart lockout)",
            "reset" => "Self-service password reset",
            "totp" => "Authenticator-app codes",
            "recovery" => "Recovery codes",
            "email_code" => "E-mailed reset codes",
            "email_send" => "Sending reset codes by e-mail",
            _ => "Other attempts",
        };
        out.push((what.to_string(), until));
    }
    Ok(out)
}

/// An administrator's "Unlock": smart lockout and every attempt budget of the user start over.
pub fn unlock(conn: &Connection, user_id: &str) -> Result<()> {
    conn.execute("DELETE FROM lockouts WHERE user_id = ?1", [user_id])?;
    clear_budgets(conn, &format!("user:{user_id}"))
}

/// Remembers a failed password for the spray detector (keyed hashes only).
pub fn record_password_failure(conn: &Connection, at: i64, account: &[u8], ip: &[u8], password: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT INTO password_failures (at, account, ip, password) VALUES (?1, ?2, ?3, ?4)")?.execute(params![at, account, ip, password])?;
    Ok(())
}

/// How many different accounts failed since `since` from the IP `ip`, and with the password
/// `password` (keyed hashes).
pub fn spray_counts(conn: &Connection, since: i64, ip: Option<&[u8]>, password: &[u8]) -> Result<(i64, i64)> {
    let by_ip = match ip {
        Some(ip) => conn
            .prepare_cached("SELECT count(DISTINCT account) FROM password_failures WHERE ip = ?1 AND at >= ?2")?
            .query_row(params![ip, since], |r| r.get(0))?,
        None => 0,
    };
    let by_password = conn
        .prepare_cached("SELECT count(DISTINCT account) FROM password_failures WHERE password = ?1 AND at >= ?2")?
        .query_row(params![password, since], |r| r.get(0))?;
    Ok((by_ip, by_password))
}
