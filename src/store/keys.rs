use super::Result;
use crate::store::db::{Connection, Engine, params};

pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub private_pem: String,
    pub encrypted: bool,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// All keys, newest first.
pub fn all(conn: &Connection) -> Result<Vec<KeyRow>> {
    // Among keys made in the same second, the active one first, then (SQLite) the one inserted last.
    let mut stmt = conn.prepare_cached(match conn.engine() {
        Engine::Sqlite => "SELECT kid, alg, private_pem, encrypted, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, rowid DESC",
        Engine::Postgres => {
            "SELECT kid, alg, private_pem, encrypted, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, (retired_at IS NULL) DESC, kid"
        }
    })?;
    let rows = stmt.query_map([], |r| {
        Ok(KeyRow { kid: r.get(0)?, alg: r.get(1)?, private_pem: r.get(2)?, encrypted: r.get(3)?, created_at: r.get(4)?, retired_at: r.get(5)? })
    })?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// Makes `key` the active key: every other active key of its algorithm is retired now.
pub fn activate(conn: &mut Connection, key: &KeyRow) -> Result<()> {
    super::transaction(conn, |tx| {
        tx.execute("UPDATE signing_keys SET retired_at = ?2 WHERE alg = ?1 AND retired_at IS NULL", params![key.alg, key.created_at])?;
        tx.execute(
            "INSERT INTO signing_keys (kid, alg, private_pem, encrypted, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key.kid, key.alg, key.private_pem, key.encrypted, key.created_at],
        )?;
        Ok::<_, super::StoreError>(())
    })
}

/// Replaces a plaintext private key with its encrypted form (installations from before
/// encryption at rest).
pub fn encrypt(conn: &Connection, kid: &str, private_pem: &str) -> Result<()> {
    conn.execute("UPDATE signing_keys SET private_pem = ?2, encrypted = 1 WHERE kid = ?1 AND encrypted = 0", params![kid, private_pem])?;
    Ok(())
}
