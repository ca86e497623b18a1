//! Every console page, and the sign-in, MFA, reset and portal pages, in real Chromium: axe-core
//! finds no serious or critical accessibility violation, at 1280×900 and on a 390×844 phone;
//! on the phone no page is wider than the screen and no table overflows its card. A screenshot
//! of each console page at both sizes goes to target/screenshots/ (console-page-NAME-WIDTH.png).

use crate::axe;
use crate::cdp::Browser;
use crate::common::*;
use latchkey::store::directory::Role;
use serde_json::json;

/// Signs `root` (a global administrator) in to the console, registering an authenticator app;
/// checks the sign-in, MFA registration and recovery-code pages on the way.
fn sign_in_admin(server: &TestServer, b: &mut Browser, found: &mut Vec<String>) {
    b.goto(&server.url("/admin"));
    b.wait_for("document.getElementById('username')");
    found.extend(axe::violations(b, "sign-in (console)"));
    b.fill("username", "root");
    b.fill("password", PASSWORD);
    b.submit("password");
    b.wait_for("document.getElementById('totp-secret')");
    found.extend(axe::violations(b, "MFA registration"));
    let secret = b.eval("document.getElementById('totp-secret').textContent").as_str().unwrap().to_string();
    b.fill("code", &totp_code(server, &secret));
    b.submit("code");
    b.wait_for("document.getElementById('recovery-codes')");
    found.extend(axe::violations(b, "recovery codes"));
    b.click("continue");
    b.wait_for("location.pathname === '/admin' && document.querySelector('h1')");
}

/// At a phone's width: nothing wider than the screen, no table outside its scrolling wrapper.
fn fits_a_phone(b: &mut Browser, name: &str, screen: i64, found: &mut Vec<String>) {
    // Measured against the screen's width, not innerWidth: a phone widens its layout viewport
    // (and zooms out) to fit a page that is too wide.
    let page = b.eval("Math.max(document.documentElement.scrollWidth, window.innerWidth)").as_i64().unwrap();
    if page > screen {
        let wide = b.eval(
            &"[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > SCREEN + 1)
                .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + String(e.className).replace(/ /g, '.') : '')).join(', ')"
                .replace("SCREEN", &screen.to_string()),
        );
        found.push(format!("{name}: the page is {page}px wide on a {screen}px screen ({wide})"));
    }
    let overflowing = b.eval(
        &"[...document.querySelectorAll('table')].filter(t => !t.closest('.table-scroll, .visually-hidden') && t.getBoundingClientRect().right > SCREEN).map(t => t.id || t.className).join(', ')".replace("SCREEN", &screen.to_string()),
    );
    if overflowing != json!("") {
        found.push(format!("{name}: a table overflows its card: {overflowing}"));
    }
}

