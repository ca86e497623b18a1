//! The first step of signing in (username + password), the password change, and the home
//! page. What happens after the password — a second factor, registering one, a password change,
//! a refusal, or straight back to the app — is decided by the gate (`flow::proceed`).

use super::access::{self, Access};
use super::flow::{self, Flow, Level, Pending, Stage};
use super::mfa::Methods;
use super::{password_step, session};
use crate::AppState;
use crate::gate::Target;
use crate::i18n::filters;
use crate::policy::Request;
use crate::policy::model::Risk;
use crate::store::db::Connection;
use crate::store::{self, users::User};
use crate::web::params::Params;
use crate::web::see_other;
use crate::web::{PageError, html};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

pub(crate) fn internal(e: super::password::PoolGone) -> PageError {
    crate::web::InternalError::Other(e.to_string()).into()
}

/// The hash of a new `password`, made on the hashing threads while `conn` is back in the pool.
pub(crate) fn hash_new(state: &crate::AppState, conn: &mut crate::store::Lease, password: &str) -> Result<String, PageError> {
    let password = password.to_string();
    conn.without(|| state.passwords.run(move |h, mem| h.hash_with(&password, mem)))?.map_err(internal)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    request_id: &'a str,
    csrf: &'a str,
    username: &'a str,
    app_name: Option<String>,
    /// The app's id when it has a logo (served at /apps/{id}/logo).
    app_logo: Option<String>,
    error: Option<&'a str>,
}

fn app_logo(conn: &Connection, flow: &Flow) -> Result<Option<String>, store::StoreError> {
    match &flow.request {
        Some(r) if store::clients::has_logo(conn, &r.client_id)? => Ok(Some(r.client_id.clone())),
        _ => Ok(None),
    }
}

pub(crate) fn app_name(conn: &Connection, flow: &Flow) -> Result<Option<String>, store::StoreError> {
    match &flow.request {
        Some(r) => Ok(store::cache::client(conn, &r.client_id)?.map(|c| c.name.clone())),
        None => Ok(None),
    }
}

pub fn show(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    if query.get("request").is_none() {
        // Signing in to latchkey itself, not for an application.
        return Ok(flow::start(req, &state, &conn, &Flow::default(), "/login", now)?);
    }
    let pending = flow::load(req, &conn, query.get("request"), now)?;
    pending.expect(Stage::Password)?;
    let hint = pending.flow.request.as_ref().and_then(|r| r.login_hint.clone()).unwrap_or_default();
    let page = LoginPage {
        request_id: &pending.id,
        csrf: &pending.csrf,
        username: &hint,
        app_name: app_name(&conn, &pending.flow)?,
        app_logo: app_logo(&conn, &pending.flow)?,
        error: None,
    };
    Ok(html(StatusCode::OK, &page))
}

pub fn submit(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let mut conn = store::Lease::get(&state.pool)?;
    let mut pending = flow::load_form(req, &conn, &params, now)?;
    pending.expect(Stage::Password)?;
    let username = params.get("username").unwrap_or("").trim().to_string();
    let password = params.get("password").unwrap_or("").to_string();
    let retry = |conn: &Connection, pending: &Pending, error: &str| -> Result<HttpResponse, PageError> {
        let shown: String = username.chars().take(password_step::MAX_USERNAME).collect();
        let page = LoginPage {
            request_id: &pending.id,
            csrf: &pending.csrf,
            username: &shown,
            app_name: app_name(conn, &pending.flow)?,
            app_logo: app_logo(conn, &pending.flow)?,
            error: Some(error),
        };
        Ok(html(StatusCode::OK, &page))
    };
    if username.is_empty() || password.is_empty() {
        return retry(&conn, &pending, "Enter your username and password.");
    }
    let step = password_step::check(&state, &mut conn, &username, &password, &Request::of(req), now).map_err(step_error)?;
    pending.flow.raise_risk(step.risk, &step.reasons);
    let Some(user) = step.user else {
        let failure = step.failure.unwrap_or(password_step::Failure::WrongPassword);
        pending.flow.user_id = step.user_id;
        let logged: String = username.chars().take(password_step::MAX_USERNAME).collect();
        flow::log(req, &conn, &pending, Some(&logged), failure.reason(), failure.word(), now)?;
        // One message for every failure, so the page does not reveal which usernames exist; a
        // lock (of an account, or of a made-up name's own counter) says how long to wait.
        if let Some(until) = step.locked_until {
            return retry(&conn, &pending, &password_step::locked_message(until, now));
        }
        return retry(&conn, &pending, "Wrong username or password.");
    };
    pending.flow.user_id = Some(user.id.clone());
    pending.flow.amr.clear();
    pending.flow.proved(&["pwd"], now);
    pending.flow.password_at = Some(now);
    pending.flow.password_version = Some(store::policies::password_changed_at(&conn, &user.id)?.unwrap_or(0));
    flow::proceed(req, &state, &conn, &mut pending, now)
}

