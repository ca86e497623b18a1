//! My sessions and sign-ins, as a person and as an attacker use it: sessions listed with where
//! they started and the apps used in them, ended one by one or all at once; connected apps
//! disconnected; "This wasn't me" locking the account down; and nobody acting on anyone else's.

use crate::common::*;
use latchkey::policy::model::Risk;
use reqwest::StatusCode;

const FIREFOX_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn conn(server: &TestServer) -> latchkey::store::Conn {
    server.admin().pool.get().unwrap()
}

fn user_id(server: &TestServer, username: &str) -> String {
    latchkey::store::users::by_username(&conn(server), username).unwrap().unwrap().id
}

/// The id of the newest session started from `ip`.
fn session_from(server: &TestServer, ip: &str) -> String {
    conn(server)
        .query_row(&format!("SELECT id FROM sessions WHERE ip = ?1 ORDER BY created_at DESC, {} DESC LIMIT 1", write_order()), [ip], |r| r.get(0))
        .unwrap()
}

fn live_sessions(server: &TestServer, username: &str) -> i64 {
    let id = user_id(server, username);
    conn(server).query_row("SELECT count(*) FROM sessions WHERE user_id = ?1 AND ended_at IS NULL", [id], |r| r.get(0)).unwrap()
}

/// A signed-in browser and what its sign-in gave the app.
struct SignedIn {
    browser: reqwest::Client,
    code: String,
    verifier: String,
}

/// `user` signs in to `client_id` in a fresh browser from `ip` (through the trusted loopback
/// proxy) with `user_agent`.
async fn sign_in_from(server: &TestServer, client_id: &str, user: &str, ip: &str, user_agent: &str) -> SignedIn {
    let b = browser();
    let (verifier, challenge) = pkce();
    let with = |r: reqwest::RequestBuilder| r.header("x-forwarded-for", ip).header("user-agent", user_agent);
    let res = with(b.get(good_auth_url(server, client_id, &challenge, &[]))).send().await.unwrap();
    let page = with(b.get(server.url(&location(&res)))).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", user.to_string()), ("password", PASSWORD.to_string())];
    let res = with(b.post(server.url("/login"))).form(&form).send().await.unwrap();
    let back = location(&res);
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    SignedIn { browser: b, code, verifier }
}

/// The refresh token the app gets for a sign-in.
async fn refresh_token(f: &Fixture, s: &SignedIn) -> String {
    let (status, body) = redeem(&f.server, f.client(), &s.code, &s.verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["refresh_token"].as_str().unwrap().to_string()
}

async fn sessions_page(server: &TestServer, b: &reqwest::Client) -> String {
    let res = b.get(server.url("/sessions")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "My sessions opens for a signed-in person");
    res.text().await.unwrap()
}

/// POSTs a form of My sessions with the CSRF token of `page`.
async fn act(server: &TestServer, b: &reqwest::Client, page: &str, path: &str) -> reqwest::Response {
    b.post(server.url(path)).form(&[("csrf", field(page, "csrf"))]).send().await.unwrap()
}

/// Where the browser's next app sign-in goes: a code (still signed in) or the sign-in page.
async fn next_authorize(f: &Fixture, b: &reqwest::Client) -> String {
    let (_, challenge) = pkce();
    location(&authorize(&f.server, b, &good_auth_url(&f.server, &f.client_id, &challenge, &[])).await)
}

fn signed_out(to: &str) -> bool {
    to.starts_with("/login?request=")
}

fn removes_session_cookie(res: &reqwest::Response) -> bool {
    res.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("lk_session=;") || c.to_str().unwrap().contains("Max-Age=0"))
}

