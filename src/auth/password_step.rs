//! The first factor, shared by the sign-in page and the password grant: one way to check a
//! username and password, with smart lockout, the risk detectors and failure counting, so the
//! legacy grant is no softer target than the browser.

use super::{budget, protection};
use crate::AppState;
use crate::policy::Request;
use crate::policy::model::{Platform, Risk};
use crate::store::db::Connection;
use crate::store::{self, Lease, StoreError, users::User};

/// Longest username looked up; anything longer is refused before any work.
pub const MAX_USERNAME: usize = 256;
/// Longest password hashed, in bytes: the longest a password may be chosen (256 characters)
/// in UTF-8. Anything longer is refused before any work.
pub const MAX_PASSWORD: usize = 4 * super::password::MAX_LEN;

/// Why a password step failed. People see one message for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    UnknownUser,
    WrongPassword,
    Locked,
    Disabled,
    /// A one-time password past its 24 hours.
    Expired,
    /// A username or password longer than any valid one: nothing looked up, hashed or kept.
    TooLong,
}

impl Failure {
    /// The reason for the sign-in log.
    pub fn reason(self) -> &'static str {
        match self {
            Failure::UnknownUser => "unknown username",
            Failure::WrongPassword => "wrong password",
            Failure::Locked => "account locked (smart lockout)",
            Failure::Disabled => "account disabled",
            Failure::Expired => "one-time password expired",
            Failure::TooLong => "username or password too long (refused before any work)",
        }
    }

    /// The stored word, for counting.
    pub fn word(self) -> Option<&'static str> {
        (self == Failure::WrongPassword).then_some(store::signins::WRONG_PASSWORD)
    }
}

/// What a person is told while smart lockout holds their account (or the name they typed).
pub fn locked_message(until: i64, now: i64) -> String {
    let minutes = super::budget::minutes_until(until, now);
    format!("Too many attempts. Try again in {minutes} minute{}.", if minutes == 1 { "" } else { "s" })
}

pub struct PasswordStep {
    /// The user, when the password was right and the account usable.
    pub user: Option<User>,
    /// The account the username named, if any (for the log).
    pub user_id: Option<String>,
    pub failure: Option<Failure>,
    pub risk: Option<Risk>,
    pub reasons: Vec<String>,
    /// With `Failure::Locked`: when the lock ends.
    pub locked_until: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the password hashing pool is gone")]
    PoolGone,
}

/// Checks `password` for `username` from `request` at `now`, from a blocking thread
/// (`web::db_lease`, `web::offload`): it waits for the argon2id pool, with `conn` handed back
/// meanwhile, so it must not be called inside a transaction. A correct password during a
/// lockout gets the same answer as a wrong one.
pub fn check(state: &AppState, conn: &mut Lease, username: &str, password: &str, request: &Request, now: i64) -> Result<PasswordStep, StepError> {
    if username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD {
        // Anonymous input must not buy work or memory: no lookup, no hash, no counter.
        return Ok(PasswordStep { user: None, user_id: None, failure: Some(Failure::TooLong), risk: None, reasons: vec![], locked_until: None });
    }
    let user = match username.len() {
        1..=MAX_USERNAME => store::users::by_username(conn, username)?,
        _ => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let attempt = password.to_string();
    // The connection goes back to the pool while the hash waits its turn and runs.
    let verified = conn.without(|| state.passwords.run(move |h, mem| h.verify_with(&attempt, stored.as_deref(), mem)))?.map_err(|_| StepError::PoolGone)?;
    let conn: &Connection = conn;
    let platform = request.user_agent.as_deref().map(Platform::from_user_agent).unwrap_or(Platform::Other);
    let user_id = user.as_ref().map(|u| u.id.clone());
    let found = protection::assess(&state.protection, conn, user_id.as_deref(), request.ip.as_deref(), platform.as_str(), password, verified, now)?;
    // Smart lockout; a username that names no account has a counter of its own with the same
    // limits, so "Too many attempts" shows up for made-up names too.
    // Smart lockout, counted per kind of location for an account and per name for a name that
    // is no account, with the same budget either way (the same window, doubling and
    // forgiveness), so the answers never tell which names exist.
    let kind = if found.familiar { budget::Kind::PasswordFamiliar } else { budget::Kind::Password };
    let subject = match &user_id {
        Some(id) => Some(budget::Subject::User(id)),
        None if username.len() <= MAX_USERNAME => Some(budget::Subject::Name(username)),
        None => None,
    };
    let locked_until = match subject {
        Some(s) => budget::paused(conn, s, kind, now)?,
        None => None,
    };
    let locked = locked_until.is_some();
    let failure = match &user {
        None if locked => Some(Failure::Locked),
        None => Some(Failure::UnknownUser),
        Some(_) if locked => Some(Failure::Locked),
        Some(_) if !verified => Some(Failure::WrongPassword),
        Some(u) if u.disabled => Some(Failure::Disabled),
        Some(u) if u.password_expires_at.is_some_and(|t| t <= now) => Some(Failure::Expired),
        Some(_) => None,
    };
    match (failure, &user_id) {
        (Some(Failure::WrongPassword | Failure::UnknownUser), _) => {
            if username.len() <= MAX_USERNAME {
                state.protection.record_failure(conn, username, request.ip.as_deref(), password, now)?;
            }
            if let Some(s) = subject {
                let c = &state.protection.config;
                let locked = budget::spend_with(conn, s, kind, (c.lockout_threshold, 86_400, c.lockout_secs), now)?;
                if let (Some(until), Some(id)) = (locked, &user_id) {
                    let place = if found.familiar { "familiar" } else { "unfamiliar" };
                    let detail = format!("smart lockout from {place} networks for {} minutes", budget::minutes_until(until, now));
                    store::mfa::audit(conn, None, Some(id), "user_locked", Some(&detail), now)?;
                }
            }
        }
        (None, Some(id)) => {
            // A correct password starts the count again where it came from.
            budget::forgive(conn, budget::Subject::User(id), kind)?;
            if found.reasons.iter().any(|r| r.starts_with("leaked credentials")) {
                // A breached password in use: the account is at risk until it is remediated.
                store::policies::set_user_risk(conn, id, Risk::High)?;
                store::mfa::audit(conn, None, Some(id), "user_risk_raised", Some("leaked credentials"), now)?;
            }
        }
        _ => {}
    }
    Ok(PasswordStep { user: user.filter(|_| failure.is_none()), user_id, failure, risk: found.risk, reasons: found.reasons, locked_until })
}
