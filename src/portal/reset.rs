//! Self-service password reset: "Forgot password?" on the sign-in page. The person proves
//! themselves with their registered methods — an authenticator code, or a one-time code sent to
//! their e-mail — administrators with two; then chooses a new password (checked like every
//! other). Afterwards every session and refresh token of theirs is revoked, their user risk is
//! remediated, the event is logged and audited, and they are told by e-mail. Every answer is
//! the same whether or not the account exists, and attempts are rate-limited.

use crate::AppState;
use crate::auth::budget::{self, Kind, Subject};
use crate::auth::mfa::check_totp;
use crate::auth::webauthn::{page_error_to_json, passkey, record_use, refuse, relying};
use crate::crypto::{constant_time_eq, random_token, secret_hash};
use crate::i18n::filters;
use crate::store::db::Connection;
use crate::store::{self, protection::Reset, signins::SignIn};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, client_ip, cookies, html, see_other, user_agent};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

const RESET_TTL_SECS: i64 = 900;
const EMAIL_CODE_SECS: i64 = 600;
const MAX_ATTEMPTS: i64 = 5;
/// E-mailed codes per reset, and the wait between two of them.
const EMAILS_PER_RESET: i64 = 3;
const EMAIL_COOLDOWN_SECS: i64 = 60;

fn expired() -> PageError {
    ErrorPage::bad_request("This password reset has expired", "Start again from the sign-in page: choose \"Forgot password?\".").into()
}

#[derive(Template)]
#[template(path = "reset_start.html")]
struct StartPage<'a> {
    csrf: &'a str,
    /// Prefilled (`/reset?username=…`, from "This wasn't me" on My sessions).
    username: &'a str,
    error: Option<&'a str>,
}

/// The form token of the first page: the same random value in an HttpOnly SameSite cookie and in
/// the form (a cross-site form cannot send the cookie).
fn form_token(req: &HttpRequest) -> (String, bool) {
    match cookies::value(req, cookies::FORM) {
        Some(t) => (t, false),
        None => (random_token(), true),
    }
}

pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (token, fresh) = form_token(&req);
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let username = query.get("username").unwrap_or("").chars().take(256).collect::<String>();
    let mut res = html(StatusCode::OK, &StartPage { csrf: &token, username: &username, error: None });
    if fresh {
        res.add_cookie(&cookies::build(cookies::FORM, token, state.config.secure_cookies(), None)).expect("cookie");
    }
    res
}

pub fn begin(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let p = Params::form(&body)?;
    let cookie = cookies::value(req, cookies::FORM).unwrap_or_default();
    if cookie.is_empty() || !constant_time_eq(p.get("csrf").unwrap_or("").as_bytes(), cookie.as_bytes()) {
        return Err(ErrorPage::bad_request("This form has expired", "Reload the page and try again.").into());
    }
    let username = p.get("username").unwrap_or("").trim().to_string();
    if username.is_empty() {
        return Ok(html(StatusCode::OK, &StartPage { csrf: &cookie, username: "", error: Some("Enter your username.") }));
    }
    if username.len() > crate::auth::password_step::MAX_USERNAME {
        return Ok(html(StatusCode::OK, &StartPage { csrf: &cookie, username: "", error: Some("That username is too long.") }));
    }
    let conn = state.pool.get()?;
    let ip = client_ip(req);
    let user = store::users::by_username(&conn, &username)?.filter(|u| !u.disabled);
    let subject = account_subject(user.as_ref().map(|u| u.id.as_str()), &username);
    // Durable budgets per account (or name) and per IP, whatever happened to earlier resets.
    let paused = budget::paused(&conn, subject, Kind::Reset, now)?.max(match &ip {
        Some(ip) => budget::paused(&conn, Subject::Ip(ip), Kind::Reset, now)?,
        None => None,
    });
    if let Some(until) = paused {
        let message = format!("Too many password resets. Try again in {} minutes.", budget::minutes_until(until, now));
        return Ok(html(StatusCode::TOO_MANY_REQUESTS, &StartPage { csrf: &cookie, username: &username, error: Some(&message) }));
    }
    if let Some(ip) = &ip {
        budget::spend(&conn, Subject::Ip(ip), Kind::Reset, now)?;
    }
    if let Some(until) = budget::spend(&conn, subject, Kind::Reset, now)? {
        paused_notice(&state, &conn, user.as_ref(), &username, ip.as_deref(), until, now)?;
    }
    let (browser, new_cookie) = cookies::browser(req, state.config.secure_cookies());
    let reset = Reset {
        id: random_token(),
        browser_hash: secret_hash(&browser),
        csrf_token: random_token(),
        username: username.clone(),
        user_id: user.map(|u| u.id),
        verified: vec![],
        email_code_hash: None,
        email_code_expires: None,
        attempts: 0,
        email_sends: 0,
        email_sent_at: None,
    };
    store::protection::insert_reset(&conn, &reset, ip.as_deref(), now, RESET_TTL_SECS)?;
    let mut res = see_other(&format!("/reset/verify?id={}", reset.id));
    if let Some(c) = new_cookie {
        res.add_cookie(&c).expect("cookie");
    }
    Ok(res)
}

