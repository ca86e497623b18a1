//! My Apps: tiles, third-party initiated login (OIDC Core §4), logos served by latchkey, and
//! consents a person can withdraw.

use crate::admin::mfa_browser;
use crate::common::*;
use latchkey::store::directory::Role;
use reqwest::StatusCode;

fn sql(server: &TestServer, statement: &str, args: &[&str]) {
    server.admin().pool.get().unwrap().execute(statement, latchkey::store::db::params_from_iter(args)).unwrap();
}

async fn home(server: &TestServer, b: &reqwest::Client, query: &str) -> String {
    b.get(server.url(&format!("/{query}"))).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn my_apps_shows_the_apps_a_person_may_open_searchable_and_recently_used_first() {
    let f = Fixture::new().await;
    let (wiki, _) = f.server.add_client("Wiki", &[], false);
    let (payroll, _) = f.server.add_client("Payroll", &[], false);
    let (hidden, _) = f.server.add_client("Hidden tool", &[], false);
    for id in [&f.client_id, &wiki, &payroll, &hidden] {
        sql(&f.server, "UPDATE clients SET launch_url = 'https://app.example.com/' WHERE id = ?1", &[id]);
    }
    sql(&f.server, "UPDATE clients SET visible_in_my_apps = 0 WHERE id = ?1", &[&hidden]);
    sql(&f.server, "UPDATE clients SET assignment_required = 1 WHERE id = ?1", &[&payroll]);
    f.tokens().await;
    let page = home(&f.server, &f.browser, "").await;
    assert!(page.contains(&format!("tile-{wiki}")) && page.contains(&format!("tile-{}", f.client_id)), "{page}");
    assert!(!page.contains(&format!("tile-{hidden}")), "not visible in My Apps");
    assert!(!page.contains(&format!("tile-{payroll}")), "not assigned");
    // The app alice just used comes first.
    assert!(page.find(&format!("tile-{}", f.client_id)).unwrap() < page.find(&format!("tile-{wiki}")).unwrap());
    let found = home(&f.server, &f.browser, "?q=wik").await;
    assert!(found.contains(&format!("tile-{wiki}")) && !found.contains(&format!("tile-{}", f.client_id)));
    // A tile of someone else's app cannot be launched.
    let res = f.browser.get(f.server.url(&format!("/apps/{payroll}/launch"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    f.server.stop().await;
}

#[tokio::test]
async fn a_tile_starts_the_apps_own_sign_in_which_completes_without_a_password() {
    let f = Fixture::new().await;
    sql(
        &f.server,
        "UPDATE clients SET initiate_login_uri = 'https://app.example.com/oidc/start', launch_url = 'https://app.example.com/home' WHERE id = ?1",
        &[&f.client_id],
    );
    f.tokens().await;
    let res = f.browser.get(f.server.url(&format!("/apps/{}/launch", f.client_id))).send().await.unwrap();
    let to = location(&res);
    assert!(to.starts_with("https://app.example.com/oidc/start?"), "{to}");
    assert_eq!(query_param(&to, "iss").as_deref(), Some(f.server.base.as_str()));
    assert_eq!(query_param(&to, "target_link_uri").as_deref(), Some("https://app.example.com/home"));
    assert_eq!(query_param(&to, "login_hint").as_deref(), Some("alice"));
    assert!(query_param(&to, "code").is_none() && query_param(&to, "id_token").is_none(), "no unsolicited token");
    // The app starts its own authorization request; alice's session signs her in at once.
    let (verifier, challenge) = pkce();
    let hint = query_param(&to, "login_hint").unwrap();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("login_hint", &hint)])).await;
    let code = query_param(&location(&res), "code").expect("no password prompt");
    assert_eq!(redeem(&f.server, f.client(), &code, &verifier).await.0, StatusCode::OK);
    f.server.stop().await;
}

fn multipart(name: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----latchkeytest";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"logo\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn logos_are_uploaded_checked_and_served_by_latchkey_with_no_script() {
    let f = Fixture::new().await;
    let (admin, csrf) = mfa_browser(&f.server, "root", &[Role::GlobalAdmin]).await;
    let upload = |data: Vec<u8>, csrf: String| {
        let (admin, server, id) = (admin.clone(), &f.server, f.client_id.clone());
        async move {
            let (kind, body) = multipart("logo", &data);
            admin.post(server.url(&format!("/admin/apps/{id}/logo?csrf={csrf}"))).header("content-type", kind).body(body).send().await.unwrap()
        }
    };
    // Not an image, too large, or without the console's CSRF token: refused.
    let res = upload(b"<html><script>alert(1)</script></html>".to_vec(), csrf.clone()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("must be a PNG, JPEG or SVG"));
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    big.resize(101 * 1024, 0);
    let res = upload(big, csrf.clone()).await;
    assert!(res.text().await.unwrap().contains("larger than 100 KB"));
    let res = upload(b"\x89PNG\r\n\x1a\nrest".to_vec(), "forged".into()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // An SVG with a script is kept, and served so that nothing in it can run.
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><circle r="4"/></svg>"#.to_vec();
    let res = upload(svg, csrf.clone()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = rp_http().get(f.server.url(&format!("/apps/{}/logo", f.client_id))).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("sandbox"), "{csp}");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    // The sign-in page shows it, from latchkey itself.
    let b = browser();
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await;
    let page = login_page(&f.server, &b, &location(&res)).await;
    assert!(page.contains(&format!(r#"src="/apps/{}/logo""#, f.client_id)), "{page}");
    f.server.stop().await;
}

#[tokio::test]
async fn a_consent_is_listed_in_my_apps_and_withdrawing_it_ends_the_apps_tokens() {
    let f = Fixture::new().await;
    sql(&f.server, "UPDATE clients SET third_party = 1 WHERE id = ?1", &[&f.client_id]);
    let (verifier, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("scope", "openid email offline_access")])).await;
    let page = login_page(&f.server, &f.browser, &location(&res)).await;
    let to = location(&submit_login(&f.server, &f.browser, &page, "alice", PASSWORD).await);
    let page = f.browser.get(f.server.url(&to)).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("decision", "approve".to_string())];
    let res = f.browser.post(f.server.url("/consent")).form(&form).send().await.unwrap();
    let (_, tokens) = redeem(&f.server, f.client(), &query_param(&location(&res), "code").unwrap(), &verifier).await;
    let page = home(&f.server, &f.browser, "").await;
    assert!(page.contains(r#"id="consents""#) && page.contains("Your e-mail address"), "the consent is listed: {page}");
    let form = [("csrf", field(&page, "csrf"))];
    let res = f.browser.post(f.server.url(&format!("/apps/{}/consent/revoke", f.client_id))).form(&form).send().await.unwrap();
    assert_eq!(location(&res), "/");
    let (status, body) = refresh(&f.server, f.client(), tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "withdrawn: the app's tokens end");
    // Next sign-in asks again.
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &f.browser, &good_auth_url(&f.server, &f.client_id, &challenge, &[("scope", "openid email")])).await;
    assert!(location(&res).starts_with("/consent?request="), "{}", location(&res));
    f.server.stop().await;
}
