//! Sign-in and audit rows as JSON objects, read after a cursor: what `log.events_file` receives.
//! Only committed rows are ever read, so a SIEM never sees an attempt that was rolled back.

use super::Result;
use crate::store::db::{Connection, OptionalExtension, Value};

/// The tables exported, with the `type` their lines carry.
pub const STREAMS: [(&str, &str); 2] = [("signin_log", "signin"), ("audit_log", "audit")];

/// Columns that hold JSON text: exported as JSON, not as a string of it.
const JSON_COLUMNS: [&str; 5] = ["methods", "context", "policies", "before", "after"];

fn cursor_key(table: &str) -> String {
    format!("events_cursor_{table}")
}

/// Where the export of `table` stands: the last id written out. The first time, the newest id:
/// an export starts with the events after it is turned on.
pub fn cursor(conn: &Connection, table: &str) -> Result<i64> {
    let saved: Option<String> = conn.query_row("SELECT value FROM settings WHERE key = ?1", [cursor_key(table)], |r| r.get(0)).optional()?;
    if let Some(id) = saved.and_then(|s| s.parse().ok()) {
        return Ok(id);
    }
    let newest: i64 = conn.query_row(&format!("SELECT coalesce(max(id), 0) FROM {table}"), [], |r| r.get(0))?;
    set_cursor(conn, table, newest)?;
    Ok(newest)
}

pub fn set_cursor(conn: &Connection, table: &str, id: i64) -> Result<()> {
    conn.execute(
        // Forward only: with several instances exporting, a slower one must not move it back.
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value
         WHERE CAST(settings.value AS BIGINT) < CAST(excluded.value AS BIGINT)",
        crate::store::db::params![cursor_key(table), id.to_string()],
    )?;
    Ok(())
}

/// How long a gap in ids may be an insert still to commit. On PostgreSQL ids are taken at insert,
/// so a slower transaction can commit a smaller id after a larger one is exported; a gap older
/// than this is an insert that rolled back.
const GAP_SECS: i64 = 10;

/// Up to `limit` rows of `table` after id `after`, oldest first, each a JSON object of its
/// columns plus `"type"`; and the id of the last one. Stops before a gap in ids younger than
/// [`GAP_SECS`] at `now`, so a row committed late is not skipped.
pub fn after(conn: &Connection, table: &str, kind: &str, after: i64, limit: i64, now: i64) -> Result<(Vec<serde_json::Value>, i64)> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2"))?;
    // The column names, read from the first row.
    let mut names: Option<Vec<String>> = None;
    let rows = stmt.query_map(crate::store::db::params![after, limit], |row| {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), kind.into());
        for (i, name) in names.get_or_insert_with(|| row.column_names()).iter().enumerate() {
            let value = match row.value(i)? {
                Value::Null => serde_json::Value::Null,
                Value::Integer(n) => n.into(),
                Value::Real(f) => f.into(),
                Value::Text(text) => match JSON_COLUMNS.contains(&name.as_str()) {
                    true => serde_json::from_str(&text).unwrap_or_else(|_| text.into()),
                    false => text.into(),
                },
                Value::Blob(_) => continue,
            };
            object.insert(name.clone(), value);
        }
        Ok((row.get::<_, i64>("id")?, row.get::<_, i64>("at")?, serde_json::Value::from(object)))
    })?;
    let (mut out, mut last) = (Vec::new(), after);
    for row in rows {
        let (id, at, object) = row?;
        if id != last + 1 && at > now - GAP_SECS {
            break;
        }
        last = id;
        out.push(object);
    }
    Ok((out, last))
}