/// The text of the table row with `id`.
fn row(html: &str, id: &str) -> String {
    let start = html.find(&format!(r#"<tr id="{id}""#)).unwrap_or_else(|| panic!("no row {id} in:\n{html}"));
    unescape(&html[start..start + html[start..].find("</tr>").unwrap()])
}

#[tokio::test]
async fn my_sessions_lists_each_session_with_where_it_started_and_the_apps_used_in_it() {
    let f = Fixture::new().await;
    let a = sign_in_from(&f.server, &f.client_id, "alice", "203.0.113.7", FIREFOX_LINUX).await;
    let b = sign_in_from(&f.server, &f.client_id, "alice", "198.51.100.20", CHROME_WINDOWS).await;
    refresh_token(&f, &b).await;
    let (sa, sb) = (session_from(&f.server, "203.0.113.7"), session_from(&f.server, "198.51.100.20"));

    let page = sessions_page(&f.server, &a.browser).await;
    let here = row(&page, &format!("session-{sa}"));
    assert!(here.contains("Firefox on Linux") && here.contains("203.0.113.7") && here.contains("This browser"), "{here}");
    assert!(here.contains("<td>App</td>"), "the app used in the session: {here}");
    let there = row(&page, &format!("session-{sb}"));
    assert!(there.contains("Chrome on Windows") && there.contains("198.51.100.20") && !there.contains("This browser"), "{there}");
    assert!(page.contains(r#"id="end-others""#) && page.contains(r#"id="end-all""#));
    // The app that holds a refresh token is a connected app.
    let app = row(&page, &format!("app-{}", f.client_id));
    assert!(app.contains("App") && app.contains("Stay connected to your account"), "{app}");
    // Both sign-ins, with the app, IP, device and result.
    let signin: i64 = conn(&f.server).query_row("SELECT id FROM signin_log WHERE ip = '198.51.100.20' AND result = 'success'", [], |r| r.get(0)).unwrap();
    let logged = row(&page, &format!("signin-{signin}"));
    for part in ["App", "198.51.100.20", "Chrome on Windows", "Succeeded", "This wasn't me"] {
        assert!(logged.contains(part), "{part} in {logged}");
    }
    // Reachable from My Apps and Security info.
    for from in ["/", "/security"] {
        let html = a.browser.get(f.server.url(from)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains(r#"href="/sessions""#), "{from} links to My sessions");
    }
}

#[tokio::test]
async fn ending_another_session_signs_that_browser_out_and_ending_this_one_signs_this_browser_out() {
    let f = Fixture::new().await;
    let a = sign_in_from(&f.server, &f.client_id, "alice", "203.0.113.7", FIREFOX_LINUX).await;
    let b = sign_in_from(&f.server, &f.client_id, "alice", "198.51.100.20", CHROME_WINDOWS).await;
    let (sa, sb) = (session_from(&f.server, "203.0.113.7"), session_from(&f.server, "198.51.100.20"));

    let page = sessions_page(&f.server, &a.browser).await;
    let res = act(&f.server, &a.browser, &page, &format!("/sessions/{sb}/end")).await;
    assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, "/sessions".to_string()));
    assert!(signed_out(&next_authorize(&f, &b.browser).await), "the ended session's browser signs in again");
    assert!(next_authorize(&f, &a.browser).await.starts_with(REDIRECT), "this browser is still signed in");
    let page = sessions_page(&f.server, &a.browser).await;
    assert!(!page.contains(&format!("session-{sb}")), "the ended session is gone from the list");
    assert!(!page.contains(r#"id="end-others""#), "no other session is left");
    let audit = latchkey::store::mfa::audit_for_user(&conn(&f.server), &user_id(&f.server, "alice")).unwrap();
    assert!(audit.iter().any(|r| r.action == "session_ended_by_user" && r.detail.as_deref() == Some(&format!("session {sb}"))));

    let res = act(&f.server, &a.browser, &page, &format!("/sessions/{sa}/end")).await;
    assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, "/".to_string()));
    assert!(removes_session_cookie(&res), "the browser forgets its session");
    assert!(signed_out(&next_authorize(&f, &a.browser).await));
    assert_eq!(live_sessions(&f.server, "alice"), 0);
}

#[tokio::test]
async fn signing_out_everywhere_else_keeps_this_session_and_everywhere_ends_it_too() {
    let f = Fixture::new().await;
    let a = sign_in_from(&f.server, &f.client_id, "alice", "203.0.113.7", FIREFOX_LINUX).await;
    let b = sign_in_from(&f.server, &f.client_id, "alice", "198.51.100.20", CHROME_WINDOWS).await;
    let c = sign_in_from(&f.server, &f.client_id, "alice", "198.51.100.30", CHROME_WINDOWS).await;
    let token = refresh_token(&f, &c).await;

    let page = sessions_page(&f.server, &a.browser).await;
    let res = act(&f.server, &a.browser, &page, "/sessions/end-others").await;
    assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, "/sessions".to_string()));
    assert!(signed_out(&next_authorize(&f, &b.browser).await));
    assert!(signed_out(&next_authorize(&f, &c.browser).await));
    assert_eq!(refresh(&f.server, f.client(), &token).await.1["error"], "invalid_grant", "refresh-token families end with them");
    assert!(next_authorize(&f, &a.browser).await.starts_with(REDIRECT), "this browser is still signed in");
    assert_eq!(live_sessions(&f.server, "alice"), 1);

    let page = sessions_page(&f.server, &a.browser).await;
    let res = act(&f.server, &a.browser, &page, "/sessions/end-all").await;
    assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, "/".to_string()));
    assert!(removes_session_cookie(&res));
    assert!(signed_out(&next_authorize(&f, &a.browser).await));
    assert_eq!(live_sessions(&f.server, "alice"), 0);
}

