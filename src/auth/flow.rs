//! A sign-in in progress. It lives server-side (the `auth_requests` row), bound to the browser
//! that started it (`lk_browser` cookie) and to its forms (CSRF token), and records who has
//! proven which factor so far. After every step it asks the gate what comes next; only when
//! the gate says Issue does it become an SSO session — a half-authenticated person, or one who
//! still has to change their password, never holds a session.

use crate::AppState;
use crate::crypto::{constant_time_eq, random_token, secret_hash};
use crate::gate::{self, Ask, ConsentAsk, Outcome, Refusal, Target, Verdict};
use crate::i18n::filters;
use crate::oidc::authorize::{self, AuthRequest};
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::policy::Request;
use crate::policy::model::Risk;
use crate::store::db::Connection;
use crate::store::{self, StoreError, codes::PendingRequest, sessions::Session, signins::SignIn};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, client_ip, cookies, html, see_other, user_agent};
use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

pub use crate::gate::level::{ACR_MFA, ACR_PASSWORD, ACR_PHISHING_RESISTANT, Level};

/// Merges newly proven methods into `amr`, keeping RFC 8176 order and adding `mfa` when two
/// different kinds of factor have been shown.
pub fn merge_amr(amr: &[String], added: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = amr.to_vec();
    for a in added {
        if !out.iter().any(|x| x == a) {
            out.push(a.to_string());
        }
    }
    let has = |m: &str| out.iter().any(|a| a == m);
    let factors = [has("pwd"), has("otp"), has("hwk") || has("swk")].iter().filter(|x| **x).count();
    if (factors >= 2 || has("user") && (has("hwk") || has("swk"))) && !has("mfa") {
        out.push("mfa".into());
    }
    out
}

/// Which page a sign-in is on; each form checks it, so no page can be skipped or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Stage {
    #[default]
    Password,
    SecondFactor,
    Register,
    ChangePassword,
    /// A third-party app's request, waiting for the person's approval.
    Consent,
    /// A first method was just registered: recovery codes are offered before going on.
    RecoveryCodes,
}

/// A pending sign-in is parked for every anonymous GET: its row stays small because what is
/// empty or default is left out (`#[serde(default)]` reads it back).
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Flow {
    /// The application's request, when signing in for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<AuthRequest>,
    /// Signing in to the admin console (else, without a request, to the portal).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub console: bool,
    /// Who has proven a first factor (or is stepping up an existing session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// What they have proven so far in this flow (and in the session being stepped up).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The strength the current step asks for (second-factor and registration pages).
    #[serde(skip_serializing_if = "is_default")]
    pub required: Level,
    /// The strength the app asked for with `acr_values`; the gate checks it before issuing.
    #[serde(skip_serializing_if = "is_default")]
    pub acr: Level,
    #[serde(skip_serializing_if = "is_default")]
    pub stage: Stage,
    /// Where to go afterwards when not an application (e.g. the Security info page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// The session being stepped up, ended when the stronger one starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stepping_up: Option<String>,
    /// A password change from a signed-in session: that session stays, every other one ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_session: Option<String>,
    /// Security defaults' grace: registration may be skipped for this many more days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skippable_days: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub registration_skipped: bool,
    /// The password was changed in this flow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub password_changed: bool,
    /// When the current password was last proven (this flow, or the session it continues).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_at: Option<i64>,
    /// The highest sign-in risk seen in this flow and the session it continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in_risk: Option<Risk>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub risk_reasons: Vec<String>,
    /// Recovery codes are to be offered (a first method was registered in this flow).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub offer_recovery: bool,
    /// They have been shown (once).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub recovery_shown: bool,
    /// The person approved what the app asked for, in this flow.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub consented: bool,
    /// When the password proven in this flow was set: if it changes meanwhile (a reset, an
    /// admin), the flow is over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_version: Option<i64>,
    /// When a factor was last proven: in this flow, or for the session it continues. A flow
    /// that proves nothing (a consent, a password change from a session) does not make the
    /// session's sign-in newer: not for sign-in frequency, `max_age`, the ID token's
    /// `auth_time`, nor Security info's "in the last 10 minutes".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The lifetime of the session this flow continues, kept by the session it completes into
    /// unless a factor is proven meanwhile (then the session starts afresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carried: Option<store::sessions::Lifetime>,
}

impl Flow {
    pub fn target(&self) -> Target {
        match (&self.request, self.console) {
            (Some(r), _) => Target::App(r.client_id.clone()),
            (None, true) => Target::Console,
            (None, false) => Target::Portal,
        }
    }