/// The reset a request names, if fresh and started in this browser.
fn load(req: &HttpRequest, conn: &Connection, id: Option<&str>, now: i64) -> Result<Reset, PageError> {
    let r = store::protection::reset(conn, id.ok_or_else(expired)?, now)?.ok_or_else(expired)?;
    if !cookies::same_browser(req, &r.browser_hash) {
        return Err(expired());
    }
    Ok(r)
}

fn load_form(req: &HttpRequest, conn: &Connection, p: &Params, now: i64) -> Result<Reset, PageError> {
    let r = load(req, conn, p.get("id"), now)?;
    if !constant_time_eq(p.get("csrf").unwrap_or("").as_bytes(), r.csrf_token.as_bytes()) {
        return Err(ErrorPage::bad_request("This form has expired", "Start the password reset again.").into());
    }
    Ok(r)
}

/// Who a reset's budgets belong to: the account, or — when there is none — the name typed,
/// counted the same way so that limits reveal nothing.
fn account_subject<'a>(user_id: Option<&'a str>, username: &'a str) -> Subject<'a> {
    match user_id {
        Some(id) => Subject::User(id),
        None => Subject::Name(username),
    }
}

/// A spent budget paused resets for an account: the sign-in log shows it and the person is told
/// by e-mail (someone may be trying to take the account over).
fn paused_notice(
    state: &web::Data<AppState>,
    conn: &Connection,
    user: Option<&store::users::User>,
    username: &str,
    ip: Option<&str>,
    until: i64,
    now: i64,
) -> Result<(), PageError> {
    let minutes = budget::minutes_until(until, now);
    let reason = format!("password reset paused for {minutes} minutes: too many attempts");
    let entry = SignIn { user_id: user.map(|u| u.id.as_str()), username: Some(username), ip, result: "failure", reason: Some(&reason), ..Default::default() };
    store::signins::record(conn, &entry, now)?;
    if let Some((u, to)) = user.and_then(|u| u.email.clone().map(|e| (u, e))) {
        store::mfa::audit(conn, None, Some(&u.id), "password_reset_paused", Some(&reason), now)?;
        let lang = crate::i18n::of_user(conn, &u.id);
        let args = [("username", username), ("issuer", state.config.issuer()), ("minutes", &minutes.to_string())];
        super::send_later(state, to, lang.text("mail.reset_paused.subject").into(), lang.format("mail.reset_paused.body", &args));
    }
    Ok(())
}

/// The account a reset is for, if it exists.
fn account(conn: &Connection, r: &Reset) -> Result<Option<store::users::User>, store::StoreError> {
    match &r.user_id {
        Some(u) => store::users::by_id(conn, u),
        None => Ok(None),
    }
}

/// Records that `method` was proven (once) and saves the reset.
fn passed(conn: &Connection, r: &mut Reset, method: &str) -> Result<(), store::StoreError> {
    if !r.verified.iter().any(|v| v == method) {
        r.verified.push(method.into());
    }
    store::protection::update_reset(conn, r)
}

/// Administrators prove two methods; everyone else one.
fn needed(conn: &Connection, r: &Reset) -> Result<usize, store::StoreError> {
    Ok(match &r.user_id {
        Some(u) if !store::directory::roles(conn, u)?.is_empty() => 2,
        _ => 1,
    })
}

#[derive(Template)]
#[template(path = "reset_verify.html")]
struct VerifyPage<'a> {
    id: &'a str,
    csrf: &'a str,
    username: &'a str,
    /// Shown only once a first method is proven: before that, every account looks the same.
    needed: usize,
    verified: Vec<String>,
    email_sent: bool,
    /// Seconds until another code may be e-mailed (0: now); None: no more for this reset.
    email_wait: Option<i64>,
    message: Option<&'a str>,
    error: Option<&'a str>,
}

