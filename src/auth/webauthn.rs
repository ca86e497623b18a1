//! WebAuthn (webauthn-rs): registering security keys and passkeys, and using them as a second
//! factor or alone. Ceremony state is kept server-side, expires after five minutes and is
//! taken out of the store on first use. The relying-party id and origin come from the issuer.
//!
//! Every credential is registered with user verification required (a PIN or biometric), so a
//! key is multi-factor on its own; a passkey is also discoverable, for sign-in without a
//! username.

use super::flow::{self, Pending, Stage};
use super::mfa::new_id;
use super::session;
use crate::AppState;
use crate::crypto::{b64url, constant_time_eq};
use crate::store::db::Connection;
use crate::store::{self, mfa::Credential};
use crate::web::PageError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use webauthn_rs::prelude::*;

const CEREMONY_SECS: i64 = 300;

/// Builds the relying party from the issuer: its host is the RP id, its origin the only origin.
pub fn relying_party(issuer: &str) -> Result<Webauthn, String> {
    let origin = url::Url::parse(issuer).map_err(|e| e.to_string())?;
    let rp_id = origin.host_str().ok_or("the issuer has no host")?.to_string();
    WebauthnBuilder::new(&rp_id, &origin).and_then(|b| b.rp_name("latchkey").build()).map_err(|e| format!("WebAuthn cannot use issuer {issuer}: {e}"))
}

/// A JSON error for the script to show the person.
pub(crate) fn refuse(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": crate::i18n::current().translate(message) }))
}

pub(crate) fn relying(state: &AppState) -> Result<&Webauthn, PageError> {
    state.webauthn.as_ref().ok_or_else(|| {
        crate::web::ErrorPage {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Security keys are unavailable".into(),
            message: "Security keys and passkeys need latchkey to be served on a domain name, not an IP address.".into(),
        }
        .into()
    })
}

/// A failure as JSON for the script: a page's message, or (an internal fault, logged) a generic one.
/// A ceremony step offloaded with `web::offload`: its JSON body (`application/json`, at most
/// 64 KiB, as the app's JSON limit) is read, and a malformed one refused as JSON, before `step`.
pub(crate) fn json_step<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: web::Data<AppState>,
    body: &[u8],
    step: fn(&HttpRequest, web::Data<AppState>, T) -> HttpResponse,
) -> Result<HttpResponse, PageError> {
    let json = req.headers().get(actix_web::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    });
    if !json {
        return Ok(refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Send this as application/json."));
    }
    if body.len() > 64 * 1024 {
        return Ok(refuse(StatusCode::PAYLOAD_TOO_LARGE, "This request is too large."));
    }
    match serde_json::from_slice(body) {
        Ok(parsed) => Ok(step(req, state, parsed)),
        Err(_) => Ok(refuse(StatusCode::BAD_REQUEST, "This request is malformed.")),
    }
}

pub(crate) fn page_error_to_json(e: PageError) -> HttpResponse {
    match e {
        PageError::Page(p) => refuse(p.status, &p.message),
        PageError::Internal(i) => {
            tracing::error!(error = %i, "WebAuthn ceremony failed inside latchkey");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "latchkey could not complete this. Try again.")
        }
    }
}

/// Turns a redirecting response into `{"redirect": …}` for the script, keeping its cookies.
/// A page instead of a redirect (a policy block) becomes an error the script shows.
fn as_json_redirect(res: HttpResponse) -> HttpResponse {
    let Some(location) = res.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string) else {
        return refuse(res.status(), "Your organisation's policy does not allow this sign-in.");
    };
    let mut out = HttpResponse::Ok().json(json!({ "redirect": location }));
    for c in res.cookies() {
        out.add_cookie(&c).expect("cookie is valid");
    }
    out
}

fn amr_of(kind: &str) -> &'static str {
    // RFC 8176: a security key is a hardware-secured key; a passkey may be synced (software).
    if kind == "security_key" { "hwk" } else { "swk" }
}

pub(crate) fn passkey(c: &Credential) -> Option<Passkey> {
    serde_json::from_str(&c.passkey).ok()
}

/// After a key was accepted: store its new sign counter and when it was used.
pub(crate) fn record_use(conn: &Connection, cred: &Credential, key: &mut Passkey, result: &AuthenticationResult, now: i64) -> Result<(), store::StoreError> {
    key.update_credential(result);
    store::mfa::credential_used(conn, &cred.id, &serde_json::to_string(key).expect("passkey serialises"), now)
}