    /// A flow that continues `session` (a step-up, a registration, consent, a password change):
    /// with its methods, sign-in time and risk, and over if the password changes meanwhile.
    pub fn continuing(conn: &Connection, session: &Session) -> Result<Self, StoreError> {
        let (risk, reasons) = crate::auth::access::session_risk(conn, session)?;
        Ok(Flow {
            user_id: Some(session.user_id.clone()),
            amr: session.amr.clone(),
            stepping_up: Some(session.id.clone()),
            auth_time: Some(session.auth_time),
            // Holding a session is not knowing the password: a change from it asks for the
            // current one (a stolen cookie alone cannot set a new password).
            password_at: None,
            password_version: Some(store::policies::password_changed_at(conn, &session.user_id)?.unwrap_or(0)),
            sign_in_risk: Some(risk),
            risk_reasons: reasons,
            carried: Some(store::sessions::Lifetime::of(session)),
            ..Flow::default()
        })
    }

    /// A second factor proven in the last `gate::FRESH_SECS`, in this flow or at the sign-in of
    /// the session it continues (a method inherited from an older sign-in does not count).
    pub fn second_factor_fresh(&self, now: i64) -> bool {
        gate::second_factor_fresh(&self.amr, self.auth_time, now)
    }

    /// A second factor proven in this flow, lately: not one the session it continues carried
    /// (a copied cookie passing through a consent proves nothing about its network).
    pub fn proved_here(&self, now: i64) -> bool {
        self.carried.is_none() && self.second_factor_fresh(now)
    }

    /// `factors` were proven just now.
    pub fn proved(&mut self, factors: &[&str], now: i64) {
        self.amr = merge_amr(&self.amr, factors);
        self.auth_time = Some(now);
        self.carried = None;
    }

    /// Adds what the detectors found; a flow's risk never goes down.
    pub fn raise_risk(&mut self, risk: Option<Risk>, reasons: &[String]) {
        self.sign_in_risk = self.sign_in_risk.max(risk);
        for r in reasons {
            if !self.risk_reasons.contains(r) {
                self.risk_reasons.push(r.clone());
            }
        }
    }

    pub fn ask<'a>(&'a self, user_id: &'a str, request: &'a Request, now: i64) -> Ask<'a> {
        Ask {
            acr_asked: self.acr,
            auth_time: Some(self.auth_time.unwrap_or(now)),
            sign_in_risk: self.sign_in_risk,
            risk_reasons: &self.risk_reasons,
            password_changed: self.password_changed,
            registration_skipped: self.registration_skipped,
            consent: self.request.as_ref().map(|r| ConsentAsk { scope: &r.scope, prompt: r.prompt.iter().any(|p| p == "consent"), given: self.consented }),
            ..Ask::interactive(self.target(), user_id, request, &self.amr)
        }
    }
}

/// A loaded pending sign-in.
pub struct Pending {
    pub id: String,
    pub csrf: String,
    pub flow: Flow,
}

impl Pending {
    pub fn save(&self, conn: &Connection) -> Result<(), StoreError> {
        store::codes::update_request(conn, &self.id, &serde_json::to_string(&self.flow).expect("flow serialises"))
    }

    pub fn user_id(&self) -> Result<&str, ErrorPage> {
        self.flow.user_id.as_deref().ok_or_else(expired)
    }

    pub fn client_id(&self) -> Option<&str> {
        self.flow.request.as_ref().map(|r| r.client_id.as_str())
    }

    /// The flow must be on `stage`: a form of another page cannot move it on.
    pub fn expect(&self, stage: Stage) -> Result<(), ErrorPage> {
        if self.flow.stage == stage { Ok(()) } else { Err(expired()) }
    }
}

pub fn expired() -> ErrorPage {
    ErrorPage::bad_request("This sign-in page has expired", "Go back to the application and start signing in again.")
}

