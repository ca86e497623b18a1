//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2), GET and POST.
//! Until the client and redirect_uri are proven genuine, errors are pages for the person and
//! never redirects (RFC 6749 §4.1.2.1); after that they go back to the client.

use super::error::{ErrorCode, OAuthError};
use crate::AppState;
use crate::auth::flow::{self, Flow, Level};
use crate::auth::{access, session};
use crate::gate::{self, Issued, Outcome, Target};
use crate::policy;
use crate::store::db::Connection;
use crate::store::{self, StoreError, clients::Client, sessions::Session};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, see_other};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

/// A validated authorization request, kept server-side while the person signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Space-separated, deduplicated, in the order asked.
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The weakest of the `acr_values` latchkey knows: any of them satisfies the app.
    #[serde(default)]
    pub acr: Level,
    /// OIDC Core §3.1.2.1: the languages the app would like its sign-in in, most preferred first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ui_locales: Vec<String>,
    /// The person an `id_token_hint` names (OIDC Core §3.1.2.1): only they get a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hinted_sub: Option<String>,
}

impl AuthRequest {
    fn prompts(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }

    /// OIDC Core §3.1.2.1: the answer for an app whose id_token_hint names someone other than
    /// `user_id`, who signed in instead.
    pub fn hint_refuses(&self, user_id: &str) -> Option<OAuthError> {
        let other = self.hinted_sub.as_ref().is_some_and(|sub| sub != user_id);
        other.then(|| OAuthError::new(ErrorCode::LoginRequired, "the signed-in user is not the one the id_token_hint names"))
    }

    /// Whether an existing session is good enough, or the person must sign in again.
    /// OIDC Core §3.1.2.1: max_age=0 is the same as prompt=login.
    pub fn needs_fresh_login(&self, session: &Session, now: i64) -> bool {
        self.prompts("login") || self.prompts("select_account") || self.max_age.is_some_and(|m| m == 0 || now - session.auth_time > m)
    }
}

pub enum Rejection {
    Page(ErrorPage),
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        if e.unavailable() {
            return Rejection::Page(crate::web::InternalError::Store(e).unavailable_page());
        }
        tracing::error!(error = %e, "store failure in the authorization endpoint");
        Rejection::Page(ErrorPage {
            status: actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong".into(),
            message: "latchkey could not process this sign-in request. Please try again.".into(),
        })
    }
}

const MAX_PARAM_LEN: usize = 2048;

