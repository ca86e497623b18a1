//! Second factors: TOTP secrets, WebAuthn credentials, recovery codes, ceremony state, audit.

use super::Result;
use crate::store::db::{Connection, OptionalExtension, params};

pub struct Totp {
    pub secret: String,
    pub confirmed: bool,
    pub last_step: i64,
}

pub fn totp(conn: &Connection, user_id: &str) -> Result<Option<Totp>> {
    Ok(conn
        .prepare_cached("SELECT secret, confirmed, last_step FROM totp_secrets WHERE user_id = ?1")?
        .query_row([user_id], |r| Ok(Totp { secret: r.get(0)?, confirmed: r.get(1)?, last_step: r.get(2)? }))
        .optional()?)
}

/// Seals every TOTP secret still stored in plaintext (installations from before encryption at
/// rest), in one transaction.
pub fn seal_plaintext_totp(conn: &Connection, seal: impl Fn(&str) -> String) -> Result<()> {
    let tx = crate::store::db::Transaction::new_unchecked(conn, crate::store::db::TransactionBehavior::Immediate)?;
    let rows: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT user_id, secret FROM totp_secrets WHERE secret NOT LIKE 'enc:v1:%'")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<crate::store::db::Result<_>>()?
    };
    for (user, secret) in rows {
        tx.execute("UPDATE totp_secrets SET secret = ?2 WHERE user_id = ?1", params![user, seal(&secret)])?;
    }
    tx.execute("DELETE FROM totp_enrolments WHERE secret NOT LIKE 'enc:v1:%'", [])?;
    tx.commit()?;
    Ok(())
}

/// The secret of the enrolment bound to `binding` (a flow or a session) for `user_id`, if one
/// is under way and unexpired.
pub fn enrolment(conn: &Connection, binding: &str, user_id: &str, now: i64) -> Result<Option<String>> {
    conn.execute("DELETE FROM totp_enrolments WHERE expires_at <= ?1", [now])?;
    Ok(conn
        .prepare_cached("SELECT secret FROM totp_enrolments WHERE binding = ?1 AND user_id = ?2 AND expires_at > ?3")?
        .query_row(params![binding, user_id, now], |r| r.get(0))
        .optional()?)
}

/// Starts an enrolment bound to `binding`, with its own secret, until `expires_at`.
pub fn put_enrolment(conn: &Connection, binding: &str, user_id: &str, secret: &str, expires_at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO totp_enrolments (binding, user_id, secret, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(binding) DO UPDATE SET user_id = excluded.user_id, secret = excluded.secret, expires_at = excluded.expires_at",
        params![binding, user_id, secret, expires_at],
    )?;
    Ok(())
}

/// A confirmed enrolment becomes the user's authenticator app (replacing none: a confirmed
/// secret is never overwritten), with `step` spent.
pub fn confirm_enrolment(conn: &Connection, binding: &str, user_id: &str, secret: &str, step: i64, now: i64) -> Result<bool> {
    conn.execute("DELETE FROM totp_enrolments WHERE binding = ?1", [binding])?;
    let n = conn.execute(
        "INSERT INTO totp_secrets (user_id, secret, confirmed, last_step, created_at) VALUES (?1, ?2, 1, ?3, ?4)
         ON CONFLICT(user_id) DO NOTHING",
        params![user_id, secret, step, now],
    )?;
    Ok(n == 1)
}

/// Records `step` as used; false if that step or a later one was already used — a replay
/// (RFC 6238 §5.2).
pub fn use_totp_step(conn: &Connection, user_id: &str, step: i64) -> Result<bool> {
    let n = conn.execute("UPDATE totp_secrets SET last_step = ?2 WHERE user_id = ?1 AND confirmed = 1 AND last_step < ?2", params![user_id, step])?;
    Ok(n == 1)
}

