//! Real-browser tests: headless Chromium with a virtual WebAuthn authenticator, against the
//! real server (issuer http://localhost:…), completing a relying party's flow.

use crate::cdp::Browser;
use crate::common::*;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, TokenResponse};
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};

/// The relying party's redirect endpoint: records the request path and answers 200.
pub struct Callback {
    pub url: String,
    pub hits: Arc<Mutex<Vec<String>>>,
}

impl Callback {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/callback", listener.local_addr().unwrap().port());
        let hits = Arc::new(Mutex::new(vec![]));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap_or_default();
                if let Some(path) = line.split(' ').nth(1) {
                    seen.lock().unwrap().push(path.to_string());
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\nConnection: close\r\n\r\nback in the app");
            }
        });
        Callback { url, hits }
    }

    /// Waits for the browser to arrive and returns the full callback URL.
    pub fn arrival(&self, b: &mut Browser) -> String {
        b.wait_for("document.body && document.body.innerText === 'back in the app'");
        let path = self.hits.lock().unwrap().iter().rev().find(|p| p.starts_with("/callback")).cloned().unwrap();
        format!("http://127.0.0.1{path}")
    }
}

pub struct App {
    pub rp: Rp,
    pub id: String,
    pub secret: String,
    pub callback: Callback,
}

pub async fn app(server: &TestServer, name: &str) -> App {
    let callback = Callback::start();
    let (id, secret) = server.add_client_redirecting(name, &["authorization_code"], false, &callback.url);
    let rp = relying_party_redirecting(server, &id, secret.as_deref(), &callback.url).await;
    App { rp, id, secret: secret.unwrap(), callback }
}

/// Runs the app's sign-in in the browser; `interact` does the person's part; returns the
/// verified ID token claims as JSON.
pub async fn app_sign_in(app: &App, b: &mut Browser, acr: Option<&str>, interact: impl FnOnce(&mut Browser)) -> serde_json::Value {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = app.rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge);
    if let Some(acr) = acr {
        req = req.add_auth_context_value(openidconnect::AuthenticationContextClass::new(acr.into()));
    }
    let (url, _, nonce) = req.url();
    b.goto(url.as_str());
    interact(b);
    let back = app.callback.arrival(b);
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = app.rp.exchange_code(AuthorizationCode::new(code)).unwrap().set_pkce_verifier(verifier).request_async(&rp_http()).await.unwrap();
    let id_token = tokens.id_token().unwrap();
    id_token.claims(&app.rp.id_token_verifier(), &nonce).expect("ID token verifies");
    let _ = (&app.id, &app.secret);
    serde_json::to_value(id_token.claims(&app.rp.id_token_verifier(), &nonce).unwrap()).unwrap()
}

pub fn password_sign_in(b: &mut Browser) {
    b.wait_for("document.getElementById('username')");
    b.fill("username", "alice");
    b.fill("password", PASSWORD);
    b.submit("password");
}

/// Signs alice in with her password and registers a passkey on Security info.
pub fn register_passkey(b: &mut Browser, server: &TestServer, authenticator: &str) {
    b.goto(&server.url("/login"));
    b.screenshot("login");
    password_sign_in(b);
    b.wait_for("document.getElementById('signed-in-user')");
    b.goto(&server.url("/security"));
    b.fill("key-name", "Laptop passkey");
    b.click("add-passkey");
    b.wait_for("document.querySelector('.key-name') && document.querySelector('.key-name').textContent === 'Laptop passkey'");
    b.screenshot("security-info");
    let creds = b.credentials(authenticator);
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0]["isResidentCredential"], true, "a passkey is discoverable");
}

/// Signs out, then signs in to `app` with the passkey alone (no username, no password); returns
/// the ID token's claims.
pub async fn passkey_sign_in(app: &App, b: &mut Browser, server: &TestServer) -> serde_json::Value {
    b.goto(&server.url("/"));
    b.click("sign-out");
    b.wait_for("document.body.innerText.includes('You have signed out')");
    let claims = app_sign_in(app, b, None, |b| {
        b.wait_for("document.getElementById('passkey-login')");
        b.click("passkey-login");
    })
    .await;
    assert_eq!(claims["amr"], serde_json::json!(["swk", "user", "mfa"]));
    claims
}

