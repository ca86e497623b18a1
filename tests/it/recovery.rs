//! Account recovery and credential hygiene, attacked end to end: reset codes that can't be
//! guessed, secrets that can't be planted, sessions that end with a password change, resets
//! that reveal nothing and cannot bomb a mailbox, lockouts people understand.

use crate::common::*;
use reqwest::StatusCode;

fn conn(server: &TestServer) -> latchkey::store::Conn {
    server.admin().pool.get().unwrap()
}

fn user_id(server: &TestServer, username: &str) -> String {
    latchkey::store::users::by_username(&conn(server), username).unwrap().unwrap().id
}

async fn start_reset(server: &TestServer, b: &reqwest::Client, username: &str) -> reqwest::Response {
    let page = b.get(server.url("/reset")).send().await.unwrap().text().await.unwrap();
    b.post(server.url("/reset")).form(&[("csrf", field(&page, "csrf")), ("username", username.to_string())]).send().await.unwrap()
}

/// The verification page of a new reset for `username` (or the answer, when refused).
async fn reset_page(server: &TestServer, b: &reqwest::Client, username: &str) -> Result<String, reqwest::Response> {
    let res = start_reset(server, b, username).await;
    if res.status() != StatusCode::SEE_OTHER {
        return Err(res);
    }
    Ok(b.get(server.url(&location(&res))).send().await.unwrap().text().await.unwrap())
}

