//! spawn_server() and a browser-like client, shared by every integration test.

use latchkey::auth::users::{self, NewAccount};
use latchkey::clock::Clock;
use latchkey::config::Config;
use latchkey::oidc::clients::{self, Registration};
use latchkey::{AppState, build_app};
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, RedirectUrl};
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub const PASSWORD: &str = "correct horse battery staple";
/// In the test breached-password list.
pub const BREACHED_PASSWORD: &str = "purple monkey dishwasher";
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const POST_LOGOUT: &str = "http://127.0.0.1:9/signed-out";

pub struct TestServer {
    pub base: String,
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The configuration it runs with: `admin()` opens the same database.
    config: Config,
    clock: Arc<AtomicI64>,
    /// The server's own password hashing threads (tests can see and fill their queue).
    pub passwords: latchkey::auth::password::PasswordHasher,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<DataDir>,
}

/// Where the suite's PostgreSQL server is: `LATCHKEY_TEST_ENGINE=postgres` runs every test on a
/// PostgreSQL database of its own (made from `LATCHKEY_TEST_DATABASE_URL`, by default the local
/// server's `test` database, and dropped afterwards); otherwise tests use SQLite files.
pub fn postgres_admin_url() -> Option<String> {
    (std::env::var("LATCHKEY_TEST_ENGINE").as_deref() == Ok("postgres"))
        .then(|| std::env::var("LATCHKEY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()))
}

pub fn on_postgres() -> bool {
    postgres_admin_url().is_some()
}

/// The column that orders a table's rows as they were written (SQLite's rowid; PostgreSQL's
/// ctid, which an update moves to the end).
pub fn write_order() -> &'static str {
    if on_postgres() { "ctid" } else { "rowid" }
}

/// True (and says so) when the suite runs on SQLite: for tests of what only PostgreSQL has
/// (several instances on one database, a copy into it), which run in the PostgreSQL pass.
pub fn postgres_only(what: &str) -> bool {
    let skip = !on_postgres();
    if skip {
        eprintln!("not on SQLite: {what} needs PostgreSQL; this runs in the suite's PostgreSQL pass");
    }
    skip
}

/// True (and says so) when the suite runs on PostgreSQL: for tests of SQLite's own file (its
/// permissions, a full or read-only disk under it, its online backup), which run in the SQLite
/// pass of the suite.
pub fn sqlite_only(what: &str) -> bool {
    let skip = on_postgres();
    if skip {
        eprintln!("not on PostgreSQL: {what} is about SQLite's database file");
    }
    skip
}

/// Runs `sql` on the suite's PostgreSQL server (from a thread of its own: the synchronous client
/// may not run inside the tests' runtime).
pub fn postgres_admin(sql: String) {
    let url = postgres_admin_url().expect("on PostgreSQL");
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("the test PostgreSQL server answers");
        client.batch_execute(&sql)
    })
    .join()
    .unwrap()
    .unwrap();
}

/// The PostgreSQL database of the data directory `data_dir` (made on first use), or None on
/// SQLite. The URL is kept in the directory, so a restarted server finds the same database.
pub fn test_database(data_dir: &Path) -> Option<String> {
    let admin = postgres_admin_url()?;
    let marker = data_dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return Some(url);
    }
    std::fs::create_dir_all(data_dir).unwrap();
    let name = format!("lk_test_{}", latchkey::crypto::random_token().to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "").get(..20).unwrap());
    postgres_admin(format!("CREATE DATABASE {name}"));
    let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
    let url = format!("{base}/{name}");
    std::fs::write(&marker, &url).unwrap();
    Some(url)
}

/// The key every suite server (and command) on PostgreSQL shares.
const SUITE_SECRET: &str = "the suite's shared secret";

