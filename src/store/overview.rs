//! The console overview's numbers, aggregated in SQL: sign-ins per day, MFA registration
//! coverage, risky users and sign-ins, the policies that blocked most, failures by app.
//! Sign-in aggregates read the `signin_log_overview` covering index (migration 0017).

use super::Result;
use crate::store::db::{Connection, Engine, params};

/// One day's sign-ins by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Day {
    /// Days since 1970-01-01 in the zone the offset was given for.
    pub day: i64,
    /// Signed in with a password (or passkey) alone.
    pub success: i64,
    /// Signed in with a second factor.
    pub mfa: i64,
    /// Refused by a conditional-access policy.
    pub blocked: i64,
    /// Every other failure (wrong password, lockout, disabled…).
    pub failed: i64,
}

/// Sign-ins per day from day `first` to day `last` (days since 1970-01-01 in a zone `offset`
/// seconds from UTC), oldest first, every day present. One range query a day over the
/// covering index: a GROUP BY over the day would sort every row of the month first.
pub fn per_day(conn: &Connection, first: i64, last: i64, offset: i64) -> Result<Vec<Day>> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*) FILTER (WHERE result = 'success' AND coalesce(methods, '') NOT LIKE '%\"mfa\"%'),
                count(*) FILTER (WHERE result = 'success' AND methods LIKE '%\"mfa\"%'),
                count(*) FILTER (WHERE result <> 'success' AND blocked_by_policy = 1),
                count(*) FILTER (WHERE result <> 'success' AND blocked_by_policy = 0)
         FROM signin_log INDEXED BY signin_log_overview WHERE at >= ?1 AND at < ?2",
    )?;
    (first..=last)
        .map(|day| {
            let (from, to) = (day * 86_400 - offset, (day + 1) * 86_400 - offset);
            Ok(stmt.query_row(params![from, to], |r| Ok(Day { day, success: r.get(0)?, mfa: r.get(1)?, blocked: r.get(2)?, failed: r.get(3)? }))?)
        })
        .collect()
}

/// Failed sign-ins since `since`.
pub fn failures_since(conn: &Connection, since: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM signin_log INDEXED BY signin_log_overview WHERE at >= ?1 AND result = 'failure'")?
        .query_row([since], |r| r.get(0))?)
}

/// MFA registration among enabled users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub users: i64,
    /// With a confirmed authenticator app, a security key or a passkey.
    pub with_method: i64,
    /// Without one, still inside security defaults' grace (counted only while defaults are on).
    pub in_grace: i64,
    pub without: i64,
}

const HAS_METHOD: &str = "(EXISTS (SELECT 1 FROM totp_secrets t WHERE t.user_id = u.id AND t.confirmed = 1)
      OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id))";

/// Who may skip registration until when: defaults on, no method, and a first sign-in less than
/// `grace` seconds ago (or none yet: the grace starts at it).
const IN_GRACE: &str = "?1 = 1 AND (u.first_signin_at IS NULL OR u.first_signin_at + ?2 > ?3)";

pub fn coverage(conn: &Connection, defaults_on: bool, grace: i64, now: i64) -> Result<Coverage> {
    Ok(conn.query_row(
        &format!(
            "SELECT count(*), count(*) FILTER (WHERE m), count(*) FILTER (WHERE NOT m AND g), count(*) FILTER (WHERE NOT m AND NOT g)
             FROM (SELECT {HAS_METHOD} AS m, ({IN_GRACE}) AS g FROM users u WHERE u.disabled = 0) AS enabled_users"
        ),
        params![defaults_on, grace, now],
        |r| Ok(Coverage { users: r.get(0)?, with_method: r.get(1)?, in_grace: r.get(2)?, without: r.get(3)? }),
    )?)
}

