//! The admin console over HTTP: roles, CSRF on every form, validation, and what each action
//! does to sign-ins and tokens.

use crate::common::*;
use latchkey::store::directory::Role;
use reqwest::StatusCode;

/// A browser signed in as `username` with a second factor (as admins must be), plus the
/// session's CSRF token read from Security info.
pub async fn mfa_browser(server: &TestServer, username: &str, roles: &[Role]) -> (reqwest::Client, String) {
    let id = server.add_user(username);
    let admin = server.admin();
    latchkey::store::directory::set_roles(&admin.pool.get().unwrap(), &id, roles).unwrap();
    let b = browser();
    let res = b.get(server.url("/login")).send().await.unwrap();
    let page = login_page(server, &b, &location(&res)).await;
    let res = submit_login(server, &b, &page, username, PASSWORD).await;
    // An administrator never holds a password-only session: a second factor is registered
    // during the sign-in itself.
    if location(&res).starts_with("/mfa/setup") {
        let (_, res) = register_totp_at_sign_in(server, &b, &location(&res)).await;
        assert_eq!(location(&res), "/");
    } else {
        // Not an administrator, and nothing demands a second factor: register one afterwards
        // and use it.
        let secret = register_totp(server, &b).await;
        server.advance(30);
        let res = b.get(server.url("/security/verify")).send().await.unwrap();
        let page = b.get(server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
        let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("method", "totp".into()), ("code", totp_code(server, &secret))];
        let res = b.post(server.url("/login/mfa")).form(&form).send().await.unwrap();
        assert_eq!(location(&res), "/security");
    }
    let security = b.get(server.url("/security")).send().await.unwrap().text().await.unwrap();
    (b, field(&security, "csrf"))
}

