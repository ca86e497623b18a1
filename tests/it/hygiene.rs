//! Credential hygiene as an attacker tests it: anonymous requests that try to grow the
//! database or the server's memory, over-long input, files other local users could read,
//! cookies an https deployment must not share with plain http or sibling hosts.

use crate::common::*;
use latchkey::auth::users::{self, NewAccount};
use latchkey::clock::Clock;
use latchkey::{AppState, build_app};
use reqwest::StatusCode;
use std::path::Path;

fn conn(server: &TestServer) -> latchkey::store::Conn {
    server.admin().pool.get().unwrap()
}

fn open_requests(server: &TestServer, ip: &str) -> i64 {
    conn(server).query_row("SELECT COUNT(*) FROM auth_requests WHERE ip = ?1", [ip], |r| r.get(0)).unwrap()
}

/// An anonymous GET of the sign-in page from `ip` (through the trusted loopback proxy).
async fn anonymous_login_page(server: &TestServer, ip: &str) -> reqwest::Response {
    rp_http().get(server.url("/login")).header("x-forwarded-for", ip).send().await.unwrap()
}

#[tokio::test]
async fn a_flood_of_anonymous_sign_in_pages_from_one_ip_is_capped() {
    let server = TestServer::spawn();
    let flooder = "198.51.100.7";
    for i in 0..50 {
        assert_eq!(anonymous_login_page(&server, flooder).await.status(), StatusCode::SEE_OTHER, "request {i} is under the cap");
    }
    let res = anonymous_login_page(&server, flooder).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().await.unwrap().contains("Too many sign-ins in progress"), "a page a person can read");
    assert_eq!(open_requests(&server, flooder), 50, "nothing stored beyond the cap");

    // Someone else is not affected; the addresses of one IPv6 /64 count as one client.
    assert_eq!(anonymous_login_page(&server, "198.51.100.8").await.status(), StatusCode::SEE_OTHER);
    for i in 0..50 {
        let res = anonymous_login_page(&server, &format!("2001:db8:7:7::{:x}", i + 1)).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(anonymous_login_page(&server, "2001:db8:7:7:ffff::1").await.status(), StatusCode::TOO_MANY_REQUESTS);

    // Once they expire (15 minutes) they are removed and the client may start again.
    server.advance(901);
    assert_eq!(anonymous_login_page(&server, flooder).await.status(), StatusCode::SEE_OTHER);
    let total: i64 = conn(&server).query_row("SELECT COUNT(*) FROM auth_requests", [], |r| r.get(0)).unwrap();
    assert_eq!(total, 1, "the expired rows are gone, only the new one is left");
    server.stop().await;
}

