//! In-memory copies of what every sign-in and grant reads but admins rarely change: apps,
//! conditional-access policies, named locations and the security-defaults switch. Each read
//! first compares the database's `config_version` token (one primary-key read), which triggers
//! replace in the same transaction as any change to those tables — so a change made by any
//! process, the console, the CLI or another instance, is seen by the very next read, and a
//! change rolled back never is. Copies are kept per database file; an in-memory database (unit
//! tests) is always read directly.

use super::Result;
use super::clients::Client;
use super::policies::NamedLocation;
use crate::policy::model::Policy;
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Default)]
struct Copy {
    version: String,
    security_defaults: Option<bool>,
    policies: Option<Arc<Vec<Policy>>>,
    locations: Option<Arc<Vec<NamedLocation>>>,
    clients: HashMap<String, Option<Arc<Client>>>,
}

/// Copies by database file. Bounded by the number of databases a process opens (one, or one
/// per test server).
fn copies() -> &'static Mutex<HashMap<String, Copy>> {
    static COPIES: OnceLock<Mutex<HashMap<String, Copy>>> = OnceLock::new();
    COPIES.get_or_init(Default::default)
}

/// The most clients one copy keeps (unknown ids included, so guessing ids cannot grow it).
const MAX_CLIENTS: usize = 10_000;

/// Runs `get` on this database's current copy, after `load` fills the part it needs when missing.
fn with<T>(conn: &Connection, get: impl Fn(&mut Copy) -> Option<T>, load: impl FnOnce(&Connection, &mut Copy) -> Result<()>) -> Result<T> {
    let Some(path) = conn.path().filter(|p| !p.is_empty()).map(str::to_string) else {
        let mut fresh = Copy::default();
        load(conn, &mut fresh)?;
        return Ok(get(&mut fresh).expect("load fills what get reads"));
    };
    let version: String = conn.prepare_cached("SELECT version FROM config_version WHERE id = 1")?.query_row([], |r| r.get(0))?;
    let mut all = copies().lock().unwrap_or_else(|e| e.into_inner());
    let copy = all.entry(path).or_default();
    if copy.version != version {
        *copy = Copy { version, ..Copy::default() };
    }
    if let Some(v) = get(copy) {
        return Ok(v);
    }
    load(conn, copy)?;
    Ok(get(copy).expect("load fills what get reads"))
}

pub fn security_defaults(conn: &Connection) -> Result<bool> {
    with(
        conn,
        |c| c.security_defaults,
        |conn, c| {
            c.security_defaults = Some(super::policies::security_defaults(conn)?);
            Ok(())
        },
    )
}

/// Every custom policy, as `store::policies::all` reads them.
pub fn policies(conn: &Connection) -> Result<Arc<Vec<Policy>>> {
    with(
        conn,
        |c| c.policies.clone(),
        |conn, c| {
            c.policies = Some(Arc::new(super::policies::all(conn)?));
            Ok(())
        },
    )
}

pub fn locations(conn: &Connection) -> Result<Arc<Vec<NamedLocation>>> {
    with(
        conn,
        |c| c.locations.clone(),
        |conn, c| {
            c.locations = Some(Arc::new(super::policies::locations(conn)?));
            Ok(())
        },
    )
}

/// The app `id`, as `store::clients::by_id` reads it.
pub fn client(conn: &Connection, id: &str) -> Result<Option<Arc<Client>>> {
    with(
        conn,
        |c| c.clients.get(id).cloned(),
        |conn, c| {
            if c.clients.len() >= MAX_CLIENTS {
                c.clients.clear();
            }
            c.clients.insert(id.to_string(), super::clients::by_id(conn, id)?.map(Arc::new));
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_seen_by_the_next_read_and_a_rolled_back_one_never() {
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
        // Another connection (another process, in effect) changes it.
        let other = rusqlite::Connection::open(dir.path().join("latchkey.db")).unwrap();
        other.execute("UPDATE settings SET value = ?1 WHERE key = 'security_defaults'", [if before { "on" } else { "off" }]).unwrap();
        assert_eq!(security_defaults(&conn).unwrap(), before);
        assert!(client(&conn, "nope").unwrap().is_none());
    }
}
