//! An outside security review of My Apps, consent, single sign-out and languages: each test
//! is one attack (or fault) that worked before its fix.

use crate::common::*;
use latchkey::store::directory::Role;
use reqwest::StatusCode;
use std::io::Read;
use std::time::{Duration, Instant};

/// Where a redirect really goes, as a browser reads `Location` (the URL parser drops tabs and
/// newlines before resolving against the page).
fn resolved(server: &TestServer, location: &str) -> url::Url {
    let cleaned: String = location.chars().filter(|c| !matches!(c, '\t' | '\r' | '\n')).collect();
    url::Url::parse(&server.base).unwrap().join(&cleaned).unwrap()
}

/// F1: the language switch is an open redirect: `return_to=/<TAB>/evil.example` passes
/// `local()` (which refuses `//`, `\`, CR and LF but not TAB) and a browser, dropping the tab,
/// goes to `//evil.example`. The form has no CSRF token, so any site can send people there.
#[tokio::test]
async fn language_switch_is_not_an_open_redirect() {
    let server = TestServer::spawn();
    for to in ["/\t/evil.example/phish", "/\t\t/evil.example/", "/\u{0b}/evil.example/"] {
        let res = browser().post(server.url("/lang")).form(&[("lang", "en"), ("return_to", to)]).send().await.unwrap();
        assert!(res.status().is_redirection() || res.status() == StatusCode::BAD_REQUEST, "{to:?}: {}", res.status());
        if res.status().is_redirection() {
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            let dest = resolved(&server, &loc);
            assert_eq!(dest.host_str(), Some("127.0.0.1"), "return_to {to:?} sent the browser to {dest} (Location {loc:?})");
        }
    }
    server.stop().await;
}

/// F5: a control character in `return_to` is a 500 (the Location header cannot be built).
#[tokio::test]
async fn language_switch_with_a_control_character_is_not_a_500() {
    let server = TestServer::spawn();
    for to in ["/\u{1}", "/\u{7f}", "/a\u{0}b"] {
        let res = browser().post(server.url("/lang")).form(&[("lang", "ja"), ("return_to", to)]).send().await.unwrap();
        assert_ne!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "return_to {to:?}");
    }
    server.stop().await;
}

/// F2: an application administrator makes latchkey's back-channel worker POST to loopback,
/// link-local (cloud metadata) and private addresses: SSRF, with the audit log as an oracle
/// ("could not connect" / "HTTP 404" / "no answer within 5 s").
#[tokio::test]
async fn an_app_admin_cannot_point_back_channel_logout_at_internal_addresses() {
    let server = TestServer::spawn();
    let (b, csrf) = crate::admin::mfa_browser(&server, "appadmin", &[Role::AppAdmin]).await;
    for (i, uri) in
        ["http://127.0.0.1:6379/", "http://localhost:2379/v2/keys", "https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/admin", "https://[::1]/"]
            .iter()
            .enumerate()
    {
        let name = format!("Internal {i}");
        let form = [
            ("csrf", csrf.as_str()),
            ("name", name.as_str()),
            ("app_type", "web"),
            ("redirect_uris", REDIRECT),
            ("grant_authorization_code", "on"),
            ("grant_refresh_token", "on"),
            ("id_token_alg", "RS256"),
            ("backchannel_logout_uri", uri),
        ];
        let res = b.post(server.url("/admin/apps/new")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "back-channel logout URI {uri} was accepted");
    }
    server.stop().await;
}

fn sql(server: &TestServer, q: &str, id: &str) {
    server.admin().pool.get().unwrap().execute(q, [id]).unwrap();
}

/// Signs alice in to a third-party app through her SSO session and approves consent; returns
/// the code's redirect.
async fn consent_through_sso(f: &Fixture, third: &str) -> String {
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, third, &challenge, &[("scope", "openid email")])).await;
    let to = location(&res);
    assert!(to.starts_with("/consent?request="), "SSO, then consent: {to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("decision", "approve".to_string())];
    let res = f.browser.post(f.server.url("/consent")).form(&form).send().await.unwrap();
    let back = location(&res);
    assert!(query_param(&back, "code").is_some(), "{back}");
    back
}

