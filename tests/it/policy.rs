//! Conditional access and security defaults, end to end: templates, grace period, exclusions,
//! trusted locations, report-only, legacy authentication, sign-in frequency, What If.

use crate::admin::{get, mfa_browser, post};
use crate::common::*;
use latchkey::policy::model::*;
use latchkey::store::directory::Role;
use reqwest::StatusCode;

/// alice signs in with her password; where does latchkey send her?
async fn after_password(f: &Fixture, user: &str) -> String {
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let res = submit_login(&f.server, &f.browser, &page, user, PASSWORD).await;
    if res.status() == StatusCode::FORBIDDEN {
        return format!("forbidden: {}", res.text().await.unwrap());
    }
    location(&res)
}

fn last_log(server: &TestServer) -> latchkey::store::signins::SignInRow {
    latchkey::store::signins::recent(&server.admin().pool.get().unwrap(), 1).unwrap().remove(0)
}

fn set_risk(server: &TestServer, user: &str, risk: Risk) {
    let conn = server.admin().pool.get().unwrap();
    let u = latchkey::store::users::by_username(&conn, user).unwrap().unwrap();
    latchkey::store::policies::set_user_risk(&conn, &u.id, risk).unwrap();
}

#[tokio::test]
async fn require_mfa_for_all_users_but_not_for_the_excluded_break_glass_account() {
    let mut f = Fixture::new().await;
    f.server.add_user("breakglass");
    let bg = latchkey::store::users::by_username(&f.server.admin().pool.get().unwrap(), "breakglass").unwrap().unwrap();
    put_template(&f.server, "all-mfa", State::On, |p| p.exclude_users.users = vec![bg.id.clone()]);
    let to = after_password(&f, "alice").await;
    assert!(to.starts_with("/mfa/setup?request="), "alice has no method: she must register one: {to}");
    f.browser = browser();
    let to = after_password(&f, "breakglass").await;
    assert!(query_param(&to, "code").is_some(), "the break-glass account is excluded: {to}");
    let log = last_log(&f.server);
    let results: serde_json::Value = serde_json::from_str(log.policies.as_deref().unwrap()).unwrap();
    assert_eq!(results[0]["reason"], "user is excluded");
    f.server.stop().await;
}

#[tokio::test]
async fn require_mfa_for_administrators_only_touches_administrators() {
    let mut f = Fixture::new().await;
    put_template(&f.server, "admins-mfa", State::On, |_| {});
    let to = after_password(&f, "alice").await;
    assert!(query_param(&to, "code").is_some(), "alice is no admin: {to}");
    let root = f.server.add_user("root");
    latchkey::store::directory::set_roles(&f.server.admin().pool.get().unwrap(), &root, &[Role::AppAdmin]).unwrap();
    f.browser = browser();
    let to = after_password(&f, "root").await;
    assert!(to.starts_with("/mfa/setup?request="), "{to}");
    f.server.stop().await;
}

#[tokio::test]
async fn phishing_resistant_mfa_for_admins_refuses_an_authenticator_app() {
    let (b, _) = {
        let f = Fixture::new().await;
        let r = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
        put_template(&f.server, "admins-phishing-resistant", State::On, |_| {});
        // root has only an authenticator app: the app sign-in asks for a key root does not have.
        let (_, challenge) = pkce();
        let res = authorize(&f.server, &r.0, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
        let to = location(&res);
        assert!(to.starts_with("/mfa/setup?request="), "{to}");
        let page = r.0.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("This application requires a security key or passkey."));
        f.server.stop().await;
        r
    };
    drop(b);
}