pub fn validate(params: &Params, conn: &Connection) -> Result<(AuthRequest, Client), Rejection> {
    let page = |title: &str, msg: &str| Rejection::Page(ErrorPage::bad_request(title, msg));
    let client_id = params.get("client_id").ok_or_else(|| page("Invalid sign-in request", "The application did not say who it is (client_id is missing)."))?;
    let client = store::cache::client(conn, client_id)?.filter(|c| c.enabled).map(|c| (*c).clone()).ok_or_else(|| {
        page("Unknown application", "This application is not registered with latchkey, or it has been disabled. Contact the application's administrator.")
    })?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| page("Invalid sign-in request", "The application did not say where to return to (redirect_uri is missing)."))?;
    // Exact string match against the registered URIs (RFC 9700 §4.1.3).
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(page(
            "Invalid redirect address",
            "The application asked latchkey to send you to an address it has not registered. For your safety, you were not sent there.",
        ));
    }
    let state = params.get("state").map(str::to_string);
    let fail = |code: ErrorCode, d: &str| Rejection::Redirect { redirect_uri: redirect_uri.to_string(), state: state.clone(), error: OAuthError::new(code, d) };
    if params.get("request").is_some() {
        return Err(fail(ErrorCode::RequestNotSupported, "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(ErrorCode::RequestUriNotSupported, "request_uri is not supported"));
    }
    if params.get("registration").is_some() {
        return Err(fail(ErrorCode::RegistrationNotSupported, "the registration parameter is not supported"));
    }
    if params.value_lengths().any(|len| len > MAX_PARAM_LEN) {
        return Err(fail(ErrorCode::InvalidRequest, "a parameter is too long"));
    }
    match params.get("response_type") {
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is missing")),
        Some("code") => {}
        Some(_) => return Err(fail(ErrorCode::UnsupportedResponseType, "only response_type=code is supported")),
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(ErrorCode::InvalidRequest, "only response_mode=query is supported"));
    }
    let mut scope: Vec<&str> = vec![];
    for s in params.get("scope").unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !super::discovery::SCOPES.contains(&s) {
            return Err(fail(ErrorCode::InvalidScope, &format!("scope {s:?} is not supported")));
        }
        if !scope.contains(&s) {
            scope.push(s);
        }
    }
    if !scope.contains(&"openid") {
        return Err(fail(ErrorCode::InvalidScope, "the openid scope is required"));
    }
    let code_challenge = match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) => {
            // A base64url SHA-256 digest is exactly 43 characters.
            if c.len() != 43 || crate::crypto::b64url_decode(c).is_none() {
                return Err(fail(ErrorCode::InvalidRequest, "code_challenge must be a base64url SHA-256 digest"));
            }
            Some(c.to_string())
        }
        (Some(_), None) | (Some(_), Some(_)) => {
            return Err(fail(ErrorCode::InvalidRequest, "code_challenge_method must be S256 (plain is not allowed)"));
        }
        (None, Some(_)) => return Err(fail(ErrorCode::InvalidRequest, "code_challenge_method given without code_challenge")),
    };
    if client.is_public && code_challenge.is_none() {
        return Err(fail(ErrorCode::InvalidRequest, "public clients must use PKCE (code_challenge with S256)"));
    }
    let prompt: Vec<String> = params.get("prompt").unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    if let Some(p) = prompt.iter().find(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account")) {
        return Err(fail(ErrorCode::InvalidRequest, &format!("prompt value {p:?} is not supported")));
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(fail(ErrorCode::InvalidRequest, "prompt=none cannot be combined with other values"));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(m) => {
            Some(m.parse::<i64>().ok().filter(|m| *m >= 0).ok_or_else(|| fail(ErrorCode::InvalidRequest, "max_age must be a non-negative number of seconds"))?)
        }
    };
    // OIDC Core §3.1.2.1: acr_values are voluntary; unknown ones are ignored.
    let acr = params.get("acr_values").unwrap_or("").split(' ').filter_map(Level::from_acr).min().unwrap_or_default();
    let request = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.join(" "),
        state,
        nonce: params.get("nonce").map(str::to_string),
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        acr,
        ui_locales: params.get("ui_locales").unwrap_or("").split(' ').filter(|s| !s.is_empty()).take(10).map(String::from).collect(),
        hinted_sub: None,
    };
    Ok((request, client))
}

/// The client's redirect URI with `params` appended, plus `state` and `iss` (RFC 9207).
fn client_url(iss: &str, redirect_uri: &str, state: Option<&str>, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(redirect_uri).expect("registered redirect URIs are absolute URLs");
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", iss);
    }
    url.into()
}

/// Where an error goes back to the client (RFC 6749 §4.1.2.1): for a redirect, or for the
/// "return to the application" button of a page that explains the error first.
pub fn error_url(iss: &str, redirect_uri: &str, state: Option<&str>, error: &OAuthError) -> String {
    client_url(iss, redirect_uri, state, &[("error", error.code.as_str()), ("error_description", &error.description)])
}

pub fn error_redirect(iss: &str, redirect_uri: &str, state: Option<&str>, error: &OAuthError) -> HttpResponse {
    see_other(&error_url(iss, redirect_uri, state, error))
}

/// Mints a one-time code for `request` from `session`. Only a gate verdict of Issue (the
/// `Issued` proof) allows it, so no path — password change, registration, reset, step-up —
/// can complete a flow below what the app and policy asked for.
pub fn mint_code(state: &AppState, conn: &Connection, request: &AuthRequest, session: &Session, _issued: Issued, now: i64) -> Result<HttpResponse, StoreError> {
    if let Some(error) = request.hint_refuses(&session.user_id) {
        return Ok(error_redirect(state.config.issuer(), &request.redirect_uri, request.state.as_deref(), &error));
    }
    let code = crate::crypto::random_token();
    let row = store::codes::Code {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        user_id: session.user_id.clone(),
        session_id: session.id.clone(),
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        expires_at: now + state.config.tokens.code_ttl_secs,
        grant_id: None,
    };
    store::codes::insert_code(conn, &crate::crypto::secret_hash(&code), &row, now)?;
    // This app is told (back-channel logout) when the session ends.
    store::logout::record_app(conn, &session.id, &request.client_id)?;
    Ok(see_other(&client_url(state.config.issuer(), &request.redirect_uri, request.state.as_deref(), &[("code", &code)])))
}

