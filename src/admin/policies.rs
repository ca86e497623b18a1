//! Conditional access in the console: security defaults, policies (form, templates, JSON
//! import/export, impact preview), named locations, and the What If tool. Global admins only.

mod form;
mod locations;
mod whatif;

pub use form::PolicyForm;

use super::list::{Columns, Dir, ListQuery, Pager};
use super::picker::{self, Kind, Picker};
use super::{Admin, Global, Nav, Need, capitalise};
use crate::AppState;
use crate::auth::mfa::new_id;
use crate::i18n::filters;
use crate::policy::evaluate::{self, Context};
use crate::policy::model::*;
use crate::policy::templates;
use crate::store::db::Connection;
use crate::store::{self, directory as dir, policies as pol};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use std::collections::BTreeMap;

type Errors = BTreeMap<&'static str, String>;

const DEFAULTS_ON_EXPLANATION: &str = "Security defaults are on. Security defaults and conditional-access policies are mutually exclusive: turn security defaults off (on this page) before switching a policy on. Report-only and off are allowed.";

/// What a policy can target, as (id, name): latchkey's own portal and console, then every app.
fn targets(conn: &Connection) -> Result<Vec<(String, String)>, store::StoreError> {
    let built_in = crate::gate::BUILT_IN_TARGETS.iter().map(|(id, name)| (id.to_string(), name.to_string()));
    Ok(built_in.chain(store::clients::all(conn)?.into_iter().map(|c| (c.id, c.name))).collect())
}

fn not_found() -> PageError {
    ErrorPage { status: StatusCode::NOT_FOUND, title: "No such policy".into(), message: "It may have been deleted.".into() }.into()
}

pub struct PolicyRow {
    pub id: String,
    pub name: String,
    pub state: State,
    pub summary: String,
}

fn summary(p: &Policy) -> String {
    let who = if p.include_users.all { "all users".to_string() } else { "selected users".to_string() };
    let what = if p.grant.block {
        "block".to_string()
    } else if p.grant.controls.is_empty() {
        String::new()
    } else {
        let joiner = if p.grant.operator == Operator::AnyOf { " or " } else { " and " };
        format!("require {}", p.grant.controls.iter().map(|c| c.label()).collect::<Vec<_>>().join(joiner))
    };
    let freq = p.session.sign_in_frequency_hours.map(|h| format!("; sign in every {h} h")).unwrap_or_default();
    format!("{who}: {what}{freq}")
}

#[derive(Template)]
#[template(path = "admin/policies.html")]
struct PoliciesPage {
    nav: Nav,
    defaults_on: bool,
    defaults: Vec<PolicyRow>,
    policies: Vec<PolicyRow>,
    pager: Pager,
    q: String,
    state: &'static str,
    templates: Vec<(&'static str, &'static str, String)>,
    error: Option<String>,
    import: String,
}

const COLUMNS: Columns =
    Columns { sorts: &[("name", "name COLLATE NOCASE"), ("state", "state"), ("updated", "updated_at")], default: ("name", Dir::Asc), tiebreak: "id" };

fn rows(list: &[Policy]) -> Vec<PolicyRow> {
    list.iter().map(|p| PolicyRow { id: p.id.clone(), name: p.name.clone(), state: p.state, summary: summary(p) }).collect()
}

