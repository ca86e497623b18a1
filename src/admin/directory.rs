//! Users and groups: create (or invite), edit, disable, reset MFA, require a password change;
//! groups and their members; admin roles. Global administrators only.

use super::{Admin, Global, Nav, Need, capitalise, when};
use crate::AppState;
use crate::auth::mfa::{Methods, new_id};
use crate::auth::users::{self, NewAccount, UserError};
use crate::crypto::{random_token, secret_hash};
use crate::i18n::filters;
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
use rusqlite::Connection;
use std::collections::BTreeMap;

type Errors = BTreeMap<&'static str, String>;

/// How long an invitation link works.
const INVITE_SECS: i64 = 7 * 86_400;

fn not_found(what: &str) -> PageError {
    ErrorPage { status: StatusCode::NOT_FOUND, title: format!("No such {what}"), message: "It may have been deleted.".into() }.into()
}

fn user_snapshot(conn: &Connection, u: &User) -> Result<String, store::StoreError> {
    let roles: Vec<&str> = dir::roles(conn, &u.id)?.iter().map(|r| r.as_str()).collect();
    Ok(serde_json::json!({
        "username": u.username, "name": u.name, "email": u.email, "disabled": u.disabled,
        "user_risk": store::policies::user_risk(conn, &u.id)?.as_str(),
        "mfa_required": u.mfa_required, "must_change_password": u.must_change_password, "roles": roles,
    })
    .to_string())
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<dir::UserSummary>,
    q: String,
}

async fn list_users(admin: Admin<Global>, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default().get("q").unwrap_or("").to_string();
    let users = dir::users(&conn, Some(&q))?;
    Ok(html(StatusCode::OK, &UsersPage { nav: admin.nav(), users, q }))
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

async fn new_user_form(admin: Admin<Global>) -> Result<HttpResponse, PageError> {
    let form = NewUserForm { invite: true, ..NewUserForm::default() };
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
    link: String,
    user_id: String,
}

async fn create_user(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
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
    let password = if form.invite { random_token() } else { p.get("password").unwrap_or("").to_string() };
    let mut errors = Errors::new();
    if !form.invite
        && let Err(e) = state.protection.check_new(&password)
    {
        errors.insert("password", e.to_string());
    }
    let hash = state.passwords.offload({
        let pw = password.clone();
        move |h, mem| h.hash_with(&pw, mem)
    });
    let hash = hash.await.map_err(crate::auth::login::internal)?;
    let roles = roles_from(&p);
    let outcome = store::transaction(&mut conn, |tx| -> Result<Result<User, UserError>, store::StoreError> {
        if !errors.is_empty() {
            return Ok(Err(UserError::Username));
        }
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
        dir::audit_change(tx, &admin.user.id, "user_created", Some(&user.username), None, Some(&after), now)?;
        Ok(Ok(user))
    })?;
    let user = match outcome {
        Ok(u) => u,
        Err(e) => {
            match e {
                UserError::Username if !errors.is_empty() => {}
                UserError::Username | UserError::Conflict(_) => {
                    errors.insert("username", capitalise(&e.to_string()));
                }
                UserError::Email(_) => {
                    errors.insert("email", capitalise(&e.to_string()));
                }
                UserError::Password(pe) => {
                    errors.insert("password", pe.to_string());
                }
                UserError::Store(s) => return Err(PageError::from(s)),
            }
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &NewUserPage { nav: admin.nav(), form, errors }));
        }
    };
    if form.invite {
        let token = random_token();
        dir::create_invite(&conn, &secret_hash(&token), &user.id, now + INVITE_SECS)?;
        let link = format!("{}/invite/{token}", state.config.issuer());
        return Ok(html(StatusCode::CREATED, &InviteCreatedPage { nav: admin.nav(), username: user.username, link, user_id: user.id }));
    }
    Ok(see_other(&format!("/admin/users/{}", user.id)))
}

struct MethodRow {
    kind: &'static str,
    name: String,
    last_used: String,
}

struct SignInView {
    id: i64,
    at: String,
    app: String,
    ip: String,
    result: String,
    reason: String,
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
    errors: Errors,
    is_self: bool,
    risk: &'static str,
    /// What is locked or paused now, and until when.
    locks: Vec<(String, String)>,
}