#[derive(Deserialize)]
pub struct RegisterStart {
    /// A sign-in that is registering its first method, or absent on the Security info page.
    request: Option<String>,
    csrf: String,
    kind: String,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct RegisterState {
    reg: PasskeyRegistration,
    kind: String,
    name: String,
    request: Option<String>,
}

/// Who is registering: from a sign-in in progress (first method only) or from a session.
fn registrant(req: &HttpRequest, conn: &Connection, request: Option<&str>, csrf: &str, now: i64) -> Result<(String, Option<Pending>), PageError> {
    match request {
        Some(id) => {
            let pending = flow::load(req, conn, Some(id), now)?;
            flow::check_csrf(&pending, Some(csrf))?;
            // Only a flow the gate sent to registration registers a key.
            pending.expect(Stage::Register)?;
            let user = pending.user_id()?.to_string();
            Ok((user, Some(pending)))
        }
        None => {
            let s = super::access::form_session(req, conn, crate::gate::Target::Portal, now)?;
            if !constant_time_eq(csrf.as_bytes(), s.csrf_token.as_bytes()) {
                return Err(crate::web::ErrorPage::bad_request("Refused", "This page has expired; reload it.").into());
            }
            crate::portal::security::require_mfa_to_change(req, conn, &s, now)?;
            Ok((s.user_id, None))
        }
    }
}

pub fn register_start(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    json_step(req, state, &body, register_start_json)
}

fn register_start_json(req: &HttpRequest, state: web::Data<AppState>, body: RegisterStart) -> HttpResponse {
    let now = state.clock.now();
    let result = (|| -> Result<HttpResponse, PageError> {
        let conn = state.pool.get()?;
        let (user_id, _) = registrant(req, &conn, body.request.as_deref(), &body.csrf, now)?;
        let name = body.name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Ok(refuse(StatusCode::BAD_REQUEST, "Give the key a name of 1 to 64 characters."));
        }
        if !matches!(body.kind.as_str(), "passkey" | "security_key") {
            return Ok(refuse(StatusCode::BAD_REQUEST, "Unknown kind of key."));
        }
        let user = store::users::by_id(&conn, &user_id)?.ok_or_else(flow::expired)?;
        let uuid = Uuid::parse_str(&user.id).map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
        let exclude: Vec<CredentialID> = store::mfa::credentials(&conn, &user.id)?.iter().filter_map(passkey).map(|p| p.cred_id().clone()).collect();
        let display = user.name.clone().unwrap_or_else(|| user.username.clone());
        let (options, reg) = relying(&state)?
            .start_passkey_registration(uuid, &user.username, &display, Some(exclude))
            .map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
        // webauthn-rs leaves residency open; say what each kind needs (WebAuthn L3 §5.4.4).
        let mut options = serde_json::to_value(&options).expect("options serialise");
        let sel = &mut options["publicKey"]["authenticatorSelection"];
        if body.kind == "passkey" {
            // A passkey must be discoverable, to sign in without typing a username.
            sel["residentKey"] = json!("required");
            sel["requireResidentKey"] = json!(true);
        } else {
            sel["residentKey"] = json!("discouraged");
            sel["authenticatorAttachment"] = json!("cross-platform");
        }
        let ceremony = new_id();
        let st = RegisterState { reg, kind: body.kind.clone(), name: name.to_string(), request: body.request.clone() };
        store::mfa::put_ceremony(&conn, &ceremony, Some(&user.id), "register", &serde_json::to_string(&st).expect("state serialises"), now + CEREMONY_SECS)?;
        Ok(HttpResponse::Ok().json(json!({ "ceremony": ceremony, "options": options })))
    })();
    result.unwrap_or_else(page_error_to_json)
}

#[derive(Deserialize)]
pub struct RegisterFinish {
    ceremony: String,
    credential: RegisterPublicKeyCredential,
}

pub fn register_finish(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    json_step(req, state, &body, register_finish_json)
}

