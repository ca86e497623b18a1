//! A browser that already holds a session: signing in to an app with it (SSO), or using
//! latchkey's own portal and console. The gate runs on every such request, with the session's
//! evidence (its methods, age and the highest risk seen in it); anything short of Issue
//! continues in a sign-in flow that starts from the session.

use super::flow::{self, Flow};
use super::session;
use crate::AppState;
use crate::gate::{self, Ask, Target, Verdict};
use crate::policy::Request;
use crate::policy::model::Risk;
use crate::store::db::Connection;
use crate::store::{self, StoreError, sessions::Session, users::User};
use crate::web::PageError;
use actix_web::{HttpRequest, HttpResponse};

/// The session's sign-in risk and its reasons.
pub fn session_risk(conn: &Connection, session: &Session) -> Result<(Risk, Vec<String>), StoreError> {
    let (risk, reasons) = store::protection::session_risk(conn, &session.id)?;
    Ok((Risk::parse(&risk).unwrap_or(Risk::None), reasons))
}

/// Asks the gate whether `session` may be used for `target` now.
pub fn check(conn: &Connection, session: &Session, target: Target, acr: super::flow::Level, request: &Request, now: i64) -> Result<Verdict, StoreError> {
    check_for(conn, session, target, acr, None, request, now)
}

/// `check` for an app's authorization request (`consent`: what it asks for).
pub fn check_for(
    conn: &Connection,
    session: &Session,
    target: Target,
    acr: super::flow::Level,
    consent: Option<gate::ConsentAsk<'_>>,
    request: &Request,
    now: i64,
) -> Result<Verdict, StoreError> {
    let risk = session_risk(conn, session)?;
    let ask = Ask { consent, acr_asked: acr, ..session_ask(session, target, request, &risk) };
    gate::check(conn, &ask, now)
}

/// The gate's question about using `session` for `target`: its methods, sign-in time and risk.
pub fn session_ask<'a>(session: &'a Session, target: Target, request: &'a Request, risk: &'a (Risk, Vec<String>)) -> Ask<'a> {
    Ask {
        auth_time: Some(session.auth_time),
        sign_in_risk: Some(risk.0),
        risk_reasons: &risk.1,
        session_in_use: true,
        ..Ask::interactive(target, &session.user_id, request, &session.amr)
    }
}

/// Continues from `session` in a sign-in flow shaped by `shape` (its request, acr, console flag
/// or return_to): the gate's verdict picks the page, or refuses.
pub fn continue_flow(
    req: &HttpRequest,
    state: &AppState,
    conn: &Connection,
    session: &Session,
    shape: Flow,
    verdict: Verdict,
    now: i64,
) -> Result<HttpResponse, PageError> {
    let flow = Flow { request: shape.request, acr: shape.acr, console: shape.console, return_to: shape.return_to, ..Flow::continuing(conn, session)? };
    let (mut pending, cookie) = flow::create(req, state, conn, &flow, now)?;
    let mut res = flow::render(req, state, conn, &mut pending, verdict, now)?;
    if let Some(c) = cookie {
        res.add_cookie(&c).expect("cookie is valid");
    }
    Ok(res)
}

/// What a page of the portal or console may do.
pub enum Access {
    Granted {
        session: Session,
        user: User,
    },
    /// Sign in, step up, register, change a password, or a refusal: send this instead.
    Respond(HttpResponse),
}

/// The gate for a page of latchkey's own (`target` Portal or Console); `back` is where the
/// person returns once whatever the gate asks for is done.
pub fn page(req: &HttpRequest, state: &AppState, conn: &Connection, target: Target, back: &str, now: i64) -> Result<Access, PageError> {
    let console = target == Target::Console;
    let shape = Flow { return_to: Some(back.to_string()), console, ..Flow::default() };
    let Some(s) = session::current(req, conn, now)? else {
        return Ok(Access::Respond(flow::start(req, state, conn, &shape, "/login", now)?));
    };
    let verdict = check(conn, &s, target, super::flow::Level::Password, &Request::of(req), now)?;
    if verdict.issued().is_some() {
        let user = store::users::by_id(conn, &s.user_id)?.ok_or_else(flow::expired)?;
        return Ok(Access::Granted { session: s, user });
    }
    Ok(Access::Respond(continue_flow(req, state, conn, &s, shape, verdict, now)?))
}

/// The session behind a form POST to latchkey's own pages, if the gate lets it in now. A POST
/// is not redirected into a sign-in flow; the page it came from (a GET) does that.
pub fn form_session(req: &HttpRequest, conn: &Connection, target: Target, now: i64) -> Result<Session, PageError> {
    let s = session::current(req, conn, now)?.ok_or_else(flow::expired)?;
    let verdict = check(conn, &s, target, super::flow::Level::Password, &Request::of(req), now)?;
    if verdict.issued().is_none() {
        return Err(crate::web::ErrorPage {
            status: actix_web::http::StatusCode::FORBIDDEN,
            title: "Sign in again".into(),
            message: "Your sign-in needs attention before this change can be made. Reload the page to continue.".into(),
        }
        .into());
    }
    Ok(s)
}