pub(crate) fn step_error(e: password_step::StepError) -> PageError {
    match e {
        password_step::StepError::Store(e) => e.into(),
        password_step::StepError::PoolGone => crate::web::InternalError::Other(e.to_string()).into(),
    }
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

/// A password proven this recently counts as having just proven the current password.
const RECENT_AUTH_SECS: i64 = 300;

/// The person changing their password in this flow, and whether they must type the current one.
fn changer(req: &HttpRequest, conn: &crate::store::db::Connection, pending: &Pending, now: i64) -> Result<(User, bool), PageError> {
    pending.expect(Stage::ChangePassword)?;
    // A change from a signed-in session needs that session still in this browser.
    if let Some(keep) = &pending.flow.keep_session
        && session::current(req, conn, now)?.is_none_or(|s| &s.id != keep)
    {
        return Err(flow::expired().into());
    }
    let user = store::users::by_id(conn, pending.user_id()?)?.ok_or_else(flow::expired)?;
    let ask_current = pending.flow.password_at.is_none_or(|t| now - t > RECENT_AUTH_SECS);
    Ok((user, ask_current))
}

pub fn show_change_password(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    if query.get("request").is_none() {
        // A change the person chose, from a session the gate lets into the portal.
        let (session, _user) = match access::page(req, &state, &conn, Target::Portal, "/password/change", now)? {
            Access::Granted { session, user } => (session, user),
            Access::Respond(res) => return Ok(res),
        };
        let mut flow = Flow::continuing(&conn, &session)?;
        // As any Security info change: with a second factor registered, it is used first
        // (unless it was lately), so a copied cookie alone never chooses the next password.
        if !flow.second_factor_fresh(now) && Methods::load(&conn, &session.user_id)?.any() {
            return crate::portal::security::step_up(req, &state, &conn, &session, "/password/change", now);
        }
        flow.stepping_up = None;
        flow.keep_session = Some(session.id.clone());
        flow.stage = Stage::ChangePassword;
        flow.return_to = Some("/".into());
        return Ok(flow::start(req, &state, &conn, &flow, "/password/change", now)?);
    }
    let pending = flow::load(req, &conn, query.get("request"), now)?;
    let (user, ask_current) = changer(req, &conn, &pending, now)?;
    let page = ChangePasswordPage {
        request_id: &pending.id,
        csrf: &pending.csrf,
        username: &user.username,
        forced: pending.flow.keep_session.is_none(),
        ask_current,
        error: None,
    };
    Ok(html(StatusCode::OK, &page))
}

pub fn change_password(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let mut conn = store::Lease::get(&state.pool)?;
    let mut pending = flow::load_form(req, &conn, &params, now)?;
    let (user, ask_current) = changer(req, &conn, &pending, now)?;
    let new = params.get("new_password").unwrap_or("").to_string();
    let retry = |pending: &Pending, error: &str| -> Result<HttpResponse, PageError> {
        let page = ChangePasswordPage {
            request_id: &pending.id,
            csrf: &pending.csrf,
            username: &user.username,
            forced: pending.flow.keep_session.is_none(),
            ask_current,
            error: Some(error),
        };
        Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page))
    };
    // User risk is remediated only with a second factor proven lately (in this flow, or at the
    // sign-in of the session it continues): a password alone, or with a copied cookie of an
    // older sign-in, cannot undo "confirmed compromised".
    let mfa_in_flow = pending.flow.second_factor_fresh(now);
    // Whether the person has a second factor to use first (asked only when it is not fresh).
    let stale_factor = !mfa_in_flow && Methods::load(&conn, &user.id)?.any();
    // A change the person chose, from a form left open past the second factor's freshness:
    // through it again (the page comes back afterwards).
    if pending.flow.keep_session.is_some() && stale_factor {
        store::codes::delete_request(&conn, &pending.id)?;
        return Ok(see_other("/password/change"));
    }
    if !mfa_in_flow && store::policies::user_risk(&conn, &user.id)? >= Risk::Medium {
        if stale_factor {
            pending.flow.stage = Stage::SecondFactor;
            pending.flow.required = Level::Mfa;
            pending.flow.stepping_up = pending.flow.keep_session.take();
            pending.flow.return_to = Some("/password/change".into());
            pending.save(&conn)?;
            return Ok(see_other(&format!("/login/mfa?request={}", pending.id)));
        }
        return retry(
            &pending,
            "Your account may be at risk, so its password can't be changed here. Use \"Forgot password\" on the sign-in page, or contact your administrator.",
        );
    }
    if let Err(e) = state.protection.check_new(&new) {
        return retry(&pending, &e.to_string());
    }
    if params.get("confirm_password") != Some(new.as_str()) {
        return retry(&pending, "The two new passwords do not match.");
    }
    if ask_current {
        // The current password is a password attempt like any other: smart lockout, the risk
        // detectors, failure counting and the sign-in log (a copied cookie is no way to guess it).
        let current = params.get("current_password").unwrap_or("");
        let step = password_step::check(&state, &mut conn, &user.username, current, &Request::of(req), now).map_err(step_error)?;
        pending.flow.raise_risk(step.risk, &step.reasons);
        if let Some(failure) = step.failure {
            flow::log(req, &conn, &pending, Some(&user.username), failure.reason(), failure.word(), now)?;
            if let Some(until) = step.locked_until {
                return retry(&pending, &password_step::locked_message(until, now));
            }
            return retry(&pending, "Your current password is not correct.");
        }
    }
    let stored = user.password_hash.clone();
    let new_for_hash = new.clone();
    // Two hashes: the connection goes back to the pool meanwhile.
    let (same_as_old, hash) = conn
        .without(|| state.passwords.run(move |h, mem| (h.verify_with(&new_for_hash, Some(&stored), mem), h.hash_with(&new_for_hash, mem))))?
        .map_err(internal)?;
    if same_as_old {
        return retry(&pending, "Choose a password different from your current one.");
    }
    let keep = pending.flow.keep_session.clone();
    let kept_token = {
        let tx = crate::store::db::Transaction::new_unchecked(&conn, crate::store::db::TransactionBehavior::Immediate)?;
        store::users::set_password(&tx, &user.id, &hash, now, mfa_in_flow)?;
        // Every other session and every refresh-token family ends with the old password (the
        // session this flow continues ends when it completes, replaced by a new one).
        let spared = keep.as_deref().or(pending.flow.stepping_up.as_deref());
        store::protection::end_everything_except(&tx, &user.id, spared, now)?;
        // The session kept goes on under a new cookie: a copy of the old one (the reason to
        // change a password, often) ends here too.
        let token = keep.as_deref().map(|id| store::sessions::new_token(&tx, id)).transpose()?;
        store::mfa::audit(&tx, Some(&user.id), Some(&user.id), "password_changed", None, now)?;
        tx.commit()?;
        token
    };
    tracing::info!(user = %user.id, "password changed");
    if let Some(token) = kept_token {
        store::codes::delete_request(&conn, &pending.id)?;
        let mut res = see_other(pending.flow.return_to.as_deref().unwrap_or("/"));
        let cookie = crate::web::cookies::build(crate::web::cookies::SESSION, token, state.config.secure_cookies(), None);
        res.add_cookie(&cookie).map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
        return Ok(res);
    }
    pending.flow.password_changed = true;
    pending.flow.password_at = Some(now);
    pending.flow.password_version = Some(now);
    flow::proceed(req, &state, &conn, &mut pending, now)
}
