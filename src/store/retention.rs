//! Retention: what housekeeping deletes, and when. Nothing that can still change a decision
//! goes: a rotated refresh token stays as long as its family could be alive (its reuse must
//! still revoke the family), a grant stays while an access token signed for it could be
//! presented, and the logs stay for `log.retention_days`. Deletes run in small batches, each
//! its own short transaction, so sign-ins never wait long behind them.

use super::Result;
use crate::store::db::{Connection, params};

/// Rows deleted per statement: each batch holds the write lock for milliseconds.
const BATCH: i64 = 500;

/// How long past their end housekeeping keeps things that people or admins may still look at
/// (ended sessions on "My sessions", expired invitations on the user page).
const GRACE_SECS: i64 = 7 * 86_400;

/// What decides how long things live.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Sign-in and audit logs are kept this long.
    pub log_secs: i64,
    /// The longest an access or ID token lives: how long a grant outlives its family's end.
    pub token_secs: i64,
    /// The risk detectors' window: how long failed passwords count for the spray detector.
    pub window_secs: i64,
}

/// One table's deletions, for the metrics and the log.
pub type Deleted = Vec<(&'static str, usize)>;

/// Deletes `(table, WHERE …)` rows in batches until none are left; the condition may read `?1`
/// as now. Returns how many went.
fn purge(conn: &Connection, table: &str, condition: &str, now: i64) -> Result<usize> {
    // The row's physical address: SQLite's rowid, PostgreSQL's ctid.
    let row = match conn.engine() {
        crate::store::db::Engine::Sqlite => "rowid",
        crate::store::db::Engine::Postgres => "ctid",
    };
    let sql = format!("DELETE FROM {table} WHERE {row} IN (SELECT {row} FROM {table} WHERE {condition} LIMIT {BATCH})");
    let mut total = 0;
    loop {
        let mut stmt = conn.prepare_cached(&sql)?;
        let n = match condition.contains("?1") {
            false => stmt.execute([])?,
            true => stmt.execute(params![now])?,
        };
        total += n;
        if (n as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Runs every rule once at `now`; returns what each removed (tables with nothing removed are
/// left out).
pub fn run(conn: &Connection, r: Retention, now: i64) -> Result<Deleted> {
    let logs_before = now - r.log_secs;
    let grace = now - GRACE_SECS;
    let tokens = r.token_secs;
    // A family has ended when it is revoked, or when none of its tokens can be used any more
    // (none unrotated and unexpired). Once every access token minted from it has expired too,
    // the grant goes; its refresh tokens go first, in batches of their own (a long-lived family
    // rotated often has thousands).
    let ended = format!(
        "(revoked_at IS NOT NULL AND revoked_at < ?1 - {tokens})
         OR (revoked_at IS NULL AND created_at < ?1 - {tokens}
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.grant_id = grants.id AND t.expires_at >= ?1 - {tokens}))"
    );
    let window = r.window_secs;
    let rules: [(&'static str, String); 14] = [
        // The newest row of each log stays whatever its age: ids keep growing (they are what
        // the events export counts by), even after a quiet month empties the log.
        ("signin_log", format!("at < {logs_before} AND id < (SELECT max(id) FROM signin_log)")),
        ("audit_log", format!("at < {logs_before} AND id < (SELECT max(id) FROM audit_log)")),
        // Ended or expired a week ago: nothing can use them, "My sessions" no longer lists them.
        ("sessions", format!("CASE WHEN ended_at < expires_at THEN ended_at ELSE expires_at END < {grace}")),
        ("session_apps", "NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = session_apps.session_id)".into()),
        // A code is good for a minute; a day later a replay no longer needs detecting.
        ("authorization_codes", "expires_at < ?1 - 86400".into()),
        ("refresh_tokens", format!("grant_id IN (SELECT id FROM grants WHERE {ended} LIMIT {BATCH})")),
        ("grants", ended.clone()),
        ("revoked_access_tokens", "expires_at < ?1".into()),
        ("webauthn_ceremonies", "expires_at < ?1".into()),
        ("reset_requests", "expires_at < ?1".into()),
        ("email_confirmations", "expires_at < ?1".into()),
        ("invites", format!("expires_at < {grace}")),
        // A budget with no pause for a day and no attempt in its window (a day at most) counts
        // exactly like none: made-up names must not grow the table for ever.
        ("attempt_budgets", "paused_until < ?1 - 86400 AND window_start < ?1 - 86400".into()),
        // Outside the detectors' window a failed password no longer counts.
        ("password_failures", format!("at < ?1 - {window}")),
    ];
    let mut deleted = Vec::new();
    for (table, condition) in &rules {
        let n = purge(conn, table, condition, now)?;
        if n > 0 {
            deleted.push((*table, n));
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn old_logs_go_and_recent_ones_stay() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        for at in [0, 9 * DAY, 39 * DAY] {
            conn.execute("INSERT INTO signin_log (at, result) VALUES (?1, 'success')", [at]).unwrap();
            conn.execute("INSERT INTO audit_log (at, action) VALUES (?1, 'x')", [at]).unwrap();
        }
        let deleted = run(&conn, Retention { log_secs: 30 * DAY, token_secs: 600, window_secs: 3600 }, 40 * DAY).unwrap();
        assert_eq!(deleted, vec![("signin_log", 2), ("audit_log", 2)]);
        let left: i64 = conn.query_row("SELECT count(*) FROM signin_log", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn the_newest_log_row_stays_so_ids_keep_growing() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        for at in [0, DAY] {
            conn.execute("INSERT INTO signin_log (at, result) VALUES (?1, 'success')", [at]).unwrap();
        }
        run(&conn, Retention { log_secs: DAY, token_secs: 600, window_secs: 3600 }, 100 * DAY).unwrap();
        let ids: Vec<i64> = conn.prepare("SELECT id FROM signin_log").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(ids, [2]);
        let id: i64 = conn.query_row("INSERT INTO signin_log (at, result) VALUES (?1, 'success') RETURNING id", [100 * DAY], |r| r.get(0)).unwrap();
        assert_eq!(id, 3, "not 1 again: the events export counts by id");
    }

    #[test]
    fn attempt_budgets_go_once_they_count_like_none() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        let put = |subject: &str, window_start: i64, paused_until: i64| {
            conn.execute(
                "INSERT INTO attempt_budgets (subject, kind, window_start, spent, paused_until, pauses) VALUES (?1, 'password', ?2, 3, ?3, 1)",
                crate::store::db::params![subject, window_start, paused_until],
            )
            .unwrap();
        };
        put("name:stale", 0, 10);
        put("name:paused", 0, 5 * DAY);
        put("name:counting", 4 * DAY, 0);
        run(&conn, Retention { log_secs: 30 * DAY, token_secs: 600, window_secs: 3600 }, 5 * DAY).unwrap();
        let left: Vec<String> =
            conn.prepare("SELECT subject FROM attempt_budgets ORDER BY subject").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(left, ["name:counting", "name:paused"]);
    }

    #[test]
    fn batches_delete_everything_that_qualifies() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        for _ in 0..(BATCH * 2 + 7) {
            conn.execute("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (lower(hex(randomblob(8))), 5)", []).unwrap();
        }
        assert_eq!(purge(&conn, "revoked_access_tokens", "expires_at < ?1", 10).unwrap(), (BATCH * 2 + 7) as usize);
    }
}