/// The policies page: security defaults, the policies (search, state filter, sort, pages),
/// templates and import.
fn policies_page(conn: &Connection, admin: &Admin<impl Need>, params: &Params, error: Option<String>, import: String) -> Result<HttpResponse, PageError> {
    let mut query = ListQuery::parse("/admin/policies", params, &COLUMNS);
    let state = params.get("state").and_then(State::parse);
    query.keep("state", state.map(State::as_str).unwrap_or(""));
    let total = pol::count(conn, query.search(), state)?;
    query.clamp(total);
    let page = PoliciesPage {
        nav: admin.nav(),
        defaults_on: pol::security_defaults(conn)?,
        defaults: rows(&templates::security_defaults()),
        policies: rows(&pol::page(conn, query.search(), state, &query.window())?),
        pager: query.pager(total),
        q: query.q().to_string(),
        state: state.map(State::as_str).unwrap_or(""),
        templates: templates::all().into_iter().map(|(k, d, p)| (k, d, p.name)).collect(),
        import,
        error,
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(html(status, &page))
}

fn list(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    policies_page(&conn, &admin, &params, None, String::new())
}

/// POST /admin/security-defaults: turning them off is a deliberate step (a confirmation box).
fn set_defaults(admin: Admin<Global>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let enable = p.get("enabled") == Some("1");
    if enable && pol::all(&conn)?.iter().any(|p| p.state == State::On) {
        let msg = "Turn every conditional-access policy off (or to report-only) before turning security defaults back on: the two are mutually exclusive.";
        return policies_page(&conn, &admin, &Params::default(), Some(msg.into()), String::new());
    }
    if !enable && p.get("confirm").is_none() {
        let msg = "To turn security defaults off, tick the box confirming that conditional-access policies will protect your users instead.";
        return policies_page(&conn, &admin, &Params::default(), Some(msg.into()), String::new());
    }
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        let before = pol::security_defaults(tx)?;
        pol::set_security_defaults(tx, enable)?;
        let snap = |on: bool| format!("{{\"security_defaults\":{on}}}");
        dir::audit_change(tx, &admin.user.id, "security_defaults_changed", None, Some(&snap(before)), Some(&snap(enable)), now)
    })?;
    Ok(see_other("/admin/policies"))
}

#[derive(Template)]
#[template(path = "admin/policy_form.html")]
struct FormPage {
    nav: Nav,
    form: PolicyForm,
    errors: Errors,
    policy_id: Option<String>,
    user_in: Picker,
    group_in: Picker,
    user_ex: Picker,
    group_ex: Picker,
    app_in: Picker,
    app_ex: Picker,
    loc_in: Picker,
    loc_ex: Picker,
    platforms: Vec<&'static str>,
    impact: Option<Impact>,
}

pub struct Impact {
    pub sign_ins: usize,
    pub blocked: usize,
    pub challenged: usize,
}

fn form_page(
    conn: &Connection,
    admin: &Admin<impl Need>,
    form: PolicyForm,
    errors: Errors,
    policy_id: Option<String>,
    impact: Option<Impact>,
) -> Result<HttpResponse, PageError> {
    let pick = |kind: Kind, field: &str, legend: &'static str| -> Result<Picker, store::StoreError> {
        let mut p = picker::build(conn, kind, field, legend, &form.picked_ids(field), form.get(&format!("q_{field}")), true)?;
        p.error = errors.get(field).cloned();
        Ok(p)
    };
    let page = FormPage {
        nav: admin.nav(),
        policy_id,
        user_in: pick(Kind::User, "user_in", "admin.pf.pick_users_in")?,
        group_in: pick(Kind::Group, "group_in", "admin.pf.pick_groups_in")?,
        user_ex: pick(Kind::User, "user_ex", "admin.pf.users_ex")?,
        group_ex: pick(Kind::Group, "group_ex", "admin.pf.groups_ex")?,
        app_in: pick(Kind::App, "app_in", "admin.pf.pick_apps_in")?,
        app_ex: pick(Kind::App, "app_ex", "admin.pf.pick_apps_ex")?,
        loc_in: pick(Kind::Location, "loc_in", "admin.pf.pick_locs_in")?,
        loc_ex: pick(Kind::Location, "loc_ex", "admin.pf.pick_locs_ex")?,
        platforms: Platform::ALL.iter().map(|p| p.as_str()).collect(),
        impact,
        form,
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html(status, &page))
}

fn new_form(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let form = match q.get("template").and_then(|t| templates::all().into_iter().find(|(k, _, _)| *k == t)) {
        Some((_, _, p)) => PolicyForm::from_policy(&p),
        None => {
            let mut f = PolicyForm::default();
            f.text.insert("state".into(), "report_only".into());
            f.text.insert("grant".into(), "grant".into());
            f
        }
    };
    form_page(&conn, &admin, form, Errors::new(), None, None)
}

const LOCKOUT_EXPLANATION: &str = "Switched on, this policy would block you from the admin console from where you are now. Exclude yourself (or a break-glass account or group you are in) first, or save it as report-only to see whom it would block.";

