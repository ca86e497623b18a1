//! `latchkey store copy`: moves an installation from its SQLite file to PostgreSQL — users,
//! methods, apps, secrets, keys, policies, locations, sessions, logs, every table — in one
//! transaction, checking each table's row count before it commits. A target that already holds
//! an installation is refused.

use super::db::{Connection, Value, params_from_iter};
use super::{MIGRATION_COUNT, Pool, Result, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Tables the target's migrations fill (the defaults a new installation starts with): replaced
/// by the source's rows.
const SEEDED: [&str; 1] = ["settings"];
/// Tables not copied: the configuration-change token is the target's own.
const SKIPPED: [&str; 1] = ["config_version"];
/// Tables with identity ids, whose sequences continue after the copied rows.
const IDENTITIES: [&str; 3] = ["signin_log", "audit_log", "logout_deliveries"];

/// One copied table and its row count.
pub type Copied = Vec<(String, i64)>;

/// Copies the SQLite database `from` into the PostgreSQL database behind `to` (already migrated
/// to the latest schema). The source must be at the latest schema too (start this latchkey on
/// it once), and should not be served meanwhile.
pub fn copy(from: &Path, to: &Pool) -> Result<Copied> {
    let source = rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let version: i64 = source.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != MIGRATION_COUNT as i64 {
        return Err(StoreError::Conflict(format!(
            "{} has schema version {version}, this latchkey's is {MIGRATION_COUNT}: start this latchkey on it once first",
            from.display()
        )));
    }
    let mut target = to.get()?;
    if target.sqlite().is_some() {
        return Err(StoreError::Conflict("the target must be a PostgreSQL database (postgres://…)".into()));
    }
    let tables = ordered_tables(&source)?;
    for table in &tables {
        let n: i64 = target.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0))?;
        if n > 0 && !SEEDED.contains(&table.as_str()) {
            return Err(StoreError::Conflict(format!("the target database is not empty (table {table} has {n} rows); copy into a new database")));
        }
    }
    // Read in one transaction, so every table comes from the same moment.
    source.execute_batch("BEGIN")?;
    let copied = super::transaction(&mut target, |tx| {
        for table in tables.iter().rev().filter(|t| SEEDED.contains(&t.as_str())) {
            tx.execute(&format!("DELETE FROM \"{table}\""), [])?;
        }
        let mut copied = Vec::new();
        for table in &tables {
            let rows = copy_table(&source, tx, table)?;
            let landed: i64 = tx.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0))?;
            if landed != rows {
                return Err(StoreError::Corrupt(format!("table {table}: {rows} rows read but {landed} in the target; nothing was copied")));
            }
            copied.push((table.clone(), rows));
        }
        for table in IDENTITIES.iter().filter(|t| tables.iter().any(|x| x == *t)) {
            tx.query_row(&format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM \"{table}\""), [], |_| Ok(()))?;
        }
        Ok::<_, StoreError>(copied)
    })?;
    source.execute_batch("COMMIT")?;
    Ok(copied)
}

fn copy_table(source: &rusqlite::Connection, target: &Connection, table: &str) -> Result<i64> {
    let mut read = source.prepare(&format!("SELECT * FROM \"{table}\""))?;
    let columns: Vec<String> = read.column_names().into_iter().map(|c| format!("\"{c}\"")).collect();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let insert = format!("INSERT INTO \"{table}\" ({}) VALUES ({})", columns.join(", "), placeholders.join(", "));
    let mut rows = read.query([])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let values: Vec<Value> = (0..columns.len()).map(|i| row.get_ref(i).map(super::db::owned)).collect::<rusqlite::Result<_>>()?;
        target.execute(&insert, params_from_iter(values))?;
        n += 1;
    }
    Ok(n)
}

/// The source's tables, each after the tables its foreign keys point to.
fn ordered_tables(source: &rusqlite::Connection) -> Result<Vec<String>> {
    let names: Vec<String> = source
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut needs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in names.iter().filter(|n| !SKIPPED.contains(&n.as_str())) {
        let parents: BTreeSet<String> = source
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<BTreeSet<String>>>()?
            .into_iter()
            .filter(|p| p != name)
            .collect();
        needs.insert(name.clone(), parents);
    }
    let mut ordered = Vec::new();
    while !needs.is_empty() {
        let ready: Vec<String> = needs.iter().filter(|(_, p)| p.iter().all(|p| !needs.contains_key(p))).map(|(t, _)| t.clone()).collect();
        if ready.is_empty() {
            return Err(StoreError::Corrupt("the source's foreign keys form a cycle".into()));
        }
        for t in ready {
            needs.remove(&t);
            ordered.push(t);
        }
    }
    Ok(ordered)
}
