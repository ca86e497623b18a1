//! The admin console at /admin: overview, applications, users, groups, sign-in logs, audit
//! log, keys. Every route takes an `Admin<Global>` or `Admin<Apps>`: the sign-in gate for the
//! console, the inactivity timeout and the role run before the handler; every POST's CSRF token
//! too. Lists use `list` (search, sort, paging); codes are shown to people through `words`.

pub mod actions;
pub mod apps;
pub mod audit;
pub mod directory;
pub mod list;
pub mod logs;
pub mod overview;
pub mod picker;
pub mod policies;
pub mod words;

use crate::AppState;
use crate::auth::access;
use crate::auth::flow::{self, Flow, Level};
use crate::auth::session;
use crate::crypto::constant_time_eq;
use crate::gate::Target;
use crate::store::{self, directory::Role, sessions::Session, users::User};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

/// Which admins may use a route: `Admin<Global>` or `Admin<Apps>`.
pub trait Need: 'static {
    const GLOBAL: bool;
}

/// Global administrators only.
pub struct Global;
/// Global or application administrators.
pub struct Apps;

impl Need for Global {
    const GLOBAL: bool = true;
}

impl Need for Apps {
    const GLOBAL: bool = false;
}

/// A signed-in admin, allowed on this route: the extractor has run the sign-in gate for the
/// console (conditional access, risk, MFA, forced password change), the idle timeout and the
/// role check, and on a POST parsed the form and checked its CSRF token.
pub struct Admin<N: Need = Apps> {
    pub user: User,
    pub session: Session,
    pub roles: Vec<Role>,
    /// The form of a POST (empty for a GET, and for a multipart upload).
    pub form: Params,
    /// A multipart upload's raw body and boundary (the CSRF token then comes in the query).
    pub upload: Option<(web::Bytes, String)>,
    /// The admin's time zone, for dates (see `words`).
    pub zone: words::Zone,
    /// The navigation section of the page asked for.
    section: &'static str,
    need: PhantomData<N>,
}

impl<N: Need> Admin<N> {
    pub fn nav(&self) -> Nav {
        Nav {
            global: self.roles.contains(&Role::GlobalAdmin),
            username: self.user.username.clone(),
            csrf: self.session.csrf_token.clone(),
            section: self.section,
        }
    }
}

/// The navigation section a console path belongs to (marked `aria-current` in the layout).
fn section_of(path: &str) -> &'static str {
    let first = path.strip_prefix("/admin").unwrap_or("").trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "apps" => "apps",
        "users" => "users",
        "groups" => "groups",
        "policies" | "locations" | "whatif" => "ca",
        "signins" => "signins",
        "audit" => "audit",
        "keys" => "keys",
        _ => "overview",
    }
}

/// What every admin page's header needs.
pub struct Nav {
    pub global: bool,
    pub username: String,
    pub csrf: String,
    /// `section_of` the page shown.
    pub section: &'static str,
}

fn forbidden(message: &str) -> PageError {
    ErrorPage { status: StatusCode::FORBIDDEN, title: "Not allowed".into(), message: message.into() }.into()
}

/// A console page, served by `page`: its guard has admitted the administrator.
pub type ConsolePage<N> = fn(Admin<N>, &HttpRequest, web::Data<AppState>, web::Bytes) -> Result<HttpResponse, PageError>;

/// Serves a console page on the blocking threads (`web::offload`), behind the console's guard:
/// an administrator with a live, gated session and, for a POST, the session's CSRF token.
pub fn page<N: Need>(
    page: ConsolePage<N>,
) -> impl Fn(HttpRequest, web::Bytes) -> Pin<Box<dyn Future<Output = Result<HttpResponse, PageError>>>> + Clone + 'static {
    crate::web::offload(move |req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes| {
        // Only a POST carries a form (and its CSRF token): another method's body is ignored.
        let body = if req.method() == Method::POST { body } else { web::Bytes::new() };
        let admission = {
            let conn = state.pool.get()?;
            admit::<N>(req, &state, &conn, &body)?
        };
        match admission {
            Admission::Admitted(admin) => page(*admin, req, state, body),
            Admission::Elsewhere(res) => Ok(res),
        }
    })
}

/// Entra's "don't lock yourself out": whether `policies` block `admin` from the console on this
/// very request (their roles, groups, network and methods), as `conn` sees them — a
/// transaction's own uncommitted changes included.
pub(crate) fn blocked_from_console(
    conn: &crate::store::db::Connection,
    req: &HttpRequest,
    admin: &Admin<impl Need>,
    policies: &[crate::policy::model::Policy],
    now: i64,
) -> Result<bool, store::StoreError> {
    let request = crate::policy::Request::of(req);
    let risk = access::session_risk(conn, &admin.session)?;
    let ask = access::session_ask(&admin.session, Target::Console, &request, &risk);
    Ok(matches!(crate::gate::evaluate(conn, &ask, policies, now)?.decision, crate::policy::evaluate::Decision::Block { .. }))
}

