//! The console's frame in real Chromium: dates in the browser's time zone (set by static/tz.js,
//! no inline script), side navigation on a wide screen, no page wider than a phone, dark mode,
//! and signing out. Screenshots of each page at 1280×900 and 390×844 go to target/screenshots/.

use crate::cdp::Browser;
use crate::common::*;
use serde_json::json;

const PAGES: [(&str, &str); 5] = [
    ("/admin", "overview"),
    ("/admin/signins", "signins"),
    ("/admin/audit", "audit"),
    ("/admin/keys", "keys"),
    ("/admin/signins?result=failure", "signins-failed"),
];

fn viewport(b: &mut Browser, width: u32, height: u32, mobile: bool) {
    b.call("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }));
}

#[tokio::test]
async fn the_console_frame_follows_the_browsers_time_zone_reflows_on_a_phone_goes_dark_and_signs_out() {
    let server = TestServer::spawn_localhost();
    let admin = server.admin();
    let root = server.add_user("root");
    latchkey::store::directory::set_roles(&admin.pool.get().unwrap(), &root, &[latchkey::store::directory::Role::GlobalAdmin]).unwrap();
    // A long, hostile app name and long values, the kind that push tables wide.
    let (wiki, _) = server.add_client("An application with a very long name that goes on and on <b>bold</b>", &["authorization_code"], false);
    {
        let conn = admin.pool.get().unwrap();
        for i in 0..60 {
            let row = latchkey::store::signins::SignIn {
                username: Some("someone.with.a.rather.long.username@example.com"),
                client_id: Some(&wiki),
                ip: Some("2001:db8:85a3:0000:0000:8a2e:0370:7334"),
                result: if i % 2 == 0 { "success" } else { "failure" },
                reason: Some("wrong password, after a long explanation of what happened at the time"),
                ..Default::default()
            };
            latchkey::store::signins::record(&conn, &row, server.now() - i * 3600).unwrap();
        }
    }

    let mut b = Browser::launch();
    b.call("Emulation.setTimezoneOverride", json!({ "timezoneId": "Asia/Tokyo" }));
    b.goto(&server.url("/admin"));
    b.wait_for("document.getElementById('username')");
    b.fill("username", "root");
    b.fill("password", PASSWORD);
    b.submit("password");
    b.wait_for("document.getElementById('totp-secret')");
    let secret = b.eval("document.getElementById('totp-secret').textContent").as_str().unwrap().to_string();
    b.fill("code", &totp_code(&server, &secret));
    b.submit("code");
    b.wait_for("document.getElementById('recovery-codes')");
    b.click("continue");
    b.wait_for("document.getElementById('app-count')");

    // The first console page told the server the browser's zone (once its script has run: wait
    // for it, a loaded machine may not have run it yet); dates are in it from then on, with UTC in
    // the title.
    b.wait_for("document.cookie.includes('lk_tz=')");
    b.goto(&server.url("/admin/signins"));
    let when = b.eval("document.querySelector('.signin-row time').textContent").as_str().unwrap().to_string();
    let title = b.eval("document.querySelector('.signin-row time').title").as_str().unwrap().to_string();
    assert!(when.ends_with(" JST"), "{when}");
    assert!(title.ends_with(" UTC"), "{title}");
    assert_eq!(b.eval("document.cookie.includes('lk_tz=Asia/Tokyo')"), json!(true));
    // The current section is marked.
    assert_eq!(b.eval("document.querySelector('.admin-nav a[aria-current=page]').getAttribute('href')"), json!("/admin/signins"));

    // Wide: the navigation is at the side.
    viewport(&mut b, 1280, 900, false);
    for (path, name) in PAGES {
        b.goto(&server.url(path));
        b.wait_for("document.querySelector('h1')");
        assert_eq!(b.eval("getComputedStyle(document.querySelector('.admin-nav')).float"), json!("left"), "{path}");
        b.screenshot(&format!("console-{name}-1280"));
    }

    // A phone: nothing is wider than the screen; wide tables scroll inside their own wrapper.
    viewport(&mut b, 390, 844, true);
    for (path, name) in PAGES {
        b.goto(&server.url(path));
        b.wait_for("document.querySelector('h1')");
        let (page, screen) = (b.eval("document.documentElement.scrollWidth"), b.eval("window.innerWidth"));
        assert!(page.as_i64().unwrap() <= screen.as_i64().unwrap(), "{path}: the page is {page}px wide on a {screen}px screen");
        let overflowing = b.eval(
            "[...document.querySelectorAll('table.list')].filter(t => !t.closest('.table-scroll') && t.getBoundingClientRect().right > window.innerWidth).length",
        );
        assert_eq!(overflowing, json!(0), "{path}: a table overflows its card");
        b.screenshot(&format!("console-{name}-390"));
    }

    // Dark mode follows the system.
    b.call("Emulation.setEmulatedMedia", json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }));
    viewport(&mut b, 1280, 900, false);
    b.goto(&server.url("/admin"));
    assert_eq!(b.eval("getComputedStyle(document.querySelector('main')).backgroundColor"), json!("rgb(22, 27, 34)"));
    b.screenshot("console-overview-1280-dark");
    b.call("Emulation.setEmulatedMedia", json!({ "features": [{ "name": "prefers-color-scheme", "value": "light" }] }));
    b.goto(&server.url("/admin"));
    assert_eq!(b.eval("getComputedStyle(document.querySelector('main')).backgroundColor"), json!("rgb(255, 255, 255)"));

    // Signing out ends the console session: the next visit asks for the password again.
    b.click("admin-sign-out");
    b.wait_for("!document.getElementById('admin-sign-out')");
    b.goto(&server.url("/admin"));
    b.wait_for("document.getElementById('username') && document.getElementById('password')");
    server.stop().await;
}
