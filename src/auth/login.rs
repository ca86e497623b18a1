//! The sign-in pages: username + password, the forced password change, and the home page.
//! Each pending sign-in is a server-side row bound to this browser by the `lk_browser`
//! cookie and to the form by a CSRF token; the SSO session id changes at every sign-in.

use super::password::check_rules;
use super::session;
use crate::AppState;
use crate::crypto::{constant_time_eq, random_token, secret_hash};
use crate::oidc::authorize::{self, AuthRequest};
use crate::store::{self, StoreError, codes::PendingRequest, signins::SignIn};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, client_ip, cookies, html, see_other, user_agent};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use rusqlite::Connection;

fn internal(e: super::password::PoolGone) -> PageError {
    crate::web::InternalError::Other(e.to_string()).into()
}

#[derive(Debug, Clone, Copy)]
pub enum Step {
    Password,
    ChangePassword,
}

impl Step {
    fn path(self) -> &'static str {
        match self {
            Step::Password => "/login",
            Step::ChangePassword => "/password/change",
        }
    }
}

/// Parks `request` server-side and sends the browser to the page for `step`.
pub fn start(
    req: &HttpRequest,
    state: &AppState,
    conn: &Connection,
    request: Option<&AuthRequest>,
    step: Step,
    now: i64,
) -> Result<HttpResponse, StoreError> {
    let existing = cookies::value(req, cookies::BROWSER);
    let browser = existing.clone().unwrap_or_else(random_token);
    let id = random_token();
    let pending = PendingRequest {
        browser_hash: secret_hash(&browser),
        csrf_token: random_token(),
        params: serde_json::to_string(&request).expect("an auth request serialises"),
    };
    store::codes::insert_request(conn, &id, &pending, now, state.config.session.login_request_ttl_secs)?;
    let mut res = see_other(&format!("{}?request={id}", step.path()));
    if existing.is_none() {
        let c = cookies::build(cookies::BROWSER, browser, state.config.secure_cookies(), None);
        res.add_cookie(&c).expect("cookie is valid");
    }
    Ok(res)
}

fn expired() -> ErrorPage {
    ErrorPage::bad_request(
        "This sign-in page has expired",
        "Go back to the application and start signing in again.",
    )
}

struct Pending {
    id: String,
    csrf: String,
    request: Option<AuthRequest>,
}

/// The pending sign-in named by `id`, if it exists, is fresh and belongs to this browser.
fn load(req: &HttpRequest, conn: &Connection, id: Option<&str>, now: i64) -> Result<Pending, PageError> {
    let id = id.ok_or_else(expired)?;
    let row = store::codes::request(conn, id, now)?.ok_or_else(expired)?;
    let browser = cookies::value(req, cookies::BROWSER).ok_or_else(expired)?;
    if !constant_time_eq(secret_hash(&browser).as_bytes(), row.browser_hash.as_bytes()) {
        return Err(expired().into());
    }
    let request = serde_json::from_str(&row.params).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Pending { id: id.to_string(), csrf: row.csrf_token, request })
}

fn check_csrf(pending: &Pending, params: &Params) -> Result<(), ErrorPage> {
    let sent = params.get("csrf").unwrap_or("");
    if constant_time_eq(sent.as_bytes(), pending.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(ErrorPage::bad_request(
            "This form has expired",
            "The form was not submitted from this sign-in page. Go back to the application and sign in again.",
        ))
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    request_id: &'a str,
    csrf: &'a str,
    username: &'a str,
    app_name: Option<String>,
    error: Option<&'a str>,
}

fn app_name(conn: &Connection, request: &Option<AuthRequest>) -> Result<Option<String>, StoreError> {
    match request {
        Some(r) => Ok(store::clients::by_id(conn, &r.client_id)?.map(|c| c.name)),
        None => Ok(None),
    }
}

pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    if query.get("request").is_none() {
        // Signing in to latchkey itself, not for an application.
        return Ok(start(&req, &state, &conn, None, Step::Password, now)?);
    }
    let pending = load(&req, &conn, query.get("request"), now)?;
    let hint = pending.request.as_ref().and_then(|r| r.login_hint.clone()).unwrap_or_default();
    let page = LoginPage {
        request_id: &pending.id,
        csrf: &pending.csrf,
        username: &hint,
        app_name: app_name(&conn, &pending.request)?,
        error: None,
    };
    Ok(html(StatusCode::OK, &page))
}

/// Where a finished sign-in goes: back to the application with a code, or home.
fn finish(state: &AppState, conn: &Connection, pending: &Pending, s: &store::sessions::Session, now: i64) -> Result<HttpResponse, StoreError> {
    store::codes::delete_request(conn, &pending.id)?;
    match &pending.request {
        Some(r) => authorize::issue_code(state, conn, r, s, now),
        None => Ok(see_other("/")),
    }
}

