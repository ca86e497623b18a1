//! Creating accounts: the rules a username and a password must meet.

use super::password::{PasswordHasher, check_rules};
use crate::store::db::Connection;
use crate::store::{
    self, StoreError,
    users::{NewUser, User},
};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the username must be 1 to 64 characters with no spaces or control characters")]
    Username,
    #[error("the password is not acceptable: {0}")]
    Password(#[from] super::password::PasswordRuleError),
    #[error("the e-mail address {0:?} is not valid")]
    Email(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            other => Self::Store(other),
        }
    }
}

pub struct NewAccount<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub is_admin: bool,
    pub must_change_password: bool,
}

/// A plausible e-mail address (local@domain.tld, no spaces, ≤ 254 characters) that lettre can
/// send to; deliverability is proven by a code where it matters.
pub fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !e.contains(char::is_whitespace)
        && e.parse::<lettre::Address>().is_ok()
}

pub fn check_username(u: &str) -> Result<(), UserError> {
    let n = u.chars().count();
    if n == 0 || n > 64 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UserError::Username);
    }
    Ok(())
}

pub fn create(conn: &Connection, hasher: &PasswordHasher, a: &NewAccount<'_>, now: i64) -> Result<User, UserError> {
    check_rules(a.password)?;
    let hash = hasher.hash(a.password);
    create_hashed(conn, a, &hash, now)
}

/// `create` with the password already hashed (the server hashes on its pool, off the workers).
pub fn create_hashed(conn: &Connection, a: &NewAccount<'_>, hash: &str, now: i64) -> Result<User, UserError> {
    check_username(a.username)?;
    check_rules(a.password)?;
    if let Some(e) = a.email
        && !valid_email(e)
    {
        return Err(UserError::Email(e.to_string()));
    }
    if store::users::by_username(conn, a.username)?.is_some() {
        return Err(UserError::Conflict(format!("a user named {:?} already exists", a.username)));
    }
    let new =
        NewUser { username: a.username, email: a.email, name: a.name, password_hash: hash, is_admin: a.is_admin, must_change_password: a.must_change_password };
    let user = store::users::insert(conn, &new, now)?;
    if a.is_admin {
        store::directory::set_roles(conn, &user.id, &[store::directory::Role::GlobalAdmin])?;
    }
    Ok(user)
}

/// On first start, creates the first administrator with a random one-time password that
/// must be changed at first sign-in. Returns the password to print, once.
pub fn bootstrap_admin(conn: &Connection, hasher: &PasswordHasher, now: i64) -> Result<Option<String>, UserError> {
    if store::users::count(conn)? > 0 {
        return Ok(None);
    }
    let password = crate::crypto::random_token()[..20].to_string();
    let account = NewAccount { username: "admin", password: &password, email: None, name: Some("Administrator"), is_admin: true, must_change_password: true };
    let user = create(conn, hasher, &account, now)?;
    store::users::set_one_time_password(conn, &user.id, &user.password_hash, now + ONE_TIME_PASSWORD_SECS, now)?;
    Ok(Some(password))
}

/// How long a printed one-time password works.
pub const ONE_TIME_PASSWORD_SECS: i64 = 86_400;

/// A new one-time password for `username` (an administrator locked out of their account): it
/// must be changed at the next sign-in, expires after 24 hours, and every session and token of
/// the user ends. Returns the password to print, once.
pub fn reset_password(conn: &Connection, hasher: &PasswordHasher, username: &str, now: i64) -> Result<String, UserError> {
    let user = store::users::by_username(conn, username)?.ok_or_else(|| UserError::Conflict(format!("no user named {username:?}")))?;
    let password = crate::crypto::random_token()[..20].to_string();
    let hash = hasher.hash(&password);
    store::users::set_one_time_password(conn, &user.id, &hash, now + ONE_TIME_PASSWORD_SECS, now)?;
    store::protection::end_everything(conn, &user.id, now)?;
    store::mfa::audit(conn, None, Some(&user.id), "one_time_password_set", Some("latchkey user reset-password"), now)?;
    Ok(password)
}