/// The `latchkey` command on `dir`'s data (on PostgreSQL, its database too).
pub fn latchkey_command(dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    c.arg("--data-dir").arg(dir).env("LATCHKEY_PASSWORD__MEMORY_KIB", "1024");
    if let Some(url) = test_database(dir) {
        c.env("LATCHKEY_DATABASE__URL", url).env("LATCHKEY_KEYS__ENCRYPTION_SECRET", SUITE_SECRET);
    }
    c
}

/// Runs `latchkey args…` on `dir`: (success, stdout, stderr).
pub fn latchkey_run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = latchkey_command(dir).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// A test's data directory; on PostgreSQL its database too, dropped with it.
pub struct DataDir(tempfile::TempDir);

impl DataDir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Ok(url) = std::fs::read_to_string(self.0.path().join("test-database-url")) {
            let name = url.rsplit('/').next().unwrap().to_string();
            postgres_admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

pub fn test_config(data_dir: &Path, host: &str, port: u16) -> Config {
    let mut config = Config::load_from(None, []).unwrap();
    config.server.issuer = format!("http://{host}:{port}");
    config.server.data_dir = data_dir.to_path_buf();
    config.server.workers = 2;
    // Tests play clients at other addresses through X-Forwarded-For from loopback.
    config.server.trusted_proxies = vec!["127.0.0.1".into()];
    // Tests' relying parties listen on loopback.
    config.server.backchannel_private_addresses = true;
    // The organisation's banned word, and a breached-password list (Pwned Passwords format)
    // holding BREACHED_PASSWORD.
    config.password.banned_terms = vec!["Latchkey".into()];
    let breached = data_dir.join("breached.txt");
    let sha1: String = openssl::sha::sha1(BREACHED_PASSWORD.as_bytes()).iter().map(|b| format!("{b:02X}")).collect();
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(&breached, format!("0000000000000000000000000000000000000000:1\n{sha1}:1234\n")).unwrap();
    config.password.breached_list = breached.display().to_string();
    // Cheaper argon2 than production so the suite stays quick; the algorithm is the same.
    config.password.memory_kib = 1024;
    config.password.iterations = 1;
    if let Some(url) = test_database(data_dir) {
        config.database.url = latchkey::config::Secret::new(url);
        config.keys.encryption_secret = latchkey::config::Secret::new(SUITE_SECRET);
    }
    config
}

impl TestServer {
    /// Starts latchkey on a free port with a fresh data directory.
    pub fn spawn() -> Self {
        let dir = DataDir::new();
        let mut s = Self::spawn_at(dir.path(), 0);
        s._dir = Some(dir);
        s
    }

    /// Starts latchkey on `data_dir`; port 0 picks a free one.
    pub fn spawn_at(data_dir: &Path, port: u16) -> Self {
        Self::spawn_named(data_dir, "127.0.0.1", port)
    }

    /// Starts latchkey with issuer `http://localhost:…`: WebAuthn needs a domain name.
    pub fn spawn_localhost() -> Self {
        let dir = DataDir::new();
        let mut s = Self::spawn_named(dir.path(), "localhost", 0);
        s._dir = Some(dir);
        s
    }

    /// Starts latchkey behind a load balancer of the test's own listening on `port`: the
    /// issuer is `http://localhost:{port}`, and so is `base`, so requests go through it.
    pub fn spawn_localhost_behind(port: u16) -> Self {
        let dir = DataDir::new();
        let issuer = format!("http://localhost:{port}");
        let at = issuer.clone();
        let mut s = Self::spawn_tweaked(dir.path(), "localhost", 0, move |c| c.server.issuer = at);
        s.base = issuer;
        s._dir = Some(dir);
        s
    }

    fn spawn_named(data_dir: &Path, host: &str, port: u16) -> Self {
        Self::spawn_tweaked(data_dir, host, port, |_| {})
    }

    /// Starts latchkey with a fresh data directory and `tweak` applied to its configuration.
    pub fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = DataDir::new();
        let mut s = Self::spawn_tweaked(dir.path(), "127.0.0.1", 0, tweak);
        s._dir = Some(dir);
        s
    }