fn handle(req: &HttpRequest, state: web::Data<AppState>, params: Params) -> Result<HttpResponse, PageError> {
    // Even the pages that refuse a request are in the language the app asked for.
    crate::i18n::request::prefer(&[params.get("ui_locales").unwrap_or("").to_string()]);
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let (mut request, _client) = match validate(&params, &conn) {
        Ok(v) => v,
        Err(Rejection::Page(p)) => return Err(p.into()),
        Err(Rejection::Redirect { redirect_uri, state: st, error }) => {
            return Ok(error_redirect(state.config.issuer(), &redirect_uri, st.as_deref(), &error));
        }
    };
    let redirect = |code: ErrorCode, d: &str| error_redirect(state.config.issuer(), &request.redirect_uri, request.state.as_deref(), &OAuthError::new(code, d));
    let prompt_none = request.prompt.iter().any(|p| p == "none");
    // OIDC Core §3.1.2.1: an id_token_hint names the person the app expects. Another person's
    // session is not used for it. (The sign-in page is not filled in from it: whoever holds an
    // ID token, expired or another app's, would read the person's username there.)
    if let Some(token) = params.get("id_token_hint") {
        let Some(hint) = crate::oidc::logout::read_hint(&state, token, now) else {
            return Ok(redirect(ErrorCode::InvalidRequest, "id_token_hint is not an ID token issued by this provider"));
        };
        request.hinted_sub = Some(hint.sub);
    }
    let Some(s) = session::current(req, &conn, now)?.filter(|s| !request.needs_fresh_login(s, now) && request.hint_refuses(&s.user_id).is_none()) else {
        if prompt_none {
            return Ok(redirect(ErrorCode::LoginRequired, "the user is not signed in"));
        }
        let flow = Flow { acr: request.acr, request: Some(request), ..Flow::default() };
        return Ok(flow::start(req, &state, &conn, &flow, "/login", now)?);
    };
    // Single sign-on: the gate decides for this app with the session's evidence.
    let consent = gate::ConsentAsk { scope: &request.scope, prompt: request.prompt.iter().any(|p| p == "consent"), given: false };
    let verdict = access::check_for(&conn, &s, Target::App(request.client_id.clone()), request.acr, Some(consent), &policy::Request::of(req), now)?;
    match (&verdict.outcome, verdict.issued()) {
        (_, Some(issued)) => {
            let tx = crate::store::db::Transaction::new_unchecked(&conn, crate::store::db::TransactionBehavior::Immediate)?;
            gate::log(&tx, &verdict, "success", None, now)?;
            let res = mint_code(&state, &tx, &request, &s, issued, now)?;
            tx.commit()?;
            Ok(res)
        }
        (Outcome::Refuse(refusal), _) if prompt_none => {
            gate::log(&conn, &verdict, "failure", Some(&refusal.log_reason()), now)?;
            Ok(redirect(ErrorCode::AccessDenied, &format!("access denied (correlation id {})", crate::web::observe::correlation())))
        }
        (Outcome::Consent, _) if prompt_none => {
            gate::log(&conn, &verdict, "interrupted", Some("prompt=none, but the app needs the user's consent"), now)?;
            Ok(redirect(ErrorCode::ConsentRequired, "the user has not approved what the application asks for"))
        }
        (_, None) if prompt_none => {
            gate::log(&conn, &verdict, "interrupted", Some("prompt=none, but the user must interact"), now)?;
            Ok(redirect(ErrorCode::InteractionRequired, "the user must interact with latchkey to continue"))
        }
        _ => {
            let shape = Flow { acr: request.acr, request: Some(request.clone()), ..Flow::default() };
            Ok(access::continue_flow(req, &state, &conn, &s, shape, verdict, now)?)
        }
    }
}

pub fn get(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let params = Params::parse(req.query_string().as_bytes()).map_err(|e| ErrorPage::bad_request("Invalid sign-in request", e.to_string()))?;
    handle(req, state, params)
}

pub fn post(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let params = Params::parse(&body).map_err(|e| ErrorPage::bad_request("Invalid sign-in request", e.to_string()))?;
    handle(req, state, params)
}
