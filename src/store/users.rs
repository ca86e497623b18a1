use super::{Result, StoreError};
use crate::store::db::{Connection, OptionalExtension, Row, params};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password_hash: String,
    pub is_admin: bool,
    pub must_change_password: bool,
    pub disabled: bool,
    pub updated_at: i64,
    /// This user must sign in with a second factor (and register one if they have none).
    pub mfa_required: bool,
    /// A one-time password stops working at this time.
    pub password_expires_at: Option<i64>,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
    pub is_admin: bool,
    pub must_change_password: bool,
}

const COLUMNS: &str =
    "id, username, email, email_verified, name, password_hash, is_admin, must_change_password, disabled, updated_at, mfa_required, password_expires_at";

fn from_row(r: &Row<'_>) -> crate::store::db::Result<User> {
    user_at(r, 0)
}

/// A user from the twelve `COLUMNS` starting at column `at`.
fn user_at(r: &Row<'_>, at: usize) -> crate::store::db::Result<User> {
    Ok(User {
        id: r.get(at)?,
        username: r.get(at + 1)?,
        email: r.get(at + 2)?,
        email_verified: r.get(at + 3)?,
        name: r.get(at + 4)?,
        password_hash: r.get(at + 5)?,
        is_admin: r.get(at + 6)?,
        must_change_password: r.get(at + 7)?,
        disabled: r.get(at + 8)?,
        updated_at: r.get(at + 9)?,
        mfa_required: r.get(at + 10)?,
        password_expires_at: r.get(at + 11)?,
    })
}

#[tracing::instrument(skip(conn, new), fields(username = new.username))]
pub fn insert(conn: &Connection, new: &NewUser<'_>, now: i64) -> Result<User> {
    let id = crate::crypto::new_uuid();
    conn.execute_unique(
        "INSERT INTO users (id, username, email, name, password_hash, is_admin, must_change_password, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![id, new.username, new.email, new.name, new.password_hash, new.is_admin, new.must_change_password, now],
    )
    .map_err(|e| super::conflict_on_duplicate(e, || format!("a user named {:?} already exists", new.username)))?;
    by_id(conn, &id)?.ok_or_else(|| StoreError::Corrupt("user vanished after insert".into()))
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], from_row).optional()?)
}

pub fn by_username(conn: &Connection, username: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([username], from_row).optional()?)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Saves the language a person chose with the page switch (a tag latchkey supports).
pub fn set_locale(conn: &Connection, id: &str, locale: &str) -> Result<()> {
    conn.execute("UPDATE users SET locale = ?2 WHERE id = ?1", params![id, locale])?;
    Ok(())
}

/// The language a person saved, if they chose one.
pub fn locale(conn: &Connection, id: &str) -> Result<Option<String>> {
    let locale = conn.query_row("SELECT locale FROM users WHERE id = ?1", [id], |r| r.get::<_, Option<String>>(0)).optional()?;
    Ok(locale.flatten())
}

/// The saved language of the person whose live session has `token`, if they chose one.
pub fn locale_by_session(conn: &Connection, token: &str, now: i64) -> Result<Option<String>> {
    let locale = conn
        .prepare_cached(
            "SELECT u.locale FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.ended_at IS NULL AND s.expires_at > ?2 AND u.disabled = 0",
        )?
        .query_row(params![crate::crypto::secret_hash(token), now], |r| r.get::<_, Option<String>>(0))
        .optional()?;
    Ok(locale.flatten())
}

/// Stores a new password hash and clears the "must change password" flag. `remediates`: the
/// change also clears user risk — only when the person proved a second factor in the same flow
/// or went through self-service reset, never with a password alone.
pub fn set_password(conn: &Connection, id: &str, password_hash: &str, now: i64, remediates: bool) -> Result<()> {
    conn.execute(
        "UPDATE users SET password_hash = ?2, must_change_password = 0, password_expires_at = NULL, password_changed_at = ?3,
             user_risk = CASE WHEN ?4 THEN 'none' ELSE user_risk END, updated_at = ?3 WHERE id = ?1",
        params![id, password_hash, now, remediates],
    )?;
    revoke_invites(conn, id)
}

