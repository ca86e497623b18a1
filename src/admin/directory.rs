//! Users: a paged list with bulk actions, create (with a password, or invited by e-mail),
//! edit, disable, reset MFA, require a password change, set a password, end sessions,
//! unlock, delete; the invitation link itself. Groups are in `groups`, deleting users and bulk
//! actions in `manage`, the CSV import in `import`. Global administrators only.

mod groups;
mod import;
mod invite;
mod manage;

use super::actions::user_snapshot;
use super::list::{Columns, Dir, ListQuery, Pager};
use super::words::{self, Moment};
use super::{Admin, Global, Nav, Need, capitalise};
use crate::AppState;
use crate::auth::mfa::Methods;
use crate::auth::users::{self, NewAccount, UserError};
use crate::crypto::{random_token, secret_hash};
use crate::i18n::filters;
use crate::store::db::Connection;
use crate::store::{
    self,
    directory::{self as dir, Role},
    users::User,
};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use std::collections::BTreeMap;

type Errors = BTreeMap<&'static str, String>;

/// How long an invitation link works.
const INVITE_SECS: i64 = 7 * 86_400;

fn not_found(what: &str) -> PageError {
    ErrorPage { status: StatusCode::NOT_FOUND, title: format!("No such {what}"), message: "It may have been deleted.".into() }.into()
}

const USER_COLUMNS: Columns = Columns {
    sorts: &[
        ("username", "username COLLATE NOCASE"),
        ("name", "ifnull(name, '') COLLATE NOCASE"),
        ("email", "ifnull(email, '') COLLATE NOCASE"),
        ("created", "created_at"),
    ],
    default: ("username", Dir::Asc),
    tiebreak: "id",
};

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<dir::UserSummary>,
    pager: Pager,
    q: String,
    status: &'static str,
    groups: Vec<dir::Group>,
    errors: Errors,
    done: Option<String>,
}

/// The users list: search, status filter, sort, pages; checkboxes for the bulk actions.
fn users_page(conn: &Connection, admin: &Admin<impl Need>, params: &Params, errors: Errors) -> Result<HttpResponse, PageError> {
    let mut query = ListQuery::parse("/admin/users", params, &USER_COLUMNS);
    let (status, filter) = match params.get("status") {
        Some("active") => ("active", dir::UserStatus::Active),
        Some("disabled") => ("disabled", dir::UserStatus::Disabled),
        _ => ("", dir::UserStatus::Any),
    };
    query.keep("status", status);
    let total = dir::count_users(conn, query.search(), filter)?;
    query.clamp(total);
    let users = dir::users_page(conn, query.search(), filter, &query.window())?;
    let done = params.get("done").and_then(|d| d.parse::<usize>().ok()).map(|n| n.to_string());
    let page = UsersPage { nav: admin.nav(), users, pager: query.pager(total), q: query.q().to_string(), status, groups: dir::groups(conn)?, done, errors };
    let code = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html(code, &page))
}

fn list_users(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    users_page(&conn, &admin, &params, Errors::new())
}