/// F3: approving consent (or any step-up) from an SSO session ends that session and starts a
/// new one whose `session_apps` is empty: an app that relies on Front-Channel Logout and was
/// used before is never told when the person later signs out — its session survives a
/// "sign out" on a shared computer.
#[tokio::test]
async fn signing_out_after_a_consent_still_signs_out_of_apps_used_before() {
    let f = Fixture::new().await;
    sql(&f.server, "UPDATE clients SET frontchannel_logout_uri = 'https://app.example.com/fc-logout' WHERE id = ?1", &f.client_id);
    f.tokens().await;
    let (third, _) = f.server.add_client("Third", &["authorization_code"], false);
    sql(&f.server, "UPDATE clients SET third_party = 1 WHERE id = ?1", &third);
    consent_through_sso(&f, &third).await;
    // Sign out through the confirmation form.
    let page = f.browser.get(f.server.url("/logout")).send().await.unwrap().text().await.unwrap();
    let res = f.browser.post(f.server.url("/logout")).form(&[("csrf", field(&page, "csrf"))]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = unescape(&res.text().await.unwrap());
    assert!(page.contains("https://app.example.com/fc-logout?"), "the first app's front-channel logout page is not loaded: {page}");
    f.server.stop().await;
}

/// F4: the same session swap sends a back-channel logout to every app used earlier in the
/// session, though the person never signed out (consenting to one app signs them out of all).
#[tokio::test]
async fn consenting_to_one_app_does_not_sign_out_of_the_others() {
    let f = Fixture::new().await;
    sql(&f.server, "UPDATE clients SET backchannel_logout_uri = 'https://app.example.com/bc-logout' WHERE id = ?1", &f.client_id);
    f.tokens().await;
    let (third, _) = f.server.add_client("Third", &["authorization_code"], false);
    sql(&f.server, "UPDATE clients SET third_party = 1 WHERE id = ?1", &third);
    consent_through_sso(&f, &third).await;
    let n: i64 =
        f.server.admin().pool.get().unwrap().query_row("SELECT count(*) FROM logout_deliveries WHERE client_id = ?1", [&f.client_id], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "a logout token was queued for the first app when alice consented to another");
    f.server.stop().await;
}

/// F6: one app whose back-channel endpoint never answers (a tarpit registered by an app admin,
/// or a slow app) holds the single worker 5 s per delivery, 20 at a time, oldest first: other
/// apps' logout tokens wait minutes.
#[tokio::test]
async fn a_tarpit_app_does_not_delay_other_apps_logout_tokens() {
    let f = Fixture::new().await;
    // The tarpit: accepts and never answers.
    let tarpit = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tarpit_url = format!("http://127.0.0.1:{}/bc", tarpit.local_addr().unwrap().port());
    std::thread::spawn(move || {
        let mut held = vec![];
        for s in tarpit.incoming().flatten() {
            held.push(s);
        }
    });
    // The good app's endpoint: records that something arrived.
    let good = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let good_url = format!("http://127.0.0.1:{}/bc", good.local_addr().unwrap().port());
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let a2 = arrived.clone();
    std::thread::spawn(move || {
        for mut s in good.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            a2.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = std::io::Write::write_all(&mut s, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let (slow, _) = f.server.add_client("Slow", &["authorization_code"], false);
    sql(&f.server, &format!("UPDATE clients SET backchannel_logout_uri = '{tarpit_url}' WHERE id = ?1"), &slow);
    sql(&f.server, &format!("UPDATE clients SET backchannel_logout_uri = '{good_url}' WHERE id = ?1"), &f.client_id);
    // 20 earlier sign-outs of the slow app's users are waiting.
    {
        let conn = f.server.admin().pool.get().unwrap();
        let now = f.server.now();
        for i in 0..20 {
            conn.execute(
                "INSERT INTO logout_deliveries (client_id, user_id, session_id, next_at, created_at) VALUES (?1, ?2, NULL, ?3, ?3)",
                latchkey::store::db::params![slow, format!("user{i}"), now - 10],
            )
            .unwrap();
        }
    }
    let tokens = f.tokens().await;
    let id_token = tokens["id_token"].as_str().unwrap();
    f.browser.get(f.server.url(&format!("/logout?id_token_hint={id_token}"))).send().await.unwrap();
    let start = Instant::now();
    while !arrived.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(15), "the good app's logout token did not arrive within 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    f.server.stop().await;
}
