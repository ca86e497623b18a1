//! Durable attempt budgets: how many password resets and wrong codes an account and an IP may
//! spend, counted in the database independently of the rows they concern (a reset that ends
//! does not give its tries back). One budget per method per account, shared by sign-in and
//! reset, so a TOTP code cannot be guessed by alternating between them. A spent budget pauses
//! that kind of attempt, each pause twice as long as the one before.

use crate::store::db::Connection;
use crate::store::{self, StoreError, protection::Budget};

/// What is being attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Starting a password reset.
    Reset,
    /// A wrong authenticator-app code.
    Totp,
    /// A wrong recovery code.
    Recovery,
    /// A wrong e-mailed reset code.
    EmailCode,
    /// Any wrong code, counted per IP.
    Code,
    /// A reset code e-mailed to an account.
    EmailSend,
    /// Wrong passwords (smart lockout), from an unfamiliar network — for an account, or for a
    /// name that is no account, counted alike.
    Password,
    /// Wrong passwords from a network the person has used: counted apart, so an attacker
    /// elsewhere cannot lock the real person out.
    PasswordFamiliar,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Reset => "reset",
            Kind::Totp => "totp",
            Kind::Recovery => "recovery",
            Kind::EmailCode => "email_code",
            Kind::Code => "code",
            Kind::EmailSend => "email_send",
            Kind::Password => "password",
            Kind::PasswordFamiliar => "password_familiar",
        }
    }

    /// (attempts allowed per window, window seconds, first pause seconds)
    fn limit(self, subject: &Subject<'_>) -> (i64, i64, i64) {
        match (self, subject) {
            (Kind::EmailSend, _) => (10, 86_400, 86_400),
            (Kind::Reset | Kind::Code, Subject::Ip(_)) => (30, 900, 900),
            _ => (5, 900, 900),
        }
    }
}

/// Who spends.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    User(&'a str),
    /// A username that may not exist: counted the same way, so limits reveal nothing.
    Name(&'a str),
    Ip(&'a str),
}

impl Subject<'_> {
    fn key(&self) -> String {
        match self {
            Subject::User(id) => format!("user:{id}"),
            Subject::Name(n) => format!("name:{}", &crate::crypto::secret_hash(&n.to_lowercase())[..24]),
            // An IPv6 client counts as its /64: the addresses inside it cost an attacker nothing.
            Subject::Ip(ip) => format!("ip:{}", crate::auth::protection::client_key(ip)),
        }
    }
}

/// When `kind` is paused for `subject`, until when.
pub fn paused(conn: &Connection, subject: Subject<'_>, kind: Kind, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(store::protection::budget(conn, &subject.key(), kind.as_str())?.map(|b| b.paused_until).filter(|t| *t > now))
}

/// Spends one attempt; `Some(until)` when this one used up the budget and started a pause.
pub fn spend(conn: &Connection, subject: Subject<'_>, kind: Kind, now: i64) -> Result<Option<i64>, StoreError> {
    spend_with(conn, subject, kind, kind.limit(&subject), now)
}

/// `spend` with its own (allowed, window, first pause) limits. Read and written in one
/// IMMEDIATE transaction (unless the caller's is already open), so concurrent wrong codes cannot
/// each see the old count.
pub fn spend_with(conn: &Connection, subject: Subject<'_>, kind: Kind, limit: (i64, i64, i64), now: i64) -> Result<Option<i64>, StoreError> {
    if !conn.is_autocommit() {
        return spend_in(conn, subject, kind, limit, now);
    }
    let tx = crate::store::db::Transaction::new_unchecked(conn, crate::store::db::TransactionBehavior::Immediate)?;
    let out = spend_in(&tx, subject, kind, limit, now)?;
    tx.commit()?;
    Ok(out)
}

fn spend_in(conn: &Connection, subject: Subject<'_>, kind: Kind, limit: (i64, i64, i64), now: i64) -> Result<Option<i64>, StoreError> {
    let key = subject.key();
    let (allowed, window, pause) = limit;
    let mut b = store::protection::budget(conn, &key, kind.as_str())?.unwrap_or(Budget { window_start: now, ..Budget::default() });
    if now - b.window_start >= window {
        b.window_start = now;
        b.spent = 0;
    }
    // A day without a pause forgives the earlier ones.
    if b.pauses > 0 && now > b.paused_until + 86_400 {
        b.pauses = 0;
    }
    b.spent += 1;
    let mut started = None;
    if b.spent >= allowed {
        let until = now + pause.saturating_mul(1 << b.pauses.min(6));
        b.paused_until = until;
        b.pauses += 1;
        b.spent = 0;
        b.window_start = now;
        started = Some(until);
        metrics::counter!("latchkey_lockouts_total", "kind" => kind.as_str()).increment(1);
    }
    store::protection::put_budget(conn, &key, kind.as_str(), &b)?;
    Ok(started)
}

/// A success: the count in the current window starts again (pauses already earned still
/// make the next one longer).
pub fn forgive(conn: &Connection, subject: Subject<'_>, kind: Kind) -> Result<(), StoreError> {
    let key = subject.key();
    if let Some(mut b) = store::protection::budget(conn, &key, kind.as_str())? {
        b.spent = 0;
        store::protection::put_budget(conn, &key, kind.as_str(), &b)?;
    }
    Ok(())
}

/// Minutes until `until`, rounded up, for people.
pub fn minutes_until(until: i64, now: i64) -> i64 {
    ((until - now).max(1) + 59) / 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_pauses_when_spent_each_pause_longer_and_survives_the_rows_it_counted() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        let who = Subject::Name("alice");
        for i in 0..4 {
            assert_eq!(spend(&conn, who, Kind::Reset, i).unwrap(), None);
        }
        assert_eq!(spend(&conn, who, Kind::Reset, 4).unwrap(), Some(904));
        assert_eq!(paused(&conn, who, Kind::Reset, 500).unwrap(), Some(904));
        assert_eq!(paused(&conn, Subject::Name("ALICE"), Kind::Reset, 500).unwrap(), Some(904), "names count case-insensitively");
        assert_eq!(paused(&conn, who, Kind::Totp, 500).unwrap(), None, "one budget per kind");
        assert_eq!(paused(&conn, who, Kind::Reset, 904).unwrap(), None);
        for i in 0..4 {
            spend(&conn, who, Kind::Reset, 1000 + i).unwrap();
        }
        assert_eq!(spend(&conn, who, Kind::Reset, 1004).unwrap(), Some(1004 + 1800), "the second pause is twice as long");
        // Per IP the allowance is larger.
        for i in 0..29 {
            assert_eq!(spend(&conn, Subject::Ip("192.0.2.1"), Kind::Code, i).unwrap(), None);
        }
        assert!(spend(&conn, Subject::Ip("192.0.2.1"), Kind::Code, 29).unwrap().is_some());
        // An IPv6 client is its /64, whichever address inside it asks.
        for i in 0..29 {
            assert_eq!(spend(&conn, Subject::Ip(&format!("2001:db8:1:2::{i:x}")), Kind::Code, i).unwrap(), None);
        }
        assert!(spend(&conn, Subject::Ip("2001:db8:1:2:ffff::1"), Kind::Code, 29).unwrap().is_some());
        assert_eq!(paused(&conn, Subject::Ip("2001:db8:1:3::1"), Kind::Code, 29).unwrap(), None, "another /64");
    }
}