#[tokio::test]
async fn a_passkey_registered_on_security_info_signs_in_alone_and_completes_an_apps_flow() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let app = app(&server, "Wiki").await;
    let mut b = Browser::launch();
    let authenticator = b.add_authenticator(true, true);

    register_passkey(&mut b, &server, &authenticator);
    let claims = passkey_sign_in(&app, &mut b, &server).await;
    assert_eq!(claims["acr"], "urn:latchkey:acr:phishing-resistant");
    let log = latchkey::store::signins::recent(&server.admin().pool.get().unwrap(), 1).unwrap();
    assert_eq!(log[0].methods.as_deref(), Some(r#"["swk","user","mfa"]"#));

    // A mistyped password first, then the passkey on the same page: signed in, not "expired".
    b.goto(&server.url("/"));
    b.click("sign-out");
    b.wait_for("document.body.innerText.includes('You have signed out')");
    let claims = app_sign_in(&app, &mut b, None, |b| {
        b.wait_for("document.getElementById('username')");
        b.fill("username", "alice");
        b.fill("password", "not her password at all");
        b.submit("password");
        b.wait_for("document.getElementById('login-error')");
        b.click("passkey-login");
    })
    .await;
    assert_eq!(claims["amr"], serde_json::json!(["swk", "user", "mfa"]));
    server.stop().await;
}

#[tokio::test]
async fn a_security_key_steps_up_a_password_session_and_then_serves_as_second_factor() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let app = app(&server, "Payroll").await;
    let mut b = Browser::launch();
    b.add_authenticator(false, true);

    // alice signs in with her password and registers a security key: her session is password-only.
    b.goto(&server.url("/login"));
    password_sign_in(&mut b);
    b.wait_for("document.getElementById('signed-in-user')");
    b.goto(&server.url("/security"));
    b.fill("key-name", "YubiKey");
    b.click("add-security-key");
    b.wait_for("document.querySelector('.key-name') && document.querySelector('.key-name').textContent === 'YubiKey'");

    // The app wants phishing-resistant MFA: same flow, prompted for the key, stronger acr.
    let claims = app_sign_in(&app, &mut b, Some("urn:latchkey:acr:phishing-resistant"), |b| {
        b.wait_for("document.getElementById('use-key')");
        assert!(b.text().contains("This application requires a security key or passkey."));
        b.screenshot("step-up");
        b.click("use-key");
    })
    .await;
    assert_eq!(claims["acr"], "urn:latchkey:acr:phishing-resistant");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "hwk", "user", "mfa"]));

    // A new sign-in (prompt=login, past the SSO session): password, then the key as second factor.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = app
        .rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
        .url();
    b.goto(url.as_str());
    password_sign_in(&mut b);
    b.wait_for("document.getElementById('use-key')");
    b.screenshot("second-factor");
    b.click("use-key");
    let back = app.callback.arrival(&mut b);
    let tokens = app
        .rp
        .exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http())
        .await
        .unwrap();
    let claims = tokens.id_token().unwrap().claims(&app.rp.id_token_verifier(), &nonce).unwrap();
    let amr: Vec<String> = claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
    assert_eq!(amr, ["pwd", "hwk", "user", "mfa"]);
    server.stop().await;
}

#[tokio::test]
async fn a_cancelled_ceremony_shows_a_clear_message() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let mut b = Browser::launch();
    // An authenticator whose user declines verification: the browser reports NotAllowedError.
    b.add_authenticator(true, false);
    b.goto(&server.url("/login"));
    b.wait_for("document.getElementById('passkey-login')");
    b.click("passkey-login");
    b.wait_for("!document.getElementById('webauthn-message').hidden");
    let message = b.eval("document.getElementById('webauthn-message').textContent");
    assert_eq!(message, "The request was cancelled or timed out. Try again when you are ready.");
    b.screenshot("cancelled");
    server.stop().await;
}

