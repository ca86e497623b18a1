//! Multi-factor sign-in over HTTP: authenticator codes, recovery codes, registration at
//! sign-in, step-up with acr_values. (WebAuthn ceremonies need a browser: see browser.rs.)

use crate::common::*;
use reqwest::StatusCode;

fn claims_of(id_token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id_token.split('.').nth(1).unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// Signs alice in with her password and returns the page latchkey shows next.
async fn password_step(f: &Fixture, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, extra)).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let res = submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await;
    (location(&res), verifier)
}

async fn submit_code(f: &Fixture, page: &str, method: &str, code: &str) -> reqwest::Response {
    let form = [("request", field(page, "request")), ("csrf", field(page, "csrf")), ("method", method.into()), ("code", code.into())];
    f.browser.post(f.server.url("/login/mfa")).form(&form).send().await.unwrap()
}

/// A fresh browser for alice, who has an authenticator app registered.
async fn alice_with_totp() -> (Fixture, String) {
    let mut f = Fixture::new().await;
    f.tokens().await; // password-only session in f.browser
    let secret = register_totp(&f.server, &f.browser).await;
    f.server.advance(30); // the registration spent the current time step
    f.browser = browser();
    (f, secret)
}

#[tokio::test]
async fn password_then_authenticator_code_signs_in_a_relying_party_with_mfa_amr_and_acr() {
    use openidconnect::core::CoreAuthenticationFlow;
    use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, TokenResponse};
    let (f, secret) = alice_with_totp().await;
    let rp = relying_party(&f.server, &f.client_id, Some(&f.secret)).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) =
        rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge).url();
    let res = authorize(&f.server, &f.browser, url.as_str()).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let to = location(&submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await);
    assert!(to.starts_with("/login/mfa?request="), "a second factor is asked for: {to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"autocomplete="one-time-code""#));
    assert!(page.contains("Use a recovery code"), "recovery codes were made when the first method was registered");

    let wrong = submit_code(&f, &page, "totp", "000000").await.text().await.unwrap();
    assert!(wrong.contains("That code is not correct."), "{wrong}");
    let res = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    let back = location(&res);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http())
        .await
        .unwrap();
    let claims = tokens.id_token().unwrap().claims(&rp.id_token_verifier(), &nonce).unwrap();
    let amr: Vec<String> = claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
    assert_eq!(amr, ["pwd", "otp", "mfa"]);
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "urn:latchkey:acr:mfa");

    let log = latchkey::store::signins::recent(&f.server.admin().pool.get().unwrap(), 2).unwrap();
    assert_eq!(log[0].result, "success");
    assert_eq!(log[0].methods.as_deref(), Some(r#"["pwd","otp","mfa"]"#));
    assert_eq!(log[1].reason.as_deref(), Some("second factor: wrong authenticator code"));
    f.server.stop().await;
}

#[tokio::test]
async fn a_replayed_authenticator_code_is_refused() {
    let (mut f, secret) = alice_with_totp().await;
    let code = totp_code(&f.server, &secret);
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert_eq!(submit_code(&f, &page, "totp", &code).await.status(), StatusCode::SEE_OTHER);

    // Someone who saw the code tries it in another browser straight away.
    f.browser = browser();
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let html = submit_code(&f, &page, "totp", &code).await.text().await.unwrap();
    assert!(html.contains("already been used"), "{html}");
    let log = latchkey::store::signins::recent(&f.server.admin().pool.get().unwrap(), 1).unwrap();
    assert_eq!(log[0].reason.as_deref(), Some("second factor: authenticator code already used"));
    f.server.stop().await;
}

#[tokio::test]
async fn a_recovery_code_works_once_only() {
    let (mut f, secret) = alice_with_totp().await;
    // Sign in with the app to reach Security info, and generate codes there.
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    let security = f.browser.get(f.server.url("/security")).send().await.unwrap().text().await.unwrap();
    assert!(security.contains("0 unused recovery codes."));
    let codes_page = f.browser.post(f.server.url("/security/recovery")).form(&[("csrf", field(&security, "csrf"))]).send().await.unwrap().text().await.unwrap();
    let codes: Vec<String> = codes_page.split("<li><code>").skip(1).map(|s| s[..s.find('<').unwrap()].to_string()).collect();
    assert_eq!(codes.len(), 10);

    for attempt in 0..2 {
        f.browser = browser();
        let (to, _) = password_step(&f, &[]).await;
        let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Use a recovery code"));
        let res = submit_code(&f, &page, "recovery", &codes[3].to_uppercase()).await;
        if attempt == 0 {
            assert!(query_param(&location(&res), "code").is_some(), "first use signs in");
        } else {
            assert_eq!(res.status(), StatusCode::OK);
            assert!(res.text().await.unwrap().contains("That code is not correct."), "second use refused");
        }
    }
    f.server.stop().await;
}

#[tokio::test]
async fn repeated_wrong_codes_are_rate_limited() {
    let (f, secret) = alice_with_totp().await;
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    for _ in 0..5 {
        submit_code(&f, &page, "totp", "123456").await;
    }
    let html = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await.text().await.unwrap();
    assert!(html.contains("Too many wrong codes"), "even the right code waits: {html}");
    f.server.advance(15 * 60 + 30);
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let res = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "after the window, the right code works");
    f.server.stop().await;
}

