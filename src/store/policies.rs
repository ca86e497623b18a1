//! Conditional-access policies, named locations, security defaults and risk inputs.

use super::{Result, StoreError, json_list, to_json};
use crate::policy::model::{Policy, Risk, State};
use crate::store::db::{Connection, OptionalExtension, params};

pub fn security_defaults(conn: &Connection) -> Result<bool> {
    let v: Option<String> = conn.prepare_cached("SELECT value FROM settings WHERE key = 'security_defaults'")?.query_row([], |r| r.get(0)).optional()?;
    Ok(v.as_deref() != Some("off"))
}

pub fn set_security_defaults(conn: &Connection, on: bool) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES ('security_defaults', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [if on { "on" } else { "off" }],
    )?;
    Ok(())
}

fn parse(id: String, state: String, definition: String) -> Result<Policy> {
    let mut p: Policy = serde_json::from_str(&definition).map_err(|e| StoreError::Corrupt(format!("policy {id}: {e}")))?;
    p.id = id;
    p.state = State::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("policy state {state}")))?;
    Ok(p)
}

pub fn all(conn: &Connection) -> Result<Vec<Policy>> {
    let mut stmt = conn.prepare_cached("SELECT id, state, definition FROM ca_policies ORDER BY name COLLATE NOCASE")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<crate::store::db::Result<Vec<_>>>()?;
    rows.into_iter().map(|(i, s, d)| parse(i, s, d)).collect()
}

pub fn by_id(conn: &Connection, id: &str) -> Result<Option<Policy>> {
    let row: Option<(String, String, String)> =
        conn.query_row("SELECT id, state, definition FROM ca_policies WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
    row.map(|(i, s, d)| parse(i, s, d)).transpose()
}

fn conflict(e: crate::store::db::Error, name: &str) -> StoreError {
    super::conflict_on_duplicate(e, || format!("a policy named {name:?} already exists"))
}

/// Inserts or replaces a policy (by id).
pub fn save(conn: &Connection, p: &Policy, now: i64) -> Result<()> {
    let definition = serde_json::to_string(p).expect("policy serialises");
    conn.execute_unique(
        "INSERT INTO ca_policies (id, name, state, definition, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, state = excluded.state, definition = excluded.definition,
             updated_at = excluded.updated_at",
        params![p.id, p.name, p.state.as_str(), definition, now],
    )
    .map_err(|e| conflict(e, &p.name))?;
    Ok(())
}

pub fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM ca_policies WHERE id = ?1", [id])? == 1)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NamedLocation {
    pub id: String,
    pub name: String,
    pub ranges: Vec<String>,
    pub trusted: bool,
    pub risk: Risk,
}

pub fn locations(conn: &Connection) -> Result<Vec<NamedLocation>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, ranges, trusted, risk FROM named_locations ORDER BY name COLLATE NOCASE")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?, r.get::<_, String>(4)?)))?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, name, ranges, trusted, risk)| {
            Ok(NamedLocation { id, name, ranges: json_list(&ranges)?, trusted, risk: Risk::parse(&risk).unwrap_or(Risk::None) })
        })
        .collect()
}

pub fn add_location(conn: &Connection, l: &NamedLocation, now: i64) -> Result<()> {
    conn.execute_unique(
        "INSERT INTO named_locations (id, name, ranges, trusted, risk, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![l.id, l.name, to_json(&l.ranges), l.trusted, l.risk.as_str(), now],
    )
    .map_err(|e| super::conflict_on_duplicate(e, || format!("a location named {:?} already exists", l.name)))?;
    Ok(())
}

pub fn delete_location(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM named_locations WHERE id = ?1", [id])? == 1)
}

pub fn user_risk(conn: &Connection, user_id: &str) -> Result<Risk> {
    let v: Option<String> = conn.prepare_cached("SELECT user_risk FROM users WHERE id = ?1")?.query_row([user_id], |r| r.get(0)).optional()?;
    Ok(v.as_deref().and_then(Risk::parse).unwrap_or(Risk::None))
}

