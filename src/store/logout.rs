//! Single sign-out bookkeeping: which apps a session gave tokens to, and the back-channel
//! logout deliveries waiting for the worker.

use super::Result;
use crate::store::db::{Connection, OptionalExtension, params};

/// `client_id` received tokens in `session_id`.
pub fn record_app(conn: &Connection, session_id: &str, client_id: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO session_apps (session_id, client_id) VALUES (?1, ?2)")?.execute(params![session_id, client_id])?;
    Ok(())
}

/// Whether `client_id` received tokens in `session_id` (or in a session it carried on from).
pub fn used_in(conn: &Connection, session_id: &str, client_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM session_apps WHERE session_id = ?1 AND client_id = ?2")?
        .query_row(params![session_id, client_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Queues a logout token for every app with a back-channel logout URI that received tokens in
/// the live sessions matched by `filter` (SQL over `s`, the sessions table, with ?1 = now and
/// the given extra parameters). Called in the same statement batch that ends them.
fn enqueue(conn: &Connection, filter: &str, args: &[&dyn crate::store::db::ToSql]) -> Result<()> {
    let sql = format!(
        "INSERT INTO logout_deliveries (client_id, user_id, session_id, next_at, created_at)
         SELECT c.id, s.user_id, s.id, ?1, ?1
         FROM sessions s JOIN session_apps a ON a.session_id = s.id JOIN clients c ON c.id = a.client_id
         WHERE s.ended_at IS NULL AND c.backchannel_logout_uri IS NOT NULL AND c.enabled = 1 AND ({filter})"
    );
    conn.prepare_cached(&sql)?.execute(args)?;
    Ok(())
}

/// Before ending session `id`.
pub fn session_ending(conn: &Connection, id: &str, now: i64) -> Result<()> {
    enqueue(conn, "s.id = ?2", &[&now, &id])
}

/// Before ending every session of `user_id` but `keep`.
pub fn sessions_ending(conn: &Connection, user_id: &str, keep: Option<&str>, now: i64) -> Result<()> {
    enqueue(conn, "s.user_id = ?2 AND s.id IS DISTINCT FROM ?3", &[&now, &user_id, &keep])
}

/// One delivery to make.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub client_id: String,
    pub uri: String,
    pub session_required: bool,
    pub user_id: String,
    pub session_id: Option<String>,
    pub attempts: i64,
}

/// Takes up to `limit` due deliveries, leasing each for `lease` seconds so that another worker
/// (another instance) does not send it at the same time.
pub fn take_due(conn: &mut Connection, now: i64, lease: i64, limit: i64) -> Result<Vec<Delivery>> {
    super::transaction(conn, |tx| {
        let mut stmt = tx.prepare_cached(
            // At most three per app a round, so one app with a backlog does not crowd out the rest.
            "SELECT id, client_id, uri, session_required, user_id, session_id, attempts FROM (
                 SELECT d.id, d.client_id, c.backchannel_logout_uri AS uri, c.backchannel_logout_session_required AS session_required,
                        d.user_id, d.session_id, d.attempts, d.next_at,
                        row_number() OVER (PARTITION BY d.client_id ORDER BY d.next_at) AS turn
                 FROM logout_deliveries d JOIN clients c ON c.id = d.client_id
                 WHERE d.done_at IS NULL AND d.next_at <= ?1 AND c.backchannel_logout_uri IS NOT NULL) AS due
             WHERE turn <= 3 ORDER BY next_at LIMIT ?2",
        )?;
        let due: Vec<Delivery> = stmt
            .query_map(params![now, limit], |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    client_id: r.get(1)?,
                    uri: r.get(2)?,
                    session_required: r.get(3)?,
                    user_id: r.get(4)?,
                    session_id: r.get(5)?,
                    attempts: r.get(6)?,
                })
            })?
            .collect::<crate::store::db::Result<_>>()?;
        for d in &due {
            tx.execute("UPDATE logout_deliveries SET next_at = ?2 WHERE id = ?1", params![d.id, now + lease])?;
        }
        Ok::<_, super::StoreError>(due)
    })
}

/// Records an attempt: done (delivered, or given up) or to be retried at `retry_at`.
pub fn attempted(conn: &Connection, id: i64, result: &str, retry_at: Option<i64>, now: i64) -> Result<()> {
    match retry_at {
        Some(at) => conn.execute("UPDATE logout_deliveries SET attempts = attempts + 1, next_at = ?2, result = ?3 WHERE id = ?1", params![id, at, result])?,
        None => conn.execute("UPDATE logout_deliveries SET attempts = attempts + 1, done_at = ?2, result = ?3 WHERE id = ?1", params![id, now, result])?,
    };
    Ok(())
}

/// The state of one delivery: (attempts, done, result), for tests and the console.
pub fn delivery(conn: &Connection, id: i64) -> Result<Option<(i64, bool, Option<String>)>> {
    Ok(conn
        .query_row("SELECT attempts, done_at IS NOT NULL, result FROM logout_deliveries WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// The front-channel logout URIs of the apps that received tokens in `session_id`, as
/// (client id, URI).
pub fn frontchannel_targets(conn: &Connection, session_id: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.frontchannel_logout_uri FROM session_apps a JOIN clients c ON c.id = a.client_id
         WHERE a.session_id = ?1 AND c.frontchannel_logout_uri IS NOT NULL AND c.enabled = 1 ORDER BY c.name",
    )?;
    let rows = stmt.query_map([session_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// Deletes deliveries finished before `before`, and those of apps that no longer have a
/// back-channel logout URI (they can never be sent).
pub fn purge_done(conn: &Connection, before: i64) -> Result<usize> {
    let done = conn.execute("DELETE FROM logout_deliveries WHERE done_at IS NOT NULL AND done_at < ?1", [before])?;
    let orphaned =
        conn.execute("DELETE FROM logout_deliveries WHERE done_at IS NULL AND client_id IN (SELECT id FROM clients WHERE backchannel_logout_uri IS NULL)", [])?;
    Ok(done + orphaned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clients::{ClientSettings, insert};

    #[test]
    fn finished_deliveries_go_after_a_week_and_undeliverable_ones_at_once() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        let with_uri = ClientSettings { name: "A".into(), backchannel_logout_uri: Some("https://a.example.com/bc".into()), ..ClientSettings::default() };
        insert(&conn, "a", &with_uri, None, 0).unwrap();
        insert(&conn, "b", &ClientSettings { name: "B".into(), ..ClientSettings::default() }, None, 0).unwrap();
        let add = |client: &str, done: Option<i64>| {
            conn.execute("INSERT INTO logout_deliveries (client_id, user_id, next_at, created_at, done_at) VALUES (?1, 'u', 0, 0, ?2)", params![client, done])
                .unwrap();
        };
        add("a", Some(100)); // finished long ago
        add("a", Some(10_000)); // finished recently
        add("a", None); // still to send
        add("b", None); // its app has no URI any more
        assert_eq!(purge_done(&conn, 5_000).unwrap(), 2);
        let left: i64 = conn.query_row("SELECT count(*) FROM logout_deliveries", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 2);
    }
}
