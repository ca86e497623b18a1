//! Conditional access in the console: security defaults, policies (form, templates, JSON
//! import/export, impact preview), named locations, and the What If tool. Global admins only.

use super::{Admin, Global, Nav, Need, capitalise};
use crate::AppState;
use crate::auth::mfa::new_id;
use crate::i18n::filters;
use crate::policy::evaluate::{self, Context, PolicyResult};
use crate::policy::locations::IpRange;
use crate::policy::model::*;
use crate::policy::{self, templates};
use crate::store::{self, directory as dir, policies as pol};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

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

/// The form as submitted: checkbox names that were ticked, and the text fields.
#[derive(Debug, Default, Clone)]
pub struct PolicyForm {
    pub checked: BTreeSet<String>,
    pub text: BTreeMap<String, String>,
}

impl PolicyForm {
    pub fn on(&self, key: &str) -> bool {
        self.checked.contains(key)
    }

    pub fn get(&self, key: &str) -> &str {
        self.text.get(key).map(String::as_str).unwrap_or("")
    }

    fn from_params(p: Params) -> Self {
        // Text fields and selects keep their value even when it is the word "on" (the State
        // select's "On" is not a ticked checkbox).
        const TEXT: [&str; 10] = ["state", "name", "users_in", "users_ex", "groups_in", "groups_ex", "loc_mode", "frequency", "grant", "operator"];
        let mut f = PolicyForm::default();
        for (k, v) in p.into_map() {
            if v == "on" && !TEXT.contains(&k.as_str()) {
                f.checked.insert(k);
            } else {
                f.text.insert(k, v);
            }
        }
        f
    }

    /// The form showing `p` (ids turned back into the names an admin types).
    fn from_policy(conn: &Connection, p: &Policy) -> Result<Self, store::StoreError> {
        let mut f = PolicyForm::default();
        let mut tick = |k: String, on: bool| {
            if on {
                f.checked.insert(k);
            }
        };
        tick("users_all".into(), p.include_users.all);
        tick("apps_all".into(), p.include_apps.all);
        for r in &p.include_users.roles {
            tick(format!("role_in_{r}"), true);
        }
        for r in &p.exclude_users.roles {
            tick(format!("role_ex_{r}"), true);
        }
        for a in &p.include_apps.apps {
            tick(format!("app_in_{a}"), true);
        }
        for a in &p.exclude_apps.apps {
            tick(format!("app_ex_{a}"), true);
        }
        for t in &p.conditions.client_app_types {
            tick(format!("cat_{}", snake(t)), true);
        }
        for r in &p.conditions.sign_in_risk {
            tick(format!("sir_{}", r.as_str()), true);
        }
        for r in &p.conditions.user_risk {
            tick(format!("ur_{}", r.as_str()), true);
        }
        for pl in &p.conditions.platforms_include {
            tick(format!("plat_in_{}", pl.as_str()), true);
        }
        for pl in &p.conditions.platforms_exclude {
            tick(format!("plat_ex_{}", pl.as_str()), true);
        }
        if let Some(l) = &p.conditions.locations {
            tick("loc_ex_trusted".into(), l.exclude.all_trusted);
            for id in &l.include.locations {
                tick(format!("loc_in_{id}"), true);
            }
            for id in &l.exclude.locations {
                tick(format!("loc_ex_{id}"), true);
            }
            f.text.insert(
                "loc_mode".into(),
                if l.include.all_trusted {
                    "trusted"
                } else if l.include.all {
                    "any"
                } else {
                    "selected"
                }
                .into(),
            );
        }
        for c in &p.grant.controls {
            f.checked.insert(format!("ctl_{}", snake(c)));
        }
        let names =
            |ids: &[String], lookup: &dyn Fn(&str) -> Option<String>| ids.iter().map(|i| lookup(i).unwrap_or_else(|| i.clone())).collect::<Vec<_>>().join(", ");
        let user_name = |id: &str| store::users::by_id(conn, id).ok().flatten().map(|u| u.username);
        let group_name = |id: &str| dir::group(conn, id).ok().flatten().map(|g| g.name);
        f.text.insert("name".into(), p.name.clone());
        f.text.insert("state".into(), p.state.as_str().into());
        f.text.insert("users_in".into(), names(&p.include_users.users, &user_name));
        f.text.insert("users_ex".into(), names(&p.exclude_users.users, &user_name));
        f.text.insert("groups_in".into(), names(&p.include_users.groups, &group_name));
        f.text.insert("groups_ex".into(), names(&p.exclude_users.groups, &group_name));
        f.text.insert("grant".into(), if p.grant.block { "block" } else { "grant" }.into());
        f.text.insert("operator".into(), if p.grant.operator == Operator::AllOf { "all_of" } else { "any_of" }.into());
        f.text.insert("frequency".into(), p.session.sign_in_frequency_hours.map(|h| h.to_string()).unwrap_or_default());
        Ok(f)
    }