#[tokio::test]
async fn block_legacy_authentication_refuses_the_password_grant_and_logs_the_policy() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let (id, secret) = server.add_client("Mail client", &["password", "refresh_token"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());
    let form = [("grant_type", "password"), ("username", "alice"), ("password", PASSWORD), ("scope", "openid offline_access")];
    let (status, _, body) = post_form(&server, "/token", Some(client), &form).await;
    assert_eq!(status, StatusCode::OK, "no policy, no defaults: legacy works: {body}");
    assert!(body["id_token"].is_string() && body["refresh_token"].is_string());

    put_template(&server, "block-legacy", State::On, |_| {});
    let (status, _, body) = post_form(&server, "/token", Some(client), &form).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let blocked = body["error_description"].as_str().unwrap().to_string();
    assert!(!blocked.contains("Block legacy authentication"), "the app is not told the policy: {body}");
    let log = last_log(&server);
    assert_eq!(log.result, "failure");
    assert_eq!(log.reason.as_deref(), Some("legacy password grant: blocked by conditional access policy \"Block legacy authentication\""));
    assert!(log.context.unwrap().contains("\"client_app_type\":\"legacy\""));

    // A wrong password gets the same answer: the grant is no password oracle.
    let bad = [("grant_type", "password"), ("username", "alice"), ("password", "nope nope")];
    let (_, _, body) = post_form(&server, "/token", Some(client), &bad).await;
    let without_id = |d: &str| d.split(" (correlation id").next().unwrap().to_string();
    assert_eq!(without_id(body["error_description"].as_str().unwrap()), without_id(&blocked));
    server.stop().await;
}

#[tokio::test]
async fn security_defaults_block_legacy_authentication_and_let_mfa_registration_wait_14_days() {
    let mut f = Fixture::new().await;
    latchkey::store::policies::set_security_defaults(&f.server.admin().pool.get().unwrap(), true).unwrap();
    let (id, secret) = f.server.add_client("Old mail", &["password"], false);
    let (status, _, body) =
        post_form(&f.server, "/token", Some((&id, secret.as_deref().unwrap())), &[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)])
            .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert!(last_log(&f.server).reason.unwrap().contains("Security defaults"));

    // Day 1: asked to register, with 14 days left, and may skip.
    let to = after_password(&f, "alice").await;
    assert!(to.starts_with("/mfa/setup?request="), "{to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_text(&page, "days-left"), "14 days left");
    let res =
        f.browser.post(f.server.url("/mfa/setup/skip")).form(&[("request", field(&page, "request")), ("csrf", field(&page, "csrf"))]).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some(), "skipped: back to the app");

    // Day 15: registration is required; skipping is refused.
    f.server.advance(15 * 86_400);
    f.browser = browser();
    let to = after_password(&f, "alice").await;
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("days-left") && !page.contains("Skip for now"), "{page}");
    let res =
        f.browser.post(f.server.url("/mfa/setup/skip")).form(&[("request", field(&page, "request")), ("csrf", field(&page, "csrf"))]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("code", totp_code(&f.server, &element_text(&page, "totp-secret")))];
    let res = f.browser.post(f.server.url("/mfa/setup")).form(&form).send().await.unwrap();
    let res = continue_past_recovery_codes(&f.server, &f.browser, res).await;
    assert!(query_param(&location(&res), "code").is_some(), "registered: in");
    f.server.stop().await;
}

