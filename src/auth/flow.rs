//! A sign-in in progress. It lives server-side (the `auth_requests` row), bound to the browser
//! that started it (`lk_browser` cookie) and to its forms (CSRF token), and records who has
//! proven which factor so far. Only when every factor the sign-in needs is done does it become
//! an SSO session — a half-authenticated person never holds a session.

use crate::AppState;
use crate::crypto::{constant_time_eq, random_token, secret_hash};
use crate::oidc::authorize::{self, AuthRequest};
use crate::store::{self, StoreError, codes::PendingRequest, sessions::Session, signins::SignIn};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, client_ip, cookies, see_other, user_agent};
use actix_web::{HttpRequest, HttpResponse};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

/// Authentication strength, advertised as `acr` values (discovery `acr_values_supported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum Level {
    #[default]
    Password,
    Mfa,
    PhishingResistant,
}

pub const ACR_PASSWORD: &str = "urn:latchkey:acr:password";
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";
pub const ACR_PHISHING_RESISTANT: &str = "urn:latchkey:acr:phishing-resistant";

impl Level {
    pub fn acr(self) -> &'static str {
        match self {
            Level::Password => ACR_PASSWORD,
            Level::Mfa => ACR_MFA,
            Level::PhishingResistant => ACR_PHISHING_RESISTANT,
        }
    }

    pub fn from_acr(acr: &str) -> Option<Self> {
        match acr {
            ACR_PASSWORD => Some(Level::Password),
            ACR_MFA => Some(Level::Mfa),
            ACR_PHISHING_RESISTANT => Some(Level::PhishingResistant),
            _ => None,
        }
    }

    /// What a set of RFC 8176 methods adds up to. A WebAuthn key (hwk/swk) that counted as
    /// multi-factor is phishing-resistant: its signature is bound to latchkey's origin.
    pub fn of(amr: &[String]) -> Self {
        let has = |m: &str| amr.iter().any(|a| a == m);
        match (has("mfa"), has("hwk") || has("swk")) {
            (true, true) => Level::PhishingResistant,
            (true, false) => Level::Mfa,
            _ => Level::Password,
        }
    }
}

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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Flow {
    /// The application's request, when signing in for one.
    pub request: Option<AuthRequest>,
    /// Who has proven a first factor (or is stepping up an existing session).
    pub user_id: Option<String>,
    /// What they have proven so far in this flow (and in the session being stepped up).
    pub amr: Vec<String>,
    /// The strength this sign-in must reach before it is done.
    pub required: Level,
    /// Where to go afterwards when not an application (e.g. the Security info page).
    pub return_to: Option<String>,
    /// The session being stepped up, ended when the stronger one starts.
    pub stepping_up: Option<String>,
    /// A conditional-access policy demands a password change before tokens are issued.
    #[serde(default)]
    pub force_password_change: bool,
    /// Security defaults' MFA registration was skipped during the grace period.
    #[serde(default)]
    pub registration_skipped: bool,
    /// What identity protection detected at the password step.
    #[serde(default)]
    pub sign_in_risk: Option<crate::policy::model::Risk>,
    #[serde(default)]
    pub risk_reasons: Vec<String>,
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
}

pub fn expired() -> ErrorPage {
    ErrorPage::bad_request("This sign-in page has expired", "Go back to the application and start signing in again.")
}

/// Parks `flow` server-side and sends the browser to `path?request=…`.
pub fn start(req: &HttpRequest, state: &AppState, conn: &Connection, flow: &Flow, path: &str, now: i64) -> Result<HttpResponse, StoreError> {
    let (browser, new_cookie) = cookies::browser(req, state.config.secure_cookies());
    let id = random_token();
    let pending = PendingRequest {
        browser_hash: secret_hash(&browser),
        csrf_token: random_token(),
        params: serde_json::to_string(flow).expect("flow serialises"),
    };
    store::codes::insert_request(conn, &id, &pending, now, state.config.session.login_request_ttl_secs)?;
    let mut res = see_other(&format!("{path}?request={id}"));
    if let Some(c) = new_cookie {
        res.add_cookie(&c).expect("cookie is valid");
    }
    Ok(res)
}

/// The pending sign-in named by `id`, if it exists, is fresh and belongs to this browser.
pub fn load(req: &HttpRequest, conn: &Connection, id: Option<&str>, now: i64) -> Result<Pending, PageError> {
    let id = id.ok_or_else(expired)?;
    let row = store::codes::request(conn, id, now)?.ok_or_else(expired)?;
    if !cookies::same_browser(req, &row.browser_hash) {
        return Err(expired().into());
    }
    let flow = serde_json::from_str(&row.params).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Pending { id: id.to_string(), csrf: row.csrf_token, flow })
}

