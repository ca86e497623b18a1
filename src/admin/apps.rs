//! Applications: register a SaaS app through a form, edit it, rotate its secret, disable or
//! delete it, and choose who may use it.

mod form;
mod sections;

pub use form::AppForm;

use super::list::{Columns, Dir, ListQuery, Pager};
use super::{Admin, Apps, Nav, Need, actions, capitalise, picker};
use crate::AppState;
use crate::i18n::filters;
use crate::oidc::clients::{self, ID_TOKEN_ALGS};
use crate::store::db::Connection;
use crate::store::{self, clients::Client, directory};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use sections::Section;
use std::collections::BTreeMap;

type Errors = BTreeMap<&'static str, String>;

#[derive(Template)]
#[template(path = "admin/apps.html")]
struct ListPage {
    nav: Nav,
    apps: Vec<Client>,
    pager: Pager,
    q: String,
    status: &'static str,
}

const COLUMNS: Columns = Columns {
    sorts: &[("name", "name COLLATE NOCASE"), ("type", "is_public"), ("status", "enabled"), ("created", "created_at")],
    default: ("name", Dir::Asc),
    tiebreak: "id",
};

#[derive(Template)]
#[template(path = "admin/app_form.html")]
struct FormPage {
    nav: Nav,
    form: AppForm,
    errors: Errors,
    algs: &'static [&'static str],
    lifetime: String,
}

#[derive(Template)]
#[template(path = "admin/app_secret.html")]
struct SecretPage {
    nav: Nav,
    name: String,
    client_id: String,
    client_secret: Option<String>,
    issuer: String,
    discovery: String,
    rotated: bool,
    expires: Option<String>,
}

/// The registration form (a new app).
fn new_page(admin: &Admin<impl Need>, form: AppForm, errors: Errors, lifetime: &str) -> HttpResponse {
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    html(status, &FormPage { nav: admin.nav(), form, errors, algs: ID_TOKEN_ALGS, lifetime: lifetime.to_string() })
}

pub(crate) fn load_app(conn: &Connection, id: &str) -> Result<Client, PageError> {
    store::clients::by_id(conn, id)?
        .ok_or_else(|| ErrorPage { status: StatusCode::NOT_FOUND, title: "No such application".into(), message: "It may have been deleted.".into() }.into())
}

fn snapshot(c: &Client) -> String {
    serde_json::to_string(c).expect("client serialises")
}

/// The secret lifetime chosen in a form (one of `actions::SECRET_LIFETIMES`, in days; 0 =
/// never): (days, expiry) or an error for the field.
fn secret_lifetime(p: &Params, now: i64) -> Result<(String, Option<i64>), String> {
    let days = p.get("lifetime").unwrap_or("0");
    match days.parse::<i64>() {
        Ok(d) if actions::SECRET_LIFETIMES.contains(&d) => Ok((days.to_string(), (d > 0).then_some(now + d * 86_400))),
        _ => Err("Choose one of the offered secret lifetimes.".into()),
    }
}

/// GET /admin/apps: search by name or client id, filter by status, sort, pages.
fn list(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let mut query = ListQuery::parse("/admin/apps", &params, &COLUMNS);
    let (status, enabled) = match params.get("status") {
        Some("enabled") => ("enabled", Some(true)),
        Some("disabled") => ("disabled", Some(false)),
        _ => ("", None),
    };
    query.keep("status", status);
    let total = store::clients::count(&conn, query.search(), enabled)?;
    query.clamp(total);
    let apps = store::clients::page(&conn, query.search(), enabled, &query.window())?;
    Ok(html(StatusCode::OK, &ListPage { nav: admin.nav(), apps, pager: query.pager(total), q: query.q().to_string(), status }))
}

fn new_form(admin: Admin<Apps>, _req: &HttpRequest, _state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    Ok(new_page(&admin, AppForm::blank(), Errors::new(), "365"))
}