#[derive(Default)]
struct NewUserForm {
    username: String,
    name: String,
    email: String,
    invite: bool,
    global_admin: bool,
    app_admin: bool,
    mfa_required: bool,
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewUserPage {
    nav: Nav,
    form: NewUserForm,
    errors: Errors,
}

/// GET /admin/users/new?mode=invite|password: two forms; the invitation has no password field.
fn new_user_form(admin: Admin<Global>, req: &HttpRequest, _state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let form = NewUserForm { invite: params.get("mode") != Some("password"), ..NewUserForm::default() };
    Ok(html(StatusCode::OK, &NewUserPage { nav: admin.nav(), form, errors: Errors::new() }))
}

fn roles_from(p: &Params) -> Vec<Role> {
    let mut roles = vec![];
    if p.get("role_global_admin").is_some() {
        roles.push(Role::GlobalAdmin);
    }
    if p.get("role_app_admin").is_some() {
        roles.push(Role::AppAdmin);
    }
    roles
}

#[derive(Template)]
#[template(path = "admin/invite_created.html")]
struct InviteCreatedPage {
    nav: Nav,
    username: String,
    email: String,
    link: String,
    user_id: String,
}

/// A new invitation for `user` (the link works once, for 7 days), e-mailed to `email`.
/// Returns the link, to show once.
fn invite(state: &web::Data<AppState>, conn: &Connection, user: &User, email: &str, now: i64) -> Result<String, store::StoreError> {
    let token = random_token();
    dir::create_invite(conn, &secret_hash(&token), &user.id, now + INVITE_SECS)?;
    let link = format!("{}/invite/{token}", state.config.issuer());
    let lang = crate::i18n::of_user(conn, &user.id);
    let args = [("username", user.username.as_str()), ("issuer", state.config.issuer()), ("link", link.as_str())];
    crate::portal::send_later(state, email.to_string(), lang.text("mail.invite.subject").into(), lang.format("mail.invite.body", &args));
    Ok(link)
}

fn create_user(admin: Admin<Global>, _req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    // A lease: the connection goes back to the pool while the hash waits its turn.
    let mut conn = store::Lease::get(&state.pool)?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let form = NewUserForm {
        username: p.get("username").unwrap_or("").trim().to_string(),
        name: p.get("name").unwrap_or("").trim().to_string(),
        email: p.get("email").unwrap_or("").trim().to_string(),
        invite: p.get("invite").is_some(),
        global_admin: p.get("role_global_admin").is_some(),
        app_admin: p.get("role_app_admin").is_some(),
        mfa_required: p.get("mfa_required").is_some(),
    };
    // An invited person chooses their own password; until then the account holds a random one
    // nobody knows.
    let password = if form.invite { random_token() } else { p.get("password").unwrap_or("").to_string() };
    let mut errors = Errors::new();
    if let Err(e) = users::check_username(&form.username) {
        errors.insert("username", capitalise(&e.to_string()));
    } else if store::users::by_username(&conn, &form.username)?.is_some() {
        errors.insert("username", format!("A user named {:?} already exists.", form.username));
    }
    if form.name.chars().count() > 200 {
        errors.insert("name", "The display name must be at most 200 characters.".into());
    }
    if form.invite && form.email.is_empty() {
        errors.insert("email", "An invitation is sent by e-mail: enter the person's e-mail address.".into());
    } else if !form.email.is_empty() && !users::valid_email(&form.email) {
        errors.insert("email", format!("The e-mail address {:?} is not valid.", form.email));
    }
    if !form.invite
        && let Err(e) = state.protection.check_new(&password)
    {
        errors.insert("password", e.to_string());
    }
    if !errors.is_empty() {
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &NewUserPage { nav: admin.nav(), form, errors }));
    }
    let hash = crate::auth::login::hash_new(&state, &mut conn, &password)?;
    let roles = roles_from(&p);
    let outcome = store::transaction(&mut conn, |tx| -> Result<Result<User, UserError>, store::StoreError> {
        let account = NewAccount {
            username: &form.username,
            password: &password,
            email: Some(form.email.as_str()).filter(|e| !e.is_empty()),
            name: Some(form.name.as_str()).filter(|n| !n.is_empty()),
            is_admin: false,
            must_change_password: false,
        };
        let user = match users::create_hashed(tx, &account, &hash, now) {
            Ok(u) => u,
            Err(UserError::Store(e)) => return Err(e),
            Err(e) => return Ok(Err(e)),
        };
        dir::set_roles(tx, &user.id, &roles)?;
        store::mfa::set_mfa_required(tx, &user.id, form.mfa_required)?;
        let after = user_snapshot(tx, &store::users::by_id(tx, &user.id)?.expect("exists"))?;
        let action = if form.invite { "user_invited" } else { "user_created" };
        dir::audit_change(tx, &admin.user.id, action, Some(&user.username), None, Some(&after), now)?;
        Ok(Ok(user))
    })?;
    let user = match outcome {
        Ok(u) => u,
        Err(e) => {
            match e {
                UserError::Username | UserError::Conflict(_) => errors.insert("username", capitalise(&e.to_string())),
                UserError::Email(_) => errors.insert("email", capitalise(&e.to_string())),
                UserError::Password(pe) => errors.insert("password", pe.to_string()),
                UserError::Store(s) => return Err(PageError::from(s)),
            };
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &NewUserPage { nav: admin.nav(), form, errors }));
        }
    };
    if form.invite {
        let link = invite(&state, &conn, &user, &form.email, now)?;
        return Ok(html(StatusCode::CREATED, &InviteCreatedPage { nav: admin.nav(), username: user.username, email: form.email, link, user_id: user.id }));
    }
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}