pub fn check_csrf(pending: &Pending, sent: Option<&str>) -> Result<(), ErrorPage> {
    if constant_time_eq(sent.unwrap_or("").as_bytes(), pending.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(ErrorPage::bad_request(
            "This form has expired",
            "The form was not submitted from this sign-in page. Go back to the application and sign in again.",
        ))
    }
}

/// Loads the pending sign-in a form names and checks the form's CSRF token.
pub fn load_form(req: &HttpRequest, conn: &Connection, params: &Params, now: i64) -> Result<Pending, PageError> {
    let pending = load(req, conn, params.get("request"), now)?;
    check_csrf(&pending, params.get("csrf"))?;
    Ok(pending)
}

pub fn log(req: &HttpRequest, conn: &Connection, pending: &Pending, username: Option<&str>, outcome: Result<&[String], &str>, now: i64) -> Result<(), StoreError> {
    let (ip, ua) = (client_ip(req), user_agent(req));
    let entry = SignIn {
        user_id: pending.flow.user_id.as_deref(),
        username,
        client_id: pending.client_id(),
        ip: ip.as_deref(),
        user_agent: ua.as_deref(),
        result: if outcome.is_ok() { "success" } else { "failure" },
        reason: outcome.err(),
        methods: outcome.ok(),
    };
    store::signins::record(conn, &entry, now)
}

/// Where a finished sign-in goes: back to the application (through the policy gate in
/// `issue_code`), or to `return_to`.
pub fn finish(req: &HttpRequest, state: &AppState, conn: &Connection, pending: &Pending, s: &Session, now: i64) -> Result<HttpResponse, StoreError> {
    store::codes::delete_request(conn, &pending.id)?;
    match &pending.flow.request {
        Some(r) => authorize::issue_code(req, state, conn, r, s, now),
        None => Ok(see_other(pending.flow.return_to.as_deref().unwrap_or("/"))),
    }
}

/// Every factor is done: start the SSO session (a new id, ending the browser's old one) and
/// continue — to a forced password change, or back to the application.
pub fn complete(req: &HttpRequest, state: &AppState, conn: &Connection, pending: &Pending, now: i64) -> Result<HttpResponse, PageError> {
    // One transaction for the session, its history, the log row and the code: all or nothing,
    // and one commit instead of half a dozen on the sign-in path.
    let tx = conn.unchecked_transaction()?;
    let res = complete_in(req, state, &tx, pending, now)?;
    tx.commit()?;
    Ok(res)
}

fn complete_in(req: &HttpRequest, state: &AppState, conn: &Connection, pending: &Pending, now: i64) -> Result<HttpResponse, PageError> {
    let user_id = pending.user_id()?;
    let user = store::users::by_id(conn, user_id)?.filter(|u| !u.disabled).ok_or_else(expired)?;
    if pending.flow.request.is_none() {
        // Signing in to latchkey itself; app sign-ins are logged by the policy gate with
        // their conditional-access results.
        log(req, conn, pending, Some(&user.username), Ok(&pending.flow.amr), now)?;
    }
    if let Some(old) = crate::auth::session::current(req, conn, now)? {
        store::sessions::end(conn, &old.id, now)?;
    }
    if let Some(old) = &pending.flow.stepping_up {
        store::sessions::end(conn, old, now)?;
    }
    let (session, token) = store::sessions::create(conn, &user.id, &pending.flow.amr, now, state.config.session.ttl_secs)?;
    if let Some(risk) = pending.flow.sign_in_risk {
        store::protection::set_session_risk(conn, &session.id, risk.as_str(), &pending.flow.risk_reasons)?;
    }
    // This network and device platform are now familiar for this user.
    let request = crate::policy::Request::of(req);
    if let Some(ip) = &request.ip {
        let platform = request.user_agent.as_deref().map(crate::policy::model::Platform::from_user_agent).unwrap_or(crate::policy::model::Platform::Other);
        store::protection::record_success(conn, &user.id, &crate::auth::protection::network_of(ip), platform.as_str(), now)?;
    }
    tracing::info!(user = %user.id, amr = ?pending.flow.amr, client = ?pending.client_id(), "signed in");
    let mut res = if user.must_change_password || pending.flow.force_password_change {
        see_other(&format!("/password/change?request={}", pending.id))
    } else {
        finish(req, state, conn, pending, &session, now)?
    };
    let cookie = cookies::build(cookies::SESSION, token, state.config.secure_cookies(), None);
    res.add_cookie(&cookie).expect("cookie is valid");
    Ok(res)
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
