//! Paged reads of a group's members and an app's assignments (search, sort, a total), for the
//! group page and an app's "Users and groups" section.
//!
//! These belong in `store::directory` beside `users_page` and `groups_page` (the store is the
//! only code that writes SQL); they were written here while the store was being reworked on
//! another branch, and move there unchanged. Plain SQL that SQLite and PostgreSQL both run (the
//! store's connection translates `LIKE`, `ifnull` and `COLLATE NOCASE`).

use crate::admin::list::{Window, like};
use crate::store::Result;
use crate::store::db::{Connection, params};
use crate::store::directory::{Assignment, UserSummary};

const MEMBER_FILTER: &str = "m.group_id = ?1
     AND (u.username LIKE ?2 ESCAPE '\\' OR ifnull(u.name, '') LIKE ?2 ESCAPE '\\' OR ifnull(u.email, '') LIKE ?2 ESCAPE '\\' OR ?2 IS NULL)";

/// How many members of a group match `search` (username, name or e-mail).
pub fn count_members(conn: &Connection, group_id: &str, search: Option<&str>) -> Result<i64> {
    let pattern = search.map(like);
    let sql = format!("SELECT count(*) FROM group_members m JOIN users u ON u.id = m.user_id WHERE {MEMBER_FILTER}");
    Ok(conn.query_row(&sql, params![group_id, pattern], |r| r.get(0))?)
}

/// One page of a group's members; `window` comes from the list's allow-listed columns (over
/// `u.` columns).
pub fn members_page(conn: &Connection, group_id: &str, search: Option<&str>, window: &Window) -> Result<Vec<UserSummary>> {
    let pattern = search.map(like);
    let mut stmt = conn.prepare(&format!(
        "SELECT u.id, u.username, u.name, u.email, u.disabled FROM group_members m JOIN users u ON u.id = m.user_id WHERE {MEMBER_FILTER}{}",
        window.sql()
    ))?;
    let rows = stmt.query_map(params![group_id, pattern], |r| {
        Ok(UserSummary { id: r.get(0)?, username: r.get(1)?, name: r.get(2)?, email: r.get(3)?, disabled: r.get(4)? })
    })?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// What an assignment is shown as: the user's username or the group's name.
pub const ASSIGNED_LABEL: &str = "coalesce(u.username, g.name, a.principal_id)";

const ASSIGNMENT_FROM: &str = "FROM app_assignments a
     LEFT JOIN users u ON a.principal_type = 'user' AND u.id = a.principal_id
     LEFT JOIN groups g ON a.principal_type = 'group' AND g.id = a.principal_id
     WHERE a.client_id = ?1 AND (coalesce(u.username, g.name, a.principal_id) LIKE ?2 ESCAPE '\\' OR ?2 IS NULL)
       AND (a.principal_type = ?3 OR ?3 IS NULL)";

/// How many of an app's assignments match `search` (a username or group name) and `kind`
/// (`user`, `group`, or None for both).
pub fn count_assignments(conn: &Connection, client_id: &str, search: Option<&str>, kind: Option<&str>) -> Result<i64> {
    let pattern = search.map(like);
    Ok(conn.query_row(&format!("SELECT count(*) {ASSIGNMENT_FROM}"), params![client_id, pattern, kind], |r| r.get(0))?)
}

/// One page of an app's assignments; `window` sorts by `ASSIGNED_LABEL` or `a.` columns.
pub fn assignments_page(conn: &Connection, client_id: &str, search: Option<&str>, kind: Option<&str>, window: &Window) -> Result<Vec<Assignment>> {
    let pattern = search.map(like);
    let mut stmt = conn.prepare(&format!("SELECT a.principal_type, a.principal_id, {ASSIGNED_LABEL} {ASSIGNMENT_FROM}{}", window.sql()))?;
    let rows =
        stmt.query_map(params![client_id, pattern, kind], |r| Ok(Assignment { principal_type: r.get(0)?, principal_id: r.get(1)?, label: r.get(2)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}
