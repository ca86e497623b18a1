//! Security info: the signed-in person registers and removes their own sign-in methods.
//! With a method registered, every change (a method, recovery codes, the reset address) needs
//! a second factor used in the last ten minutes: a stolen session cookie alone changes nothing.

use crate::AppState;
use crate::auth::access::{self, Access};
use crate::auth::flow::{self, Flow, Level, Stage};
use crate::auth::mfa::{self, Methods};
use crate::crypto::constant_time_eq;
use crate::gate::Target;
use crate::i18n::filters;
use crate::store::db::Connection;
use crate::store::{self, sessions::Session};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html, see_other};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
const PATH: &str = "/security";

/// Whether this session may change sign-in methods (and the reset address): a person with
/// methods only from a session that used one in the last `FRESH_SECS` (a cookie copied from
/// their browser carries an old proof); a person with none only where the gate's registration
/// rule allows it (low risk, and their first sign-in or a network they have used) — so a
/// password alone, from an attacker's network, plants nothing.
pub fn may_change(req: &HttpRequest, conn: &Connection, s: &Session, now: i64) -> Result<bool, store::StoreError> {
    if Methods::load(conn, &s.user_id)?.any() {
        return Ok(crate::gate::second_factor_fresh(&s.amr, Some(s.auth_time), now));
    }
    let request = crate::policy::Request::of(req);
    let risk = access::session_risk(conn, s)?;
    crate::gate::may_register(conn, &access::session_ask(s, Target::Portal, &request, &risk), now)
}

/// `may_change`, or a page saying why not.
pub fn require_mfa_to_change(req: &HttpRequest, conn: &Connection, s: &Session, now: i64) -> Result<(), PageError> {
    if may_change(req, conn, s, now)? {
        return Ok(());
    }
    Err(cannot_change(Methods::load(conn, &s.user_id)?.any()))
}

/// Why a session may not change methods: its person's second factor is needed, or — someone
/// with none, outside the registration rule — only their administrator can help.
fn cannot_change(has_methods: bool) -> PageError {
    let (title, message) = if has_methods {
        ("Confirm it's you", "Sign in with your second factor before changing your sign-in methods.")
    } else {
        (
            "Contact your administrator",
            "A sign-in method can't be set up from here. Contact your administrator: they can send you a one-time registration link.",
        )
    };
    ErrorPage { status: StatusCode::FORBIDDEN, title: title.into(), message: message.into() }.into()
}

/// What changing a method from `s` needs first: nothing (`None`), the person's second factor
/// again (its page, when theirs is not fresh), or, for someone with no method whom the
/// registration rule refuses, a page saying why not.
fn verify_first(req: &HttpRequest, state: &AppState, conn: &Connection, s: &Session, now: i64) -> Result<Option<HttpResponse>, PageError> {
    if may_change(req, conn, s, now)? {
        return Ok(None);
    }
    if Methods::load(conn, &s.user_id)?.any() {
        return Ok(Some(step_up(req, state, conn, s, PATH, now)?));
    }
    Err(cannot_change(false))
}

/// Sends the person through a second factor and back to `back` (Security info, or the
/// password change).
pub(crate) fn step_up(req: &HttpRequest, state: &AppState, conn: &Connection, s: &Session, back: &str, now: i64) -> Result<HttpResponse, PageError> {
    // The step-up keeps the session's risk: stepping up never lowers it.
    let flow = Flow { required: Level::Mfa, return_to: Some(back.into()), stage: Stage::SecondFactor, ..Flow::continuing(conn, s)? };
    Ok(flow::start(req, state, conn, &flow, "/login/mfa", now)?)
}

struct Signed {
    session: Session,
    params: Params,
}

/// The session behind a POST and its form, with the session's CSRF token checked and the
/// change allowed (`may_change`) — or, for someone whose second factor is not fresh, the way
/// to use it now (`Err`: back here afterwards, to post again).
fn signed_form(req: &HttpRequest, state: &AppState, conn: &Connection, body: &[u8], now: i64) -> Result<Result<Signed, HttpResponse>, PageError> {
    let params = Params::form(body)?;
    let session = access::form_session(req, conn, Target::Portal, now)?;
    if !constant_time_eq(params.get("csrf").unwrap_or("").as_bytes(), session.csrf_token.as_bytes()) {
        return Err(ErrorPage::bad_request("This form has expired", "Reload the Security info page and try again.").into());
    }
    if let Some(verify_first) = verify_first(req, state, conn, &session, now)? {
        return Ok(Err(verify_first));
    }
    Ok(Ok(Signed { session, params }))
}