pub async fn get(b: &reqwest::Client, server: &TestServer, path: &str) -> (StatusCode, String) {
    let res = b.get(server.url(path)).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

pub async fn post(b: &reqwest::Client, server: &TestServer, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.post(server.url(path)).form(form).send().await.unwrap()
}

/// Registers an app through the console form; returns (client_id, secret).
async fn register_app(b: &reqwest::Client, server: &TestServer, csrf: &str, extra: &[(&str, &str)]) -> (String, Option<String>) {
    let mut form = vec![
        ("csrf", csrf),
        ("name", "Expenses"),
        ("app_type", "web"),
        ("redirect_uris", REDIRECT),
        ("grant_authorization_code", "on"),
        ("grant_refresh_token", "on"),
        ("id_token_alg", "RS256"),
    ];
    for (k, v) in extra {
        form.retain(|(fk, _)| fk != k);
        form.push((k, v));
    }
    let res = post(b, server, "/admin/apps/new", &form).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let page = res.text().await.unwrap();
    let id = element_text(&page, "client-id");
    let secret = page.contains("id=\"client-secret\"").then(|| element_text(&page, "client-secret"));
    (id, secret)
}

#[tokio::test]
async fn the_console_needs_an_admin_role_and_application_admins_only_reach_apps_and_logs() {
    let server = TestServer::spawn();
    // Not signed in: sent to sign in, then back.
    let (status, _) = get(&browser(), &server, "/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let (user, _) = mfa_browser(&server, "ursula", &[]).await;
    for path in ["/admin", "/admin/apps", "/admin/users", "/admin/signins"] {
        let (status, body) = get(&user, &server, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(body.contains("not an administrator"), "{body}");
    }
    let (app_admin, csrf) = mfa_browser(&server, "amy", &[Role::AppAdmin]).await;
    for path in ["/admin", "/admin/apps", "/admin/apps/new", "/admin/signins"] {
        assert_eq!(get(&app_admin, &server, path).await.0, StatusCode::OK, "{path}");
    }
    for path in ["/admin/users", "/admin/users/new", "/admin/groups", "/admin/audit", "/admin/keys"] {
        assert_eq!(get(&app_admin, &server, path).await.0, StatusCode::FORBIDDEN, "{path}");
    }
    let res = post(&app_admin, &server, "/admin/keys/rotate", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = post(&app_admin, &server, "/admin/users/new", &[("csrf", &csrf), ("username", "x"), ("invite", "on")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // …but may register apps.
    register_app(&app_admin, &server, &csrf, &[]).await;
    server.stop().await;
}

#[tokio::test]
async fn an_admin_without_a_second_factor_is_sent_to_register_one() {
    let server = TestServer::spawn();
    let id = server.add_user("root");
    latchkey::store::directory::set_roles(&server.admin().pool.get().unwrap(), &id, &[Role::GlobalAdmin]).unwrap();
    let b = browser();
    let res = b.get(server.url("/admin")).send().await.unwrap();
    let page = login_page(&server, &b, &location(&res)).await;
    let res = submit_login(&server, &b, &page, "root", PASSWORD).await;
    assert!(location(&res).starts_with("/mfa/setup?request="), "registration before any session: {}", location(&res));
    assert!(res.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("lk_session=")), "no session yet");
    let page = b.get(server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("skip-setup"), "an administrator cannot skip registration");
    server.stop().await;
}

#[tokio::test]
async fn every_state_changing_console_route_rejects_a_missing_or_wrong_csrf_token() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (app, _) = register_app(&b, &server, &csrf, &[]).await;
    let user = server.add_user("victim");
    let res = post(&b, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Staff")]).await;
    let group = location(&res).rsplit('/').next().unwrap().to_string();
    let policy = {
        let mut p = latchkey::policy::templates::all().remove(0).2;
        p.id = "p1".into();
        latchkey::store::policies::save(&server.admin().pool.get().unwrap(), &p, 0).unwrap();
        p.id
    };
    let location_id = {
        let l = latchkey::store::policies::NamedLocation {
            id: "l1".into(),
            name: "HQ".into(),
            ranges: vec!["10.0.0.0/8".into()],
            trusted: true,
            risk: latchkey::policy::model::Risk::None,
        };
        latchkey::store::policies::add_location(&server.admin().pool.get().unwrap(), &l, 0).unwrap();
        l.id
    };
    let routes = [
        "/admin/apps/new".to_string(),
        format!("/admin/apps/{app}"),
        format!("/admin/apps/{app}/secret"),
        format!("/admin/apps/{app}/enabled"),
        format!("/admin/apps/{app}/delete"),
        format!("/admin/apps/{app}/assignments"),
        format!("/admin/apps/{app}/assignments/remove"),
        "/admin/users/new".to_string(),
        format!("/admin/users/{user}"),
        format!("/admin/users/{user}/disable"),
        format!("/admin/users/{user}/enable"),
        format!("/admin/users/{user}/reset-mfa"),
        format!("/admin/users/{user}/require-password-change"),
        "/admin/groups".to_string(),
        format!("/admin/groups/{group}/members"),
        format!("/admin/groups/{group}/members/remove"),
        format!("/admin/groups/{group}/delete"),
        "/admin/keys/rotate".to_string(),
        format!("/admin/users/{user}/risk-high"),
        "/admin/security-defaults".to_string(),
        "/admin/policies/new".to_string(),
        format!("/admin/policies/{policy}"),
        format!("/admin/policies/{policy}/state"),
        format!("/admin/policies/{policy}/delete"),
        "/admin/policies/import".to_string(),
        "/admin/locations".to_string(),
        format!("/admin/locations/{location_id}/delete"),
    ];
    for route in &routes {
        for csrf in [None, Some("forged")] {
            let mut form = vec![("name", "x"), ("username", "victim"), ("confirm", "Expenses"), ("enabled", "0"), ("grace", "0")];
            if let Some(c) = csrf {
                form.push(("csrf", c));
            }
            let res = post(&b, &server, route, &form).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{route} with csrf {csrf:?}");
        }
    }
    // Nothing changed.
    let conn = server.admin().pool.get().unwrap();
    assert!(latchkey::store::clients::by_id(&conn, &app).unwrap().unwrap().enabled);
    assert!(!latchkey::store::users::by_id(&conn, &user).unwrap().unwrap().disabled);
    assert_eq!(latchkey::store::directory::groups(&conn).unwrap().len(), 1);
    assert_eq!(latchkey::store::policies::all(&conn).unwrap().len(), 1);
    assert_eq!(latchkey::store::policies::locations(&conn).unwrap().len(), 1);
    assert_eq!(latchkey::store::policies::user_risk(&conn, &user).unwrap(), latchkey::policy::model::Risk::None);
    server.stop().await;
}

#[tokio::test]
async fn the_app_form_shows_each_bad_field_next_to_it_keeps_the_input_and_saves_nothing() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    register_app(&b, &server, &csrf, &[]).await;
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("name", "  ")], "name", "name must be 1 to 100 characters"),
        (&[("name", "Expenses")], "name", "already exists"),
        (&[("redirect_uris", "/relative")], "redirect_uris", "absolute URI"),
        (&[("redirect_uris", "http://app.example.com/cb")], "redirect_uris", "http is only allowed for loopback"),
        (&[("redirect_uris", "https://app.example.com/cb#x")], "redirect_uris", "fragment"),
        (&[("redirect_uris", "https://*.example.com/cb")], "redirect_uris", "wildcards"),
        (&[("redirect_uris", "")], "grants", "needs at least one redirect URI"),
        (&[("post_logout_redirect_uris", "ftp://x.example/")], "post_logout_redirect_uris", "https"),
        (&[("grant_authorization_code", ""), ("grant_refresh_token", "")], "grants", "at least one grant"),
        (&[("app_type", "public"), ("grant_client_credentials", "on")], "grants", "public client cannot use client_credentials"),
        (&[("id_token_alg", "HS256")], "id_token_alg", "not supported"),
        (&[("initiate_login_uri", "not a url")], "initiate_login_uri", "must be an absolute http(s) URL"),
        (&[("frontchannel_logout_uri", "http://app.example.com/fc#x")], "frontchannel_logout_uri", "front-channel logout URI"),
        (&[("backchannel_logout_uri", "https://10.0.0.1/bc")], "backchannel_logout_uri", "public address"),
    ];
    for (changes, field_name, message) in cases {
        let mut form: Vec<(&str, &str)> = vec![
            ("csrf", &csrf),
            ("name", "Payroll"),
            ("app_type", "web"),
            ("redirect_uris", "https://payroll.example.com/cb"),
            ("grant_authorization_code", "on"),
            ("grant_refresh_token", "on"),
            ("id_token_alg", "RS256"),
        ];
        for (k, v) in changes.iter() {
            form.retain(|(fk, _)| fk != k);
            if !v.is_empty() {
                form.push((k, v));
            }
        }
        let res = post(&b, &server, "/admin/apps/new", &form).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}");
        let page = res.text().await.unwrap();
        let error = element_text(&page, &format!("{field_name}-error"));
        assert!(error.contains(message), "{changes:?}: {error}");
        if let Some((_, v)) = changes.iter().find(|(k, v)| *k == "redirect_uris" && !v.is_empty()) {
            assert!(page.contains(&v.replace('&', "&amp;")), "the typed value is kept");
        }
    }
    assert_eq!(latchkey::store::clients::all(&server.admin().pool.get().unwrap()).unwrap().len(), 1, "nothing half-saved");
    server.stop().await;
}