pub fn set_user_risk(conn: &Connection, user_id: &str, risk: Risk) -> Result<()> {
    conn.execute("UPDATE users SET user_risk = ?2 WHERE id = ?1", params![user_id, risk.as_str()])?;
    Ok(())
}

/// When the user first signed in successfully (set once).
pub fn first_signin(conn: &Connection, user_id: &str, now: i64) -> Result<i64> {
    conn.execute("UPDATE users SET first_signin_at = ?2 WHERE id = ?1 AND first_signin_at IS NULL", params![user_id, now])?;
    Ok(conn.query_row("SELECT first_signin_at FROM users WHERE id = ?1", [user_id], |r| r.get(0))?)
}

pub fn password_changed_at(conn: &Connection, user_id: &str) -> Result<Option<i64>> {
    Ok(conn.query_row("SELECT password_changed_at FROM users WHERE id = ?1", [user_id], |r| r.get(0)).optional()?.flatten())
}

/// The evaluated contexts (JSON) of sign-ins logged since `since`, for impact previews.
pub fn logged_contexts(conn: &Connection, since: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT context FROM signin_log WHERE at >= ?1 AND context IS NOT NULL ORDER BY id")?;
    let rows = stmt.query_map([since], |r| r.get(0))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// Policies whose name contains `search` (and in `state`, if given): how many.
pub fn count(conn: &Connection, search: Option<&str>, state: Option<State>) -> Result<i64> {
    let pattern = search.map(crate::admin::list::like);
    Ok(conn.query_row(
        "SELECT count(*) FROM ca_policies WHERE (name LIKE ?1 ESCAPE '\\' OR ?1 IS NULL) AND (state = ?2 OR ?2 IS NULL)",
        params![pattern, state.map(State::as_str)],
        |r| r.get(0),
    )?)
}

/// One page of those policies; `window` is the list's ORDER BY / LIMIT (built from its allow-list).
pub fn page(conn: &Connection, search: Option<&str>, state: Option<State>, window: &crate::admin::list::Window) -> Result<Vec<Policy>> {
    let pattern = search.map(crate::admin::list::like);
    let mut stmt = conn.prepare(&format!(
        "SELECT id, state, definition FROM ca_policies WHERE (name LIKE ?1 ESCAPE '\\' OR ?1 IS NULL) AND (state = ?2 OR ?2 IS NULL){}",
        window.sql()
    ))?;
    let rows =
        stmt.query_map(params![pattern, state.map(State::as_str)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<crate::store::db::Result<Vec<_>>>()?;
    rows.into_iter().map(|(i, s, d)| parse(i, s, d)).collect()
}

const LOCATION_FILTER: &str = "(name LIKE ?1 ESCAPE '\\' OR ranges LIKE ?1 ESCAPE '\\' OR ?1 IS NULL)";

/// Named locations whose name or ranges contain `search`: how many.
pub fn count_locations(conn: &Connection, search: Option<&str>) -> Result<i64> {
    let pattern = search.map(crate::admin::list::like);
    Ok(conn.query_row(&format!("SELECT count(*) FROM named_locations WHERE {LOCATION_FILTER}"), params![pattern], |r| r.get(0))?)
}

/// One page of those named locations.
pub fn locations_page(conn: &Connection, search: Option<&str>, window: &crate::admin::list::Window) -> Result<Vec<NamedLocation>> {
    let pattern = search.map(crate::admin::list::like);
    let mut stmt = conn.prepare(&format!("SELECT id, name, ranges, trusted, risk FROM named_locations WHERE {LOCATION_FILTER}{}", window.sql()))?;
    let rows = stmt
        .query_map(params![pattern], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?, r.get::<_, String>(4)?))
        })?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, name, ranges, trusted, risk)| {
            Ok(NamedLocation { id, name, ranges: json_list(&ranges)?, trusted, risk: Risk::parse(&risk).unwrap_or(Risk::None) })
        })
        .collect()
}
