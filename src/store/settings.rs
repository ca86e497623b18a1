//! Installation-wide values kept in the `settings` table.

use super::Result;
use crate::store::db::{Connection, OptionalExtension, params};

/// The issuer the running server serves (`serve` records it at start), so that commands run
/// beside it print what apps must be configured with, not the configuration's default.
pub fn served_issuer(conn: &Connection) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM settings WHERE key = 'served_issuer'", [], |r| r.get(0)).optional()?)
}

pub fn set_served_issuer(conn: &Connection, issuer: &str) -> Result<()> {
    conn.execute("INSERT INTO settings (key, value) VALUES ('served_issuer', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", params![issuer])?;
    Ok(())
}