struct MethodRow {
    kind: &'static str,
    name: String,
    last_used: Option<Moment>,
    /// A key never used yet.
    never: bool,
}

struct SignInView {
    id: i64,
    at: Moment,
    app: String,
    ip: String,
    result: String,
    success: bool,
    methods: String,
    reason: String,
}

struct SessionView {
    started: Moment,
    last_used: Moment,
    ip: String,
    device: String,
    apps: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    nav: Nav,
    user: User,
    roles: Vec<Role>,
    groups: Vec<String>,
    methods: Vec<MethodRow>,
    signins: Vec<SignInView>,
    sessions: Vec<SessionView>,
    assigned_apps: Vec<String>,
    connected_apps: Vec<String>,
    errors: Errors,
    is_self: bool,
    risk: &'static str,
    /// What is locked or paused now, and until when.
    locks: Vec<(String, Moment)>,
    /// What was typed in the profile form, when it had errors: (name, email).
    typed: Option<(String, String)>,
}

fn user_page(
    conn: &Connection,
    admin: &Admin<impl Need>,
    user: User,
    errors: Errors,
    now: i64,
    typed: Option<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let m = Methods::load(conn, &user.id)?;
    let mut methods = vec![];
    if m.totp {
        methods.push(MethodRow { kind: "Authenticator app", name: String::new(), last_used: None, never: false });
    }
    for k in &m.keys {
        let kind = if k.kind == "passkey" { "Passkey" } else { "Security key" };
        methods.push(MethodRow { kind, name: k.name.clone(), last_used: k.last_used_at.map(|t| admin.zone.at(t)), never: k.last_used_at.is_none() });
    }
    if m.recovery_left > 0 {
        methods.push(MethodRow { kind: "Recovery codes", name: format!("{} unused", m.recovery_left), last_used: None, never: false });
    }
    let names: BTreeMap<String, String> = store::clients::all(conn)?.into_iter().map(|c| (c.id, c.name)).collect();
    let signins = store::signins::for_user(conn, &user.id, 20)?
        .into_iter()
        .map(|s| SignInView {
            id: s.id,
            at: admin.zone.at(s.at),
            app: s.client_id.map(|c| names.get(&c).cloned().unwrap_or(c)).unwrap_or_else(|| "latchkey".into()),
            ip: s.ip.unwrap_or_default(),
            success: s.result == "success",
            result: words::result(&s.result),
            methods: words::methods(s.methods.as_deref()),
            reason: s.reason.unwrap_or_default(),
        })
        .collect();
    let sessions = store::sessions::active_for_user(conn, &user.id, now)?
        .into_iter()
        .map(|s| SessionView {
            started: admin.zone.at(s.created_at),
            last_used: admin.zone.at(s.last_used_at),
            ip: s.ip.unwrap_or_default(),
            device: s.user_agent.as_deref().map(crate::policy::model::Platform::from_user_agent).map(|p| words::platform(p.as_str())).unwrap_or_default(),
            apps: s.apps.join(", "),
        })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = UserPage {
        nav: admin.nav(),
        risk: store::policies::user_risk(conn, &user.id)?.as_str(),
        roles: dir::roles(conn, &user.id)?,
        groups: dir::group_names_of(conn, &user.id)?,
        assigned_apps: dir::apps_assigned_to_user(conn, &user.id)?,
        connected_apps: store::tokens::connected_apps(conn, &user.id, now)?.into_iter().map(|a| a.name).collect(),
        is_self: user.id == admin.user.id,
        locks: store::protection::locks(conn, &user.id, now)?.into_iter().map(|(what, until)| (what, admin.zone.at(until))).collect(),
        user,
        methods,
        signins,
        sessions,
        errors,
        typed,
    };
    Ok(html(status, &page))
}

fn load_user(conn: &Connection, id: &str) -> Result<User, PageError> {
    store::users::by_id(conn, id)?.ok_or_else(|| not_found("user"))
}

fn show_user(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let conn = state.pool.get()?;
    let user = load_user(&conn, &id)?;
    user_page(&conn, &admin, user, Errors::new(), state.clock.now(), None)
}

