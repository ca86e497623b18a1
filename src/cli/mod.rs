//! The directory commands a script needs beside the console (issue 12, "CLI parity"): users,
//! clients, groups and policies, listed, shown and changed. Every write goes through
//! `latchkey::admin::actions` — the same store functions as the console, in one transaction
//! with its audit record (actor `cli`) — and every command prints JSON with `--json`.

use clap::Subcommand;
use latchkey::AppState;
use latchkey::admin::actions::{self, ActionError};
use latchkey::admin::list::{Columns, Dir, ListQuery};
use latchkey::policy::model::State;
use latchkey::store::{self, directory as dir};
use latchkey::web::params::Params;
use serde_json::{Value, json};

/// Who the audit log says did what the command did.
const ACTOR: &str = "cli";

#[derive(Subcommand)]
pub enum UserMore {
    /// List users (all of them, by username; --search narrows by username, name or e-mail).
    List {
        #[arg(long)]
        search: Option<String>,
    },
    /// Show one user: profile, roles, groups, sign-in methods, risk, locks.
    Show {
        #[arg(long)]
        username: String,
    },
    /// Disable a user: every session ends and every refresh and access token is revoked at once.
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[arg(long)]
        username: String,
    },
    /// Delete a user (sessions and tokens end; policies stop naming them). Needs --yes.
    Delete {
        #[arg(long)]
        username: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Clear a user's smart lockout and attempt budgets.
    Unlock {
        #[arg(long)]
        username: String,
    },
}

/// An app, named by its client id or its display name.
#[derive(clap::Args)]
pub struct Which {
    /// Client ids are random base64url: one in 64 starts with '-', still a value here.
    #[arg(long, conflicts_with = "name", required_unless_present = "name", allow_hyphen_values = true)]
    client_id: Option<String>,
    #[arg(long)]
    name: Option<String>,
}