fn create(admin: Admin<Apps>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let form = AppForm::from_params(&params, None);
    let lifetime = secret_lifetime(&params, now);
    let typed_lifetime = params.get("lifetime").unwrap_or("0").to_string();
    let mut settings = match (form.validate(), &lifetime) {
        (Ok(s), Ok(_)) => s,
        (result, _) => {
            let mut errors = result.err().unwrap_or_default();
            if let Err(e) = &lifetime {
                errors.insert("lifetime", e.clone());
            }
            return Ok(new_page(&admin, form, errors, &typed_lifetime));
        }
    };
    let expires = lifetime.ok().and_then(|(_, e)| e);
    let outcome = store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        let registered = match clients::register_settings(tx, &mut settings, now) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        if registered.client_secret.is_some() {
            store::clients::set_secret_expiry(tx, &registered.client_id, expires)?;
        }
        let created = store::clients::by_id(tx, &registered.client_id)?.expect("just inserted");
        directory::audit_change(tx, &admin.user.id, "app_registered", Some(&created.name), None, Some(&snapshot(&created)), now)?;
        Ok(Ok(registered))
    })?;
    let registered = match outcome {
        Ok(r) => r,
        Err(e) => return Ok(new_page(&admin, form, Errors::from([("name", capitalise(&e.to_string()))]), &typed_lifetime)),
    };
    let issuer = state.config.issuer().to_string();
    let page = SecretPage {
        nav: admin.nav(),
        name: settings.name,
        expires: registered.client_secret.as_ref().and(expires).map(|t| admin.zone.at(t).local),
        client_id: registered.client_id,
        client_secret: registered.client_secret,
        discovery: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        rotated: false,
    };
    Ok(html(StatusCode::CREATED, &page))
}

/// POST /admin/apps/{id}: saves one section's fields (`section`), or every field when the
/// whole form is sent (no `section`).
fn update(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    let section = Section::parse(params.get("section").unwrap_or("")).unwrap_or(Section::Overview);
    let form = AppForm::merge(&AppForm::from_client(&app), AppForm::from_params(&params, Some(app.is_public)), params.get("section").unwrap_or(""));
    let settings = match form.validate() {
        Ok(s) => s,
        Err(errors) => return sections::page(&state, &conn, &admin, app, section, Some(form), errors, None),
    };
    let saved = store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        match store::clients::update(tx, &app.id, &settings) {
            Err(store::StoreError::Conflict(m)) => return Ok(Err(m)),
            other => other?,
        }
        let after = store::clients::by_id(tx, &app.id)?.expect("exists");
        directory::audit_change(tx, &admin.user.id, "app_updated", Some(&app.name), Some(&snapshot(&app)), Some(&snapshot(&after)), now)?;
        Ok(Ok(()))
    })?;
    if let Err(m) = saved {
        return sections::page(&state, &conn, &admin, app, section, Some(form), Errors::from([("name", capitalise(&m))]), None);
    }
    Ok(see_other(&format!("/admin/apps/{}{}", app.id, section.path())))
}

fn rotate_secret(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    if app.is_public {
        return Err(ErrorPage::bad_request("No secret", "A public application has no secret to rotate.").into());
    }
    let mut errors = Errors::new();
    let grace_secs: i64 = match params.get("grace").unwrap_or("0").parse() {
        Ok(g) if actions::SECRET_GRACES.contains(&g) => g,
        _ => {
            errors.insert("grace", "Choose one of the offered grace periods.".into());
            0
        }
    };
    let lifetime_days = match secret_lifetime(&params, now) {
        Ok((days, _)) => days.parse().expect("one of SECRET_LIFETIMES"),
        Err(e) => {
            errors.insert("lifetime", e);
            0
        }
    };
    if !errors.is_empty() {
        return sections::page(&state, &conn, &admin, app, Section::Credentials, None, errors, None);
    }
    // The same rotation as `latchkey client rotate-secret`.
    let rotated = actions::rotate_client_secret(&mut conn, &admin.user.id, &app, actions::Rotation { grace_secs, lifetime_days }, now)?;
    let (secret, expires) = (rotated.secret, rotated.expires_at);
    let issuer = state.config.issuer().to_string();
    let page = SecretPage {
        nav: admin.nav(),
        name: app.name,
        client_id: app.id,
        client_secret: Some(secret),
        discovery: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        rotated: true,
        expires: expires.map(|t| admin.zone.at(t).local),
    };
    Ok(html(StatusCode::OK, &page))
}

