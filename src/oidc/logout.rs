//! RP-Initiated Logout 1.0. With a valid id_token_hint for the current session, latchkey signs
//! out at once; otherwise it asks the person to confirm (a CSRF-protected form), so another
//! site cannot sign them out. It only ever redirects to a registered post_logout_redirect_uri.

use super::jwt::{self, TYP_ID};
use crate::AppState;
use crate::auth::session;
use crate::crypto::constant_time_eq;
use crate::i18n::filters;
use crate::store;
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, cookies, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage {
    username: Option<String>,
    csrf: String,
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage {
    /// Front-channel logout pages of the apps used in the session, loaded in hidden frames.
    frames: Vec<String>,
    /// Where to go next once they have loaded (a registered post_logout_redirect_uri).
    next: Option<String>,
}

pub(crate) struct Hint {
    pub aud: String,
    pub sub: String,
    pub sid: Option<String>,
}

/// An ID token this provider issued (expired or not), as a hint of who the app expects.
pub(crate) fn read_hint(state: &AppState, token: &str, now: i64) -> Option<Hint> {
    // An expired ID token is still a fine hint (RP-Initiated Logout §2); its signature is not.
    let claims = jwt::verify(&state.keys, token, TYP_ID, now).ok()?;
    if claims["iss"] != state.config.issuer() {
        return None;
    }
    Some(Hint { aud: claims["aud"].as_str()?.to_string(), sub: claims["sub"].as_str()?.to_string(), sid: claims["sid"].as_str().map(str::to_string) })
}

fn handle(req: &HttpRequest, state: web::Data<AppState>, params: Params, from_form: bool) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let current = session::current(req, &conn, now)?;
    let hint = params.get("id_token_hint").and_then(|t| read_hint(&state, t, now));
    let client_id = match (hint.as_ref().map(|h| h.aud.as_str()), params.get("client_id")) {
        (Some(a), Some(b)) if a != b => {
            return Err(ErrorPage::bad_request("Invalid sign-out request", "client_id does not match the id_token_hint.").into());
        }
        (a, b) => a.or(b).map(str::to_string),
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = match &client_id {
                Some(id) => store::clients::by_id(&conn, id)?.is_some_and(|c| c.enabled && c.post_logout_redirect_uris.iter().any(|r| r == uri)),
                None => false,
            };
            if !registered {
                return Err(ErrorPage::bad_request(
                    "Invalid sign-out request",
                    "The application asked to return you to an address it has not registered for sign-out, so latchkey will not send you there.",
                )
                .into());
            }
            Some(uri.to_string())
        }
    };
    let st = params.get("state").map(str::to_string);
    let Some(current) = current else {
        return Ok(done(&state, redirect, st));
    };
    // Silent only for this session's own ID token, or one of this person's issued to an app
    // this session signed in to (a session carried on after a new sign-in keeps its apps): an
    // old ID token of another app, or of another session, gets the confirmation page.
    let hint_matches = match &hint {
        Some(h) if h.sid.as_deref() == Some(current.id.as_str()) => true,
        Some(h) if h.sub == current.user_id => store::logout::used_in(&conn, &current.id, &h.aud)?,
        _ => false,
    };
    let form_confirmed = from_form && constant_time_eq(params.get("csrf").unwrap_or("").as_bytes(), current.csrf_token.as_bytes());
    if !hint_matches && !form_confirmed {
        let page = ConfirmPage {
            username: store::users::by_id(&conn, &current.user_id)?.map(|u| u.username),
            csrf: current.csrf_token.clone(),
            post_logout_redirect_uri: redirect,
            client_id,
            state: st,
        };
        return Ok(html(StatusCode::OK, &page));
    }
    // Front-Channel Logout 1.0 §2: each app used in the session gets its logout page loaded,
    // with `iss` and `sid`, on the page that confirms the sign-out.
    let frames = store::logout::frontchannel_targets(&conn, &current.id)?
        .into_iter()
        .filter_map(|(_, uri)| {
            let mut url = url::Url::parse(&uri).ok()?;
            url.query_pairs_mut().append_pair("iss", state.config.issuer()).append_pair("sid", &current.id);
            Some(url.to_string())
        })
        .collect::<Vec<_>>();
    store::sessions::end(&conn, &current.id, now)?;
    tracing::info!(user = %current.user_id, "signed out");
    Ok(done_with(&state, redirect, st, frames))
}

fn done(state: &AppState, redirect: Option<String>, st: Option<String>) -> HttpResponse {
    done_with(state, redirect, st, vec![])
}

fn done_with(state: &AppState, redirect: Option<String>, st: Option<String>, frames: Vec<String>) -> HttpResponse {
    let next = redirect.map(|uri| {
        let mut url = url::Url::parse(&uri).expect("registered URIs are absolute");
        if let Some(s) = st {
            url.query_pairs_mut().append_pair("state", &s);
        }
        url.to_string()
    });
    let mut res = match (next, frames.is_empty()) {
        (Some(url), true) => see_other(&url),
        (next, true) => html(StatusCode::OK, &SignedOutPage { frames, next }),
        (next, false) => {
            // The frames' origins, and nothing else, may be framed by this page.
            let origins: Vec<String> = frames.iter().filter_map(|f| url::Url::parse(f).ok()).map(|u| u.origin().ascii_serialization()).collect();
            let mut page = html(StatusCode::OK, &SignedOutPage { frames, next });
            let csp = format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src {}; base-uri 'none'; frame-ancestors 'none'",
                origins.join(" ")
            );
            page.headers_mut().insert(actix_web::http::header::CONTENT_SECURITY_POLICY, csp.parse().expect("origins are header-safe"));
            page
        }
    };
    res.add_cookie(&cookies::removal(cookies::SESSION, state.config.secure_cookies())).expect("cookie is valid");
    res
}

pub fn get(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let params = Params::parse(req.query_string().as_bytes()).map_err(|e| ErrorPage::bad_request("Invalid sign-out request", e.to_string()))?;
    handle(req, state, params, false)
}

pub fn post(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let params = Params::parse(&body).map_err(|e| ErrorPage::bad_request("Invalid sign-out request", e.to_string()))?;
    handle(req, state, params, true)
}