async fn post_code(server: &TestServer, b: &reqwest::Client, page: &str, path: &str, code: &str) -> reqwest::Response {
    let form = [("id", field(page, "id")), ("csrf", field(page, "csrf")), ("code", code.to_string())];
    b.post(server.url(path)).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn reset_codes_cannot_be_guessed_by_starting_one_reset_after_another() {
    let mut f = Fixture::new().await;
    f.tokens().await;
    let secret = register_totp(&f.server, &f.browser).await;
    conn(&f.server).execute("UPDATE users SET email = 'alice@example.com', email_verified = 1 WHERE username = 'alice'", []).unwrap();
    f.browser = browser();
    // Before: each reset allowed five wrong codes and the fifth deleted the row, so the count
    // started again. Now wrong codes spend a budget of the account that no reset gives back.
    let mut wrong_in_reset = 0;
    let mut stopped = false;
    for _ in 0..20 {
        match reset_page(&f.server, &f.browser, "alice").await {
            Ok(page) => {
                let html = post_code(&f.server, &f.browser, &page, "/reset/totp", "000000").await.text().await.unwrap();
                if html.contains("Too many attempts. Try again in") {
                    stopped = true;
                    break;
                }
                wrong_in_reset += 1;
            }
            Err(res) => {
                assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
                assert!(res.text().await.unwrap().contains("Try again in"));
                stopped = true;
                break;
            }
        }
    }
    assert!(stopped && wrong_in_reset <= 5, "after a handful of wrong codes, not hundreds: {wrong_in_reset}");
    // The authenticator's budget is one per account, shared with sign-in: an attacker who also
    // has the password gets only what is left of it there.
    let right = totp_code(&f.server, &secret);
    let (_, challenge) = pkce();
    let b = browser();
    let res = authorize(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let login = login_page(&f.server, &b, &location(&res)).await;
    let to = location(&submit_login(&f.server, &b, &login, "alice", PASSWORD).await);
    let page = b.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let mut wrong_at_sign_in = 0;
    loop {
        let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("method", "totp".into()), ("code", "000000".to_string())];
        let html = b.post(f.server.url("/login/mfa")).form(&form).send().await.unwrap().text().await.unwrap();
        if html.contains("Too many wrong codes. Try again in") {
            break;
        }
        wrong_at_sign_in += 1;
        assert!(wrong_at_sign_in <= 5);
    }
    assert_eq!(wrong_in_reset + wrong_at_sign_in, 5, "five wrong authenticator codes in all, wherever they were tried");
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("method", "totp".into()), ("code", right)];
    let html = b.post(f.server.url("/login/mfa")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Too many wrong codes. Try again in"), "even the right code waits: {html}");
    // The person is told, and the sign-in log shows it.
    assert!(outbox_message(&f.server, "Too many password reset attempts").contains("To: alice@example.com"));
    let log = latchkey::store::signins::recent(&conn(&f.server), 50).unwrap();
    assert!(log.iter().any(|r| r.reason.as_deref().is_some_and(|x| x.starts_with("password reset paused"))));
    // The pause ends, longer each time; the admin can also lift it ("Unlock").
    f.server.advance(16 * 60);
    assert!(reset_page(&f.server, &f.browser, "alice").await.is_ok());
    f.server.stop().await;
}

#[tokio::test]
async fn reset_limits_look_the_same_for_an_account_that_does_not_exist() {
    let f = Fixture::new().await;
    let mut answers = vec![];
    for name in ["alice", "nobody-here"] {
        let b = browser();
        let mut seq = vec![];
        for _ in 0..7 {
            match reset_page(&f.server, &b, name).await {
                Ok(page) => seq.push(post_code(&f.server, &b, &page, "/reset/totp", "000000").await.status().as_u16()),
                Err(res) => seq.push(res.status().as_u16()),
            }
        }
        answers.push(seq);
    }
    assert_eq!(answers[0], answers[1], "the same statuses, in the same order");
    assert!(answers[0].contains(&429), "{:?}", answers[0]);
    f.server.stop().await;
}

#[tokio::test]
async fn an_authenticator_secret_planted_by_an_attacker_is_never_shown_to_the_victim() {
    let mut f = Fixture::new().await;
    // The attacker once had alice's password and opened the registration page…
    f.tokens().await;
    let attacker_page = f.browser.get(f.server.url("/security/totp")).send().await.unwrap().text().await.unwrap();
    let planted = element_text(&attacker_page, "totp-secret");
    // …alice, later, in her own session, gets a secret of her own.
    let attacker = std::mem::replace(&mut f.browser, browser());
    f.tokens().await;
    let hers = element_text(&f.browser.get(f.server.url("/security/totp")).send().await.unwrap().text().await.unwrap(), "totp-secret");
    assert_ne!(planted, hers, "each enrolment has its own secret");
    let again = element_text(&f.browser.get(f.server.url("/security/totp")).send().await.unwrap().text().await.unwrap(), "totp-secret");
    assert_eq!(hers, again, "the same secret within her enrolment");
    let page = f.browser.get(f.server.url("/security/totp")).send().await.unwrap().text().await.unwrap();
    let form = [("csrf", field(&page, "csrf")), ("code", totp_code(&f.server, &hers))];
    f.browser.post(f.server.url("/security/totp")).form(&form).send().await.unwrap();
    let stored = latchkey::store::mfa::totp(&conn(&f.server), &user_id(&f.server, "alice")).unwrap().unwrap();
    assert!(latchkey::crypto::Sealer::is_sealed(&stored.secret), "encrypted at rest");
    // The page shows the key in groups of four.
    assert_eq!(f.server.admin().sealer.open(&stored.secret).unwrap(), hers.replace(' ', ""));
    // The attacker cannot confirm theirs now either: nothing is overwritten.
    f.server.advance(31);
    let form = [("csrf", field(&attacker_page, "csrf")), ("code", totp_code(&f.server, &planted))];
    let res = attacker.post(f.server.url("/security/totp")).form(&form).send().await.unwrap();
    let answer = res.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(res.status() != StatusCode::SEE_OTHER || answer.starts_with("/login/mfa?request="), "not registered: sent to her second factor first ({answer})");
    let stored = latchkey::store::mfa::totp(&conn(&f.server), &user_id(&f.server, "alice")).unwrap().unwrap();
    assert_eq!(f.server.admin().sealer.open(&stored.secret).unwrap(), hers.replace(' ', ""), "her method is unchanged");
    // The planted secret is no key to her account at reset.
    let b = browser();
    let page = reset_page(&f.server, &b, "alice").await.unwrap();
    let html = post_code(&f.server, &b, &page, "/reset/totp", &totp_code(&f.server, &planted)).await.text().await.unwrap();
    assert!(html.contains("That code is not correct."), "{html}");
    f.server.stop().await;
}

#[tokio::test]
async fn an_unconfirmed_authenticator_secret_expires_after_ten_minutes() {
    let f = Fixture::new().await;
    f.tokens().await;
    let page = f.browser.get(f.server.url("/security/totp")).send().await.unwrap().text().await.unwrap();
    let secret = element_text(&page, "totp-secret");
    f.server.advance(601);
    let form = [("csrf", field(&page, "csrf")), ("code", totp_code(&f.server, &secret))];
    let html = f.browser.post(f.server.url("/security/totp")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("That code is not correct."), "{html}");
    assert!(latchkey::store::mfa::totp(&conn(&f.server), &user_id(&f.server, "alice")).unwrap().is_none(), "nothing stored");
    assert_ne!(element_text(&html, "totp-secret"), secret, "a new enrolment, with a new secret");
    f.server.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_the_attackers_session_refresh_token_and_access_token() {
    let mut f = Fixture::new().await;
    let stolen = f.tokens().await;
    let attacker = std::mem::replace(&mut f.browser, browser());
    f.tokens().await;
    // alice changes her password from her own session.
    let res = change_own_password(&f.server, &f.browser, "an entirely new passphrase").await;
    assert_eq!(location(&res), "/");
    // Her own session goes on.
    let home = f.browser.get(f.server.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("signed-in-user"), "{home}");
    // The attacker's session signs in nowhere any more…
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &attacker, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    assert!(location(&res).starts_with("/login?request="), "{}", location(&res));
    // …their refresh token is dead, and so is their access token.
    let (status, body) = refresh(&f.server, f.client(), stolen["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let access = stolen["access_token"].as_str().unwrap();
    assert_eq!(introspect(&f.server, f.client(), access).await["active"], false);
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    f.server.stop().await;
}

#[tokio::test]
async fn twenty_five_clicks_send_at_most_three_codes_in_one_reset() {
    let f = Fixture::new().await;
    conn(&f.server).execute("UPDATE users SET email = 'alice@example.com', email_verified = 1 WHERE username = 'alice'", []).unwrap();
    let b = browser();
    let page = reset_page(&f.server, &b, "alice").await.unwrap();
    let form = [("id", field(&page, "id")), ("csrf", field(&page, "csrf"))];
    let mut last = String::new();
    for click in 0..25 {
        last = b.post(f.server.url("/reset/email")).form(&form).send().await.unwrap().text().await.unwrap();
        if click < 4 {
            f.server.advance(61);
        }
    }
    let outbox = f.server.data_dir.join("outbox");
    let sent = std::fs::read_dir(&outbox).unwrap().filter(|e| std::fs::read_to_string(e.as_ref().unwrap().path()).unwrap().contains("Your code:")).count();
    assert_eq!(sent, 3, "three codes per reset");
    assert!(element_text(&last, "email-cooldown").contains("No more codes"), "{last}");
    // A second click within a minute is told when it may ask again.
    let page = reset_page(&f.server, &b, "alice").await.unwrap();
    let form = [("id", field(&page, "id")), ("csrf", field(&page, "csrf"))];
    b.post(f.server.url("/reset/email")).form(&form).send().await.unwrap();
    let html = b.post(f.server.url("/reset/email")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("You can ask for another in"), "{html}");
    assert!(element_text(&html, "email-cooldown").contains("seconds"), "the cooldown is visible");
    f.server.stop().await;
}

#[tokio::test]
async fn lockout_says_how_long_to_wait_the_same_for_made_up_names_and_an_admin_can_unlock() {
    let f = Fixture::new().await;
    let threshold = latchkey::config::Config::load_from(None, []).unwrap().protection.lockout_threshold;
    let mut texts = vec![];
    for name in ["alice", "made-up-name"] {
        for _ in 0..threshold {
            let b = browser();
            let (_, challenge) = pkce();
            let res = authorize(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
            let page = login_page(&f.server, &b, &location(&res)).await;
            submit_login(&f.server, &b, &page, name, "not the password").await;
        }
        let b = browser();
        let (_, challenge) = pkce();
        let res = authorize(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
        let page = login_page(&f.server, &b, &location(&res)).await;
        let html = submit_login(&f.server, &b, &page, name, PASSWORD).await.text().await.unwrap();
        texts.push(element_text(&html, "login-error"));
    }
    assert!(texts[0].starts_with("Too many attempts. Try again in"), "{texts:?}");
    assert_eq!(texts[0], texts[1], "the same text for an account that does not exist");
    // The admin sees the lock and lifts it; the audit log has both events.
    let (admin, csrf) = crate::admin::mfa_browser(&f.server, "root", &[latchkey::store::directory::Role::GlobalAdmin]).await;
    let alice = user_id(&f.server, "alice");
    let page = admin.get(f.server.url(&format!("/admin/users/{alice}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("smart lockout") && page.contains("locked until"), "{page}");
    let res = admin.post(f.server.url(&format!("/admin/users/{alice}/unlock"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = admin.get(f.server.url(&format!("/admin/users/{alice}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Nothing is locked."));
    let audit = latchkey::store::mfa::audit_for_user(&conn(&f.server), &alice).unwrap();
    assert!(audit.iter().any(|a| a.action == "user_locked"), "{audit:?}");
    let (_, challenge) = pkce();
    let b = browser();
    let to = sign_in(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &challenge, &[]), "alice").await;
    assert!(query_param(&to, "code").is_some(), "unlocked: {to}");
    f.server.stop().await;
}

#[tokio::test]
async fn secrets_at_rest_are_encrypted_and_old_plaintext_totp_secrets_still_verify_after_a_restart() {
    let f = Fixture::new().await;
    // An installation from before encryption at rest: a plaintext secret and a plaintext key.
    let alice = user_id(&f.server, "alice");
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    conn(&f.server).execute("INSERT INTO totp_secrets (user_id, secret, confirmed, created_at) VALUES (?1, ?2, 1, 0)", [&alice, secret]).unwrap();
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let pkey = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let pem = String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let (kid, _) = latchkey::oidc::keys::public_jwk(&pkey, "ES256").unwrap();
    conn(&f.server)
        .execute("INSERT INTO signing_keys (kid, alg, private_pem, encrypted, created_at, retired_at) VALUES (?1, 'ES256', ?2, 0, 0, 1)", [&kid, &pem])
        .unwrap();
    let port = f.server.port;
    let dir = f.server.stop().await.unwrap();
    if !on_postgres() {
        assert!(String::from_utf8_lossy(&std::fs::read(dir.path().join("latchkey.db")).unwrap()).contains("BEGIN PRIVATE KEY") || wal_has_key(dir.path()));
    }
    // A start encrypts both.
    let server = TestServer::spawn_at(dir.path(), port);
    let stored = latchkey::store::mfa::totp(&conn(&server), &alice).unwrap().unwrap();
    assert!(latchkey::crypto::Sealer::is_sealed(&stored.secret), "migrated on start");
    let unencrypted: i64 =
        conn(&server).query_row("SELECT count(*) FROM signing_keys WHERE encrypted = 0 OR private_pem LIKE '%BEGIN PRIVATE KEY%'", [], |r| r.get(0)).unwrap();
    assert_eq!(unencrypted, 0, "every signing key encrypted");
    // alice's authenticator still works.
    let b = browser();
    let (client_id, _) = server.add_client("App 2", &[], false);
    let (_, challenge) = pkce();
    let res = authorize(&server, &b, &good_auth_url(&server, &client_id, &challenge, &[])).await;
    let login = login_page(&server, &b, &location(&res)).await;
    let to = location(&submit_login(&server, &b, &login, "alice", PASSWORD).await);
    assert!(to.starts_with("/login/mfa"), "{to}");
    let page = b.get(server.url(&to)).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("method", "totp".into()), ("code", totp_code(&server, secret))];
    let res = b.post(server.url("/login/mfa")).form(&form).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    server.stop().await;
    drop(dir);
}

/// Whether the write-ahead log still holds a plaintext private key (before a checkpoint).
fn wal_has_key(dir: &std::path::Path) -> bool {
    std::fs::read(dir.join("latchkey.db-wal")).is_ok_and(|w| String::from_utf8_lossy(&w).contains("BEGIN PRIVATE KEY"))
}

#[tokio::test]
async fn a_password_change_ends_a_copy_of_the_changing_browsers_own_session_cookie() {
    let f = Fixture::new().await;
    let res = f.browser.get(f.server.url("/login")).send().await.unwrap();
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let res = submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await;
    let copied = session_cookie(&res);
    let thief = |path: &'static str| rp_http().get(f.server.url(path)).header("cookie", &copied).send();
    assert!(thief("/").await.unwrap().text().await.unwrap().contains("signed-in-user"), "the copy works, before");
    // The thief mints a code by single sign-on just before the change…
    let (verifier, challenge) = pkce();
    let res = rp_http().get(good_auth_url(&f.server, &f.client_id, &challenge, &[])).header("cookie", &copied).send().await.unwrap();
    let stocked = query_param(&location(&res), "code").unwrap_or_else(|| panic!("a code by SSO: {}", location(&res)));
    // alice, fearing exactly that, changes her password in the same browser.
    let res = change_own_password(&f.server, &f.browser, "an entirely new passphrase").await;
    assert_eq!(location(&res), "/");
    assert!(!res.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with(&format!("{copied};"))), "a new cookie value");
    // Her browser goes on under the new cookie; the copy of the old one is signed out.
    let home = f.browser.get(f.server.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("signed-in-user"), "{home}");
    let page = thief("/").await.unwrap().text().await.unwrap();
    assert!(!page.contains("signed-in-user"), "the copy is signed out: {page}");
    // …and it died with the old password.
    let (status, body) = redeem(&f.server, f.client(), &stocked, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let res = thief("/security").await.unwrap();
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    f.server.stop().await;
}
