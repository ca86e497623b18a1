//! Applications: register a SaaS app through a form, edit it, rotate its secret, disable or
//! delete it, and choose who may use it.

mod sections;

use super::{Admin, Apps, Nav, Need, capitalise, picker, when};
use crate::AppState;
use crate::crypto::{random_token, secret_hash};
use crate::i18n::filters;
use crate::oidc::clients::{self, ID_TOKEN_ALGS, RegistrationError, check_redirect_uri};
use crate::store::{
    self,
    clients::{Client, ClientSettings},
    directory,
};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use rusqlite::Connection;
use sections::Section;
use std::collections::BTreeMap;

type Errors = BTreeMap<&'static str, String>;

/// The form as typed: kept as text so a page with errors shows exactly what was entered.
#[derive(Debug, Clone, Default)]
pub struct AppForm {
    pub name: String,
    pub logo_url: String,
    pub launch_url: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub public: bool,
    pub grant_code: bool,
    pub grant_refresh: bool,
    pub grant_client_credentials: bool,
    pub grant_password: bool,
    pub id_token_alg: String,
    pub assignment_required: bool,
    pub backchannel_logout_uri: String,
    pub backchannel_logout_session_required: bool,
    pub third_party: bool,
    pub consent_for_everyone: bool,
    pub initiate_login_uri: String,
    pub visible_in_my_apps: bool,
    pub frontchannel_logout_uri: String,
    pub frontchannel_logout_session_required: bool,
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

impl AppForm {
    fn blank() -> Self {
        Self { grant_code: true, grant_refresh: true, id_token_alg: "RS256".into(), visible_in_my_apps: true, ..Self::default() }
    }

    fn from_params(p: &Params, public: Option<bool>) -> Self {
        let on = |k: &str| p.get(k).is_some();
        Self {
            name: p.get("name").unwrap_or("").to_string(),
            // Logos are uploaded (served by latchkey); an external logo URL is no longer set.
            logo_url: String::new(),
            launch_url: p.get("launch_url").unwrap_or("").to_string(),
            redirect_uris: p.get("redirect_uris").unwrap_or("").to_string(),
            post_logout_redirect_uris: p.get("post_logout_redirect_uris").unwrap_or("").to_string(),
            public: public.unwrap_or(p.get("app_type") == Some("public")),
            grant_code: on("grant_authorization_code"),
            grant_refresh: on("grant_refresh_token"),
            grant_client_credentials: on("grant_client_credentials"),
            grant_password: on("grant_password"),
            id_token_alg: p.get("id_token_alg").unwrap_or("RS256").to_string(),
            assignment_required: on("assignment_required"),
            backchannel_logout_uri: p.get("backchannel_logout_uri").unwrap_or("").to_string(),
            backchannel_logout_session_required: on("backchannel_logout_session_required"),
            third_party: on("third_party"),
            consent_for_everyone: on("consent_for_everyone"),
            initiate_login_uri: p.get("initiate_login_uri").unwrap_or("").to_string(),
            visible_in_my_apps: on("visible_in_my_apps"),
            frontchannel_logout_uri: p.get("frontchannel_logout_uri").unwrap_or("").to_string(),
            frontchannel_logout_session_required: on("frontchannel_logout_session_required"),
        }
    }