/// A user in the grace period: id, username, and when it ends (None: not started yet).
pub fn in_grace(conn: &Connection, defaults_on: bool, grace: i64, now: i64, limit: i64) -> Result<Vec<(String, String, Option<i64>)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT u.id, u.username, u.first_signin_at + ?2 FROM users u
         WHERE u.disabled = 0 AND NOT {HAS_METHOD} AND {IN_GRACE}
         ORDER BY u.first_signin_at IS NULL, u.first_signin_at, u.username LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![defaults_on, grace, now, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// A user at risk: id, username, risk level.
pub type RiskyUser = (String, String, String);

/// Enabled users an admin or a detection marked at risk, highest first, and how many.
pub fn risky_users(conn: &Connection, limit: i64) -> Result<(Vec<RiskyUser>, i64)> {
    let filter = "disabled = 0 AND user_risk IN ('low', 'medium', 'high')";
    let total = conn.query_row(&format!("SELECT count(*) FROM users WHERE {filter}"), [], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, username, user_risk FROM users WHERE {filter}
         ORDER BY CASE user_risk WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, username COLLATE NOCASE LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok((rows.collect::<crate::store::db::Result<_>>()?, total))
}

/// A risky sign-in to review.
#[derive(Debug, Clone)]
pub struct RiskySignIn {
    pub id: i64,
    pub at: i64,
    pub username: Option<String>,
    pub app: Option<String>,
    pub risk: String,
    pub result: String,
}

/// Sign-ins since `since` whose sign-in risk was medium or high, newest first, and how many.
pub fn risky_signins(conn: &Connection, since: i64, limit: i64) -> Result<(Vec<RiskySignIn>, i64)> {
    let risk = conn.json_text("context", "sign_in_risk");
    let filter = format!("at >= ?1 AND context IS NOT NULL AND {risk} IN ('medium', 'high')");
    let total = conn.query_row(&format!("SELECT count(*) FROM signin_log WHERE {filter}"), [since], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, at, username, coalesce((SELECT c.name FROM clients c WHERE c.id = signin_log.client_id), client_id),
                {risk}, result
         FROM signin_log WHERE {filter} ORDER BY at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![since, limit], |r| {
        Ok(RiskySignIn { id: r.get(0)?, at: r.get(1)?, username: r.get(2)?, app: r.get(3)?, risk: r.get(4)?, result: r.get(5)? })
    })?;
    Ok((rows.collect::<crate::store::db::Result<_>>()?, total))
}

/// The policies that blocked sign-ins since `since`: (policy id, name, sign-ins blocked), most first.
pub fn top_blocking_policies(conn: &Connection, since: i64, limit: i64) -> Result<Vec<(String, String, i64)>> {
    // Each sign-in's policy results are a JSON list: one row per result.
    let mut stmt = conn.prepare(match conn.engine() {
        Engine::Sqlite => {
            "SELECT json_extract(p.value, '$.policy_id') AS pid, min(json_extract(p.value, '$.name')), count(*) AS n
             FROM signin_log s, json_each(s.policies) p
             WHERE s.at >= ?1 AND s.blocked_by_policy = 1
               AND json_extract(p.value, '$.applied') = 1 AND json_extract(p.value, '$.effect.effect') = 'block'
             GROUP BY pid ORDER BY n DESC, 2 LIMIT ?2"
        }
        Engine::Postgres => {
            "SELECT p.value ->> 'policy_id' AS pid, min(p.value ->> 'name'), count(*) AS n
             FROM signin_log s, jsonb_array_elements(s.policies::jsonb) p(value)
             WHERE s.at >= ?1 AND s.blocked_by_policy = 1
               AND p.value ->> 'applied' = 'true' AND p.value #>> '{effect,effect}' = 'block'
             GROUP BY pid ORDER BY n DESC, 2 LIMIT ?2"
        }
    })?;
    let rows = stmt.query_map(params![since, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// Failures of one app: its client id (None: latchkey itself), its name, how many.
pub type AppFailures = (Option<String>, Option<String>, i64);

/// Failed sign-ins since `since` per app, most first.
pub fn failures_by_app(conn: &Connection, since: i64, limit: i64) -> Result<Vec<AppFailures>> {
    let mut stmt = conn.prepare(
        "SELECT f.client_id, (SELECT c.name FROM clients c WHERE c.id = f.client_id), f.n FROM
           (SELECT client_id, count(*) AS n FROM signin_log INDEXED BY signin_log_overview
            WHERE at >= ?1 AND result <> 'success' GROUP BY client_id) f
         ORDER BY f.n DESC, 2 LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![since, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// How many apps, users and groups there are.
pub fn counts(conn: &Connection) -> Result<(i64, i64, i64)> {
    Ok(conn.query_row("SELECT (SELECT count(*) FROM clients), (SELECT count(*) FROM users), (SELECT count(*) FROM groups)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?)
}