#[tokio::test]
async fn an_admin_signs_in_with_mfa_registers_an_app_through_the_form_and_a_relying_party_uses_it() {
    let server = TestServer::spawn_localhost();
    let admin = server.admin();
    let root = server.add_user("root");
    latchkey::store::directory::set_roles(&admin.pool.get().unwrap(), &root, &[latchkey::store::directory::Role::GlobalAdmin]).unwrap();
    server.add_user("alice");
    let callback = Callback::start();
    let mut b = Browser::launch();

    // The admin console: password, then (no method yet) register an authenticator app.
    b.goto(&server.url("/admin"));
    b.wait_for("document.getElementById('username')");
    b.fill("username", "root");
    b.fill("password", PASSWORD);
    b.submit("password");
    b.wait_for("document.getElementById('totp-secret')");
    b.screenshot("admin-mfa-setup");
    let secret = b.eval("document.getElementById('totp-secret').textContent").as_str().unwrap().to_string();
    b.fill("code", &totp_code(&server, &secret));
    b.submit("code");
    // Recovery codes are offered once, with copy and download, before the console opens.
    b.wait_for("document.getElementById('recovery-codes')");
    b.screenshot("admin-recovery-codes");
    b.click("continue");
    b.wait_for("document.getElementById('app-count')");
    b.screenshot("admin-overview");

    // Register an app through the form.
    b.click("register-app");
    b.wait_for("document.getElementById('redirect_uris')");
    b.fill("name", "Team Wiki");
    b.fill("redirect_uris", &callback.url);
    b.fill("launch_url", "https://wiki.example.com/");
    b.screenshot("admin-app-form");
    b.click("save-app");
    b.wait_for("document.getElementById('client-secret')");
    b.screenshot("admin-app-registered");
    let client_id = b.eval("document.getElementById('client-id').textContent").as_str().unwrap().to_string();
    let client_secret = b.eval("document.getElementById('client-secret').textContent").as_str().unwrap().to_string();

    // A relying party configured with exactly those signs alice in.
    let rp = relying_party_redirecting(&server, &client_id, Some(&client_secret), &callback.url).await;
    let app = App { rp, id: client_id.clone(), secret: client_secret, callback };
    let mut alice = Browser::launch();
    let claims = app_sign_in(&app, &mut alice, None, password_sign_in).await;
    assert_eq!(claims["aud"], serde_json::json!([client_id]));

    // The other main pages, for a reviewer.
    for (path, name) in [
        ("/admin/apps", "admin-apps"),
        (&format!("/admin/apps/{client_id}") as &str, "admin-app"),
        ("/admin/users", "admin-users"),
        ("/admin/groups", "admin-groups"),
        ("/admin/signins", "admin-signins"),
        ("/admin/audit", "admin-audit"),
        ("/admin/keys", "admin-keys"),
    ] {
        b.goto(&server.url(path));
        b.wait_for("document.querySelector('h1')");
        b.screenshot(name);
    }
    b.goto(&server.url(&format!("/admin/users/{root}")));
    b.wait_for("document.querySelector('h1')");
    b.screenshot("admin-user");
    server.stop().await;
}

fn reset_to_verify_page(server: &TestServer, b: &mut Browser) {
    b.goto(&server.url("/login"));
    b.wait_for("document.getElementById('forgot-password')");
    b.click("forgot-password");
    b.wait_for("document.getElementById('username') && location.pathname === '/reset'");
    b.fill("username", "alice");
    b.submit("username");
    b.wait_for("location.pathname === '/reset/verify'");
}

fn choose_new_password(b: &mut Browser, password: &str) {
    b.wait_for("location.pathname === '/reset/password'");
    b.fill("new_password", password);
    b.fill("confirm_password", password);
    b.click("save-password");
    b.wait_for("document.getElementById('reset-done')");
}