fn register_finish_json(req: &HttpRequest, state: web::Data<AppState>, body: RegisterFinish) -> HttpResponse {
    let now = state.clock.now();
    let result = (|| -> Result<HttpResponse, PageError> {
        let conn = state.pool.get()?;
        let Some((Some(user_id), raw)) = store::mfa::take_ceremony(&conn, &body.ceremony, "register", now)? else {
            return Ok(refuse(StatusCode::BAD_REQUEST, "This registration has expired. Start again."));
        };
        let st: RegisterState = serde_json::from_str(&raw).map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
        // The ceremony must finish where it started: the same sign-in, or the same user's session.
        let pending = match &st.request {
            Some(id) => {
                // Still at registration: a ceremony started there cannot store a key later.
                let p = flow::load(req, &conn, Some(id), now)?;
                p.expect(Stage::Register)?;
                Some(p)
            }
            None => None,
        };
        let same_person = match &pending {
            Some(p) => p.flow.user_id.as_deref() == Some(user_id.as_str()),
            None => session::current(req, &conn, now)?.is_some_and(|s| s.user_id == user_id),
        };
        if !same_person {
            return Ok(refuse(StatusCode::FORBIDDEN, "This registration belongs to another sign-in."));
        }
        let key = match relying(&state)?.finish_passkey_registration(&body.credential, &st.reg) {
            Ok(k) => k,
            Err(e) => {
                tracing::info!(user = %user_id, error = %e, "security key registration failed");
                store::mfa::audit(&conn, Some(&user_id), Some(&user_id), "mfa_failed", Some(&format!("registration: {e}")), now)?;
                return Ok(refuse(StatusCode::BAD_REQUEST, "The key could not be registered. Try again."));
            }
        };
        let cred = Credential {
            id: new_id(),
            kind: st.kind.clone(),
            name: st.name.clone(),
            credential_id: b64url(key.cred_id().as_ref()),
            passkey: serde_json::to_string(&key).expect("passkey serialises"),
            created_at: now,
            last_used_at: None,
        };
        if let Err(store::StoreError::Conflict(m)) = store::mfa::insert_credential(&conn, &user_id, &cred) {
            return Ok(refuse(StatusCode::CONFLICT, &format!("{m}.")));
        }
        let what = format!("{}: {}", if st.kind == "passkey" { "passkey" } else { "security key" }, st.name);
        store::mfa::audit(&conn, Some(&user_id), Some(&user_id), "mfa_registered", Some(&what), now)?;
        match pending {
            Some(mut p) => {
                p.expect(Stage::Register)?;
                // Registering a key during sign-in proves possession of it: it is the second factor.
                p.flow.proved(&[amr_of(&st.kind)], now);
                super::mfa::offer_recovery(&conn, &mut p)?;
                Ok(as_json_redirect(flow::proceed(req, &state, &conn, &mut p, now)?))
            }
            None => Ok(HttpResponse::Ok().json(json!({ "redirect": "/security" }))),
        }
    })();
    result.unwrap_or_else(page_error_to_json)
}

#[derive(Deserialize)]
pub struct AuthStart {
    request: String,
    csrf: String,
}

#[derive(Serialize, Deserialize)]
enum AuthState {
    SecondFactor(PasskeyAuthentication),
    Passwordless(DiscoverableAuthentication),
}

/// Starts using a key: as the second factor of the person in this sign-in, or — when nobody
/// has signed in yet — as a passkey alone (discoverable credentials, no allow-list).
pub fn authenticate_start(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    json_step(req, state, &body, authenticate_start_json)
}

fn authenticate_start_json(req: &HttpRequest, state: web::Data<AppState>, body: AuthStart) -> HttpResponse {
    let now = state.clock.now();
    let result = (|| -> Result<HttpResponse, PageError> {
        let conn = state.pool.get()?;
        let pending = flow::load(req, &conn, Some(&body.request), now)?;
        flow::check_csrf(&pending, Some(&body.csrf))?;
        // A key is the second factor on the second-factor page, or a passkey alone on the
        // sign-in page (also after a mistyped password there, which names a user but proves
        // nothing); nowhere else.
        let second_factor = pending.flow.stage == Stage::SecondFactor;
        pending.expect(if second_factor { Stage::SecondFactor } else { Stage::Password })?;
        let (options, st) = match pending.flow.user_id.as_ref().filter(|_| second_factor) {
            Some(user) => {
                let keys: Vec<Passkey> = store::mfa::credentials(&conn, user)?.iter().filter_map(passkey).collect();
                if keys.is_empty() {
                    return Ok(refuse(StatusCode::BAD_REQUEST, "You have no security key or passkey registered."));
                }
                let (o, s) = relying(&state)?.start_passkey_authentication(&keys).map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
                (o, AuthState::SecondFactor(s))
            }
            None => {
                let (mut o, s) = relying(&state)?.start_discoverable_authentication().map_err(|e| crate::web::InternalError::Other(e.to_string()))?;
                // A button press, not autofill: the browser shows its own passkey picker.
                o.mediation = None;
                (o, AuthState::Passwordless(s))
            }
        };
        let ceremony = new_id();
        let raw = serde_json::to_string(&(st, &pending.id)).expect("state serialises");
        store::mfa::put_ceremony(&conn, &ceremony, pending.flow.user_id.as_deref(), "authenticate", &raw, now + CEREMONY_SECS)?;
        Ok(HttpResponse::Ok().json(json!({ "ceremony": ceremony, "options": options })))
    })();
    result.unwrap_or_else(page_error_to_json)
}