#[tokio::test]
async fn a_user_who_must_use_mfa_registers_an_authenticator_right_after_the_password() {
    let f = Fixture::new().await;
    let admin = f.server.admin();
    let alice = latchkey::store::users::by_username(&admin.pool.get().unwrap(), "alice").unwrap().unwrap();
    latchkey::store::mfa::set_mfa_required(&admin.pool.get().unwrap(), &alice.id, true).unwrap();

    let (to, verifier) = password_step(&f, &[]).await;
    assert!(to.starts_with("/mfa/setup?request="), "{to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let secret = element_text(&page, "totp-secret");
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("code", "999999".to_string())];
    let html = f.browser.post(f.server.url("/mfa/setup")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("That code is not correct."));
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("code", totp_code(&f.server, &secret))];
    let res = f.browser.post(f.server.url("/mfa/setup")).form(&form).send().await.unwrap();
    let res = continue_past_recovery_codes(&f.server, &f.browser, res).await;
    let (status, tokens) = redeem(&f.server, f.client(), &query_param(&location(&res), "code").unwrap(), &verifier).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claims_of(tokens["id_token"].as_str().unwrap())["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    let audit = latchkey::store::mfa::audit_for_user(&admin.pool.get().unwrap(), &alice.id).unwrap();
    assert!(audit.iter().any(|a| a.action == "mfa_registered" && a.detail.as_deref() == Some("authenticator app")), "{audit:?}");
    f.server.stop().await;
}