fn set_enabled(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    let enable = params.get("enabled") == Some("1");
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        store::clients::set_enabled(tx, &app.id, enable)?;
        if !enable {
            directory::revoke_client_grants(tx, &app.id, now)?;
        }
        let action = if enable { "app_enabled" } else { "app_disabled" };
        directory::audit_change(
            tx,
            &admin.user.id,
            action,
            Some(&app.name),
            Some(&format!("{{\"enabled\":{}}}", app.enabled)),
            Some(&format!("{{\"enabled\":{enable}}}")),
            now,
        )
    })?;
    Ok(see_other(&format!("/admin/apps/{}", app.id)))
}

fn delete(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    if params.get("confirm") != Some(app.name.as_str()) {
        let errors = Errors::from([("confirm", "Type the application's name to confirm.".to_string())]);
        return sections::page(&state, &conn, &admin, app, Section::Overview, None, errors, None);
    }
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        store::clients::delete(tx, &app.id)?;
        directory::audit_change(tx, &admin.user.id, "app_deleted", Some(&app.name), Some(&snapshot(&app)), None, now)
    })?;
    Ok(see_other("/admin/apps"))
}

/// POST /admin/apps/{id}/assignments: assigns the users and groups ticked in the pickers
/// (`user_{id}`, `group_{id}`), or one typed by name (`kind`, `name`). With `pick`, only
/// searches: the section is shown again with the matches, nothing saved.
fn assign(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    let users = picker::ticked_in(&params, "user");
    let groups = picker::ticked_in(&params, "group");
    let search = sections::Searches { user_q: params.get("q_user").unwrap_or("").into(), group_q: params.get("q_group").unwrap_or("").into(), users, groups };
    if params.get("pick").is_some() {
        return sections::page(&state, &conn, &admin, app, Section::Assignments, None, Errors::new(), Some(search));
    }
    let mut chosen: Vec<(&str, String, String)> = vec![];
    let mut errors = Errors::new();
    if let Some(name) = params.get("name").map(str::trim) {
        let kind = params.get("kind").unwrap_or("user");
        let principal = match kind {
            "user" => store::users::by_username(&conn, name)?.map(|u| u.id),
            "group" => directory::group_by_name(&conn, name)?.map(|g| g.id),
            _ => None,
        };
        match principal {
            Some(p) => chosen.push((if kind == "group" { "group" } else { "user" }, p, name.to_string())),
            None => {
                errors.insert(if kind == "group" { "group" } else { "user" }, format!("No {kind} named {name:?}."));
            }
        }
    }
    for (kind, field, ids) in [(picker::Kind::User, "user", &search.users), (picker::Kind::Group, "group", &search.groups)] {
        let (known, unknown) = picker::resolve(&conn, kind, ids)?;
        if !unknown.is_empty() {
            errors.insert(if field == "user" { "user" } else { "group" }, unknown.join(" "));
        }
        chosen.extend(known.into_iter().map(|p| (field, p.id, p.label)));
    }
    if chosen.is_empty() && errors.is_empty() {
        errors.insert("user", "Choose at least one user or group to assign.".into());
    }
    if !errors.is_empty() {
        return sections::page(&state, &conn, &admin, app, Section::Assignments, None, errors, Some(search));
    }
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        for (kind, principal, label) in &chosen {
            if directory::assign(tx, &app.id, kind, principal)? {
                let after = serde_json::json!({ "type": kind, "id": principal, "name": label }).to_string();
                directory::audit_change(tx, &admin.user.id, "app_assigned", Some(&format!("{}: {kind} {label}", app.name)), None, Some(&after), now)?;
            }
        }
        Ok(())
    })?;
    Ok(see_other(&format!("/admin/apps/{}/assignments", app.id)))
}