fn user_page(conn: &Connection, admin: &Admin<impl Need>, user: User, errors: Errors, now: i64) -> Result<HttpResponse, PageError> {
    let m = Methods::load(conn, &user.id)?;
    let mut methods = vec![];
    if m.totp {
        methods.push(MethodRow { kind: "Authenticator app", name: String::new(), last_used: String::new() });
    }
    for k in &m.keys {
        let kind = if k.kind == "passkey" { "Passkey" } else { "Security key" };
        methods.push(MethodRow { kind, name: k.name.clone(), last_used: k.last_used_at.map(when).unwrap_or_else(|| "never".into()) });
    }
    if m.recovery_left > 0 {
        methods.push(MethodRow { kind: "Recovery codes", name: format!("{} unused", m.recovery_left), last_used: String::new() });
    }
    let signins = store::signins::for_user(conn, &user.id, 20)?
        .into_iter()
        .map(|s| SignInView {
            id: s.id,
            at: when(s.at),
            app: s.client_id.unwrap_or_else(|| "latchkey".into()),
            ip: s.ip.unwrap_or_default(),
            result: s.result,
            reason: s.reason.unwrap_or_default(),
        })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = UserPage {
        nav: admin.nav(),
        risk: store::policies::user_risk(conn, &user.id)?.as_str(),
        roles: dir::roles(conn, &user.id)?,
        groups: dir::group_names_of(conn, &user.id)?,
        is_self: user.id == admin.user.id,
        locks: store::protection::locks(conn, &user.id, now)?.into_iter().map(|(what, until)| (what, when(until))).collect(),
        user,
        methods,
        signins,
        errors,
    };
    Ok(html(status, &page))
}

fn load_user(conn: &Connection, id: &str) -> Result<User, PageError> {
    store::users::by_id(conn, id)?.ok_or_else(|| not_found("user"))
}

async fn show_user(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let user = load_user(&conn, &id)?;
    user_page(&conn, &admin, user, Errors::new(), state.clock.now())
}

