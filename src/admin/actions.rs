//! Admin writes with rules, as plain functions over a connection: each runs in one IMMEDIATE
//! transaction with its audit record (before and after), so whoever calls it — the `latchkey`
//! command today, console handlers as they adopt it — changes the directory the same way and
//! leaves the same trail. `actor` is the audit log's actor: a user id, or `cli`.
//!
//! They mirror what the console's handlers do (same store functions, same audit actions and
//! snapshots): disabling a user ends their sessions and tokens, disabling an app revokes its
//! grants, a policy cannot be switched on while security defaults are on, deleting a group or a
//! user takes it out of the policies that name it.

use crate::auth::mfa::new_id;
use crate::crypto::{random_token, secret_hash};
use crate::policy::model::{Policy, State};
use crate::store::db::Connection;
use crate::store::{self, StoreError, clients::Client, directory as dir, users::User};

/// Why an action was refused (a message for the person who asked).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, ActionError>;

/// The console's words for a policy switched on under security defaults.
pub const DEFAULTS_ON: &str = "security defaults are on; security defaults and conditional-access policies are mutually exclusive: turn security defaults off before switching a policy on (report-only and off are allowed)";

/// A user as the audit log records them (the console's snapshot).
pub fn user_snapshot(conn: &Connection, u: &User) -> std::result::Result<String, StoreError> {
    let roles: Vec<&str> = dir::roles(conn, &u.id)?.iter().map(|r| r.as_str()).collect();
    Ok(serde_json::json!({
        "username": u.username, "name": u.name, "email": u.email, "disabled": u.disabled,
        "user_risk": store::policies::user_risk(conn, &u.id)?.as_str(),
        "mfa_required": u.mfa_required, "must_change_password": u.must_change_password, "roles": roles,
    })
    .to_string())
}

fn reload(conn: &Connection, id: &str) -> std::result::Result<User, StoreError> {
    store::users::by_id(conn, id)?.ok_or_else(|| StoreError::Conflict("the user was deleted meanwhile".into()))
}

/// Disables a user (every session ends, every refresh and access token is revoked) or enables
/// them again.
pub fn set_user_disabled(conn: &mut Connection, actor: &str, user: &User, disabled: bool, now: i64) -> Result<()> {
    store::transaction(conn, |tx| -> Result<()> {
        let before = user_snapshot(tx, user)?;
        dir::set_disabled(tx, &user.id, disabled, now)?;
        if disabled {
            store::protection::end_everything(tx, &user.id, now)?;
        }
        let after = user_snapshot(tx, &reload(tx, &user.id)?)?;
        let action = if disabled { "user_disabled" } else { "user_enabled" };
        dir::audit_change(tx, actor, action, Some(&user.username), Some(&before), Some(&after), now)?;
        Ok(())
    })
}

/// Smart lockout and every attempt budget of the user start over.
pub fn unlock_user(conn: &mut Connection, actor: &str, user: &User, now: i64) -> Result<()> {
    store::transaction(conn, |tx| -> Result<()> {
        let before = user_snapshot(tx, user)?;
        store::protection::unlock(tx, &user.id)?;
        dir::audit_change(tx, actor, "user_unlocked", Some(&user.username), Some(&before), Some(&before), now)?;
        Ok(())
    })
}

/// Deletes a user: their sessions and tokens end, policies stop naming them (each such policy
/// change audited), then the account goes. The audit keeps what they were, with their groups.
pub fn delete_user(conn: &mut Connection, actor: &str, user: &User, now: i64) -> Result<()> {
    store::transaction(conn, |tx| -> Result<()> {
        let mut before: serde_json::Value = serde_json::from_str(&user_snapshot(tx, user)?).expect("a snapshot is JSON");
        before["groups"] = serde_json::json!(dir::group_names_of(tx, &user.id)?);
        store::protection::end_everything(tx, &user.id, now)?;
        for p in store::policies::all(tx)? {
            if p.include_users.users.contains(&user.id) || p.exclude_users.users.contains(&user.id) {
                name_no_more(tx, actor, p, |ps| &mut ps.users, &user.id, now)?;
            }
        }
        dir::delete_user(tx, &user.id)?;
        dir::audit_change(tx, actor, "user_deleted", Some(&user.username), Some(&before.to_string()), None, now)?;
        Ok(())
    })
}

