//! Identity protection and self-service password reset over HTTP.

use crate::common::*;
use latchkey::policy::model::{Risk, State};
use reqwest::StatusCode;

/// A password attempt for `user` from `ip` (through the trusted loopback proxy), for `client_id`.
async fn attempt(server: &TestServer, client_id: &str, user: &str, password: &str, ip: &str) -> reqwest::Response {
    let b = browser();
    let (_, challenge) = pkce();
    let res = b.get(good_auth_url(server, client_id, &challenge, &[])).header("x-forwarded-for", ip).send().await.unwrap();
    let page = b.get(server.url(&location(&res))).header("x-forwarded-for", ip).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", user.to_string()), ("password", password.to_string())];
    b.post(server.url("/login")).header("x-forwarded-for", ip).form(&form).send().await.unwrap()
}

fn signed_in(res: &reqwest::Response) -> bool {
    res.status() == StatusCode::SEE_OTHER && query_param(&location(res), "code").is_some()
}

#[tokio::test]
async fn a_password_spray_from_one_ip_raises_sign_in_risk_and_a_policy_then_demands_mfa() {
    let f = Fixture::new().await;
    let (_, _, mut p) = latchkey::policy::templates::all().into_iter().find(|(k, _, _)| *k == "risky-signins-mfa").unwrap();
    p.id = "risky".into();
    p.state = State::On;
    latchkey::store::policies::save(&f.server.admin().pool.get().unwrap(), &p, 0).unwrap();
    assert!(signed_in(&attempt(&f.server, &f.client_id, "alice", PASSWORD, "198.51.100.9").await), "no risk yet");
    for victim in ["bob", "carol", "dave", "erin", "frank"] {
        let res = attempt(&f.server, &f.client_id, victim, "Winter2026!", "198.51.100.9").await;
        assert!(res.text().await.unwrap().contains("Wrong username or password."));
    }
    let res = attempt(&f.server, &f.client_id, "alice", PASSWORD, "198.51.100.9").await;
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN, "the spray made this sign-in risky, and alice has no method to prove herself with");
    // From elsewhere (her provider's network, another address), alice is not caught by it.
    assert!(signed_in(&attempt(&f.server, &f.client_id, "alice", PASSWORD, "198.51.7.7").await));
    let rows = latchkey::store::signins::recent(&f.server.admin().pool.get().unwrap(), 50).unwrap();
    let risky = rows.iter().find(|r| r.result == "success" && r.context.as_deref().is_some_and(|c| c.contains("password spray")));
    assert!(risky.is_none(), "the risky sign-in did not succeed without MFA");
    f.server.stop().await;
}

#[tokio::test]
async fn smart_lockout_grows_and_never_locks_the_real_user_out_from_a_familiar_network() {
    let f = Fixture::new().await;
    assert!(signed_in(&attempt(&f.server, &f.client_id, "alice", PASSWORD, "127.0.0.1").await), "127.0.0.0/24 is now familiar");
    let attacker = "203.0.113.66";
    for _ in 0..10 {
        attempt(&f.server, &f.client_id, "alice", "guess guess guess", attacker).await;
    }
    let res = attempt(&f.server, &f.client_id, "alice", PASSWORD, attacker).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Too many attempts. Try again in 1 minute."), "locked, and told how long to wait");
    assert!(signed_in(&attempt(&f.server, &f.client_id, "alice", PASSWORD, "127.0.0.1").await), "the real user is not locked out");
    f.server.advance(61);
    assert!(signed_in(&attempt(&f.server, &f.client_id, "alice", PASSWORD, attacker).await), "the first lockout lasts 60 s");
    // (That success made the attacker's network familiar; the next attack comes from elsewhere.)
    let attacker = "192.0.2.200";
    for _ in 0..10 {
        attempt(&f.server, &f.client_id, "alice", "guess again!!", attacker).await;
    }
    f.server.advance(61);
    assert!(!signed_in(&attempt(&f.server, &f.client_id, "alice", PASSWORD, attacker).await), "the second lasts 120 s");
    f.server.advance(60);
    assert!(signed_in(&attempt(&f.server, &f.client_id, "alice", PASSWORD, attacker).await));
    let log = latchkey::store::signins::recent(&f.server.admin().pool.get().unwrap(), 30).unwrap();
    assert!(log.iter().any(|r| r.reason.as_deref().is_some_and(|x| x.starts_with("account locked (smart lockout)"))), "the log says what happened");
    f.server.stop().await;
}