    fn from_client(c: &Client) -> Self {
        Self {
            name: c.name.clone(),
            logo_url: c.logo_url.clone().unwrap_or_default(),
            launch_url: c.launch_url.clone().unwrap_or_default(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            public: c.is_public,
            grant_code: c.allows_grant("authorization_code"),
            grant_refresh: c.allows_grant("refresh_token"),
            grant_client_credentials: c.allows_grant("client_credentials"),
            grant_password: c.allows_grant("password"),
            id_token_alg: c.id_token_alg.clone(),
            assignment_required: c.assignment_required,
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            third_party: c.third_party,
            consent_for_everyone: c.consent_for_everyone,
            initiate_login_uri: c.initiate_login_uri.clone().unwrap_or_default(),
            visible_in_my_apps: c.visible_in_my_apps,
            frontchannel_logout_uri: c.frontchannel_logout_uri.clone().unwrap_or_default(),
            frontchannel_logout_session_required: c.frontchannel_logout_session_required,
        }
    }

    /// Keeps `base` (the app as saved) except the fields of `section`, taken from `typed`:
    /// each section's form sends only its own fields.
    fn merge(base: &Self, typed: Self, section: &str) -> Self {
        let mut f = base.clone();
        match section {
            "overview" => {
                f.name = typed.name;
                f.launch_url = typed.launch_url;
                f.initiate_login_uri = typed.initiate_login_uri;
                f.visible_in_my_apps = typed.visible_in_my_apps;
                f.third_party = typed.third_party;
                f.consent_for_everyone = typed.consent_for_everyone;
            }
            "authentication" => {
                f.redirect_uris = typed.redirect_uris;
                f.post_logout_redirect_uris = typed.post_logout_redirect_uris;
                f.grant_code = typed.grant_code;
                f.grant_refresh = typed.grant_refresh;
                f.grant_client_credentials = typed.grant_client_credentials;
                f.grant_password = typed.grant_password;
                f.backchannel_logout_uri = typed.backchannel_logout_uri;
                f.backchannel_logout_session_required = typed.backchannel_logout_session_required;
                f.frontchannel_logout_uri = typed.frontchannel_logout_uri;
                f.frontchannel_logout_session_required = typed.frontchannel_logout_session_required;
            }
            "assignments" => f.assignment_required = typed.assignment_required,
            "tokens" => f.id_token_alg = typed.id_token_alg,
            _ => return typed,
        }
        f
    }

    /// The settings these fields describe, or every field that is wrong with why.
    fn validate(&self) -> Result<ClientSettings, Errors> {
        let mut errors = Errors::new();
        let redirects = lines(&self.redirect_uris);
        let post_logout = lines(&self.post_logout_redirect_uris);
        for (field, list) in [("redirect_uris", &redirects), ("post_logout_redirect_uris", &post_logout)] {
            if let Some(Err(e)) = list.iter().map(|u| check_redirect_uri(u, self.public)).find(Result::is_err) {
                errors.insert(field, e.to_string());
            }
        }
        let grants: Vec<String> = [
            (self.grant_code, "authorization_code"),
            (self.grant_refresh, "refresh_token"),
            (self.grant_client_credentials, "client_credentials"),
            (self.grant_password, "password"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, g)| g.to_string())
        .collect();
        if grants.is_empty() {
            errors.insert("grants", "Choose at least one grant.".into());
        }
        let mut settings = ClientSettings {
            name: self.name.clone(),
            redirect_uris: redirects,
            post_logout_redirect_uris: post_logout,
            grant_types: grants,
            is_public: self.public,
            logo_url: optional(&self.logo_url),
            launch_url: optional(&self.launch_url),
            id_token_alg: self.id_token_alg.clone(),
            assignment_required: self.assignment_required,
            backchannel_logout_uri: optional(&self.backchannel_logout_uri),
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            third_party: self.third_party,
            consent_for_everyone: self.consent_for_everyone,
            initiate_login_uri: optional(&self.initiate_login_uri),
            visible_in_my_apps: self.visible_in_my_apps,
            frontchannel_logout_uri: optional(&self.frontchannel_logout_uri),
            frontchannel_logout_session_required: self.frontchannel_logout_session_required,
        };
        // `clients::check` stops at the first rule broken; to report every field at once, each
        // field found wrong is replaced by a harmless value and the rules run again.
        let mut probe = settings.clone();
        for _ in 0..12 {
            let Err(e) = clients::check(&mut probe.clone()) else { break };
            let field = match &e {
                RegistrationError::Name | RegistrationError::Conflict(_) => "name",
                RegistrationError::RedirectUri(..) => "redirect_uris",
                RegistrationError::GrantType(_) | RegistrationError::Combination(_) => "grants",
                RegistrationError::Algorithm(_) => "id_token_alg",
                RegistrationError::Url("logo URL", _) => "logo_url",
                RegistrationError::Url("login-initiation URI", _) => "initiate_login_uri",
                RegistrationError::Url("front-channel logout URI", _) => "frontchannel_logout_uri",
                RegistrationError::BackchannelLogoutUri(_) => "backchannel_logout_uri",
                RegistrationError::Url(..) => "launch_url",
            };
            errors.entry(field).or_insert_with(|| capitalise(&e.to_string()));
            const PLACEHOLDER: &str = "https://placeholder.invalid/cb";
            match e {
                RegistrationError::Name => probe.name = "placeholder".into(),
                RegistrationError::Conflict(_) => break,
                RegistrationError::RedirectUri(bad, _) => {
                    for u in probe.redirect_uris.iter_mut().chain(probe.post_logout_redirect_uris.iter_mut()).filter(|u| **u == bad) {
                        *u = PLACEHOLDER.into();
                    }
                }
                RegistrationError::GrantType(_) | RegistrationError::Combination(_) => {
                    probe.grant_types = vec!["authorization_code".into()];
                    probe.redirect_uris.push(PLACEHOLDER.into());
                }
                RegistrationError::Algorithm(_) => probe.id_token_alg = "RS256".into(),
                RegistrationError::Url("logo URL", _) => probe.logo_url = None,
                RegistrationError::Url("login-initiation URI", _) => probe.initiate_login_uri = None,
                RegistrationError::Url("front-channel logout URI", _) => probe.frontchannel_logout_uri = None,
                RegistrationError::BackchannelLogoutUri(_) => probe.backchannel_logout_uri = None,
                RegistrationError::Url(..) => probe.launch_url = None,
            }
        }
        if errors.is_empty()
            && let Err(e) = clients::check(&mut settings)
        {
            errors.insert("name", capitalise(&e.to_string()));
        }
        if errors.is_empty() { Ok(settings) } else { Err(errors) }
    }
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
struct ListPage {
    nav: Nav,
    apps: Vec<Client>,
}

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

/// How long a new secret works, as the forms offer it (days; 0 = never).
pub const SECRET_LIFETIMES: [i64; 5] = [90, 180, 365, 730, 0];

/// The secret lifetime chosen in a form: (days, expiry) or an error for the field.
fn secret_lifetime(p: &Params, now: i64) -> Result<(String, Option<i64>), String> {
    let days = p.get("lifetime").unwrap_or("0");
    match days.parse::<i64>() {
        Ok(d) if SECRET_LIFETIMES.contains(&d) => Ok((days.to_string(), (d > 0).then_some(now + d * 86_400))),
        _ => Err("Choose one of the offered secret lifetimes.".into()),
    }
}

async fn list(admin: Admin<Apps>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    Ok(html(StatusCode::OK, &ListPage { nav: admin.nav(), apps: store::clients::all(&conn)? }))
}

async fn new_form(admin: Admin<Apps>) -> Result<HttpResponse, PageError> {
    Ok(new_page(&admin, AppForm::blank(), Errors::new(), "365"))
}

async fn create(admin: Admin<Apps>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
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
        expires: registered.client_secret.as_ref().and(expires).map(when),
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
async fn update(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
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

async fn rotate_secret(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let params = admin.form.clone();
    let now = state.clock.now();
    let app = load_app(&conn, &id)?;
    if app.is_public {
        return Err(ErrorPage::bad_request("No secret", "A public application has no secret to rotate.").into());
    }
    let mut errors = Errors::new();
    let grace: i64 = match params.get("grace").unwrap_or("0").parse() {
        Ok(g) if [0, 3600, 86_400, 604_800].contains(&g) => g,
        _ => {
            errors.insert("grace", "Choose one of the offered grace periods.".into());
            0
        }
    };
    let expires = match secret_lifetime(&params, now) {
        Ok((_, e)) => e,
        Err(e) => {
            errors.insert("lifetime", e);
            None
        }
    };
    if !errors.is_empty() {
        return sections::page(&state, &conn, &admin, app, Section::Credentials, None, errors, None);
    }
    let secret = random_token();
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        store::clients::rotate_secret(tx, &app.id, &secret_hash(&secret), (grace > 0).then_some(now + grace), expires)?;
        let detail = format!("{}; old secret {}", app.name, if grace > 0 { format!("valid for {grace} s more") } else { "stopped at once".into() });
        let after = serde_json::json!({ "secret_expires_at": expires }).to_string();
        let before = serde_json::json!({ "secret_expires_at": app.secret_expires_at }).to_string();
        directory::audit_change(tx, &admin.user.id, "app_secret_rotated", Some(&detail), Some(&before), Some(&after), now)
    })?;
    let issuer = state.config.issuer().to_string();
    let page = SecretPage {
        nav: admin.nav(),
        name: app.name,
        client_id: app.id,
        client_secret: Some(secret),
        discovery: format!("{issuer}/.well-known/openid-configuration"),
        issuer,
        rotated: true,
        expires: expires.map(when),
    };
    Ok(html(StatusCode::OK, &page))
}

async fn set_enabled(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
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

async fn delete(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
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
async fn assign(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
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
                errors.insert("assign", format!("No {kind} named {name:?}."));
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

async fn unassign(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
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
async fn upload_logo(admin: Admin<Apps>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
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
pub async fn logo(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
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
    cfg.route("/apps/{id}/logo", web::get().to(logo))
        .route("/admin/apps/{id}/logo", web::post().to(upload_logo))
        .route("/admin/apps", web::get().to(list))
        .route("/admin/apps/new", web::get().to(new_form))
        .route("/admin/apps/new", web::post().to(create))
        .route("/admin/apps/{id}", web::get().to(sections::show))
        .route("/admin/apps/{id}", web::post().to(update))
        .route("/admin/apps/{id}/secret", web::post().to(rotate_secret))
        .route("/admin/apps/{id}/enabled", web::post().to(set_enabled))
        .route("/admin/apps/{id}/delete", web::post().to(delete))
        .route("/admin/apps/{id}/assignments", web::post().to(assign))
        .route("/admin/apps/{id}/assignments/remove", web::post().to(unassign))
        .route("/admin/apps/{id}/{section}", web::get().to(sections::show_section));
    picker::configure(cfg);
}