    /// The policy these fields describe, or errors keyed by field.
    fn to_policy(&self, conn: &Connection, id: String) -> Result<Result<Policy, Errors>, store::StoreError> {
        let mut errors = Errors::new();
        let split = |s: &str| s.split([',', '\n']).map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect::<Vec<_>>();
        let users = |field: &'static str, errors: &mut Errors| -> Result<Vec<String>, store::StoreError> {
            let mut ids = vec![];
            for name in split(self.get(field)) {
                match store::users::by_username(conn, &name)? {
                    Some(u) => ids.push(u.id),
                    None => {
                        errors.insert(field, format!("No user named {name:?}."));
                    }
                }
            }
            Ok(ids)
        };
        let users_in = users("users_in", &mut errors)?;
        let users_ex = users("users_ex", &mut errors)?;
        let groups = |field: &'static str, errors: &mut Errors| -> Result<Vec<String>, store::StoreError> {
            let mut ids = vec![];
            for name in split(self.get(field)) {
                match dir::group_by_name(conn, &name)? {
                    Some(g) => ids.push(g.id),
                    None => {
                        errors.insert(field, format!("No group named {name:?}."));
                    }
                }
            }
            Ok(ids)
        };
        let groups_in = groups("groups_in", &mut errors)?;
        let groups_ex = groups("groups_ex", &mut errors)?;
        let ticked = |prefix: &str| self.checked.iter().filter_map(|k| k.strip_prefix(prefix)).map(String::from).collect::<Vec<_>>();
        let roles_in = ticked("role_in_");
        let roles_ex = ticked("role_ex_");
        let state = State::parse(self.get("state")).unwrap_or_else(|| {
            errors.insert("state", "Choose a state: report-only, on or off.".into());
            State::ReportOnly
        });
        let client_app_types = ticked("cat_").iter().filter_map(|t| serde_json::from_value(serde_json::json!(t)).ok()).collect();
        let risks = |prefix: &str| ticked(prefix).iter().filter_map(|r| Risk::parse(r)).collect::<Vec<_>>();
        let platforms = |prefix: &str| ticked(prefix).iter().filter_map(|p| Platform::ALL.iter().find(|x| x.as_str() == p).copied()).collect::<Vec<_>>();
        let locations = match self.get("loc_mode") {
            "trusted" | "selected" | "any"
                if !ticked("loc_in_").is_empty() || self.get("loc_mode") != "selected" || self.on("loc_ex_trusted") || !ticked("loc_ex_").is_empty() =>
            {
                let mode = self.get("loc_mode");
                let include =
                    Locations { all: mode == "any", all_trusted: mode == "trusted", locations: if mode == "selected" { ticked("loc_in_") } else { vec![] } };
                let exclude = Locations { all: false, all_trusted: self.on("loc_ex_trusted"), locations: ticked("loc_ex_") };
                let any_everywhere = include.all && !exclude.all_trusted && exclude.locations.is_empty();
                (!any_everywhere).then_some(LocationCondition { include, exclude })
            }
            _ => None,
        };
        let controls: Vec<Control> = ticked("ctl_").iter().filter_map(|c| serde_json::from_value(serde_json::json!(c)).ok()).collect();
        let frequency = match self.get("frequency").trim() {
            "" => None,
            h => match h.parse::<u32>() {
                Ok(h) => Some(h),
                Err(_) => {
                    errors.insert("frequency", "Sign-in frequency must be a whole number of hours.".into());
                    None
                }
            },
        };
        let block = self.get("grant") == "block";
        let mut p = Policy {
            id,
            name: self.get("name").to_string(),
            state,
            include_users: Principals { all: self.on("users_all"), users: users_in, groups: groups_in, roles: roles_in },
            exclude_users: Principals { all: false, users: users_ex, groups: groups_ex, roles: roles_ex },
            include_apps: Apps { all: self.on("apps_all"), apps: ticked("app_in_") },
            exclude_apps: Apps { all: false, apps: ticked("app_ex_") },
            conditions: Conditions {
                client_app_types,
                sign_in_risk: risks("sir_"),
                user_risk: risks("ur_"),
                locations,
                platforms_include: platforms("plat_in_"),
                platforms_exclude: platforms("plat_ex_"),
            },
            grant: Grant {
                block,
                operator: if self.get("operator") == "all_of" { Operator::AllOf } else { Operator::AnyOf },
                controls: if block { vec![] } else { controls },
            },
            session: SessionControls { sign_in_frequency_hours: frequency },
        };
        if errors.is_empty()
            && let Err(e) = p.check()
        {
            let field = match e {
                PolicyError::Name => "name",
                PolicyError::NoUsers => "users",
                PolicyError::NoApps => "apps",
                PolicyError::Frequency => "frequency",
                PolicyError::NoEffect | PolicyError::BlockAndControls => "grant",
            };
            errors.insert(field, capitalise(&e.to_string()));
        }
        Ok(if errors.is_empty() { Ok(p) } else { Err(errors) })
    }
}

fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
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
    templates: Vec<(&'static str, &'static str, String)>,
    error: Option<String>,
    import: String,
}

fn rows(list: &[Policy]) -> Vec<PolicyRow> {
    list.iter().map(|p| PolicyRow { id: p.id.clone(), name: p.name.clone(), state: p.state, summary: summary(p) }).collect()
}

fn policies_page(conn: &Connection, admin: &Admin<impl Need>, error: Option<String>, import: String) -> Result<HttpResponse, PageError> {
    let page = PoliciesPage {
        nav: admin.nav(),
        defaults_on: pol::security_defaults(conn)?,
        defaults: rows(&templates::security_defaults()),
        policies: rows(&pol::all(conn)?),
        templates: templates::all().into_iter().map(|(k, d, p)| (k, d, p.name)).collect(),
        import,
        error,
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(html(status, &page))
}

async fn list(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    policies_page(&conn, &admin, None, String::new())
}

/// POST /admin/security-defaults: turning them off is a deliberate step (a confirmation box).
async fn set_defaults(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let enable = p.get("enabled") == Some("1");
    if enable && pol::all(&conn)?.iter().any(|p| p.state == State::On) {
        let msg = "Turn every conditional-access policy off (or to report-only) before turning security defaults back on: the two are mutually exclusive.";
        return policies_page(&conn, &admin, Some(msg.into()), String::new());
    }
    if !enable && p.get("confirm").is_none() {
        let msg = "To turn security defaults off, tick the box confirming that conditional-access policies will protect your users instead.";
        return policies_page(&conn, &admin, Some(msg.into()), String::new());
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
    apps: Vec<(String, String)>,
    locations: Vec<(String, String)>,
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
    let page = FormPage {
        nav: admin.nav(),
        form,
        policy_id,
        apps: targets(conn)?,
        locations: pol::locations(conn)?.into_iter().map(|l| (l.id, l.name)).collect(),
        platforms: Platform::ALL.iter().map(|p| p.as_str()).collect(),
        impact,
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html(status, &page))
}

async fn new_form(admin: Admin<Global>, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let form = match q.get("template").and_then(|t| templates::all().into_iter().find(|(k, _, _)| *k == t)) {
        Some((_, _, p)) => PolicyForm::from_policy(&conn, &p)?,
        None => {
            let mut f = PolicyForm::default();
            f.text.insert("state".into(), "report_only".into());
            f.text.insert("grant".into(), "grant".into());
            f
        }
    };
    form_page(&conn, &admin, form, Errors::new(), None, None)
}

/// Saves a policy; refuses to switch one on while security defaults are on.
fn save(conn: &mut Connection, admin: &Admin<impl Need>, p: &Policy, before: Option<&Policy>, now: i64) -> Result<Result<(), Errors>, PageError> {
    if p.state == State::On && pol::security_defaults(conn)? {
        return Ok(Err(Errors::from([("state", DEFAULTS_ON_EXPLANATION.to_string())])));
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

async fn create(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let form = PolicyForm::from_params(params);
    let policy = match form.to_policy(&conn, new_id())? {
        Ok(p) => p,
        Err(errors) => return form_page(&conn, &admin, form, errors, None, None),
    };
    match save(&mut conn, &admin, &policy, None, now)? {
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

async fn show(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let p = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    let imp = impact(&conn, &p, state.clock.now())?;
    form_page(&conn, &admin, PolicyForm::from_policy(&conn, &p)?, Errors::new(), Some(p.id.clone()), Some(imp))
}

async fn update(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let before = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    let form = PolicyForm::from_params(params);
    let policy = match form.to_policy(&conn, before.id.clone())? {
        Ok(p) => p,
        Err(errors) => return form_page(&conn, &admin, form, errors, Some(before.id), None),
    };
    match save(&mut conn, &admin, &policy, Some(&before), now)? {
        Ok(()) => Ok(see_other(&format!("/admin/policies/{}", policy.id))),
        Err(errors) => form_page(&conn, &admin, form, errors, Some(before.id), None),
    }
}

async fn set_state(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let before = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    let Some(new_state) = params.get("state").and_then(State::parse) else {
        return Err(ErrorPage::bad_request("Invalid state", "A policy is on, off, or report-only.").into());
    };
    let mut p = before.clone();
    p.state = new_state;
    match save(&mut conn, &admin, &p, Some(&before), now)? {
        Ok(()) => Ok(see_other("/admin/policies")),
        Err(errors) => policies_page(&conn, &admin, errors.into_values().next(), String::new()),
    }
}

async fn delete(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let p = pol::by_id(&conn, &id)?.ok_or_else(not_found)?;
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        pol::delete(tx, &p.id)?;
        dir::audit_change(tx, &admin.user.id, "policy_deleted", Some(&p.name), Some(&serde_json::to_string(&p).expect("serialises")), None, now)
    })?;
    Ok(see_other("/admin/policies"))
}

async fn export(_admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let body = serde_json::to_string_pretty(&pol::all(&conn)?).expect("policies serialise");
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"latchkey-policies.json\""))
        .body(body))
}

/// POST /admin/policies/import: a JSON list of policies, all saved or none.
async fn import(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let text = params.get("json").unwrap_or("").to_string();
    let fail = |conn: &Connection, msg: String| policies_page(conn, &admin, Some(msg), text.clone());
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

#[derive(Template)]
#[template(path = "admin/locations.html")]
struct LocationsPage {
    nav: Nav,
    locations: Vec<pol::NamedLocation>,
    errors: Errors,
    name: String,
    ranges: String,
}

async fn locations(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let page = LocationsPage { nav: admin.nav(), locations: pol::locations(&conn)?, errors: Errors::new(), name: String::new(), ranges: String::new() };
    Ok(html(StatusCode::OK, &page))
}

async fn add_location(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let name = p.get("name").unwrap_or("").trim().to_string();
    let ranges_text = p.get("ranges").unwrap_or("").to_string();
    let ranges: Vec<String> = ranges_text.split([',', '\n']).map(str::trim).filter(|r| !r.is_empty()).map(String::from).collect();
    let mut errors = Errors::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert("name", "The location name must be 1 to 100 characters.".into());
    }
    if ranges.is_empty() {
        errors.insert("ranges", "List at least one IP range (CIDR), one per line.".into());
    } else if let Some(Err(e)) = ranges.iter().map(|r| IpRange::parse(r)).find(Result::is_err) {
        errors.insert("ranges", capitalise(&e));
    }
    let risk = Risk::parse(p.get("risk").unwrap_or("none")).unwrap_or(Risk::None);
    if errors.is_empty() {
        let loc = pol::NamedLocation { id: new_id(), name: name.clone(), ranges, trusted: p.get("trusted").is_some(), risk };
        match pol::add_location(&conn, &loc, now) {
            Ok(()) => {
                let after = serde_json::to_string(&loc).expect("serialises");
                dir::audit_change(&conn, &admin.user.id, "location_created", Some(&name), None, Some(&after), now)?;
                return Ok(see_other("/admin/locations"));
            }
            Err(store::StoreError::Conflict(m)) => {
                errors.insert("name", capitalise(&m));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let page = LocationsPage { nav: admin.nav(), locations: pol::locations(&conn)?, errors, name, ranges: ranges_text };
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

async fn delete_location(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    if pol::delete_location(&conn, &id)? {
        dir::audit_change(&conn, &admin.user.id, "location_deleted", Some(&id), None, None, state.clock.now())?;
    }
    Ok(see_other("/admin/locations"))
}

/// The What If form's query, as typed.
pub struct Query(BTreeMap<String, String>);

impl Query {
    pub fn v(&self, k: &str) -> &str {
        self.0.get(k).map(|s| s.trim()).unwrap_or("")
    }
}

#[derive(Template)]
#[template(path = "admin/whatif.html")]
struct WhatIfPage {
    nav: Nav,
    q: Query,
    apps: Vec<(String, String)>,
    platforms: Vec<&'static str>,
    result: Option<(String, Vec<PolicyResult>, bool)>,
    error: Option<String>,
}

/// GET /admin/whatif: the same evaluator a real sign-in uses, for inputs an admin picks.
async fn what_if(admin: Admin<Global>, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let now = state.clock.now();
    let q = Query(Params::parse(req.query_string().as_bytes()).unwrap_or_default().into_map().into_iter().collect());
    let get = |k: &str| q.v(k);
    let apps = targets(&conn)?;
    let mut error = None;
    let mut result = None;
    if !get("user").is_empty() || !get("app").is_empty() {
        let client_app_type: ClientAppType = serde_json::from_value(serde_json::json!(get("client_app_type"))).unwrap_or(ClientAppType::Browser);
        let user = if client_app_type == ClientAppType::ClientCredentials { None } else { store::users::by_username(&conn, get("user"))? };
        if user.is_none() && client_app_type != ClientAppType::ClientCredentials {
            error = Some(format!("No user named {:?}.", get("user")));
        } else if !apps.iter().any(|(id, _)| id == get("app")) {
            error = Some("Choose an application.".into());
        } else if !get("ip").is_empty() && get("ip").parse::<std::net::IpAddr>().is_err() {
            error = Some(format!("{:?} is not an IP address.", get("ip")));
        } else {
            let amr: Vec<String> = match get("methods") {
                "mfa" => vec!["pwd".into(), "otp".into(), "mfa".into()],
                "phishing_resistant" => vec!["pwd".into(), "hwk".into(), "user".into(), "mfa".into()],
                _ if client_app_type == ClientAppType::ClientCredentials => vec![],
                _ => vec!["pwd".into()],
            };
            let platform_ua = match get("platform") {
                "windows" => "Windows NT 10.0",
                "macos" => "Macintosh; Intel Mac OS X 14_5",
                "linux" => "X11; Linux x86_64",
                "ios" => "iPhone; CPU iPhone OS 17_5",
                "android" => "Linux; Android 14",
                _ => "unknown",
            };
            let request = policy::Request { ip: Some(get("ip").to_string()).filter(|s| !s.is_empty()), user_agent: Some(platform_ua.into()) };
            let mut ctx = policy::context(&conn, user.as_ref().map(|u| u.id.as_str()), get("app"), client_app_type, &request, &amr, Some(now), now)?;
            // Risk levels picked here override the computed ones (that is the question asked).
            if let Some(r) = Risk::parse(get("sign_in_risk")) {
                ctx.sign_in_risk = r;
            }
            if let Some(r) = Risk::parse(get("user_risk")) {
                ctx.user_risk = r;
            }
            let eval = policy::decide(&conn, &ctx)?;
            let decision = match &eval.decision {
                evaluate::Decision::Allow => "Allowed".to_string(),
                evaluate::Decision::Block { policy } => format!("Blocked by \"{policy}\""),
                evaluate::Decision::Require { needs, .. } => {
                    let mut parts = vec![];
                    if let Some(l) = needs.level {
                        parts.push(match l {
                            crate::auth::flow::Level::PhishingResistant => "phishing-resistant MFA",
                            _ => "multi-factor authentication",
                        });
                    }
                    if needs.password_change {
                        parts.push("a password change");
                    }
                    if needs.reauthenticate {
                        parts.push("signing in again");
                    }
                    format!("Requires {}", parts.join(" and "))
                }
            };
            result = Some((decision, eval.results, pol::security_defaults(&conn)?));
        }
    }
    let page = WhatIfPage { nav: admin.nav(), q, apps, platforms: Platform::ALL.iter().map(|p| p.as_str()).collect(), result, error };
    Ok(html(StatusCode::OK, &page))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/policies", web::get().to(list))
        .route("/admin/security-defaults", web::post().to(set_defaults))
        .route("/admin/policies/new", web::get().to(new_form))
        .route("/admin/policies/new", web::post().to(create))
        .route("/admin/policies/export", web::get().to(export))
        .route("/admin/policies/import", web::post().to(import))
        .route("/admin/policies/{id}", web::get().to(show))
        .route("/admin/policies/{id}", web::post().to(update))
        .route("/admin/policies/{id}/state", web::post().to(set_state))
        .route("/admin/policies/{id}/delete", web::post().to(delete))
        .route("/admin/locations", web::get().to(locations))
        .route("/admin/locations", web::post().to(add_location))
        .route("/admin/locations/{id}/delete", web::post().to(delete_location))
        .route("/admin/whatif", web::get().to(what_if));
}