#[derive(Deserialize)]
pub struct AuthFinish {
    ceremony: String,
    credential: PublicKeyCredential,
}

pub fn authenticate_finish(req: &HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, PageError> {
    json_step(req, state, &body, authenticate_finish_json)
}

fn authenticate_finish_json(req: &HttpRequest, state: web::Data<AppState>, body: AuthFinish) -> HttpResponse {
    let now = state.clock.now();
    let result = (|| -> Result<HttpResponse, PageError> {
        let conn = state.pool.get()?;
        let Some((_, raw)) = store::mfa::take_ceremony(&conn, &body.ceremony, "authenticate", now)? else {
            return Ok(refuse(StatusCode::BAD_REQUEST, "This sign-in attempt has expired. Try again."));
        };
        let (st, request_id): (AuthState, String) = serde_json::from_str(&raw).map_err(|e| store::StoreError::Corrupt(e.to_string()))?;
        let mut pending = flow::load(req, &conn, Some(&request_id), now)?;
        let second_factor = matches!(st, AuthState::SecondFactor(_));
        pending.expect(if second_factor { Stage::SecondFactor } else { Stage::Password })?;
        if !second_factor {
            // A passkey alone says who: not a name typed with a wrong password before it.
            pending.flow.user_id = None;
        }
        let credential_id = b64url(body.credential.get_credential_id());
        let found = store::mfa::credential_by_credential_id(&conn, &credential_id)?;
        let fail = |pending: &Pending, why: &str| -> Result<HttpResponse, PageError> {
            flow::log(req, &conn, pending, None, &format!("second factor: {why}"), None, now)?;
            if let Some(u) = &pending.flow.user_id {
                store::mfa::audit(&conn, Some(u), Some(u), "mfa_failed", Some(why), now)?;
            }
            Ok(refuse(StatusCode::UNAUTHORIZED, "That key was not accepted. Try again, or use another method."))
        };
        let Some((owner, cred)) = found else { return fail(&pending, "unknown security key") };
        let Some(mut key) = passkey(&cred) else { return fail(&pending, "stored key unreadable") };
        let verified = match st {
            AuthState::SecondFactor(s) => {
                if pending.flow.user_id.as_deref() != Some(owner.as_str()) {
                    return fail(&pending, "security key of another user");
                }
                relying(&state)?.finish_passkey_authentication(&body.credential, &s)
            }
            AuthState::Passwordless(s) => {
                let handle = relying(&state)?.identify_discoverable_authentication(&body.credential).map(|(u, _)| u.to_string());
                if handle.as_deref().ok() != Some(owner.as_str()) {
                    return fail(&pending, "passkey user handle does not match");
                }
                pending.flow.user_id = Some(owner.clone());
                relying(&state)?.finish_discoverable_authentication_v2(&body.credential, s, &key)
            }
        };
        let result = match verified {
            Ok(r) => r,
            // Includes a sign counter that went backwards: a possibly cloned key.
            Err(e) => return fail(&pending, &format!("key verification failed: {e}")),
        };
        record_use(&conn, &cred, &mut key, &result, now)?;
        store::mfa::audit(&conn, Some(&owner), Some(&owner), "mfa_used", Some(&cred.name), now)?;
        let mut added = vec![amr_of(&cred.kind)];
        if result.user_verified() {
            added.push("user");
        }
        pending.flow.proved(&added, now);
        Ok(as_json_redirect(flow::proceed(req, &state, &conn, &mut pending, now)?))
    })();
    result.unwrap_or_else(page_error_to_json)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webauthn/register/start", web::post().to(crate::web::offload(register_start)))
        .route("/webauthn/register/finish", web::post().to(crate::web::offload(register_finish)))
        .route("/webauthn/authenticate/start", web::post().to(crate::web::offload(authenticate_start)))
        .route("/webauthn/authenticate/finish", web::post().to(crate::web::offload(authenticate_finish)));
}