struct KeyRow {
    id: String,
    name: String,
    kind: &'static str,
    added: String,
    last_used: String,
}

pub fn date(t: Option<i64>) -> String {
    // Days since the epoch → a civil date (Howard Hinnant's algorithm), UTC.
    let Some(t) = t else { return "never".into() };
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    username: String,
    csrf: String,
    totp: bool,
    keys: Vec<KeyRow>,
    recovery_left: i64,
    /// False when the session did not use a second factor: changes need one first.
    can_change: bool,
    /// The address password-reset codes go to.
    email: Option<String>,
    /// A new address waiting for its confirmation code.
    pending_email: Option<String>,
}

pub fn show(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let s = match access::page(req, &state, &conn, Target::Portal, PATH, now)? {
        Access::Granted { session, .. } => session,
        Access::Respond(res) => return Ok(res),
    };
    let methods = Methods::load(&conn, &s.user_id)?;
    let can_change = may_change(req, &conn, &s, now)?;
    let user = store::users::by_id(&conn, &s.user_id)?.ok_or_else(flow::expired)?;
    let keys = methods
        .keys
        .iter()
        .map(|k| KeyRow {
            id: k.id.clone(),
            name: k.name.clone(),
            kind: if k.kind == "passkey" { "Passkey" } else { "Security key" },
            added: date(Some(k.created_at)),
            last_used: date(k.last_used_at),
        })
        .collect();
    let page = SecurityPage {
        username: user.username,
        csrf: s.csrf_token,
        totp: methods.totp,
        keys,
        recovery_left: methods.recovery_left,
        can_change,
        pending_email: store::protection::email_confirmation(&conn, &user.id)?.filter(|c| c.expires_at > now).map(|c| c.email),
        email: user.email,
    };
    Ok(html(StatusCode::OK, &page))
}

/// GET /security/verify: use a second factor now, to be allowed to change methods.
pub fn verify(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let s = match access::page(req, &state, &conn, Target::Portal, PATH, now)? {
        Access::Granted { session, .. } => session,
        Access::Respond(res) => return Ok(res),
    };
    step_up(req, &state, &conn, &s, PATH, now)
}

#[derive(Template)]
#[template(path = "security_totp.html")]
struct TotpPage<'a> {
    csrf: &'a str,
    qr: String,
    secret: String,
    error: Option<&'a str>,
}

fn totp_page(state: &AppState, conn: &Connection, s: &Session, error: Option<&str>, now: i64) -> Result<HttpResponse, PageError> {
    let user = store::users::by_id(conn, &s.user_id)?.ok_or_else(flow::expired)?;
    if store::mfa::totp(conn, &user.id)?.is_some_and(|t| t.confirmed) {
        return Ok(see_other(PATH));
    }
    let secret = mfa::enrolment_secret(state, conn, &user.id, &format!("session:{}", s.id), now)?;
    let totp = mfa::totp_for(&secret, &user.username, state.config.issuer()).ok_or_else(|| crate::web::InternalError::Other("bad TOTP secret".into()))?;
    let url = totp.to_url().map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
    let page = TotpPage { csrf: &s.csrf_token, qr: mfa::qr_svg_data_url(&url), secret, error };
    Ok(html(StatusCode::OK, &page))
}

pub fn show_totp(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let s = match access::page(req, &state, &conn, Target::Portal, "/security/totp", now)? {
        Access::Granted { session, .. } => session,
        Access::Respond(res) => return Ok(res),
    };
    if let Some(verify_first) = verify_first(req, &state, &conn, &s, now)? {
        return Ok(verify_first);
    }
    totp_page(&state, &conn, &s, None, now)
}

