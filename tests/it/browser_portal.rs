//! Real-browser tests of the person's own pages: My Apps, consent, and "This wasn't me".

use crate::browser::{App, app, app_sign_in, password_sign_in};
use crate::cdp::Browser;
use crate::common::*;

fn sql(server: &TestServer, statement: &str, args: &[&str]) {
    server.admin().pool.get().unwrap().execute(statement, latchkey::store::db::params_from_iter(args)).unwrap();
}

fn portal_sign_in(server: &TestServer, b: &mut Browser) {
    b.goto(&server.url("/login"));
    password_sign_in(b);
    b.wait_for("document.getElementById('signed-in-user')");
}

#[tokio::test]
async fn a_my_apps_tile_starts_the_apps_own_sign_in_and_the_app_signs_the_person_in_without_a_password() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let wiki: App = app(&server, "Team Wiki").await;
    let start = wiki.callback.url.replace("/callback", "/start");
    sql(
        &server,
        "UPDATE clients SET initiate_login_uri = ?2, launch_url = ?3 WHERE id = ?1",
        &[&wiki.id, &start, &wiki.callback.url.replace("/callback", "/home")],
    );
    let mut b = Browser::launch();
    portal_sign_in(&server, &mut b);
    b.goto(&server.url("/"));
    b.wait_for("document.getElementById('my-apps')");
    b.screenshot("my-apps");
    b.click(&format!("tile-{}", wiki.id));
    b.wait_for("document.body && document.body.innerText === 'back in the app'");
    let arrived = wiki.callback.hits.lock().unwrap().iter().rev().find(|p| p.starts_with("/start")).cloned().expect("the app's login-initiation endpoint");
    let arrived = format!("http://127.0.0.1{arrived}");
    assert_eq!(query_param(&arrived, "iss").as_deref(), Some(server.base.as_str()));
    assert_eq!(query_param(&arrived, "login_hint").as_deref(), Some("alice"));
    assert!(query_param(&arrived, "target_link_uri").unwrap().ends_with("/home"));
    // The app starts its own sign-in: no password is asked (the session signs her in).
    let claims = app_sign_in(&wiki, &mut b, None, |_| {}).await;
    assert!(claims["sub"].is_string(), "signed in to the app: {claims}");
    server.stop().await;
}

#[tokio::test]
async fn consent_in_the_browser_decline_approve_and_withdraw() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let crm = app(&server, "Outside CRM").await;
    sql(&server, "UPDATE clients SET third_party = 1 WHERE id = ?1", &[&crm.id]);
    let mut b = Browser::launch();
    // Declined: the app hears access_denied.
    let (url, _, _) = crm
        .rp
        .authorize_url(openidconnect::core::CoreAuthenticationFlow::AuthorizationCode, openidconnect::CsrfToken::new_random, openidconnect::Nonce::new_random)
        .url();
    b.goto(url.as_str());
    password_sign_in(&mut b);
    b.wait_for("document.getElementById('consent-approve')");
    b.screenshot("consent");
    b.click("consent-decline");
    let back = crm.callback.arrival(&mut b);
    assert_eq!(query_param(&back, "error").as_deref(), Some("access_denied"), "{back}");
    // Approved: the app gets its tokens.
    let claims = app_sign_in(&crm, &mut b, None, |b| {
        b.wait_for("document.getElementById('username') || document.getElementById('consent-approve')");
        if b.eval("!!document.getElementById('username')") == true {
            password_sign_in(b);
        }
        b.wait_for("document.getElementById('consent-approve')");
        b.click("consent-approve");
    })
    .await;
    assert!(claims["sub"].is_string());
    // Withdrawn in My Apps: the next sign-in asks again.
    b.goto(&server.url("/"));
    b.wait_for("document.getElementById('consents')");
    b.click(&format!("revoke-{}", crm.id));
    b.wait_for("document.getElementById('signed-in-user') && !document.getElementById('consents')");
    let (url, _, _) = crm
        .rp
        .authorize_url(openidconnect::core::CoreAuthenticationFlow::AuthorizationCode, openidconnect::CsrfToken::new_random, openidconnect::Nonce::new_random)
        .url();
    b.goto(url.as_str());
    b.wait_for("document.getElementById('consent-approve')");
    server.stop().await;
}

#[tokio::test]
async fn this_wasnt_me_in_the_browser_ends_every_session_and_starts_a_reset() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let mut b = Browser::launch();
    portal_sign_in(&server, &mut b);
    b.goto(&server.url("/sessions"));
    b.wait_for("document.getElementById('signins')");
    b.screenshot("my-sessions");
    let id = b.eval("document.querySelector('[id^=report-]').id").as_str().unwrap().to_string();
    b.click(&id);
    b.wait_for("location.pathname === '/reset'");
    let conn = server.admin().pool.get().unwrap();
    let alice = latchkey::store::users::by_username(&conn, "alice").unwrap().unwrap();
    assert_eq!(latchkey::store::policies::user_risk(&conn, &alice.id).unwrap(), latchkey::policy::model::Risk::High);
    let live: i64 = conn.query_row("SELECT count(*) FROM sessions WHERE user_id = ?1 AND ended_at IS NULL", [&alice.id], |r| r.get(0)).unwrap();
    assert_eq!(live, 0, "every session ended");
    b.goto(&server.url("/"));
    b.wait_for("document.body.innerText.includes('Welcome')");
    server.stop().await;
}

#[tokio::test]
async fn a_japanese_sign_in_in_the_browser_from_ui_locales_and_from_accept_language() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let wiki = app(&server, "Team Wiki").await;
    let mut b = Browser::launch();
    // The app asks for Japanese with ui_locales.
    let (url, _, _) = wiki
        .rp
        .authorize_url(openidconnect::core::CoreAuthenticationFlow::AuthorizationCode, openidconnect::CsrfToken::new_random, openidconnect::Nonce::new_random)
        .url();
    b.goto(&format!("{url}&ui_locales=ja"));
    b.wait_for("document.getElementById('username')");
    assert_eq!(b.eval("document.documentElement.lang"), "ja");
    assert!(b.eval("document.body.innerText").as_str().unwrap().contains("サインイン"));
    b.screenshot("login-ja");
    // A browser that prefers Japanese gets it without the app asking.
    let mut b = Browser::launch();
    b.call("Network.enable", serde_json::json!({}));
    b.call("Network.setExtraHTTPHeaders", serde_json::json!({ "headers": { "Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5" } }));
    b.goto(&server.url("/login"));
    b.wait_for("document.getElementById('username')");
    assert_eq!(b.eval("document.documentElement.lang"), "ja");
    assert!(b.eval("document.body.innerText").as_str().unwrap().contains("サインイン"));
    server.stop().await;
}