#[tokio::test]
async fn security_defaults_and_policies_are_mutually_exclusive() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let on = |v: &str| [("csrf", csrf.clone()), ("enabled", v.to_string())];
    post(&b, &server, "/admin/security-defaults", &on("1").iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    // Create a policy from the template form, report-only: fine.
    let (_, page) = get(&b, &server, "/admin/policies/new?template=all-mfa").await;
    assert!(page.contains(r#"value="Require MFA for all users""#));
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Everyone MFA"),
        ("state", "report_only"),
        ("users_all", "on"),
        ("apps_all", "on"),
        ("grant", "grant"),
        ("operator", "any_of"),
        ("ctl_mfa", "on"),
        ("loc_mode", "any"),
    ];
    let res = post(&b, &server, "/admin/policies/new", &form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let policy_path = location(&res);
    // Switching it on while defaults are on is refused, with the reason.
    let res = post(&b, &server, &format!("{policy_path}/state"), &[("csrf", &csrf), ("state", "on")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(element_text(&res.text().await.unwrap(), "policy-error").contains("mutually exclusive"));
    // Turning defaults off needs the confirmation box.
    let res = post(&b, &server, "/admin/security-defaults", &[("csrf", &csrf), ("enabled", "0")]).await;
    assert!(element_text(&res.text().await.unwrap(), "policy-error").contains("tick the box"));
    let res = post(&b, &server, "/admin/security-defaults", &[("csrf", &csrf), ("enabled", "0"), ("confirm", "on")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = post(&b, &server, &format!("{policy_path}/state"), &[("csrf", &csrf), ("state", "on")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // …and defaults cannot come back while a policy is on.
    let res = post(&b, &server, "/admin/security-defaults", &[("csrf", &csrf), ("enabled", "1")]).await;
    assert!(element_text(&res.text().await.unwrap(), "policy-error").contains("mutually exclusive"));
    // Export and re-import round-trips; a bad import saves nothing.
    let (_, exported) = get(&b, &server, "/admin/policies/export").await;
    let list: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(list[0]["name"], "Everyone MFA");
    let res = post(&b, &server, "/admin/policies/import", &[("csrf", &csrf), ("json", r#"[{"name": "", "state": "on"}]"#)]).await;
    assert!(element_text(&res.text().await.unwrap(), "policy-error").contains("name must be"));
    assert_eq!(latchkey::store::policies::all(&server.admin().pool.get().unwrap()).unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn trusted_named_locations_can_be_excluded() {
    let mut f = Fixture::new().await;
    let conn = f.server.admin().pool.get().unwrap();
    let office = latchkey::store::policies::NamedLocation {
        id: "hq".into(),
        name: "Office".into(),
        ranges: vec!["127.0.0.0/8".into()],
        trusted: true,
        risk: Risk::None,
    };
    latchkey::store::policies::add_location(&conn, &office, 0).unwrap();
    put_template(&f.server, "all-mfa", State::On, |p| {
        p.conditions.locations =
            Some(LocationCondition { include: Locations { all: true, ..Default::default() }, exclude: Locations { all_trusted: true, ..Default::default() } });
    });
    let to = after_password(&f, "alice").await;
    assert!(query_param(&to, "code").is_some(), "from the trusted office: no MFA: {to}");
    conn.execute("UPDATE named_locations SET trusted = 0", []).unwrap();
    f.browser = browser();
    let to = after_password(&f, "alice").await;
    assert!(to.starts_with("/mfa/setup"), "no longer trusted: MFA: {to}");
    f.server.stop().await;
}

#[tokio::test]
async fn risky_sign_ins_need_mfa_and_risky_users_must_change_their_password() {
    let mut f = Fixture::new().await;
    let conn = f.server.admin().pool.get().unwrap();
    put_template(&f.server, "risky-signins-mfa", State::On, |_| {});
    let to = after_password(&f, "alice").await;
    assert!(query_param(&to, "code").is_some(), "no risk yet: {to}");
    let risky = latchkey::store::policies::NamedLocation {
        id: "tor".into(),
        name: "Anonymisers".into(),
        ranges: vec!["127.0.0.1/32".into()],
        trusted: false,
        risk: Risk::High,
    };
    latchkey::store::policies::add_location(&conn, &risky, 0).unwrap();
    f.browser = browser();
    let to = after_password(&f, "alice").await;
    assert!(to.starts_with("forbidden:") && to.contains("correlation-id"), "high sign-in risk, no method: no registration from here: {to}");
    conn.execute("DELETE FROM named_locations", []).unwrap();
    conn.execute("DELETE FROM ca_policies", []).unwrap();

    // High user risk: MFA and a password change; the change remediates the risk.
    f.browser = browser();
    f.tokens().await;
    let secret = register_totp(&f.server, &f.browser).await;
    f.server.advance(30);
    put_template(&f.server, "risky-users-password", State::On, |_| {});
    set_risk(&f.server, "alice", Risk::High);
    f.browser = browser();
    let (verifier, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let to = location(&submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await);
    assert!(to.starts_with("/login/mfa"), "{to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("method", "totp".into()), ("code", totp_code(&f.server, &secret))];
    let to = location(&f.browser.post(f.server.url("/login/mfa")).form(&form).send().await.unwrap());
    assert!(to.starts_with("/password/change?request="), "then a password change: {to}");
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let form = [
        ("request", field(&page, "request")),
        ("csrf", field(&page, "csrf")),
        ("new_password", "a whole new passphrase".into()),
        ("confirm_password", "a whole new passphrase".into()),
    ];
    let res = f.browser.post(f.server.url("/password/change")).form(&form).send().await.unwrap();
    let code = query_param(&location(&res), "code").expect("then the app");
    let (status, _) = redeem(&f.server, f.client(), &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let u = latchkey::store::users::by_username(&conn, "alice").unwrap().unwrap();
    assert_eq!(latchkey::store::policies::user_risk(&conn, &u.id).unwrap(), Risk::None, "remediated");
    f.server.stop().await;
}

#[tokio::test]
async fn report_only_policies_are_logged_but_never_enforced() {
    let f = Fixture::new().await;
    put_template(&f.server, "all-mfa", State::ReportOnly, |p| {
        p.grant = Grant { block: true, ..Default::default() };
        p.name = "Would block everyone".into();
    });
    let to = after_password(&f, "alice").await;
    assert!(query_param(&to, "code").is_some(), "not enforced: {to}");
    let (b, _) = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
    let (_, page) = get(&b, &f.server, "/admin/signins?report_only=on&user=alice").await;
    assert_eq!(page.matches("class=\"signin-row\"").count(), 1, "alice's sign-in, which report-only would have blocked");
    let (_, blocked) = get(&b, &f.server, "/admin/signins?blocked=on").await;
    assert_eq!(blocked.matches("class=\"signin-row\"").count(), 0);
    let href_at = page.find("/admin/signins/").unwrap();
    let id: String = page[href_at + 15..].chars().take_while(|c| c.is_ascii_digit()).collect();
    let (_, detail) = get(&b, &f.server, &format!("/admin/signins/{id}")).await;
    assert!(unescape(&detail).contains("report-only: would have blocks access"), "{detail}");
    let (_, policy_page) = get(&b, &f.server, "/admin/policies/all-mfa").await;
    // alice's sign-in, and the admin's own sign-in to the console (all apps include it).
    let impact: i64 = element_text(&policy_page, "impact-blocked").parse().unwrap();
    assert!(impact >= 2, "impact preview replays the logged sign-ins: {impact}");
    f.server.stop().await;
}

#[tokio::test]
async fn sign_in_frequency_forces_a_fresh_sign_in_and_ends_refresh() {
    let f = Fixture::new().await;
    put_template(&f.server, "all-mfa", State::On, |p| {
        p.name = "Every hour".into();
        p.grant = Grant::default();
        p.session.sign_in_frequency_hours = Some(1);
    });
    let t = f.tokens().await;
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    assert!(query_param(&location(&res), "code").is_some(), "within the hour: SSO");
    f.server.advance(3601);
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    assert!(location(&res).starts_with("/login?request="), "after it: sign in again");
    let (status, body) = refresh(&f.server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert!(body["error_description"].as_str().unwrap().contains("sign in again"));
    f.server.stop().await;
}

#[tokio::test]
async fn a_policy_turned_on_stops_refresh_and_client_credentials_where_no_person_can_satisfy_it() {
    let f = Fixture::new().await;
    let t = f.tokens().await;
    let (svc, svc_secret) = f.server.add_client("Sync job", &["client_credentials"], false);
    put_template(&f.server, "all-mfa", State::On, |_| {});
    let (status, body) = refresh(&f.server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "password-only grant, MFA now required");
    let svc_auth = (svc.as_str(), svc_secret.as_deref().unwrap());
    let cc_form = [("grant_type", "client_credentials")];
    assert_eq!(post_form(&f.server, "/token", Some(svc_auth), &cc_form).await.0, StatusCode::OK, "user policies do not target apps acting as themselves");
    put_template(&f.server, "block-legacy", State::On, |p| {
        p.name = "No sync".into();
        p.conditions.client_app_types = vec![ClientAppType::ClientCredentials];
        p.include_apps = Apps { all: false, apps: vec![svc.clone()] };
    });
    let (status, _, body) = post_form(&f.server, "/token", Some(svc_auth), &cc_form).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert!(body["error_description"].as_str().unwrap().contains("No sync"));
    f.server.stop().await;
}

/// A client-credentials grant is first tried from the in-memory copies of apps and policies,
/// on the HTTP worker. A policy this process switches on stops the very next grant; one another
/// process (the CLI) switches stops grants at the latest `PG_CHECK_MS` later; every refusal is
/// in the sign-in log, and every grant counts once.
#[tokio::test]
async fn client_credentials_answered_from_memory_follow_every_policy_change_and_log_each_refusal() {
    let f = Fixture::new().await;
    let (svc, svc_secret) = f.server.add_client("Sync job", &["client_credentials"], false);
    let auth = (svc.as_str(), svc_secret.as_deref().unwrap());
    let cc = [("grant_type", "client_credentials")];
    let grant = || async { post_form(&f.server, "/token", Some(auth), &cc).await };
    // The first grant reads the copies; the next ones are answered from them.
    for _ in 0..3 {
        assert_eq!(grant().await.0, StatusCode::OK);
    }
    let logged = || latchkey::store::signins::recent(&f.server.admin().pool.get().unwrap(), 100).unwrap().len();
    let rows = logged();
    put_template(&f.server, "block-legacy", State::On, |p| {
        p.name = "No sync".into();
        p.conditions.client_app_types = vec![ClientAppType::ClientCredentials];
        p.include_apps = Apps { all: false, apps: vec![svc.clone()] };
    });
    for n in 1..=2 {
        let (status, _, body) = grant().await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "refused at once");
        let row = last_log(&f.server);
        assert_eq!((row.client_id.as_deref(), row.result.as_str()), (Some(svc.as_str()), "failure"));
        assert_eq!(row.reason.as_deref(), Some("blocked by conditional access policy \"No sync\""));
        assert_eq!(logged(), rows + n, "each refusal logged once");
    }
    // Another process switches it off, then on again.
    let wait = std::time::Duration::from_millis(latchkey::store::cache::PG_CHECK_MS + 100);
    let cli = |state: &str| {
        let (ok, _, err) = latchkey_run(&f.server.data_dir, &["policy", "set-state", "--policy", "No sync", state]);
        assert!(ok, "{err}");
    };
    cli("off");
    tokio::time::sleep(wait).await;
    for _ in 0..3 {
        assert_eq!(grant().await.0, StatusCode::OK, "switched off by another process");
    }
    cli("on");
    tokio::time::sleep(wait).await;
    assert_eq!(grant().await.0, StatusCode::BAD_REQUEST, "switched on by another process");
    // The app disabled by this process: the next grant fails client authentication.
    cli("off");
    latchkey::store::clients::set_enabled(&f.server.admin().pool.get().unwrap(), &svc, false).unwrap();
    let (status, _, body) = grant().await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    f.server.stop().await;
}

#[tokio::test]
async fn what_if_agrees_with_a_real_sign_in() {
    let f = Fixture::new().await;
    put_template(&f.server, "block-legacy", State::On, |p| {
        p.name = "No unknown devices".into();
        p.conditions.client_app_types = vec![];
        p.conditions.platforms_include = vec![Platform::Other];
        // Not the console: the admin below checks What If from the same kind of client.
        p.exclude_apps.apps = vec![latchkey::gate::CONSOLE.into(), latchkey::gate::PORTAL.into()];
    });
    put_template(&f.server, "admins-mfa", State::ReportOnly, |_| {});
    let to = after_password(&f, "alice").await;
    assert!(to.starts_with("forbidden:") && to.contains("Access blocked"), "the test client has no known platform: {to}");
    assert!(!to.contains("No unknown devices"), "the page does not name the policy");
    let real = last_log(&f.server);
    assert_eq!(real.reason.as_deref(), Some("blocked by conditional access policy \"No unknown devices\""));

    let (b, _) = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
    let q = format!("/admin/whatif?user=alice&app={}&ip=127.0.0.1&platform=other&client_app_type=browser", f.client_id);
    let (_, page) = get(&b, &f.server, &q).await;
    assert_eq!(unescape(&element_text(&page, "whatif-decision")), "Blocked by \"No unknown devices\"");
    let real_results: Vec<serde_json::Value> = serde_json::from_str(real.policies.as_deref().unwrap()).unwrap();
    for r in real_results {
        let row = format!(
            "<td>{}</td><td>{}</td><td>{}</td>",
            r["name"].as_str().unwrap(),
            // The state in words, as the console shows it.
            match r["state"].as_str().unwrap() {
                "on" => "On",
                "off" => "Off",
                "report_only" => "Report-only",
                other => panic!("state {other}"),
            },
            if r["applied"] == true { "yes" } else { "no" }
        );
        assert!(page.contains(&row), "What If shows {row}");
    }
    let (_, windows) = get(&b, &f.server, &q.replace("platform=other", "platform=windows")).await;
    assert_eq!(element_text(&windows, "whatif-decision"), "Allowed");
    f.server.stop().await;
}

#[tokio::test]
async fn the_policy_form_saves_each_state_and_an_unchanged_on_policy_stays_on() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let conn = server.admin().pool.get().unwrap();
    latchkey::store::policies::set_security_defaults(&conn, false).unwrap();
    let form = |state: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Everyone MFA".to_string()),
            ("state", state.to_string()),
            ("users_all", "on".into()),
            ("apps_all", "on".into()),
            ("grant", "grant".into()),
            ("operator", "any_of".into()),
            ("ctl_mfa", "on".into()),
            ("loc_mode", "any".into()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| f.into_iter().collect::<Vec<_>>();
    let res = b.post(server.url("/admin/policies/new")).form(&send(form("on"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let path = location(&res);
    let saved = || latchkey::store::policies::all(&server.admin().pool.get().unwrap()).unwrap().remove(0).state;
    assert_eq!(saved(), State::On, "choosing On saves On");
    // Saving the On policy's own form unchanged keeps it On (enforcement never silently stops).
    let (_, page) = get(&b, &server, &path).await;
    assert!(page.contains(r#"<option value="on" selected>"#), "the form shows On");
    for state in ["report_only", "off", "on"] {
        let res = b.post(server.url(&path)).form(&send(form(state))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{state}");
        assert_eq!(saved(), State::parse(state).unwrap(), "{state}");
    }
    // An unknown state is an error on the form, not a silent report-only.
    let res = b.post(server.url(&path)).form(&send(form("enforce"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("Choose a state"));
    // With security defaults on, choosing On through the form is refused with the reason.
    latchkey::store::policies::set_security_defaults(&conn, true).unwrap();
    let res = b.post(server.url(&path)).form(&send(form("report_only"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = b.post(server.url(&path)).form(&send(form("on"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("mutually exclusive"));
    assert_eq!(saved(), State::ReportOnly);
    // The list says it in words, not as the stored code.
    let (_, list) = get(&b, &server, "/admin/policies").await;
    assert!(list.contains("<td>Report-only</td>") && !list.contains("<td>report_only</td>"), "{list}");
    server.stop().await;
}