#[tokio::test]
async fn every_console_page_passes_axe_at_desktop_and_phone_sizes_and_fits_a_phone() {
    let server = TestServer::spawn_localhost();
    let admin = server.admin();
    let root = server.add_user("root");
    let alice = server.add_user("alice");
    for name in ["bob", "carol"] {
        server.add_user(name);
    }
    let (app, _) = server.add_client("An application with a very long name that goes on and on <b>bold</b>", &["authorization_code"], false);
    let (policy_id, group_id, signin_id) = {
        let mut conn = admin.pool.get().unwrap();
        latchkey::store::directory::set_roles(&conn, &root, &[Role::GlobalAdmin]).unwrap();
        let group = latchkey::admin::actions::create_group(&mut conn, "cli", "Finance", Some("Everyone who approves payments"), 1).unwrap();
        for who in ["alice", "bob"] {
            let u = latchkey::store::users::by_username(&conn, who).unwrap().unwrap();
            latchkey::admin::actions::set_member(&mut conn, "cli", &group, &u, true, 1).unwrap();
        }
        latchkey::store::directory::assign(&conn, &app, "group", &group.id).unwrap();
        latchkey::store::directory::assign(&conn, &app, "user", &alice).unwrap();
        let location = latchkey::store::policies::NamedLocation {
            id: "office".into(),
            name: "Head office".into(),
            ranges: vec!["192.0.2.0/24".into(), "2001:db8:85a3::/48".into()],
            trusted: true,
            risk: latchkey::policy::model::Risk::None,
        };
        latchkey::store::policies::add_location(&conn, &location, 1).unwrap();
        let (_, _, mut policy) = latchkey::policy::templates::all().remove(0);
        policy.id = "finance-mfa".into();
        policy.state = latchkey::policy::model::State::ReportOnly;
        policy.include_users.groups = vec![group.id.clone()];
        latchkey::store::policies::save(&conn, &policy, 1).unwrap();
        for i in 0..30 {
            let row = latchkey::store::signins::SignIn {
                username: Some("someone.with.a.rather.long.username@example.com"),
                client_id: Some(&app),
                ip: Some("2001:db8:85a3:0000:0000:8a2e:0370:7334"),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"),
                result: if i % 3 == 0 { "failure" } else { "success" },
                reason: (i % 3 == 0).then_some("wrong password, after a long explanation of what happened at the time"),
                ..Default::default()
            };
            latchkey::store::signins::record(&conn, &row, server.now() - i * 3600).unwrap();
        }
        let signin = latchkey::store::signins::recent(&conn, 1).unwrap().remove(0).id;
        (policy.id, group.id, signin)
    };

    let mut found = vec![];
    let mut b = Browser::launch();
    sign_in_admin(&server, &mut b, &mut found);
    // Changes by the console, so the audit log has before/after rows to show.
    b.goto(&server.url(&format!("/admin/apps/{app}/credentials")));
    b.click("rotate-secret");
    b.wait_for("document.getElementById('client-secret')");
    found.extend(axe::violations(&mut b, "new secret"));
    b.screenshot("console-page-app-secret-1280");

    let app_path = format!("/admin/apps/{app}");
    let pages: [(String, &str); 30] = [
        ("/admin".to_string(), "overview"),
        ("/admin/apps".into(), "apps"),
        ("/admin/apps/new".into(), "app-new"),
        (app_path.clone(), "app-overview"),
        (format!("{app_path}/authentication"), "app-authentication"),
        (format!("{app_path}/credentials"), "app-credentials"),
        (format!("{app_path}/assignments"), "app-assignments"),
        (format!("{app_path}/tokens"), "app-tokens"),
        (format!("{app_path}/access"), "app-access"),
        (format!("{app_path}/signins"), "app-signins"),
        ("/admin/users".into(), "users"),
        ("/admin/users/new?mode=password".into(), "user-new"),
        ("/admin/users/new?mode=invite".into(), "user-invite"),
        (format!("/admin/users/{alice}"), "user"),
        (format!("/admin/users/{alice}/delete"), "user-delete"),
        ("/admin/users/import".into(), "user-import"),
        ("/admin/groups".into(), "groups"),
        (format!("/admin/groups/{group_id}"), "group"),
        (format!("/admin/groups/{group_id}/delete"), "group-delete"),
        ("/admin/policies".into(), "policies"),
        ("/admin/policies/new".into(), "policy-new"),
        (format!("/admin/policies/{policy_id}"), "policy"),
        ("/admin/locations".into(), "locations"),
        ("/admin/whatif".into(), "whatif"),
        (format!("/admin/whatif?user=alice&app={app}&ip=192.0.2.7&platform=windows&client_app_type=browser"), "whatif-result"),
        ("/admin/signins".into(), "signins"),
        (format!("/admin/signins/{signin_id}"), "signin"),
        ("/admin/audit".into(), "audit"),
        ("/admin/keys".into(), "keys"),
        ("/admin/apps/no-such-app".into(), "not-found"),
    ];

    for (width, height, mobile) in [(1280, 900, false), (390, 844, true)] {
        b.viewport(width, height, mobile);
        for (path, name) in &pages {
            b.goto(&server.url(path));
            b.wait_for("document.querySelector('h1')");
            found.extend(axe::violations(&mut b, &format!("{name} at {width}px")));
            if mobile {
                fits_a_phone(&mut b, name, width.into(), &mut found);
            }
            b.screenshot_page(&format!("console-page-{name}-{width}"));
        }
    }
    // A form sent with mistakes: the error summary and the fields marked invalid.
    b.goto(&server.url("/admin/users/new?mode=password"));
    b.fill("username", "bob");
    b.fill("email", "not an address");
    b.fill("password", "short");
    b.click("save-user");
    b.wait_for("document.getElementById('form-errors')");
    found.extend(axe::violations(&mut b, "user form with errors"));
    b.screenshot("console-page-user-new-errors-390");
    axe::assert_none(&found);
    server.stop().await;
}