#[tokio::test]
async fn banned_and_breached_passwords_are_refused_with_the_reason_and_a_breached_one_in_use_raises_user_risk() {
    let mut f = Fixture::new().await;
    f.tokens().await;
    let page = f.browser.get(f.server.url("/password/change")).send().await.unwrap();
    let page = f.browser.get(f.server.url(&location(&page))).send().await.unwrap().text().await.unwrap();
    for (new, why) in [("Password123", "too common"), ("I love Latchkey a lot", "banned in this organisation"), (BREACHED_PASSWORD, "breached passwords")] {
        let form =
            [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("new_password", new.to_string()), ("confirm_password", new.to_string())];
        let html = f.browser.post(f.server.url("/password/change")).form(&form).send().await.unwrap().text().await.unwrap();
        assert!(element_text(&html, "password-error").contains(why), "{new}: {html}");
    }
    // Someone whose current password is in the breached list: user risk rises when they use it.
    let conn = f.server.admin().pool.get().unwrap();
    let bob = latchkey::store::users::by_username(&conn, "alice").unwrap().unwrap();
    let hash = f.server.admin().passwords.hash(BREACHED_PASSWORD);
    latchkey::store::users::set_password(&conn, &bob.id, &hash, 0, false).unwrap();
    f.browser = browser();
    assert!(signed_in(&attempt(&f.server, &f.client_id, "alice", BREACHED_PASSWORD, "127.0.0.1").await));
    assert_eq!(latchkey::store::policies::user_risk(&conn, &bob.id).unwrap(), Risk::High, "leaked credentials");
    f.server.stop().await;
}

async fn start_reset(server: &TestServer, b: &reqwest::Client, username: &str) -> reqwest::Response {
    let page = b.get(server.url("/reset")).send().await.unwrap().text().await.unwrap();
    b.post(server.url("/reset")).form(&[("csrf", field(&page, "csrf")), ("username", username.to_string())]).send().await.unwrap()
}