/// Parks `flow` server-side, bound to this browser; returns it and the browser cookie to set.
pub fn create(req: &HttpRequest, state: &AppState, conn: &Connection, flow: &Flow, now: i64) -> Result<(Pending, Option<Cookie<'static>>), StoreError> {
    let (browser, new_cookie) = cookies::browser(req, state.config.secure_cookies());
    let id = random_token();
    let pending =
        PendingRequest { browser_hash: secret_hash(&browser), csrf_token: random_token(), params: serde_json::to_string(flow).expect("flow serialises") };
    // Each anonymous GET parks a row: one client may hold only so many open at once.
    let client = client_ip(req).map(|ip| crate::auth::protection::client_key(&ip)).unwrap_or_default();
    let (cap, ttl) = (state.config.session.max_pending_per_ip, state.config.session.login_request_ttl_secs);
    store::codes::insert_request(conn, &id, &pending, &client, cap, now, ttl)?;
    Ok((Pending { id, csrf: pending.csrf_token, flow: flow.clone() }, new_cookie))
}

/// Parks `flow` server-side and sends the browser to `path?request=…`.
pub fn start(req: &HttpRequest, state: &AppState, conn: &Connection, flow: &Flow, path: &str, now: i64) -> Result<HttpResponse, StoreError> {
    let (pending, cookie) = create(req, state, conn, flow, now)?;
    Ok(with_cookie(see_other(&format!("{path}?request={}", pending.id)), cookie))
}

fn with_cookie(mut res: HttpResponse, cookie: Option<Cookie<'static>>) -> HttpResponse {
    if let Some(c) = cookie {
        res.add_cookie(&c).expect("cookie is valid");
    }
    res
}

/// The pending sign-in named by `id`, if it exists, is fresh and belongs to this browser.
pub fn load(req: &HttpRequest, conn: &Connection, id: Option<&str>, now: i64) -> Result<Pending, PageError> {
    let id = id.ok_or_else(expired)?;
    let row = store::codes::request(conn, id, now)?.ok_or_else(expired)?;
    if !cookies::same_browser(req, &row.browser_hash) {
        return Err(expired().into());
    }
    let flow: Flow = serde_json::from_str(&row.params).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // A password changed since the flow proved (or continued from) the old one ends it, at
    // every step: a flow parked with a copied cookie dies with the password change.
    if let (Some(version), Some(user)) = (flow.password_version, &flow.user_id)
        && version != store::policies::password_changed_at(conn, user)?.unwrap_or(0)
    {
        return Err(expired().into());
    }
    // Methods without the time they were proven: a flow parked by an earlier version, which
    // kept neither; it starts again rather than count them as proven just now.
    if !flow.amr.is_empty() && flow.auth_time.is_none() {
        return Err(expired().into());
    }
    crate::i18n::request::in_sign_in(id, flow.request.as_ref().map_or(&[], |r| &r.ui_locales));
    Ok(Pending { id: id.to_string(), csrf: row.csrf_token, flow })
}

pub fn check_csrf(pending: &Pending, sent: Option<&str>) -> Result<(), ErrorPage> {
    if constant_time_eq(sent.unwrap_or("").as_bytes(), pending.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(ErrorPage::bad_request("This form has expired", "The form was not submitted from this sign-in page. Go back to the application and sign in again."))
    }
}

/// Loads the pending sign-in a form names and checks the form's CSRF token.
pub fn load_form(req: &HttpRequest, conn: &Connection, params: &Params, now: i64) -> Result<Pending, PageError> {
    let pending = load(req, conn, params.get("request"), now)?;
    check_csrf(&pending, params.get("csrf"))?;
    Ok(pending)
}

/// A log row for an attempt the gate never saw (unknown user, wrong password or code), with
/// what identity protection found; returns its id.
pub fn log(
    req: &HttpRequest,
    conn: &Connection,
    pending: &Pending,
    username: Option<&str>,
    reason: &str,
    failure: Option<&str>,
    now: i64,
) -> Result<i64, StoreError> {
    let (ip, ua) = (client_ip(req), user_agent(req));
    let target = pending.flow.target();
    let reason = match pending.flow.risk_reasons.is_empty() {
        true => reason.to_string(),
        false => format!("{reason}; risk: {}", pending.flow.risk_reasons.join("; ")),
    };
    let entry = SignIn {
        user_id: pending.flow.user_id.as_deref(),
        username,
        client_id: Some(target.app_id()),
        ip: ip.as_deref(),
        user_agent: ua.as_deref(),
        result: "failure",
        reason: Some(&reason),
        methods: None,
        failure,
    };
    gate::log_plain(conn, &entry, now)
}

