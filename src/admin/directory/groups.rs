//! Groups: a paged list, create, members (added with a picker), and delete after a
//! confirmation page naming what goes with the group.

use super::{Errors, not_found};
use crate::AppState;
use crate::admin::actions;
use crate::admin::list::{Columns, Dir, ListQuery, Pager};
use crate::admin::picker::{self, Picker};
use crate::admin::{Admin, Global, Nav, Need, capitalise};
use crate::auth::mfa::new_id;
use crate::i18n::filters;
use crate::store::db::Connection;
use crate::store::{self, directory as dir};
use crate::web::params::Params;
use crate::web::{PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

const COLUMNS: Columns = Columns {
    sorts: &[("name", "g.name COLLATE NOCASE"), ("members", "members"), ("description", "ifnull(g.description, '') COLLATE NOCASE")],
    default: ("name", Dir::Asc),
    tiebreak: "g.id",
};

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage {
    nav: Nav,
    groups: Vec<dir::Group>,
    pager: Pager,
    q: String,
    name: String,
    description: String,
    errors: Errors,
}

fn groups_page(
    conn: &Connection,
    admin: &Admin<impl Need>,
    params: &Params,
    name: String,
    description: String,
    errors: Errors,
) -> Result<HttpResponse, PageError> {
    let mut query = ListQuery::parse("/admin/groups", params, &COLUMNS);
    let total = dir::count_groups(conn, query.search())?;
    query.clamp(total);
    let groups = dir::groups_page(conn, query.search(), &query.window())?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html(status, &GroupsPage { nav: admin.nav(), groups, pager: query.pager(total), q: query.q().to_string(), name, description, errors }))
}

fn list_groups(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    groups_page(&conn, &admin, &params, String::new(), String::new(), Errors::new())
}

fn create_group(admin: Admin<Global>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let name = p.get("name").unwrap_or("").trim().to_string();
    let description = p.get("description").unwrap_or("").trim().to_string();
    let mut errors = Errors::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert("name", "The group name must be 1 to 100 characters.".into());
    }
    if description.chars().count() > 500 {
        errors.insert("description", "The description must be at most 500 characters.".into());
    }
    if errors.is_empty() {
        let id = new_id();
        let desc = Some(description.as_str()).filter(|d| !d.is_empty());
        match dir::create_group(&conn, &id, &name, desc, now) {
            Ok(()) => {
                let after = serde_json::json!({ "name": name, "description": desc }).to_string();
                dir::audit_change(&conn, &admin.user.id, "group_created", Some(&name), None, Some(&after), now)?;
                return Ok(see_other(&format!("/admin/groups/{id}")));
            }
            Err(store::StoreError::Conflict(m)) => {
                errors.insert("name", capitalise(&m));
            }
            Err(e) => return Err(e.into()),
        }
    }
    groups_page(&conn, &admin, &Params::default(), name, description, errors)
}

/// A group's members: searched and sorted like the other lists, a page at a time.
const MEMBER_COLUMNS: Columns = Columns {
    sorts: &[("username", "u.username COLLATE NOCASE"), ("name", "ifnull(u.name, '') COLLATE NOCASE"), ("email", "ifnull(u.email, '') COLLATE NOCASE")],
    default: ("username", Dir::Asc),
    tiebreak: "u.id",
};

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupPage {
    nav: Nav,
    group: dir::Group,
    members: Vec<dir::UserSummary>,
    pager: Pager,
    q: String,
    apps: Vec<String>,
    picker: Picker,
    errors: Errors,
}

/// The group page; `list` is the members list's query (search, sort, page), `ticked` and `q`
/// the member picker's state.
fn group_page(
    conn: &Connection,
    admin: &Admin<impl Need>,
    id: &str,
    list: &Params,
    errors: Errors,
    ticked: &[String],
    q: &str,
) -> Result<HttpResponse, PageError> {
    let group = dir::group(conn, id)?.ok_or_else(|| not_found("group"))?;
    let mut query = ListQuery::parse(format!("/admin/groups/{}", group.id), list, &MEMBER_COLUMNS);
    let total = crate::store::directory::count_members(conn, &group.id, query.search())?;
    query.clamp(total);
    let members = crate::store::directory::members_page(conn, &group.id, query.search(), &query.window())?;
    let mut picker = picker::build(conn, picker::Kind::User, "member", "admin.group.pick_members", ticked, q, true)?;
    // Offer only people not in the group yet (the members shown are one page of them).
    let mut found = Vec::with_capacity(picker.found.len());
    for f in std::mem::take(&mut picker.found) {
        if !dir::group_names_of(conn, &f.id)?.contains(&group.name) {
            found.push(f);
        }
    }
    picker.found = found;
    picker.error = errors.get("member").cloned();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let apps = dir::assigned_apps(conn, "group", id)?;
    let (pager, q) = (query.pager(total), query.q().to_string());
    Ok(html(status, &GroupPage { nav: admin.nav(), group, members, pager, q, apps, picker, errors }))
}

/// GET /admin/groups/{id}: the group, its members a page at a time (`q`, `sort`, `dir`, `page`).
fn show_group(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let list = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    group_page(&conn, &admin, &id, &list, Errors::new(), &[], "")
}

