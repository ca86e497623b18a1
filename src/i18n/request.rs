//! The language of one request, chosen once when it arrives (`select`): the person's choice
//! (the `lk_lang` cookie the switch sets, or the one saved on their account), then the
//! browser's `Accept-Language`, then English. An app's `ui_locales` outranks both: the
//! authorization endpoint and every page of the sign-in it started call `prefer`.
//!
//! The choice is request-scoped (a task-local around the handler), so the templates and error
//! pages a handler renders read it without every handler passing it along.

use super::Lang;
use crate::AppState;
use crate::auth::{flow, session};
use crate::store;
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, cookies, see_other};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use std::cell::{Cell, RefCell};

struct Context {
    lang: Cell<Lang>,
    /// Where the switch returns to (see `here`).
    here: RefCell<String>,
    get: bool,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// The request's language; English outside a request (background work, unit tests).
pub fn current() -> Lang {
    CONTEXT.try_with(|c| c.lang.get()).unwrap_or_default()
}

/// Runs `f` in `lang` (an e-mail in its reader's language, a test rendering a page).
pub fn with<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    CONTEXT.sync_scope(Context { lang: Cell::new(lang), here: RefCell::new("/".into()), get: true }, f)
}

/// The request's language choice, carried to the thread that does its database work
/// (`web::db`, `web::offload`).
pub struct Carried {
    lang: Lang,
    here: String,
    get: bool,
}

pub fn carry() -> Carried {
    CONTEXT.try_with(|c| Carried { lang: c.lang.get(), here: c.here.borrow().clone(), get: c.get }).unwrap_or_else(|_| Carried {
        lang: Lang::default(),
        here: "/".into(),
        get: true,
    })
}

/// Runs `f` in a carried choice; returns what it returned and the choice it ended with (an
/// app's `ui_locales` or the sign-in it continues may have changed it), for `adopt`.
pub fn resume<R>(c: Carried, f: impl FnOnce() -> R) -> (R, Carried) {
    CONTEXT.sync_scope(Context { lang: Cell::new(c.lang), here: RefCell::new(c.here), get: c.get }, || {
        let out = f();
        (out, carry())
    })
}

/// Takes over the choice the carried work ended with (an error page is rendered here).
pub fn adopt(c: Carried) {
    let _ = CONTEXT.try_with(|ctx| {
        ctx.lang.set(c.lang);
        *ctx.here.borrow_mut() = c.here;
    });
}

/// OIDC Core §3.1.2.1: the app's `ui_locales`, most preferred first, decide the language of
/// its sign-in, when latchkey has one of them.
pub fn prefer(ui_locales: &[String]) {
    if let Some(lang) = ui_locales.iter().find_map(|t| Lang::from_ui_locales(t)) {
        let _ = CONTEXT.try_with(|c| c.lang.set(lang));
    }
}

/// This request continues the pending sign-in `id` (whose app asked for `ui_locales`).
pub fn in_sign_in(id: &str, ui_locales: &[String]) {
    prefer(ui_locales);
    let _ = CONTEXT.try_with(|c| {
        if !c.get {
            let mut here = c.here.borrow_mut();
            *here = format!("{}?request={id}", here.split('?').next().unwrap_or("/"));
        }
    });
}

/// Where the language switch returns to: this page, when it was a GET; after a POST (which
/// cannot be replayed), its path and the sign-in it continues.
pub fn here() -> String {
    CONTEXT.try_with(|c| c.here.borrow().clone()).unwrap_or_else(|_| "/".into())
}

/// The middleware that chooses the language of every request.
pub async fn select(req: ServiceRequest, next: Next<impl MessageBody>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let (lang, saved) = chosen(req.request()).await;
    let get = req.method() == Method::GET;
    let here = match (get, req.query_string()) {
        (true, q) if !q.is_empty() => format!("{}?{q}", req.path()),
        _ => req.path().to_string(),
    };
    let context = Context { lang: Cell::new(lang), here: RefCell::new(here), get };
    let secure = cookies::secure(req.request());
    let mut res = CONTEXT.scope(context, next.call(req)).await?;
    // The account's choice, found through the session: kept in this browser from now on.
    if let Some(lang) = saved {
        let _ = res.response_mut().add_cookie(&cookie(lang, secure));
    }
    Ok(res)
}

