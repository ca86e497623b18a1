//! Acting on users: delete (after a page naming everything that goes), set a password, and
//! the bulk actions of the users list (disable, add to a group).

use super::{Errors, load_user, not_found, user_page, user_snapshot, users_page};
use crate::AppState;
use crate::admin::picker::{self, Kind};
use crate::admin::{Admin, Global, Nav, actions};
use crate::i18n::filters;
use crate::store::db::Connection;
use crate::store::{self, directory as dir, users::User};
use crate::web::params::Params;
use crate::web::{PageError, html, see_other};
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

/// Most users one bulk action takes.
const BULK_MAX: usize = 500;

/// Everything deleting a user removes, as the confirmation page names it.
struct UserImpact {
    sessions: usize,
    connected_apps: Vec<String>,
    methods: usize,
    groups: Vec<String>,
    assigned_apps: Vec<String>,
    policies: Vec<String>,
    roles: Vec<&'static str>,
}

fn user_impact(conn: &Connection, user: &User, now: i64) -> Result<UserImpact, store::StoreError> {
    let m = crate::auth::mfa::Methods::load(conn, &user.id)?;
    Ok(UserImpact {
        sessions: store::sessions::active_for_user(conn, &user.id, now)?.len(),
        connected_apps: store::tokens::connected_apps(conn, &user.id, now)?.into_iter().map(|a| a.name).collect(),
        methods: usize::from(m.totp) + m.keys.len() + usize::from(m.recovery_left > 0),
        groups: dir::group_names_of(conn, &user.id)?,
        assigned_apps: dir::assigned_apps(conn, "user", &user.id)?,
        policies: store::policies::all(conn)?
            .into_iter()
            .filter(|p| p.include_users.users.contains(&user.id) || p.exclude_users.users.contains(&user.id))
            .map(|p| p.name)
            .collect(),
        roles: dir::roles(conn, &user.id)?.into_iter().map(|r| r.label()).collect(),
    })
}

#[derive(Template)]
#[template(path = "admin/user_delete.html")]
struct DeleteUserPage {
    nav: Nav,
    user: User,
    impact: UserImpact,
}

fn confirm_delete(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let user = load_user(&conn, &id)?;
    if user.id == admin.user.id {
        return user_page(&conn, &admin, user, Errors::from([("actions", "You cannot delete your own account.".to_string())]), now, None);
    }
    let impact = user_impact(&conn, &user, now)?;
    Ok(html(StatusCode::OK, &DeleteUserPage { nav: admin.nav(), user, impact }))
}

/// POST /admin/users/{id}/delete, from the confirmation page (`confirm=yes`): their sessions
/// end (apps hear of it), their tokens stop working, and the account with its methods,
/// memberships and assignments is removed; policies naming them no longer do. Sign-in log rows
/// stay, as history.
fn delete(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let user = load_user(&conn, &id)?;
    if user.id == admin.user.id {
        return user_page(&conn, &admin, user, Errors::from([("actions", "You cannot delete your own account.".to_string())]), now, None);
    }
    if admin.form.get("confirm") != Some("yes") {
        return Ok(see_other(&format!("/admin/users/{}/delete", user.id)));
    }
    // The same write the `latchkey user delete` command makes.
    actions::delete_user(&mut conn, &admin.user.id, &user, now)?;
    Ok(see_other("/admin/users"))
}