fn verify_page(conn: &Connection, r: &Reset, message: Option<&str>, error: Option<&str>, now: i64) -> Result<HttpResponse, PageError> {
    let page = VerifyPage {
        id: &r.id,
        csrf: &r.csrf_token,
        username: &r.username,
        needed: if r.verified.is_empty() { 1 } else { needed(conn, r)? },
        verified: r.verified.clone(),
        email_sent: r.email_code_hash.is_some() || r.email_sends > 0,
        email_wait: (r.email_sends < EMAILS_PER_RESET).then(|| r.email_sent_at.map_or(0, |t| (t + EMAIL_COOLDOWN_SECS - now).max(0))),
        message,
        error,
    };
    Ok(html(if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK }, &page))
}

/// Next page: more verification, or the new password once enough methods are proven.
fn next(conn: &Connection, r: &Reset, message: Option<&str>, now: i64) -> Result<HttpResponse, PageError> {
    if r.verified.len() >= needed(conn, r)? && r.user_id.is_some() {
        return Ok(see_other(&format!("/reset/password?id={}", r.id)));
    }
    verify_page(conn, r, message, None, now)
}

pub fn show_verify(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let now = state.clock.now();
    let r = load(req, &conn, q.get("id"), now)?;
    verify_page(&conn, &r, None, None, now)
}

/// A wrong code: spends the account's budget for that method (shared with sign-in), the
/// account's reset budget and the IP's code budget; after too many the reset ends, and a spent
/// budget pauses the method for the account.
fn wrong(req: &HttpRequest, state: &web::Data<AppState>, conn: &Connection, mut r: Reset, kind: Kind, why: &str, now: i64) -> Result<HttpResponse, PageError> {
    r.attempts += 1;
    let ip = client_ip(req);
    let entry = SignIn {
        user_id: r.user_id.as_deref(),
        username: Some(&r.username),
        ip: ip.as_deref(),
        result: "failure",
        reason: Some(&format!("password reset: {why}")),
        ..Default::default()
    };
    store::signins::record(conn, &entry, now)?;
    let subject = account_subject(r.user_id.as_deref(), &r.username);
    let by_method = budget::spend(conn, subject, kind, now)?;
    let by_reset = budget::spend(conn, subject, Kind::Reset, now)?;
    if let Some(ip) = &ip {
        budget::spend(conn, Subject::Ip(ip), Kind::Code, now)?;
    }
    if let Some(until) = by_method.max(by_reset) {
        let user = account(conn, &r)?;
        paused_notice(state, conn, user.as_ref(), &r.username, ip.as_deref(), until, now)?;
    }
    if r.attempts >= MAX_ATTEMPTS {
        store::protection::delete_reset(conn, &r.id)?;
        return Err(ErrorPage::bad_request("Too many wrong codes", "This password reset has ended. Wait a while and start again.").into());
    }
    store::protection::update_reset(conn, &r)?;
    verify_page(conn, &r, None, Some("That code is not correct."), now)
}

/// Whether codes of `kind` may be tried for this reset now; the page to show if not.
fn codes_refused(req: &HttpRequest, conn: &Connection, r: &Reset, kind: Kind, now: i64) -> Result<Option<HttpResponse>, PageError> {
    let subject = account_subject(r.user_id.as_deref(), &r.username);
    let ip = client_ip(req);
    let paused = budget::paused(conn, subject, kind, now)?.max(budget::paused(conn, subject, Kind::Reset, now)?).max(match &ip {
        Some(ip) => budget::paused(conn, Subject::Ip(ip), Kind::Code, now)?,
        None => None,
    });
    match paused {
        Some(until) => {
            let message = format!("Too many attempts. Try again in {} minutes.", budget::minutes_until(until, now));
            Ok(Some(verify_page(conn, r, None, Some(&message), now)?))
        }
        None => Ok(None),
    }
}

pub fn verify_totp(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let p = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut r = load_form(req, &conn, &p, now)?;
    if let Some(page) = codes_refused(req, &conn, &r, Kind::Totp, now)? {
        return Ok(page);
    }
    let ok = match &account(&conn, &r)? {
        Some(u) => check_totp(&state, &conn, u, p.get("code").unwrap_or(""), now)?.is_ok(),
        None => false,
    };
    if !ok {
        return wrong(req, &state, &conn, r, Kind::Totp, "wrong authenticator code", now);
    }
    passed(&conn, &mut r, "authenticator app")?;
    next(&conn, &r, None, now)
}

