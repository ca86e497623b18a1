//! The directory an admin manages: users (listing, editing, disabling), groups and their
//! members, admin roles, app assignments, invitations, and the audit log's before/after.

use super::{Result, users::User};
use crate::store::db::{Connection, OptionalExtension, params};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    GlobalAdmin,
    AppAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::GlobalAdmin => "global_admin",
            Role::AppAdmin => "app_admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "global_admin" => Some(Role::GlobalAdmin),
            "app_admin" => Some(Role::AppAdmin),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::GlobalAdmin => "Global administrator",
            Role::AppAdmin => "Application administrator",
        }
    }
}

pub fn roles(conn: &Connection, user_id: &str) -> Result<Vec<Role>> {
    let mut stmt = conn.prepare_cached("SELECT role FROM user_roles WHERE user_id = ?1 ORDER BY role")?;
    let rows = stmt.query_map([user_id], |r| r.get::<_, String>(0))?;
    Ok(rows.filter_map(|r| r.ok().and_then(|s| Role::parse(&s))).collect())
}

/// Replaces a user's roles.
pub fn set_roles(conn: &Connection, user_id: &str, roles: &[Role]) -> Result<()> {
    conn.execute("DELETE FROM user_roles WHERE user_id = ?1", [user_id])?;
    for r in roles {
        conn.execute("INSERT INTO user_roles (user_id, role) VALUES (?1, ?2)", params![user_id, r.as_str()])?;
    }
    conn.execute("UPDATE users SET is_admin = ?2 WHERE id = ?1", params![user_id, roles.contains(&Role::GlobalAdmin)])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: String,
    pub username: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub disabled: bool,
}

