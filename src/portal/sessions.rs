//! My sessions and sign-ins: the signed-in person sees where they are signed in and ends those
//! sessions, sees the apps that hold refresh tokens of theirs and disconnects them, and reviews
//! their recent sign-ins, marking one "This wasn't me" — which raises their user risk to high,
//! ends every session and token, shows the report to admins and sends them to reset their
//! password. Every action checks that what it names is the person's own.

use crate::AppState;
use crate::auth::access::{self, Access};
use crate::auth::flow;
use crate::crypto::constant_time_eq;
use crate::gate::Target;
use crate::i18n::filters;
use crate::policy::locations::IpRange;
use crate::policy::model::{Platform, Risk};
use crate::store::db::Connection;
use crate::store::{self, StoreError, policies::NamedLocation, sessions::Session};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, cookies, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

const PATH: &str = "/sessions";
/// How far back the sign-in list goes, and how many rows it shows at most.
const SIGNINS_SECS: i64 = 30 * 86_400;
const SIGNINS_SHOWN: i64 = 50;

/// A short browser name from a User-Agent. Edge and Chrome both claim Safari, and Edge claims
/// Chrome, so the most specific comes first.
pub fn browser_name(ua: &str) -> &'static str {
    if ua.contains("Edg/") || ua.contains("EdgA/") || ua.contains("EdgiOS/") {
        "Edge"
    } else if ua.contains("Firefox/") || ua.contains("FxiOS/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "Another browser"
    }
}

fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::Windows => "Windows",
        Platform::Macos => "macOS",
        Platform::Linux => "Linux",
        Platform::Ios => "iOS",
        Platform::Android => "Android",
        Platform::Other => "another system",
    }
}

/// "Firefox on Linux", from what the browser said about itself (which it may make up).
pub fn device(ua: Option<&str>) -> String {
    match ua {
        Some(ua) if !ua.is_empty() => format!("{} on {}", browser_name(ua), platform_name(Platform::from_user_agent(ua))),
        _ => "Unknown device".into(),
    }
}

/// The IP address, with the organisation's trusted named locations it falls in.
fn location(ip: Option<&str>, named: &[NamedLocation]) -> String {
    let Some(ip) = ip else { return "Unknown".into() };
    let Ok(addr) = ip.parse() else { return ip.to_string() };
    let names: Vec<&str> = named
        .iter()
        .filter(|l| l.trusted && l.ranges.iter().filter_map(|r| IpRange::parse(r).ok()).any(|r| r.contains(addr)))
        .map(|l| l.name.as_str())
        .collect();
    if names.is_empty() { ip.to_string() } else { format!("{ip} ({})", names.join(", ")) }
}

/// What a person calls the app of a sign-in log row.
fn app_name(client_id: Option<&str>, name: Option<String>) -> String {
    match (client_id, name) {
        (_, Some(name)) => name,
        (Some(crate::gate::CONSOLE), None) => "latchkey admin console".into(),
        (Some(id), None) if id != crate::gate::PORTAL => "An app that was removed".into(),
        _ => "latchkey".into(),
    }
}

fn not_yours() -> PageError {
    ErrorPage { status: StatusCode::NOT_FOUND, title: "Not found".into(), message: "That is not one of your sessions, apps or sign-ins.".into() }.into()
}

/// The session behind a POST, with its CSRF token checked.
fn signed(req: &HttpRequest, conn: &Connection, body: &[u8], now: i64) -> Result<Session, PageError> {
    let params = Params::form(body)?;
    let session = access::form_session(req, conn, Target::Portal, now)?;
    if !constant_time_eq(params.get("csrf").unwrap_or("").as_bytes(), session.csrf_token.as_bytes()) {
        return Err(ErrorPage::bad_request("This form has expired", "Reload My sessions and try again.").into());
    }
    Ok(session)
}

/// The browser's own session ended: it is signed out.
fn signed_out(state: &AppState, to: &str) -> HttpResponse {
    let mut res = see_other(to);
    res.add_cookie(&cookies::removal(cookies::SESSION, state.config.secure_cookies())).expect("cookie is valid");
    res
}

struct SessionRow {
    id: String,
    current: bool,
    device: String,
    location: String,
    signed_in: String,
    last_used: String,
    apps: Vec<String>,
}

struct AppRow {
    client_id: String,
    name: String,
    may: Vec<&'static str>,
    since: String,
    last_refreshed: String,
}