#[tokio::test]
async fn a_pending_sign_in_costs_a_few_hundred_bytes() {
    let server = TestServer::spawn();
    let (client_id, _) = server.add_client("App", &["authorization_code"], false);
    let (_, challenge) = pkce();
    let res = rp_http().get(good_auth_url(&server, &client_id, &challenge, &[])).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous_login_page(&server, "127.0.0.1").await.status(), StatusCode::SEE_OTHER);
    let sizes: Vec<(i64, String)> = conn(&server)
        .prepare(&format!(
            "SELECT length(id) + length(browser_hash) + length(csrf_token) + length(params) + length(ip), params FROM auth_requests ORDER BY created_at, {}",
            write_order()
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let [(for_app, app_params), (plain, plain_params)] = &sizes[..] else { panic!("two pending sign-ins: {sizes:?}") };
    assert!(*for_app < 600, "an app's sign-in is {for_app} bytes: {app_params}");
    assert!(*plain < 200, "a sign-in to latchkey itself is {plain} bytes: {plain_params}");
    server.stop().await;
}

#[tokio::test]
async fn an_over_long_username_is_refused_before_any_work() {
    let f = Fixture::new().await;
    let budgets = |f: &Fixture| -> i64 { conn(&f.server).query_row("SELECT COUNT(*) FROM attempt_budgets", [], |r| r.get(0)).unwrap() };
    let before = budgets(&f);
    let b = browser();
    let res = authorize(&f.server, &b, &good_auth_url(&f.server, &f.client_id, &pkce().1, &[])).await;
    let page = login_page(&f.server, &b, &location(&res)).await;
    let long_name = "é".repeat(15_000);
    let res = submit_login(&f.server, &b, &page, &long_name, "Winter2026!").await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(text.contains("Wrong username or password."), "the same answer as any failure");
    assert!(text.len() < 8 * 1024, "the page does not echo 30 KB back ({} bytes)", text.len());
    let log = &latchkey::store::signins::recent(&conn(&f.server), 1).unwrap()[0];
    assert!(log.reason.as_deref().is_some_and(|r| r.starts_with("username or password too long")), "{:?}", log.reason);
    assert!(log.username.as_deref().is_some_and(|u| u.len() <= 1024), "the log keeps a bounded prefix");
    assert_eq!(budgets(&f), before, "no counter was written for a name that can't exist");

    // An over-long password is not a guess: it does not count towards alice's lockout (10).
    let attacker = "203.0.113.50";
    let long_password = "p".repeat(2000);
    for _ in 0..12 {
        let b = browser();
        let res = b.get(good_auth_url(&f.server, &f.client_id, &pkce().1, &[])).header("x-forwarded-for", attacker).send().await.unwrap();
        let page = b.get(f.server.url(&location(&res))).header("x-forwarded-for", attacker).send().await.unwrap().text().await.unwrap();
        let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", long_password.clone())];
        let res = b.post(f.server.url("/login")).header("x-forwarded-for", attacker).form(&form).send().await.unwrap();
        assert!(res.text().await.unwrap().contains("Wrong username or password."));
    }
    let b = browser();
    let res = b.get(good_auth_url(&f.server, &f.client_id, &pkce().1, &[])).header("x-forwarded-for", attacker).send().await.unwrap();
    let page = b.get(f.server.url(&location(&res))).header("x-forwarded-for", attacker).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())];
    let res = b.post(f.server.url("/login")).header("x-forwarded-for", attacker).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "alice is not locked out");
    assert!(query_param(&location(&res), "code").is_some());

    // The password grant refuses the same way (a name cut at 256 bytes inside a character
    // once made it panic).
    let (id, secret) = f.server.add_client("Mail client", &["password"], false);
    let name = format!("a{}", "é".repeat(200));
    let (status, _, body) =
        post_form(&f.server, "/token", Some((&id, secret.as_deref().unwrap())), &[("grant_type", "password"), ("username", &name), ("password", "x")]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    f.server.stop().await;
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_files_are_private_to_the_service_user() {
    // An installation from before: a world-readable data directory and outbox with a reset code.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let outbox = data.join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join("old.eml"), "Your code: 123456").unwrap();
    set_mode(&data, 0o755);
    set_mode(&outbox, 0o755);
    set_mode(&outbox.join("old.eml"), 0o644);

    let server = TestServer::spawn_at(&data, 0);
    server.add_user("alice");
    assert_eq!(anonymous_login_page(&server, "127.0.0.1").await.status(), StatusCode::SEE_OTHER);
    server.admin().mail.send("alice@example.com", "Your code", "Your code: 654321".into()).unwrap();

    assert_eq!(mode(&data), 0o700, "data directory");
    if !on_postgres() {
        for f in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    }
    assert_eq!(mode(&outbox), 0o700, "outbox");
    for e in std::fs::read_dir(&outbox).unwrap() {
        let path = e.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 2, "the old message and the new one");
    server.stop().await;
}

/// latchkey with an https issuer, served over plain http on loopback (as behind a TLS proxy).
struct HttpsServer {
    base: String,
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl HttpsServer {
    fn spawn() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = test_config(dir.path(), "127.0.0.1", port);
        config.server.issuer = format!("https://127.0.0.1:{port}");
        let state = AppState::open(config, Clock::system()).unwrap();
        let conn = state.pool.get().unwrap();
        latchkey::store::policies::set_security_defaults(&conn, false).unwrap();
        let account = NewAccount { username: "alice", password: PASSWORD, email: None, name: None, is_admin: false, must_change_password: false };
        users::create(&conn, &state.passwords, &account, state.clock.now()).unwrap();
        drop(conn);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = build_app(state, listener).unwrap();
                tx.send(server.handle()).unwrap();
                server.await.unwrap();
            })
        });
        Self { base: format!("http://127.0.0.1:{port}"), handle: rx.recv().unwrap(), thread, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        self.thread.join().unwrap();
    }
}