pub async fn submit(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::parse(&body).map_err(|e| ErrorPage::bad_request("Invalid form", e.to_string()))?;
    let conn = state.pool.get()?;
    let pending = load(&req, &conn, params.get("request"), now)?;
    check_csrf(&pending, &params)?;
    let username = params.get("username").unwrap_or("").trim().to_string();
    let password = params.get("password").unwrap_or("").to_string();
    let client_id = pending.request.as_ref().map(|r| r.client_id.clone());
    let ip = client_ip(&req);
    let ua = user_agent(&req);
    let retry = |error: &str| -> Result<HttpResponse, PageError> {
        let page = LoginPage {
            request_id: &pending.id,
            csrf: &pending.csrf,
            username: &username,
            app_name: app_name(&conn, &pending.request)?,
            error: Some(error),
        };
        Ok(html(StatusCode::OK, &page))
    };
    if username.is_empty() || password.is_empty() {
        return retry("Enter your username and password.");
    }
    let user = store::users::by_username(&conn, &username)?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let verified = state.passwords.offload(move |h, mem| h.verify_with(&password, stored.as_deref(), mem)).await.map_err(internal)?;
    let failure = match &user {
        None => Some("unknown username"),
        Some(_) if !verified => Some("wrong password"),
        Some(u) if u.disabled => Some("account disabled"),
        Some(_) => None,
    };
    let log = SignIn {
        user_id: user.as_ref().map(|u| u.id.as_str()),
        username: Some(&username),
        client_id: client_id.as_deref(),
        ip: ip.as_deref(),
        user_agent: ua.as_deref(),
        result: if failure.is_some() { "failure" } else { "success" },
        reason: failure,
    };
    store::signins::record(&conn, &log, now)?;
    let Some(user) = user.filter(|_| failure.is_none()) else {
        // One message for every failure, so the page does not reveal which usernames exist.
        return retry("Wrong username or password.");
    };
    // A new session (and session id) at every sign-in, ending the one this browser had.
    if let Some(old) = session::current(&req, &conn, now)? {
        store::sessions::end(&conn, &old.id, now)?;
    }
    let (new_session, token) =
        store::sessions::create(&conn, &user.id, &["pwd".to_string()], now, state.config.session.ttl_secs)?;
    tracing::info!(user = %user.id, client = ?client_id, "signed in");
    let mut res = if user.must_change_password {
        see_other(&format!("{}?request={}", Step::ChangePassword.path(), pending.id))
    } else {
        finish(&state, &conn, &pending, &new_session, now)?
    };
    let cookie = cookies::build(cookies::SESSION, token, state.config.secure_cookies(), None);
    res.add_cookie(&cookie).expect("cookie is valid");
    Ok(res)
}

#[derive(Template)]
#[template(path = "change_password.html")]
struct ChangePasswordPage<'a> {
    request_id: &'a str,
    csrf: &'a str,
    username: &'a str,
    forced: bool,
    ask_current: bool,
    error: Option<&'a str>,
}

/// A sign-in this recent counts as having just proven the current password.
const RECENT_AUTH_SECS: i64 = 300;

pub async fn show_change_password(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let Some(current) = session::current(&req, &conn, now)? else {
        return Ok(start(&req, &state, &conn, None, Step::Password, now)?);
    };
    if query.get("request").is_none() {
        return Ok(start(&req, &state, &conn, None, Step::ChangePassword, now)?);
    }
    let pending = load(&req, &conn, query.get("request"), now)?;
    let user = store::users::by_id(&conn, &current.user_id)?.ok_or_else(expired)?;
    let page = ChangePasswordPage {
        request_id: &pending.id,
        csrf: &pending.csrf,
        username: &user.username,
        forced: user.must_change_password,
        ask_current: now - current.auth_time > RECENT_AUTH_SECS,
        error: None,
    };
    Ok(html(StatusCode::OK, &page))
}

pub async fn change_password(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::parse(&body).map_err(|e| ErrorPage::bad_request("Invalid form", e.to_string()))?;
    let conn = state.pool.get()?;
    let pending = load(&req, &conn, params.get("request"), now)?;
    check_csrf(&pending, &params)?;
    let current = session::current(&req, &conn, now)?.ok_or_else(expired)?;
    let user = store::users::by_id(&conn, &current.user_id)?.ok_or_else(expired)?;
    let ask_current = now - current.auth_time > RECENT_AUTH_SECS;
    let new = params.get("new_password").unwrap_or("").to_string();
    let retry = |error: &str| -> Result<HttpResponse, PageError> {
        let page = ChangePasswordPage {
            request_id: &pending.id,
            csrf: &pending.csrf,
            username: &user.username,
            forced: user.must_change_password,
            ask_current,
            error: Some(error),
        };
        Ok(html(StatusCode::OK, &page))
    };
    if let Err(e) = check_rules(&new) {
        return retry(&e.to_string());
    }
    if params.get("confirm_password") != Some(new.as_str()) {
        return retry("The two new passwords do not match.");
    }
    let (stored, old) = (user.password_hash.clone(), params.get("current_password").unwrap_or("").to_string());
    let new_for_hash = new.clone();
    let (current_ok, same_as_old, hash) = state
        .passwords
        .offload(move |h, mem| {
            let current_ok = !ask_current || h.verify_with(&old, Some(&stored), mem);
            let same = h.verify_with(&new_for_hash, Some(&stored), mem);
            (current_ok, same, h.hash_with(&new_for_hash, mem))
        })
        .await
        .map_err(internal)?;
    if !current_ok {
        return retry("Your current password is not correct.");
    }
    if same_as_old {
        return retry("Choose a password different from your current one.");
    }
    store::users::set_password(&conn, &user.id, &hash, now)?;
    tracing::info!(user = %user.id, "password changed");
    Ok(finish(&state, &conn, &pending, &current, now)?)
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    username: Option<String>,
    csrf: String,
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let page = match session::current(&req, &conn, now)? {
        Some(s) => HomePage { username: store::users::by_id(&conn, &s.user_id)?.map(|u| u.username), csrf: s.csrf_token },
        None => HomePage { username: None, csrf: String::new() },
    };
    Ok(html(StatusCode::OK, &page))
}
