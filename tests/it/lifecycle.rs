//! Keys rotating, the server restarting, and signing out.

use crate::common::*;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, TokenResponse};
use reqwest::StatusCode;

/// The published RS256 key ids (the algorithm of ID tokens for these apps).
async fn jwks_kids(server: &TestServer) -> Vec<String> {
    let jwks: serde_json::Value = rp_http().get(server.url("/jwks")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().filter(|k| k["alg"] == "RS256").map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
}

/// A full relying-party sign-in: returns the raw ID token after verifying it.
async fn rp_sign_in(server: &TestServer, browser: &reqwest::Client, id: &str, secret: &str) -> (String, String) {
    let rp = relying_party(server, id, Some(secret)).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) =
        rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).set_pkce_challenge(challenge).url();
    let res = browser.get(url.as_str()).send().await.unwrap();
    let mut to = location(&res);
    if to.starts_with("/login") {
        let page = login_page(server, browser, &to).await;
        to = location(&submit_login(server, browser, &page, "alice", PASSWORD).await);
    }
    let tokens = rp
        .exchange_code(AuthorizationCode::new(query_param(&to, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&rp_http())
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    id_token.claims(&rp.id_token_verifier(), &nonce).unwrap();
    (id_token.to_string(), tokens.access_token().secret().clone())
}

#[tokio::test]
async fn after_key_rotation_old_tokens_still_verify_and_new_tokens_use_the_new_key() {
    let f = Fixture::new().await;
    let (old_id_token, old_access) = rp_sign_in(&f.server, &f.browser, &f.client_id, &f.secret).await;
    let old_kid = kid_of(&old_id_token);
    assert_eq!(jwks_kids(&f.server).await, vec![old_kid.clone()]);

    let admin = f.server.admin();
    let new_kid = latchkey::oidc::keys::rotate(&admin.pool, None, admin.clock.now()).unwrap().remove(0);
    // The running server re-reads the keys every second, on a thread of its own.
    let start = std::time::Instant::now();
    let mut kids = jwks_kids(&f.server).await;
    while !kids.contains(&new_kid) && start.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        kids = jwks_kids(&f.server).await;
    }
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid), "published within the reload interval: {kids:?}");

    // The old token verifies against the published JWKS (a fresh RP re-reads it) and still works.
    let rp = relying_party(&f.server, &f.client_id, Some(&f.secret)).await;
    let old: openidconnect::core::CoreIdToken = old_id_token.parse().unwrap();
    old.claims(&rp.id_token_verifier().require_issuer_match(true), |_: Option<&Nonce>| Ok(())).expect("old token verifies");
    assert_eq!(introspect(&f.server, f.client(), &old_access).await["active"], true);

    let (new_id_token, _) = rp_sign_in(&f.server, &f.browser, &f.client_id, &f.secret).await;
    assert_eq!(kid_of(&new_id_token), new_kid);

    // Once every token the old key signed has expired, it leaves the JWKS.
    f.server.advance(601);
    assert_eq!(jwks_kids(&f.server).await, [new_kid]);
    f.server.stop().await;
}

