//! My Apps, the signed-in home page: a tile for every app the person may open, searchable,
//! most recently used first, launched safely — through the app's own sign-in (OIDC Core §4,
//! "Initiating Login from a Third Party") when it registered an `initiate_login_uri`, so no
//! unsolicited token is ever sent — and the consents they gave third-party apps, revocable.

use crate::AppState;
use crate::auth::access::{self, Access};
use crate::auth::flow::Level;
use crate::auth::session;
use crate::crypto::constant_time_eq;
use crate::gate::Target;
use crate::i18n::filters;
use crate::store::{self, clients::Client};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

struct Tile {
    id: String,
    name: String,
    logo: bool,
}

struct ConsentRow {
    client_id: String,
    app: String,
    scopes: Vec<&'static str>,
    granted: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    username: Option<String>,
    csrf: String,
    level: &'static str,
    query: String,
    tiles: Vec<Tile>,
    consents: Vec<ConsentRow>,
}

/// Where a tile goes: the app's login-initiation endpoint with `iss`, `target_link_uri` and
/// `login_hint` (OIDC Core §4), or its launch URL.
pub fn launch_url(issuer: &str, app: &Client, username: &str) -> Option<String> {
    match (&app.initiate_login_uri, &app.launch_url) {
        (Some(init), target) => {
            let mut url = url::Url::parse(init).ok()?;
            let target = target.clone().unwrap_or_else(|| url.origin().ascii_serialization() + "/");
            url.query_pairs_mut().append_pair("iss", issuer).append_pair("target_link_uri", &target).append_pair("login_hint", username);
            Some(url.into())
        }
        (None, Some(launch)) => Some(launch.clone()),
        (None, None) => None,
    }
}

/// GET /: My Apps for a signed-in person (through the gate for the portal), else a welcome.
pub fn home(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    if session::current(req, &conn, now)?.is_none() {
        let page = HomePage { username: None, csrf: String::new(), level: "", query: String::new(), tiles: vec![], consents: vec![] };
        return Ok(html(StatusCode::OK, &page));
    }
    let (s, user) = match access::page(req, &state, &conn, Target::Portal, "/", now)? {
        Access::Granted { session, user } => (session, user),
        Access::Respond(res) => return Ok(res),
    };
    let params = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let query = params.get("q").unwrap_or("").trim().chars().take(100).collect::<String>();
    let needle = query.to_lowercase();
    let mut tiles = vec![];
    for (app, _) in store::clients::my_apps(&conn, &user.id)? {
        if needle.is_empty() || app.name.to_lowercase().contains(&needle) {
            tiles.push(Tile { logo: store::clients::has_logo(&conn, &app.id)?, id: app.id, name: app.name });
        }
    }
    let consents = store::consents::for_user(&conn, &user.id)?
        .into_iter()
        .map(|c| ConsentRow {
            scopes: c.scopes.iter().filter_map(|s| crate::auth::consent::describe(s)).collect(),
            granted: crate::portal::security::date(Some(c.granted_at)),
            client_id: c.client_id,
            app: c.app,
        })
        .collect();
    let page = HomePage {
        username: Some(user.username),
        csrf: s.csrf_token,
        level: match Level::of(&s.amr) {
            Level::Password => "a password",
            Level::Mfa => "multi-factor authentication",
            Level::PhishingResistant => "phishing-resistant multi-factor authentication",
        },
        query,
        tiles,
        consents,
    };
    Ok(html(StatusCode::OK, &page))
}

fn not_yours() -> PageError {
    ErrorPage { status: StatusCode::NOT_FOUND, title: "No such application".into(), message: "It is not one of your applications.".into() }.into()
}

/// GET /apps/{id}/launch: only an app the person may open.
pub fn launch(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let user = match access::page(req, &state, &conn, Target::Portal, "/", now)? {
        Access::Granted { user, .. } => user,
        Access::Respond(res) => return Ok(res),
    };
    let app = store::clients::my_apps(&conn, &user.id)?.into_iter().map(|(a, _)| a).find(|a| a.id == *id).ok_or_else(not_yours)?;
    let to = launch_url(state.config.issuer(), &app, &user.username).ok_or_else(not_yours)?;
    Ok(see_other(&to))
}

/// POST /apps/{id}/consent/revoke: withdraws a consent; the app's tokens for the person end.
pub fn revoke_consent(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let id = crate::web::path_param(req, "id");
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let params = Params::form(&body)?;
    let s = access::form_session(req, &conn, Target::Portal, now)?;
    if !constant_time_eq(params.get("csrf").unwrap_or("").as_bytes(), s.csrf_token.as_bytes()) {
        return Err(ErrorPage::bad_request("This form has expired", "Reload My Apps and try again.").into());
    }
    if !store::consents::revoke(&conn, &s.user_id, &id, now)? {
        return Err(not_yours());
    }
    store::mfa::audit(&conn, Some(&s.user_id), Some(&s.user_id), "consent_revoked", Some(&format!("app {id}")), now)?;
    Ok(see_other("/"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(crate::web::offload(home)))
        .route("/apps/{id}/launch", web::get().to(crate::web::offload(launch)))
        .route("/apps/{id}/consent/revoke", web::post().to(crate::web::offload(revoke_consent)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_starts_the_apps_own_sign_in_when_it_can() {
        let mut app = Client {
            id: "c".into(),
            name: "Wiki".into(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            is_public: false,
            enabled: true,
            logo_url: None,
            launch_url: Some("https://wiki.example.com/start".into()),
            id_token_alg: "RS256".into(),
            assignment_required: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            third_party: false,
            consent_for_everyone: false,
            initiate_login_uri: None,
            visible_in_my_apps: true,
            frontchannel_logout_uri: None,
            frontchannel_logout_session_required: false,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            secret_expires_at: None,
            created_at: 0,
        };
        assert_eq!(launch_url("https://id.example.com", &app, "alice").as_deref(), Some("https://wiki.example.com/start"));
        app.initiate_login_uri = Some("https://wiki.example.com/oidc/login?x=1".into());
        let url = url::Url::parse(&launch_url("https://id.example.com", &app, "alice").unwrap()).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["iss"], "https://id.example.com");
        assert_eq!(q["target_link_uri"], "https://wiki.example.com/start");
        assert_eq!(q["login_hint"], "alice");
        assert_eq!(q["x"], "1");
    }
}
