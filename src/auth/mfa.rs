//! Second factors at sign-in: authenticator-app codes (RFC 6238), recovery codes, and the
//! registration interruption for people who must use MFA but have no method yet (or need a
//! security key). WebAuthn ceremonies are in `webauthn.rs`; every step ends in
//! `flow::proceed`, which asks the gate what comes next.

use super::budget;
use super::flow::{self, Level, Pending, Stage};
use super::login::app_name;
use crate::AppState;
use crate::crypto::{b64url, random_bytes, secret_hash};
use crate::i18n::filters;
use crate::store::db::Connection;
use crate::store::{self, StoreError, mfa::Credential, users::User};
use crate::web::params::Params;
use crate::web::{ErrorPage, PageError, html};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use totp_rs::{Secret, Totp};

pub const RECOVERY_CODES: usize = 10;

/// The methods a user has registered.
pub struct Methods {
    pub totp: bool,
    pub keys: Vec<Credential>,
    pub recovery_left: i64,
}

impl Methods {
    pub fn load(conn: &Connection, user_id: &str) -> Result<Self, StoreError> {
        Ok(Self {
            totp: store::mfa::totp(conn, user_id)?.is_some_and(|t| t.confirmed),
            keys: store::mfa::credentials(conn, user_id)?,
            recovery_left: store::mfa::recovery_codes_left(conn, user_id)?,
        })
    }

    /// Methods that count as a second factor on their own (recovery codes are a fallback).
    pub fn any(&self) -> bool {
        self.totp || !self.keys.is_empty()
    }

    pub fn can_reach(&self, level: Level) -> bool {
        match level {
            Level::Password => true,
            Level::Mfa => self.any(),
            Level::PhishingResistant => !self.keys.is_empty(),
        }
    }
}

pub fn totp_for(secret_b32: &str, username: &str, issuer: &str) -> Option<Totp> {
    let host = url::Url::parse(issuer).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "latchkey".into());
    let secret = Secret::try_from_base32(secret_b32).ok()?;
    totp_rs::Builder::new().with_secret(secret).with_account_name(username).with_issuer(Some(format!("latchkey ({host})"))).build().ok()
}

pub fn new_totp_secret() -> String {
    Secret::generate().to_base32()
}

/// Checks an authenticator code against `user`'s confirmed secret at `now` (±1 step) and
/// spends its time step.
pub fn check_totp(state: &AppState, conn: &Connection, user: &User, code: &str, now: i64) -> Result<Result<(), &'static str>, StoreError> {
    let Some(row) = store::mfa::totp(conn, &user.id)?.filter(|t| t.confirmed) else { return Ok(Err("no authenticator app is registered")) };
    let Some(secret) = state.sealer.open(&row.secret) else { return Ok(Err("the stored secret cannot be decrypted")) };
    let Some(step) = code_step(&secret, &user.username, state.config.issuer(), code, now) else { return Ok(Err("wrong authenticator code")) };
    if !store::mfa::use_totp_step(conn, &user.id, step)? {
        return Ok(Err("authenticator code already used"));
    }
    Ok(Ok(()))
}

/// The time step `code` matches for `secret` at `now`, if any.
fn code_step(secret: &str, username: &str, issuer: &str, code: &str, now: i64) -> Option<i64> {
    let totp = totp_for(secret, username, issuer)?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    totp.check(&code, now.max(0) as u64).map(|s| s as i64)
}

/// How long an enrolment's secret lives.
pub const ENROLMENT_SECS: i64 = 600;

/// The secret of the authenticator-app enrolment bound to `binding` (this sign-in flow or this
/// session), made on first use: each enrolment gets its own, shown nowhere else, for 10 minutes
/// — a secret planted by someone who once had the password is never shown to the real person.
pub fn enrolment_secret(state: &AppState, conn: &Connection, user_id: &str, binding: &str, now: i64) -> Result<String, StoreError> {
    if let Some(s) = store::mfa::enrolment(conn, binding, user_id, now)?.and_then(|s| state.sealer.open(&s)) {
        return Ok(s);
    }
    let secret = new_totp_secret();
    store::mfa::put_enrolment(conn, binding, user_id, &state.sealer.seal(&secret), now + ENROLMENT_SECS)?;
    Ok(secret)
}