/// Asks the gate about this flow now and does what it says: the next page, a refusal, or —
/// when everything is done — the session and the code or page it was for.
pub fn proceed(req: &HttpRequest, state: &AppState, conn: &Connection, pending: &mut Pending, now: i64) -> Result<HttpResponse, PageError> {
    let user_id = pending.user_id()?.to_string();
    // A flow started from a session that has since ended, or with a password that has since
    // changed, goes no further.
    if let Some(session) = &pending.flow.stepping_up
        && !store::sessions::is_live_session_of(conn, session, &user_id, now)?
    {
        return Err(expired().into());
    }
    if let Some(version) = pending.flow.password_version
        && version != store::policies::password_changed_at(conn, &user_id)?.unwrap_or(0)
    {
        return Err(expired().into());
    }
    if pending.flow.offer_recovery {
        pending.flow.stage = Stage::RecoveryCodes;
        pending.save(conn)?;
        return Ok(see_other(&format!("/mfa/recovery?request={}", pending.id)));
    }
    let request = Request::of(req);
    let verdict = gate::check(conn, &pending.flow.ask(&user_id, &request, now), now)?;
    render(req, state, conn, pending, verdict, now)
}

/// Turns a verdict about a parked flow into the answer for the browser.
pub fn render(req: &HttpRequest, state: &AppState, conn: &Connection, pending: &mut Pending, verdict: Verdict, now: i64) -> Result<HttpResponse, PageError> {
    let (stage, path, why) = match &verdict.outcome {
        Outcome::Issue => return complete(req, state, conn, pending, &verdict, now),
        Outcome::Refuse(refusal) => {
            gate::log(conn, &verdict, "failure", Some(&refusal.log_reason()), now)?;
            store::codes::delete_request(conn, &pending.id)?;
            return Ok(refused(state, pending.flow.request.as_ref(), refusal));
        }
        Outcome::Reauthenticate => {
            gate::log(conn, &verdict, "interrupted", Some("sign-in frequency: signing in again"), now)?;
            store::codes::delete_request(conn, &pending.id)?;
            let fresh = Flow {
                request: pending.flow.request.clone(),
                console: pending.flow.console,
                acr: pending.flow.acr,
                return_to: pending.flow.return_to.clone(),
                ..Flow::default()
            };
            return Ok(start(req, state, conn, &fresh, "/login", now)?);
        }
        Outcome::StepUp(level) => {
            pending.flow.required = *level;
            (Stage::SecondFactor, "/login/mfa", "a second factor is required")
        }
        Outcome::Register { keys_only, skippable_days } => {
            pending.flow.required = if *keys_only { Level::PhishingResistant } else { Level::Mfa };
            pending.flow.skippable_days = *skippable_days;
            (Stage::Register, "/mfa/setup", "registration of a sign-in method is required")
        }
        Outcome::ChangePassword => (Stage::ChangePassword, "/password/change", "a password change is required"),
        Outcome::Consent => (Stage::Consent, "/consent", "the app asks for consent"),
    };
    // Each interruption is a row of its own, so sign-ins abandoned here are visible.
    if pending.flow.stage != stage {
        gate::log(conn, &verdict, "interrupted", Some(why), now)?;
    }
    pending.flow.stage = stage;
    pending.save(conn)?;
    Ok(see_other(&format!("{path}?request={}", pending.id)))
}

#[derive(Template)]
#[template(path = "blocked.html")]
struct RefusedPage<'a> {
    title: &'a str,
    message: &'a str,
    correlation: String,
    back: Option<String>,
}

/// A refusal for a person: a generic reason and the correlation id (the request id, on the
/// sign-in log row), never the policy's name; the app's button returns `access_denied` with
/// the same id.
pub fn refused(state: &AppState, request: Option<&AuthRequest>, refusal: &Refusal) -> HttpResponse {
    let correlation = crate::web::observe::correlation();
    let (title, message, to_app) = match refusal {
        Refusal::NotAssigned => (
            "You don't have access to this application",
            "Your account is not assigned to this application. Ask your administrator to give you access.",
            "the user is not assigned to this application",
        ),
        Refusal::RegistrationNotAllowed => (
            "Contact your administrator",
            "A new sign-in method cannot be set up from here. Contact your administrator: they can send you a one-time registration link.",
            "the user could not complete the sign-in",
        ),
        Refusal::Locked => (
            "Too many attempts",
            "Too many sign-in attempts. Wait a while and try again, or contact your administrator.",
            "the user could not complete the sign-in",
        ),
        _ => (
            "Access blocked",
            "Your organisation's access policy does not allow this sign-in. If you think you should have access, contact your administrator.",
            "access blocked by the organisation's policy",
        ),
    };
    let back = request.map(|r| {
        let error = OAuthError::new(ErrorCode::AccessDenied, format!("{to_app} (correlation id {correlation})"));
        authorize::error_url(state.config.issuer(), &r.redirect_uri, r.state.as_deref(), &error)
    });
    html(StatusCode::FORBIDDEN, &RefusedPage { title, message, correlation, back })
}