    fn spawn_tweaked(data_dir: &Path, host: &str, port: u16, tweak: impl FnOnce(&mut Config)) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (clock, offset) = Clock::adjustable();
        let mut config = test_config(data_dir, host, port);
        tweak(&mut config);
        let state = AppState::open(config.clone(), clock).unwrap();
        // A new installation starts with security defaults on (every user is asked to register
        // MFA at sign-in). Most tests exercise one protocol feature at a time, so they start
        // with defaults off; the conditional-access tests turn them on where they test them.
        latchkey::store::policies::set_security_defaults(&state.pool.get().unwrap(), false).unwrap();
        let passwords = state.passwords.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = build_app(state, listener).unwrap();
                tx.send(server.handle()).unwrap();
                server.await.unwrap();
            })
        });
        let handle = rx.recv().unwrap();
        Self {
            base: format!("http://{host}:{port}"),
            host: host.to_string(),
            port,
            data_dir: data_dir.to_path_buf(),
            config,
            clock: offset,
            passwords,
            handle,
            thread: Some(thread),
            _dir: None,
        }
    }

    /// Another instance on this one's database (PostgreSQL), with the same issuer, as a second
    /// machine behind a load balancer: its own data directory, process state and caches.
    pub fn spawn_beside(&self) -> Self {
        let url = std::fs::read_to_string(self.data_dir.join("test-database-url")).expect("instances share a PostgreSQL database");
        let dir = DataDir::new();
        std::fs::write(dir.path().join("test-database-url"), url).unwrap();
        let issuer = self.base.clone();
        let mut s = Self::spawn_tweaked(dir.path(), &self.host, 0, move |c| c.server.issuer = issuer);
        s._dir = Some(dir);
        s
    }

    pub async fn stop(mut self) -> Option<DataDir> {
        self.handle.stop(true).await;
        self.thread.take().unwrap().join().unwrap();
        self._dir.take()
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs, Ordering::Relaxed);
    }

    /// Another handle on the same database, as the CLI has while the server runs.
    pub fn admin(&self) -> AppState {
        AppState::open(self.config.clone(), Clock::system()).unwrap()
    }

    pub fn add_user(&self, username: &str) -> String {
        let state = self.admin();
        let account = NewAccount {
            username,
            password: PASSWORD,
            email: Some("someone@example.com"),
            name: Some("Some One"),
            is_admin: false,
            must_change_password: false,
        };
        users::create(&state.pool.get().unwrap(), &state.passwords, &account, state.clock.now()).unwrap().id
    }

    pub fn add_client(&self, name: &str, grants: &[&str], public: bool) -> (String, Option<String>) {
        self.add_client_redirecting(name, grants, public, REDIRECT)
    }

    pub fn add_client_redirecting(&self, name: &str, grants: &[&str], public: bool, redirect: &str) -> (String, Option<String>) {
        let state = self.admin();
        let grants: Vec<String> = grants.iter().map(|s| s.to_string()).collect();
        let reg =
            Registration { name, redirect_uris: &[redirect.to_string()], post_logout_redirect_uris: &[POST_LOGOUT.to_string()], grant_types: &grants, public };
        let out = clients::register(&state.pool.get().unwrap(), &reg, state.clock.now()).unwrap();
        (out.client_id, out.client_secret)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Waits (up to 10 s) until the latchkey process at `base` answers `/readyz` with 200.
pub async fn wait_ready(base: &str) {
    for _ in 0..400 {
        if let Ok(r) = rp_http().get(format!("{base}/readyz")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{base} never became ready");
}

/// The HTTP client a relying party uses: no redirects followed (openidconnect requires it).
pub fn rp_http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A browser: keeps cookies, does not follow redirects, so each hop can be checked.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub type Rp = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// A relying party configured from discovery, as a SaaS app would be.
pub async fn relying_party(server: &TestServer, client_id: &str, secret: Option<&str>) -> Rp {
    relying_party_redirecting(server, client_id, secret, REDIRECT).await
}

pub async fn relying_party_redirecting(server: &TestServer, client_id: &str, secret: Option<&str>, redirect: &str) -> Rp {
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(server.base.clone()).unwrap(), &rp_http()).await.unwrap();
    CoreClient::from_provider_metadata(meta, ClientId::new(client_id.into()), secret.map(|s| ClientSecret::new(s.into())))
        .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap())
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").expect("a redirect").to_str().unwrap().to_string()
}

/// The value of a hidden form field in an HTML page.
pub fn field(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name} in page:\n{html}")) + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// A query parameter of an absolute URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Follows /authorize in `browser`; returns where latchkey sends the browser.
pub async fn authorize(server: &TestServer, browser: &reqwest::Client, url: &str) -> reqwest::Response {
    let res = browser.get(url).send().await.unwrap();
    if res.status() != StatusCode::SEE_OTHER {
        let status = res.status();
        panic!("authorize should redirect, answered {status}: {}", res.text().await.unwrap());
    }
    let _ = server;
    res
}

/// Opens the sign-in page at `login_path` and returns its HTML.
pub async fn login_page(server: &TestServer, browser: &reqwest::Client, login_path: &str) -> String {
    let res = browser.get(server.url(login_path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// Submits the sign-in form shown in `page`.
pub async fn submit_login(server: &TestServer, browser: &reqwest::Client, page: &str, username: &str, password: &str) -> reqwest::Response {
    let form = [("request", field(page, "request")), ("csrf", field(page, "csrf")), ("username", username.to_string()), ("password", password.to_string())];
    browser.post(server.url("/login")).form(&form).send().await.unwrap()
}

/// The whole person-side of a sign-in: authorize → sign-in page → password → back to the app.
/// Returns the URL latchkey redirected to (the client's redirect_uri with code or error).
pub async fn sign_in(server: &TestServer, browser: &reqwest::Client, auth_url: &str, username: &str) -> String {
    let res = authorize(server, browser, auth_url).await;
    let to = location(&res);
    assert!(to.starts_with("/login?request="), "expected the sign-in page, got {to}");
    let page = login_page(server, browser, &to).await;
    let res = submit_login(server, browser, &page, username, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    location(&res)
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    (verifier.secret().clone(), challenge.as_str().to_string())
}

/// An authorization URL built by hand, for requests a well-behaved library would never send.
pub fn auth_url(server: &TestServer, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// The usual valid request for `client_id` with `challenge`, with `extra` parameters added or replaced.
pub fn good_auth_url(server: &TestServer, client_id: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid offline_access"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    // Extra parameters replace the defaults of the same name.
    pairs.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    pairs.extend_from_slice(extra);
    auth_url(server, &pairs)
}

/// Signs `username` in for `client_id` and returns (code, verifier).
pub async fn code_for(server: &TestServer, browser: &reqwest::Client, client_id: &str, username: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let back = sign_in(server, browser, &good_auth_url(server, client_id, &challenge, &[]), username).await;
    (query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}")), verifier)
}

/// POSTs a form to the token-style endpoint `path`, authenticating with HTTP Basic when given.
pub async fn post_form(
    server: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = rp_http().post(server.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)) };
    (status, headers, body)
}

pub async fn redeem(server: &TestServer, client: (&str, &str), code: &str, verifier: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT), ("code_verifier", verifier)];
    let (status, _, body) = post_form(server, "/token", Some(client), &form).await;
    (status, body)
}

pub async fn refresh(server: &TestServer, client: (&str, &str), token: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let (status, _, body) = post_form(server, "/token", Some(client), &[("grant_type", "refresh_token"), ("refresh_token", token)]).await;
    (status, body)
}

pub async fn introspect(server: &TestServer, client: (&str, &str), token: &str) -> serde_json::Value {
    let (status, _, body) = post_form(server, "/introspect", Some(client), &[("token", token)]).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body
}

/// A confidential client with code + refresh, and a user who has signed in: the usual start.
pub struct Fixture {
    pub server: TestServer,
    pub client_id: String,
    pub secret: String,
    pub browser: reqwest::Client,
}

impl Fixture {
    pub async fn new() -> Self {
        let server = TestServer::spawn();
        server.add_user("alice");
        let (client_id, secret) = server.add_client("App", &["authorization_code", "refresh_token"], false);
        Self { server, client_id, secret: secret.unwrap(), browser: browser() }
    }

    pub fn client(&self) -> (&str, &str) {
        (&self.client_id, &self.secret)
    }

    /// Signs alice in and redeems the code: the token response.
    pub async fn tokens(&self) -> serde_json::Value {
        let (code, verifier) = code_for(&self.server, &self.browser, &self.client_id, "alice").await;
        let (status, body) = redeem(&self.server, self.client(), &code, &verifier).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{body}");
        body
    }
}

impl TestServer {
    /// One round of the server's housekeeping, now, at the server's (moved) clock.
    pub fn housekeep(&self) -> Vec<(&'static str, usize)> {
        let (clock, offset) = Clock::adjustable();
        offset.store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
        let state = AppState::open(self.config.clone(), clock).unwrap();
        latchkey::housekeep(&state).unwrap()
    }

    /// The server's "now" (system time plus however far the test has moved its clock).
    pub fn now(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + self.clock.load(Ordering::Relaxed)
    }
}

/// The current RFC 6238 code for `secret` at the server's time, as an authenticator app shows it.
pub fn totp_code(server: &TestServer, secret: &str) -> String {
    // The page shows the key in groups of four; authenticator apps drop the spaces.
    let secret: String = secret.split_whitespace().collect();
    let totp = totp_rs::Builder::new().with_secret(totp_rs::Secret::try_from_base32(&secret).unwrap()).build().unwrap();
    totp.generate(server.now() as u64).to_string()
}

/// Undoes askama's HTML escaping of text and attribute values.
pub fn unescape(s: &str) -> String {
    s.replace("&#38;", "&")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text of the element with `id` in an HTML page.
pub fn element_text(html: &str, id: &str) -> String {
    let marker = format!(r#"id="{id}">"#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no #{id} in page:\n{html}")) + marker.len();
    unescape(&html[start..start + html[start..].find('<').unwrap()])
}

/// Registers an authenticator app for the signed-in `browser` through Security info; returns
/// the secret, as a person would read it off the page.
pub async fn register_totp(server: &TestServer, browser: &reqwest::Client) -> String {
    let page = browser.get(server.url("/security/totp")).send().await.unwrap().text().await.unwrap();
    let secret = element_text(&page, "totp-secret");
    assert!(page.contains(r#"src="data:image/svg+xml;base64,"#), "a QR code is shown");
    let form = [("csrf", field(&page, "csrf")), ("code", totp_code(server, &secret))];
    let res = browser.post(server.url("/security/totp")).form(&form).send().await.unwrap();
    if res.status() == reqwest::StatusCode::OK {
        // A first method: the recovery codes are shown once, right away.
        let page = res.text().await.unwrap();
        assert_eq!(page.matches("<li><code>").count(), 10, "registration confirmed, recovery codes offered: {page}");
    } else {
        assert_eq!(location(&res), "/security", "registration confirmed");
    }
    secret
}

/// Registers an authenticator app on the sign-in's registration page at `to`
/// (`/mfa/setup?request=…`); returns the secret and the answer to the confirmed code.
pub async fn register_totp_at_sign_in(server: &TestServer, browser: &reqwest::Client, to: &str) -> (String, reqwest::Response) {
    assert!(to.starts_with("/mfa/setup?request="), "expected the registration page, got {to}");
    let page = browser.get(server.url(to)).send().await.unwrap().text().await.unwrap();
    let secret = element_text(&page, "totp-secret");
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("code", totp_code(server, &secret))];
    let res = browser.post(server.url("/mfa/setup")).form(&form).send().await.unwrap();
    (secret, continue_past_recovery_codes(server, browser, res).await)
}

/// After a first method is registered during sign-in, recovery codes are offered once; this
/// checks they are shown and continues.
pub async fn continue_past_recovery_codes(server: &TestServer, browser: &reqwest::Client, res: reqwest::Response) -> reqwest::Response {
    let to = location(&res);
    if !to.starts_with("/mfa/recovery?request=") {
        return res;
    }
    let page = browser.get(server.url(&to)).send().await.unwrap().text().await.unwrap();
    assert_eq!(page.matches("<li><code>").count(), 10, "ten recovery codes: {page}");
    assert!(page.contains(r#"id="download-codes""#) && page.contains(r#"id="copy-codes""#));
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf"))];
    browser.post(server.url("/mfa/recovery")).form(&form).send().await.unwrap()
}

/// The newest message in the file outbox containing `needle`, as text.
pub fn outbox_message(server: &TestServer, needle: &str) -> String {
    let dir = server.data_dir.join("outbox");
    let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no outbox at {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| (e.metadata().unwrap().modified().unwrap(), std::fs::read_to_string(e.path()).unwrap()))
        .filter(|(_, text)| text.contains(needle))
        .collect();
    found.sort_by_key(|(t, _)| *t);
    found.pop().unwrap_or_else(|| panic!("no message with {needle:?} in the outbox")).1
}

/// The value of `attr` on the element with `id`.
pub fn element_attr(html: &str, id: &str, attr: &str) -> String {
    let at = html.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id}"));
    let tag_start = html[..at].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let marker = format!(r#"{attr}=""#);
    let start = tag.find(&marker).unwrap_or_else(|| panic!("no {attr} on #{id}")) + marker.len();
    unescape(&tag[start..start + tag[start..].find('"').unwrap()])
}

/// Saves conditional-access template `key` as a policy (id = `key`) in `state`, after `tweak`.
pub fn put_template(
    server: &TestServer,
    key: &str,
    state: latchkey::policy::model::State,
    tweak: impl FnOnce(&mut latchkey::policy::model::Policy),
) -> latchkey::policy::model::Policy {
    let (_, _, mut p) = latchkey::policy::templates::all().into_iter().find(|(k, _, _)| *k == key).unwrap();
    p.id = key.to_string();
    p.state = state;
    tweak(&mut p);
    p.check().unwrap();
    let admin = server.admin();
    latchkey::store::policies::save(&admin.pool.get().unwrap(), &p, admin.clock.now()).unwrap();
    p
}

/// The `name=…` pair an answer sets, as a browser would send it back (or a thief replay it).
pub fn cookie_pair(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie set"))
}

/// The `lk_session=…` pair an answer sets.
pub fn session_cookie(res: &reqwest::Response) -> String {
    cookie_pair(res, "lk_session")
}

/// The signed-in `browser` changes its password from the portal, from `PASSWORD` to `new`;
/// returns the answer to the form.
pub async fn change_own_password(server: &TestServer, browser: &reqwest::Client, new: &str) -> reqwest::Response {
    let res = browser.get(server.url("/password/change")).send().await.unwrap();
    change_password_at(server, browser, &location(&res), new).await
}

/// Fills in and posts the password-change page at `to`.
pub async fn change_password_at(server: &TestServer, b: &reqwest::Client, to: &str, new: &str) -> reqwest::Response {
    assert!(to.starts_with("/password/change?request="), "expected the password-change page, got {to}");
    let page = b.get(server.url(to)).send().await.unwrap().text().await.unwrap();
    let form = [
        ("request", field(&page, "request")),
        ("csrf", field(&page, "csrf")),
        ("current_password", PASSWORD.to_string()),
        ("new_password", new.to_string()),
        ("confirm_password", new.to_string()),
    ];
    b.post(server.url("/password/change")).form(&form).send().await.unwrap()
}
