//! Grants (token families), refresh tokens and revoked access tokens.

use super::{Result, json_list, to_json};
use crate::store::db::{Connection, OptionalExtension, params};
use crate::store::users::Profile;

#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub scope: String,
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
    pub revoked_at: Option<i64>,
    /// Obtained through the password grant: its refreshes are legacy authentication too.
    pub legacy: bool,
}

pub fn insert_grant(conn: &Connection, g: &Grant, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO grants (id, client_id, user_id, session_id, scope, auth_time, amr, created_at, client_app_type)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![g.id, g.client_id, g.user_id, g.session_id, g.scope, g.auth_time, to_json(&g.amr), now, if g.legacy { "legacy" } else { "browser" }],
    )?;
    Ok(())
}

const GRANT_COLUMNS: &str =
    "grants.id, grants.client_id, grants.user_id, grants.session_id, grants.scope, grants.auth_time, grants.amr, grants.revoked_at, grants.client_app_type";

/// A grant from the nine `GRANT_COLUMNS` starting at column `at`.
fn grant_at(r: &crate::store::db::Row<'_>, at: usize) -> crate::store::db::Result<Grant> {
    let amr: Option<String> = r.get(at + 6)?;
    Ok(Grant {
        id: r.get(at)?,
        client_id: r.get(at + 1)?,
        user_id: r.get(at + 2)?,
        session_id: r.get(at + 3)?,
        scope: r.get(at + 4)?,
        auth_time: r.get(at + 5)?,
        amr: amr.as_deref().map(json_list).transpose().map_err(|e| crate::store::db::Error::Column("amr".into(), e.to_string()))?.unwrap_or_default(),
        revoked_at: r.get(at + 7)?,
        legacy: r.get::<_, String>(at + 8)? == "legacy",
    })
}

pub fn grant(conn: &Connection, id: &str) -> Result<Option<Grant>> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.query_row([id], |r| grant_at(r, 0)).optional()?)
}