#[tokio::test]
async fn an_app_asking_for_mfa_steps_a_password_session_up_in_the_same_flow() {
    let f = Fixture::new().await;
    f.tokens().await;
    // alice registers an app, but her current session is still password-only.
    let secret = register_totp(&f.server, &f.browser).await;
    f.server.advance(30);
    let (verifier, challenge) = pkce();
    let url = good_auth_url(&f.server, &f.client_id, &challenge, &[("acr_values", "urn:latchkey:acr:mfa")]);
    // prompt=none cannot step up.
    let none = good_auth_url(&f.server, &f.client_id, &challenge, &[("acr_values", "urn:latchkey:acr:mfa"), ("prompt", "none")]);
    let res = authorize(&f.server, &f.browser, &none).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("interaction_required"));

    let res = authorize(&f.server, &f.browser, &url).await;
    let to = location(&res);
    assert!(to.starts_with("/login/mfa?request="), "step-up, not a new password prompt: {to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let res = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    let (status, tokens) = redeem(&f.server, f.client(), &query_param(&location(&res), "code").unwrap(), &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // Phishing-resistant MFA cannot be reached with an authenticator app: the page says so.
    let (_, challenge) = pkce();
    let url = good_auth_url(&f.server, &f.client_id, &challenge, &[("acr_values", "urn:latchkey:acr:phishing-resistant")]);
    let res = authorize(&f.server, &f.browser, &url).await;
    let to = location(&res);
    assert!(to.starts_with("/mfa/setup?request="), "no key registered yet: register one: {to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("This application requires a security key or passkey."));
    assert!(!page.contains("totp-secret"), "an authenticator app would not be enough");
    f.server.stop().await;
}

#[tokio::test]
async fn changing_methods_needs_a_fresh_second_factor() {
    let (f, secret) = alice_with_totp().await;
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    let security = f.browser.get(f.server.url("/security")).send().await.unwrap().text().await.unwrap();
    assert!(security.contains(r#"id="totp-status">Registered."#));
    assert!(!security.contains(r#"id="verify-first""#), "a second factor just now: changes are offered");
    f.server.advance(11 * 60);
    let stale = f.browser.get(f.server.url("/security")).send().await.unwrap().text().await.unwrap();
    assert!(stale.contains(r#"id="verify-first""#) && !stale.contains("/security/totp/remove"), "eleven minutes later: verify first");
    // A bookmarked page to add a method is not a dead end: it goes through the factor.
    let res = f.browser.get(f.server.url("/security/totp")).send().await.unwrap();
    assert!(location(&res).starts_with("/login/mfa?request="), "{:?}", res.headers());
    // The form of the page loaded before: posted now, it sends the person through the factor.
    let res = f.browser.post(f.server.url("/security/totp/remove")).form(&[("csrf", field(&security, "csrf"))]).send().await.unwrap();
    let to = location(&res);
    assert!(to.starts_with("/login/mfa?request="), "asked to verify first: {to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let res = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    assert_eq!(location(&res), "/security");
    let security = f.browser.get(f.server.url("/security")).send().await.unwrap().text().await.unwrap();
    let res = f.browser.post(f.server.url("/security/totp/remove")).form(&[("csrf", field(&security, "csrf"))]).send().await.unwrap();
    assert_eq!(location(&res), "/security");
    let security = f.browser.get(f.server.url("/security")).send().await.unwrap().text().await.unwrap();
    assert!(security.contains(r#"id="totp-status">Not set up."#));
    // A forged form without the CSRF token changes nothing.
    let res = f.browser.post(f.server.url("/security/recovery")).form(&[("csrf", "forged")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    f.server.stop().await;
}

#[tokio::test]
async fn a_wrong_password_puts_the_focus_on_the_password_and_the_authenticator_key_reads_in_groups_of_four() {
    let f = Fixture::new().await;
    let b = browser();
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &b, &location(&res)).await;
    assert!(page.contains(r#"autocomplete="username" value="" required autofocus>"#), "a fresh page starts at the name");
    let html = submit_login(&f.server, &b, &page, "alice", "not the password").await.text().await.unwrap();
    assert!(html.contains(r#"autocomplete="current-password" required autofocus>"#), "{html}");
    assert!(!html.contains(r#"value="alice" required autofocus"#), "the name is kept, the focus is not on it");

    code_for(&f.server, &f.browser, &f.client_id, "alice").await;
    let page = f.browser.get(f.server.url("/security/totp")).send().await.unwrap().text().await.unwrap();
    let shown = element_text(&page, "totp-secret");
    let groups: Vec<&str> = shown.split(' ').collect();
    assert!(groups.len() > 4 && groups.iter().all(|g| g.len() == 4), "{shown}");
    assert_eq!(groups.concat().len(), 32, "the whole key, 160 bits in base32");
}

#[tokio::test]
async fn the_security_key_endpoints_take_only_json_bodies() {
    let server = TestServer::spawn_localhost();
    let b = browser();
    let post =
        |path: &'static str, content_type: &'static str, body: &'static str| b.post(server.url(path)).header("content-type", content_type).body(body).send();
    // A cross-site form can send a simple content type without asking first: refused unread.
    let res = post("/webauthn/authenticate/start", "application/x-www-form-urlencoded", "request=x&csrf=y").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(res.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let res = post("/webauthn/register/finish", "text/plain", "{}").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let res = post("/webauthn/reset/start", "application/json", "{not json").await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    // Well-formed, but for no sign-in in progress.
    let res = post("/webauthn/authenticate/start", "application/json; charset=utf-8", r#"{"request":"nope","csrf":"nope"}"#).await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    server.stop().await;
}

#[tokio::test]
async fn a_copied_session_cookie_changes_no_sign_in_method_once_its_second_factor_is_not_fresh() {
    let (f, secret) = alice_with_totp().await;
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let res = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    let cookie = session_cookie(&res);
    let security = f.browser.get(f.server.url("/security")).send().await.unwrap().text().await.unwrap();
    let csrf = field(&security, "csrf");
    // Someone copies the cookie (and the page's CSRF token) and uses them later, from elsewhere.
    f.server.advance(11 * 60);
    let thief = rp_http();
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        thief.post(f.server.url(path)).header("cookie", &cookie).header("x-forwarded-for", "203.0.113.66").form(&form).send()
    };
    let alice = latchkey::store::users::by_username(&f.server.admin().pool.get().unwrap(), "alice").unwrap().unwrap().id;
    for (path, form) in [
        ("/security/email", vec![("csrf", csrf.clone()), ("email", "mallory@evil.example".to_string())]),
        ("/security/recovery", vec![("csrf", csrf.clone())]),
        ("/security/totp/remove", vec![("csrf", csrf.clone())]),
    ] {
        let res = post(path, form).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&res).starts_with("/login/mfa?request="), "{path}: the second factor first, {}", location(&res));
    }
    let res = thief
        .post(f.server.url("/webauthn/register/start"))
        .header("cookie", &cookie)
        .json(&serde_json::json!({ "csrf": csrf, "kind": "passkey", "name": "mine" }))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), StatusCode::OK, "no passkey registration starts: {}", res.text().await.unwrap());
    let conn = f.server.admin().pool.get().unwrap();
    assert!(latchkey::store::protection::email_confirmation(&conn, &alice).unwrap().is_none(), "no code went to the thief's address");
    assert!(latchkey::store::mfa::totp(&conn, &alice).unwrap().is_some_and(|t| t.confirmed), "the authenticator stays");
    f.server.stop().await;
}

#[tokio::test]
async fn an_older_second_factor_carried_by_a_session_cookie_adds_no_key_and_a_parked_flow_dies_with_the_password() {
    let (f, secret) = alice_with_totp().await;
    let (to, _) = password_step(&f, &[]).await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let res = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    let cookie = session_cookie(&res);
    let phishing_resistant = [("acr_values", "urn:latchkey:acr:phishing-resistant")];
    let (_, challenge) = pkce();
    let url = good_auth_url(&f.server, &f.client_id, &challenge, &phishing_resistant);
    // Just signed in with her code: an app asking for a key sends her to add one.
    let res = f.browser.get(&url).send().await.unwrap();
    assert!(location(&res).starts_with("/mfa/setup?request="), "{}", location(&res));

    // Eleven minutes later, someone with a copy of the cookie asks the same.
    f.server.advance(11 * 60);
    let thief = rp_http();
    let res = thief.get(&url).header("cookie", &cookie).send().await.unwrap();
    let to = location(&res);
    assert!(to.starts_with("/login/mfa?request="), "the code again before a key is added, not /mfa/setup: {to}");
    let browser_cookie = cookie_pair(&res, "lk_browser");
    let cookies = format!("{cookie}; {browser_cookie}");
    // The thief parks that flow; alice changes her password; the parked flow is over.
    let parked = thief.get(f.server.url(&to)).header("cookie", &cookies).send().await.unwrap();
    assert_eq!(parked.status(), StatusCode::OK);
    let parked = parked.text().await.unwrap();
    // (Her own change asks for her code first: hers, too, is eleven minutes old.)
    let res = f.browser.get(f.server.url("/password/change")).send().await.unwrap();
    assert!(location(&res).starts_with("/login/mfa?request="), "{}", location(&res));
    let page = f.browser.get(f.server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    let res = submit_code(&f, &page, "totp", &totp_code(&f.server, &secret)).await;
    assert_eq!(location(&res), "/password/change");
    let res = f.browser.get(f.server.url("/password/change")).send().await.unwrap();
    let res = change_password_at(&f.server, &f.browser, &location(&res), "a brand new passphrase").await;
    assert_eq!(location(&res), "/");
    let form = [("request", field(&parked, "request")), ("csrf", field(&parked, "csrf")), ("method", "totp".into()), ("code", "000000".into())];
    let res = thief.post(f.server.url("/login/mfa")).header("cookie", &cookies).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("expired"), "the flow ended with the old password");
    f.server.stop().await;
}