#[tokio::test]
async fn after_a_restart_the_user_client_and_refresh_token_still_work() {
    let f = Fixture::new().await;
    let t = f.tokens().await;
    let refresh_token = t["refresh_token"].as_str().unwrap().to_string();
    let port = f.server.port;
    let dir = f.server.stop().await.unwrap();

    let server = TestServer::spawn_at(dir.path(), port);
    let client = (f.client_id.as_str(), f.secret.as_str());
    let (status, body) = refresh(&server, client, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (code, verifier) = code_for(&server, &browser(), &f.client_id, "alice").await;
    let (status, body) = redeem(&server, client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn rp_initiated_logout_with_id_token_hint_ends_the_session_and_returns_to_the_registered_uri() {
    let f = Fixture::new().await;
    let (id_token, _) = rp_sign_in(&f.server, &f.browser, &f.client_id, &f.secret).await;
    let mut url = url::Url::parse(&f.server.url("/logout")).unwrap();
    url.query_pairs_mut().append_pair("id_token_hint", &id_token).append_pair("post_logout_redirect_uri", POST_LOGOUT).append_pair("state", "bye");
    let res = f.browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), format!("{POST_LOGOUT}?state=bye"));
    // Signed out: the next sign-in asks for the password again.
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    assert!(location(&res).starts_with("/login?request="));
    f.server.stop().await;
}

#[tokio::test]
async fn an_id_token_of_another_session_and_app_does_not_sign_out_silently() {
    let f = Fixture::new().await;
    let (other_id, other_secret) = f.server.add_client("Other app", &["authorization_code"], false);
    // alice's ID token from the other app, in another browser (another session).
    let (elsewhere, _) = rp_sign_in(&f.server, &browser(), &other_id, other_secret.as_deref().unwrap()).await;
    // Her session here signed in to the first app only.
    let (here, _) = rp_sign_in(&f.server, &f.browser, &f.client_id, &f.secret).await;
    let res = f.browser.get(f.server.url(&format!("/logout?id_token_hint={elsewhere}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "asked, not signed out");
    assert!(res.text().await.unwrap().contains("Sign out?"));
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    assert!(query_param(&location(&res), "code").is_some(), "still signed in: {}", location(&res));
    // This session's own ID token signs out at once.
    let res = f.browser.get(f.server.url(&format!("/logout?id_token_hint={here}"))).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("You have signed out"));
    f.server.stop().await;
}

#[tokio::test]
async fn logout_never_redirects_to_an_unregistered_uri_and_asks_to_confirm_without_a_hint() {
    let f = Fixture::new().await;
    let (id_token, _) = rp_sign_in(&f.server, &f.browser, &f.client_id, &f.secret).await;
    let mut url = url::Url::parse(&f.server.url("/logout")).unwrap();
    url.query_pairs_mut().append_pair("id_token_hint", &id_token).append_pair("post_logout_redirect_uri", "https://evil.example/");
    let res = f.browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(!res.headers().contains_key("location"));

    // No hint: a confirmation page; a forged POST without its CSRF token changes nothing.
    let res = f.browser.get(f.server.url("/logout")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("Sign out?"), "{page}");
    let res = f.browser.post(f.server.url("/logout")).form(&[("csrf", "forged")]).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("Sign out?"), "still signed in, asked again");
    let res = f.browser.post(f.server.url("/logout")).form(&[("csrf", field(&page, "csrf"))]).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("You have signed out"));
    let home = f.browser.get(f.server.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Welcome"), "{home}");
    f.server.stop().await;
}

#[tokio::test]
async fn the_first_admin_must_change_the_one_time_password_before_reaching_an_app() {
    let server = TestServer::spawn();
    let admin = server.admin();
    let password = latchkey::auth::users::bootstrap_admin(&admin.pool.get().unwrap(), &admin.passwords, admin.clock.now()).unwrap().unwrap();
    assert!(latchkey::auth::users::bootstrap_admin(&admin.pool.get().unwrap(), &admin.passwords, admin.clock.now()).unwrap().is_none(), "only once");
    let (id, _) = server.add_client("App", &[], false);
    let b = browser();
    let (_, challenge) = pkce();
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    let res = submit_login(&server, &b, &page, "admin", &password).await;
    let to = location(&res);
    assert!(to.starts_with("/password/change?request="), "{to}");
    let page = b.get(server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("requires <strong>admin</strong> to choose a new password"), "{page}");
    let form = |new: &str, confirm: &str| {
        vec![("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("new_password", new.to_string()), ("confirm_password", confirm.to_string())]
    };
    for (new, confirm, why) in [
        ("short", "short", "at least 8"),
        ("long enough one", "different one!", "do not match"),
        (password.as_str(), password.as_str(), "different from your current"),
    ] {
        let res = b.post(server.url("/password/change")).form(&form(new, confirm)).send().await.unwrap();
        let html = res.text().await.unwrap();
        assert!(html.contains(why), "expected {why:?} in {html}");
    }
    // Leaving and coming back does not skip the change: no session exists before it.
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[])).await;
    assert!(location(&res).starts_with("/login?request="), "{}", location(&res));
    let res = b.post(server.url("/password/change")).form(&form("a brand new passphrase", "a brand new passphrase")).send().await.unwrap();
    // Then a second factor, with no way to skip it, and only then the app.
    let to = location(&res);
    let page = b.get(server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("skip-setup"), "{page}");
    let (_, res) = register_totp_at_sign_in(&server, &b, &to).await;
    assert!(query_param(&location(&res), "code").is_some(), "back to the app with a code");
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_app_is_not_returned_to_after_sign_out() {
    let f = Fixture::new().await;
    f.server.admin().pool.get().unwrap().execute("UPDATE clients SET enabled = 0 WHERE id = ?1", [&f.client_id]).unwrap();
    let mut url = url::Url::parse(&f.server.url("/logout")).unwrap();
    url.query_pairs_mut().append_pair("client_id", &f.client_id).append_pair("post_logout_redirect_uri", POST_LOGOUT);
    let res = f.browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "no redirect to a disabled app: {:?}", res.headers().get("location"));
    f.server.stop().await;
}
