//! Several instances on one PostgreSQL database behave as one: what a person, an app or an
//! admin does through one instance, every other instance knows at once (issue 14). Each test
//! runs two servers on one database, as two machines behind a load balancer without sticky
//! sessions; they share no memory.

use crate::common::*;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Two instances on one database, or None (and a note) when the suite runs on SQLite.
fn pair() -> Option<(TestServer, TestServer)> {
    if postgres_only("several instances") {
        return None;
    }
    let a = TestServer::spawn();
    let b = a.spawn_beside();
    Some((a, b))
}

#[tokio::test]
async fn a_session_made_on_one_instance_signs_the_person_in_on_the_other_and_signing_out_on_one_ends_it_on_both() {
    let Some((a, b)) = pair() else { return };
    a.add_user("alice");
    let (id, secret) = a.add_client("App", &["authorization_code", "refresh_token"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());
    let browser = browser();
    let (code, verifier) = code_for(&a, &browser, &id, "alice").await;

    // B knows the session A made: no password asked.
    let (verifier_b, challenge_b) = pkce();
    let res = browser.get(good_auth_url(&b, &id, &challenge_b, &[("prompt", "none")])).send().await.unwrap();
    let back = location(&res);
    let code_b = query_param(&back, "code").unwrap_or_else(|| panic!("B asked again: {back}"));
    let (status, tokens) = redeem(&b, client, &code_b, &verifier_b).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // A code from A is redeemed once, wherever: a replay at the other instance is refused.
    let (status, _) = redeem(&b, client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = redeem(&a, client, &code, &verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    // Signing out through A ends the session B serves.
    let id_token = tokens["id_token"].as_str().unwrap();
    let res = browser.get(a.url(&format!("/logout?id_token_hint={id_token}"))).send().await.unwrap();
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    let (_, challenge) = pkce();
    let res = browser.get(good_auth_url(&b, &id, &challenge, &[("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"), "B still had the session");
}

#[tokio::test]
async fn a_refresh_token_rotated_on_one_instance_and_replayed_on_the_other_ends_the_family() {
    let Some((a, b)) = pair() else { return };
    a.add_user("alice");
    let (id, secret) = a.add_client("App", &["authorization_code", "refresh_token"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());
    let (code, verifier) = code_for(&a, &browser(), &id, "alice").await;
    let (_, tokens) = redeem(&a, client, &code, &verifier).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    let (status, rotated) = refresh(&a, client, first).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, body) = refresh(&b, client, first).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let (status, body) = refresh(&a, client, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the replay on B revoked the family on A too: {body}");
    let body = introspect(&b, client, rotated["access_token"].as_str().unwrap()).await;
    assert_eq!(body["active"], false, "and its access token");
}

/// Submits one sign-in for `username` with `password` on `server`; the page's error text.
async fn attempt(server: &TestServer, client_id: &str, username: &str, password: &str, ip: &str) -> String {
    let b = browser();
    let (_, challenge) = pkce();
    let res = b.get(good_auth_url(server, client_id, &challenge, &[])).header("x-forwarded-for", ip).send().await.unwrap();
    let page = b.get(server.url(&location(&res))).header("x-forwarded-for", ip).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", username.to_string()), ("password", password.to_string())];
    let res = b.post(server.url("/login")).header("x-forwarded-for", ip).form(&form).send().await.unwrap();
    if res.status() == StatusCode::SEE_OTHER {
        return String::new();
    }
    element_text(&res.text().await.unwrap(), "login-error")
}

#[tokio::test]
async fn lockout_and_password_spray_count_attempts_made_on_every_instance() {
    let Some((a, b)) = pair() else { return };
    let config = latchkey::config::Config::load_from(None, []).unwrap().protection;
    a.add_user("alice");
    let (id, _) = a.add_client("App", &["authorization_code"], false);
    // Half the wrong passwords on each instance: together they reach the threshold.
    for i in 0..config.lockout_threshold {
        let server = if i % 2 == 0 { &a } else { &b };
        attempt(server, &id, "alice", "not the password", "198.51.100.20").await;
    }
    let text = attempt(&a, &id, "alice", PASSWORD, "198.51.100.21").await;
    assert!(text.starts_with("Too many attempts"), "{text}");
    let text = attempt(&b, &id, "alice", PASSWORD, "198.51.100.22").await;
    assert!(text.starts_with("Too many attempts"), "B locks her out too: {text}");

    // One password tried against many accounts from one address, spread over both instances.
    for i in 0..config.spray_accounts {
        let server = if i % 2 == 0 { &a } else { &b };
        attempt(server, &id, &format!("user{i}"), "Winter2026!", "203.0.113.9").await;
    }
    a.add_user("bob");
    attempt(&b, &id, "bob", "Winter2026!", "203.0.113.9").await;
    let conn = b.admin().pool.get().unwrap();
    let reason: String = conn
        .query_row("SELECT coalesce(reason, '') || ' ' || coalesce(context, '') FROM signin_log WHERE username = 'bob' ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(reason.contains("password spray"), "{reason}");
}

#[tokio::test]
async fn keys_rotated_and_apps_changed_through_one_instance_are_used_by_the_other_at_once() {
    let Some((a, b)) = pair() else { return };
    let (id, secret) = a.add_client("Service", &["client_credentials"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());
    let kid_of = |token: &str| -> String {
        use base64::Engine;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<serde_json::Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
    };
    let grant = || async { post_form(&b, "/token", Some(client), &[("grant_type", "client_credentials")]).await };
    let (_, _, before) = grant().await;
    let old = kid_of(before["access_token"].as_str().unwrap());

    // `keys rotate` on another instance (here: another process state on the same database).
    let admin = a.admin();
    admin.keys.rotate_all(admin.clock.now()).unwrap();
    let new = admin.keys.active(admin.clock.now()).kid.clone();
    assert_ne!(old, new);
    let started = Instant::now();
    loop {
        let jwks: serde_json::Value = rp_http().get(b.url("/jwks")).send().await.unwrap().json().await.unwrap();
        let published = jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == new.as_str());
        let (_, _, body) = grant().await;
        if published && kid_of(body["access_token"].as_str().unwrap()) == new {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "B did not publish and sign with the new key within 5 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An app disabled through A is refused by B on the next request.
    let conn = a.admin().pool.get().unwrap();
    conn.execute("UPDATE clients SET enabled = 0 WHERE id = ?1", [&id]).unwrap();
    let (status, _, body) = grant().await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{body}");
}

#[tokio::test]
async fn a_policy_turned_on_through_one_instance_is_enforced_by_the_other_within_a_second() {
    let Some((a, b)) = pair() else { return };
    a.add_user("alice");
    let (id, _) = a.add_client("App", &["authorization_code"], false);
    // B has read (and cached) the policies: a sign-in works.
    let back = sign_in(&b, &browser(), &good_auth_url(&b, &id, &pkce().1, &[]), "alice").await;
    assert!(query_param(&back, "code").is_some(), "{back}");
    put_template(&a, "block-legacy", latchkey::policy::model::State::On, |p| {
        p.name = "Block every sign-in".into();
        p.conditions.client_app_types = vec![];
    });
    let started = Instant::now();
    let person = browser();
    let res = authorize(&b, &person, &good_auth_url(&b, &id, &pkce().1, &[])).await;
    let page = login_page(&b, &person, &location(&res)).await;
    let res = submit_login(&b, &person, &page, "alice", PASSWORD).await;
    let blocked = res.status() == StatusCode::FORBIDDEN || location(&res).contains("error=access_denied");
    assert!(blocked, "B let alice in: {}", res.status());
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// `latchkey serve` on `dir` (whose database is another's), answering at `port` for `issuer`.
fn serve(dir: &std::path::Path, port: u16, issuer: &str) -> std::process::Child {
    latchkey_command(dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--issuer", issuer])
        .env("LATCHKEY_LOG__LEVEL", "error")
        .env("LATCHKEY_SERVER__TRUSTED_PROXIES", "127.0.0.1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A whole sign-in through the instance at `base`: Ok(code), or Err(what went wrong).
async fn sign_in_at(base: &str, client_id: &str) -> Result<(String, String), String> {
    let person = browser();
    let (verifier, challenge) = pkce();
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid offline_access"),
        ("state", "s"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let err = |e: reqwest::Error| e.to_string();
    let res = person.get(url.as_str()).send().await.map_err(err)?;
    let to = res.headers().get("location").ok_or(format!("authorize answered {}", res.status()))?.to_str().unwrap().to_string();
    let page = person.get(format!("{base}{to}")).send().await.map_err(err)?.text().await.map_err(err)?;
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())];
    let res = person.post(format!("{base}/login")).form(&form).send().await.map_err(err)?;
    let back = res.headers().get("location").ok_or(format!("sign-in answered {}", res.status()))?.to_str().unwrap().to_string();
    Ok((query_param(&back, "code").ok_or(back)?, verifier))
}

/// POSTs a refresh to the instance at `base`: Ok((status, body)) or Err (no answer).
async fn refresh_at(base: &str, client: (&str, &str), token: &str) -> Result<(StatusCode, serde_json::Value), reqwest::Error> {
    let res = rp_http()
        .post(format!("{base}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await?;
    let status = res.status();
    Ok((status, res.json().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_instance_under_load_loses_nothing_acknowledged_and_it_restarts_cleanly() {
    if postgres_only("several instances") {
        return;
    }
    // The directory (and database) the installation is made in, then two serving processes.
    let seed = TestServer::spawn();
    seed.add_user("alice");
    let (id, secret) = seed.add_client("App", &["authorization_code", "refresh_token"], false);
    let secret = secret.unwrap();
    let url = std::fs::read_to_string(seed.data_dir.join("test-database-url")).unwrap();
    let dirs = [DataDir::new(), DataDir::new()];
    let ports: Vec<u16> = (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    for d in &dirs {
        std::fs::write(d.path().join("test-database-url"), &url).unwrap();
    }
    let issuer = bases[0].clone();
    let mut a = serve(dirs[0].path(), ports[0], &issuer);
    let mut b = serve(dirs[1].path(), ports[1], &issuer);
    wait_ready(&bases[0]).await;
    wait_ready(&bases[1]).await;

    // Six refresh chains, started through either instance.
    let client = (id.clone(), secret.clone());
    let mut chains = Vec::new();
    for i in 0..6 {
        let base = &bases[i % 2];
        let (code, verifier) = sign_in_at(base, &id).await.unwrap();
        let (_, _, body) = post_form(
            &seed,
            "/token",
            Some((&id, &secret)),
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)],
        )
        .await;
        chains.push(body["refresh_token"].as_str().unwrap().to_string());
    }

    // Load on both: each chain refreshes in turn through A and B; sign-ins alongside.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut refreshers = Vec::new();
    for (i, first) in chains.into_iter().enumerate() {
        let (bases, client, stop) = (bases.clone(), client.clone(), stop.clone());
        refreshers.push(tokio::spawn(async move {
            // (last acknowledged token, whether a request with it went unanswered)
            let (mut token, mut in_flight, mut n) = (first, false, i);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                match refresh_at(&bases[n % 2], (&client.0, &client.1), &token).await {
                    Ok((StatusCode::OK, body)) => token = body["refresh_token"].as_str().unwrap().to_string(),
                    Ok((status, body)) if status.is_server_error() => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}"),
                    Ok((status, body)) => panic!("refresh refused without cause: {status} {body}"),
                    // The killed instance never answered: the rotation may or may not have landed.
                    Err(_) => {
                        in_flight = true;
                        break;
                    }
                }
            }
            (token, in_flight)
        }));
    }
    let mut signers = Vec::new();
    for i in 0..2 {
        let (bases, id, stop) = (bases.clone(), id.clone(), stop.clone());
        signers.push(tokio::spawn(async move {
            let mut acknowledged = 0;
            let mut n = i;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                if sign_in_at(&bases[n % 2], &id).await.is_ok() {
                    acknowledged += 1;
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    // B keeps answering alone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = 0;
    for s in signers {
        acknowledged += s.await.unwrap();
    }
    assert!(acknowledged > 0);
    let conn = seed.admin().pool.get().unwrap();
    let logged: i64 = conn.query_row("SELECT count(*) FROM signin_log WHERE result = 'success' AND username = 'alice'", [], |r| r.get(0)).unwrap();
    assert!(logged >= acknowledged + 6, "every acknowledged sign-in is in the log: {logged} < {acknowledged} + 6");

    // Every chain's last acknowledged token works through B, unless a request with it went
    // unanswered when A died: then it works or was spent (the rotation committed), never worse.
    for r in refreshers {
        let (token, in_flight) = r.await.unwrap();
        let (status, body) = refresh_at(&bases[1], (&id, &secret), &token).await.unwrap();
        if in_flight {
            assert!(status == StatusCode::OK || body["error"] == "invalid_grant", "{status} {body}");
        } else {
            assert_eq!(status, StatusCode::OK, "an acknowledged token was lost: {body}");
        }
    }

    // The killed instance starts again cleanly and serves.
    let mut a = serve(dirs[0].path(), ports[0], &issuer);
    wait_ready(&bases[0]).await;
    assert!(sign_in_at(&bases[0], &id).await.is_ok());
    a.kill().unwrap();
    b.kill().unwrap();
    let _ = (a.wait(), b.wait());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_sqlite_installation_to_postgresql_which_then_serves_a_relying_party() {
    use openidconnect::core::CoreAuthenticationFlow;
    use openidconnect::{AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, Scope, TokenResponse};
    if postgres_only("store copy") {
        return;
    }
    // An installation on SQLite, with a person, an app, a session, tokens and logs.
    let old = TestServer::spawn_with(|c| c.database.url = latchkey::config::Secret::new(""));
    let sub = old.add_user("alice");
    let (id, secret) = old.add_client("Wiki", &["authorization_code", "refresh_token"], false);
    let secret = secret.unwrap();
    let (code, verifier) = code_for(&old, &browser(), &id, "alice").await;
    let (_, tokens) = redeem(&old, (&id, &secret), &code, &verifier).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    let sqlite_file = old.data_dir.join("latchkey.db");
    let counts = |conn: &latchkey::store::db::Connection| -> Vec<i64> {
        ["users", "clients", "sessions", "grants", "refresh_tokens", "signing_keys", "signin_log", "audit_log", "settings"]
            .iter()
            .map(|t| conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)).unwrap())
            .collect()
    };
    let before = counts(&old.admin().pool.get().unwrap());
    let dir = old.stop().await.unwrap();

    // Copied into a new PostgreSQL database (named by database.url: no password on the command line).
    let target = DataDir::new();
    let (ok, out, err) = latchkey_run(target.path(), &["--json", "store", "copy", "--from", &format!("sqlite:{}", sqlite_file.display())]);
    assert!(ok, "{out}{err}");
    let copied: serde_json::Value = serde_json::from_str(out.trim().lines().last().unwrap()).unwrap();
    assert_eq!(copied["copied"]["users"], 1, "{copied}");
    // Not into a database that already holds an installation.
    let (ok, _, err) = latchkey_run(target.path(), &["store", "copy", "--from", &format!("sqlite:{}", sqlite_file.display())]);
    assert!(!ok && err.contains("not empty"), "{err}");

    // Served from PostgreSQL: the same rows, the old refresh token, and a relying party's flow.
    let server = TestServer::spawn_at(target.path(), 0);
    assert_eq!(counts(&server.admin().pool.get().unwrap()), before, "every table's rows");
    let (status, body) = refresh(&server, (&id, &secret), &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "the refresh token issued on SQLite works on PostgreSQL: {body}");
    let rp = relying_party(&server, &id, Some(&secret)).await;
    let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = rp
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = sign_in(&server, &browser(), auth_url.as_str(), "alice").await;
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("{back}"));
    let tokens = rp.exchange_code(AuthorizationCode::new(code)).unwrap().set_pkce_verifier(pkce_verifier).request_async(&rp_http()).await.unwrap();
    let claims = tokens.id_token().unwrap().claims(&rp.id_token_verifier(), &nonce).expect("signed with a copied key, verified from JWKS");
    assert_eq!(claims.subject().as_str(), sub);
    assert!(tokens.refresh_token().is_some());
    drop(dir);
}

/// Holds `LOCK TABLE table` in a transaction of its own on `url` until dropped: the database,
/// as a request sees it, hangs on that table.
struct HeldLock(Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>);

fn hold_lock(url: String, table: &'static str) -> HeldLock {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute(&format!("BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")).unwrap();
        locked.send(()).unwrap();
        let _ = wait.recv();
        client.batch_execute("ROLLBACK").unwrap();
    });
    is_locked.recv().unwrap();
    HeldLock(Some((release, thread)))
}

impl Drop for HeldLock {
    /// Released, and the release done, before the test goes on.
    fn drop(&mut self) {
        if let Some((release, thread)) = self.0.take() {
            drop(release);
            thread.join().unwrap();
        }
    }
}

#[tokio::test]
async fn a_database_that_hangs_is_a_503_with_retry_after_within_the_timeout_and_service_returns() {
    // SQLite's full and read-only disks are tested in faults.rs.
    if postgres_only("a hung database server") {
        return;
    }
    let server = TestServer::spawn_with(|c| c.database.timeout_ms = 500);
    server.add_user("alice");
    let (id, secret) = server.add_client("App", &["authorization_code", "refresh_token"], false);
    let client = (id.as_str(), secret.as_deref().unwrap());
    let (code, verifier) = code_for(&server, &browser(), &id, "alice").await;
    let (_, tokens) = redeem(&server, client, &code, &verifier).await;
    let url = std::fs::read_to_string(server.data_dir.join("test-database-url")).unwrap();

    // A person's sign-in page parks the request: its table hangs.
    let held = hold_lock(url.clone(), "auth_requests");
    let started = Instant::now();
    let res = browser().get(good_auth_url(&server, &id, &pkce().1, &[])).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    assert!(took < Duration::from_millis(2500), "answered within the timeout (500 ms) and the patience after it: {took:?}");
    drop(held);

    // An app's refresh: its table hangs; the OAuth answer says so.
    let held = hold_lock(url, "refresh_tokens");
    let started = Instant::now();
    let (status, body) = refresh(&server, client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable")), "{body}");
    assert!(started.elapsed() < Duration::from_millis(2500));
    drop(held);

    // Released: the same token still works (nothing was spent), and sign-ins go on.
    let (status, body) = refresh(&server, client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(browser().get(good_auth_url(&server, &id, &pkce().1, &[])).send().await.unwrap().status(), StatusCode::SEE_OTHER);
}

fn six_digits_after(text: &str, marker: &str) -> String {
    text.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker:?} in {text}")).trim_start().chars().take(6).collect()
}

/// The second-factor page of a fresh password sign-in of alice at `server`.
async fn mfa_page(server: &TestServer, b: &reqwest::Client, client_id: &str) -> String {
    let (_, challenge) = pkce();
    let res = authorize(server, b, &good_auth_url(server, client_id, &challenge, &[])).await;
    let page = login_page(server, b, &location(&res)).await;
    let to = location(&submit_login(server, b, &page, "alice", PASSWORD).await);
    assert!(to.starts_with("/login/mfa?request="), "a second factor is asked for: {to}");
    b.get(server.url(&to)).send().await.unwrap().text().await.unwrap()
}

async fn submit_code(server: &TestServer, b: &reqwest::Client, page: &str, code: &str) -> reqwest::Response {
    let form = [("request", field(page, "request")), ("csrf", field(page, "csrf")), ("method", "totp".into()), ("code", code.into())];
    b.post(server.url("/login/mfa")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn authenticator_codes_wrong_code_limits_and_e_mail_codes_are_shared_by_every_instance() {
    let Some((a, b)) = pair() else { return };
    a.add_user("alice");
    let (id, _) = a.add_client("App", &["authorization_code"], false);
    // Everything below happens within one 30-second time step of the authenticator.
    while a.now() % 30 > 20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = browser();
    code_for(&a, &first, &id, "alice").await;
    let secret = register_totp(&a, &first).await;
    let code = totp_code(&a, &secret);

    // Registering on A spent the current code: B refuses it as used.
    let x = browser();
    let page = mfa_page(&b, &x, &id).await;
    let html = submit_code(&b, &x, &page, &code).await.text().await.unwrap();
    assert!(html.contains("already been used"), "B accepted a code A had spent: {html}");

    // Wrong codes sent to A and B in turn spend one budget: after five, even the right code waits.
    let c = browser();
    let page = mfa_page(&a, &c, &id).await;
    for i in 0..5 {
        let server = if i % 2 == 0 { &a } else { &b };
        submit_code(server, &c, &page, "000000").await;
    }
    // Any sixth code: a wrong one would say "not correct" if the five had not been counted together.
    let sixth = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let html = submit_code(&b, &c, &page, &sixth).await.text().await.unwrap();
    assert!(html.contains("Too many wrong codes"), "the five wrong codes were not counted together: {html}");

    // An e-mail code sent by A is accepted by B, and B knows A sent one a moment ago.
    let admin = a.admin();
    admin.pool.get().unwrap().execute("UPDATE users SET email = 'alice@example.com', email_verified = 1 WHERE username = 'alice'", []).unwrap();
    let r = browser();
    let start = r.get(a.url("/reset")).send().await.unwrap().text().await.unwrap();
    let res = r.post(a.url("/reset")).form(&[("csrf", field(&start, "csrf")), ("username", "alice".into())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = r.get(a.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    let form = [("id", field(&page, "id")), ("csrf", field(&page, "csrf"))];
    let page = r.post(a.url("/reset/email")).form(&form).send().await.unwrap().text().await.unwrap();
    let again = r.post(b.url("/reset/email")).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("You can ask for another in"), "B sent a second code within the minute: {again}");
    let code = six_digits_after(&outbox_message(&a, "Your code:"), "Your code:");
    let form = [("id", field(&page, "id")), ("csrf", field(&page, "csrf")), ("code", code)];
    let res = r.post(b.url("/reset/email/verify")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "B refused the code A sent: {}", res.text().await.unwrap());
    assert!(location(&res).starts_with("/reset/"), "{}", location(&res));
    b.stop().await;
    a.stop().await;
}

/// Holds the database's write lock (SQLite) or locks `tables` (PostgreSQL) until dropped.
fn hang_writes(server: &TestServer, tables: &'static str) -> HeldLock {
    if on_postgres() {
        return hold_lock(std::fs::read_to_string(server.data_dir.join("test-database-url")).unwrap(), tables);
    }
    let file = server.data_dir.join("latchkey.db");
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(file).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        let _ = wait.recv();
        conn.execute_batch("ROLLBACK").unwrap();
    });
    is_locked.recv().unwrap();
    HeldLock(Some((release, thread)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_waiting_for_a_hung_database_do_not_hold_the_http_worker() {
    // One HTTP worker: if a request waiting for the database held it, nothing else would answer.
    let server = TestServer::spawn_with(|c| {
        c.server.workers = 1;
        c.database.timeout_ms = 3000;
    });
    server.add_user("alice");
    let (id, secret) = server.add_client("App", &["authorization_code", "refresh_token"], false);
    let (code, verifier) = code_for(&server, &browser(), &id, "alice").await;
    let (_, tokens) = redeem(&server, (&id, secret.as_deref().unwrap()), &code, &verifier).await;
    let held = hang_writes(&server, "refresh_tokens, auth_requests");

    // An app's refresh and a person's sign-in page wait for the database...
    let (token_url, form) =
        (server.url("/token"), [("grant_type", "refresh_token".to_string()), ("refresh_token", tokens["refresh_token"].as_str().unwrap().to_string())]);
    let (id2, secret2) = (id.clone(), secret.clone().unwrap());
    let refreshing = tokio::spawn(async move { rp_http().post(token_url).basic_auth(id2, Some(secret2)).form(&form).send().await.unwrap().status() });
    let signing_in = tokio::spawn(browser().get(good_auth_url(&server, &id, &pkce().1, &[])).send());
    tokio::time::sleep(Duration::from_millis(300)).await; // both are now inside the server
    // ...while the worker answers everyone else.
    for path in ["/healthz", "/jwks", "/.well-known/openid-configuration", "/static/style.css"] {
        let status = rp_http().get(server.url(path)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    assert!(!refreshing.is_finished() && !signing_in.is_finished(), "the waiting requests were still waiting when the others were answered");
    drop(held);
    assert_eq!(refreshing.await.unwrap(), StatusCode::OK, "the refresh went on once the database did");
    assert!(signing_in.await.unwrap().unwrap().status().is_redirection());
}
