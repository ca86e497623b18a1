//! The admin console at /admin: applications, users, groups, sign-in logs, audit log, keys.
//! Every route checks the session, its second factor, its inactivity and the admin's role;
//! every POST checks the session's CSRF token.

pub mod apps;
pub mod directory;
pub mod logs;
pub mod policies;

use crate::AppState;
use crate::auth::flow::{self, Flow, Level};
use crate::auth::{mfa, session};
use crate::crypto::constant_time_eq;
use crate::store::{self, directory::Role, sessions::Session, users::User};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// Which admins may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Global administrators only.
    Global,
    /// Global or application administrators.
    Apps,
}

/// A signed-in admin, allowed on this route.
pub struct Admin {
    pub user: User,
    pub session: Session,
    pub roles: Vec<Role>,
}

impl Admin {
    pub fn nav(&self) -> Nav {
        Nav { global: self.roles.contains(&Role::GlobalAdmin), username: self.user.username.clone(), csrf: self.session.csrf_token.clone() }
    }
}

/// What every admin page's header needs.
pub struct Nav {
    pub global: bool,
    pub username: String,
    pub csrf: String,
}

fn forbidden(message: &str) -> PageError {
    ErrorPage { status: StatusCode::FORBIDDEN, title: "Not allowed".into(), message: message.into() }.into()
}

/// Checks the session for an admin route. `Ok(Err(response))` sends the browser elsewhere
/// first: to sign in, to a second factor, or to sign in again after inactivity.
pub fn guard(req: &HttpRequest, state: &AppState, conn: &rusqlite::Connection, need: Need) -> Result<Result<Admin, HttpResponse>, PageError> {
    let now = state.clock.now();
    let back = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/admin").to_string();
    let back = if req.method() == actix_web::http::Method::GET { back } else { "/admin".into() };
    let Some(s) = session::current(req, conn, now)? else {
        let flow = Flow { return_to: Some(back), ..Flow::default() };
        return Ok(Err(flow::start(req, state, conn, &flow, "/login", now)?));
    };
    let user = store::users::by_id(conn, &s.user_id)?.ok_or_else(flow::expired)?;
    let roles = store::directory::roles(conn, &user.id)?;
    if roles.is_empty() {
        return Err(forbidden("Your account is not an administrator."));
    }
    if now - s.last_seen_at > state.config.admin.idle_timeout_secs {
        // Inactive too long: the admin proves themselves again, password and second factor.
        store::sessions::end(conn, &s.id, now)?;
        let flow = Flow { return_to: Some(back), ..Flow::default() };
        let mut res = flow::start(req, state, conn, &flow, "/login", now)?;
        res.add_cookie(&crate::web::cookies::removal(crate::web::cookies::SESSION, state.config.secure_cookies())).expect("cookie");
        return Ok(Err(res));
    }
    if Level::of(&s.amr) < Level::Mfa {
        // Admins always use a second factor; one without any registers one now.
        let mut flow = Flow {
            user_id: Some(user.id.clone()),
            amr: s.amr.clone(),
            required: Level::Mfa,
            return_to: Some(back),
            stepping_up: Some(s.id.clone()),
            ..Flow::default()
        };
        let next = mfa::next_step(conn, &User { mfa_required: true, ..user.clone() }, &mut flow, &crate::policy::Request::of(req), now)?;
        return Ok(Err(flow::start(req, state, conn, &flow, next.path(), now)?));
    }
    if need == Need::Global && !roles.contains(&Role::GlobalAdmin) {
        return Err(forbidden("This part of the console is for global administrators."));
    }
    store::sessions::touch(conn, &s.id, now)?;
    Ok(Ok(Admin { user, session: s, roles }))
}

/// `guard` for a form POST: also parses the body and checks its CSRF token.
pub fn guard_form(req: &HttpRequest, state: &AppState, conn: &rusqlite::Connection, body: &[u8], need: Need) -> Result<Result<(Admin, Params), HttpResponse>, PageError> {
    let params = Params::form(body)?;
    let admin = match guard(req, state, conn, need)? {
        Ok(a) => a,
        Err(res) => return Ok(Err(res)),
    };
    if !constant_time_eq(params.get("csrf").unwrap_or("").as_bytes(), admin.session.csrf_token.as_bytes()) {
        return Err(ErrorPage::bad_request("This form has expired", "The form did not come from this console session. Reload the page and try again.").into());
    }
    Ok(Ok((admin, params)))
}

/// Unwraps a guard's answer inside a handler: the admin, or return the redirect.
#[macro_export]
macro_rules! admin_or_redirect {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(res) => return Ok(res),
        }
    };
}

/// An error message as a sentence for a form: first letter upper-case.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Unix seconds → "YYYY-MM-DD HH:MM UTC".
pub fn when(t: i64) -> String {
    let date = crate::portal::security::date(Some(t));
    let secs = t.rem_euclid(86_400);
    format!("{date} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

#[derive(askama::Template)]
#[template(path = "admin/index.html")]
struct Dashboard {
    nav: Nav,
    apps: usize,
    users: usize,
    groups: usize,
    failures_24h: usize,
}

async fn dashboard(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let admin = admin_or_redirect!(guard(&req, &state, &conn, Need::Apps));
    let now = state.clock.now();
    let filter = store::signins::Filter { result: Some("failure".into()), from: Some(now - 86_400), ..Default::default() };
    let page = Dashboard {
        nav: admin.nav(),
        apps: store::clients::all(&conn)?.len(),
        users: store::directory::users(&conn, None)?.len(),
        groups: store::directory::groups(&conn)?.len(),
        failures_24h: store::signins::search(&conn, &filter, 10_000)?.len(),
    };
    Ok(crate::web::html(StatusCode::OK, &page))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard));
    apps::configure(cfg);
    directory::configure(cfg);
    logs::configure(cfg);
    policies::configure(cfg);
}