struct SignInRow {
    id: i64,
    at: String,
    app: String,
    ip: String,
    device: String,
    result: &'static str,
    good: bool,
    reported: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    username: String,
    csrf: String,
    sessions: Vec<SessionRow>,
    apps: Vec<AppRow>,
    signins: Vec<SignInRow>,
}

impl SessionsPage {
    fn others(&self) -> bool {
        self.sessions.iter().any(|s| !s.current)
    }
}

/// GET /sessions.
pub fn show(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let (s, user) = match access::page(req, &state, &conn, Target::Portal, PATH, now)? {
        Access::Granted { session, user } => (session, user),
        Access::Respond(res) => return Ok(res),
    };
    store::sessions::touch(&conn, &s.id, now)?;
    let when = crate::admin::when;
    let named = store::policies::locations(&conn)?;
    let sessions = store::sessions::active_for_user(&conn, &user.id, now)?
        .into_iter()
        .map(|a| SessionRow {
            current: a.id == s.id,
            device: device(a.user_agent.as_deref()),
            location: location(a.ip.as_deref(), &named),
            signed_in: when(a.created_at),
            last_used: when(a.last_used_at),
            apps: a.apps,
            id: a.id,
        })
        .collect();
    let apps = store::tokens::connected_apps(&conn, &user.id, now)?
        .into_iter()
        .map(|a| AppRow {
            may: a.scopes.iter().filter_map(|s| crate::auth::consent::describe(s)).collect(),
            since: when(a.since),
            last_refreshed: when(a.last_refreshed_at),
            client_id: a.client_id,
            name: a.name,
        })
        .collect();
    let signins = store::signins::own_since(&conn, &user.id, now - SIGNINS_SECS, SIGNINS_SHOWN)?
        .into_iter()
        .map(|(r, name)| SignInRow {
            id: r.id,
            at: when(r.at),
            app: app_name(r.client_id.as_deref(), name),
            ip: r.ip.unwrap_or_else(|| "Unknown".into()),
            device: device(r.user_agent.as_deref()),
            result: match r.result.as_str() {
                "success" => "Succeeded",
                "interrupted" => "Interrupted",
                _ => "Failed",
            },
            good: r.result == "success",
            reported: r.reported_at.is_some(),
        })
        .collect();
    let page = SessionsPage { username: user.username, csrf: s.csrf_token, sessions, apps, signins };
    Ok(html(StatusCode::OK, &page))
}

/// POST /sessions/{id}/end: ends one of the person's sessions (back-channel logout goes to the
/// apps it signed in to); ending this browser's own signs it out.
pub fn end_one(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let now = state.clock.now();
    let mut conn = state.pool.get()?;
    let s = signed(req, &conn, &body, now)?;
    let ended = store::transaction(&mut conn, |tx| -> Result<bool, StoreError> {
        if !store::sessions::is_live_session_of(tx, &id, &s.user_id, now)? {
            return Ok(false);
        }
        store::sessions::end(tx, &id, now)?;
        store::mfa::audit(tx, Some(&s.user_id), Some(&s.user_id), "session_ended_by_user", Some(&format!("session {id}")), now)?;
        Ok(true)
    })?;
    if !ended {
        return Err(not_yours());
    }
    Ok(if *id == s.id { signed_out(&state, "/") } else { see_other(PATH) })
}

/// POST /sessions/end-others and /sessions/end-all: every other session, or every one, ends,
/// and with them every app's refresh tokens (the apps sign in again through this session).
fn end_many(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes, keep_this: bool) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let mut conn = state.pool.get()?;
    let s = signed(req, &conn, &body, now)?;
    store::transaction(&mut conn, |tx| -> Result<(), StoreError> {
        let (keep, detail) = if keep_this { (Some(s.id.as_str()), "all other sessions") } else { (None, "all sessions") };
        store::protection::end_everything_except(tx, &s.user_id, keep, now)?;
        store::mfa::audit(tx, Some(&s.user_id), Some(&s.user_id), "sessions_ended_by_user", Some(detail), now)
    })?;
    Ok(if keep_this { see_other(PATH) } else { signed_out(&state, "/") })
}

pub fn end_others(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    end_many(req, state, body, true)
}

pub fn end_all(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    end_many(req, state, body, false)
}