/// The browser's choice; else the account's (then also returned, to keep in a cookie); else
/// `Accept-Language`; else English.
async fn chosen(req: &HttpRequest) -> (Lang, Option<Lang>) {
    if let Some(lang) = cookies::value(req, cookies::LANG).and_then(|v| Lang::parse(&v)) {
        return (lang, None);
    }
    if let Some(lang) = saved(req).await {
        return (lang, Some(lang));
    }
    let accepted = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Lang::from_accept_language);
    (accepted.unwrap_or_default(), None)
}

/// The language saved on the account of the session this browser holds: looked up on the
/// blocking threads (never on the HTTP worker), once per browser, which keeps it in a cookie.
async fn saved(req: &HttpRequest) -> Option<Lang> {
    let token = cookies::value(req, cookies::SESSION)?;
    let state = req.app_data::<web::Data<AppState>>()?.clone();
    let locale = web::block(move || {
        // A connection free at once, or the browser's own choice this time: this runs before
        // every page of a browser without the cookie, and must not wait its turn for the pool.
        let conn = state.pool.try_get()?;
        store::users::locale_by_session(&conn, &token, state.clock.now()).ok()?
    })
    .await
    .ok()??;
    Lang::parse(&locale)
}

const ONE_YEAR_SECS: i64 = 365 * 24 * 3600;

fn cookie(lang: Lang, secure: bool) -> actix_web::cookie::Cookie<'static> {
    cookies::build(cookies::LANG, lang.tag().into(), secure, Some(ONE_YEAR_SECS))
}

/// A path on this server (not `//host`, which a browser reads as another origin).
fn local(path: &str) -> bool {
    // A path on this site only: no scheme-relative `//`, no backslash, and no control character
    // at all (a browser drops tabs and newlines from a Location, turning `/<TAB>/evil` into
    // `//evil`; others cannot be put in a header).
    path.starts_with('/') && !path.starts_with("//") && !path.chars().any(|c| c == '\\' || c.is_control()) && !path[1..].starts_with(['/', '\\'])
}

/// The language switch carries no CSRF token (it is on every page, signed in or not): instead
/// a browser's own word that the form came from another site refuses it — `Sec-Fetch-Site`, or
/// an `Origin` other than latchkey's — so no other site changes a person's language (nor their
/// account's).
fn from_another_site(req: &HttpRequest, issuer: &str) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let cross = header("sec-fetch-site").is_some_and(|v| !matches!(v, "same-origin" | "none"));
    let own = url::Url::parse(issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    cross || header("origin").is_some_and(|o| o != own)
}

/// POST /lang: the switch on every page. Remembered in this browser, saved on the account when
/// signed in; in a sign-in, the person's choice replaces what the app's `ui_locales` asked.
fn switch(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    if from_another_site(req, state.config.issuer()) {
        return Err(ErrorPage::bad_request("This form has expired", "Choose the language on the page itself.").into());
    }
    let params = Params::form(&body)?;
    let lang = params.get("lang").and_then(Lang::parse).ok_or_else(|| ErrorPage::bad_request("Unknown language", "Choose English or 日本語."))?;
    let to = params.get("return_to").filter(|p| local(p)).unwrap_or("/");
    let now = state.clock.now();
    let conn = state.pool.get()?;
    if let Some(s) = session::current(req, &conn, now)? {
        store::users::set_locale(&conn, &s.user_id, lang.tag())?;
    }
    let pending = url::Url::parse("http://latchkey")
        .ok()
        .and_then(|base| base.join(to).ok())
        .and_then(|u| u.query_pairs().find(|(k, _)| k == "request").map(|(_, v)| v.into_owned()));
    if let Some(Ok(mut pending)) = pending.map(|id| flow::load(req, &conn, Some(&id), now))
        && let Some(r) = pending.flow.request.as_mut().filter(|r| !r.ui_locales.is_empty())
    {
        r.ui_locales = vec![lang.tag().to_string()];
        pending.save(&conn)?;
    }
    let mut res = see_other(to);
    res.add_cookie(&cookie(lang, cookies::secure(req))).map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
    Ok(res)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/lang", web::post().to(crate::web::offload(switch)));
}
