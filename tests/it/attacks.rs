//! An outside security review of the sign-in gate and account recovery: each test is one
//! attack that worked before its fix.

use crate::common::*;
use latchkey::policy::model::*;
use reqwest::StatusCode;

const HOME: &str = "198.51.100.7";
const ATTACKER: &str = "203.0.113.50";

fn conn(server: &TestServer) -> latchkey::store::Conn {
    server.admin().pool.get().unwrap()
}

fn user_id(server: &TestServer, username: &str) -> String {
    latchkey::store::users::by_username(&conn(server), username).unwrap().unwrap().id
}

/// A cookie-keeping browser whose every request comes from `ip` (through the trusted proxy).
fn browser_at(ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).default_headers(headers).build().unwrap()
}

async fn text(b: &reqwest::Client, server: &TestServer, path: &str) -> String {
    b.get(server.url(path)).send().await.unwrap().text().await.unwrap()
}

/// An app sign-in with a password in `b`; returns where latchkey sends the browser.
async fn app_password(server: &TestServer, b: &reqwest::Client, client_id: &str, username: &str) -> reqwest::Response {
    let (_, challenge) = pkce();
    let res = b.get(good_auth_url(server, client_id, &challenge, &[])).send().await.unwrap();
    let page = login_page(server, b, &location(&res)).await;
    submit_login(server, b, &page, username, PASSWORD).await
}

/// A sign-in to latchkey itself (/login, no app) with a password; returns the answer.
async fn portal_password(server: &TestServer, b: &reqwest::Client, username: &str) -> reqwest::Response {
    let res = b.get(server.url("/login")).send().await.unwrap();
    let page = login_page(server, b, &location(&res)).await;
    submit_login(server, b, &page, username, PASSWORD).await
}

/// Posts a code on the second-factor page at `to`.
async fn second_factor(server: &TestServer, b: &reqwest::Client, to: &str, method: &str, code: &str) -> reqwest::Response {
    assert!(to.starts_with("/login/mfa?request="), "expected the second-factor page, got {to}");
    let page = text(b, server, to).await;
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("method", method.to_string()), ("code", code.to_string())];
    b.post(server.url("/login/mfa")).form(&form).send().await.unwrap()
}