pub fn delete_totp(conn: &Connection, user_id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM totp_secrets WHERE user_id = ?1", [user_id])? == 1)
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub credential_id: String,
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const CRED_COLUMNS: &str = "id, kind, name, credential_id, passkey, created_at, last_used_at";

fn cred(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<Credential> {
    Ok(Credential {
        id: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        credential_id: r.get(3)?,
        passkey: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
    })
}

pub fn credentials(conn: &Connection, user_id: &str) -> Result<Vec<Credential>> {
    let sql = format!("SELECT {CRED_COLUMNS} FROM webauthn_credentials WHERE user_id = ?1 ORDER BY created_at");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([user_id], cred)?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// The credential with this WebAuthn credential id, and whose it is.
pub fn credential_by_credential_id(conn: &Connection, credential_id: &str) -> Result<Option<(String, Credential)>> {
    let sql = format!("SELECT user_id, {CRED_COLUMNS} FROM webauthn_credentials WHERE credential_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([credential_id], |r| {
            let user: String = r.get(0)?;
            Ok((
                user,
                Credential {
                    id: r.get(1)?,
                    kind: r.get(2)?,
                    name: r.get(3)?,
                    credential_id: r.get(4)?,
                    passkey: r.get(5)?,
                    created_at: r.get(6)?,
                    last_used_at: r.get(7)?,
                },
            ))
        })
        .optional()?)
}

pub fn insert_credential(conn: &Connection, user_id: &str, c: &Credential) -> Result<()> {
    conn.execute_unique(
        "INSERT INTO webauthn_credentials (id, user_id, kind, name, credential_id, passkey, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![c.id, user_id, c.kind, c.name, c.credential_id, c.passkey, c.created_at],
    )
    .map_err(|e| super::conflict_on_duplicate(e, || "this security key is already registered".into()))?;
    Ok(())
}

/// Stores the credential's updated state (sign counter) after a successful use.
pub fn credential_used(conn: &Connection, id: &str, passkey: &str, now: i64) -> Result<()> {
    conn.execute("UPDATE webauthn_credentials SET passkey = ?2, last_used_at = ?3 WHERE id = ?1", params![id, passkey, now])?;
    Ok(())
}

pub fn delete_credential(conn: &Connection, user_id: &str, id: &str) -> Result<Option<String>> {
    Ok(conn.query_row("DELETE FROM webauthn_credentials WHERE user_id = ?1 AND id = ?2 RETURNING name", params![user_id, id], |r| r.get(0)).optional()?)
}

pub fn recovery_codes_left(conn: &Connection, user_id: &str) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL", [user_id], |r| r.get(0))?)
}

pub fn replace_recovery_codes(conn: &Connection, user_id: &str, hashes: &[String], now: i64) -> Result<()> {
    conn.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    for h in hashes {
        conn.execute("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?1, ?2, ?3)", params![user_id, h, now])?;
    }
    Ok(())
}

/// Spends a recovery code; false if it is unknown or already used.
pub fn use_recovery_code(conn: &Connection, user_id: &str, code_hash: &str, now: i64) -> Result<bool> {
    let n =
        conn.execute("UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL", params![user_id, code_hash, now])?;
    Ok(n == 1)
}

pub fn put_ceremony(conn: &Connection, id: &str, user_id: Option<&str>, purpose: &str, state: &str, expires_at: i64) -> Result<()> {
    conn.execute("DELETE FROM webauthn_ceremonies WHERE expires_at <= ?1", [expires_at - 600])?;
    conn.execute(
        "INSERT INTO webauthn_ceremonies (id, user_id, purpose, state, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, user_id, purpose, state, expires_at],
    )?;
    Ok(())
}

/// Takes a ceremony's state out of the store: it can be used once, and only before it expires.
pub fn take_ceremony(conn: &Connection, id: &str, purpose: &str, now: i64) -> Result<Option<(Option<String>, String)>> {
    Ok(conn
        .query_row(
            "DELETE FROM webauthn_ceremonies WHERE id = ?1 AND purpose = ?2 AND expires_at > ?3 RETURNING user_id, state",
            params![id, purpose, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

pub fn audit(conn: &Connection, actor: Option<&str>, user_id: Option<&str>, action: &str, detail: Option<&str>, now: i64) -> Result<()> {
    conn.execute("INSERT INTO audit_log (at, actor_id, user_id, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)", params![now, actor, user_id, action, detail])?;
    Ok(())
}

#[derive(Debug)]
pub struct AuditRow {
    pub at: i64,
    pub user_id: Option<String>,
    pub action: String,
    pub detail: Option<String>,
}

pub fn audit_for_user(conn: &Connection, user_id: &str) -> Result<Vec<AuditRow>> {
    let mut stmt = conn.prepare("SELECT at, user_id, action, detail FROM audit_log WHERE user_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([user_id], |r| Ok(AuditRow { at: r.get(0)?, user_id: r.get(1)?, action: r.get(2)?, detail: r.get(3)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

pub fn set_mfa_required(conn: &Connection, user_id: &str, required: bool) -> Result<()> {
    conn.execute("UPDATE users SET mfa_required = ?2 WHERE id = ?1", params![user_id, required])?;
    Ok(())
}

/// Deletes expired TOTP enrolments.
pub fn purge_enrolments(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM totp_enrolments WHERE expires_at <= ?1", [now])?)
}