/// POST /reset/email: sends a one-time code to the account's address, if it has one. The page
/// says the same either way.
pub fn send_email(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let p = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut r = load_form(req, &conn, &p, now)?;
    // No mail bombing: a few codes per reset, a pause between two, and a daily budget per
    // account (or name, so the answers are the same for accounts that do not exist).
    if r.email_sends >= EMAILS_PER_RESET {
        return verify_page(&conn, &r, None, Some("No more codes can be sent for this reset. Use the last code you received, or start again later."), now);
    }
    if let Some(wait) = r.email_sent_at.map(|t| t + EMAIL_COOLDOWN_SECS - now).filter(|w| *w > 0) {
        return verify_page(&conn, &r, None, Some(&format!("A code was just sent. You can ask for another in {wait} seconds.")), now);
    }
    let subject = account_subject(r.user_id.as_deref(), &r.username);
    if let Some(until) = budget::paused(&conn, subject, Kind::EmailSend, now)? {
        let message = format!("Too many codes were sent today. Try again in {} minutes.", budget::minutes_until(until, now));
        return verify_page(&conn, &r, None, Some(&message), now);
    }
    budget::spend(&conn, subject, Kind::EmailSend, now)?;
    let user = account(&conn, &r)?;
    let code = crate::crypto::random_digits(6);
    r.email_sends += 1;
    r.email_sent_at = Some(now);
    r.email_code_hash = Some(secret_hash(&code));
    r.email_code_expires = Some(now + EMAIL_CODE_SECS);
    store::protection::update_reset(&conn, &r)?;
    if let Some(to) = user.and_then(|u| u.email) {
        // In the account owner's language: who asked may not be them.
        let lang = crate::i18n::of_user(&conn, r.user_id.as_deref().unwrap_or_default());
        let args = [("username", r.username.as_str()), ("issuer", state.config.issuer()), ("code", &code)];
        super::send_later(&state, to, lang.text("mail.reset_code.subject").into(), lang.format("mail.reset_code.body", &args));
    }
    verify_page(&conn, &r, Some("If the account has an e-mail address, a code is on its way. It works for 10 minutes."), None, now)
}

pub fn verify_email(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let p = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut r = load_form(req, &conn, &p, now)?;
    if let Some(page) = codes_refused(req, &conn, &r, Kind::EmailCode, now)? {
        return Ok(page);
    }
    let code: String = p.get("code").unwrap_or("").chars().filter(|c| c.is_ascii_digit()).collect();
    let ok = r.user_id.is_some()
        && r.email_code_expires.is_some_and(|t| t > now)
        && r.email_code_hash.as_deref().is_some_and(|h| constant_time_eq(h.as_bytes(), secret_hash(&code).as_bytes()));
    if !ok {
        return wrong(req, &state, &conn, r, Kind::EmailCode, "wrong e-mail code", now);
    }
    r.email_code_hash = None;
    passed(&conn, &mut r, "e-mail")?;
    next(&conn, &r, None, now)
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct PasswordPage<'a> {
    id: &'a str,
    csrf: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

fn verified_enough(conn: &Connection, r: &Reset) -> Result<bool, PageError> {
    Ok(r.user_id.is_some() && r.verified.len() >= needed(conn, r)?)
}

pub fn show_password(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let q = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let r = load(req, &conn, q.get("id"), state.clock.now())?;
    if !verified_enough(&conn, &r)? {
        return Ok(see_other(&format!("/reset/verify?id={}", r.id)));
    }
    Ok(html(StatusCode::OK, &PasswordPage { id: &r.id, csrf: &r.csrf_token, username: &r.username, error: None }))
}

#[derive(Template)]
#[template(path = "reset_done.html")]
struct DonePage;

pub fn set_password(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let p = Params::form(&body)?;
    let mut conn = store::Lease::get(&state.pool)?;
    let r = load_form(req, &conn, &p, now)?;
    if !verified_enough(&conn, &r)? {
        return Ok(see_other(&format!("/reset/verify?id={}", r.id)));
    }
    let user_id = r.user_id.clone().expect("verified resets have a user");
    let new = p.get("new_password").unwrap_or("").to_string();
    let refuse = |e: &str| Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &PasswordPage { id: &r.id, csrf: &r.csrf_token, username: &r.username, error: Some(e) }));
    if let Err(e) = state.protection.check_new(&new) {
        return refuse(&e.to_string());
    }
    if p.get("confirm_password") != Some(new.as_str()) {
        return refuse("The two passwords do not match.");
    }
    let stored = store::users::by_id(&conn, &user_id)?.map(|u| u.password_hash);
    // Two hashes: the connection goes back to the pool meanwhile.
    let (same, hash) = conn
        .without(|| state.passwords.run(move |h, mem| (h.verify_with(&new, stored.as_deref(), mem), h.hash_with(&new, mem))))?
        .map_err(crate::auth::login::internal)?;
    if same {
        return refuse("Choose a password different from your current one.");
    }
    let (ip, ua) = (client_ip(req), user_agent(req));
    let methods = r.verified.join(" + ");
    let remediates = r.verified.iter().any(|m| m != "e-mail");
    store::transaction(&mut conn, |tx| -> Result<(), store::StoreError> {
        // A reset proven by an e-mailed code alone does not clear user risk: the address may be
        // what an attacker changed. An authenticator or a security key does.
        store::users::set_password(tx, &user_id, &hash, now, remediates)?;
        store::protection::end_everything(tx, &user_id, now)?;
        store::protection::delete_reset(tx, &r.id)?;
        store::mfa::audit(tx, Some(&user_id), Some(&user_id), "password_reset", Some(&format!("self-service, verified by {methods}")), now)?;
        let entry = SignIn {
            user_id: Some(&user_id),
            username: Some(&r.username),
            ip: ip.as_deref(),
            user_agent: ua.as_deref(),
            result: "success",
            reason: Some("self-service password reset"),
            ..Default::default()
        };
        store::signins::record(tx, &entry, now).map(drop)
    })?;
    if let Some(to) = store::users::by_id(&conn, &user_id)?.and_then(|u| u.email) {
        let lang = crate::i18n::of_user(&conn, &user_id);
        let args = [("username", r.username.as_str()), ("issuer", state.config.issuer())];
        super::send_later(&state, to, lang.text("mail.reset_done.subject").into(), lang.format("mail.reset_done.body", &args));
    }
    tracing::info!(user = %user_id, "password reset");
    let mut res = html(StatusCode::OK, &DonePage);
    res.add_cookie(&cookies::removal(cookies::SESSION, state.config.secure_cookies())).expect("cookie");
    Ok(res)
}

