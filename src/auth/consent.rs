//! Consent for third-party apps (OIDC Core §3.1.2.4): the person sees which of their data the
//! app asks for and approves or declines. Approval is stored (and can be withdrawn in My Apps);
//! declining returns `access_denied` to the app.

use super::flow::{self, Stage};
use crate::AppState;
use crate::i18n::filters;
use crate::oidc::authorize;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::store;
use crate::web::params::Params;
use crate::web::{PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// What a scope lets an app see or do, for people.
pub fn describe(scope: &str) -> Option<&'static str> {
    Some(match scope {
        "openid" => "Sign you in with your latchkey account (your user id)",
        "profile" => "Your name and username",
        "email" => "Your e-mail address",
        "groups" => "The groups you belong to",
        "offline_access" => "Stay connected to your account while you are not using the app",
        _ => return None,
    })
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    request_id: &'a str,
    csrf: &'a str,
    app: String,
    asks: Vec<&'static str>,
}

/// GET /consent: what the app asks for.
pub fn show(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let pending = flow::load(req, &conn, query.get("request"), now)?;
    pending.expect(Stage::Consent)?;
    let request = pending.flow.request.as_ref().ok_or_else(flow::expired)?;
    let app = store::clients::by_id(&conn, &request.client_id)?.map(|c| c.name).ok_or_else(flow::expired)?;
    let asks = request.scope.split(' ').filter_map(describe).collect();
    Ok(html(StatusCode::OK, &ConsentPage { request_id: &pending.id, csrf: &pending.csrf, app, asks }))
}

/// POST /consent: approve (stored, then on to the app) or decline (`access_denied`).
pub fn decide(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut pending = flow::load_form(req, &conn, &params, now)?;
    pending.expect(Stage::Consent)?;
    let user_id = pending.user_id()?.to_string();
    let request = pending.flow.request.clone().ok_or_else(flow::expired)?;
    if params.get("decision") != Some("approve") {
        flow::log(req, &conn, &pending, None, "consent declined", None, now)?;
        store::codes::delete_request(&conn, &pending.id)?;
        let error = OAuthError::new(ErrorCode::AccessDenied, "the user declined to share their data with the application");
        return Ok(see_other(&authorize::error_url(state.config.issuer(), &request.redirect_uri, request.state.as_deref(), &error)));
    }
    let scopes: Vec<String> = request.scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    store::consents::grant(&conn, &user_id, &request.client_id, &scopes, now)?;
    store::mfa::audit(&conn, Some(&user_id), Some(&user_id), "consent_granted", Some(&format!("app {}: {}", request.client_id, request.scope)), now)?;
    pending.flow.consented = true;
    flow::proceed(req, &state, &conn, &mut pending, now)
}