/// axe on the page as it is, at 1280×900 and then on a 390×844 phone (where it must also fit).
fn check_both_sizes(b: &mut Browser, name: &str, found: &mut Vec<String>) {
    b.viewport(1280, 900, false);
    found.extend(axe::violations(b, &format!("{name} at 1280px")));
    b.viewport(390, 844, true);
    found.extend(axe::violations(b, &format!("{name} at 390px")));
    fits_a_phone(b, name, 390, found);
    b.screenshot_page(&format!("page-{name}-390"));
    b.viewport(1280, 900, false);
}

#[tokio::test]
async fn the_sign_in_mfa_reset_and_portal_pages_pass_axe_at_desktop_and_phone_sizes() {
    let server = TestServer::spawn_localhost();
    server.add_user("alice");
    let crm = crate::browser::app(&server, "Outside CRM").await;
    server.admin().pool.get().unwrap().execute("UPDATE clients SET third_party = 1 WHERE id = ?1", [&crm.id]).unwrap();
    let mut found = vec![];
    let mut b = Browser::launch();

    // Sign-in, with a wrong password first.
    b.goto(&server.url("/login"));
    b.wait_for("document.getElementById('username')");
    check_both_sizes(&mut b, "sign-in", &mut found);
    b.fill("username", "alice");
    b.fill("password", "not her password");
    b.submit("password");
    b.wait_for("document.getElementById('login-error')");
    check_both_sizes(&mut b, "sign-in-error", &mut found);
    b.fill("password", PASSWORD);
    b.submit("password");
    b.wait_for("document.getElementById('signed-in-user')");
    check_both_sizes(&mut b, "my-apps", &mut found);

    // The portal: sessions, Security info, an authenticator app registered there.
    b.goto(&server.url("/sessions"));
    b.wait_for("document.getElementById('sessions-heading')");
    check_both_sizes(&mut b, "sessions", &mut found);
    b.goto(&server.url("/security"));
    b.wait_for("document.getElementById('totp-status')");
    check_both_sizes(&mut b, "security-info", &mut found);
    b.goto(&server.url("/security/totp"));
    b.wait_for("document.getElementById('totp-secret')");
    check_both_sizes(&mut b, "authenticator-setup", &mut found);
    let secret = b.eval("document.getElementById('totp-secret').textContent").as_str().unwrap().replace(' ', "");
    b.fill("code", &totp_code(&server, &secret));
    b.submit("code");
    b.wait_for("document.getElementById('recovery-codes')");
    check_both_sizes(&mut b, "recovery-codes", &mut found);

    // Consent to a third-party app.
    let (url, _, _) = crm
        .rp
        .authorize_url(openidconnect::core::CoreAuthenticationFlow::AuthorizationCode, openidconnect::CsrfToken::new_random, openidconnect::Nonce::new_random)
        .url();
    b.goto(url.as_str());
    b.wait_for("document.getElementById('consent-approve')");
    check_both_sizes(&mut b, "consent", &mut found);

    // Signed out, then the second factor at the next sign-in.
    b.goto(&server.url("/"));
    b.click("sign-out");
    b.wait_for("document.body.innerText.includes('You have signed out')");
    check_both_sizes(&mut b, "signed-out", &mut found);
    b.goto(&server.url("/login"));
    b.wait_for("document.getElementById('username')");
    b.fill("username", "alice");
    b.fill("password", PASSWORD);
    b.submit("password");
    b.wait_for("document.getElementById('code')");
    check_both_sizes(&mut b, "second-factor", &mut found);
    server.advance(30);
    b.fill("code", &totp_code(&server, &secret));
    b.submit("code");
    b.wait_for("document.getElementById('signed-in-user')");
    b.click("sign-out");
    b.wait_for("document.body.innerText.includes('You have signed out')");

    // Self-service reset with the authenticator app.
    b.goto(&server.url("/reset"));
    b.wait_for("document.getElementById('username')");
    check_both_sizes(&mut b, "reset-start", &mut found);
    b.fill("username", "alice");
    b.submit("username");
    b.wait_for("location.pathname === '/reset/verify'");
    check_both_sizes(&mut b, "reset-verify", &mut found);
    server.advance(30);
    b.fill("totp-code", &totp_code(&server, &secret));
    b.click("verify-totp");
    b.wait_for("location.pathname === '/reset/password'");
    check_both_sizes(&mut b, "reset-password", &mut found);
    b.fill("new_password", "a phrase only alice knows");
    b.fill("confirm_password", "a phrase only alice knows");
    b.click("save-password");
    b.wait_for("document.getElementById('reset-done')");
    check_both_sizes(&mut b, "reset-done", &mut found);
    axe::assert_none(&found);
    server.stop().await;
}