/// The gate said Issue: start the SSO session (a new id, ending the browser's old one and the
/// one stepped up), log the success, and go on to the app (a code) or `return_to` — in one
/// IMMEDIATE transaction, so concurrent sign-ins wait for each other instead of failing.
fn complete(req: &HttpRequest, state: &AppState, conn: &Connection, pending: &Pending, verdict: &Verdict, now: i64) -> Result<HttpResponse, PageError> {
    let issued = verdict.issued().ok_or_else(expired)?;
    let user_id = pending.user_id()?;
    let tx = crate::store::db::Transaction::new_unchecked(conn, crate::store::db::TransactionBehavior::Immediate)?;
    let (ip, user_agent) = (crate::web::client_ip(req), crate::web::user_agent(req));
    let origin = store::sessions::Origin { ip: ip.as_deref(), user_agent: user_agent.as_deref() };
    let auth_time = pending.flow.auth_time.unwrap_or(now);
    let life = pending.flow.carried.unwrap_or_else(|| store::sessions::Lifetime::fresh(now, state.config.session.ttl_secs));
    let (session, token) = store::sessions::create(&tx, user_id, &pending.flow.amr, origin, auth_time, now, life)?;
    // The browser's old session, and the one stepped up, are replaced: the same person's session
    // carries on as the new one (its apps come along, nobody is signed out of anything); another
    // person's is ended, with its apps told.
    if let Some(old) = crate::auth::session::current(req, &tx, now)? {
        match old.user_id == user_id {
            true => store::sessions::replace(&tx, &old.id, &session.id, now)?,
            false => store::sessions::end(&tx, &old.id, now)?,
        }
    }
    if let Some(old) = &pending.flow.stepping_up {
        store::sessions::replace(&tx, old, &session.id, now)?;
    }
    if let Some(risk) = pending.flow.sign_in_risk {
        store::protection::set_session_risk(&tx, &session.id, risk.as_str(), &pending.flow.risk_reasons)?;
    }
    // This network may now count as one the person has used (not after a password alone,
    // nor a factor the continued session carried, unless it is their first or already known).
    gate::remember_network(&tx, user_id, &Request::of(req), pending.flow.proved_here(now), now)?;
    let refused = pending.flow.request.as_ref().and_then(|r| r.hint_refuses(user_id));
    match &refused {
        Some(e) => gate::log(&tx, verdict, "failure", Some(&e.description), now)?,
        None => gate::log(&tx, verdict, "success", None, now)?,
    };
    store::codes::delete_request(&tx, &pending.id)?;
    let res = match &pending.flow.request {
        Some(r) => authorize::mint_code(state, &tx, r, &session, issued, now)?,
        None => see_other(pending.flow.return_to.as_deref().unwrap_or("/")),
    };
    tx.commit()?;
    tracing::info!(user = %user_id, amr = ?pending.flow.amr, target = %pending.flow.target().app_id(), "signed in");
    let cookie = cookies::build(cookies::SESSION, token, state.config.secure_cookies(), None);
    Ok(with_cookie(res, Some(cookie)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn amr_and_levels_follow_the_factors_shown() {
        assert_eq!(merge_amr(&v(&["pwd"]), &["otp"]), v(&["pwd", "otp", "mfa"]));
        assert_eq!(merge_amr(&v(&["pwd"]), &["hwk"]), v(&["pwd", "hwk", "mfa"]));
        assert_eq!(merge_amr(&[], &["swk", "user"]), v(&["swk", "user", "mfa"]));
        assert_eq!(merge_amr(&[], &["pwd"]), v(&["pwd"]));
        assert_eq!(Level::of(&v(&["pwd"])), Level::Password);
        assert_eq!(Level::of(&v(&["pwd", "otp", "mfa"])), Level::Mfa);
        assert_eq!(Level::of(&v(&["pwd", "hwk", "mfa"])), Level::PhishingResistant);
        assert_eq!(Level::of(&v(&["swk", "user", "mfa"])), Level::PhishingResistant);
        assert_eq!(Level::from_acr(ACR_MFA), Some(Level::Mfa));
        assert_eq!(Level::from_acr("urn:other"), None);
    }
}