#[tokio::test]
async fn self_service_password_reset_in_the_browser_with_an_authenticator_code() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    // alice registered an authenticator app earlier.
    let http = browser();
    let res = http.get(server.url("/login")).send().await.unwrap();
    let page = login_page(&server, &http, &location(&res)).await;
    submit_login(&server, &http, &page, "alice", PASSWORD).await;
    let secret = register_totp(&server, &http).await;
    server.advance(30);

    let mut b = Browser::launch();
    reset_to_verify_page(&server, &mut b);
    b.screenshot("reset-verify");
    b.fill("totp-code", &totp_code(&server, &secret));
    b.click("verify-totp");
    choose_new_password(&mut b, "a phrase only alice knows");
    b.screenshot("reset-done");
    // The old session (in the other client) is gone; the new password works.
    let home = http.get(server.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Welcome"), "every other session was signed out");
    b.goto(&server.url("/login"));
    b.wait_for("document.getElementById('username')");
    b.fill("username", "alice");
    b.fill("password", "a phrase only alice knows");
    b.submit("password");
    // Her authenticator app is still her second factor.
    b.wait_for("document.getElementById('code')");
    server.advance(30);
    b.fill("code", &totp_code(&server, &secret));
    b.submit("code");
    b.wait_for("document.getElementById('signed-in-user')");
    server.stop().await;
}

#[tokio::test]
async fn self_service_password_reset_in_the_browser_with_an_e_mail_code_from_the_outbox() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let mut b = Browser::launch();
    reset_to_verify_page(&server, &mut b);
    b.click("send-email");
    b.wait_for("document.getElementById('email-code')");
    let mail = outbox_message(&server, "Your code:");
    assert!(mail.contains("To: someone@example.com"), "{mail}");
    let code: String = mail.split("Your code: ").nth(1).unwrap().chars().take(6).collect();
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
    b.fill("email-code", &code);
    b.click("verify-email");
    choose_new_password(&mut b, "another fresh passphrase");
    let notice = outbox_message(&server, "was just changed");
    assert!(notice.contains("Subject: Your latchkey password was changed"), "{notice}");
    server.stop().await;
}

#[tokio::test]
async fn self_service_password_reset_in_the_browser_with_a_passkey_and_the_same_options_for_unknown_accounts() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let mut b = Browser::launch();
    b.add_authenticator(true, true);
    b.goto(&server.url("/login"));
    password_sign_in(&mut b);
    b.wait_for("document.getElementById('signed-in-user')");
    b.goto(&server.url("/security"));
    b.fill("key-name", "Phone");
    b.click("add-passkey");
    b.wait_for("document.querySelector('.key-name') && document.querySelector('.key-name').textContent === 'Phone'");
    b.goto(&server.url("/"));
    b.click("sign-out");
    b.wait_for("document.body.innerText.includes('You have signed out')");

    reset_to_verify_page(&server, &mut b);
    b.click("reset-key");
    choose_new_password(&mut b, "passkeys make this easy");

    // For an account that does not exist, the key options look the same: ids for it are made
    // up, the same every time, and the ceremony simply fails.
    let http = browser();
    let options_for = |username: &'static str| {
        let (server, http) = (&server, http.clone());
        async move {
            let page = http.get(server.url("/reset")).send().await.unwrap().text().await.unwrap();
            let res = http.post(server.url("/reset")).form(&[("csrf", field(&page, "csrf")), ("username", username.to_string())]).send().await.unwrap();
            let page = http.get(server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
            let id = element_attr(&page, "reset-key", "data-request");
            let csrf = element_attr(&page, "reset-key", "data-csrf");
            let v: serde_json::Value = http
                .post(server.url("/webauthn/reset/start"))
                .json(&serde_json::json!({ "request": id, "csrf": csrf }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["options"]["publicKey"].clone()
        }
    };
    let real = options_for("alice").await;
    let fake = options_for("nobody").await;
    let again = options_for("nobody").await;
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&real), keys(&fake));
    assert_eq!(real["allowCredentials"].as_array().unwrap().len(), 1);
    // (The made-up list may be empty, like a real account's with no key; it never changes.)
    assert_eq!(fake["allowCredentials"], again["allowCredentials"], "stable for one username");
    server.stop().await;
}