/// POST /sessions/apps/{client_id}/revoke: the app's grants of the person are revoked, and with
/// them its refresh and access tokens.
pub fn revoke_app(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let client_id = crate::web::path_param(req, "client_id");
    let now = state.clock.now();
    let mut conn = state.pool.get()?;
    let s = signed(req, &conn, &body, now)?;
    let revoked = store::transaction(&mut conn, |tx| -> Result<bool, StoreError> {
        if store::tokens::revoke_app(tx, &s.user_id, &client_id, now)? == 0 {
            return Ok(false);
        }
        store::mfa::audit(tx, Some(&s.user_id), Some(&s.user_id), "app_disconnected_by_user", Some(&format!("app {client_id}")), now)?;
        Ok(true)
    })?;
    if !revoked {
        return Err(not_yours());
    }
    Ok(see_other(PATH))
}

/// POST /sessions/signins/{id}/report: "This wasn't me". The account may be in someone else's
/// hands: user risk high (cleared only by an admin or by remediation with MFA or reset), every
/// session and refresh-token family ends, admins see the report in the audit log and on the
/// sign-in log row, and the person is sent to reset their password.
pub fn report(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let now = state.clock.now();
    let mut conn = state.pool.get()?;
    let s = signed(req, &conn, &body, now)?;
    let id: i64 = id.parse().map_err(|_| not_yours())?;
    let user = store::users::by_id(&conn, &s.user_id)?.ok_or_else(flow::expired)?;
    let reported = store::transaction(&mut conn, |tx| -> Result<bool, StoreError> {
        if !store::signins::report(tx, id, &user.id, now)? {
            return Ok(false);
        }
        store::policies::set_user_risk(tx, &user.id, Risk::High)?;
        store::protection::end_everything(tx, &user.id, now)?;
        store::mfa::audit(tx, Some(&user.id), Some(&user.id), "user_reported_signin", Some(&format!("sign-in {id}")), now)?;
        Ok(true)
    })?;
    if !reported {
        return Err(not_yours());
    }
    tracing::warn!(user = %user.id, signin = id, "a sign-in was reported as not the user's");
    let name: String = url::form_urlencoded::byte_serialize(user.username.as_bytes()).collect();
    Ok(signed_out(&state, &format!("/reset?username={name}")))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(crate::web::offload(show)))
        .route("/sessions/end-others", web::post().to(crate::web::offload(end_others)))
        .route("/sessions/end-all", web::post().to(crate::web::offload(end_all)))
        .route("/sessions/{id}/end", web::post().to(crate::web::offload(end_one)))
        .route("/sessions/apps/{client_id}/revoke", web::post().to(crate::web::offload(revoke_app)))
        .route("/sessions/signins/{id}/report", web::post().to(crate::web::offload(report)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_named_by_browser_and_platform() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(device(Some(chrome)), "Chrome on Windows");
        assert_eq!(device(Some(edge)), "Edge on Windows");
        assert_eq!(device(Some(safari)), "Safari on iOS");
        assert_eq!(device(Some(firefox)), "Firefox on Linux");
        assert_eq!(device(Some("curl/8.5.0")), "Another browser on another system");
        assert_eq!(device(None), "Unknown device");
    }

    #[test]
    fn a_location_names_only_trusted_ranges() {
        let office = NamedLocation { id: "1".into(), name: "Office".into(), ranges: vec!["203.0.113.0/24".into()], trusted: true, risk: Risk::None };
        let risky = NamedLocation { id: "2".into(), name: "Bad range".into(), ranges: vec!["198.51.100.0/24".into()], trusted: false, risk: Risk::High };
        let named = [office, risky];
        assert_eq!(location(Some("203.0.113.9"), &named), "203.0.113.9 (Office)");
        assert_eq!(location(Some("198.51.100.9"), &named), "198.51.100.9");
        assert_eq!(location(None, &named), "Unknown");
    }

    #[test]
    fn a_sign_in_names_its_app() {
        assert_eq!(app_name(Some("c1"), Some("Wiki".into())), "Wiki");
        assert_eq!(app_name(Some("latchkey:portal"), None), "latchkey");
        assert_eq!(app_name(Some("latchkey:console"), None), "latchkey admin console");
        assert_eq!(app_name(Some("gone"), None), "An app that was removed");
        assert_eq!(app_name(None, None), "latchkey");
    }
}
