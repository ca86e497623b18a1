//! In Chromium: the console's pickers are enhanced by static/picker.js (matches as one types,
//! no page load, Enter does not submit), and an app's sections are pages reached by their tabs.

use crate::cdp::Browser;
use crate::common::*;
use latchkey::store::directory::Role;

/// Signs `root` (a global administrator) in to the console, registering an authenticator app.
fn sign_in_admin(server: &TestServer, b: &mut Browser) {
    b.goto(&server.url("/admin"));
    b.wait_for("document.getElementById('username')");
    b.fill("username", "root");
    b.fill("password", PASSWORD);
    b.submit("password");
    b.wait_for("document.getElementById('totp-secret')");
    let secret = b.eval("document.getElementById('totp-secret').textContent").as_str().unwrap().to_string();
    b.fill("code", &totp_code(server, &secret));
    b.submit("code");
    b.wait_for("document.getElementById('recovery-codes')");
    b.click("continue");
    b.wait_for("location.pathname === '/admin' && document.querySelector('h1')");
}

/// Types `text` into the field `id` as a person would (the input event fires).
fn type_into(b: &mut Browser, id: &str, text: &str) {
    b.wait_for(&format!("document.getElementById('{id}')"));
    b.eval(&format!(
        "(() => {{ const f = document.getElementById('{id}'); f.focus(); f.value = {}; f.dispatchEvent(new Event('input', {{ bubbles: true }})); }})()",
        serde_json::json!(text)
    ));
}

#[tokio::test]
async fn pickers_list_matches_as_one_types_and_app_sections_are_reached_by_their_tabs() {
    let server = TestServer::spawn_localhost();
    let root = server.add_user("root");
    let admin = server.admin();
    latchkey::store::directory::set_roles(&admin.pool.get().unwrap(), &root, &[Role::GlobalAdmin]).unwrap();
    for name in ["alice", "alfred", "bob"] {
        server.add_user(name);
    }
    latchkey::store::directory::create_group(&admin.pool.get().unwrap(), "g1", "Finance", None, 0).unwrap();
    let (app, _) = server.add_client("Payroll", &["authorization_code"], false);
    let mut b = Browser::launch();
    sign_in_admin(&server, &mut b);

    // A group's member picker: enhanced (the search button is hidden), matches as one types.
    b.goto(&server.url("/admin/groups/g1"));
    b.wait_for("document.querySelector('fieldset.picker.enhanced')");
    assert_eq!(b.eval("getComputedStyle(document.getElementById('search-member')).display"), "none", "no search button needed");
    b.eval("window.__samePage = true");
    type_into(&mut b, "q_member", "alf");
    b.wait_for("document.querySelectorAll('#member-found input[type=checkbox]').length === 1");
    assert_eq!(b.eval("document.getElementById('member-found').textContent.includes('alfred')"), true);
    assert_eq!(b.eval("window.__samePage === true"), true, "no page load");
    // Enter searches too, without submitting the form.
    type_into(&mut b, "q_member", "bo");
    b.eval("document.getElementById('q_member').dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }))");
    b.wait_for("document.getElementById('member-found').textContent.includes('bob')");
    assert_eq!(b.eval("window.__samePage === true"), true, "Enter did not submit");
    // A ticked match stays chosen across searches, then the form adds it.
    b.eval("document.querySelector('#member-found input[type=checkbox]').click()");
    b.wait_for("document.querySelectorAll('#member-picked input:checked').length === 1");
    type_into(&mut b, "q_member", "ali");
    b.wait_for("document.getElementById('member-found').textContent.includes('alice')");
    assert_eq!(b.eval("document.getElementById('member-picked').textContent.includes('bob')"), true);
    b.screenshot("console-picker");
    b.click("add-member");
    b.wait_for("!window.__samePage && document.getElementById('members')");
    assert_eq!(b.eval("document.getElementById('members').textContent.includes('bob')"), true);
    assert_eq!(b.eval("document.getElementById('members').textContent.includes('alice')"), false, "only what was ticked");

    // An app's sections: each tab is its own page, the current one marked.
    b.goto(&server.url(&format!("/admin/apps/{app}")));
    b.wait_for("document.getElementById('tab-overview')");
    assert_eq!(b.eval("document.getElementById('tab-overview').getAttribute('aria-current')"), "page");
    assert_eq!(b.eval(&format!("document.getElementById('client-id').textContent === '{app}'")), true);
    b.screenshot("console-app-overview");
    for (tab, marker) in
        [("credentials", "rotate-secret"), ("authentication", "redirect_uris"), ("tokens", "lifetimes"), ("access", "app-policies"), ("signins", "app-signins")]
    {
        b.click(&format!("tab-{tab}"));
        b.wait_for(&format!("location.pathname.endsWith('/{tab}') && document.getElementById('{marker}')"));
        assert_eq!(b.eval(&format!("document.getElementById('tab-{tab}').getAttribute('aria-current')")), "page", "{tab}");
        assert_eq!(b.eval("document.querySelectorAll('nav.tabs [aria-current]').length"), 1);
        b.screenshot(&format!("console-app-{tab}"));
    }
    // Users and groups: assign with the enhanced picker.
    b.click("tab-assignments");
    b.wait_for("document.querySelector('#user.picker.enhanced')");
    type_into(&mut b, "q_group", "fin");
    b.wait_for("document.querySelectorAll('#group-found input[type=checkbox]').length === 1");
    b.eval("document.querySelector('#group-found input[type=checkbox]').click()");
    b.click("assign");
    b.wait_for("document.querySelector('table#assigned')");
    assert_eq!(b.eval("document.getElementById('assigned').textContent.includes('Finance')"), true);
    b.screenshot("console-app-assignments");

    // A form with several mistakes: the summary lists each, linked to its field, and has focus.
    b.goto(&server.url("/admin/users/new?mode=password"));
    b.fill("username", "bob");
    b.fill("email", "not an address");
    b.fill("password", "short");
    b.click("save-user");
    // The browser applies `autofocus` at its next rendering update, not at parse: wait for it.
    b.wait_for("document.activeElement && document.activeElement.id === 'form-errors'");
    assert_eq!(b.eval("document.querySelectorAll('#form-errors a').length"), 3);
    b.eval("document.querySelector('#form-errors a[href=\"#email\"]').click()");
    assert_eq!(b.eval("location.hash"), "#email");
    assert_eq!(b.eval("document.getElementById('email').value"), "not an address");
    b.screenshot("console-form-errors");
    server.stop().await;
}