fn client_snapshot(c: &Client) -> String {
    serde_json::to_string(c).expect("client serialises")
}

/// How long an old secret may keep working after a rotation (seconds), as the console offers.
pub const SECRET_GRACES: [i64; 4] = [0, 3600, 86_400, 604_800];
/// How long a new secret lives (days; 0: it never expires), as the console offers.
pub const SECRET_LIFETIMES: [i64; 5] = [90, 180, 365, 730, 0];
/// The console's defaults: the old secret works one day more, the new one lives a year.
pub const DEFAULT_GRACE_SECS: i64 = 86_400;
pub const DEFAULT_LIFETIME_DAYS: i64 = 365;

/// A secret rotation: how long the old secret keeps working, how long the new one lives.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// One of `SECRET_GRACES`; 0 stops the old secret at once.
    pub grace_secs: i64,
    /// One of `SECRET_LIFETIMES`; 0: the new secret never expires.
    pub lifetime_days: i64,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation { grace_secs: DEFAULT_GRACE_SECS, lifetime_days: DEFAULT_LIFETIME_DAYS }
    }
}

impl Rotation {
    /// When the new secret expires, if it does.
    pub fn expires_at(&self, now: i64) -> Option<i64> {
        (self.lifetime_days > 0).then_some(now + self.lifetime_days * 86_400)
    }

    /// When the old secret stops (the store keeps its own expiry if that comes first).
    fn old_valid_until(&self, now: i64) -> Option<i64> {
        (self.grace_secs > 0).then_some(now + self.grace_secs)
    }
}

/// A rotated secret: the new secret (shown once) and when it expires, and when the old one
/// stops (None: it stopped at once).
#[derive(Debug)]
pub struct Rotated {
    pub secret: String,
    pub expires_at: Option<i64>,
    pub old_valid_until: Option<i64>,
}

/// A new secret for a confidential app, shown once: it expires after `rotation.lifetime_days`,
/// and the old one keeps working `rotation.grace_secs` more (never past its own expiry). The
/// console's Credentials section and `latchkey client rotate-secret` both rotate through here.
pub fn rotate_client_secret(conn: &mut Connection, actor: &str, app: &Client, rotation: Rotation, now: i64) -> Result<Rotated> {
    if app.is_public {
        return Err(ActionError::Refused("a public application has no secret to rotate".into()));
    }
    if !SECRET_GRACES.contains(&rotation.grace_secs) {
        return Err(ActionError::Refused("the old secret's grace period is one of 0, 3600, 86400 or 604800 seconds".into()));
    }
    if !SECRET_LIFETIMES.contains(&rotation.lifetime_days) {
        return Err(ActionError::Refused("the new secret's lifetime is one of 90, 180, 365 or 730 days, or 0 (never expires)".into()));
    }
    let secret = random_token();
    let expires_at = rotation.expires_at(now);
    let old_valid_until = store::transaction(conn, |tx| -> Result<Option<i64>> {
        store::clients::rotate_secret(tx, &app.id, &secret_hash(&secret), rotation.old_valid_until(now), expires_at)?;
        let grace = rotation.grace_secs;
        let detail = format!("{}; old secret {}", app.name, if grace > 0 { format!("valid for {grace} s more") } else { "stopped at once".into() });
        let before = serde_json::json!({ "secret_expires_at": app.secret_expires_at }).to_string();
        let after = serde_json::json!({ "secret_expires_at": expires_at }).to_string();
        dir::audit_change(tx, actor, "app_secret_rotated", Some(&detail), Some(&before), Some(&after), now)?;
        Ok(store::clients::by_id(tx, &app.id)?.and_then(|c| c.previous_secret_expires_at))
    })?;
    Ok(Rotated { secret, expires_at, old_valid_until })
}