pub fn users(conn: &Connection, search: Option<&str>) -> Result<Vec<UserSummary>> {
    let pattern = format!("%{}%", search.unwrap_or(""));
    let mut stmt = conn.prepare(
        "SELECT id, username, name, email, disabled FROM users
         WHERE username LIKE ?1 OR ifnull(name, '') LIKE ?1 OR ifnull(email, '') LIKE ?1
         ORDER BY username COLLATE NOCASE LIMIT 500",
    )?;
    let rows = stmt.query_map([pattern], |r| Ok(UserSummary { id: r.get(0)?, username: r.get(1)?, name: r.get(2)?, email: r.get(3)?, disabled: r.get(4)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

pub fn update_profile(conn: &Connection, id: &str, name: Option<&str>, email: Option<&str>, mfa_required: bool, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET name = ?2, email = ?3, email_verified = CASE WHEN email IS NOT DISTINCT FROM ?3 THEN email_verified ELSE 0 END,
             mfa_required = ?4, updated_at = ?5 WHERE id = ?1",
        params![id, name, email, mfa_required, now],
    )?;
    Ok(())
}

/// Disables (or re-enables) a user. Disabling ends every session and revokes every grant at
/// once, so their refresh and access tokens stop working immediately.
pub fn set_disabled(conn: &Connection, id: &str, disabled: bool, now: i64) -> Result<()> {
    conn.execute("UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1", params![id, disabled, now])?;
    if disabled {
        super::users::revoke_invites(conn, id)?;
        super::logout::sessions_ending(conn, id, None, now)?;
        conn.execute("UPDATE sessions SET ended_at = ?2 WHERE user_id = ?1 AND ended_at IS NULL", params![id, now])?;
        conn.execute("UPDATE grants SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL", params![id, now])?;
    }
    Ok(())
}

pub fn require_password_change(conn: &Connection, id: &str, now: i64) -> Result<()> {
    conn.execute("UPDATE users SET must_change_password = 1, updated_at = ?2 WHERE id = ?1", params![id, now])?;
    Ok(())
}

/// Removes every second factor of a user (they register again at next sign-in if required).
pub fn reset_mfa(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM totp_secrets WHERE user_id = ?1", [id])?;
    conn.execute("DELETE FROM webauthn_credentials WHERE user_id = ?1", [id])?;
    conn.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [id])?;
    Ok(())
}

/// Revokes every grant of an app (its refresh tokens and the access tokens under them).
pub fn revoke_client_grants(conn: &Connection, client_id: &str, now: i64) -> Result<()> {
    conn.execute("UPDATE grants SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL", params![client_id, now])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub members: i64,
}

pub fn groups(conn: &Connection) -> Result<Vec<Group>> {
    let mut stmt = conn.prepare(
        "SELECT g.id, g.name, g.description, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)
         FROM groups g ORDER BY g.name COLLATE NOCASE",
    )?;
    let rows = stmt.query_map([], |r| Ok(Group { id: r.get(0)?, name: r.get(1)?, description: r.get(2)?, members: r.get(3)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

pub fn group(conn: &Connection, id: &str) -> Result<Option<Group>> {
    Ok(conn
        .query_row(
            "SELECT g.id, g.name, g.description, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) FROM groups g WHERE g.id = ?1",
            [id],
            |r| Ok(Group { id: r.get(0)?, name: r.get(1)?, description: r.get(2)?, members: r.get(3)? }),
        )
        .optional()?)
}

pub fn group_by_name(conn: &Connection, name: &str) -> Result<Option<Group>> {
    let id: Option<String> = conn.query_row("SELECT id FROM groups WHERE name = ?1", [name], |r| r.get(0)).optional()?;
    match id {
        Some(id) => group(conn, &id),
        None => Ok(None),
    }
}

pub fn create_group(conn: &Connection, id: &str, name: &str, description: Option<&str>, now: i64) -> Result<()> {
    conn.execute_unique("INSERT INTO groups (id, name, description, created_at) VALUES (?1, ?2, ?3, ?4)", params![id, name, description, now])
        .map_err(|e| super::conflict_on_duplicate(e, || format!("a group named {name:?} already exists")))?;
    Ok(())
}

pub fn delete_group(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM app_assignments WHERE principal_type = 'group' AND principal_id = ?1", [id])?;
    conn.execute("DELETE FROM groups WHERE id = ?1", [id])?;
    Ok(())
}

pub fn members(conn: &Connection, group_id: &str) -> Result<Vec<UserSummary>> {
    let mut stmt = conn.prepare(
        "SELECT u.id, u.username, u.name, u.email, u.disabled FROM group_members m JOIN users u ON u.id = m.user_id
         WHERE m.group_id = ?1 ORDER BY u.username COLLATE NOCASE",
    )?;
    let rows =
        stmt.query_map([group_id], |r| Ok(UserSummary { id: r.get(0)?, username: r.get(1)?, name: r.get(2)?, email: r.get(3)?, disabled: r.get(4)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

pub fn add_member(conn: &Connection, group_id: &str, user_id: &str) -> Result<bool> {
    Ok(conn.execute("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)", params![group_id, user_id])? == 1)
}

pub fn remove_member(conn: &Connection, group_id: &str, user_id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2", params![group_id, user_id])? == 1)
}

/// The names of the groups a user is in (the `groups` claim).
pub fn group_names_of(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ?1 ORDER BY g.name")?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

#[derive(Debug, Clone)]
pub struct Assignment {
    pub principal_type: String,
    pub principal_id: String,
    pub label: String,
}

pub fn assignments(conn: &Connection, client_id: &str) -> Result<Vec<Assignment>> {
    let mut stmt = conn.prepare(
        "SELECT a.principal_type, a.principal_id, coalesce(u.username, g.name, a.principal_id) FROM app_assignments a
         LEFT JOIN users u ON a.principal_type = 'user' AND u.id = a.principal_id
         LEFT JOIN groups g ON a.principal_type = 'group' AND g.id = a.principal_id
         WHERE a.client_id = ?1 ORDER BY a.principal_type, 3",
    )?;
    let rows = stmt.query_map([client_id], |r| Ok(Assignment { principal_type: r.get(0)?, principal_id: r.get(1)?, label: r.get(2)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

pub fn assign(conn: &Connection, client_id: &str, principal_type: &str, principal_id: &str) -> Result<bool> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO app_assignments (client_id, principal_type, principal_id) VALUES (?1, ?2, ?3)",
        params![client_id, principal_type, principal_id],
    )? == 1)
}

pub fn unassign(conn: &Connection, client_id: &str, principal_type: &str, principal_id: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM app_assignments WHERE client_id = ?1 AND principal_type = ?2 AND principal_id = ?3",
        params![client_id, principal_type, principal_id],
    )? == 1)
}

/// Whether a user may use an app: assigned directly or through one of their groups.
pub fn is_assigned(conn: &Connection, client_id: &str, user_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM app_assignments WHERE client_id = ?1 AND (
                 (principal_type = 'user' AND principal_id = ?2) OR
                 (principal_type = 'group' AND principal_id IN (SELECT group_id FROM group_members WHERE user_id = ?2))))",
        )?
        .query_row(params![client_id, user_id], |r| r.get(0))?)
}

pub fn create_invite(conn: &Connection, token_hash: &str, user_id: &str, expires_at: i64) -> Result<()> {
    conn.execute("INSERT INTO invites (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)", params![token_hash, user_id, expires_at])?;
    Ok(())
}

/// The user an unused, unexpired invitation is for, unless that account is disabled.
pub fn invite(conn: &Connection, token_hash: &str, now: i64) -> Result<Option<User>> {
    let user_id: Option<String> = conn
        .query_row("SELECT user_id FROM invites WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2", params![token_hash, now], |r| r.get(0))
        .optional()?;
    match user_id {
        Some(id) => Ok(super::users::by_id(conn, &id)?.filter(|u| !u.disabled)),
        None => Ok(None),
    }
}

pub fn use_invite(conn: &Connection, token_hash: &str, now: i64) -> Result<bool> {
    Ok(conn.execute("UPDATE invites SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL", params![token_hash, now])? == 1)
}

/// An admin change: who, what, and the state before and after (JSON).
pub fn audit_change(conn: &Connection, actor: &str, action: &str, target: Option<&str>, before: Option<&str>, after: Option<&str>, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, actor_id, user_id, action, detail, before, after) VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6)",
        params![now, actor, action, target, before, after],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: Option<String>,
    pub action: String,
    pub detail: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

pub fn audit_log(conn: &Connection, limit: i64) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare(
        "SELECT a.at, u.username, a.action, a.detail, a.before, a.after FROM audit_log a
         LEFT JOIN users u ON u.id = a.actor_id ORDER BY a.id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(AuditEntry { at: r.get(0)?, actor: r.get(1)?, action: r.get(2)?, detail: r.get(3)?, before: r.get(4)?, after: r.get(5)? })
    })?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// One row a picker offers: id, the name shown, and a detail (display name, description).
#[derive(Debug, Clone)]
pub struct Pickable {
    pub id: String,
    pub label: String,
    pub detail: String,
}

/// Users whose username or display name (and, `with_email`, e-mail address) contains `q`, by
/// username: at most `limit`, and how many match in all. The detail shown is the display name,
/// or the address only `with_email`.
pub fn pick_users(conn: &Connection, q: &str, limit: i64, with_email: bool) -> Result<(Vec<Pickable>, i64)> {
    let pattern = crate::admin::list::like(q.trim());
    let filter = "(username LIKE ?1 ESCAPE '\\' OR ifnull(name, '') LIKE ?1 ESCAPE '\\' OR (?2 AND ifnull(email, '') LIKE ?1 ESCAPE '\\'))";
    let total: i64 = conn.query_row(&format!("SELECT count(*) FROM users WHERE {filter}"), params![pattern, with_email], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, username, coalesce(name, CASE WHEN ?2 THEN email END, '') FROM users WHERE {filter} ORDER BY username COLLATE NOCASE LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![pattern, with_email, limit], |r| Ok(Pickable { id: r.get(0)?, label: r.get(1)?, detail: r.get(2)? }))?;
    Ok((rows.collect::<crate::store::db::Result<_>>()?, total))
}

/// Groups whose name or description contains `q`, by name: at most `limit`, and the total.
pub fn pick_groups(conn: &Connection, q: &str, limit: i64) -> Result<(Vec<Pickable>, i64)> {
    let pattern = crate::admin::list::like(q.trim());
    let filter = "name LIKE ?1 ESCAPE '\\' OR ifnull(description, '') LIKE ?1 ESCAPE '\\'";
    let total: i64 = conn.query_row(&format!("SELECT count(*) FROM groups WHERE {filter}"), [&pattern], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!("SELECT id, name, ifnull(description, '') FROM groups WHERE {filter} ORDER BY name COLLATE NOCASE LIMIT ?2"))?;
    let rows = stmt.query_map(params![pattern, limit], |r| Ok(Pickable { id: r.get(0)?, label: r.get(1)?, detail: r.get(2)? }))?;
    Ok((rows.collect::<crate::store::db::Result<_>>()?, total))
}

/// The user with id `id`, as a picker shows it.
pub fn pickable_user(conn: &Connection, id: &str) -> Result<Option<Pickable>> {
    Ok(conn
        .query_row("SELECT id, username, ifnull(name, '') FROM users WHERE id = ?1", [id], |r| {
            Ok(Pickable { id: r.get(0)?, label: r.get(1)?, detail: r.get(2)? })
        })
        .optional()?)
}

/// The group with id `id`, as a picker shows it.
pub fn pickable_group(conn: &Connection, id: &str) -> Result<Option<Pickable>> {
    Ok(conn
        .query_row("SELECT id, name, ifnull(description, '') FROM groups WHERE id = ?1", [id], |r| {
            Ok(Pickable { id: r.get(0)?, label: r.get(1)?, detail: r.get(2)? })
        })
        .optional()?)
}

/// Which users a console list shows: a search over username, name and e-mail, and a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Any,
    Active,
    Disabled,
}

const USER_FILTER: &str = "(username LIKE ?1 ESCAPE '\\' OR ifnull(name, '') LIKE ?1 ESCAPE '\\' OR ifnull(email, '') LIKE ?1 ESCAPE '\\' OR ?1 IS NULL)
     AND (disabled = ?2 OR ?2 IS NULL)";

fn status_value(s: UserStatus) -> Option<bool> {
    match s {
        UserStatus::Any => None,
        UserStatus::Active => Some(false),
        UserStatus::Disabled => Some(true),
    }
}

pub fn count_users(conn: &Connection, search: Option<&str>, status: UserStatus) -> Result<i64> {
    let pattern = search.map(crate::admin::list::like);
    Ok(conn.query_row(&format!("SELECT count(*) FROM users WHERE {USER_FILTER}"), params![pattern, status_value(status)], |r| r.get(0))?)
}

/// One page of users; `window` is the list's ORDER BY / LIMIT (built from its allow-list).
pub fn users_page(conn: &Connection, search: Option<&str>, status: UserStatus, window: &crate::admin::list::Window) -> Result<Vec<UserSummary>> {
    let pattern = search.map(crate::admin::list::like);
    let mut stmt = conn.prepare(&format!("SELECT id, username, name, email, disabled FROM users WHERE {USER_FILTER}{}", window.sql()))?;
    let rows = stmt.query_map(params![pattern, status_value(status)], |r| {
        Ok(UserSummary { id: r.get(0)?, username: r.get(1)?, name: r.get(2)?, email: r.get(3)?, disabled: r.get(4)? })
    })?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

const GROUP_FILTER: &str = "(g.name LIKE ?1 ESCAPE '\\' OR ifnull(g.description, '') LIKE ?1 ESCAPE '\\' OR ?1 IS NULL)";

pub fn count_groups(conn: &Connection, search: Option<&str>) -> Result<i64> {
    let pattern = search.map(crate::admin::list::like);
    Ok(conn.query_row(&format!("SELECT count(*) FROM groups g WHERE {GROUP_FILTER}"), params![pattern], |r| r.get(0))?)
}

/// One page of groups with their member counts (`members` sorts by the count).
pub fn groups_page(conn: &Connection, search: Option<&str>, window: &crate::admin::list::Window) -> Result<Vec<Group>> {
    let pattern = search.map(crate::admin::list::like);
    let mut stmt = conn.prepare(&format!(
        "SELECT g.id, g.name, g.description, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) AS members
         FROM groups g WHERE {GROUP_FILTER}{}",
        window.sql()
    ))?;
    let rows = stmt.query_map(params![pattern], |r| Ok(Group { id: r.get(0)?, name: r.get(1)?, description: r.get(2)?, members: r.get(3)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// The apps a user or group is assigned to directly, by name.
pub fn assigned_apps(conn: &Connection, principal_type: &str, principal_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT c.name FROM app_assignments a JOIN clients c ON c.id = a.client_id
         WHERE a.principal_type = ?1 AND a.principal_id = ?2 ORDER BY c.name COLLATE NOCASE",
    )?;
    let rows = stmt.query_map(params![principal_type, principal_id], |r| r.get(0))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// The apps a user may reach because of an assignment (directly or through a group), by name.
pub fn apps_assigned_to_user(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT c.name FROM app_assignments a JOIN clients c ON c.id = a.client_id
         WHERE (a.principal_type = 'user' AND a.principal_id = ?1)
            OR (a.principal_type = 'group' AND a.principal_id IN (SELECT group_id FROM group_members WHERE user_id = ?1))
         GROUP BY c.name ORDER BY c.name COLLATE NOCASE",
    )?;
    let rows = stmt.query_map([user_id], |r| r.get(0))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// Deletes a user: their sessions, grants, methods, memberships, roles, consents and
/// invitations go with them (foreign keys cascade), and so do their direct app assignments.
/// Call `protection::end_everything` first so apps hear of the sessions ending.
pub fn delete_user(conn: &Connection, id: &str) -> Result<bool> {
    conn.execute("DELETE FROM app_assignments WHERE principal_type = 'user' AND principal_id = ?1", [id])?;
    Ok(conn.execute("DELETE FROM users WHERE id = ?1", [id])? == 1)
}

/// What the audit log is filtered by; every field optional.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// The actor's username (case-insensitive), or `cli`.
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Text in the object the change was made to (its name, or the user it concerned).
    pub object: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One audit log entry, with the names of who did it and whom it concerned.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    /// A user's id, `cli`, or None (latchkey itself).
    pub actor_id: Option<String>,
    /// The actor's username, when the actor is a user.
    pub actor: Option<String>,
    pub action: String,
    pub detail: Option<String>,
    /// The user the entry concerns, if any (sign-in method changes, lockouts).
    pub subject: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

const AUDIT_FROM: &str = "FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id LEFT JOIN users s ON s.id = a.user_id
     WHERE (u.username = ?1 COLLATE NOCASE OR a.actor_id = ?1 OR ?1 IS NULL)
       AND (a.action = ?2 OR ?2 IS NULL)
       AND (a.detail LIKE ?3 ESCAPE '\\' OR s.username LIKE ?3 ESCAPE '\\' OR ?3 IS NULL)
       AND (a.at >= ?4 OR ?4 IS NULL)
       AND (a.at < ?5 OR ?5 IS NULL)";

type AuditArgs<'a> = (Option<&'a str>, Option<&'a str>, Option<String>, Option<i64>, Option<i64>);

fn audit_params(f: &AuditFilter) -> AuditArgs<'_> {
    (f.actor.as_deref(), f.action.as_deref(), f.object.as_deref().map(crate::admin::list::like), f.from, f.to)
}

/// How many audit entries `f` matches.
pub fn audit_count(conn: &Connection, f: &AuditFilter) -> Result<i64> {
    Ok(conn.prepare_cached(&format!("SELECT count(*) {AUDIT_FROM}"))?.query_row(audit_params(f), |r| r.get(0))?)
}

/// The audit entries `f` matches, in the window (a page, or all of them for an export).
pub fn audit_page(conn: &Connection, f: &AuditFilter, window: &crate::admin::list::Window) -> Result<Vec<AuditRow>> {
    let mut stmt =
        conn.prepare(&format!("SELECT a.id, a.at, a.actor_id, u.username, a.action, a.detail, s.username, a.before, a.after {AUDIT_FROM}{}", window.sql()))?;
    let rows = stmt.query_map(audit_params(f), |r| {
        Ok(AuditRow {
            id: r.get(0)?,
            at: r.get(1)?,
            actor_id: r.get(2)?,
            actor: r.get(3)?,
            action: r.get(4)?,
            detail: r.get(5)?,
            subject: r.get(6)?,
            before: r.get(7)?,
            after: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

/// The actions the audit log holds, for a filter's choices.
pub fn audit_actions(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT action FROM audit_log ORDER BY action")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

// Paged reads of a group's members and an app's assignments (search, sort, a total), for the
// group page and an app's "Users and groups" section.

const MEMBER_FILTER: &str = "m.group_id = ?1
     AND (u.username LIKE ?2 ESCAPE '\\' OR ifnull(u.name, '') LIKE ?2 ESCAPE '\\' OR ifnull(u.email, '') LIKE ?2 ESCAPE '\\' OR ?2 IS NULL)";

/// How many members of a group match `search` (username, name or e-mail).
pub fn count_members(conn: &Connection, group_id: &str, search: Option<&str>) -> Result<i64> {
    let pattern = search.map(crate::admin::list::like);
    let sql = format!("SELECT count(*) FROM group_members m JOIN users u ON u.id = m.user_id WHERE {MEMBER_FILTER}");
    Ok(conn.query_row(&sql, params![group_id, pattern], |r| r.get(0))?)
}

/// One page of a group's members; `window` comes from the list's allow-listed columns (over
/// `u.` columns).
pub fn members_page(conn: &Connection, group_id: &str, search: Option<&str>, window: &crate::admin::list::Window) -> Result<Vec<UserSummary>> {
    let pattern = search.map(crate::admin::list::like);
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
    let pattern = search.map(crate::admin::list::like);
    Ok(conn.query_row(&format!("SELECT count(*) {ASSIGNMENT_FROM}"), params![client_id, pattern, kind], |r| r.get(0))?)
}

/// One page of an app's assignments; `window` sorts by `ASSIGNED_LABEL` or `a.` columns.
pub fn assignments_page(
    conn: &Connection,
    client_id: &str,
    search: Option<&str>,
    kind: Option<&str>,
    window: &crate::admin::list::Window,
) -> Result<Vec<Assignment>> {
    let pattern = search.map(crate::admin::list::like);
    let mut stmt = conn.prepare(&format!("SELECT a.principal_type, a.principal_id, {ASSIGNED_LABEL} {ASSIGNMENT_FROM}{}", window.sql()))?;
    let rows =
        stmt.query_map(params![client_id, pattern, kind], |r| Ok(Assignment { principal_type: r.get(0)?, principal_id: r.get(1)?, label: r.get(2)? }))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}