#[tokio::test]
async fn disabling_a_user_ends_their_refresh_tokens_at_once() {
    let mut f = Fixture::new().await;
    let t = f.tokens().await;
    let refresh_token = t["refresh_token"].as_str().unwrap().to_string();
    let alice = latchkey::store::users::by_username(&f.server.admin().pool.get().unwrap(), "alice").unwrap().unwrap();
    let (b, csrf) = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
    let res = post(&b, &f.server, &format!("/admin/users/{}/disable", alice.id), &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, body) = refresh(&f.server, f.client(), &refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Her browser session is gone too: the next sign-in asks for a password and refuses it.
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    assert!(location(&res).starts_with("/login"));
    f.browser = browser();
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let html = submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await.text().await.unwrap();
    assert!(html.contains("Wrong username or password."));
    let (_, audit) = get(&b, &f.server, "/admin/audit").await;
    let audit = unescape(&audit);
    assert!(
        audit.contains("User disabled")
            && audit.contains(r#"<th scope="row">Disabled <span class="visually-hidden">(changed)</span></th><td>no</td><td>yes</td>"#),
        "audit shows before/after"
    );
    f.server.stop().await;
}

#[tokio::test]
async fn deleting_an_app_revokes_its_tokens_and_disabling_stops_its_sign_ins() {
    let mut f = Fixture::new().await;
    let (b, csrf) = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
    let t = f.tokens().await;
    let res = post(&b, &f.server, &format!("/admin/apps/{}/enabled", f.client_id), &[("csrf", &csrf), ("enabled", "0")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, challenge) = pkce();
    let res = f.browser.get(good_auth_url(&f.server, &f.client_id, &challenge, &[])).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "a disabled app gets an error page");
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "disabling revoked its grants");
    post(&b, &f.server, &format!("/admin/apps/{}/enabled", f.client_id), &[("csrf", &csrf), ("enabled", "1")]).await;

    f.browser = browser();
    let t = f.tokens().await;
    let res = post(&b, &f.server, &format!("/admin/apps/{}/delete", f.client_id), &[("csrf", &csrf), ("confirm", "wrong name")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = post(&b, &f.server, &format!("/admin/apps/{}/delete", f.client_id), &[("csrf", &csrf), ("confirm", "App")]).await;
    assert_eq!(location(&res), "/admin/apps");
    let res = rp_http().get(f.server.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&f.server, f.client(), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    f.server.stop().await;
}

#[tokio::test]
async fn assignment_required_refuses_an_unassigned_user_until_assigned_directly_or_by_group() {
    let f = Fixture::new().await;
    let (b, csrf) = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "App"),
        ("redirect_uris", REDIRECT),
        ("grant_authorization_code", "on"),
        ("grant_refresh_token", "on"),
        ("id_token_alg", "RS256"),
        ("assignment_required", "on"),
    ];
    assert_eq!(post(&b, &f.server, &format!("/admin/apps/{}", f.client_id), &form).await.status(), StatusCode::SEE_OTHER);

    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let res = submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = res.text().await.unwrap();
    assert!(html.contains("not assigned to this application"), "{html}");
    assert!(html.contains(r#"id="correlation-id""#), "{html}");
    let back = field_href(&html, "back-to-app");
    assert_eq!(query_param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&back, "state").as_deref(), Some("st4te"));
    let (_, prompt_none) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &prompt_none, &[("prompt", "none")])).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"), "a refused sign-in leaves no session");

    // Assigned through a group: in.
    let res = post(&b, &f.server, "/admin/groups", &[("csrf", &csrf), ("name", "Finance")]).await;
    let group = location(&res);
    post(&b, &f.server, &format!("{group}/members"), &[("csrf", &csrf), ("username", "alice")]).await;
    let res = post(&b, &f.server, &format!("/admin/apps/{}/assignments", f.client_id), &[("csrf", &csrf), ("kind", "group"), ("name", "Nope")]).await;
    assert!(res.text().await.unwrap().contains("No group named"));
    post(&b, &f.server, &format!("/admin/apps/{}/assignments", f.client_id), &[("csrf", &csrf), ("kind", "group"), ("name", "Finance")]).await;
    let (_, challenge) = pkce();
    let to = sign_in(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("scope", "openid groups")]), "alice").await;
    assert!(query_param(&to, "code").is_some(), "assigned now: {to}");
    f.server.stop().await;
}