/// Disables an app (its grants are revoked: refresh and access tokens stop working) or enables it.
pub fn set_client_enabled(conn: &mut Connection, actor: &str, app: &Client, enabled: bool, now: i64) -> Result<()> {
    store::transaction(conn, |tx| -> Result<()> {
        store::clients::set_enabled(tx, &app.id, enabled)?;
        if !enabled {
            dir::revoke_client_grants(tx, &app.id, now)?;
        }
        let action = if enabled { "app_enabled" } else { "app_disabled" };
        let (before, after) = (serde_json::json!({ "enabled": app.enabled }).to_string(), serde_json::json!({ "enabled": enabled }).to_string());
        dir::audit_change(tx, actor, action, Some(&app.name), Some(&before), Some(&after), now)?;
        Ok(())
    })
}

/// Deletes an app with its codes, grants and refresh tokens.
pub fn delete_client(conn: &mut Connection, actor: &str, app: &Client, now: i64) -> Result<()> {
    store::transaction(conn, |tx| -> Result<()> {
        store::clients::delete(tx, &app.id)?;
        dir::audit_change(tx, actor, "app_deleted", Some(&app.name), Some(&client_snapshot(app)), None, now)?;
        Ok(())
    })
}

/// Creates a group; returns it.
pub fn create_group(conn: &mut Connection, actor: &str, name: &str, description: Option<&str>, now: i64) -> Result<dir::Group> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ActionError::Refused("a group needs a name (at most 200 characters)".into()));
    }
    let id = new_id();
    store::transaction(conn, |tx| -> Result<()> {
        dir::create_group(tx, &id, name, description, now).map_err(|e| match e {
            StoreError::Conflict(m) => ActionError::Refused(m),
            other => other.into(),
        })?;
        let after = serde_json::json!({ "name": name, "description": description }).to_string();
        dir::audit_change(tx, actor, "group_created", Some(name), None, Some(&after), now)?;
        Ok(())
    })?;
    Ok(dir::group(conn, &id)?.expect("just created"))
}

/// Saves `p` without `id` in its included and excluded users (or groups: `list`), its before
/// and after in the audit log: the user or group is going.
fn name_no_more(
    tx: &Connection,
    actor: &str,
    mut p: Policy,
    list: fn(&mut crate::policy::model::Principals) -> &mut Vec<String>,
    id: &str,
    now: i64,
) -> std::result::Result<(), StoreError> {
    let was = serde_json::to_string(&p).expect("policy serialises");
    list(&mut p.include_users).retain(|x| x != id);
    list(&mut p.exclude_users).retain(|x| x != id);
    store::policies::save(tx, &p, now)?;
    let is = serde_json::to_string(&p).expect("policy serialises");
    dir::audit_change(tx, actor, "policy_updated", Some(&p.name), Some(&was), Some(&is), now)
}

/// The conditional-access policies that name a group (to include or to exclude).
pub fn policies_naming_group(conn: &Connection, group_id: &str) -> std::result::Result<Vec<Policy>, StoreError> {
    Ok(store::policies::all(conn)?.into_iter().filter(|p| p.include_users.groups.iter().chain(&p.exclude_users.groups).any(|g| g == group_id)).collect())
}

/// Deletes a group: its members stay (their memberships go) and its app assignments go;
/// policies that name it no longer do (each such policy change audited). The audit keeps what
/// the group was, with its members and apps. The console's delete and `latchkey group delete`
/// both delete through here.
pub fn delete_group(conn: &mut Connection, actor: &str, group: &dir::Group, now: i64) -> Result<()> {
    store::transaction(conn, |tx| delete_group_in(tx, actor, group, now))
}

