//! The sign-in gate, attacked end to end: each test is one finding of an attacker's review,
//! played as the attacker (or the person) would, with a cookie-keeping HTTP client.

use crate::admin::{get, mfa_browser};
use crate::common::*;
use latchkey::gate::{CONSOLE, PORTAL};
use latchkey::policy::model::*;
use latchkey::store::directory::Role;
use reqwest::StatusCode;

const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
const NEW_PASSWORD: &str = "a whole new passphrase";

/// A policy that blocks every user (bar `exclude`) from every app and every kind of client.
fn block_everyone(server: &TestServer, exclude: &[String]) {
    put_template(server, "block-legacy", State::On, |p| {
        p.name = "Block everyone".into();
        p.conditions.client_app_types = vec![];
        p.include_users = Principals { all: true, ..Default::default() };
        p.exclude_users.users = exclude.to_vec();
    });
}

fn conn(server: &TestServer) -> latchkey::store::Conn {
    server.admin().pool.get().unwrap()
}

fn user_id(server: &TestServer, username: &str) -> String {
    latchkey::store::users::by_username(&conn(server), username).unwrap().unwrap().id
}

fn last_log(server: &TestServer) -> latchkey::store::signins::SignInRow {
    latchkey::store::signins::recent(&conn(server), 1).unwrap().remove(0)
}

fn set_risk(server: &TestServer, user: &str, risk: Risk) {
    latchkey::store::policies::set_user_risk(&conn(server), &user_id(server, user), risk).unwrap();
}

fn user_risk(server: &TestServer, user: &str) -> Risk {
    latchkey::store::policies::user_risk(&conn(server), &user_id(server, user)).unwrap()
}

fn codes_issued(server: &TestServer) -> i64 {
    conn(server).query_row("SELECT count(*) FROM authorization_codes", [], |r| r.get(0)).unwrap()
}

fn sets_session_cookie(res: &reqwest::Response) -> bool {
    res.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("lk_session="))
}

/// The text of a GET in `b`'s session.
async fn page(server: &TestServer, b: &reqwest::Client, path: &str) -> String {
    b.get(server.url(path)).send().await.unwrap().text().await.unwrap()
}

/// Signs in to latchkey itself (no app) at /login; returns the answer to the password.
async fn portal_sign_in(server: &TestServer, b: &reqwest::Client, username: &str, password: &str) -> reqwest::Response {
    let res = b.get(server.url("/login")).send().await.unwrap();
    let page = login_page(server, b, &location(&res)).await;
    submit_login(server, b, &page, username, password).await
}

/// alice signs in from home (198.51.100.7, on Windows); then the policy `template` goes on.
async fn home_sign_in_then(f: &Fixture, template: &str) {
    let (_, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "198.51.100.7", WINDOWS).await;
    assert!(query_param(&location(&res), "code").is_some(), "alice signs in from home, on Windows");
    put_template(&f.server, template, State::On, |_| {});
}

/// An app sign-in for `user` in a fresh browser from `ip` (through the trusted loopback
/// proxy) with `user_agent`; returns the browser and the answer to the password.
async fn attempt_from(server: &TestServer, client_id: &str, user: &str, password: &str, ip: &str, user_agent: &str) -> (reqwest::Client, reqwest::Response) {
    let b = browser();
    let (_, challenge) = pkce();
    let with = |r: reqwest::RequestBuilder| r.header("x-forwarded-for", ip).header("user-agent", user_agent);
    let res = with(b.get(good_auth_url(server, client_id, &challenge, &[]))).send().await.unwrap();
    let page = with(b.get(server.url(&location(&res)))).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", user.to_string()), ("password", password.to_string())];
    let res = with(b.post(server.url("/login"))).form(&form).send().await.unwrap();
    (b, res)
}

/// The resource owner password grant for `client`.
async fn password_grant(server: &TestServer, client: (&str, &str), username: &str, password: &str) -> (StatusCode, serde_json::Value) {
    let form = [("grant_type", "password"), ("username", username), ("password", password), ("scope", "openid offline_access")];
    let (status, _, body) = post_form(server, "/token", Some(client), &form).await;
    (status, body)
}

/// An error description without its correlation id, which differs on every attempt.
fn without_correlation(body: &serde_json::Value) -> String {
    body["error_description"].as_str().unwrap_or_else(|| panic!("no error_description in {body}")).split(" (correlation id").next().unwrap().to_string()
}

/// The correlation id (the request id) an error description ends with.
fn correlation_of(body: &serde_json::Value) -> String {
    let d = body["error_description"].as_str().unwrap();
    let id = d.split("(correlation id ").nth(1).unwrap_or_else(|| panic!("no correlation id in {d}"));
    id.trim_end_matches(')').to_string()
}

