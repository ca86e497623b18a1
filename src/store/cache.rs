//! In-memory copies of what every sign-in and grant reads but admins rarely change: apps,
//! conditional-access policies, named locations and the security-defaults switch. Each read
//! first compares the database's `config_version` token (one primary-key read), which triggers
//! replace in the same transaction as any change to those tables — so a change made by any
//! process, the console, the CLI or another instance, is seen by the next request, and a
//! change rolled back never is. Copies are kept per database file; an in-memory database (unit
//! tests) is always read directly.
//!
//! On SQLite the token is read once per connection checkout, and again after a write through
//! that connection or a change this process reports ([`changed`]).
//!
//! On PostgreSQL the token is a network round trip, so it is read at most every
//! [`PG_CHECK_MS`] per process (a change made through another instance is enforced within that,
//! well inside a second), and at once after this process changes one of those tables (the
//! connection reports such writes when they commit, on both engines: [`changed`]).
//!
//! A memory connection (`Connection::memory`, what a client-credentials grant first runs on,
//! on the HTTP worker) gets only a copy whose token was read within [`PG_CHECK_MS`] with no
//! change by this process since, on either engine; anything else it is refused, and the work
//! is done again on a real connection. So a change made by another process (the CLI, another
//! instance) reaches such a grant within [`PG_CHECK_MS`], and one made by this process at once.

use super::Result;
use super::clients::Client;
use super::policies::NamedLocation;
use crate::policy::model::Policy;
use crate::store::db::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Bumped by every local change ([`changed`]).
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long a PostgreSQL installation's copy is used before its token is read again (and how
/// long a memory connection may use any copy).
pub const PG_CHECK_MS: u64 = 250;

#[derive(Default)]
struct Copy {
    version: String,
    /// When the token was last read outside a transaction, None after a local change.
    checked: Option<std::time::Instant>,
    security_defaults: Option<bool>,
    policies: Option<Arc<Vec<Policy>>>,
    locations: Option<Arc<Vec<NamedLocation>>>,
    clients: HashMap<String, Arc<Client>>,
}

/// Copies by database file. Bounded by the number of databases a process opens (one, or one
/// per test server).
fn copies() -> &'static Mutex<HashMap<String, Copy>> {
    static COPIES: OnceLock<Mutex<HashMap<String, Copy>>> = OnceLock::new();
    COPIES.get_or_init(Default::default)
}

/// The most apps one copy keeps.
const MAX_CLIENTS: usize = 10_000;

/// What `get` finds in this database's current copy, else what `load` reads (and `keep` puts
/// in the copy). The copies' lock is never held while the database is read, and a memory
/// connection never waits for it: an HTTP worker must not wait behind a slow query.
fn with<T: Clone>(
    conn: &Connection,
    get: impl Fn(&Copy) -> Option<T>,
    load: impl FnOnce(&Connection) -> Result<T>,
    keep: impl FnOnce(&mut Copy, T),
) -> Result<T> {
    let Some(path) = conn.identity() else {
        return load(conn);
    };
    // A transaction that changed apps, policies or locations reads them as it left them (a
    // console's check before its change commits: on PostgreSQL the copy would not show it).
    if conn.wrote_config_in_transaction() {
        return load(conn);
    }
    let remote = conn.engine() == crate::store::db::Engine::Postgres;
    // Local changes since: a read that began before one must not mark its copy fresh.
    let generation = GENERATION.load(std::sync::atomic::Ordering::SeqCst);
    let current = |c: &Copy| c.checked.is_some_and(|t| t.elapsed().as_millis() < u128::from(PG_CHECK_MS));
    if conn.in_memory() {
        let all = match copies().try_lock() {
            Ok(all) => all,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Err(conn.not_in_memory().into()),
        };
        return all.get(&path).filter(|c| current(c)).and_then(get).ok_or_else(|| conn.not_in_memory().into());
    }
    if remote {
        let all = copies().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = all.get(&path).filter(|c| current(c)).and_then(&get) {
            return Ok(v);
        }
    }
    // When the token is read: a copy is current for PG_CHECK_MS from then, not from later.
    let read_at = std::time::Instant::now();
    let (version, read_now) = match conn.config_seen(generation) {
        Some(version) => (version, false),
        None => {
            let version: String = conn.prepare_cached("SELECT version FROM config_version WHERE id = 1")?.query_row([], |r| r.get(0))?;
            if !remote && conn.is_autocommit() {
                conn.saw_config(generation, &version);
            }
            (version, true)
        }
    };
    {
        let mut all = copies().lock().unwrap_or_else(|e| e.into_inner());
        let copy = all.entry(path.clone()).or_default();
        if copy.version != version {
            *copy = Copy { version: version.clone(), ..Copy::default() };
        }
        // Inside a transaction the token may be its own uncommitted change: never marked fresh.
        if read_now && conn.is_autocommit() && GENERATION.load(std::sync::atomic::Ordering::SeqCst) == generation {
            copy.checked = Some(read_at);
        }
        if let Some(v) = get(copy) {
            return Ok(v);
        }
    }
    let v = load(conn)?;
    // Kept only in the copy of the version it was read under.
    let mut all = copies().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(copy) = all.get_mut(&path).filter(|c| c.version == version) {
        keep(copy, v.clone());
    }
    Ok(v)
}

/// This process committed a change to apps, policies, named locations or settings of the
/// database `identity`: its copy is checked against the token at the next read.
pub fn changed(identity: &str) {
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if let Some(copy) = copies().lock().unwrap_or_else(|e| e.into_inner()).get_mut(identity) {
        copy.checked = None;
    }
}