/// [`delete_group`] inside the caller's transaction.
pub fn delete_group_in(tx: &Connection, actor: &str, group: &dir::Group, now: i64) -> Result<()> {
    let members: Vec<String> = dir::members(tx, &group.id)?.into_iter().map(|m| m.username).collect();
    let apps = dir::assigned_apps(tx, "group", &group.id)?;
    for p in policies_naming_group(tx, &group.id)? {
        name_no_more(tx, actor, p, |ps| &mut ps.groups, &group.id, now)?;
    }
    let before = serde_json::json!({ "name": group.name, "description": group.description, "members": members, "apps": apps }).to_string();
    dir::delete_group(tx, &group.id)?;
    dir::audit_change(tx, actor, "group_deleted", Some(&group.name), Some(&before), None, now)?;
    Ok(())
}

/// Adds (or removes) a member; false if they already were (or were not) one.
pub fn set_member(conn: &mut Connection, actor: &str, group: &dir::Group, user: &User, member: bool, now: i64) -> Result<bool> {
    store::transaction(conn, |tx| -> Result<bool> {
        let changed = if member { dir::add_member(tx, &group.id, &user.id)? } else { dir::remove_member(tx, &group.id, &user.id)? };
        if changed {
            let detail = format!("{}: {}", group.name, user.username);
            let state = serde_json::json!({ "group": group.name, "member": user.username }).to_string();
            let (action, before, after) = if member { ("group_member_added", None, Some(state)) } else { ("group_member_removed", Some(state), None) };
            dir::audit_change(tx, actor, action, Some(&detail), before.as_deref(), after.as_deref(), now)?;
        }
        Ok(changed)
    })
}

/// Imports a JSON list of policies (the console's export format): all saved, or none.
pub fn import_policies(conn: &mut Connection, actor: &str, json: &str, now: i64) -> Result<Vec<Policy>> {
    let mut list: Vec<Policy> = serde_json::from_str(json).map_err(|e| ActionError::Refused(format!("the JSON is not a list of policies: {e}")))?;
    let defaults_on = store::policies::security_defaults(conn)?;
    for p in &mut list {
        p.check().map_err(|e| ActionError::Refused(format!("policy {:?}: {e}", p.name)))?;
        if p.state == State::On && defaults_on {
            return Err(ActionError::Refused(format!("policy {:?}: {DEFAULTS_ON}", p.name)));
        }
        if p.id.is_empty() {
            p.id = new_id();
        }
    }
    store::transaction(conn, |tx| -> Result<()> {
        for p in &list {
            let before = store::policies::by_id(tx, &p.id)?;
            store::policies::save(tx, p, now).map_err(|e| match e {
                StoreError::Conflict(m) => ActionError::Refused(m),
                other => other.into(),
            })?;
            let json = |p: &Policy| serde_json::to_string(p).expect("policy serialises");
            dir::audit_change(tx, actor, "policy_imported", Some(&p.name), before.as_ref().map(json).as_deref(), Some(&json(p)), now)?;
        }
        Ok(())
    })?;
    Ok(list)
}

/// Switches a policy on, off or to report-only (not on while security defaults are on).
pub fn set_policy_state(conn: &mut Connection, actor: &str, before: &Policy, state: State, now: i64) -> Result<Policy> {
    if state == State::On && store::policies::security_defaults(conn)? {
        return Err(ActionError::Refused(DEFAULTS_ON.into()));
    }
    let mut p = before.clone();
    p.state = state;
    store::transaction(conn, |tx| -> Result<()> {
        store::policies::save(tx, &p, now)?;
        let json = |p: &Policy| serde_json::to_string(p).expect("policy serialises");
        dir::audit_change(tx, actor, "policy_updated", Some(&p.name), Some(&json(before)), Some(&json(&p)), now)?;
        Ok(())
    })?;
    Ok(p)
}