async fn update_user(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let user = load_user(&conn, &id)?;
    let name = p.get("name").map(str::trim).filter(|s| !s.is_empty());
    let email = p.get("email").map(str::trim).filter(|s| !s.is_empty());
    let mut errors = Errors::new();
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
        return user_page(&conn, &admin, user, errors, now);
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

/// The user actions: disable / enable, reset MFA, require a password change.
async fn user_action(admin: Admin<Global>, state: web::Data<AppState>, path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let (id, action) = path.into_inner();
    let user = load_user(&conn, &id)?;
    if user.id == admin.user.id && action == "disable" {
        return user_page(&conn, &admin, user, Errors::from([("actions", "You cannot disable your own account.".to_string())]), now);
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

#[derive(Template)]
#[template(path = "admin/groups.html")]
struct GroupsPage {
    nav: Nav,
    groups: Vec<dir::Group>,
    name: String,
    errors: Errors,
}

async fn list_groups(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    Ok(html(StatusCode::OK, &GroupsPage { nav: admin.nav(), groups: dir::groups(&conn)?, name: String::new(), errors: Errors::new() }))
}

async fn create_group(admin: Admin<Global>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let name = p.get("name").unwrap_or("").trim().to_string();
    let description = p.get("description").map(str::trim).filter(|d| !d.is_empty());
    let mut errors = Errors::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.insert("name", "The group name must be 1 to 100 characters.".into());
    } else {
        let id = new_id();
        match dir::create_group(&conn, &id, &name, description, now) {
            Ok(()) => {
                dir::audit_change(&conn, &admin.user.id, "group_created", Some(&name), None, None, now)?;
                return Ok(see_other(&format!("/admin/groups/{id}")));
            }
            Err(store::StoreError::Conflict(m)) => {
                errors.insert("name", capitalise(&m));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &GroupsPage { nav: admin.nav(), groups: dir::groups(&conn)?, name, errors }))
}

#[derive(Template)]
#[template(path = "admin/group.html")]
struct GroupPage {
    nav: Nav,
    group: dir::Group,
    members: Vec<dir::UserSummary>,
    errors: Errors,
}

fn group_page(conn: &Connection, admin: &Admin<impl Need>, id: &str, errors: Errors) -> Result<HttpResponse, PageError> {
    let group = dir::group(conn, id)?.ok_or_else(|| not_found("group"))?;
    let members = dir::members(conn, id)?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(html(status, &GroupPage { nav: admin.nav(), group, members, errors }))
}

async fn show_group(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    group_page(&conn, &admin, &id, Errors::new())
}

async fn add_member(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let group = dir::group(&conn, &id)?.ok_or_else(|| not_found("group"))?;
    let username = p.get("username").unwrap_or("").trim();
    let Some(user) = store::users::by_username(&conn, username)? else {
        return group_page(&conn, &admin, &id, Errors::from([("username", format!("No user named {username:?}."))]));
    };
    if dir::add_member(&conn, &group.id, &user.id)? {
        dir::audit_change(&conn, &admin.user.id, "group_member_added", Some(&format!("{}: {}", group.name, user.username)), None, None, now)?;
    }
    Ok(see_other(&format!("/admin/groups/{}", group.id)))
}

async fn remove_member(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let p = admin.form.clone();
    let now = state.clock.now();
    let group = dir::group(&conn, &id)?.ok_or_else(|| not_found("group"))?;
    let user_id = p.get("user_id").unwrap_or("");
    if dir::remove_member(&conn, &group.id, user_id)? {
        dir::audit_change(&conn, &admin.user.id, "group_member_removed", Some(&format!("{}: {user_id}", group.name)), None, None, now)?;
    }
    Ok(see_other(&format!("/admin/groups/{}", group.id)))
}

async fn delete_group(admin: Admin<Global>, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let group = dir::group(&conn, &id)?.ok_or_else(|| not_found("group"))?;
    store::transaction(&mut conn, |tx| -> Result<_, store::StoreError> {
        dir::delete_group(tx, &group.id)?;
        dir::audit_change(tx, &admin.user.id, "group_deleted", Some(&group.name), None, None, now)
    })?;
    Ok(see_other("/admin/groups"))
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    token: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// GET /invite/{token}: an invited person chooses their password (the link works once).
async fn show_invite(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let user = dir::invite(&conn, &secret_hash(&token), state.clock.now())?.ok_or_else(invite_gone)?;
    Ok(html(StatusCode::OK, &InvitePage { token: &token, username: &user.username, error: None }))
}

fn invite_gone() -> PageError {
    ErrorPage::bad_request("This invitation link no longer works", "It has been used or has expired. Ask your administrator for a new one.").into()
}

async fn accept_invite(state: web::Data<AppState>, token: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let mut conn = state.pool.get()?;
    let now = state.clock.now();
    let p = Params::form(&body)?;
    let hash = secret_hash(&token);
    let user = dir::invite(&conn, &hash, now)?.ok_or_else(invite_gone)?;
    let new = p.get("new_password").unwrap_or("").to_string();
    let error = match state.protection.check_new(&new) {
        Err(e) => Some(e.to_string()),
        Ok(()) if p.get("confirm_password") != Some(new.as_str()) => Some("The two passwords do not match.".to_string()),
        Ok(()) => None,
    };
    if let Some(e) = error {
        return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &InvitePage { token: &token, username: &user.username, error: Some(&e) }));
    }
    let phc = state.passwords.offload(move |h, mem| h.hash_with(&new, mem)).await.map_err(crate::auth::login::internal)?;
    let accepted = store::transaction(&mut conn, |tx| -> Result<bool, store::StoreError> {
        if !dir::use_invite(tx, &hash, now)? {
            return Ok(false);
        }
        store::users::set_password(tx, &user.id, &phc, now, false)?;
        store::mfa::audit(tx, Some(&user.id), Some(&user.id), "invite_accepted", None, now)?;
        Ok(true)
    })?;
    if !accepted {
        return Err(invite_gone());
    }
    Ok(see_other("/login"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/users", web::get().to(list_users))
        .route("/admin/users/new", web::get().to(new_user_form))
        .route("/admin/users/new", web::post().to(create_user))
        .route("/admin/users/{id}", web::get().to(show_user))
        .route("/admin/users/{id}", web::post().to(update_user))
        .route("/admin/users/{id}/{action}", web::post().to(user_action))
        .route("/admin/groups", web::get().to(list_groups))
        .route("/admin/groups", web::post().to(create_group))
        .route("/admin/groups/{id}", web::get().to(show_group))
        .route("/admin/groups/{id}/members", web::post().to(add_member))
        .route("/admin/groups/{id}/members/remove", web::post().to(remove_member))
        .route("/admin/groups/{id}/delete", web::post().to(delete_group))
        .route("/invite/{token}", web::get().to(show_invite))
        .route("/invite/{token}", web::post().to(accept_invite));
}