/// Confirms the enrolment bound to `binding` with a code from the app: only then is the secret
/// stored as the user's method.
pub fn confirm_enrolment(
    state: &AppState,
    conn: &Connection,
    user: &User,
    binding: &str,
    code: &str,
    now: i64,
) -> Result<Result<(), &'static str>, StoreError> {
    let Some(sealed) = store::mfa::enrolment(conn, binding, &user.id, now)? else { return Ok(Err("the registration expired; scan the new code")) };
    let Some(secret) = state.sealer.open(&sealed) else { return Ok(Err("the registration expired; scan the new code")) };
    let Some(step) = code_step(&secret, &user.username, state.config.issuer(), code, now) else { return Ok(Err("wrong authenticator code")) };
    // Stored sealed: only the confirmed secret becomes the method.
    if !store::mfa::confirm_enrolment(conn, binding, &user.id, &sealed, step, now)? {
        return Ok(Err("an authenticator app is already registered"));
    }
    Ok(Ok(()))
}

/// A wrong code while confirming one's own new secret guesses nothing of the account's: only
/// the IP's budget counts it.
pub fn enrolment_paused(conn: &Connection, ip: Option<&str>, now: i64) -> Result<Option<i64>, StoreError> {
    match ip {
        Some(ip) => budget::paused(conn, budget::Subject::Ip(ip), budget::Kind::Code, now),
        None => Ok(None),
    }
}

pub fn enrolment_failed(conn: &Connection, ip: Option<&str>, now: i64) -> Result<(), StoreError> {
    if let Some(ip) = ip {
        budget::spend(conn, budget::Subject::Ip(ip), budget::Kind::Code, now)?;
    }
    Ok(())
}

/// Whether wrong codes of `kind` are paused for this user or this IP, and until when.
pub fn codes_paused(conn: &Connection, user_id: &str, ip: Option<&str>, kind: budget::Kind, now: i64) -> Result<Option<i64>, StoreError> {
    let by_user = budget::paused(conn, budget::Subject::User(user_id), kind, now)?;
    let by_ip = match ip {
        Some(ip) => budget::paused(conn, budget::Subject::Ip(ip), budget::Kind::Code, now)?,
        None => None,
    };
    Ok(by_user.max(by_ip))
}

/// A wrong code of `kind`: spends the user's budget for that method and the IP's budget for
/// codes; returns when a pause this started ends.
pub fn wrong_code(conn: &Connection, user_id: &str, ip: Option<&str>, kind: budget::Kind, now: i64) -> Result<Option<i64>, StoreError> {
    let by_user = budget::spend(conn, budget::Subject::User(user_id), kind, now)?;
    let by_ip = match ip {
        Some(ip) => budget::spend(conn, budget::Subject::Ip(ip), budget::Kind::Code, now)?,
        None => None,
    };
    if let Some(until) = by_user {
        store::mfa::audit(
            conn,
            None,
            Some(user_id),
            "mfa_paused",
            Some(&format!("too many wrong codes; paused for {} minutes", budget::minutes_until(until, now))),
            now,
        )?;
    }
    Ok(by_user.or(by_ip))
}

fn normalise_recovery(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// Ten fresh single-use codes (replacing any old ones); only their hashes are stored.
pub fn new_recovery_codes(conn: &Connection, user_id: &str, now: i64) -> Result<Vec<String>, StoreError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let raw: String = random_bytes::<10>().iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
            format!("{}-{}", &raw[..5], &raw[5..])
        })
        .collect();
    let hashes: Vec<String> = codes.iter().map(|c| secret_hash(&normalise_recovery(c))).collect();
    store::mfa::replace_recovery_codes(conn, user_id, &hashes, now)?;
    Ok(codes)
}

pub fn use_recovery_code(conn: &Connection, user_id: &str, code: &str, now: i64) -> Result<bool, StoreError> {
    store::mfa::use_recovery_code(conn, user_id, &secret_hash(&normalise_recovery(code)), now)
}

/// The otpauth:// URI as a QR code, an SVG `data:` URL for an <img> (no script, CSP-safe).
pub fn qr_svg_data_url(text: &str) -> String {
    let qr = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).expect("an otpauth URI fits a QR code");
    let border = 4;
    let size = qr.size() + border * 2;
    let mut path = String::new();
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    );
    format!("data:image/svg+xml;base64,{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, svg))
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct SecondFactorPage<'a> {
    request_id: &'a str,
    csrf: &'a str,
    app_name: Option<String>,
    totp: bool,
    keys: bool,
    recovery: bool,
    phishing_resistant: bool,
    error: Option<&'a str>,
}

