//! Consent for apps that are not the organisation's own.

use crate::common::*;
use reqwest::StatusCode;

fn third_party(server: &TestServer, client_id: &str) {
    server.admin().pool.get().unwrap().execute("UPDATE clients SET third_party = 1 WHERE id = ?1", [client_id]).unwrap();
}

/// Signs alice in for `extra` params; returns where the password step sends her.
async fn to_after_password(f: &Fixture, b: &reqwest::Client, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = good_auth_url(&f.server, &f.client_id, &challenge, extra);
    let res = authorize(&f.server, b, &url).await;
    let to = location(&res);
    if !to.starts_with("/login?") {
        return (to, verifier);
    }
    let page = login_page(&f.server, b, &to).await;
    (location(&submit_login(&f.server, b, &page, "alice", PASSWORD).await), verifier)
}

async fn decide(server: &TestServer, b: &reqwest::Client, to: &str, decision: &str) -> reqwest::Response {
    let page = b.get(server.url(to)).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("decision", decision.to_string())];
    b.post(server.url("/consent")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn a_third_party_app_asks_once_and_declining_returns_access_denied() {
    let f = Fixture::new().await;
    third_party(&f.server, &f.client_id);
    let (to, _) = to_after_password(&f, &f.browser, &[("scope", "openid email")]).await;
    assert!(to.starts_with("/consent?request="), "{to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Your e-mail address") && page.contains(r#"id="consent-app""#), "{page}");
    // Declining: back to the app with access_denied, and no session was made for it.
    let res = decide(&f.server, &f.browser, &to, "decline").await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&location(&res), "state").as_deref(), Some("st4te"));
    // Approving: a code; next time no question, until prompt=consent or a wider scope.
    let b = browser();
    let (to, verifier) = to_after_password(&f, &b, &[("scope", "openid email")]).await;
    let res = decide(&f.server, &b, &to, "approve").await;
    let code = query_param(&location(&res), "code").expect("approved: a code");
    assert_eq!(redeem(&f.server, f.client(), &code, &verifier).await.0, StatusCode::OK);
    let (to, _) = to_after_password(&f, &b, &[("scope", "openid email")]).await;
    assert!(query_param(&to, "code").is_some(), "remembered: {to}");
    let (to, _) = to_after_password(&f, &b, &[("scope", "openid email"), ("prompt", "consent")]).await;
    assert!(to.starts_with("/consent?request="), "prompt=consent asks again: {to}");
    let (to, _) = to_after_password(&f, &b, &[("scope", "openid email profile")]).await;
    assert!(to.starts_with("/consent?request="), "more than approved asks again: {to}");
    let (to, _) = to_after_password(&f, &b, &[("scope", "openid email profile"), ("prompt", "none")]).await;
    assert_eq!(query_param(&to, "error").as_deref(), Some("consent_required"));
    f.server.stop().await;
}

#[tokio::test]
async fn first_party_apps_and_apps_an_admin_consented_for_need_no_consent() {
    let f = Fixture::new().await;
    let (to, _) = to_after_password(&f, &f.browser, &[]).await;
    assert!(query_param(&to, "code").is_some(), "first-party: {to}");
    third_party(&f.server, &f.client_id);
    f.server.admin().pool.get().unwrap().execute("UPDATE clients SET consent_for_everyone = 1 WHERE id = ?1", [&f.client_id]).unwrap();
    let (to, _) = to_after_password(&f, &browser(), &[]).await;
    assert!(query_param(&to, "code").is_some(), "an admin consented for everyone: {to}");
    f.server.stop().await;
}

#[tokio::test]
async fn consenting_later_proves_nothing_the_id_tokens_auth_time_stays_the_sign_ins() {
    let f = Fixture::new().await;
    third_party(&f.server, &f.client_id);
    let signed_in_at = f.server.now();
    let (to, _) = to_after_password(&f, &f.browser, &[("scope", "openid")]).await;
    assert!(decide(&f.server, &f.browser, &to, "approve").await.status().is_redirection());
    // An hour later, in the same session, the app asks for consent again: no factor is proven.
    f.server.advance(3600);
    let (to, verifier) = to_after_password(&f, &f.browser, &[("scope", "openid"), ("prompt", "consent")]).await;
    assert!(to.starts_with("/consent?request="), "{to}");
    let res = decide(&f.server, &f.browser, &to, "approve").await;
    let code = query_param(&location(&res), "code").expect("a code");
    let (status, tokens) = redeem(&f.server, f.client(), &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap()).unwrap();
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!((auth_time - signed_in_at).abs() <= 2, "auth_time {auth_time} is the sign-in's ({signed_in_at}), not the consent's");
    f.server.stop().await;
}

/// A consent proves no factor, so the session it leaves is the old one carried on: a copy of a
/// session cookie passing through consents again and again cannot outlive the session it was
/// copied from, nor wake a console session that has gone idle.
#[tokio::test]
async fn a_consent_renews_nothing_the_session_ends_when_it_would_have() {
    let f = Fixture::new().await;
    third_party(&f.server, &f.client_id);
    let (to, _) = to_after_password(&f, &f.browser, &[("scope", "openid")]).await;
    assert!(decide(&f.server, &f.browser, &to, "approve").await.status().is_redirection());
    let ttl = f.server.admin().config.session.ttl_secs;
    f.server.advance(ttl - 600);
    let (to, _) = to_after_password(&f, &f.browser, &[("scope", "openid"), ("prompt", "consent")]).await;
    assert!(to.starts_with("/consent?request="), "{to}");
    let res = decide(&f.server, &f.browser, &to, "approve").await;
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    f.server.advance(601);
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"), "{}", location(&res));
    f.server.stop().await;
}

#[tokio::test]
async fn a_consent_does_not_wake_an_idle_console_session() {
    let server = TestServer::spawn();
    let (b, _) = crate::admin::mfa_browser(&server, "root", &[latchkey::store::directory::Role::GlobalAdmin]).await;
    let (app, _) = server.add_client("Partner", &["authorization_code", "refresh_token"], false);
    third_party(&server, &app);
    assert_eq!(b.get(server.url("/admin")).send().await.unwrap().status(), StatusCode::OK);
    server.advance(901);
    let (_, challenge) = pkce();
    let res = authorize(&server, &b, &good_auth_url(&server, &app, &challenge, &[("scope", "openid")])).await;
    let to = location(&res);
    assert!(to.starts_with("/consent?request="), "{to}");
    let res = decide(&server, &b, &to, "approve").await;
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    let res = b.get(server.url("/admin")).send().await.unwrap();
    assert!(res.status().is_redirection(), "the idle console was let in: {}", res.status());
    assert!(location(&res).starts_with("/login?request="), "the console asks for a sign-in again: {}", location(&res));
    server.stop().await;
}