pub fn security_defaults(conn: &Connection) -> Result<bool> {
    with(conn, |c| c.security_defaults, super::policies::security_defaults, |c, on| c.security_defaults = Some(on))
}

/// Every custom policy, as `store::policies::all` reads them.
pub fn policies(conn: &Connection) -> Result<Arc<Vec<Policy>>> {
    with(conn, |c| c.policies.clone(), |conn| Ok(Arc::new(super::policies::all(conn)?)), |c, all| c.policies = Some(all))
}

pub fn locations(conn: &Connection) -> Result<Arc<Vec<NamedLocation>>> {
    with(conn, |c| c.locations.clone(), |conn| Ok(Arc::new(super::policies::locations(conn)?)), |c, all| c.locations = Some(all))
}

/// The app `id`, as `store::clients::by_id` reads it.
pub fn client(conn: &Connection, id: &str) -> Result<Option<Arc<Client>>> {
    with(
        conn,
        |c| c.clients.get(id).cloned().map(Some),
        |conn| Ok(super::clients::by_id(conn, id)?.map(Arc::new)),
        |c, client| {
            // Unknown ids are never kept: guessing ids cannot grow the copy.
            if let Some(client) = client {
                if c.clients.len() >= MAX_CLIENTS {
                    c.clients.clear();
                }
                c.clients.insert(id.to_string(), client);
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_seen_by_the_next_checkout_and_a_rolled_back_one_never() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(dir.path()).unwrap();
        let mut conn = pool.get().unwrap();
        let before = security_defaults(&conn).unwrap();
        crate::store::policies::set_security_defaults(&conn, !before).unwrap();
        assert_eq!(security_defaults(&conn).unwrap(), !before, "seen at once");
        // Read inside a transaction that is then rolled back: the copy made from it is not reused.
        let tx = conn.transaction().unwrap();
        crate::store::policies::set_security_defaults(&tx, before).unwrap();
        assert_eq!(security_defaults(&tx).unwrap(), before);
        tx.rollback().unwrap();
        assert_eq!(security_defaults(&conn).unwrap(), !before);
        // Another connection (another process, in effect) changes it: one checkout (a request)
        // keeps the version it read, the next checkout sees the change.
        let other = rusqlite::Connection::open(dir.path().join("latchkey.db")).unwrap();
        other.execute("UPDATE settings SET value = ?1 WHERE key = 'security_defaults'", [if before { "on" } else { "off" }]).unwrap();
        assert_eq!(security_defaults(&conn).unwrap(), !before, "one checkout reads the token once");
        drop(conn);
        let conn = pool.get().unwrap();
        assert_eq!(security_defaults(&conn).unwrap(), before);
        // Unknown ids are answered, never kept: guessing cannot fill memory.
        assert!(client(&conn, "nope").unwrap().is_none());
        let path = conn.identity().unwrap();
        assert!(copies().lock().unwrap()[&path].clients.is_empty());
    }

    /// `GENERATION` is the process's: the tests that change a file's copies take turns.
    static TURN: Mutex<()> = Mutex::new(());

    #[test]
    fn a_memory_connection_answers_only_from_a_current_copy() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::store::open(dir.path()).unwrap();
        let of = pool.get().unwrap().memory_of().unwrap();
        let memory = || Connection::memory(&of);
        let grants = ["client_credentials".to_string()];
        let registration =
            crate::oidc::clients::Registration { name: "Batch", redirect_uris: &[], post_logout_redirect_uris: &[], grant_types: &grants, public: false };
        let app = crate::oidc::clients::register(&pool.get().unwrap(), &registration, 0).unwrap().client_id;
        // Nothing read since the app was made: refused, and the refusal remembered.
        let m = memory();
        assert!(matches!(client(&m, &app), Err(crate::store::StoreError::Db(crate::store::db::Error::NotInMemory))));
        assert!(m.needed_database());
        // Read through a real connection (a checkout of its own), then asked of a memory
        // connection at once: answered from the copy. Another test's change elsewhere in the
        // process, or a stall past PG_CHECK_MS, can make one round miss; a few rounds cannot all.
        let from_memory = || {
            (0..20).find_map(|_| {
                client(&pool.get().unwrap(), &app).unwrap();
                let m = memory();
                let found = client(&m, &app).ok().flatten();
                found.map(|c| (c, m))
            })
        };
        let (found, mut m) = from_memory().expect("answered from memory");
        assert!(found.enabled && !m.needed_database());
        // It touches no database: every statement and transaction is refused.
        assert!(m.execute("DELETE FROM clients", []).is_err() && m.transaction().is_err() && m.needed_database());
        assert!(client(&pool.get().unwrap(), &app).unwrap().is_some(), "nothing was deleted");
        // An app the copy does not hold is never guessed at.
        let m = memory();
        assert!(client(&m, "nope").is_err() && m.needed_database());
        // A change by this process: refused until read again, then the new value.
        from_memory().unwrap();
        crate::store::clients::set_enabled(&pool.get().unwrap(), &app, false).unwrap();
        let m = memory();
        assert!(client(&m, &app).is_err() && m.needed_database());
        assert!(!from_memory().unwrap().0.enabled);
        // A change by another process is not reported: the copy serves memory connections for
        // PG_CHECK_MS at most after its read, then is refused until read again.
        std::thread::sleep(std::time::Duration::from_millis(PG_CHECK_MS + 50));
        let m = memory();
        assert!(client(&m, &app).is_err() && m.needed_database());
    }
}