fn unassign(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    let (kind, principal) = (params.get("kind").unwrap_or(""), params.get("principal").unwrap_or(""));
    if directory::unassign(&conn, &app.id, kind, principal)? {
        let before = serde_json::json!({ "type": kind, "id": principal }).to_string();
        directory::audit_change(&conn, &admin.user.id, "app_unassigned", Some(&format!("{}: {kind} {principal}", app.name)), Some(&before), None, now)?;
    }
    Ok(see_other(&format!("/admin/apps/{}/assignments", app.id)))
}

/// Largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 100 * 1024;

/// What a logo's bytes are: PNG, JPEG or SVG, by their first bytes (not the browser's word).
pub fn logo_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    let text = std::str::from_utf8(data).ok()?;
    let start = text.trim_start().trim_start_matches('\u{feff}');
    (start.starts_with("<svg") || (start.starts_with("<?xml") && text.contains("<svg"))).then_some("image/svg+xml")
}

/// POST /admin/apps/{id}/logo (multipart): PNG, JPEG or SVG up to 100 KB, kept in the database
/// and served by latchkey, so no page loads anything from elsewhere.
fn upload_logo(admin: Admin<Apps>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    let part = admin.upload.as_ref().and_then(|(body, boundary)| crate::web::multipart::field(body, boundary, "logo").map(|p| p.data.to_vec()));
    let refuse = |why: &str| sections::page(&state, &conn, &admin, app.clone(), Section::Overview, None, Errors::from([("logo", why.to_string())]), None);
    let Some(data) = part.filter(|d| !d.is_empty()) else { return refuse("Choose a PNG, JPEG or SVG file.") };
    if data.len() > MAX_LOGO_BYTES {
        return refuse("The logo is larger than 100 KB.");
    }
    let Some(kind) = logo_type(&data) else { return refuse("The logo must be a PNG, JPEG or SVG image.") };
    store::clients::set_logo(&conn, &app.id, kind, &data, now)?;
    directory::audit_change(&conn, &admin.user.id, "app_logo_changed", Some(&app.name), None, Some(kind), now)?;
    Ok(see_other(&format!("/admin/apps/{}", app.id)))
}

/// GET /apps/{id}/logo: the uploaded logo, with a policy that lets an SVG run nothing.
pub fn logo(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let Some((kind, data)) = store::clients::logo(&conn, &id)? else {
        return Err(ErrorPage { status: StatusCode::NOT_FOUND, title: "No logo".into(), message: "This application has no logo.".into() }.into());
    };
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header((actix_web::http::header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; sandbox"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "public, max-age=300"))
        .body(data))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/apps/{id}/logo", web::get().to(crate::web::offload(logo)))
        .route("/admin/apps/{id}/logo", web::post().to(crate::admin::page(upload_logo)))
        .route("/admin/apps", web::get().to(crate::admin::page(list)))
        .route("/admin/apps/new", web::get().to(crate::admin::page(new_form)))
        .route("/admin/apps/new", web::post().to(crate::admin::page(create)))
        .route("/admin/apps/{id}", web::get().to(crate::admin::page(sections::show)))
        .route("/admin/apps/{id}", web::post().to(crate::admin::page(update)))
        .route("/admin/apps/{id}/secret", web::post().to(crate::admin::page(rotate_secret)))
        .route("/admin/apps/{id}/enabled", web::post().to(crate::admin::page(set_enabled)))
        .route("/admin/apps/{id}/delete", web::post().to(crate::admin::page(delete)))
        .route("/admin/apps/{id}/assignments", web::post().to(crate::admin::page(assign)))
        .route("/admin/apps/{id}/assignments/remove", web::post().to(crate::admin::page(unassign)))
        .route("/admin/apps/{id}/{section}", web::get().to(crate::admin::page(sections::show_section)));
    picker::configure(cfg);
}