fn update_user(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let mut conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let user = load_user(&conn, &id)?;
    let name = p.get("name").map(str::trim).filter(|s| !s.is_empty());
    let email = p.get("email").map(str::trim).filter(|s| !s.is_empty());
    let mut errors = Errors::new();
    if name.is_some_and(|n| n.chars().count() > 200) {
        errors.insert("name", "The display name must be at most 200 characters.".into());
    }
    if let Some(e) = email
        && !users::valid_email(e)
    {
        errors.insert("email", format!("The e-mail address {e:?} is not valid."));
    }
    let roles = roles_from(&p);
    if user.id == admin.user.id && !roles.contains(&Role::GlobalAdmin) {
        errors.insert("roles", "You cannot remove your own Global administrator role.".into());
    }
    if !errors.is_empty() {
        let typed = (name.unwrap_or("").to_string(), email.unwrap_or("").to_string());
        return user_page(&conn, &admin, user, errors, now, Some(typed));
    }
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        let before = user_snapshot(tx, &user)?;
        dir::update_profile(tx, &user.id, name, email, p.get("mfa_required").is_some(), now)?;
        dir::set_roles(tx, &user.id, &roles)?;
        let after = user_snapshot(tx, &store::users::by_id(tx, &user.id)?.expect("exists"))?;
        dir::audit_change(tx, &admin.user.id, "user_updated", Some(&user.username), Some(&before), Some(&after), now)
    })?;
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}

/// The user actions: disable / enable, reset MFA, require a password change, end sessions,
/// unlock, set the user risk.
fn user_action(admin: Admin<Global>, req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let path = (crate::web::path_param(req, "id"), crate::web::path_param(req, "action"));
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let (id, action) = path;
    let user = load_user(&conn, &id)?;
    if user.id == admin.user.id && action == "disable" {
        return user_page(&conn, &admin, user, Errors::from([("actions", "You cannot disable your own account.".to_string())]), now, None);
    }
    store::transaction(&mut conn, |tx| -> Result<_, PageError> {
        let before = user_snapshot(tx, &user)?;
        let audit = match action.as_str() {
            "disable" => {
                dir::set_disabled(tx, &user.id, true, now)?;
                store::protection::end_everything(tx, &user.id, now)?;
                "user_disabled"
            }
            "enable" => {
                dir::set_disabled(tx, &user.id, false, now)?;
                "user_enabled"
            }
            // Each of these means the account may be in someone else's hands: every session
            // and refresh-token family ends with it.
            "reset-mfa" => {
                dir::reset_mfa(tx, &user.id)?;
                store::protection::end_everything(tx, &user.id, now)?;
                "user_mfa_reset"
            }
            "revoke-sessions" => {
                store::protection::end_everything(tx, &user.id, now)?;
                "user_sessions_revoked"
            }
            "unlock" => {
                store::protection::unlock(tx, &user.id)?;
                "user_unlocked"
            }
            "require-password-change" => {
                dir::require_password_change(tx, &user.id, now)?;
                store::protection::end_everything(tx, &user.id, now)?;
                "user_password_change_required"
            }
            // An admin-set user risk: the input conditional-access user-risk conditions read.
            "risk-none" | "risk-low" | "risk-medium" | "risk-high" => {
                let risk = crate::policy::model::Risk::parse(&action[5..]).expect("matched above");
                store::policies::set_user_risk(tx, &user.id, risk)?;
                if risk == crate::policy::model::Risk::High {
                    store::protection::end_everything(tx, &user.id, now)?;
                }
                "user_risk_set"
            }
            _ => return Err(not_found("action")),
        };
        let after = user_snapshot(tx, &store::users::by_id(tx, &user.id)?.expect("exists"))?;
        dir::audit_change(tx, &admin.user.id, audit, Some(&user.username), Some(&before), Some(&after), now)?;
        Ok(())
    })?;
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users", web::get().to(crate::admin::page(list_users)))
        .route("/admin/users/new", web::get().to(crate::admin::page(new_user_form)))
        .route("/admin/users/new", web::post().to(crate::admin::page(create_user)));
    // Before /admin/users/{id}: the import and bulk pages are not user ids.
    import::configure(cfg);
    manage::configure(cfg);
    cfg.route("/admin/users/{id}", web::get().to(crate::admin::page(show_user)))
        .route("/admin/users/{id}", web::post().to(crate::admin::page(update_user)))
        .route("/admin/users/{id}/{action}", web::post().to(crate::admin::page(user_action)))
        .route("/invite/{token}", web::get().to(crate::web::offload(invite::show_invite)))
        .route("/invite/{token}", web::post().to(crate::web::offload(invite::accept_invite)));
    groups::configure(cfg);
}