/// Entra's "don't lock yourself out": whether `p`, switched on, blocks the administrator saving
/// it from the console on this very request (their roles, groups, network and methods).
fn locks_out(conn: &Connection, req: &HttpRequest, admin: &Admin<impl Need>, p: &Policy, now: i64) -> Result<bool, store::StoreError> {
    if p.state != State::On || !p.grant.block {
        return Ok(false);
    }
    crate::admin::blocked_from_console(conn, req, admin, std::slice::from_ref(p), now)
}

/// Saves a policy; refuses to switch one on while security defaults are on, or one that would
/// lock the administrator saving it out of the console.
fn save(
    conn: &mut Connection,
    req: &HttpRequest,
    admin: &Admin<impl Need>,
    p: &Policy,
    before: Option<&Policy>,
    now: i64,
) -> Result<Result<(), Errors>, PageError> {
    if p.state == State::On && pol::security_defaults(conn)? {
        return Ok(Err(Errors::from([("state", DEFAULTS_ON_EXPLANATION.to_string())])));
    }
    if locks_out(conn, req, admin, p, now)? {
        return Ok(Err(Errors::from([("state", LOCKOUT_EXPLANATION.to_string())])));
    }
    let outcome = store::transaction(conn, |tx| -> Result<_, store::StoreError> {
        match pol::save(tx, p, now) {
            Err(store::StoreError::Conflict(m)) => return Ok(Err(Errors::from([("name", capitalise(&m))]))),
            other => other?,
        }
        let json = |p: &Policy| serde_json::to_string(p).expect("policy serialises");
        let action = if before.is_some() { "policy_updated" } else { "policy_created" };
        dir::audit_change(tx, &admin.user.id, action, Some(&p.name), before.map(json).as_deref(), Some(&json(p)), now)?;
        Ok(Ok(()))
    })?;
    Ok(outcome)
}

fn create(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let form = PolicyForm::from_params(params);
    if form.text.contains_key("pick") {
        return form_page(&conn, &admin, form, Errors::new(), None, None);
    }
    let policy = match form.to_policy(&conn, new_id())? {
        Ok(p) => p,
        Err(errors) => return form_page(&conn, &admin, form, errors, None, None),
    };
    match save(&mut conn, req, &admin, &policy, None, now)? {
        Ok(()) => Ok(see_other(&format!("/admin/policies/{}", policy.id))),
        Err(errors) => form_page(&conn, &admin, form, errors, None, None),
    }
}

/// Replays `p` (as if on) over the last 30 days of logged sign-in contexts.
fn impact(conn: &Connection, p: &Policy, now: i64) -> Result<Impact, store::StoreError> {
    let mut on = p.clone();
    on.state = State::On;
    let mut imp = Impact { sign_ins: 0, blocked: 0, challenged: 0 };
    for logged in pol::logged_contexts(conn, now - 30 * 86_400)? {
        let Ok(ctx) = serde_json::from_str::<Context>(&logged) else { continue };
        let r = &evaluate::evaluate(std::slice::from_ref(&on), &ctx).results[0];
        imp.sign_ins += 1;
        imp.blocked += usize::from(r.blocks());
        imp.challenged += usize::from(r.challenges());
    }
    Ok(imp)
}

fn show(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let p = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    let imp = impact(&conn, &p, state.clock.now())?;
    form_page(&conn, &admin, PolicyForm::from_policy(&p), Errors::new(), Some(p.id.clone()), Some(imp))
}

fn update(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let before = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    let form = PolicyForm::from_params(params);
    if form.text.contains_key("pick") {
        return form_page(&conn, &admin, form, Errors::new(), Some(before.id), None);
    }
    let policy = match form.to_policy(&conn, before.id.clone())? {
        Ok(p) => p,
        Err(errors) => return form_page(&conn, &admin, form, errors, Some(before.id), None),
    };
    match save(&mut conn, req, &admin, &policy, Some(&before), now)? {
        Ok(()) => Ok(see_other(&format!("/admin/policies/{}", policy.id))),
        Err(errors) => form_page(&conn, &admin, form, errors, Some(before.id), None),
    }
}