fn second_factor_page(conn: &Connection, pending: &Pending, error: Option<&str>) -> Result<HttpResponse, PageError> {
    let methods = Methods::load(conn, pending.user_id()?)?;
    let phr = pending.flow.required == Level::PhishingResistant;
    let page = SecondFactorPage {
        request_id: &pending.id,
        csrf: &pending.csrf,
        app_name: app_name(conn, &pending.flow)?,
        totp: methods.totp && !phr,
        keys: !methods.keys.is_empty(),
        recovery: methods.recovery_left > 0 && !phr,
        phishing_resistant: phr,
        error,
    };
    Ok(html(StatusCode::OK, &page))
}

pub fn show_second_factor(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let pending = flow::load(req, &conn, query.get("request"), state.clock.now())?;
    pending.expect(Stage::SecondFactor)?;
    second_factor_page(&conn, &pending, None)
}

/// POST /login/mfa: an authenticator code or a recovery code.
pub fn submit_second_factor(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut pending = flow::load_form(req, &conn, &params, now)?;
    pending.expect(Stage::SecondFactor)?;
    let user = store::users::by_id(&conn, pending.user_id()?)?.ok_or_else(flow::expired)?;
    if pending.flow.required == Level::PhishingResistant {
        return second_factor_page(&conn, &pending, Some("This application requires a security key or passkey."));
    }
    let kind = if params.get("method") == Some("recovery") { budget::Kind::Recovery } else { budget::Kind::Totp };
    let ip = crate::web::client_ip(req);
    if let Some(until) = codes_paused(&conn, &user.id, ip.as_deref(), kind, now)? {
        let message = format!("Too many wrong codes. Try again in {} minutes, or use a security key.", budget::minutes_until(until, now));
        return second_factor_page(&conn, &pending, Some(&message));
    }
    let code = params.get("code").unwrap_or("");
    let outcome = match params.get("method") {
        Some("totp") => check_totp(&state, &conn, &user, code, now)?,
        Some("recovery") => {
            if use_recovery_code(&conn, &user.id, code, now)? {
                store::mfa::audit(&conn, Some(&user.id), Some(&user.id), "mfa_used", Some("recovery code"), now)?;
                Ok(())
            } else {
                Err("wrong or used recovery code")
            }
        }
        _ => Err("unknown second factor"),
    };
    if let Err(why) = outcome {
        let paused = wrong_code(&conn, &user.id, ip.as_deref(), kind, now)?;
        let reason = match paused {
            Some(until) => format!("second factor: {why}; paused for {} minutes", budget::minutes_until(until, now)),
            None => format!("second factor: {why}"),
        };
        flow::log(req, &conn, &pending, Some(&user.username), &reason, None, now)?;
        let message = if why == "authenticator code already used" {
            "That code has already been used. Wait for the next code and try again."
        } else {
            "That code is not correct. Try again."
        };
        return second_factor_page(&conn, &pending, Some(message));
    }
    pending.flow.proved(&["otp"], now);
    flow::proceed(req, &state, &conn, &mut pending, now)
}

#[derive(Template)]
#[template(path = "mfa_setup.html")]
struct SetupPage<'a> {
    request_id: &'a str,
    csrf: &'a str,
    qr: String,
    secret: String,
    keys_only: bool,
    /// Security defaults' grace: days the person may still skip registration.
    days_left: Option<i64>,
    error: Option<&'a str>,
}

fn setup_page(_req: &HttpRequest, state: &AppState, conn: &Connection, pending: &Pending, error: Option<&str>, now: i64) -> Result<HttpResponse, PageError> {
    let user = store::users::by_id(conn, pending.user_id()?)?.ok_or_else(flow::expired)?;
    let days_left = pending.flow.skippable_days;
    let secret = enrolment_secret(state, conn, &user.id, &format!("flow:{}", pending.id), now)?;
    let totp = totp_for(&secret, &user.username, state.config.issuer()).ok_or_else(|| crate::web::InternalError::Other("bad TOTP secret".into()))?;
    let url = totp.to_url().map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
    let page = SetupPage {
        request_id: &pending.id,
        csrf: &pending.csrf,
        qr: qr_svg_data_url(&url),
        secret,
        keys_only: pending.flow.required == Level::PhishingResistant,
        days_left,
        error,
    };
    Ok(html(StatusCode::OK, &page))
}

/// GET /mfa/setup: the person must use MFA and has no method — register one now.
pub fn show_setup(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let pending = flow::load(req, &conn, query.get("request"), now)?;
    pending.expect(Stage::Register)?;
    setup_page(req, &state, &conn, &pending, None, now)
}