#[tokio::test]
async fn disconnecting_an_app_kills_its_refresh_and_access_tokens() {
    let f = Fixture::new().await;
    let tokens = f.tokens().await;
    let (token, access) = (tokens["refresh_token"].as_str().unwrap(), tokens["access_token"].as_str().unwrap());
    let page = sessions_page(&f.server, &f.browser).await;
    assert!(page.contains(&format!(r#"id="disconnect-{}""#, f.client_id)));

    let res = act(&f.server, &f.browser, &page, &format!("/sessions/apps/{}/revoke", f.client_id)).await;
    assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, "/sessions".to_string()));
    let (status, body) = refresh(&f.server, f.client(), token).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    assert_eq!(introspect(&f.server, f.client(), access).await["active"], false, "its access token is dead too");
    let page = sessions_page(&f.server, &f.browser).await;
    assert!(page.contains(r#"id="no-connected-apps""#), "the app is no longer connected");
    // The session itself stays: the app can sign in again through it.
    assert!(next_authorize(&f, &f.browser).await.starts_with(REDIRECT));
}

#[tokio::test]
async fn this_wasnt_me_raises_user_risk_ends_everything_tells_admins_and_starts_a_reset() {
    let f = Fixture::new().await;
    let mine = sign_in_from(&f.server, &f.client_id, "alice", "203.0.113.7", FIREFOX_LINUX).await;
    // Someone else, with alice's password, from elsewhere; their app keeps a refresh token.
    let theirs = sign_in_from(&f.server, &f.client_id, "alice", "198.51.100.66", CHROME_WINDOWS).await;
    let token = refresh_token(&f, &theirs).await;
    let signin: i64 = conn(&f.server).query_row("SELECT id FROM signin_log WHERE ip = '198.51.100.66' AND result = 'success'", [], |r| r.get(0)).unwrap();

    let page = sessions_page(&f.server, &mine.browser).await;
    let res = act(&f.server, &mine.browser, &page, &format!("/sessions/signins/{signin}/report")).await;
    assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, "/reset?username=alice".to_string()));
    assert!(removes_session_cookie(&res), "this browser is signed out too");

    let alice = user_id(&f.server, "alice");
    assert_eq!(latchkey::store::policies::user_risk(&conn(&f.server), &alice).unwrap(), Risk::High);
    assert_eq!(live_sessions(&f.server, "alice"), 0, "every session ended");
    assert!(signed_out(&next_authorize(&f, &theirs.browser).await));
    assert!(signed_out(&next_authorize(&f, &mine.browser).await));
    assert_eq!(refresh(&f.server, f.client(), &token).await.1["error"], "invalid_grant", "every refresh-token family ended");
    // Admins see it: an audit entry naming the sign-in, and the sign-in log row marked.
    let audit = latchkey::store::mfa::audit_for_user(&conn(&f.server), &alice).unwrap();
    assert!(audit.iter().any(|r| r.action == "user_reported_signin" && r.detail.as_deref() == Some(&format!("sign-in {signin}"))), "{audit:?}");
    assert!(latchkey::store::signins::by_id(&conn(&f.server), signin).unwrap().unwrap().reported_at.is_some());
    // The reset starts with the username filled in.
    let reset = mine.browser.get(f.server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    assert_eq!(element_attr(&reset, "username", "value"), "alice");
    // After signing in again, the row says it was reported and offers no second report.
    let again = sign_in_from(&f.server, &f.client_id, "alice", "203.0.113.7", FIREFOX_LINUX).await;
    let page = sessions_page(&f.server, &again.browser).await;
    assert!(page.contains(&format!(r#"id="reported-{signin}""#)) && !page.contains(&format!(r#"id="report-{signin}""#)));
}

#[tokio::test]
async fn nobody_can_end_report_or_disconnect_what_is_someone_elses() {
    let f = Fixture::new().await;
    f.server.add_user("mallory");
    let alice = sign_in_from(&f.server, &f.client_id, "alice", "203.0.113.7", FIREFOX_LINUX).await;
    let token = refresh_token(&f, &alice).await;
    let session = session_from(&f.server, "203.0.113.7");
    let signin: i64 = conn(&f.server).query_row("SELECT id FROM signin_log WHERE ip = '203.0.113.7' AND result = 'success'", [], |r| r.get(0)).unwrap();

    // Mallory, with her own session and its valid CSRF token.
    let mallory = sign_in_from(&f.server, &f.client_id, "mallory", "198.51.100.66", CHROME_WINDOWS).await;
    let page = sessions_page(&f.server, &mallory.browser).await;
    assert!(!page.contains(&session) && !page.contains(&format!("signin-{signin}")), "she sees none of alice's");
    for path in [format!("/sessions/{session}/end"), format!("/sessions/signins/{signin}/report"), format!("/sessions/apps/{}/revoke", f.client_id)] {
        let res = act(&f.server, &mallory.browser, &page, &path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Nor with alice's page's token but her own cookie, nor without a token.
    let alices_page = sessions_page(&f.server, &alice.browser).await;
    let res = act(&f.server, &mallory.browser, &alices_page, "/sessions/end-others").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "another session's CSRF token");
    let res = mallory.browser.post(f.server.url(&format!("/sessions/signins/{signin}/report"))).form(&[("csrf", "")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // And a browser with no session at all.
    let res = browser().post(f.server.url(&format!("/sessions/{session}/end"))).form(&[("csrf", field(&alices_page, "csrf"))]).send().await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());

    // Alice's session, sign-in, risk and refresh token are untouched.
    assert!(next_authorize(&f, &alice.browser).await.starts_with(REDIRECT));
    let id = user_id(&f.server, "alice");
    assert_eq!(latchkey::store::policies::user_risk(&conn(&f.server), &id).unwrap(), Risk::None);
    assert!(latchkey::store::signins::by_id(&conn(&f.server), signin).unwrap().unwrap().reported_at.is_none());
    let (status, body) = refresh(&f.server, f.client(), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