/// The `name=value` pairs of the cookies a response sets, with their attributes.
fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn cookie_value(set_cookies: &[String], name: &str) -> String {
    let c = set_cookies.iter().find(|c| c.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("no {name} in {set_cookies:?}"));
    c[name.len() + 1..c.find(';').unwrap_or(c.len())].to_string()
}

#[tokio::test]
async fn an_https_issuer_sets_host_prefixed_cookies_and_hsts() {
    let server = HttpsServer::spawn();
    let http = rp_http();
    let res = http.get(server.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers().get("strict-transport-security").map(|v| v.to_str().unwrap()), Some("max-age=31536000"));
    let set = set_cookies(&res);
    let browser_cookie = set.iter().find(|c| c.starts_with("__Host-lk_browser=")).unwrap_or_else(|| panic!("{set:?}"));
    for attribute in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(browser_cookie.contains(attribute), "{attribute} in {browser_cookie}");
    }
    assert!(!browser_cookie.contains("Domain"), "__Host- cookies have no Domain: {browser_cookie}");
    assert!(set.iter().all(|c| !c.starts_with("lk_")), "no unprefixed cookie: {set:?}");
    let browser_id = cookie_value(&set, "__Host-lk_browser");
    let login = location(&res);

    // The unprefixed name (what a sibling host or plain http could plant) is not read.
    let res = http.get(server.url(&login)).header("cookie", format!("lk_browser={browser_id}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "not this browser's sign-in without the __Host- cookie");
    let cookie = format!("__Host-lk_browser={browser_id}");
    let page = http.get(server.url(&login)).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())];
    let res = http.post(server.url("/login")).header("cookie", &cookie).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set = set_cookies(&res);
    let session = cookie_value(&set, "__Host-lk_session");
    assert!(set.iter().find(|c| c.starts_with("__Host-lk_session=")).unwrap().contains("Secure"));

    // The session works under its prefixed name only: the portal's password change starts from it.
    let res = http.get(server.url("/password/change")).header("cookie", format!("__Host-lk_session={session}")).send().await.unwrap();
    assert!(location(&res).starts_with("/password/change?request="), "signed in: {}", location(&res));
    let res = http.get(server.url("/password/change")).header("cookie", format!("lk_session={session}")).send().await.unwrap();
    assert!(location(&res).starts_with("/login?request="), "not signed in: {}", location(&res));
    server.stop().await;
}

#[tokio::test]
async fn behind_a_tls_proxy_plain_http_is_sent_to_https_and_only_the_trusted_proxy_is_believed() {
    let server = TestServer::spawn_with(|c| c.server.issuer = "https://id.example.com".into());
    let via = |proto: &'static str, path: &str| rp_http().get(server.url(path)).header("x-forwarded-proto", proto);
    // The proxy (loopback, trusted in the tests) says the person came over http: off to https.
    let res = via("http", "/login?x=1").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&res), "https://id.example.com/login?x=1");
    let res = rp_http().post(server.url("/token")).header("x-forwarded-proto", "http").form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "nothing posted over http is acted on");
    // Over https, and for the load balancer's health checks, it answers.
    let res = via("https", "/.well-known/openid-configuration").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("strict-transport-security"));
    assert_eq!(via("http", "/readyz").send().await.unwrap().status(), StatusCode::OK);
    server.stop().await;

    // From a peer that is not a trusted proxy, the header means nothing.
    let server = TestServer::spawn_with(|c| {
        c.server.issuer = "https://id.example.com".into();
        c.server.trusted_proxies = vec![];
    });
    let res = rp_http().get(server.url("/.well-known/openid-configuration")).header("x-forwarded-proto", "http").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    server.stop().await;
}