pub fn submit_setup(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut pending = flow::load_form(req, &conn, &params, now)?;
    // Only a flow the gate sent to registration registers (its rules: a low-risk, familiar
    // context, or a second factor already proven in this flow).
    pending.expect(Stage::Register)?;
    if pending.flow.required == Level::PhishingResistant {
        return setup_page(req, &state, &conn, &pending, Some("This application requires a security key or passkey."), now);
    }
    let user = store::users::by_id(&conn, pending.user_id()?)?.ok_or_else(flow::expired)?;
    let ip = crate::web::client_ip(req);
    if let Some(until) = enrolment_paused(&conn, ip.as_deref(), now)? {
        let message = format!("Too many wrong codes. Try again in {} minutes.", budget::minutes_until(until, now));
        return setup_page(req, &state, &conn, &pending, Some(&message), now);
    }
    let binding = format!("flow:{}", pending.id);
    if let Err(why) = confirm_enrolment(&state, &conn, &user, &binding, params.get("code").unwrap_or(""), now)? {
        enrolment_failed(&conn, ip.as_deref(), now)?;
        flow::log(req, &conn, &pending, Some(&user.username), &format!("registration: {why}"), None, now)?;
        return setup_page(req, &state, &conn, &pending, Some("That code is not correct. Check the time on your device and try again."), now);
    }
    store::mfa::audit(&conn, Some(&user.id), Some(&user.id), "mfa_registered", Some("authenticator app"), now)?;
    pending.flow.proved(&["otp"], now);
    offer_recovery(&conn, &mut pending)?;
    flow::proceed(req, &state, &conn, &mut pending, now)
}

/// After a method is registered during sign-in, a person without recovery codes is offered
/// them, so one lost phone does not lock out the only administrator.
pub(crate) fn offer_recovery(conn: &Connection, pending: &mut Pending) -> Result<(), StoreError> {
    // A first method always gets fresh codes (any made before it were not the person's to trust).
    let m = Methods::load(conn, pending.flow.user_id.as_deref().unwrap_or_default())?;
    pending.flow.offer_recovery = usize::from(m.totp) + m.keys.len() == 1 || m.recovery_left == 0;
    Ok(())
}

/// GET /mfa/recovery: the codes, shown once, with copy and download buttons.
pub fn show_recovery(req: &HttpRequest, state: web::Data<AppState>, _body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let query = Params::parse(req.query_string().as_bytes()).unwrap_or_default();
    let mut pending = flow::load(req, &conn, query.get("request"), now)?;
    pending.expect(Stage::RecoveryCodes)?;
    let codes = match pending.flow.recovery_shown {
        true => vec![],
        false => {
            let user_id = pending.user_id()?.to_string();
            let codes = new_recovery_codes(&conn, &user_id, now)?;
            store::mfa::audit(&conn, Some(&user_id), Some(&user_id), "mfa_registered", Some("recovery codes"), now)?;
            pending.flow.recovery_shown = true;
            pending.save(&conn)?;
            codes
        }
    };
    let page = crate::portal::security::RecoveryPage::new(codes, Some((pending.id.clone(), pending.csrf.clone())));
    Ok(html(StatusCode::OK, &page))
}

/// POST /mfa/recovery: saved; on with the sign-in.
pub fn continue_after_recovery(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut pending = flow::load_form(req, &conn, &params, now)?;
    pending.expect(Stage::RecoveryCodes)?;
    pending.flow.offer_recovery = false;
    flow::proceed(req, &state, &conn, &mut pending, now)
}

/// POST /mfa/setup/skip: security defaults' grace period lets a person register later.
pub fn skip_setup(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let params = Params::form(&body)?;
    let conn = state.pool.get()?;
    let mut pending = flow::load_form(req, &conn, &params, now)?;
    pending.expect(Stage::Register)?;
    if pending.flow.skippable_days.is_none() {
        return Err(ErrorPage::bad_request("Registration is required", "You can no longer skip setting up a second way to sign in.").into());
    }
    let user_id = pending.user_id()?.to_string();
    pending.flow.registration_skipped = true;
    store::mfa::audit(&conn, Some(&user_id), Some(&user_id), "mfa_registration_skipped", None, now)?;
    flow::proceed(req, &state, &conn, &mut pending, now)
}

/// A random id for stored things that are not secrets.
pub fn new_id() -> String {
    b64url(&random_bytes::<12>())
}