/// The one sign-in log row a request wrote, found by the correlation id a person was shown.
fn row_of(server: &TestServer, correlation: &str) -> latchkey::store::signins::SignInRow {
    let mut rows = latchkey::store::signins::by_request_id(&conn(server), correlation).unwrap();
    assert_eq!(rows.len(), 1, "one row for request {correlation}");
    rows.pop().unwrap()
}

#[tokio::test]
async fn a_block_for_all_apps_blocks_the_portal_and_the_console_but_not_an_excluded_break_glass_account() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let root = server.add_user("root");
    latchkey::store::directory::set_roles(&conn(&server), &root, &[Role::GlobalAdmin]).unwrap();
    let breakglass = server.add_user("breakglass");
    block_everyone(&server, std::slice::from_ref(&breakglass));

    // The portal: /login without an app.
    let b = browser();
    let res = portal_sign_in(&server, &b, "alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{:?}", res.headers());
    assert!(!sets_session_cookie(&res), "a refused sign-in leaves no session");
    let request_id = res.headers().get("x-request-id").unwrap().to_str().unwrap().to_string();
    let html = res.text().await.unwrap();
    let correlation = element_text(&html, "correlation-id");
    assert_eq!(correlation, request_id, "the correlation id is the request id");
    assert!(!html.contains("Block everyone"), "the page does not name the policy");
    let log = last_log(&server);
    assert_eq!(log.request_id.as_deref(), Some(correlation.as_str()));
    assert_eq!((log.id, log.client_id.as_deref(), log.result.as_str()), (row_of(&server, &correlation).id, Some(PORTAL), "failure"));
    assert_eq!(log.reason.as_deref(), Some("blocked by conditional access policy \"Block everyone\""));
    assert!(page(&server, &b, "/").await.contains("Welcome"), "not signed in");

    // The console: an administrator's sign-in that started at /admin.
    let b = browser();
    let res = b.get(server.url("/admin")).send().await.unwrap();
    let login = login_page(&server, &b, &location(&res)).await;
    let res = submit_login(&server, &b, &login, "root", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "blocked before any registration: {:?}", res.headers());
    assert!(!sets_session_cookie(&res));
    assert!(res.text().await.unwrap().contains(r#"id="correlation-id""#));
    let log = last_log(&server);
    assert_eq!((log.client_id.as_deref(), log.user_id.as_deref()), (Some(CONSOLE), Some(root.as_str())));
    assert!(log.reason.unwrap().contains("Block everyone"));
    assert!(latchkey::store::mfa::totp(&conn(&server), &root).unwrap().is_none(), "no registration was started");

    // The excluded break-glass account is not blocked.
    let b = browser();
    let res = portal_sign_in(&server, &b, "breakglass", PASSWORD).await;
    assert_eq!(location(&res), "/");
    assert!(sets_session_cookie(&res));
    assert_eq!(element_text(&page(&server, &b, "/").await, "signed-in-user"), "breakglass");
    let results: serde_json::Value = serde_json::from_str(last_log(&server).policies.as_deref().unwrap()).unwrap();
    assert_eq!(results[0]["reason"], "user is excluded");
    server.stop().await;
}

#[tokio::test]
async fn a_portal_block_refuses_a_session_from_before_it_on_every_portal_page() {
    let f = Fixture::new().await;
    f.tokens().await;
    assert_eq!(element_text(&page(&f.server, &f.browser, "/").await, "signed-in-user"), "alice");
    put_template(&f.server, "block-legacy", State::On, |p| {
        p.name = "No portal".into();
        p.conditions.client_app_types = vec![];
        p.include_apps = Apps { all: false, apps: vec![PORTAL.into()] };
    });
    for path in ["/", "/security", "/security/totp", "/password/change"] {
        let res = f.browser.get(f.server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}: {:?}", res.headers());
        assert!(res.text().await.unwrap().contains(r#"id="correlation-id""#), "{path}");
    }
    // The app itself is not targeted: SSO still works.
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    f.server.stop().await;
}

#[tokio::test]
async fn the_console_is_refused_outside_trusted_locations_on_every_request() {
    let server = TestServer::spawn();
    let (client_id, _) = server.add_client("App", &["authorization_code", "refresh_token"], false);
    let (b, _) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    assert_eq!(get(&b, &server, "/admin").await.0, StatusCode::OK);

    let office =
        latchkey::store::policies::NamedLocation { id: "hq".into(), name: "Office".into(), ranges: vec!["10.0.0.0/8".into()], trusted: true, risk: Risk::None };
    latchkey::store::policies::add_location(&conn(&server), &office, 0).unwrap();
    put_template(&server, "block-legacy", State::On, |p| {
        p.name = "Console from the office only".into();
        p.conditions.client_app_types = vec![];
        p.include_apps = Apps { all: false, apps: vec![CONSOLE.into()] };
        p.conditions.locations =
            Some(LocationCondition { include: Locations { all: true, ..Default::default() }, exclude: Locations { all_trusted: true, ..Default::default() } });
    });
    // The same session, the next request, from 127.0.0.1 (not trusted).
    let (status, html) = get(&b, &server, "/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains(r#"id="correlation-id""#), "{html}");
    let log = last_log(&server);
    assert_eq!(log.client_id.as_deref(), Some(CONSOLE));
    assert_eq!(log.reason.as_deref(), Some("blocked by conditional access policy \"Console from the office only\""));
    assert_eq!(get(&b, &server, "/admin/users").await.0, StatusCode::FORBIDDEN, "every console page");
    // From the office, the same session is let in; back outside, refused again.
    let res = b.get(server.url("/admin")).header("x-forwarded-for", "10.1.2.3").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(get(&b, &server, "/admin").await.0, StatusCode::FORBIDDEN);

    // The policy is about the console: the admin's session still signs in to an app.
    let (_, challenge) = pkce();
    let res = authorize(&server, &b, &good_auth_url(&server, &client_id, &challenge, &[])).await;
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    server.stop().await;
}

#[tokio::test]
async fn password_change_from_a_password_only_session_does_not_clear_user_risk() {
    let mut f = Fixture::new().await;
    f.tokens().await;
    set_risk(&f.server, "alice", Risk::High);
    let res = f.browser.get(f.server.url("/password/change")).send().await.unwrap();
    let res = change_password_at(&f.server, &f.browser, &location(&res), NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = element_text(&res.text().await.unwrap(), "password-error");
    assert!(error.contains("at risk") && error.contains("Forgot password"), "sent to reset instead: {error}");
    assert_eq!(user_risk(&f.server, "alice"), Risk::High, "a password alone cannot remediate");
    // Nothing changed: the new password does not work, the old one still does.
    f.browser = browser();
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let login = login_page(&f.server, &f.browser, &location(&res)).await;
    let html = submit_login(&f.server, &f.browser, &login, "alice", NEW_PASSWORD).await.text().await.unwrap();
    assert!(html.contains("Wrong username or password."));
    f.tokens().await;
    assert_eq!(user_risk(&f.server, "alice"), Risk::High);
    f.server.stop().await;
}

#[tokio::test]
async fn the_password_grant_answers_the_same_for_right_and_wrong_passwords_when_blocked() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let (id, secret) = server.add_client("Mail client", &["password", "refresh_token"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());
    put_template(&server, "block-legacy", State::On, |_| {});
    let right = password_grant(&server, client, "alice", PASSWORD).await;
    let wrong = password_grant(&server, client, "alice", "not her password").await;
    let nobody = password_grant(&server, client, "nobody", PASSWORD).await;
    for (status, body) in [&right, &wrong, &nobody] {
        assert_eq!((*status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
        assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    }
    assert_eq!(without_correlation(&right.1), without_correlation(&wrong.1));
    assert_eq!(without_correlation(&right.1), without_correlation(&nobody.1));
    assert!(!without_correlation(&right.1).contains("Block legacy"), "the policy is not named to the app");
    // Each answer's correlation id leads to its own log row; only the log says why.
    let reason = |id: String| row_of(&server, &id).reason.unwrap();
    assert!(reason(correlation_of(&right.1)).contains("blocked by conditional access policy"));
    assert!(reason(correlation_of(&wrong.1)).contains("blocked by conditional access policy"));
    assert!(reason(correlation_of(&nobody.1)).contains("unknown username"));
    server.stop().await;
}

#[tokio::test]
async fn the_password_grant_locks_out_like_the_browser() {
    let f = Fixture::new().await;
    let (id, secret) = f.server.add_client("Mail client", &["password", "refresh_token"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());
    let threshold = latchkey::config::Config::load_from(None, []).unwrap().protection.lockout_threshold;
    let before = latchkey::store::signins::recent(&conn(&f.server), 1000).unwrap().len();
    for i in 0..threshold {
        let (status, body) = password_grant(&f.server, client, "alice", &format!("guess number {i}")).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    }
    let (status, locked) = password_grant(&f.server, client, "alice", PASSWORD).await;
    assert_eq!((status, locked["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "locked: the right password is refused too");
    assert!(locked.get("access_token").is_none());
    let (_, wrong) = password_grant(&f.server, client, "alice", "one more guess").await;
    assert_eq!(without_correlation(&locked), without_correlation(&wrong), "without saying so");

    // A sign-in log row for every attempt, and the lockout is in it.
    let rows = latchkey::store::signins::recent(&conn(&f.server), 1000).unwrap();
    assert_eq!(rows.len() - before, threshold as usize + 2, "one row per attempt");
    let grant_rows: Vec<_> = rows.iter().filter(|r| r.client_id.as_deref() == Some(id.as_str())).collect();
    assert_eq!(grant_rows.len(), threshold as usize + 2);
    assert!(grant_rows.iter().all(|r| r.result == "failure" && r.username.as_deref() == Some("alice")));
    let wrong_rows = grant_rows.iter().filter(|r| r.reason.as_deref().is_some_and(|x| x.starts_with("legacy password grant: wrong password"))).count();
    assert_eq!(wrong_rows, threshold as usize);
    assert!(grant_rows[1].reason.as_deref().unwrap().starts_with("legacy password grant: account locked (smart lockout)"), "{:?}", grant_rows[1].reason);

    // The same lock holds in the browser.
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let login = login_page(&f.server, &f.browser, &location(&res)).await;
    let html = submit_login(&f.server, &f.browser, &login, "alice", PASSWORD).await.text().await.unwrap();
    assert!(html.contains("Too many attempts. Try again in 1 minute."), "locked in the browser too: {html}");
    // …until it ends.
    f.server.advance(61);
    let (status, body) = password_grant(&f.server, client, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.server.stop().await;
}

#[tokio::test]
async fn the_password_grant_refuses_a_user_with_a_second_factor() {
    let f = Fixture::new().await;
    f.tokens().await;
    register_totp(&f.server, &f.browser).await;
    let bob = f.server.add_user("bob");
    latchkey::store::mfa::set_mfa_required(&conn(&f.server), &bob, true).unwrap();
    f.server.add_user("carol");
    let (id, secret) = f.server.add_client("Mail client", &["password", "refresh_token"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());

    let (status, body) = password_grant(&f.server, client, "carol", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "a password-only user may still use it: {body}");

    let (status, alice) = password_grant(&f.server, client, "alice", PASSWORD).await;
    assert_eq!((status, alice["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "the grant cannot ask for her code");
    assert!(alice.get("access_token").is_none());
    let log = last_log(&f.server);
    assert_eq!(log.user_id.as_deref(), Some(user_id(&f.server, "alice").as_str()));
    assert!(log.reason.as_deref().unwrap().contains("second factor"), "{:?}", log.reason);
    let (_, wrong) = password_grant(&f.server, client, "alice", "not her password").await;
    assert_eq!(without_correlation(&alice), without_correlation(&wrong), "no password oracle either");

    let (status, body) = password_grant(&f.server, client, "bob", PASSWORD).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "bob must use a second factor: {body}");
    f.server.stop().await;
}

#[tokio::test]
async fn a_refresh_token_of_a_password_grant_is_stopped_when_legacy_authentication_is_blocked() {
    let f = Fixture::new().await;
    let (id, secret) = f.server.add_client("Mail client", &["password", "refresh_token"], false);
    let legacy = (id.as_str(), secret.as_deref().unwrap());
    let (status, body) = password_grant(&f.server, legacy, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = refresh(&f.server, legacy, body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "no policy yet: {body}");
    let legacy_refresh = body["refresh_token"].as_str().unwrap().to_string();
    let browser_tokens = f.tokens().await;

    put_template(&f.server, "block-legacy", State::On, |_| {});
    let (status, body) = refresh(&f.server, legacy, &legacy_refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "still legacy authentication: {body}");
    let log = last_log(&f.server);
    assert!(log.reason.as_deref().unwrap().starts_with("refresh: blocked by conditional access policy \"Block legacy authentication\""), "{:?}", log.reason);
    assert!(log.context.unwrap().contains("\"client_app_type\":\"legacy\""));
    // A refresh token from a browser sign-in is no legacy authentication.
    let (status, body) = refresh(&f.server, f.client(), browser_tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    f.server.stop().await;
}

#[tokio::test]
async fn a_refresh_refused_by_policy_stays_unspent_and_works_after_the_policy_is_lifted() {
    let f = Fixture::new().await;
    let t = f.tokens().await;
    let token = t["refresh_token"].as_str().unwrap();
    put_template(&f.server, "all-mfa", State::On, |_| {});
    for _ in 0..2 {
        let (status, body) = refresh(&f.server, f.client(), token).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
        assert!(body["error_description"].as_str().unwrap().contains("sign in again"), "{body}");
    }
    conn(&f.server).execute("DELETE FROM ca_policies", []).unwrap();
    let (status, body) = refresh(&f.server, f.client(), token).await;
    assert_eq!(status, StatusCode::OK, "the refused refresh spent nothing and did not count as a replay: {body}");
    let next = body["refresh_token"].as_str().unwrap().to_string();
    let access = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(&f.server, f.client(), &access).await["active"], true, "the family was not revoked");
    let (status, body) = refresh(&f.server, f.client(), &next).await;
    assert_eq!(status, StatusCode::OK, "and it goes on rotating: {body}");
    let revoked: i64 = conn(&f.server).query_row("SELECT count(*) FROM grants WHERE revoked_at IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(revoked, 0);
    f.server.stop().await;
}

#[tokio::test]
async fn posting_a_password_change_with_a_step_up_requests_id_does_not_mint_a_code_below_the_acr_asked() {
    let f = Fixture::new().await;
    f.tokens().await;
    let issued = codes_issued(&f.server);
    let (_, challenge) = pkce();
    let phr = good_auth_url(&f.server, &f.client_id, &challenge, &[("acr_values", "urn:latchkey:acr:phishing-resistant")]);

    // The step-up flow waits for a security key; its request id is posted to the password change.
    let res = authorize(&f.server, &f.browser, &phr).await;
    let to = location(&res);
    assert!(to.starts_with("/mfa/setup?request="), "{to}");
    let setup = page(&f.server, &f.browser, &to).await;
    // A keys-only page carries its request id and CSRF token on the WebAuthn buttons.
    let request = to.split("request=").nth(1).unwrap().to_string();
    let csrf = setup.split(r#"data-csrf=""#).nth(1).unwrap_or_else(|| panic!("no csrf in {setup}")).split('"').next().unwrap().to_string();
    assert_eq!(setup.split(r#"data-request=""#).nth(1).unwrap().split('"').next().unwrap(), request);
    let form = [
        ("request", request),
        ("csrf", csrf),
        ("current_password", PASSWORD.to_string()),
        ("new_password", NEW_PASSWORD.to_string()),
        ("confirm_password", NEW_PASSWORD.to_string()),
    ];
    let res = f.browser.post(f.server.url("/password/change")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{:?}", res.headers());
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("expired"));
    assert_eq!(codes_issued(&f.server), issued, "no code");

    // A flow that really is at its password change (a forced one) still ends below nothing:
    // after the change the gate asks for the key the app wanted.
    latchkey::store::directory::require_password_change(&conn(&f.server), &user_id(&f.server, "alice"), f.server.now()).unwrap();
    let res = authorize(&f.server, &f.browser, &phr).await;
    let res = change_password_at(&f.server, &f.browser, &location(&res), NEW_PASSWORD).await;
    let to = location(&res);
    assert!(to.starts_with("/mfa/setup?request="), "no code below phishing-resistant: {to}");
    assert!(page(&f.server, &f.browser, &to).await.contains("This application requires a security key or passkey."));
    assert_eq!(codes_issued(&f.server), issued, "no code");
    f.server.stop().await;
}

fn live_session_risk(server: &TestServer, user: &str) -> Vec<(String, String)> {
    let c = conn(server);
    let mut stmt = c.prepare("SELECT sign_in_risk, coalesce(risk_reasons, '') FROM sessions WHERE ended_at IS NULL AND user_id = ?1").unwrap();
    stmt.query_map([user_id(server, user)], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

#[tokio::test]
async fn stepping_up_never_lowers_a_sessions_sign_in_risk() {
    let f = Fixture::new().await;
    f.tokens().await;
    let secret = register_totp(&f.server, &f.browser).await;
    f.server.advance(30);
    let alice = user_id(&f.server, "alice");
    let marker = r#"["password spray: seen in this session"]"#;
    let updated = conn(&f.server)
        .execute("UPDATE sessions SET sign_in_risk = 'high', risk_reasons = ?2 WHERE user_id = ?1 AND ended_at IS NULL", [alice.as_str(), marker])
        .unwrap();
    assert_eq!(updated, 1);

    // Step-up for an app that asks for MFA.
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("acr_values", "urn:latchkey:acr:mfa")])).await;
    let to = location(&res);
    assert!(to.starts_with("/login/mfa?request="), "{to}");
    let mfa = page(&f.server, &f.browser, &to).await;
    let form = [("request", field(&mfa, "request")), ("csrf", field(&mfa, "csrf")), ("method", "totp".into()), ("code", totp_code(&f.server, &secret))];
    let res = f.browser.post(f.server.url("/login/mfa")).form(&form).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    let live = live_session_risk(&f.server, "alice");
    assert_eq!(live.len(), 1, "the stepped-up session replaced the old one");
    assert_eq!(live[0].0, "high", "the stronger session keeps the risk seen in the weaker one");
    assert!(live[0].1.contains("password spray"), "and why: {}", live[0].1);

    // Step-up from Security info.
    f.server.advance(30);
    let res = f.browser.get(f.server.url("/security/verify")).send().await.unwrap();
    let mfa = page(&f.server, &f.browser, &location(&res)).await;
    let form = [("request", field(&mfa, "request")), ("csrf", field(&mfa, "csrf")), ("method", "totp".into()), ("code", totp_code(&f.server, &secret))];
    let res = f.browser.post(f.server.url("/login/mfa")).form(&form).send().await.unwrap();
    assert_eq!(location(&res), "/security");
    let live = live_session_risk(&f.server, "alice");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].0, "high");
    f.server.stop().await;
}

#[tokio::test]
async fn a_password_only_attacker_cannot_register_their_own_factor_from_an_unfamiliar_network() {
    let f = Fixture::new().await;
    home_sign_in_then(&f, "all-mfa").await;

    // The attacker has her password, and nothing else of hers.
    let (b, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "203.0.113.50", ANDROID).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{:?}", res.headers());
    assert!(res.headers().get("location").is_none(), "no /mfa/setup");
    assert!(!sets_session_cookie(&res));
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="correlation-id""#) && html.contains("Contact your administrator"), "{html}");
    assert!(latchkey::store::mfa::totp(&conn(&f.server), &user_id(&f.server, "alice")).unwrap().is_none(), "no secret handed out");
    let log = last_log(&f.server);
    assert_eq!(log.result, "failure");
    assert!(log.reason.as_deref().unwrap().starts_with("registration of a sign-in method refused"), "{:?}", log.reason);
    assert_eq!(log.ip.as_deref(), Some("203.0.113.50"));
    let (_, challenge) = pkce();
    let res = b.get(good_auth_url(&f.server, &f.client_id, &challenge, &[("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"), "no session either");
    // Claiming her usual platform does not help: the User-Agent is the attacker's to choose.
    let (_, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "203.0.113.50", WINDOWS).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a familiar User-Agent from a new network: {:?}", res.headers());

    // alice herself, from her network, is asked to register.
    let (_, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "198.51.100.23", WINDOWS).await;
    assert!(location(&res).starts_with("/mfa/setup?request="), "{}", location(&res));
    f.server.stop().await;
}

#[tokio::test]
async fn a_forced_password_change_blocks_every_use_of_the_session() {
    let f = Fixture::new().await;
    let t = f.tokens().await;
    let alice = user_id(&f.server, "alice");
    latchkey::store::directory::require_password_change(&conn(&f.server), &alice, f.server.now()).unwrap();

    for path in ["/", "/security", "/password/change"] {
        let res = f.browser.get(f.server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&res).starts_with("/password/change?request="), "{path}: {}", location(&res));
    }
    let (status, body) = refresh(&f.server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "no refresh until it is changed");
    let issued = codes_issued(&f.server);
    let (verifier, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let to = location(&res);
    assert!(to.starts_with("/password/change?request="), "no SSO code: {to}");
    assert_eq!(codes_issued(&f.server), issued);

    // Changed: she continues to the app, and the portal is hers again.
    let res = change_password_at(&f.server, &f.browser, &to, NEW_PASSWORD).await;
    let code = query_param(&location(&res), "code").unwrap_or_else(|| panic!("back to the app: {}", location(&res)));
    let (status, body) = redeem(&f.server, f.client(), &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(element_text(&page(&f.server, &f.browser, "/").await, "signed-in-user"), "alice");
    assert!(!latchkey::store::users::by_id(&conn(&f.server), &alice).unwrap().unwrap().must_change_password);
    f.server.stop().await;
}

#[tokio::test]
async fn the_printed_one_time_password_expires_after_a_day() {
    let server = TestServer::spawn();
    let state = server.admin();
    let first = latchkey::auth::users::bootstrap_admin(&state.pool.get().unwrap(), &state.passwords, server.now()).unwrap().expect("the first admin");
    // Within the day it works, and leads straight to choosing a new one.
    let res = portal_sign_in(&server, &browser(), "admin", &first).await;
    assert!(location(&res).starts_with("/password/change?request="), "{}", location(&res));

    server.advance(86_401);
    let res = portal_sign_in(&server, &browser(), "admin", &first).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Wrong username or password."));
    assert_eq!(last_log(&server).reason.as_deref(), Some("one-time password expired"));

    let second = latchkey::auth::users::reset_password(&state.pool.get().unwrap(), &state.passwords, "admin", server.now()).unwrap();
    let res = portal_sign_in(&server, &browser(), "admin", &second).await;
    assert!(location(&res).starts_with("/password/change?request="), "{}", location(&res));
    assert!(!sets_session_cookie(&res), "no session before the change");
    let res = portal_sign_in(&server, &browser(), "admin", &first).await;
    assert!(res.text().await.unwrap().contains("Wrong username or password."), "the old one is gone");
    server.stop().await;
}

#[tokio::test]
async fn an_unassigned_user_is_told_before_being_asked_to_register() {
    let f = Fixture::new().await;
    let c = conn(&f.server);
    c.execute("UPDATE clients SET assignment_required = 1 WHERE id = ?1", [&f.client_id]).unwrap();
    let alice = user_id(&f.server, "alice");
    let refused = |res: reqwest::Response| async move {
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{:?}", res.headers());
        assert!(res.headers().get("location").is_none(), "never /mfa/setup");
        let html = res.text().await.unwrap();
        assert!(html.contains("not assigned to this application") && html.contains(r#"id="correlation-id""#), "{html}");
    };

    latchkey::store::policies::set_security_defaults(&c, true).unwrap();
    let (_, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "127.0.0.1", WINDOWS).await;
    refused(res).await;
    assert_eq!(last_log(&f.server).reason.as_deref(), Some("user is not assigned to the application"));

    latchkey::store::policies::set_security_defaults(&c, false).unwrap();
    put_template(&f.server, "all-mfa", State::On, |_| {});
    let (_, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "127.0.0.1", WINDOWS).await;
    refused(res).await;
    assert_eq!(last_log(&f.server).reason.as_deref(), Some("user is not assigned to the application"));
    assert!(latchkey::store::mfa::totp(&c, &alice).unwrap().is_none(), "no registration was started");
    let interrupted: i64 = c.query_row("SELECT count(*) FROM signin_log WHERE result = 'interrupted'", [], |r| r.get(0)).unwrap();
    assert_eq!(interrupted, 0, "never sent to register");
    f.server.stop().await;
}

#[tokio::test]
async fn an_abandoned_second_factor_is_logged_as_interrupted() {
    let mut f = Fixture::new().await;
    f.tokens().await;
    register_totp(&f.server, &f.browser).await;
    f.browser = browser();
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let login = login_page(&f.server, &f.browser, &location(&res)).await;
    let to = location(&submit_login(&f.server, &f.browser, &login, "alice", PASSWORD).await);
    assert!(to.starts_with("/login/mfa?request="), "{to}");
    // alice (or whoever has her password) closes the tab here.
    let log = last_log(&f.server);
    assert_eq!((log.result.as_str(), log.reason.as_deref()), ("interrupted", Some("a second factor is required")));
    assert_eq!(log.user_id.as_deref(), Some(user_id(&f.server, "alice").as_str()));
    assert_eq!(log.client_id.as_deref(), Some(f.client_id.as_str()));

    // The same for a registration that is never finished.
    f.server.add_user("bob");
    put_template(&f.server, "all-mfa", State::On, |_| {});
    let b = browser();
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let login = login_page(&f.server, &b, &location(&res)).await;
    let to = location(&submit_login(&f.server, &b, &login, "bob", PASSWORD).await);
    assert!(to.starts_with("/mfa/setup?request="), "{to}");
    let log = last_log(&f.server);
    assert_eq!((log.result.as_str(), log.reason.as_deref()), ("interrupted", Some("registration of a sign-in method is required")));
    f.server.stop().await;
}

#[tokio::test]
async fn a_password_spray_reason_stays_on_the_wrong_password_row() {
    let f = Fixture::new().await;
    let (id, secret) = f.server.add_client("Mail client", &["password"], false);
    let sprayer = "198.51.100.9";
    for victim in ["bob", "carol", "dave", "erin", "frank"] {
        attempt_from(&f.server, &f.client_id, victim, "Winter2026!", sprayer, WINDOWS).await;
    }
    let (_, res) = attempt_from(&f.server, &f.client_id, "alice", "Winter2026!", sprayer, WINDOWS).await;
    assert!(res.text().await.unwrap().contains("Wrong username or password."));
    let c = conn(&f.server);
    let row = |id: i64| -> (String, Option<String>) {
        c.query_row("SELECT reason, failure FROM signin_log WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
    };
    let log = last_log(&f.server);
    let (reason, failure) = row(log.id);
    assert!(reason.starts_with("wrong password") && reason.contains("password spray"), "{reason}");
    assert_eq!(failure.as_deref(), Some("wrong_password"), "still counted as a wrong password (brute force, lockout)");
    assert_eq!(log.user_id.as_deref(), Some(user_id(&f.server, "alice").as_str()));

    // The password grant keeps both too.
    let (status, _, body) = post_form(
        &f.server,
        "/token",
        Some((&id, secret.as_deref().unwrap())),
        &[("grant_type", "password"), ("username", "alice"), ("password", "Winter2026!")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (reason, failure) = row(row_of(&f.server, &correlation_of(&body)).id);
    assert!(reason.starts_with("legacy password grant: wrong password") && reason.contains("password spray"), "{reason}");
    assert_eq!(failure.as_deref(), Some("wrong_password"));
    f.server.stop().await;
}

#[tokio::test]
async fn an_admins_forced_password_change_asks_a_password_only_attacker_for_the_second_factor_first() {
    let f = Fixture::new().await;
    let res = portal_sign_in(&f.server, &f.browser, "alice", PASSWORD).await;
    assert_eq!(location(&res), "/", "signed in to the portal");
    let secret = register_totp(&f.server, &f.browser).await;
    // The admin suspects alice's password leaked and demands a new one.
    let alice = user_id(&f.server, "alice");
    latchkey::store::directory::require_password_change(&conn(&f.server), &alice, f.server.now()).unwrap();

    // Whoever has the password alone is asked for her authenticator, not for a new password…
    let attacker = browser();
    let res = portal_sign_in(&f.server, &attacker, "alice", PASSWORD).await;
    let to = location(&res);
    assert!(to.starts_with("/login/mfa?request="), "the second factor before the change: {to}");
    // …and the password-change form cannot be posted for that sign-in.
    let request = to.split("request=").nth(1).unwrap().to_string();
    let csrf = field(&page(&f.server, &attacker, &to).await, "csrf");
    let form = [
        ("request", request),
        ("csrf", csrf),
        ("current_password", PASSWORD.to_string()),
        ("new_password", NEW_PASSWORD.to_string()),
        ("confirm_password", NEW_PASSWORD.to_string()),
    ];
    let res = attacker.post(f.server.url("/password/change")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(latchkey::store::users::by_id(&conn(&f.server), &alice).unwrap().unwrap().must_change_password, "the password was not changed");

    // Alice, with her authenticator (its next code: each is used once), then chooses the new password.
    f.server.advance(30);
    let victim = browser();
    let res = portal_sign_in(&f.server, &victim, "alice", PASSWORD).await;
    let to = location(&res);
    let page_mfa = page(&f.server, &victim, &to).await;
    let form =
        [("request", field(&page_mfa, "request")), ("csrf", field(&page_mfa, "csrf")), ("method", "totp".into()), ("code", totp_code(&f.server, &secret))];
    let res = victim.post(f.server.url("/login/mfa")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", res.text().await.unwrap());
    let res = change_password_at(&f.server, &victim, &location(&res), NEW_PASSWORD).await;
    assert_eq!(location(&res), "/", "{:?}", res.headers());
    assert!(!latchkey::store::users::by_id(&conn(&f.server), &alice).unwrap().unwrap().must_change_password);
    f.server.stop().await;
}

#[tokio::test]
async fn claiming_the_victims_usual_platform_does_not_make_a_far_network_familiar_to_the_risk_detector() {
    let f = Fixture::new().await;
    home_sign_in_then(&f, "risky-signins-mfa").await;
    // Her phone, on the same provider's network: a new /24 and platform, but near — low risk, no MFA asked.
    let (_, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "198.51.7.7", ANDROID).await;
    assert!(query_param(&location(&res), "code").is_some(), "{:?}", res.headers());
    let context = last_log(&f.server).context.unwrap_or_default();
    assert!(context.contains("new network and device platform"), "{context}");

    // The attacker has her password and guesses her platform, from a network of their own.
    for ua in [WINDOWS, ANDROID] {
        let (_, res) = attempt_from(&f.server, &f.client_id, "alice", PASSWORD, "203.0.113.5", ua).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{ua}: {:?}", res.headers());
        assert!(!sets_session_cookie(&res));
        let context = last_log(&f.server).context.unwrap_or_default();
        let context: serde_json::Value = serde_json::from_str(&context).unwrap();
        assert_eq!(context["sign_in_risk"], "medium", "{context}");
        assert!(context["risk_reasons"].to_string().contains("a network far from any this user has signed in from"), "{context}");
    }
    f.server.stop().await;
}