#[derive(Subcommand)]
pub enum ClientMore {
    /// List applications.
    List,
    /// Show one application's settings (never its secret).
    Show(Which),
    /// Make a new client secret (printed once), as the console's Credentials section does: the
    /// old one keeps working --grace-secs more (a day unless told), the new one expires after
    /// --lifetime-days (a year unless told).
    RotateSecret {
        #[command(flatten)]
        which: Which,
        /// Keep the old secret working this long (0 stops it at once, 3600, 86400 or 604800).
        #[arg(long, default_value_t = actions::DEFAULT_GRACE_SECS)]
        grace_secs: i64,
        /// The new secret expires after this many days (90, 180, 365 or 730; 0: never).
        #[arg(long, default_value_t = actions::DEFAULT_LIFETIME_DAYS)]
        lifetime_days: i64,
    },
    /// Disable an application: sign-ins stop and its refresh and access tokens are revoked.
    Disable(Which),
    /// Enable a disabled application again.
    Enable(Which),
    /// Delete an application with its codes, grants and tokens. Needs --yes.
    Delete {
        #[command(flatten)]
        which: Which,
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a group (its members stay; its app assignments go; policies stop naming it).
    Delete {
        #[arg(long)]
        name: String,
    },
    /// List groups with their member counts.
    List,
    /// Add or remove members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
}

#[derive(Subcommand)]
pub enum MemberCommand {
    Add {
        #[arg(long)]
        group: String,
        #[arg(long)]
        username: String,
    },
    Remove {
        #[arg(long)]
        group: String,
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
pub enum PolicyMore {
    /// List conditional-access policies: id, name, state.
    List,
    /// Import policies from a JSON file in the export format (`-` reads standard input): all or none.
    Import {
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Switch a policy on, off or to report-only.
    SetState {
        /// The policy's id or name.
        #[arg(long)]
        policy: String,
        #[arg(value_parser = ["on", "off", "report-only", "report_only"])]
        state: String,
    },
}

/// What a command prints: JSON for scripts, or a line for people.
pub struct Output {
    pub json: Value,
    pub human: String,
}

fn refused(e: ActionError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn user(conn: &latchkey::store::db::Connection, username: &str) -> anyhow::Result<store::users::User> {
    store::users::by_username(conn, username)?.ok_or_else(|| anyhow::anyhow!("no user named {username:?}"))
}

fn user_json(conn: &latchkey::store::db::Connection, u: &store::users::User, now: i64) -> anyhow::Result<Value> {
    let roles: Vec<&str> = dir::roles(conn, &u.id)?.iter().map(|r| r.as_str()).collect();
    let mut methods = vec![];
    if store::mfa::totp(conn, &u.id)?.is_some_and(|t| t.confirmed) {
        methods.push("authenticator_app".to_string());
    }
    methods.extend(store::mfa::credentials(conn, &u.id)?.into_iter().map(|c| c.kind));
    let locks: Vec<Value> = store::protection::locks(conn, &u.id, now)?.into_iter().map(|(what, until)| json!({ "what": what, "until": until })).collect();
    Ok(json!({
        "id": u.id, "username": u.username, "name": u.name, "email": u.email, "disabled": u.disabled,
        "roles": roles, "groups": dir::group_names_of(conn, &u.id)?, "methods": methods,
        "mfa_required": u.mfa_required, "must_change_password": u.must_change_password,
        "user_risk": store::policies::user_risk(conn, &u.id)?.as_str(), "locks": locks,
    }))
}

const USERS: Columns = Columns { sorts: &[("username", "username COLLATE NOCASE")], default: ("username", Dir::Asc), tiebreak: "id" };

pub fn user_command(state: &AppState, command: UserMore) -> anyhow::Result<Output> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let done = |what: &str, u: &store::users::User| Output {
        json: json!({ "username": u.username, "id": u.id, "done": what }),
        human: format!("{what} {}", u.username),
    };
    Ok(match command {
        UserMore::List { search } => {
            let window = ListQuery::parse("/", &Params::default(), &USERS).everything();
            let users = dir::users_page(&conn, search.as_deref().map(str::trim).filter(|s| !s.is_empty()), dir::UserStatus::Any, &window)?;
            let human = users
                .iter()
                .map(|u| format!("{}\t{}\t{}", u.username, if u.disabled { "disabled" } else { "active" }, u.email.as_deref().unwrap_or("")))
                .collect();
            let list: Vec<Value> =
                users.into_iter().map(|u| json!({ "id": u.id, "username": u.username, "name": u.name, "email": u.email, "disabled": u.disabled })).collect();
            Output { json: Value::Array(list), human: lines(human) }
        }
        UserMore::Show { username } => {
            let v = user_json(&conn, &user(&conn, &username)?, now)?;
            Output { human: serde_json::to_string_pretty(&v)?, json: v }
        }
        UserMore::Disable { username } => {
            let u = user(&conn, &username)?;
            actions::set_user_disabled(&mut conn, ACTOR, &u, true, now).map_err(refused)?;
            done("disabled", &u)
        }
        UserMore::Enable { username } => {
            let u = user(&conn, &username)?;
            actions::set_user_disabled(&mut conn, ACTOR, &u, false, now).map_err(refused)?;
            done("enabled", &u)
        }
        UserMore::Delete { username, yes } => {
            let u = user(&conn, &username)?;
            if !yes {
                let groups = dir::group_names_of(&conn, &u.id)?;
                anyhow::bail!(
                    "deleting {} ends their sessions and tokens and removes them from {} group(s); run again with --yes to delete",
                    u.username,
                    groups.len()
                );
            }
            actions::delete_user(&mut conn, ACTOR, &u, now).map_err(refused)?;
            done("deleted", &u)
        }
        UserMore::Unlock { username } => {
            let u = user(&conn, &username)?;
            actions::unlock_user(&mut conn, ACTOR, &u, now).map_err(refused)?;
            done("unlocked", &u)
        }
    })
}

fn client(conn: &latchkey::store::db::Connection, which: &Which) -> anyhow::Result<store::clients::Client> {
    let found = match (&which.client_id, &which.name) {
        (Some(id), _) => store::clients::by_id(conn, id)?,
        (None, Some(name)) => store::clients::all(conn)?.into_iter().find(|c| c.name.eq_ignore_ascii_case(name.trim())),
        (None, None) => None,
    };
    found.ok_or_else(|| anyhow::anyhow!("no such application"))
}

pub fn client_command(state: &AppState, command: ClientMore) -> anyhow::Result<Output> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let done = |what: &str, c: &store::clients::Client| Output {
        json: json!({ "client_id": c.id, "name": c.name, "done": what }),
        human: format!("{what} {}", c.name),
    };
    Ok(match command {
        ClientMore::List => {
            let apps = store::clients::all(&conn)?;
            let human = apps.iter().map(|c| format!("{}\t{}\t{}", c.id, c.name, if c.enabled { "enabled" } else { "disabled" })).collect();
            Output { json: serde_json::to_value(&apps)?, human: lines(human) }
        }
        ClientMore::Show(which) => {
            let v = serde_json::to_value(client(&conn, &which)?)?;
            Output { human: serde_json::to_string_pretty(&v)?, json: v }
        }
        ClientMore::RotateSecret { which, grace_secs, lifetime_days } => {
            if !actions::SECRET_GRACES.contains(&grace_secs) {
                anyhow::bail!("--grace-secs is one of 0, 3600, 86400 or 604800");
            }
            if !actions::SECRET_LIFETIMES.contains(&lifetime_days) {
                anyhow::bail!("--lifetime-days is one of 90, 180, 365, 730 or 0 (never expires)");
            }
            let c = client(&conn, &which)?;
            let rotation = actions::Rotation { grace_secs, lifetime_days };
            let rotated = actions::rotate_client_secret(&mut conn, ACTOR, &c, rotation, now).map_err(refused)?;
            Output {
                json: json!({
                    "client_id": c.id, "client_secret": rotated.secret, "client_secret_expires_at": rotated.expires_at,
                    "old_secret_valid_for": grace_secs, "old_secret_expires_at": rotated.old_valid_until,
                }),
                human: format!("new client_secret for {}: {}\n(shown once: store it now)", c.name, rotated.secret),
            }
        }
        ClientMore::Disable(which) => {
            let c = client(&conn, &which)?;
            actions::set_client_enabled(&mut conn, ACTOR, &c, false, now).map_err(refused)?;
            done("disabled", &c)
        }
        ClientMore::Enable(which) => {
            let c = client(&conn, &which)?;
            actions::set_client_enabled(&mut conn, ACTOR, &c, true, now).map_err(refused)?;
            done("enabled", &c)
        }
        ClientMore::Delete { which, yes } => {
            let c = client(&conn, &which)?;
            if !yes {
                anyhow::bail!("deleting {} removes its codes, grants and tokens; run again with --yes to delete", c.name);
            }
            actions::delete_client(&mut conn, ACTOR, &c, now).map_err(refused)?;
            done("deleted", &c)
        }
    })
}

fn group(conn: &latchkey::store::db::Connection, name: &str) -> anyhow::Result<dir::Group> {
    dir::group_by_name(conn, name.trim())?.ok_or_else(|| anyhow::anyhow!("no group named {name:?}"))
}

pub fn group_command(state: &AppState, command: GroupCommand) -> anyhow::Result<Output> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let group_json = |g: &dir::Group| json!({ "id": g.id, "name": g.name, "description": g.description, "members": g.members });
    Ok(match command {
        GroupCommand::Add { name, description } => {
            let g = actions::create_group(&mut conn, ACTOR, &name, description.as_deref().map(str::trim).filter(|d| !d.is_empty()), now).map_err(refused)?;
            Output { json: group_json(&g), human: format!("created group {}", g.name) }
        }
        GroupCommand::Delete { name } => {
            let g = group(&conn, &name)?;
            actions::delete_group(&mut conn, ACTOR, &g, now).map_err(refused)?;
            Output { json: json!({ "id": g.id, "name": g.name, "done": "deleted" }), human: format!("deleted group {}", g.name) }
        }
        GroupCommand::List => {
            let groups = dir::groups(&conn)?;
            let human = groups.iter().map(|g| format!("{}\t{} member(s)", g.name, g.members)).collect();
            Output { json: Value::Array(groups.iter().map(group_json).collect()), human: lines(human) }
        }
        GroupCommand::Member { command } => {
            let (group_name, username, add) = match command {
                MemberCommand::Add { group, username } => (group, username, true),
                MemberCommand::Remove { group, username } => (group, username, false),
            };
            let (g, u) = (group(&conn, &group_name)?, user(&conn, &username)?);
            let changed = actions::set_member(&mut conn, ACTOR, &g, &u, add, now).map_err(refused)?;
            let human = match (add, changed) {
                (true, true) => format!("added {} to {}", u.username, g.name),
                (true, false) => format!("{} was already in {}", u.username, g.name),
                (false, true) => format!("removed {} from {}", u.username, g.name),
                (false, false) => format!("{} was not in {}", u.username, g.name),
            };
            Output { json: json!({ "group": g.name, "username": u.username, "member": add, "changed": changed }), human }
        }
    })
}

pub fn policy_command(state: &AppState, command: PolicyMore) -> anyhow::Result<Output> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let summary = |p: &latchkey::policy::model::Policy| json!({ "id": p.id, "name": p.name, "state": p.state.as_str() });
    Ok(match command {
        PolicyMore::List => {
            let policies = store::policies::all(&conn)?;
            let human = policies.iter().map(|p| format!("{}\t{}\t{}", p.id, p.state.as_str(), p.name)).collect();
            let defaults = store::policies::security_defaults(&conn)?;
            Output {
                json: json!({ "security_defaults": defaults, "policies": policies.iter().map(summary).collect::<Vec<_>>() }),
                human: format!("security defaults: {}\n{}", if defaults { "on" } else { "off" }, lines(human)),
            }
        }
        PolicyMore::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
            };
            let imported = actions::import_policies(&mut conn, ACTOR, &text, now).map_err(refused)?;
            Output { json: json!({ "imported": imported.iter().map(summary).collect::<Vec<_>>() }), human: format!("imported {} policies", imported.len()) }
        }
        PolicyMore::SetState { policy, state: wanted } => {
            let p = match store::policies::by_id(&conn, &policy)? {
                Some(p) => p,
                None => store::policies::all(&conn)?.into_iter().find(|p| p.name == policy).ok_or_else(|| anyhow::anyhow!("no policy {policy:?}"))?,
            };
            let new = State::parse(&wanted.replace('-', "_")).expect("clap checked the value");
            let p = actions::set_policy_state(&mut conn, ACTOR, &p, new, now).map_err(refused)?;
            Output { json: summary(&p), human: format!("{} is {}", p.name, p.state.as_str()) }
        }
    })
}

fn lines(v: Vec<String>) -> String {
    v.join("\n")
}