fn field_href(html: &str, id: &str) -> String {
    let marker = r#"href=""#.to_string();
    let at = html.find(&format!(r#"id="{id}""#)).unwrap();
    let start = html[..at].rfind(&marker).unwrap() + marker.len();
    unescape(&html[start..start + html[start..].find('"').unwrap()])
}

#[tokio::test]
async fn a_rotated_secret_keeps_the_old_one_only_for_the_grace_period() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let (id, old) = register_app(&b, &server, &csrf, &[("grant_client_credentials", "on")]).await;
    let old = old.unwrap();
    let cc = |secret: String| {
        let (server, id) = (&server, id.clone());
        async move { post_form(server, "/token", Some((&id, &secret)), &[("grant_type", "client_credentials")]).await.0 }
    };
    let res = post(&b, &server, &format!("/admin/apps/{id}/secret"), &[("csrf", &csrf), ("grace", "3600")]).await;
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.headers());
    let page = res.text().await.unwrap();
    let new = element_text(&page, "client-secret");
    assert_eq!(cc(new.clone()).await, StatusCode::OK);
    assert_eq!(cc(old.clone()).await, StatusCode::OK, "inside the grace period");
    server.advance(3601);
    assert_eq!(cc(old).await, StatusCode::UNAUTHORIZED, "after it");
    // (The first console session is idle by now; another admin rotates with no grace.)
    let (b, csrf) = mfa_browser(&server, "root2", &[Role::GlobalAdmin]).await;
    let page = post(&b, &server, &format!("/admin/apps/{id}/secret"), &[("csrf", &csrf), ("grace", "0")]).await.text().await.unwrap();
    let newest = element_text(&page, "client-secret");
    assert_eq!(cc(new).await, StatusCode::UNAUTHORIZED, "no grace: the old secret stops at once");
    assert_eq!(cc(newest).await, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_admin_session_must_sign_in_again() {
    let server = TestServer::spawn();
    let (b, _) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    assert_eq!(get(&b, &server, "/admin").await.0, StatusCode::OK);
    server.advance(600);
    assert_eq!(get(&b, &server, "/admin").await.0, StatusCode::OK, "activity keeps it alive");
    server.advance(901);
    let res = b.get(server.url("/admin")).send().await.unwrap();
    assert!(location(&res).starts_with("/login?request="));
    assert!(get(&b, &server, "/").await.1.contains("Welcome"), "the session ended");
    server.stop().await;
}

#[tokio::test]
async fn apps_can_have_es256_or_eddsa_id_tokens_and_a_groups_claim() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
    use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, Scope, TokenResponse};
    let server = TestServer::spawn();
    server.add_user("alice");
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let res = post(&b, &server, "/admin/groups", &[("csrf", &csrf), ("name", "Engineering")]).await;
    post(&b, &server, &format!("{}/members", location(&res)), &[("csrf", &csrf), ("username", "alice")]).await;
    for (alg, jws) in [("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256), ("EdDSA", CoreJwsSigningAlgorithm::EdDsa)] {
        let (id, secret) = register_app(&b, &server, &csrf, &[("name", alg), ("id_token_alg", alg)]).await;
        let rp = relying_party(&server, &id, secret.as_deref()).await;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _, nonce) = rp
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("groups".into()))
            .set_pkce_challenge(challenge)
            .url();
        let back = sign_in(&server, &browser(), url.as_str(), "alice").await;
        let tokens = rp
            .exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&rp_http())
            .await
            .unwrap();
        let id_token = tokens.id_token().unwrap();
        assert_eq!(*id_token.signing_alg().unwrap(), jws);
        let verifier = rp.id_token_verifier().set_allowed_algs(vec![jws]);
        id_token.claims(&verifier, &nonce).expect("verifies against the published key");
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id_token.to_string().split('.').nth(1).unwrap()).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(claims["groups"], serde_json::json!(["Engineering"]));
    }
    server.stop().await;
}