pub fn confirm_totp(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let f = match signed_form(req, &state, &conn, &body, now)? {
        Ok(f) => f,
        Err(verify_first) => return Ok(verify_first),
    };
    let user = store::users::by_id(&conn, &f.session.user_id)?.ok_or_else(flow::expired)?;
    let ip = crate::web::client_ip(req);
    if let Some(until) = mfa::enrolment_paused(&conn, ip.as_deref(), now)? {
        let message = format!("Too many wrong codes. Try again in {} minutes.", crate::auth::budget::minutes_until(until, now));
        return totp_page(&state, &conn, &f.session, Some(&message), now);
    }
    let binding = format!("session:{}", f.session.id);
    if let Err(why) = mfa::confirm_enrolment(&state, &conn, &user, &binding, f.params.get("code").unwrap_or(""), now)? {
        mfa::enrolment_failed(&conn, ip.as_deref(), now)?;
        tracing::info!(user = %user.id, why, "authenticator registration failed");
        return totp_page(&state, &conn, &f.session, Some("That code is not correct. Check the time on your device and try again."), now);
    }
    store::mfa::audit(&conn, Some(&user.id), Some(&user.id), "mfa_registered", Some("authenticator app"), now)?;
    // A first method: fresh recovery codes now (replacing any made before), so one lost phone
    // does not lock the person out.
    if Methods::load(&conn, &user.id)?.keys.is_empty() {
        let codes = mfa::new_recovery_codes(&conn, &user.id, now)?;
        store::mfa::audit(&conn, Some(&user.id), Some(&user.id), "mfa_registered", Some("recovery codes"), now)?;
        return Ok(html(StatusCode::OK, &RecoveryPage::new(codes, None)));
    }
    Ok(see_other(PATH))
}

pub fn remove_totp(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let f = match signed_form(req, &state, &conn, &body, now)? {
        Ok(f) => f,
        Err(verify_first) => return Ok(verify_first),
    };
    if store::mfa::delete_totp(&conn, &f.session.user_id)? {
        store::mfa::audit(&conn, Some(&f.session.user_id), Some(&f.session.user_id), "mfa_removed", Some("authenticator app"), now)?;
    }
    drop_recovery_codes_without_methods(&conn, &f.session.user_id, now)?;
    Ok(see_other(PATH))
}

pub fn remove_key(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let f = match signed_form(req, &state, &conn, &body, now)? {
        Ok(f) => f,
        Err(verify_first) => return Ok(verify_first),
    };
    let id = f.params.get("id").unwrap_or("");
    if !Methods::load(&conn, &f.session.user_id)?.keys.iter().any(|k| k.id == id) {
        return Err(ErrorPage::bad_request("Unknown key", "That key is not registered to you.").into());
    }
    if let Some(name) = store::mfa::delete_credential(&conn, &f.session.user_id, id)? {
        store::mfa::audit(&conn, Some(&f.session.user_id), Some(&f.session.user_id), "mfa_removed", Some(&name), now)?;
    }
    drop_recovery_codes_without_methods(&conn, &f.session.user_id, now)?;
    Ok(see_other(PATH))
}