#[tokio::test]
async fn self_service_reset_with_an_authenticator_code_revokes_old_refresh_tokens() {
    let mut f = Fixture::new().await;
    let t = f.tokens().await;
    let secret = register_totp(&f.server, &f.browser).await;
    f.server.advance(30);
    f.browser = browser();
    let res = start_reset(&f.server, &f.browser, "alice").await;
    let page = f.browser.get(f.server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    let id = field(&page, "id");
    let form = [("id", id.clone()), ("csrf", field(&page, "csrf")), ("code", totp_code(&f.server, &secret))];
    let res = f.browser.post(f.server.url("/reset/totp")).form(&form).send().await.unwrap();
    assert_eq!(location(&res), format!("/reset/password?id={id}"));
    let page = f.browser.get(f.server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    let form = [("id", id.clone()), ("csrf", field(&page, "csrf")), ("new_password", "Password123".into()), ("confirm_password", "Password123".into())];
    let html = f.browser.post(f.server.url("/reset/password")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("too common"));
    // The current password is not a new one.
    let form = [("id", id.clone()), ("csrf", field(&page, "csrf")), ("new_password", PASSWORD.into()), ("confirm_password", PASSWORD.into())];
    let html = f.browser.post(f.server.url("/reset/password")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("different from your current one"), "{html}");
    let form = [("id", id), ("csrf", field(&page, "csrf")), ("new_password", "a brand new phrase".into()), ("confirm_password", "a brand new phrase".into())];
    let html = f.browser.post(f.server.url("/reset/password")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Your password has been changed"));
    let (status, body) = refresh(&f.server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "old refresh tokens are dead");
    let alice = latchkey::store::users::by_username(&f.server.admin().pool.get().unwrap(), "alice").unwrap().unwrap();
    let audit = latchkey::store::mfa::audit_for_user(&f.server.admin().pool.get().unwrap(), &alice.id).unwrap();
    assert!(audit.iter().any(|a| a.action == "password_reset"));
    f.server.stop().await;
}

#[tokio::test]
async fn password_reset_answers_the_same_for_unknown_accounts_and_is_rate_limited() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let b = browser();
    let known = start_reset(&server, &b, "alice").await;
    let unknown = start_reset(&server, &b, "nobody").await;
    assert_eq!(known.status(), unknown.status());
    let known_page = b.get(server.url(&location(&known))).send().await.unwrap().text().await.unwrap();
    let unknown_page = b.get(server.url(&location(&unknown))).send().await.unwrap().text().await.unwrap();
    let strip = |p: &str| p.replace(&field(p, "id"), "ID").replace(&field(p, "csrf"), "CSRF").replace("alice", "NAME").replace("nobody", "NAME");
    assert_eq!(strip(&known_page), strip(&unknown_page), "the same page either way");
    let send = |page: &str| [("id", field(page, "id")), ("csrf", field(page, "csrf"))];
    let a = b.post(server.url("/reset/email")).form(&send(&known_page)).send().await.unwrap().text().await.unwrap();
    let n = b.post(server.url("/reset/email")).form(&send(&unknown_page)).send().await.unwrap().text().await.unwrap();
    assert_eq!(strip(&a), strip(&n));
    for _ in 0..3 {
        start_reset(&server, &b, "alice").await;
    }
    assert_eq!(start_reset(&server, &b, "alice").await.status(), StatusCode::SEE_OTHER, "the fifth in 15 minutes is still fine");
    let res = start_reset(&server, &b, "alice").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The form needs its token: a cross-site POST without the cookie is refused.
    let res = browser().post(server.url("/reset")).form(&[("csrf", "x"), ("username", "alice")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

fn six_digits_after(text: &str, marker: &str) -> String {
    text.split(marker).nth(1).unwrap().trim_start().chars().take(6).collect()
}

#[tokio::test]
async fn a_user_registers_a_reset_address_and_an_admin_reset_needs_two_methods() {
    let server = TestServer::spawn();
    let (b, csrf) = crate::admin::mfa_browser(&server, "root", &[latchkey::store::directory::Role::GlobalAdmin]).await;
    let res = b.post(server.url("/security/email")).form(&[("csrf", csrf.as_str()), ("email", "root@example.org")]).send().await.unwrap();
    assert_eq!(location(&res), "/security");
    let code = six_digits_after(&outbox_message(&server, "Your confirmation code:"), "Your confirmation code:");
    let res = b.post(server.url("/security/email/confirm")).form(&[("csrf", csrf.as_str()), ("code", "000000")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "a wrong code changes nothing");
    b.post(server.url("/security/email/confirm")).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send().await.unwrap();
    let page = b.get(server.url("/security")).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&page, "reset-email"), "root@example.org");
    // A confirmation code allows five tries, then it is gone.
    b.post(server.url("/security/email")).form(&[("csrf", csrf.as_str()), ("email", "other@example.org")]).send().await.unwrap();
    let code = six_digits_after(&outbox_message(&server, "Your confirmation code:"), "Your confirmation code:");
    for _ in 0..5 {
        b.post(server.url("/security/email/confirm")).form(&[("csrf", csrf.as_str()), ("code", "000000")]).send().await.unwrap();
    }
    let html =
        b.post(server.url("/security/email/confirm")).form(&[("csrf", csrf.as_str()), ("code", code.as_str())]).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("The code has expired"), "{html}");
    let page = b.get(server.url("/security")).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&page, "reset-email"), "root@example.org", "unchanged");

    // An administrator's reset: one method is not enough.
    let r = browser();
    let res = start_reset(&server, &r, "root").await;
    let page = r.get(server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    // Nothing proven yet: the page is the one anyone gets, admin or not, existing or not.
    let plain = |p: &str| p.replace(&field(p, "id"), "").replace(&field(p, "csrf"), "").replace("root", "someone");
    let someone = browser();
    let res = start_reset(&server, &someone, "someone").await;
    let other = someone.get(server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    assert_eq!(plain(&page), plain(&other), "an administrator's reset page reveals nothing before the first method");
    assert!(!page.contains("verified-count") && !page.contains("two methods"));
    let ids = |p: &str| [("id", field(p, "id")), ("csrf", field(p, "csrf"))];
    let page = r.post(server.url("/reset/email")).form(&ids(&page)).send().await.unwrap().text().await.unwrap();
    let code = six_digits_after(&outbox_message(&server, "Your code:"), "Your code:");
    let mut form = ids(&page).to_vec();
    form.push(("code", code));
    let page = r.post(server.url("/reset/email/verify")).form(&form).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&page, "verified-count"), "1 of 2", "still the authenticator app to go");
    let res = r.get(server.url(&format!("/reset/password?id={}", field(&page, "id")))).send().await.unwrap();
    assert!(location(&res).starts_with("/reset/verify"), "the new-password page waits for the second method");
    server.stop().await;
}