fn set_state(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let before = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    let Some(new_state) = params.get("state").and_then(State::parse) else {
        return Err(ErrorPage::bad_request("Invalid state", "A policy is on, off, or report-only.").into());
    };
    let mut p = before.clone();
    p.state = new_state;
    match save(&mut conn, req, &admin, &p, Some(&before), now)? {
        Ok(()) => Ok(see_other("/admin/policies")),
        Err(errors) => policies_page(&conn, &admin, &Params::default(), errors.into_values().next(), String::new()),
    }
}

fn delete(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let p = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        pol::delete(tx, &p.id)?;
        dir::audit_change(tx, &admin.user.id, "policy_deleted", Some(&p.name), Some(&serde_json::to_string(&p).expect("serialises")), None, now)
    })?;
    Ok(see_other("/admin/policies"))
}

fn export(_admin: Admin<Global>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let body = serde_json::to_string_pretty(&pol::all(&conn)?).expect("policies serialise");
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"latchkey-policies.json\""))
        .body(body))
}

/// POST /admin/policies/import: a JSON list of policies, all saved or none.
fn import(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let text = params.get("json").unwrap_or("").to_string();
    let fail = |conn: &Connection, msg: String| policies_page(conn, &admin, &Params::default(), Some(msg), text.clone());
    let mut list: Vec<Policy> = match serde_json::from_str(&text) {
        Ok(l) => l,
        Err(e) => return fail(&conn, format!("The JSON is not a list of policies: {e}")),
    };
    let defaults_on = pol::security_defaults(&conn)?;
    for p in &mut list {
        if let Err(e) = p.check() {
            return fail(&conn, format!("Policy {:?}: {e}.", p.name));
        }
        if p.state == State::On && defaults_on {
            return fail(&conn, format!("Policy {:?}: {DEFAULTS_ON_EXPLANATION}", p.name));
        }
        if locks_out(&conn, req, &admin, p, now)? {
            return fail(&conn, format!("Policy {:?}: {LOCKOUT_EXPLANATION}", p.name));
        }
        if p.id.is_empty() {
            p.id = new_id();
        }
    }
    let outcome = store::transaction(&mut conn, |tx| -> Result<Result<(), String>, store::StoreError> {
        for p in &list {
            let before = pol::by_id(tx, &p.id)?;
            match pol::save(tx, p, now) {
                Err(store::StoreError::Conflict(m)) => return Ok(Err(capitalise(&m))),
                other => other?,
            }
            let json = |p: &Policy| serde_json::to_string(p).expect("serialises");
            dir::audit_change(tx, &admin.user.id, "policy_imported", Some(&p.name), before.as_ref().map(json).as_deref(), Some(&json(p)), now)?;
        }
        Ok(Ok(()))
    })?;
    match outcome {
        Ok(()) => Ok(see_other("/admin/policies")),
        Err(msg) => fail(&conn, msg),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/policies", web::get().to(crate::admin::page(list)))
        .route("/admin/security-defaults", web::post().to(crate::admin::page(set_defaults)))
        .route("/admin/policies/new", web::get().to(crate::admin::page(new_form)))
        .route("/admin/policies/new", web::post().to(crate::admin::page(create)))
        .route("/admin/policies/export", web::get().to(crate::admin::page(export)))
        .route("/admin/policies/import", web::post().to(crate::admin::page(import)))
        .route("/admin/policies/{id}", web::get().to(crate::admin::page(show)))
        .route("/admin/policies/{id}", web::post().to(crate::admin::page(update)))
        .route("/admin/policies/{id}/state", web::post().to(crate::admin::page(set_state)))
        .route("/admin/policies/{id}/delete", web::post().to(crate::admin::page(delete)))
        .route("/admin/locations", web::get().to(crate::admin::page(locations::locations)))
        .route("/admin/locations", web::post().to(crate::admin::page(locations::add_location)))
        .route("/admin/locations/{id}/delete", web::post().to(crate::admin::page(locations::delete_location)))
        .route("/admin/whatif", web::get().to(crate::admin::page(whatif::what_if)));
}