/// POST /admin/users/{id}/password: an administrator sets a password (checked like any
/// other). Like every password change that is not the person's own, it ends every session and
/// refresh-token family of theirs; "must change" makes them choose their own at next sign-in.
fn set_password(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    // A lease: the connection goes back to the pool while the hash waits its turn.
    let mut conn = store::Lease::get(&state.pool)?;
    let now = state.clock.now();
    let user = load_user(&conn, &id)?;
    let p = admin.form.clone();
    let new = p.get("new_password").unwrap_or("").to_string();
    let mut errors = Errors::new();
    if let Err(e) = state.protection.check_new(&new) {
        errors.insert("new_password", e.to_string());
    } else if p.get("confirm_password") != Some(new.as_str()) {
        errors.insert("confirm_password", "The two passwords do not match.".into());
    }
    if !errors.is_empty() {
        return user_page(&conn, &admin, user, errors, now, None);
    }
    let phc = crate::auth::login::hash_new(&state, &mut conn, &new)?;
    let must_change = p.get("must_change").is_some();
    let set = store::transaction(&mut conn, |tx| -> Result<bool, store::StoreError> {
        // Read again: the user may have been deleted while the hash waited its turn.
        let Some(current) = store::users::by_id(tx, &user.id)? else { return Ok(false) };
        let before = user_snapshot(tx, &current)?;
        store::users::set_password(tx, &user.id, &phc, now, false)?;
        if must_change {
            dir::require_password_change(tx, &user.id, now)?;
        }
        store::protection::end_everything(tx, &user.id, now)?;
        let after = user_snapshot(tx, &store::users::by_id(tx, &user.id)?.unwrap_or(current))?;
        dir::audit_change(tx, &admin.user.id, "user_password_set", Some(&user.username), Some(&before), Some(&after), now)?;
        Ok(true)
    })?;
    if !set {
        return Err(not_found("user"));
    }
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}

/// POST /admin/users/bulk: `action` (disable, add_to_group with `group`) for every user ticked
/// on the list (`user_{id}`), in one transaction, each audited.
fn bulk(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let p = admin.form.clone();
    let ids = picker::ticked_in(&p, "user");
    let mut errors = Errors::new();
    if ids.is_empty() {
        errors.insert("bulk", "Tick at least one user.".into());
    } else if ids.len() > BULK_MAX {
        errors.insert("bulk", format!("At most {BULK_MAX} users at once."));
    }
    let (users, unknown) = picker::resolve(&conn, Kind::User, &ids)?;
    if !unknown.is_empty() {
        errors.insert("bulk", unknown.join(" "));
    }
    let action = p.get("action").unwrap_or("");
    let group = match action {
        "disable" => {
            if users.iter().any(|u| u.id == admin.user.id) {
                errors.insert("bulk", "You cannot disable your own account.".into());
            }
            None
        }
        "add_to_group" => match p.get("group").map(|g| dir::group(&conn, g)).transpose()?.flatten() {
            Some(g) => Some(g),
            None => {
                errors.insert("group", "Choose a group.".into());
                None
            }
        },
        _ => {
            errors.insert("action", "Choose an action.".into());
            None
        }
    };
    if !errors.is_empty() {
        return users_page(&conn, &admin, &Params::default(), errors);
    }
    let done = store::transaction(&mut conn, |tx| -> Result<usize, PageError> {
        let mut done = 0;
        for u in &users {
            // Deleted since the list was read: nothing left to act on.
            let Some(user) = store::users::by_id(tx, &u.id)? else { continue };
            match &group {
                None => {
                    if user.disabled {
                        continue;
                    }
                    let before = user_snapshot(tx, &user)?;
                    dir::set_disabled(tx, &user.id, true, now)?;
                    store::protection::end_everything(tx, &user.id, now)?;
                    let after = user_snapshot(tx, &store::users::by_id(tx, &user.id)?.unwrap_or_else(|| user.clone()))?;
                    dir::audit_change(tx, &admin.user.id, "user_disabled", Some(&user.username), Some(&before), Some(&after), now)?;
                }
                Some(g) => {
                    if !dir::add_member(tx, &g.id, &user.id)? {
                        continue;
                    }
                    let after = serde_json::json!({ "group": g.name, "user": user.username }).to_string();
                    dir::audit_change(tx, &admin.user.id, "group_member_added", Some(&format!("{}: {}", g.name, user.username)), None, Some(&after), now)?;
                }
            }
            done += 1;
        }
        if group.is_some() {
            crate::admin::refuse_lockout(tx, req, &admin, now)?;
        }
        Ok(done)
    })?;
    Ok(see_other(&format!("/admin/users?done={done}")))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users/bulk", web::post().to(crate::admin::page(bulk)))
        .route("/admin/users/{id}/delete", web::get().to(crate::admin::page(confirm_delete)))
        .route("/admin/users/{id}/delete", web::post().to(crate::admin::page(delete)))
        .route("/admin/users/{id}/password", web::post().to(crate::admin::page(set_password)));
}