/// An invitation link chooses a password: once the password is set otherwise (or the account
/// disabled), a link still lying in a mailbox must not choose another.
pub fn revoke_invites(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM invites WHERE user_id = ?1 AND used_at IS NULL", params![id])?;
    Ok(())
}

/// Sets a one-time password: it must be changed at the next sign-in and stops working at
/// `expires_at`.
pub fn set_one_time_password(conn: &Connection, id: &str, password_hash: &str, expires_at: i64, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET password_hash = ?2, must_change_password = 1, password_expires_at = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, password_hash, expires_at, now],
    )?;
    revoke_invites(conn, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user(name: &str) -> NewUser<'_> {
        NewUser { username: name, email: None, name: None, password_hash: "x", is_admin: false, must_change_password: false }
    }

    #[test]
    fn usernames_are_unique_regardless_of_case() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        insert(&conn, &new_user("Alice"), 1).unwrap();
        let err = insert(&conn, &new_user("alice"), 1).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert_eq!(by_username(&conn, "ALICE").unwrap().unwrap().username, "Alice");
    }
}

/// What the gate reads about one person, in one statement: the user row, their risk, when the
/// password last changed, groups, roles, which second factors they have, and the networks they
/// have signed in from. On PostgreSQL every statement is a round trip; this saves ten.
#[derive(Debug, Clone)]
pub struct Profile {
    pub user: User,
    pub user_risk: crate::policy::model::Risk,
    pub password_changed_at: Option<i64>,
    pub groups: Vec<String>,
    pub roles: Vec<crate::store::directory::Role>,
    pub totp: bool,
    pub keys: bool,
    pub networks: Vec<String>,
}

/// The columns a [`Profile`] is read from ([`profile_at`]), qualified by `users.` so that they
/// can follow a join (the refresh grant reads a person with their refresh token).
pub(crate) fn profile_columns() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let user: Vec<String> = COLUMNS.split(", ").map(|c| format!("users.{c}")).collect();
        format!(
            "{}, users.user_risk, users.password_changed_at,
               (SELECT group_concat(group_id, ' ') FROM group_members WHERE user_id = users.id),
               (SELECT group_concat(role, ' ') FROM user_roles WHERE user_id = users.id),
               EXISTS (SELECT 1 FROM totp_secrets WHERE user_id = users.id AND confirmed = 1),
               EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = users.id),
               (SELECT group_concat(network, ' ') FROM signin_history WHERE user_id = users.id)",
            user.join(", ")
        )
    })
}

/// The profile in the nineteen [`profile_columns`] starting at column `at`; None when they are
/// empty (an outer join found no user).
pub(crate) fn profile_at(r: &Row<'_>, at: usize) -> crate::store::db::Result<Option<Profile>> {
    if r.get::<_, Option<String>>(at)?.is_none() {
        return Ok(None);
    }
    let words = |s: Option<String>| s.map(|s| s.split(' ').filter(|w| !w.is_empty()).map(str::to_string).collect::<Vec<_>>()).unwrap_or_default();
    let mut roles: Vec<_> = words(r.get(at + 15)?).iter().filter_map(|s| crate::store::directory::Role::parse(s)).collect();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    Ok(Some(Profile {
        user: user_at(r, at)?,
        user_risk: r.get::<_, Option<String>>(at + 12)?.as_deref().and_then(crate::policy::model::Risk::parse).unwrap_or(crate::policy::model::Risk::None),
        password_changed_at: r.get(at + 13)?,
        groups: words(r.get(at + 14)?),
        roles,
        totp: r.get(at + 16)?,
        keys: r.get(at + 17)?,
        networks: words(r.get(at + 18)?),
    }))
}

pub fn profile(conn: &Connection, id: &str) -> Result<Option<Profile>> {
    let sql = format!("SELECT {} FROM users WHERE id = ?1", profile_columns());
    Ok(conn.prepare_cached(&sql)?.query_row([id], |r| profile_at(r, 0)).optional()?.flatten())
}