/// Revokes a grant: every refresh token and access token issued under it stops working.
#[tracing::instrument(skip(conn))]
pub fn revoke_grant(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.execute("UPDATE grants SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, now])?;
    Ok(())
}

pub fn insert_refresh(conn: &Connection, token_hash: &str, grant_id: &str, now: i64, expires_at: i64) -> Result<()> {
    conn.prepare_cached("INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![token_hash, grant_id, now, expires_at])?;
    Ok(())
}

pub struct RefreshToken {
    pub grant_id: String,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
}

/// A refresh token and its grant, in one statement.
pub fn refresh_and_grant(conn: &Connection, token_hash: &str) -> Result<Option<(RefreshToken, Grant)>> {
    let sql = format!(
        "SELECT refresh_tokens.grant_id, refresh_tokens.expires_at, refresh_tokens.rotated_at, {GRANT_COLUMNS}
         FROM refresh_tokens JOIN grants ON grants.id = refresh_tokens.grant_id WHERE refresh_tokens.token_hash = ?1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([token_hash], |r| Ok((RefreshToken { grant_id: r.get(0)?, expires_at: r.get(1)?, rotated_at: r.get(2)? }, grant_at(r, 3)?)))
        .optional()?)
}

/// [`refresh_and_grant`] with the grant's person (the gate's [`Profile`]) in the same statement:
/// on PostgreSQL every statement is a round trip, and a refresh asks the gate about the person.
pub fn refresh_grant_and_person(conn: &Connection, token_hash: &str) -> Result<Option<(RefreshToken, Grant, Option<Profile>)>> {
    let sql = format!(
        "SELECT refresh_tokens.grant_id, refresh_tokens.expires_at, refresh_tokens.rotated_at, {GRANT_COLUMNS}, {}
         FROM refresh_tokens JOIN grants ON grants.id = refresh_tokens.grant_id LEFT JOIN users ON users.id = grants.user_id
         WHERE refresh_tokens.token_hash = ?1",
        crate::store::users::profile_columns()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([token_hash], |r| {
            let token = RefreshToken { grant_id: r.get(0)?, expires_at: r.get(1)?, rotated_at: r.get(2)? };
            Ok((token, grant_at(r, 3)?, crate::store::users::profile_at(r, 12)?))
        })
        .optional()?)
}

/// Spends refresh token `spent` and stores `next` in its place, in the same family and with
/// the same end; false (and nothing stored) if `spent` was already rotated (a concurrent use).
/// One statement on PostgreSQL (a round trip saved), two on SQLite, which has no UPDATE in a
/// WITH clause.
pub fn rotate_refresh(conn: &Connection, spent: &str, next: &str, grant_id: &str, now: i64, expires_at: i64) -> Result<bool> {
    match conn.engine() {
        crate::store::db::Engine::Postgres => {
            let n = conn
                .prepare_cached(
                    "WITH spent AS (UPDATE refresh_tokens SET rotated_at = ?3 WHERE token_hash = ?1 AND rotated_at IS NULL RETURNING grant_id)
                     INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) SELECT ?2, grant_id, ?3, ?4 FROM spent",
                )?
                .execute(params![spent, next, now, expires_at])?;
            Ok(n == 1)
        }
        crate::store::db::Engine::Sqlite => {
            if !mark_rotated(conn, spent, now)? {
                return Ok(false);
            }
            insert_refresh(conn, next, grant_id, now, expires_at)?;
            Ok(true)
        }
    }
}

/// Marks a refresh token used; false if it was already rotated (a concurrent use).
fn mark_rotated(conn: &Connection, token_hash: &str, now: i64) -> Result<bool> {
    let n = conn.prepare_cached("UPDATE refresh_tokens SET rotated_at = ?2 WHERE token_hash = ?1 AND rotated_at IS NULL")?.execute(params![token_hash, now])?;
    Ok(n == 1)
}

pub fn revoke_access_token(conn: &Connection, jti: &str, expires_at: i64, now: i64) -> Result<()> {
    conn.execute("INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) VALUES (?1, ?2)", params![jti, expires_at])?;
    conn.execute("DELETE FROM revoked_access_tokens WHERE expires_at < ?1", [now])?;
    Ok(())
}

/// Whether an access token is dead: revoked itself, or its grant revoked or gone.
pub fn access_token_revoked(conn: &Connection, jti: &str, grant_id: Option<&str>) -> Result<bool> {
    let revoked: bool = conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM revoked_access_tokens WHERE jti = ?1)
                 OR (NOT EXISTS(SELECT 1 FROM grants WHERE id = ?2 AND revoked_at IS NULL) AND ?2 IS NOT NULL)",
        )?
        .query_row(params![jti, grant_id], |r| r.get(0))?;
    Ok(revoked)
}

/// An app holding a live refresh token for a person: one row per app, over all its grants.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub client_id: String,
    pub name: String,
    /// When its oldest live grant was made.
    pub since: i64,
    /// When it last received a refresh token.
    pub last_refreshed_at: i64,
    /// Every scope its live grants hold.
    pub scopes: Vec<String>,
}

/// The apps that hold a live, unrevoked grant with an unspent, unexpired refresh token of
/// `user_id`, by name.
pub fn connected_apps(conn: &Connection, user_id: &str, now: i64) -> Result<Vec<ConnectedApp>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.client_id, c.name, min(g.created_at), max(r.created_at), group_concat(g.scope, ' ')
         FROM grants g JOIN clients c ON c.id = g.client_id JOIN refresh_tokens r ON r.grant_id = g.id
         WHERE g.user_id = ?1 AND g.revoked_at IS NULL AND r.rotated_at IS NULL AND r.expires_at > ?2
         GROUP BY g.client_id, c.name ORDER BY c.name COLLATE NOCASE",
    )?;
    let rows = stmt.query_map(params![user_id, now], |r| {
        let scopes: String = r.get(4)?;
        let mut scopes: Vec<String> = scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        scopes.sort();
        scopes.dedup();
        Ok(ConnectedApp { client_id: r.get(0)?, name: r.get(1)?, since: r.get(2)?, last_refreshed_at: r.get(3)?, scopes })
    })?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// Revokes every live grant `user_id` gave `client_id` (their refresh and access tokens stop
/// working); returns how many, 0 when the app holds none of theirs.
#[tracing::instrument(skip(conn))]
pub fn revoke_app(conn: &Connection, user_id: &str, client_id: &str, now: i64) -> Result<usize> {
    Ok(conn.execute("UPDATE grants SET revoked_at = ?3 WHERE user_id = ?1 AND client_id = ?2 AND revoked_at IS NULL", params![user_id, client_id, now])?)
}