#[derive(serde::Deserialize)]
pub struct KeyStart {
    request: String,
    csrf: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyCeremony {
    reset: String,
    /// None when the account does not exist or has no key: the ceremony can only fail.
    state: Option<webauthn_rs::prelude::PasskeyAuthentication>,
}

/// The request options a browser gets, in one fixed shape whether or not the account exists:
/// its keys' ids, or (no such account, or no key) ids made up from the username, the same ones
/// every time (webauthn-rs's fake-credential generator), so the answer does not reveal accounts.
fn uniform_options(challenge: &serde_json::Value, rp_id: &str, credential_ids: Vec<String>) -> serde_json::Value {
    let allow: Vec<serde_json::Value> = credential_ids.into_iter().map(|id| serde_json::json!({ "type": "public-key", "id": id })).collect();
    serde_json::json!({ "publicKey": {
        "challenge": challenge, "timeout": 300000, "rpId": rp_id, "userVerification": "required", "allowCredentials": allow,
    }})
}

/// POST /webauthn/reset/start: a security key or passkey as a reset method.
pub fn key_start(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    crate::auth::webauthn::json_step(req, state, &body, key_start_json)
}

fn key_start_json(req: &HttpRequest, state: web::Data<AppState>, body: KeyStart) -> HttpResponse {
    let now = state.clock.now();
    let outcome = (|| -> Result<HttpResponse, PageError> {
        let conn = state.pool.get()?;
        let r = load(req, &conn, Some(&body.request), now)?;
        if !constant_time_eq(body.csrf.as_bytes(), r.csrf_token.as_bytes()) {
            return Ok(refuse(StatusCode::BAD_REQUEST, "This page has expired. Start the reset again."));
        }
        let webauthn = relying(&state)?;
        let keys: Vec<webauthn_rs::prelude::Passkey> = match &r.user_id {
            Some(u) => store::mfa::credentials(&conn, u)?.iter().filter_map(passkey).collect(),
            None => vec![],
        };
        let internal = |e: webauthn_rs::prelude::WebauthnError| crate::web::InternalError::Other(e.to_string());
        let (options, ceremony) = if keys.is_empty() {
            let (o, _) = webauthn.start_discoverable_authentication().map_err(internal)?;
            let fake = webauthn_rs::fake::WebauthnFakeCredentialGenerator::<webauthn_rs::fake::FakePasskeyDistribution>::new(&state.fake_key)
                .and_then(|g| g.generate(r.username.to_lowercase().as_bytes()))
                .map_err(internal)?;
            let ids = fake.iter().map(|id| crate::crypto::b64url(id.as_ref())).collect();
            let o = serde_json::to_value(&o).expect("options serialise");
            (
                uniform_options(&o["publicKey"]["challenge"], o["publicKey"]["rpId"].as_str().unwrap_or_default(), ids),
                KeyCeremony { reset: r.id.clone(), state: None },
            )
        } else {
            let (o, s) = webauthn.start_passkey_authentication(&keys).map_err(internal)?;
            let o = serde_json::to_value(&o).expect("options serialise");
            let ids = keys.iter().map(|k| crate::crypto::b64url(k.cred_id().as_ref())).collect();
            (
                uniform_options(&o["publicKey"]["challenge"], o["publicKey"]["rpId"].as_str().unwrap_or_default(), ids),
                KeyCeremony { reset: r.id.clone(), state: Some(s) },
            )
        };
        let id = crate::auth::mfa::new_id();
        store::mfa::put_ceremony(&conn, &id, r.user_id.as_deref(), "reset", &serde_json::to_string(&ceremony).expect("serialises"), now + 300)?;
        Ok(HttpResponse::Ok().json(serde_json::json!({ "ceremony": id, "options": options })))
    })();
    outcome.unwrap_or_else(page_error_to_json)
}

#[derive(serde::Deserialize)]
pub struct KeyFinish {
    ceremony: String,
    credential: webauthn_rs::prelude::PublicKeyCredential,
}

pub fn key_finish(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    crate::auth::webauthn::json_step(req, state, &body, key_finish_json)
}

fn key_finish_json(req: &HttpRequest, state: web::Data<AppState>, body: KeyFinish) -> HttpResponse {
    let now = state.clock.now();
    let outcome = (|| -> Result<HttpResponse, PageError> {
        let conn = state.pool.get()?;
        let Some((_, raw)) = store::mfa::take_ceremony(&conn, &body.ceremony, "reset", now)? else {
            return Ok(refuse(StatusCode::BAD_REQUEST, "This attempt has expired. Try again."));
        };
        let c: KeyCeremony = serde_json::from_str(&raw).map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
        let mut r = load(req, &conn, Some(&c.reset), now)?;
        let found = store::mfa::credential_by_credential_id(&conn, &crate::crypto::b64url(body.credential.get_credential_id()))?;
        let verified = match (c.state, state.webauthn.as_ref(), found) {
            (Some(s), Some(w), Some((owner, cred))) if Some(&owner) == r.user_id.as_ref() => match w.finish_passkey_authentication(&body.credential, &s) {
                Ok(result) => {
                    if let Some(mut key) = passkey(&cred) {
                        record_use(&conn, &cred, &mut key, &result, now)?;
                    }
                    true
                }
                Err(_) => false,
            },
            _ => false,
        };
        if !verified {
            r.attempts += 1;
            store::protection::update_reset(&conn, &r)?;
            let entry = SignIn {
                user_id: r.user_id.as_deref(),
                username: Some(&r.username),
                result: "failure",
                reason: Some("password reset: security key not accepted"),
                ..Default::default()
            };
            store::signins::record(&conn, &entry, now)?;
            return Ok(refuse(StatusCode::UNAUTHORIZED, "That key was not accepted."));
        }
        passed(&conn, &mut r, "security key")?;
        let next = if r.verified.len() >= needed(&conn, &r)? { format!("/reset/password?id={}", r.id) } else { format!("/reset/verify?id={}", r.id) };
        Ok(HttpResponse::Ok().json(serde_json::json!({ "redirect": next })))
    })();
    outcome.unwrap_or_else(page_error_to_json)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reset", web::get().to(start))
        .route("/reset", web::post().to(crate::web::offload(begin)))
        .route("/reset/verify", web::get().to(crate::web::offload(show_verify)))
        .route("/reset/totp", web::post().to(crate::web::offload(verify_totp)))
        .route("/reset/email", web::post().to(crate::web::offload(send_email)))
        .route("/reset/email/verify", web::post().to(crate::web::offload(verify_email)))
        .route("/reset/password", web::get().to(crate::web::offload(show_password)))
        .route("/reset/password", web::post().to(crate::web::offload(set_password)))
        .route("/webauthn/reset/start", web::post().to(crate::web::offload(key_start)))
        .route("/webauthn/reset/finish", web::post().to(crate::web::offload(key_finish)));
}
