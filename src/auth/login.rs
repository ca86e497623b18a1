//! The first step of signing in (username + password), the forced password change, and the
//! home page. What happens after the password — a second factor, registering one, or straight
//! back to the app — is decided by `mfa::next_step`.

use super::flow::{self, Flow, Level, Pending};
use super::{mfa, protection, session};
use crate::policy::model::Platform;
use crate::AppState;
use crate::store;
use crate::web::params::Params;
use crate::web::{PageError, html};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use rusqlite::Connection;

pub(crate) fn internal(e: super::password::PoolGone) -> PageError {
    crate::web::InternalError::Other(e.to_string()).into()
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

pub(crate) fn app_name(conn: &Connection, flow: &Flow) -> Result<Option<String>, store::StoreError> {
    match &flow.request {
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
        return Ok(flow::start(&req, &state, &conn, &Flow::default(), "/login", now)?);
    }
    let pending = flow::load(&req, &conn, query.get("request"), now)?;
    let hint = pending.flow.request.as_ref().and_then(|r| r.login_hint.clone()).unwrap_or_default();
    let page = LoginPage {
        request_id: &pending.id,
        csrf: &pending.csrf,
        username: &hint,
        app_name: app_name(&conn, &pending.flow)?,
        error: None,
    };
    Ok(html(StatusCode::OK, &page))
}

pub async fn submit(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut pending = flow::load_form(&req, &conn, &params, now)?;
    let username = params.get("username").unwrap_or("").trim().to_string();
    let password = params.get("password").unwrap_or("").to_string();
    let retry = |pending: &Pending, error: &str| -> Result<HttpResponse, PageError> {
        let page = LoginPage {
            request_id: &pending.id,
            csrf: &pending.csrf,
            username: &username,
            app_name: app_name(&conn, &pending.flow)?,
            error: Some(error),
        };
        Ok(html(StatusCode::OK, &page))
    };
    if username.is_empty() || password.is_empty() {
        return retry(&pending, "Enter your username and password.");
    }
    let user = store::users::by_username(&conn, &username)?;
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let attempt = password.clone();
    let verified = state
        .passwords
        .offload(move |h, mem| h.verify_with(&attempt, stored.as_deref(), mem))
        .await
        .map_err(internal)?;
    let request = crate::policy::Request::of(&req);
    let platform = request.user_agent.as_deref().map(Platform::from_user_agent).unwrap_or(Platform::Other);
    let found = protection::assess(&state.protection, &conn, user.as_ref().map(|u| u.id.as_str()), request.ip.as_deref(), platform.as_str(), &password, verified, now)?;
    // Smart lockout: counted per kind of location, and a correct password during a lockout
    // gets the same answer as a wrong one.
    let locked = match &user {
        Some(u) => protection::locked(&conn, &u.id, found.familiar, now)?,
        None => false,
    };
    let failure = match &user {
        None => Some("unknown username"),
        Some(_) if locked => Some("account locked (smart lockout)"),
        Some(_) if !verified => Some("wrong password"),
        Some(u) if u.disabled => Some("account disabled"),
        Some(_) => None,
    };
    pending.flow.user_id = user.as_ref().map(|u| u.id.clone());
    pending.flow.sign_in_risk = found.risk;
    pending.flow.risk_reasons = found.reasons.clone();
    let Some(user) = user.filter(|_| failure.is_none()) else {
        if matches!(failure, Some("wrong password" | "unknown username")) {
            state.protection.record_failure(&username, request.ip.as_deref(), &password, now);
            if let Some(id) = &pending.flow.user_id {
                protection::count_failure(&state.protection, &conn, id, found.familiar, now)?;
            }
        }
        let failure = failure.unwrap_or_default();
        // "wrong password" stays exactly that: the brute-force detector counts those rows.
        let reason = match failure {
            "wrong password" => failure.to_string(),
            _ if found.reasons.is_empty() => failure.to_string(),
            _ => format!("{failure}; risk: {}", found.reasons.join("; ")),
        };
        flow::log(&req, &conn, &pending, Some(&username), Err(&reason), now)?;
        // One message for every failure, so the page does not reveal which usernames exist.
        return retry(&pending, "Wrong username or password.");
    };
    protection::clear_failures(&conn, &user.id, found.familiar)?;
    if found.reasons.iter().any(|r| r.starts_with("leaked credentials")) {
        // A breached password in use: the account itself is at risk until the password changes.
        store::policies::set_user_risk(&conn, &user.id, crate::policy::model::Risk::High)?;
        store::mfa::audit(&conn, None, Some(&user.id), "user_risk_raised", Some("leaked credentials"), now)?;
    }
    pending.flow.amr = flow::merge_amr(&[], &["pwd"]);
    mfa::proceed(&req, &state, &conn, &mut pending, &user, now)
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
        let flow = Flow { return_to: Some("/password/change".into()), ..Flow::default() };
        return Ok(flow::start(&req, &state, &conn, &flow, "/login", now)?);
    };
    if query.get("request").is_none() {
        let flow = Flow { user_id: Some(current.user_id.clone()), ..Flow::default() };
        return Ok(flow::start(&req, &state, &conn, &flow, "/password/change", now)?);
    }
    let pending = flow::load(&req, &conn, query.get("request"), now)?;
    let user = store::users::by_id(&conn, &current.user_id)?.ok_or_else(flow::expired)?;
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
    let params = Params::form(&body)?;
    let conn = state.pool.get()?;
    let pending = flow::load_form(&req, &conn, &params, now)?;
    let current = session::current(&req, &conn, now)?.ok_or_else(flow::expired)?;
    let user = store::users::by_id(&conn, &current.user_id)?.ok_or_else(flow::expired)?;
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
    if let Err(e) = state.protection.check_new(&new) {
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
    store::mfa::audit(&conn, Some(&user.id), Some(&user.id), "password_changed", None, now)?;
    tracing::info!(user = %user.id, "password changed");
    Ok(flow::finish(&req, &state, &conn, &pending, &current, now)?)
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    username: Option<String>,
    csrf: String,
    level: &'static str,
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let page = match session::current(&req, &conn, now)? {
        Some(s) => HomePage {
            username: store::users::by_id(&conn, &s.user_id)?.map(|u| u.username),
            csrf: s.csrf_token,
            level: match Level::of(&s.amr) {
                Level::Password => "a password",
                Level::Mfa => "multi-factor authentication",
                Level::PhishingResistant => "phishing-resistant multi-factor authentication",
            },
        },
        None => HomePage { username: None, csrf: String::new(), level: "" },
    };
    Ok(html(StatusCode::OK, &page))
}