#[tokio::test]
async fn an_invited_user_sets_a_password_once_through_the_link() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let res = post(&b, &server, "/admin/users/new", &[("csrf", &csrf), ("username", "newbie"), ("email", "newbie@example.com"), ("invite", "on")]).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let link = element_text(&res.text().await.unwrap(), "invite-link");
    let path = link.strip_prefix(&server.base).unwrap().to_string();
    let res = post(&browser(), &server, &path, &[("new_password", "short"), ("confirm_password", "short")]).await;
    assert!(res.text().await.unwrap().contains("at least 8"));
    let res = post(&browser(), &server, &path, &[("new_password", "a fine passphrase"), ("confirm_password", "a fine passphrase")]).await;
    assert_eq!(location(&res), "/login");
    let res = post(&browser(), &server, &path, &[("new_password", "another passphrase"), ("confirm_password", "another passphrase")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the link works once");
    // The user signs in with the password they chose.
    let nb = browser();
    let res = nb.get(server.url("/login")).send().await.unwrap();
    let page = login_page(&server, &nb, &location(&res)).await;
    assert_eq!(location(&submit_login(&server, &nb, &page, "newbie", "a fine passphrase").await), "/");

    let res = post(&b, &server, "/admin/users/new", &[("csrf", &csrf), ("username", "newbie"), ("password", "x")]).await;
    let html = res.text().await.unwrap();
    assert!(element_text(&html, "password-error").contains("at least 8"));
    let res = post(&b, &server, "/admin/users/new", &[("csrf", &csrf), ("username", "NEWBIE"), ("password", "long enough pw")]).await;
    assert!(element_text(&res.text().await.unwrap(), "username-error").contains("already exists"));
    server.stop().await;
}

#[tokio::test]
async fn sign_in_logs_filter_by_user_app_result_and_time_and_open_a_detail() {
    let f = Fixture::new().await;
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    submit_login(&f.server, &f.browser, &page, "alice", "wrong password!").await;
    f.tokens().await;
    let (b, _) = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
    let rows = |html: &str| html.matches("class=\"signin-row\"").count();
    let (_, all) = get(&b, &f.server, "/admin/signins").await;
    assert!(rows(&all) >= 4, "alice twice, root's sign-ins");
    let (_, alice) = get(&b, &f.server, "/admin/signins?user=ALICE").await;
    assert_eq!(rows(&alice), 2);
    let (_, failed) = get(&b, &f.server, &format!("/admin/signins?user=alice&result=failure&app={}", f.client_id)).await;
    assert_eq!(rows(&failed), 1);
    assert!(failed.contains("wrong password"));
    let today = latchkey::portal::security::date(Some(f.server.now()));
    let (_, dated) = get(&b, &f.server, &format!("/admin/signins?user=alice&from={today}&to={today}")).await;
    assert_eq!(rows(&dated), 2);
    let (_, old) = get(&b, &f.server, "/admin/signins?user=alice&to=2020-01-01").await;
    assert_eq!(rows(&old), 0);
    let (status, bad) = get(&b, &f.server, "/admin/signins?from=last+week").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(element_text(&bad, "filter-error").contains("not a date"));
    let href_at = failed.find("/admin/signins/").unwrap();
    let id: String = failed[href_at + 15..].chars().take_while(|c| c.is_ascii_digit()).collect();
    let (status, detail) = get(&b, &f.server, &format!("/admin/signins/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(element_text(&detail, "signin-reason"), "wrong password");
    assert!(detail.contains("127.0.0.1"));
    f.server.stop().await;
}

#[tokio::test]
async fn an_invitation_link_ends_the_old_passwords_sessions_and_dies_once_the_password_is_set_otherwise_or_the_account_disabled() {
    let server = TestServer::spawn();
    server.add_user("alice");
    let admin = server.admin();
    let conn = admin.pool.get().unwrap();
    let alice = latchkey::store::users::by_username(&conn, "alice").unwrap().unwrap().id;
    let link = |token: &str| {
        latchkey::store::directory::create_invite(&conn, &latchkey::crypto::secret_hash(token), &alice, server.now() + 3600).unwrap();
        format!("/invite/{token}")
    };
    // alice is signed in when a link that was lying in her mailbox is used: her session ends.
    let b = browser();
    let res = b.get(server.url("/login")).send().await.unwrap();
    let page = login_page(&server, &b, &location(&res)).await;
    assert_eq!(location(&submit_login(&server, &b, &page, "alice", PASSWORD).await), "/");
    let path = link("first-link-token");
    let res = post(&browser(), &server, &path, &[("new_password", "a fine passphrase"), ("confirm_password", "a fine passphrase")]).await;
    assert_eq!(location(&res), "/login");
    let res = b.get(server.url("/security")).send().await.unwrap();
    assert!(location(&res).starts_with("/login"), "the session of the old password ended: {}", location(&res));

    // A link, then the password set another way (here: by the person): the link is dead.
    let path = link("second-link-token");
    let hash = admin.passwords.hash("yet another passphrase");
    latchkey::store::users::set_password(&conn, &alice, &hash, server.now(), false).unwrap();
    let (status, _) = get(&browser(), &server, &path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a link does not outlive a password set otherwise");
    // A link, then the account disabled: dead, and not usable to set a password.
    let path = link("third-link-token");
    latchkey::store::directory::set_disabled(&conn, &alice, true, server.now()).unwrap();
    let (status, _) = get(&browser(), &server, &path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let res = post(&browser(), &server, &path, &[("new_password", "an attacker's choice"), ("confirm_password", "an attacker's choice")]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn an_admin_cannot_switch_on_a_block_that_locks_them_out_of_the_console() {
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let root = latchkey::store::users::by_username(&server.admin().pool.get().unwrap(), "root").unwrap().unwrap().id;
    let block_all = |exclude: Vec<String>| {
        put_template(&server, "block-legacy", latchkey::policy::model::State::Off, |p| {
            p.id = "block-all".into();
            p.name = "Block everyone".into();
            p.conditions.client_app_types = vec![];
            p.include_users = latchkey::policy::model::Principals { all: true, ..Default::default() };
            p.exclude_users.users = exclude;
        })
    };
    block_all(vec![]);
    let res = post(&b, &server, "/admin/policies/block-all/state", &[("csrf", &csrf), ("state", "on")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "refused with the reason on the page");
    assert!(res.text().await.unwrap().contains("would block you from the admin console"));
    let stored = latchkey::store::policies::by_id(&server.admin().pool.get().unwrap(), "block-all").unwrap().unwrap();
    assert_eq!(stored.state, latchkey::policy::model::State::Off, "not switched on");
    // Report-only shows whom it would block; with the admin excluded it can go on.
    let res = post(&b, &server, "/admin/policies/block-all/state", &[("csrf", &csrf), ("state", "report_only")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    block_all(vec![root]);
    let res = post(&b, &server, "/admin/policies/block-all/state", &[("csrf", &csrf), ("state", "on")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = get(&b, &server, "/admin/policies").await;
    assert_eq!(status, StatusCode::OK, "the console still opens for the excluded admin");

    // Nor are two other ways to lock everyone out taken: a location a policy names is not
    // deleted from under it…
    let office = latchkey::store::policies::NamedLocation {
        id: "office".into(),
        name: "Office".into(),
        ranges: vec!["127.0.0.0/8".into()],
        trusted: true,
        risk: latchkey::policy::model::Risk::None,
    };
    latchkey::store::policies::add_location(&server.admin().pool.get().unwrap(), &office, 0).unwrap();
    put_template(&server, "block-legacy", latchkey::policy::model::State::On, |p| {
        p.id = "outside-office".into();
        p.name = "Block outside the office".into();
        p.conditions.client_app_types = vec![];
        p.include_users = latchkey::policy::model::Principals { all: true, ..Default::default() };
        p.conditions.locations = Some(latchkey::policy::model::LocationCondition {
            include: latchkey::policy::model::Locations { all: true, ..Default::default() },
            exclude: latchkey::policy::model::Locations { locations: vec!["office".into()], ..Default::default() },
        });
    });
    let res = post(&b, &server, "/admin/locations/office/delete", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("Block outside the office"), "the page names the policy");
    let res = b.post(server.url("/admin/locations/office/delete")).header("accept-language", "ja").form(&[("csrf", &csrf)]).send().await.unwrap();
    assert!(
        res.text().await.unwrap().contains("先に次のポリシーからこの場所を外してください: Block outside the office。"),
        "in Japanese too, the name as it is"
    );
    assert_eq!(get(&b, &server, "/admin/policies").await.0, StatusCode::OK, "still in");
    // …and a password change is demanded only of users at risk (else after every change, again).
    let json =
        r#"[{"name":"Everyone changes","state":"on","include_users":{"all":true},"include_apps":{"all":true},"grant":{"controls":["password_change"]}}]"#;
    let res = post(&b, &server, "/admin/policies/import", &[("csrf", &csrf), ("json", json)]).await;
    assert!(res.text().await.unwrap().contains("only of users at risk"));
    let json = r#"[{"name":"Everyone changes","state":"on","include_users":{"all":true},"include_apps":{"all":true},"conditions":{"user_risk":["none","high"]},"grant":{"controls":["password_change"]}}]"#;
    let res = post(&b, &server, "/admin/policies/import", &[("csrf", &csrf), ("json", json)]).await;
    assert!(res.text().await.unwrap().contains("only of users at risk"), "a change leaves the risk at none: a condition on none would demand it again");
    assert!(latchkey::store::policies::all(&server.admin().pool.get().unwrap()).unwrap().iter().all(|p| p.name != "Everyone changes"));
    server.stop().await;
}

/// Entra's "don't lock yourself out", for the changes around a blocking policy too: leaving (or
/// deleting) the group it excludes, joining the group it includes, and naming one's own network
/// risky, are each refused with the change rolled back.
#[tokio::test]
async fn an_admin_cannot_lock_themselves_out_through_groups_or_locations() {
    use latchkey::policy::model::{Principals, Risk, State};
    let server = TestServer::spawn();
    let (b, csrf) = mfa_browser(&server, "root", &[Role::GlobalAdmin]).await;
    let group_url = |name: &'static str| {
        let (b, server, csrf) = (&b, &server, &csrf);
        async move { location(&post(b, server, "/admin/groups", &[("csrf", csrf), ("name", name)]).await) }
    };
    let break_glass = group_url("Break glass").await;
    let contractors = group_url("Contractors").await;
    post(&b, &server, &format!("{break_glass}/members"), &[("csrf", &csrf), ("username", "root")]).await;
    let id_of = |url: &str| url.trim_start_matches("/admin/groups/").to_string();
    let root_id = latchkey::store::users::by_username(&server.admin().pool.get().unwrap(), "root").unwrap().unwrap().id;
    // Everyone but the break-glass group is blocked; and so is the Contractors group; and so is
    // a sign-in of high risk.
    for (id, include, exclude, risky) in [
        ("all-but-break-glass", Principals { all: true, ..Default::default() }, vec![id_of(&break_glass)], false),
        ("contractors", Principals { groups: vec![id_of(&contractors)], ..Default::default() }, vec![], false),
        ("high-risk", Principals { all: true, ..Default::default() }, vec![id_of(&break_glass)], true),
    ] {
        put_template(&server, "block-legacy", State::On, |p| {
            p.id = id.into();
            p.name = id.into();
            p.conditions.client_app_types = vec![];
            p.include_users = include;
            p.exclude_users.groups = exclude;
            if risky {
                p.conditions.sign_in_risk = vec![Risk::High];
                p.exclude_users.groups = vec![];
            }
        });
    }
    // Written beside the server: on PostgreSQL its copies see them within PG_CHECK_MS.
    tokio::time::sleep(std::time::Duration::from_millis(latchkey::store::cache::PG_CHECK_MS + 100)).await;
    assert_eq!(get(&b, &server, "/admin").await.0, StatusCode::OK);
    let refused = |res: reqwest::Response| async move {
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.text().await.unwrap().contains("This change would lock you out"));
    };
    refused(post(&b, &server, &format!("{break_glass}/members/remove"), &[("csrf", &csrf), ("user_id", &root_id)]).await).await;
    refused(post(&b, &server, &format!("{break_glass}/delete"), &[("csrf", &csrf), ("confirm", "yes")]).await).await;
    refused(post(&b, &server, &format!("{contractors}/members"), &[("csrf", &csrf), ("username", "root")]).await).await;
    let office = [("csrf", csrf.as_str()), ("name", "Office"), ("ranges", "127.0.0.0/8"), ("risk", "high")];
    refused(post(&b, &server, "/admin/locations", &office).await).await;
    // Nothing changed, and the console is still open.
    let conn = server.admin().pool.get().unwrap();
    let groups = latchkey::store::directory::group_names_of(&conn, &root_id).unwrap();
    assert_eq!(groups.len(), 1, "still only in the break-glass group: {groups:?}");
    assert!(latchkey::store::policies::locations(&conn).unwrap().is_empty());
    assert_eq!(get(&b, &server, "/admin").await.0, StatusCode::OK);
    // Someone else's membership is theirs to change.
    server.add_user("carol");
    let res = post(&b, &server, &format!("{contractors}/members"), &[("csrf", &csrf), ("username", "carol")]).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    server.stop().await;
}