/// The code in an answer that sends the browser back to the app, if it does.
fn code_in(res: &reqwest::Response) -> Option<String> {
    let to = res.headers().get("location")?.to_str().ok()?;
    url::Url::parse(to).ok()?.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

fn six_digits_after(text: &str, marker: &str) -> String {
    text.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker:?} in {text}")).trim_start().chars().take(6).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. A password alone registers a second factor through Security info, where the gate's
//    registration rules (low risk, familiar network) never run.

#[tokio::test]
async fn a_password_only_attacker_registers_their_own_authenticator_in_security_info_and_passes_mfa() {
    let f = Fixture::new().await;
    // alice has signed in before, from home.
    let res = app_password(&f.server, &browser_at(HOME), &f.client_id, "alice").await;
    assert!(query_param(&location(&res), "code").is_some());
    // The app requires MFA (the portal is not named by the policy).
    put_template(&f.server, "all-mfa", State::On, |p| p.include_apps = Apps { all: false, apps: vec![f.client_id.clone()] });

    // The attacker has her password and nothing else. At the app's MFA prompt the gate refuses
    // to let them register a factor from their network…
    let attacker = browser_at(ATTACKER);
    let res = app_password(&f.server, &attacker, &f.client_id, "alice").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "registration refused at sign-in: {:?}", res.headers());
    // …so they sign in to latchkey's own portal instead, and register one there.
    let res = portal_password(&f.server, &attacker, "alice").await;
    assert_eq!(location(&res), "/", "a password-only portal session");
    let page = text(&attacker, &f.server, "/security/totp").await;
    if page.contains(r#"id="totp-secret""#) {
        let secret = element_text(&page, "totp-secret");
        let form = [("csrf", field(&page, "csrf")), ("code", totp_code(&f.server, &secret))];
        attacker.post(f.server.url("/security/totp")).form(&form).send().await.unwrap();
        // With the factor they planted, the app's MFA policy is satisfied.
        f.server.advance(30);
        let b = browser_at(ATTACKER);
        let res = app_password(&f.server, &b, &f.client_id, "alice").await;
        if location(&res).starts_with("/login/mfa") {
            let res = second_factor(&f.server, &b, &location(&res), "totp", &totp_code(&f.server, &secret)).await;
            assert!(code_in(&res).is_none(), "the attacker got a code for the MFA-protected app: {:?}", res.headers().get("location"));
        }
    }
    assert!(
        latchkey::store::mfa::totp(&conn(&f.server), &user_id(&f.server, "alice")).unwrap().is_none(),
        "a password-only session from an unfamiliar network registered an authenticator"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn during_the_security_defaults_grace_an_attacker_registers_their_own_authenticator() {
    let f = Fixture::new().await;
    latchkey::store::policies::set_security_defaults(&conn(&f.server), true).unwrap();
    // alice's first sign-in, from home: asked to register, she skips (14 days of grace).
    let b = browser_at(HOME);
    let res = app_password(&f.server, &b, &f.client_id, "alice").await;
    let to = location(&res);
    assert!(to.starts_with("/mfa/setup?request="), "{to}");
    let page = text(&b, &f.server, &to).await;
    let res = b.post(f.server.url("/mfa/setup/skip")).form(&[("request", field(&page, "request")), ("csrf", field(&page, "csrf"))]).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some());

    // The attacker, from elsewhere, is (rightly) not offered registration at sign-in: the
    // password alone gets them in for the grace period…
    let attacker = browser_at(ATTACKER);
    let res = portal_password(&f.server, &attacker, "alice").await;
    assert_eq!(location(&res), "/", "no registration offered from an unfamiliar network");
    // …but that sign-in made their network "familiar", so the very next page offers it.
    let res = attacker.get(f.server.url("/security/totp")).send().await.unwrap();
    let to = res.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    if to.starts_with("/mfa/setup?request=") {
        register_totp_at_sign_in(&f.server, &attacker, &to).await;
    } else {
        let status = res.status();
        let page = res.text().await.unwrap();
        if page.contains(r#"id="totp-secret""#) {
            let secret = element_text(&page, "totp-secret");
            let form = [("csrf", field(&page, "csrf")), ("code", totp_code(&f.server, &secret))];
            attacker.post(f.server.url("/security/totp")).form(&form).send().await.unwrap();
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
            assert!(page.contains("Contact your administrator"));
        }
    }
    assert!(
        latchkey::store::mfa::totp(&conn(&f.server), &user_id(&f.server, "alice")).unwrap().is_none(),
        "registered from an unfamiliar network with a password alone; when the grace ends alice is locked out and the attacker holds her MFA"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn an_attackers_own_password_only_sign_in_does_not_make_their_network_familiar() {
    let f = Fixture::new().await;
    let res = app_password(&f.server, &browser_at(HOME), &f.client_id, "alice").await;
    assert!(code_in(&res).is_some(), "alice has signed in before, from home");
    put_template(&f.server, "all-mfa", State::On, |p| p.include_apps = Apps { all: false, apps: vec![f.client_id.clone()] });

    let res = app_password(&f.server, &browser_at(ATTACKER), &f.client_id, "alice").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "registration refused from the attacker's network");
    // A password-only success anywhere not covered by the MFA policy (here latchkey's portal)…
    let res = portal_password(&f.server, &browser_at(ATTACKER), "alice").await;
    assert_eq!(location(&res), "/");
    // …and the attacker's network now counts as one alice has used.
    let b = browser_at(ATTACKER);
    let res = app_password(&f.server, &b, &f.client_id, "alice").await;
    let to = res.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    if to.starts_with("/mfa/setup?request=") {
        let (_, res) = register_totp_at_sign_in(&f.server, &b, &to).await;
        assert!(code_in(&res).is_none(), "the attacker registered their factor at the MFA prompt and got a code: {:?}", res.headers().get("location"));
    }
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "still refused: {to}");
    f.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Recovery codes planted from a password-only session survive the victim's own registration
//    and are then a second factor for the attacker.

#[tokio::test]
async fn recovery_codes_planted_by_a_password_only_attacker_pass_mfa_after_the_victim_registers() {
    let f = Fixture::new().await;
    // alice has signed in before (from here).
    f.tokens().await;
    // The attacker signs in with alice's password (she has no method yet) and asks Security
    // info for recovery codes.
    let attacker = browser_at(ATTACKER);
    let res = portal_password(&f.server, &attacker, "alice").await;
    assert_eq!(location(&res), "/");
    // (Security info shows no forms to this session: the session's token is on My Apps.)
    let home = text(&attacker, &f.server, "/").await;
    let res = attacker.post(f.server.url("/security/recovery")).form(&[("csrf", field(&home, "csrf"))]).send().await.unwrap();
    let page = res.text().await.unwrap();
    let planted: Vec<String> = page.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_string()).collect();

    // Later alice registers her authenticator app herself…
    register_totp(&f.server, &f.browser).await;
    // …and the app requires MFA.
    put_template(&f.server, "all-mfa", State::On, |_| {});
    if let Some(code) = planted.first() {
        let b = browser_at(ATTACKER);
        let res = app_password(&f.server, &b, &f.client_id, "alice").await;
        let res = second_factor(&f.server, &b, &location(&res), "recovery", code).await;
        assert!(code_in(&res).is_none(), "a recovery code planted before alice registered passed MFA: {:?}", res.headers().get("location"));
    }
    assert!(planted.is_empty(), "a password-only session was given recovery codes: {planted:?}");
    f.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 3. A password alone points password reset at the attacker's mailbox, then reset clears the
//    admin's "confirmed compromised".

#[tokio::test]
async fn a_password_only_attacker_redirects_reset_to_their_mailbox_and_clears_user_risk() {
    let server = TestServer::spawn();
    let alice = server.add_user("alice");
    // The admin has seen the compromise: user risk high.
    latchkey::store::policies::set_user_risk(&conn(&server), &alice, Risk::High).unwrap();

    // The attacker: password only.
    let attacker = browser_at(ATTACKER);
    let res = portal_password(&server, &attacker, "alice").await;
    assert_eq!(location(&res), "/");
    let csrf = field(&text(&attacker, &server, "/").await, "csrf");
    let res = attacker.post(server.url("/security/email")).form(&[("csrf", csrf.as_str()), ("email", "mallory@evil.example")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a password-only session of an account at risk cannot set the reset address");

    // Self-service reset, verified by "her" e-mail, now the attacker's.
    let r = browser_at(ATTACKER);
    let start = text(&r, &server, "/reset").await;
    let res = r.post(server.url("/reset")).form(&[("csrf", field(&start, "csrf")), ("username", "alice".into())]).send().await.unwrap();
    let page = text(&r, &server, &location(&res)).await;
    let ids = [("id", field(&page, "id")), ("csrf", field(&page, "csrf"))];
    let page = r.post(server.url("/reset/email")).form(&ids).send().await.unwrap().text().await.unwrap();
    let mail = outbox_message(&server, "Your code:");
    if mail.contains("mallory@evil.example") {
        let code = six_digits_after(&mail, "Your code:");
        let form = [("id", field(&page, "id")), ("csrf", field(&page, "csrf")), ("code", code)];
        let res = r.post(server.url("/reset/email/verify")).form(&form).send().await.unwrap();
        let page = text(&r, &server, &location(&res)).await;
        let form = [
            ("id", field(&page, "id")),
            ("csrf", field(&page, "csrf")),
            ("new_password", "the attacker's own passphrase".to_string()),
            ("confirm_password", "the attacker's own passphrase".to_string()),
        ];
        r.post(server.url("/reset/password")).form(&form).send().await.unwrap();
    }
    let user = latchkey::store::users::by_id(&conn(&server), &alice).unwrap().unwrap();
    assert_eq!(latchkey::store::policies::user_risk(&conn(&server), &alice).unwrap(), Risk::High, "user risk cleared with a password alone");
    assert_eq!(user.email.as_deref(), Some("someone@example.com"), "the reset address was changed from a password-only session");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 4. A code minted from a session before a password change is redeemed after it: a new
//    refresh-token family outlives the change.

#[tokio::test]
async fn a_code_minted_before_a_password_change_is_not_redeemed_after_it() {
    let mut f = Fixture::new().await;
    f.tokens().await;
    let attacker = std::mem::replace(&mut f.browser, browser());
    // The attacker's session keeps a fresh code in stock (one a minute, each lives 60 s).
    let (verifier, challenge) = pkce();
    let res = authorize(&f.server, &attacker, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let stocked = query_param(&location(&res), "code").unwrap();

    // alice changes her password: every other session and token family ends.
    f.tokens().await;
    let res = change_own_password(&f.server, &f.browser, "an entirely new passphrase").await;
    assert_eq!(location(&res), "/");

    let (status, body) = redeem(&f.server, f.client(), &stocked, &verifier).await;
    if status == StatusCode::OK {
        let (s, b) = refresh(&f.server, f.client(), body["refresh_token"].as_str().unwrap()).await;
        assert_ne!(s, StatusCode::OK, "and the new family refreshes: {b}");
    }
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "tokens from an ended session: {body}");
    f.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Security info's e-mail confirmation mails any address, without limit.

#[tokio::test]
async fn security_info_does_not_send_unlimited_confirmation_mails_to_any_address() {
    let f = Fixture::new().await;
    f.tokens().await;
    let csrf = field(&text(&f.browser, &f.server, "/security").await, "csrf");
    for _ in 0..25 {
        f.browser.post(f.server.url("/security/email")).form(&[("csrf", csrf.as_str()), ("email", "victim@example.net")]).send().await.unwrap();
    }
    let sent = std::fs::read_dir(f.server.data_dir.join("outbox"))
        .unwrap()
        .filter(|e| std::fs::read_to_string(e.as_ref().unwrap().path()).unwrap().contains("victim@example.net"))
        .count();
    assert!(sent <= 10, "{sent} confirmation mails to one outside address in a few seconds");
    f.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. With SMTP, "E-mail me a code" takes as long as the mail server for accounts with an
//    address and no time for unknown names: reset enumerates accounts by timing.

#[tokio::test]
async fn reset_e_mail_timing_does_not_reveal_which_accounts_exist() {
    // A slow mail server: accepts, waits, hangs up.
    let smtp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_port = smtp.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in smtp.incoming().flatten() {
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(1500));
                drop(s);
            });
        }
    });
    let server = TestServer::spawn_with(|c| c.mail.smtp_url = serde_json::from_value(serde_json::json!(format!("smtp://127.0.0.1:{smtp_port}"))).unwrap());
    server.add_user("alice");
    let mut took = vec![];
    for name in ["nobody-here", "alice"] {
        let b = browser();
        let start = text(&b, &server, "/reset").await;
        let res = b.post(server.url("/reset")).form(&[("csrf", field(&start, "csrf")), ("username", name.to_string())]).send().await.unwrap();
        let page = text(&b, &server, &location(&res)).await;
        let t = std::time::Instant::now();
        b.post(server.url("/reset/email")).form(&[("id", field(&page, "id")), ("csrf", field(&page, "csrf"))]).send().await.unwrap();
        took.push(t.elapsed().as_millis() as i64);
    }
    assert!((took[1] - took[0]).abs() < 500, "unknown name {} ms, real account {} ms", took[0], took[1]);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Issue 11 §9: an https issuer gets HSTS and __Host- cookies.

#[tokio::test]
async fn an_https_issuer_sends_hsts_and_host_prefixed_cookies() {
    let server = TestServer::spawn_with(|c| c.server.issuer = c.server.issuer.replacen("http://", "https://", 1));
    let res = rp_http().get(server.url("/login")).header("x-forwarded-proto", "https").send().await.unwrap();
    let cookies: Vec<String> = res.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap().to_string()).collect();
    let hsts = res.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string());
    assert!(!cookies.is_empty());
    assert!(hsts.is_some(), "no Strict-Transport-Security with issuer {}", server.base); // present: this part holds
    assert!(cookies.iter().all(|c| c.starts_with("__Host-")), "{cookies:?}");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 9. Issue 11 §7: anonymous requests are bounded.

#[tokio::test]
async fn a_reset_username_is_length_limited_before_it_reaches_the_database() {
    let server = TestServer::spawn();
    let b = browser();
    let start = text(&b, &server, "/reset").await;
    let huge = "x".repeat(200_000);
    let res = b.post(server.url("/reset")).form(&[("csrf", field(&start, "csrf")), ("username", huge)]).send().await.unwrap();
    if res.status() == StatusCode::SEE_OTHER {
        let page = text(&b, &server, &location(&res)).await;
        for _ in 0..3 {
            let form = [("id", field(&page, "id")), ("csrf", field(&page, "csrf")), ("code", "000000".to_string())];
            b.post(server.url("/reset/totp")).form(&form).send().await.unwrap();
        }
    }
    let c = conn(&server);
    let longest_log: i64 = c.query_row("SELECT coalesce(max(length(username)), 0) FROM signin_log", [], |r| r.get(0)).unwrap();
    let longest_reset: i64 = c.query_row("SELECT coalesce(max(length(username)), 0) FROM reset_requests", [], |r| r.get(0)).unwrap_or(0);
    assert!(longest_log <= 256 && longest_reset <= 256, "stored usernames of {longest_log} (sign-in log) and {longest_reset} (reset) bytes");
    server.stop().await;
}

#[tokio::test]
async fn one_client_cannot_park_unbounded_pending_sign_ins() {
    let server = TestServer::spawn();
    let b = browser_at(ATTACKER);
    for _ in 0..300 {
        b.get(server.url("/login")).send().await.unwrap();
    }
    let open: i64 = conn(&server).query_row("SELECT count(*) FROM auth_requests", [], |r| r.get(0)).unwrap();
    assert!(open <= 100, "{open} pending sign-ins parked by one IP");
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 10. Bad input reaches a panic: the password grant slices a long username at byte 256.

#[tokio::test]
async fn a_long_multibyte_username_in_the_password_grant_is_an_answer_not_a_crash() {
    let server = TestServer::spawn();
    let (id, secret) = server.add_client("Mail client", &["password"], false);
    let username = format!("{}é", "a".repeat(255));
    let form = [("grant_type", "password"), ("username", username.as_str()), ("password", "x")];
    let res = rp_http().post(server.url("/token")).basic_auth(&id, secret.as_deref()).form(&form).send().await;
    match res {
        Ok(r) => assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", r.text().await.unwrap()),
        Err(e) => panic!("no answer at all: {e}"),
    }
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 11. A stolen session cookie (no password) changes the password: a step-up with a factor the
//     thief registered resets the session's auth_time, which the password change reads as
//     "the current password was just proven".

#[tokio::test]
async fn a_stolen_session_cookie_cannot_change_the_password_without_the_current_one() {
    let f = Fixture::new().await;
    f.tokens().await;
    // The thief copies alice's session cookie hours after she signed in (here: her browser).
    f.server.advance(4 * 3600);
    let thief = &f.browser;
    let secret = register_totp(&f.server, thief).await;
    f.server.advance(30);
    let res = thief.get(f.server.url("/security/verify")).send().await.unwrap();
    let res = second_factor(&f.server, thief, &location(&res), "totp", &totp_code(&f.server, &secret)).await;
    assert_eq!(location(&res), "/security");
    let res = thief.get(f.server.url("/password/change")).send().await.unwrap();
    let page = text(thief, &f.server, &location(&res)).await;
    let form = [
        ("request", field(&page, "request")),
        ("csrf", field(&page, "csrf")),
        ("current_password", "no idea".to_string()),
        ("new_password", "the thief's own passphrase".to_string()),
        ("confirm_password", "the thief's own passphrase".to_string()),
    ];
    let res = thief.post(f.server.url("/password/change")).form(&form).send().await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the password was changed without the current one: {status} {body}");
    f.server.stop().await;
}

/// The change form's "current password" is a password attempt like the sign-in page's: a copied
/// cookie of someone with no second factor buys no unlimited guesses, and every one is logged.
#[tokio::test]
async fn a_stolen_session_cookie_guessing_the_current_password_is_locked_out_and_logged() {
    let f = Fixture::new().await;
    f.tokens().await;
    let thief = &f.browser;
    let res = thief.get(f.server.url("/password/change")).send().await.unwrap();
    let page = text(thief, &f.server, &location(&res)).await;
    let attempt = |current: &str| {
        [
            ("request", field(&page, "request")),
            ("csrf", field(&page, "csrf")),
            ("current_password", current.to_string()),
            ("new_password", "the thief's own passphrase".to_string()),
            ("confirm_password", "the thief's own passphrase".to_string()),
        ]
    };
    for i in 0..10 {
        let res = thief.post(f.server.url("/password/change")).form(&attempt(&format!("guess {i}"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    // The right password now meets the lock, like the sign-in page's.
    let res = thief.post(f.server.url("/password/change")).form(&attempt(PASSWORD)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("Too many attempts"), "no lock after ten wrong guesses");
    let wrong: i64 = f
        .server
        .admin()
        .pool
        .get()
        .unwrap()
        .query_row("SELECT count(*) FROM signin_log WHERE username = 'alice' AND failure = 'wrong_password'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(wrong, 10, "every guess is in the sign-in log");
    f.server.stop().await;
}

/// A password change the person chooses asks for their second factor first, as any Security
/// info change does, unless it was used in the last 10 minutes: with a copied cookie and the
/// password alone, nobody sets the next one (and signs the owner out everywhere).
#[tokio::test]
async fn a_stolen_session_cookie_with_the_password_cannot_change_it_without_the_second_factor() {
    let server = TestServer::spawn();
    let (thief, _) = crate::admin::mfa_browser(&server, "alice", &[]).await;
    // Fresh from the code: the form, which then sits open past the ten minutes.
    let res = thief.get(server.url("/password/change")).send().await.unwrap();
    let to = location(&res);
    assert!(to.starts_with("/password/change?request="), "{to}");
    let page = text(&thief, &server, &to).await;
    server.advance(601);
    let form = [
        ("request", field(&page, "request")),
        ("csrf", field(&page, "csrf")),
        ("current_password", PASSWORD.to_string()),
        ("new_password", "the thief's own passphrase".to_string()),
        ("confirm_password", "the thief's own passphrase".to_string()),
    ];
    let res = thief.post(server.url("/password/change")).form(&form).send().await.unwrap();
    assert_eq!(location(&res), "/password/change", "the change was made without a fresh second factor");
    let res = thief.get(server.url("/password/change")).send().await.unwrap();
    assert!(location(&res).starts_with("/login/mfa?request="), "{}", location(&res));
    // The password is unchanged: the old one still signs in.
    let (_, challenge) = pkce();
    let (app, _) = server.add_client("App", &["authorization_code"], false);
    let b = browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &app, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    let res = submit_login(&server, &b, &page, "alice", PASSWORD).await;
    assert!(location(&res).starts_with("/login/mfa?request="), "{}", location(&res));
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 12. Lockout reveals accounts: a real account's failures never expire (and its lockouts keep
//     doubling), a made-up name's budget forgets them after a day.

async fn wrong_password_message(server: &TestServer, client_id: &str, name: &str) -> String {
    let b = browser_at(ATTACKER);
    let (_, challenge) = pkce();
    let res = b.get(good_auth_url(server, client_id, &challenge, &[])).send().await.unwrap();
    let page = login_page(server, &b, &location(&res)).await;
    let html = submit_login(server, &b, &page, name, "not the password").await.text().await.unwrap();
    element_text(&html, "login-error")
}

#[tokio::test]
async fn lockout_looks_the_same_for_a_real_and_a_made_up_name_a_day_later() {
    let f = Fixture::new().await;
    let threshold = latchkey::config::Config::load_from(None, []).unwrap().protection.lockout_threshold;
    for name in ["alice", "made-up-name"] {
        for _ in 0..threshold - 1 {
            wrong_password_message(&f.server, &f.client_id, name).await;
        }
    }
    f.server.advance(86_401);
    // The threshold-th wrong password trips a lock; the attempt after it shows the lock.
    wrong_password_message(&f.server, &f.client_id, "alice").await;
    wrong_password_message(&f.server, &f.client_id, "made-up-name").await;
    let real = wrong_password_message(&f.server, &f.client_id, "alice").await;
    let fake = wrong_password_message(&f.server, &f.client_id, "made-up-name").await;
    assert_eq!(real, fake, "one more wrong password a day later: the answer tells which name exists");
    f.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 13. A sign-in parked with the old password finishes after the password has changed.

#[tokio::test]
async fn a_sign_in_parked_with_the_old_password_does_not_finish_after_a_reset() {
    let f = Fixture::new().await;
    put_template(&f.server, "all-mfa", State::On, |_| {});
    // The attacker proves the (soon old) password and stops at the registration page.
    let attacker = browser_at(ATTACKER);
    let res = app_password(&f.server, &attacker, &f.client_id, "alice").await;
    let parked = location(&res);
    assert!(parked.starts_with("/mfa/setup?request="), "{parked}");
    let parked_page = text(&attacker, &f.server, &parked).await;
    let secret = element_text(&parked_page, "totp-secret");

    // alice resets her password with her e-mail: "ends every session and token".
    let r = browser_at(HOME);
    let start = text(&r, &f.server, "/reset").await;
    let res = r.post(f.server.url("/reset")).form(&[("csrf", field(&start, "csrf")), ("username", "alice".into())]).send().await.unwrap();
    let page = text(&r, &f.server, &location(&res)).await;
    let page =
        r.post(f.server.url("/reset/email")).form(&[("id", field(&page, "id")), ("csrf", field(&page, "csrf"))]).send().await.unwrap().text().await.unwrap();
    let code = six_digits_after(&outbox_message(&f.server, "Your code:"), "Your code:");
    let form = [("id", field(&page, "id")), ("csrf", field(&page, "csrf")), ("code", code)];
    let res = r.post(f.server.url("/reset/email/verify")).form(&form).send().await.unwrap();
    let page = text(&r, &f.server, &location(&res)).await;
    let form = [
        ("id", field(&page, "id")),
        ("csrf", field(&page, "csrf")),
        ("new_password", "an entirely new passphrase".to_string()),
        ("confirm_password", "an entirely new passphrase".to_string()),
    ];
    let res = r.post(f.server.url("/reset/password")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "reset done");

    // The attacker's parked sign-in goes on as if nothing had happened.
    let form = [("request", field(&parked_page, "request")), ("csrf", field(&parked_page, "csrf")), ("code", totp_code(&f.server, &secret))];
    let res = attacker.post(f.server.url("/mfa/setup")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the parked sign-in ended with the reset");
    assert!(res.text().await.unwrap().contains("This sign-in page has expired"));
    assert!(latchkey::store::mfa::totp(&conn(&f.server), &user_id(&f.server, "alice")).unwrap().is_none(), "nothing registered");
    f.server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 14. (Functional, found on the way) In the security-defaults grace, "skip" lasts one page: every
//     portal page asks again, so /security and /password/change cannot be reached.

#[tokio::test]
async fn skipping_registration_in_the_grace_period_lets_the_person_use_the_portal() {
    let f = Fixture::new().await;
    latchkey::store::policies::set_security_defaults(&conn(&f.server), true).unwrap();
    let b = browser_at(HOME);
    let res = portal_password(&f.server, &b, "alice").await;
    let page = text(&b, &f.server, &location(&res)).await;
    let res = b.post(f.server.url("/mfa/setup/skip")).form(&[("request", field(&page, "request")), ("csrf", field(&page, "csrf"))]).send().await.unwrap();
    assert_eq!(location(&res), "/");
    let res = b.get(f.server.url("/security")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "sent to {:?} again", res.headers().get("location"));
    f.server.stop().await;
}

/// A copied cookie whose second factor is minutes old, passing through a consent from the
/// thief's own network, proves nothing there: the network is not remembered as the person's
/// (it would share their home's lockout count and carry no unfamiliar-network risk).
#[tokio::test]
async fn a_consent_from_a_copied_cookie_does_not_make_the_thiefs_network_familiar() {
    let server = TestServer::spawn();
    let (b, _) = crate::admin::mfa_browser(&server, "alice", &[]).await;
    let (app, _) = server.add_client("Partner", &["authorization_code"], false);
    conn(&server).execute("UPDATE clients SET third_party = 1 WHERE id = ?1", [&app]).unwrap();
    let (_, challenge) = pkce();
    let res = b.get(good_auth_url(&server, &app, &challenge, &[])).header("x-forwarded-for", ATTACKER).send().await.unwrap();
    let to = location(&res);
    assert!(to.starts_with("/consent?request="), "{to}");
    let page = b.get(server.url(&to)).header("x-forwarded-for", ATTACKER).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("decision", "approve".into())];
    let res = b.post(server.url("/consent")).header("x-forwarded-for", ATTACKER).form(&form).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    let (networks, _) = latchkey::store::protection::history(&conn(&server), &user_id(&server, "alice")).unwrap();
    assert!(!networks.iter().any(|n| n.starts_with("203.0.113.")), "the thief's network was remembered: {networks:?}");
    server.stop().await;
}

/// Wrong passwords from elsewhere do not make the person's sign-in from home risky: five
/// guesses from anywhere must not keep someone without a second factor out (with "MFA for
/// risky sign-ins" on, a risky sign-in of theirs is refused).
#[tokio::test]
async fn guesses_from_elsewhere_do_not_make_a_sign_in_from_home_risky() {
    let f = Fixture::new().await;
    let res = app_password(&f.server, &browser_at(HOME), &f.client_id, "alice").await;
    assert!(code_in(&res).is_some(), "alice has signed in before, from home");
    put_template(&f.server, "risky-signins-mfa", State::On, |_| {});
    for i in 1..=5 {
        let b = browser_at(&format!("203.0.113.{i}"));
        let (_, challenge) = pkce();
        let res = b.get(good_auth_url(&f.server, &f.client_id, &challenge, &[])).send().await.unwrap();
        let page = login_page(&f.server, &b, &location(&res)).await;
        submit_login(&f.server, &b, &page, "alice", "a wrong guess").await;
    }
    let res = app_password(&f.server, &browser_at(HOME), &f.client_id, "alice").await;
    assert!(code_in(&res).is_some(), "alice was kept out at home: {} {:?}", res.status(), res.headers().get("location"));
    // From a network of the guesses, the same password is a risky sign-in.
    let res = app_password(&f.server, &browser_at("203.0.113.9"), &f.client_id, "alice").await;
    assert!(code_in(&res).is_none(), "a sign-in amid the guesses passed as safe");
    f.server.stop().await;
}