/// POST /admin/groups/{id}/members: adds the users ticked in the picker (`member_{id}`), or
/// one typed by username. With `pick`, only searches.
fn add_member(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let group = dir::group(&conn, &id)?.ok_or_else(|| not_found("group"))?;
    let ticked = picker::ticked_in(&p, "member");
    let q = p.get("q_member").unwrap_or("").to_string();
    if p.get("pick").is_some() {
        return group_page(&conn, &admin, &id, &Params::default(), Errors::new(), &ticked, &q);
    }
    let mut errors = Errors::new();
    let (mut chosen, unknown) = picker::resolve(&conn, picker::Kind::User, &ticked)?;
    if !unknown.is_empty() {
        errors.insert("member", unknown.join(" "));
    }
    if let Some(username) = p.get("username").map(str::trim) {
        match store::users::by_username(&conn, username)? {
            Some(u) => chosen.push(dir::Pickable { id: u.id, label: u.username, detail: String::new() }),
            None => {
                errors.insert("member", format!("No user named {username:?}."));
            }
        }
    }
    if chosen.is_empty() && errors.is_empty() {
        errors.insert("member", "Choose at least one user to add.".into());
    }
    if !errors.is_empty() {
        return group_page(&conn, &admin, &id, &Params::default(), errors, &ticked, &q);
    }
    store::transaction(&mut conn, |tx| -> Result<_, PageError> {
        for u in &chosen {
            if dir::add_member(tx, &group.id, &u.id)? {
                let after = serde_json::json!({ "group": group.name, "user": u.label }).to_string();
                dir::audit_change(tx, &admin.user.id, "group_member_added", Some(&format!("{}: {}", group.name, u.label)), None, Some(&after), now)?;
            }
        }
        // A group a blocking policy includes: not the admin adding themselves to it.
        crate::admin::refuse_lockout(tx, req, &admin, now)
    })?;
    Ok(see_other(&format!("/admin/groups/{}", group.id)))
}

fn remove_member(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let group = dir::group(&conn, &id)?.ok_or_else(|| not_found("group"))?;
    let user_id = p.get("user_id").unwrap_or("");
    let username = store::users::by_id(&conn, user_id)?.map(|u| u.username).unwrap_or_else(|| user_id.to_string());
    store::transaction(&mut conn, |tx| -> Result<_, PageError> {
        if dir::remove_member(tx, &group.id, user_id)? {
            let before = serde_json::json!({ "group": group.name, "user": username }).to_string();
            dir::audit_change(tx, &admin.user.id, "group_member_removed", Some(&format!("{}: {username}", group.name)), Some(&before), None, now)?;
        }
        // A group a blocking policy excludes (the break-glass group): not the admin leaving it.
        crate::admin::refuse_lockout(tx, req, &admin, now)
    })?;
    // Back to the page of members the admin was on (only ever this group's page).
    let here = format!("/admin/groups/{}", group.id);
    let back = p.get("back").filter(|b| b.strip_prefix(here.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('?')));
    Ok(see_other(back.unwrap_or(&here)))
}

/// What deleting a group takes with it, as the confirmation page names it.
struct GroupImpact {
    members: Vec<String>,
    apps: Vec<String>,
    policies: Vec<String>,
}

fn group_impact(conn: &Connection, group: &dir::Group) -> Result<GroupImpact, store::StoreError> {
    Ok(GroupImpact {
        members: dir::members(conn, &group.id)?.into_iter().map(|m| m.username).collect(),
        apps: dir::assigned_apps(conn, "group", &group.id)?,
        policies: actions::policies_naming_group(conn, &group.id)?.into_iter().map(|p| p.name).collect(),
    })
}

#[derive(Template)]
#[template(path = "admin/group_delete.html")]
struct DeleteGroupPage {
    nav: Nav,
    group: dir::Group,
    impact: GroupImpact,
}

fn confirm_delete_group(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let group = dir::group(&conn, &id)?.ok_or_else(|| not_found("group"))?;
    let impact = group_impact(&conn, &group)?;
    Ok(html(StatusCode::OK, &DeleteGroupPage { nav: admin.nav(), group, impact }))
}

/// POST /admin/groups/{id}/delete: only from the confirmation page (`confirm=yes`). Its
/// memberships and app assignments go; policies naming it no longer do.
fn delete_group(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let group = dir::group(&conn, &id)?.ok_or_else(|| not_found("group"))?;
    if admin.form.get("confirm") != Some("yes") {
        return Ok(see_other(&format!("/admin/groups/{}/delete", group.id)));
    }
    store::transaction(&mut conn, |tx| -> Result<_, PageError> {
        actions::delete_group_in(tx, &admin.user.id, &group, now)?;
        crate::admin::refuse_lockout(tx, req, &admin, now)
    })?;
    Ok(see_other("/admin/groups"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/groups", web::get().to(crate::admin::page(list_groups)))
        .route("/admin/groups", web::post().to(crate::admin::page(create_group)))
        .route("/admin/groups/{id}", web::get().to(crate::admin::page(show_group)))
        .route("/admin/groups/{id}/members", web::post().to(crate::admin::page(add_member)))
        .route("/admin/groups/{id}/members/remove", web::post().to(crate::admin::page(remove_member)))
        .route("/admin/groups/{id}/delete", web::get().to(crate::admin::page(confirm_delete_group)))
        .route("/admin/groups/{id}/delete", web::post().to(crate::admin::page(delete_group)));
}
