//! The authorization endpoint's refusals: pages for a person when the client or redirect URI
//! cannot be trusted, RFC 6749 §4.1.2.1 redirects once they can.

use crate::common::*;
use reqwest::StatusCode;

async fn page(url: &str) -> (StatusCode, bool, String) {
    let res = browser().get(url).send().await.unwrap();
    let status = res.status();
    let redirected = res.headers().contains_key("location");
    (status, redirected, res.text().await.unwrap())
}

/// Follows a request that must come straight back to the client with an error.
async fn error_back(server: &TestServer, url: &str) -> (String, Option<String>) {
    let res = authorize(server, &browser(), url).await;
    let to = location(&res);
    assert!(to.starts_with(REDIRECT), "expected a redirect to the client, got {to}");
    assert_eq!(query_param(&to, "iss").as_deref(), Some(server.base.as_str()));
    (query_param(&to, "error").unwrap(), query_param(&to, "state"))
}

#[tokio::test]
async fn an_unknown_client_gets_an_error_page_and_no_redirect() {
    let server = TestServer::spawn();
    let (_, challenge) = pkce();
    let (status, redirected, body) = page(&good_auth_url(&server, "no-such-client", &challenge, &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!redirected);
    assert!(body.contains("Unknown application"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn a_redirect_uri_that_is_not_an_exact_match_gets_an_error_page_and_no_redirect() {
    let server = TestServer::spawn();
    let (id, _) = server.add_client("App", &[], false);
    let (_, challenge) = pkce();
    for wrong in ["http://127.0.0.1:9/callback/", "http://127.0.0.1:9/callback?x=1", "http://127.0.0.1:10/callback", "https://evil.example/callback"] {
        let url = auth_url(
            &server,
            &[
                ("client_id", &id),
                ("redirect_uri", wrong),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let (status, redirected, body) = page(&url).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
        assert!(!redirected, "{wrong} must never be redirected to");
        assert!(body.contains("Invalid redirect address"), "{body}");
    }
    let missing = auth_url(&server, &[("client_id", &id), ("response_type", "code"), ("scope", "openid")]);
    let (status, redirected, body) = page(&missing).await;
    assert_eq!((status, redirected), (StatusCode::BAD_REQUEST, false));
    assert!(body.contains("redirect_uri is missing"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn an_unsupported_response_type_is_sent_back_to_the_client() {
    let server = TestServer::spawn();
    let (id, _) = server.add_client("App", &[], false);
    let url = auth_url(&server, &[("client_id", &id), ("redirect_uri", REDIRECT), ("response_type", "token"), ("scope", "openid"), ("state", "abc")]);
    let (error, state) = error_back(&server, &url).await;
    assert_eq!(error, "unsupported_response_type");
    assert_eq!(state.as_deref(), Some("abc"), "state is echoed on errors too");
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_the_specific_oauth_error() {
    let server = TestServer::spawn();
    let (id, _) = server.add_client("App", &[], false);
    let (public_id, _) = server.add_client("SPA", &[], true);
    let (_, challenge) = pkce();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("client_id", &id), ("redirect_uri", REDIRECT), ("scope", "openid")], "invalid_request"),
        (vec![("client_id", &id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "profile")], "invalid_scope"),
        (vec![("client_id", &id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid admin")], "invalid_scope"),
        (
            vec![
                ("client_id", &id),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("client_id", &id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid"), ("code_challenge", &challenge)],
            "invalid_request",
        ),
        (vec![("client_id", &public_id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid")], "invalid_request"),
        (vec![("client_id", &id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid"), ("prompt", "none login")], "invalid_request"),
        (vec![("client_id", &id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid"), ("max_age", "-1")], "invalid_request"),
        (vec![("client_id", &id), ("redirect_uri", REDIRECT), ("response_type", "code"), ("scope", "openid"), ("request", "eyJ.x.y")], "request_not_supported"),
    ];
    for (pairs, expected) in cases {
        let (error, _) = error_back(&server, &auth_url(&server, &pairs)).await;
        assert_eq!(error, expected, "for {pairs:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let server = TestServer::spawn();
    let (id, _) = server.add_client("App", &[], false);
    let (_, challenge) = pkce();
    let (error, state) = error_back(&server, &good_auth_url(&server, &id, &challenge, &[("prompt", "none")])).await;
    assert_eq!(error, "login_required");
    assert_eq!(state.as_deref(), Some("st4te"));
    server.stop().await;
}

#[tokio::test]
async fn prompt_none_with_a_session_returns_a_code_silently() {
    let f = Fixture::new().await;
    f.tokens().await;
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("prompt", "none")])).await;
    assert!(query_param(&location(&res), "code").is_some());
    f.server.stop().await;
}

#[tokio::test]
async fn login_hint_prefills_the_username() {
    let server = TestServer::spawn();
    let (id, _) = server.add_client("App", &[], false);
    let (_, challenge) = pkce();
    let b = browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &challenge, &[("login_hint", "carol@example.com")])).await;
    let html = login_page(&server, &b, &location(&res)).await;
    assert!(html.contains(r#"autocomplete="username" value="carol@example.com""#), "{html}");
    assert!(html.contains("to continue to <strong>App</strong>"), "{html}");
    server.stop().await;
}

#[tokio::test]
async fn prompt_login_and_an_exceeded_max_age_make_the_user_sign_in_again() {
    let f = Fixture::new().await;
    f.tokens().await;
    let (_, challenge) = pkce();
    for extra in [vec![("prompt", "login")], vec![("max_age", "0")]] {
        let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &extra)).await;
        assert!(location(&res).starts_with("/login?request="), "{extra:?} must re-authenticate");
    }
    // max_age not yet exceeded: SSO; exceeded: sign in again.
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("max_age", "300")])).await;
    assert!(location(&res).starts_with(REDIRECT));
    f.server.advance(301);
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("max_age", "300")])).await;
    assert!(location(&res).starts_with("/login?request="));
    f.server.stop().await;
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_gets_one_generic_message_and_is_logged() {
    let f = Fixture::new().await;
    let (_, challenge) = pkce();
    for (user, password, reason) in [("alice", "not the password", "wrong password"), ("mallory", PASSWORD, "unknown username")] {
        let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
        let page = login_page(&f.server, &f.browser, &location(&res)).await;
        let res = submit_login(&f.server, &f.browser, &page, user, password).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.unwrap();
        assert!(html.contains("Wrong username or password."), "{html}");
        let log = latchkey::store::signins::recent(&f.server.admin().pool.get().unwrap(), 1).unwrap();
        assert_eq!(log[0].result, "failure");
        assert_eq!(log[0].reason.as_deref(), Some(reason));
        assert_eq!(log[0].username.as_deref(), Some(user));
        assert_eq!(log[0].client_id.as_deref(), Some(f.client_id.as_str()));
        assert_eq!(log[0].ip.as_deref(), Some("127.0.0.1"));
    }
    f.tokens().await;
    let log = latchkey::store::signins::recent(&f.server.admin().pool.get().unwrap(), 1).unwrap();
    assert_eq!(log[0].result, "success");
    f.server.stop().await;
}

#[tokio::test]
async fn the_login_form_refuses_a_missing_or_wrong_csrf_token() {
    let f = Fixture::new().await;
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let request = field(&page, "request");
    for csrf in [None, Some("forged")] {
        let mut form = vec![("request", request.as_str()), ("username", "alice"), ("password", PASSWORD)];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        let res = f.browser.post(f.server.url("/login")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.text().await.unwrap().contains("This form has expired"));
    }
    // The same request from a browser that did not start it (another cookie jar) is refused.
    let other = browser();
    let form = [("request", request.as_str()), ("csrf", &field(&page, "csrf")), ("username", "alice"), ("password", PASSWORD)];
    let res = other.post(f.server.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    f.server.stop().await;
}

#[tokio::test]
async fn signing_in_sets_a_new_httponly_samesite_session_cookie_each_time() {
    let f = Fixture::new().await;
    let mut seen = vec![];
    for extra in [vec![], vec![("prompt", "login")]] {
        let (_, challenge) = pkce();
        let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &extra)).await;
        let page = login_page(&f.server, &f.browser, &location(&res)).await;
        let res = submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await;
        let cookie = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with("lk_session=")).unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
        assert!(!cookie.contains("Secure"), "http issuer: no Secure flag");
        seen.push(cookie.split(';').next().unwrap().to_string());
    }
    assert_ne!(seen[0], seen[1], "the session id changes at every sign-in");
    f.server.stop().await;
}

#[tokio::test]
async fn the_authorization_endpoint_accepts_post() {
    let f = Fixture::new().await;
    f.tokens().await;
    let (_, challenge) = pkce();
    let form = [
        ("client_id", f.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    let res = f.browser.post(f.server.url("/authorize")).form(&form).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some());
    f.server.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let server = TestServer::spawn();
    let res = browser().get(server.url("/login")).send().await.unwrap();
    let res = browser().get(server.url(&location(&res))).send().await.unwrap();
    let h = res.headers();
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
    server.stop().await;
}