/// Recovery codes are a fallback for methods: with none left, they go too (and a first method
/// registered later gets fresh ones).
fn drop_recovery_codes_without_methods(conn: &Connection, user_id: &str, now: i64) -> Result<(), store::StoreError> {
    if !Methods::load(conn, user_id)?.any() {
        store::mfa::replace_recovery_codes(conn, user_id, &[], now)?;
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct RecoveryPage {
    pub codes: Vec<String>,
    /// A text file of the codes, for the download button.
    pub download: String,
    /// During sign-in: the flow's (request id, CSRF token) for "continue".
    pub next: Option<(String, String)>,
}

impl RecoveryPage {
    pub fn new(codes: Vec<String>, next: Option<(String, String)>) -> Self {
        let text = format!("latchkey recovery codes (each works once)\n\n{}\n", codes.join("\n"));
        let download = format!("data:text/plain;base64,{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, text));
        Self { codes, download, next }
    }
}

pub fn new_recovery_codes(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let f = match signed_form(req, &state, &conn, &body, now)? {
        Ok(f) => f,
        Err(verify_first) => return Ok(verify_first),
    };
    if !Methods::load(&conn, &f.session.user_id)?.any() {
        return Err(ErrorPage::bad_request(
            "Register a method first",
            "Recovery codes stand in for your sign-in methods: register an authenticator app or a security key first.",
        )
        .into());
    }
    let codes = mfa::new_recovery_codes(&conn, &f.session.user_id, now)?;
    store::mfa::audit(&conn, Some(&f.session.user_id), Some(&f.session.user_id), "mfa_registered", Some("recovery codes"), now)?;
    Ok(html(StatusCode::OK, &RecoveryPage::new(codes, None)))
}

/// How long, and for how many tries, an e-mail confirmation code works.
const EMAIL_CODE_SECS: i64 = 600;
const EMAIL_CODE_TRIES: i64 = 5;

/// POST /security/email: send a confirmation code to a new password-reset address.
pub fn change_email(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let f = match signed_form(req, &state, &conn, &body, now)? {
        Ok(f) => f,
        Err(verify_first) => return Ok(verify_first),
    };
    let email = f.params.get("email").unwrap_or("").trim().to_string();
    if !crate::auth::users::valid_email(&email) {
        return Err(ErrorPage::bad_request("Invalid e-mail address", format!("{email:?} is not an e-mail address.")).into());
    }
    // No mail bombing from here either: the account's daily budget for e-mailed codes.
    let subject = crate::auth::budget::Subject::User(&f.session.user_id);
    if let Some(until) = crate::auth::budget::paused(&conn, subject, crate::auth::budget::Kind::EmailSend, now)? {
        let message = format!("Too many codes were sent today. Try again in {} minutes.", crate::auth::budget::minutes_until(until, now));
        return Err(ErrorPage { status: StatusCode::TOO_MANY_REQUESTS, title: "Too many codes".into(), message }.into());
    }
    crate::auth::budget::spend(&conn, subject, crate::auth::budget::Kind::EmailSend, now)?;
    let code = crate::crypto::random_digits(6);
    store::protection::put_email_confirmation(&conn, &f.session.user_id, &email, &crate::crypto::secret_hash(&code), now + EMAIL_CODE_SECS)?;
    let lang = crate::i18n::current();
    let (subject, text) = (lang.text("mail.email_confirm.subject"), lang.format("mail.email_confirm.body", &[("code", &code)]));
    if let Err(e) = state.mail.send(&email, &subject, text) {
        tracing::error!(error = %e, "could not send the e-mail confirmation code");
    }
    Ok(see_other(PATH))
}

/// POST /security/email/confirm: the code from the new address makes it the reset address.
pub fn confirm_email(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let f = match signed_form(req, &state, &conn, &body, now)? {
        Ok(f) => f,
        Err(verify_first) => return Ok(verify_first),
    };
    let Some(pending) = store::protection::email_confirmation(&conn, &f.session.user_id)? else { return Ok(see_other(PATH)) };
    if pending.expires_at <= now || pending.attempts >= EMAIL_CODE_TRIES {
        store::protection::delete_email_confirmation(&conn, &f.session.user_id)?;
        return Err(ErrorPage::bad_request("The code has expired", "Send a new confirmation code and try again.").into());
    }
    let code: String = f.params.get("code").unwrap_or("").chars().filter(|c| c.is_ascii_digit()).collect();
    if !constant_time_eq(crate::crypto::secret_hash(&code).as_bytes(), pending.code_hash.as_bytes()) {
        store::protection::email_confirmation_failed(&conn, &f.session.user_id)?;
        return Err(ErrorPage::bad_request("Wrong code", "That is not the code we sent. Go back and try again.").into());
    }
    let email = pending.email;
    let old = store::users::by_id(&conn, &f.session.user_id)?.and_then(|u| u.email).filter(|o| *o != email);
    conn.execute("UPDATE users SET email = ?2, email_verified = 1, updated_at = ?3 WHERE id = ?1", crate::store::db::params![f.session.user_id, email, now])?;
    // The old address hears of it: if this was not its owner, they know at once.
    if let Some(old) = old {
        let lang = crate::i18n::of_user(&conn, &f.session.user_id);
        let subject = lang.text("mail.email_changed.subject");
        let text = lang.format("mail.email_changed.body", &[("issuer", state.config.issuer()), ("email", &email)]);
        super::send_later(&state, old, subject.into(), text);
    }
    store::protection::delete_email_confirmation(&conn, &f.session.user_id)?;
    store::mfa::audit(&conn, Some(&f.session.user_id), Some(&f.session.user_id), "mfa_registered", Some("password reset e-mail"), now)?;
    Ok(see_other(PATH))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(crate::web::offload(show)))
        .route("/security/verify", web::get().to(crate::web::offload(verify)))
        .route("/security/totp", web::get().to(crate::web::offload(show_totp)))
        .route("/security/totp", web::post().to(crate::web::offload(confirm_totp)))
        .route("/security/totp/remove", web::post().to(crate::web::offload(remove_totp)))
        .route("/security/keys/remove", web::post().to(crate::web::offload(remove_key)))
        .route("/security/recovery", web::post().to(crate::web::offload(new_recovery_codes)))
        .route("/security/email", web::post().to(crate::web::offload(change_email)))
        .route("/security/email/confirm", web::post().to(crate::web::offload(confirm_email)));
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(super::date(Some(0)), "1970-01-01");
        assert_eq!(super::date(Some(1_795_619_651)), "2026-11-25");
        assert_eq!(super::date(None), "never");
    }
}