/// For a change written in `tx` and not yet committed (a group membership, a group deleted, a
/// named location added): a refusal, which rolls it back, when with it the policies in force
/// would block the admin making it from the console.
pub(crate) fn refuse_lockout(tx: &crate::store::db::Connection, req: &HttpRequest, admin: &Admin<impl Need>, now: i64) -> Result<(), PageError> {
    if blocked_from_console(tx, req, admin, &crate::policy::in_force(tx)?, now)? {
        return Err(ErrorPage::bad_request(
            "This change would lock you out",
            "With it, a policy that is on would block you from the admin console from where you are now. Change that policy first (exclude yourself, or a break-glass account or group you are in).",
        )
        .into());
    }
    Ok(())
}

/// What the console's guard decided.
enum Admission<N: Need> {
    Admitted(Box<Admin<N>>),
    /// Somewhere else first: to sign in, to a second factor or registration, to change a
    /// password, to sign in again after inactivity, or a refusal page.
    Elsewhere(HttpResponse),
}

/// The console's guard.
fn admit<N: Need>(req: &HttpRequest, state: &AppState, conn: &crate::store::db::Connection, body: &[u8]) -> Result<Admission<N>, PageError> {
    let now = state.clock.now();
    let back = match *req.method() {
        Method::GET => req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/admin").to_string(),
        _ => "/admin".into(),
    };
    let shape = Flow { return_to: Some(back.clone()), console: true, ..Flow::default() };
    let Some(s) = session::current(req, conn, now)? else {
        return Ok(Admission::Elsewhere(flow::start(req, state, conn, &shape, "/login", now)?));
    };
    let roles = store::directory::roles(conn, &s.user_id)?;
    if roles.is_empty() {
        return Err(forbidden("Your account is not an administrator."));
    }
    if now - s.last_seen_at > state.config.admin.idle_timeout_secs {
        // Inactive too long: the admin proves themselves again, password and second factor.
        store::sessions::end(conn, &s.id, now)?;
        let mut res = flow::start(req, state, conn, &shape, "/login", now)?;
        res.add_cookie(&crate::web::cookies::removal(crate::web::cookies::SESSION, state.config.secure_cookies())).expect("cookie");
        return Ok(Admission::Elsewhere(res));
    }
    let verdict = access::check(conn, &s, Target::Console, Level::Password, &crate::policy::Request::of(req), now)?;
    if verdict.issued().is_none() {
        return Ok(Admission::Elsewhere(access::continue_flow(req, state, conn, &s, shape, verdict, now)?));
    }
    if N::GLOBAL && !roles.contains(&Role::GlobalAdmin) {
        return Err(forbidden("This part of the console is for global administrators."));
    }
    // A file upload is multipart: its CSRF token travels in the query string.
    let content_type = req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = crate::web::multipart::boundary(content_type);
    let (form, sent_csrf) = match &boundary {
        Some(_) => (Params::default(), Params::parse(req.query_string().as_bytes()).unwrap_or_default().get("csrf").unwrap_or("").to_string()),
        None => {
            let form = Params::form(body)?;
            let sent = form.get("csrf").unwrap_or("").to_string();
            (form, sent)
        }
    };
    if req.method() == Method::POST && !constant_time_eq(sent_csrf.as_bytes(), s.csrf_token.as_bytes()) {
        return Err(ErrorPage::bad_request("This form has expired", "The form did not come from this console session. Reload the page and try again.").into());
    }
    store::sessions::touch(conn, &s.id, now)?;
    let user = store::users::by_id(conn, &s.user_id)?.ok_or_else(flow::expired)?;
    let upload = boundary.map(|b| (web::Bytes::copy_from_slice(body), b));
    let (zone, section) = (words::Zone::of(req), section_of(req.path()));
    Ok(Admission::Admitted(Box::new(Admin { user, session: s, roles, form, upload, zone, section, need: PhantomData })))
}

/// A refused admin action is the console's "Not allowed" page; a store fault stays a fault.
impl From<actions::ActionError> for PageError {
    fn from(e: actions::ActionError) -> Self {
        match e {
            actions::ActionError::Refused(m) => ErrorPage::bad_request("Not allowed", capitalise(&m)).into(),
            actions::ActionError::Store(s) => s.into(),
        }
    }
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

pub fn configure(cfg: &mut web::ServiceConfig) {
    overview::configure(cfg);
    apps::configure(cfg);
    audit::configure(cfg);
    directory::configure(cfg);
    logs::configure(cfg);
    policies::configure(cfg);
}
