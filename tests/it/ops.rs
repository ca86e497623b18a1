//! What an operator relies on: health endpoints, backups taken while serving, restores.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn healthz_answers_and_readyz_checks_the_database_and_keys() {
    let server = TestServer::spawn();
    let res = rp_http().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let res = rp_http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    // A schema that is not the latest (an older binary's database, or a failed migration) is
    // not ready.
    let downgrade = if on_postgres() { "DELETE FROM latchkey_schema WHERE version > 1" } else { "PRAGMA user_version = 1" };
    server.admin().pool.get().unwrap().execute_batch(downgrade).unwrap();
    let res = rp_http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.text().await.unwrap().contains("schema version 1"), "asked directly from this machine: the reason");
    // Through a proxy (the world asking): not ready, and nothing about what is wrong inside.
    for (proxy_header, value) in [("x-forwarded-for", "198.51.100.7"), ("x-real-ip", "198.51.100.7"), ("forwarded", "for=198.51.100.7")] {
        let res = rp_http().get(server.url("/readyz")).header(proxy_header, value).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = res.text().await.unwrap();
        assert!(!body.contains("schema") && body.starts_with("not ready"), "{proxy_header}: {body}");
    }
    server.stop().await;
}

/// HEAD is answered wherever GET is (RFC 9110 §9.3.2), with the GET's status and headers and no body.
#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let server = TestServer::spawn();
    for path in ["/healthz", "/.well-known/openid-configuration", "/jwks", "/login"] {
        let (get, head) = (rp_http().get(server.url(path)).send().await.unwrap(), rp_http().head(server.url(path)).send().await.unwrap());
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(head.headers().get("content-type"), get.headers().get("content-type"), "{path}");
    }
    // On the wire: headers, then nothing.
    let port = server.port;
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "HEAD /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let (_, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(body.is_empty(), "HEAD sent a body: {body}");
    // HEAD does not reach what only POST does.
    let res = rp_http().head(server.url("/token")).send().await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_during_sign_ins_restores_to_a_database_that_serves_a_relying_party() {
    if sqlite_only("latchkey backup") {
        return;
    }
    let f = Fixture::new().await;
    let backup_dir = DataDir::new();
    let file = backup_dir.path().join("latchkey-backup.db");
    let sign_ins = async {
        for _ in 0..5 {
            let (code, verifier) = code_for(&f.server, &browser(), &f.client_id, "alice").await;
            assert_eq!(redeem(&f.server, f.client(), &code, &verifier).await.0, StatusCode::OK);
        }
    };
    let data_dir = f.server.data_dir.clone();
    let path = file.clone();
    let backup = tokio::task::spawn_blocking(move || latchkey_run(&data_dir, &["--json", "backup", "--to", path.to_str().unwrap()]));
    let ((ok, out, err), ()) = tokio::join!(async { backup.await.unwrap() }, sign_ins);
    assert!(ok, "{out}{err}");
    // Not over an existing file.
    let (ok, _, err) = latchkey_run(&f.server.data_dir, &["backup", "--to", file.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");
    // Nor through a symbolic link, even one that points nowhere yet.
    #[cfg(unix)]
    {
        let (link, victim) = (file.with_file_name("link.db"), file.with_file_name("victim.txt"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let (ok, _, err) = latchkey_run(&f.server.data_dir, &["backup", "--to", link.to_str().unwrap()]);
        assert!(!ok && err.contains("already exists"), "{err}");
        assert!(!victim.exists(), "the backup followed the link");
    }
    let conn = rusqlite::Connection::open(&file).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    // Self-contained: no write-ahead log to need beside it (restorable from a read-only place).
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "a backup holds secrets");
    }
    // Restored into another installation, it serves the same app and user.
    let restored = DataDir::new();
    // Its key file must go with it (TOTP secrets and signing keys are sealed with it): without
    // it, or with another installation's, the restore is refused and nothing is replaced.
    let (ok, _, err) = latchkey_run(restored.path(), &["restore", "--from", file.to_str().unwrap()]);
    assert!(!ok && err.contains("there is no master.key in"), "{err}");
    std::fs::write(restored.path().join("master.key"), "another installation's key").unwrap();
    let (ok, _, err) = latchkey_run(restored.path(), &["restore", "--from", file.to_str().unwrap()]);
    assert!(!ok && err.contains("sealed with another master key"), "{err}");
    assert!(!restored.path().join("latchkey.db").exists(), "a refused restore replaced the database");
    std::fs::copy(f.server.data_dir.join("master.key"), restored.path().join("master.key")).unwrap();
    // Run as root for a service user's directory (where this suite runs as root), the restored
    // database belongs to the directory's owner.
    #[cfg(unix)]
    let service_user = std::os::unix::fs::chown(restored.path(), Some(65534), Some(65534)).is_ok();
    let (ok, out, err) = latchkey_run(restored.path(), &["restore", "--from", file.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    #[cfg(unix)]
    if service_user {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(restored.path().join("latchkey.db")).unwrap().uid(), 65534);
        std::os::unix::fs::chown(restored.path(), Some(0), Some(0)).unwrap();
    }
    let beside = |suffix: &str| file.with_file_name(format!("{}{suffix}", file.file_name().unwrap().to_str().unwrap()));
    assert!(!beside("-wal").exists() && !beside("-shm").exists(), "restore left files beside the backup");
    let server = TestServer::spawn_at(restored.path(), 0);
    let (code, verifier) = code_for(&server, &browser(), &f.client_id, "alice").await;
    assert_eq!(redeem(&server, f.client(), &code, &verifier).await.0, StatusCode::OK);
    server.stop().await;
}

#[test]
fn restore_is_refused_while_a_server_holds_the_data_directory_and_checks_its_input() {
    if sqlite_only("latchkey restore") {
        return;
    }
    let dir = DataDir::new();
    let not_a_db = dir.path().join("notes.txt");
    std::fs::write(&not_a_db, "hello").unwrap();
    let target = DataDir::new();
    let (ok, _, err) = latchkey_run(target.path(), &["restore", "--from", not_a_db.to_str().unwrap()]);
    assert!(!ok && err.starts_with("latchkey: "), "{err}");
    // A serving process holds the lock.
    let lock = latchkey::store::lock_data_dir(target.path()).unwrap().expect("free");
    let (ok, _, err) = latchkey_run(target.path(), &["restore", "--from", not_a_db.to_str().unwrap()]);
    assert!(!ok && err.contains("stop it before restoring"), "{err}");
    drop(lock);
}

#[tokio::test]
async fn the_installation_can_sign_access_tokens_with_es256_and_they_still_verify_everywhere() {
    use base64::Engine;
    let server = TestServer::spawn_with(|c| c.tokens.access_token_alg = "ES256".into());
    server.add_user("alice");
    let (id, secret) = server.add_client("Wiki", &["authorization_code", "client_credentials"], false);
    let secret = secret.unwrap();
    let header = |jwt: &str| -> serde_json::Value {
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
    };
    let (status, _, body) = post_form(&server, "/token", Some((&id, &secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let service_token = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(header(&service_token)["alg"], "ES256");
    assert_eq!(header(&service_token)["typ"], "at+jwt");
    let (status, _, body) = post_form(&server, "/introspect", Some((&id, &secret)), &[("token", &service_token)]).await;
    assert_eq!((status, body["active"].as_bool()), (StatusCode::OK, Some(true)), "{body}");
    // A person's access token too, accepted at userinfo; the ID token keeps the app's algorithm.
    let (code, verifier) = code_for(&server, &browser(), &id, "alice").await;
    let (status, tokens) = redeem(&server, (&id, &secret), &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(header(access)["alg"], "ES256");
    assert_eq!(header(tokens["id_token"].as_str().unwrap())["alg"], "RS256");
    let res = rp_http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The default stays RS256, and only the algorithms latchkey has keys for are accepted.
    assert_eq!(latchkey::config::Config::load_from(None, []).unwrap().tokens.access_token_alg, "RS256");
    assert!(
        latchkey::config::Config::load_from(None, [("LATCHKEY_TOKENS__ACCESS_TOKEN_ALG".into(), "HS256".into())])
            .unwrap_err()
            .to_string()
            .contains("access_token_alg")
    );
    server.stop().await;
}

#[tokio::test]
async fn housekeeping_keeps_what_can_still_matter_and_after_forty_days_removes_the_rest() {
    const DAY: i64 = 86_400;
    let f = Fixture::new().await;
    let count = |table: &str| -> i64 { f.server.admin().pool.get().unwrap().query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap() };
    // A sign-in in a browser of its own: a new session and refresh-token family each time.
    let tokens = || async {
        let (code, verifier) = code_for(&f.server, &browser(), &f.client_id, "alice").await;
        let (status, body) = redeem(&f.server, f.client(), &code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    // Day 0: two sign-ins, each a refresh-token family; family A is rotated once.
    let a = tokens().await;
    let a1 = a["refresh_token"].as_str().unwrap().to_string();
    let (status, a2) = refresh(&f.server, f.client(), &a1).await;
    assert_eq!(status, StatusCode::OK);
    let a2 = a2["refresh_token"].as_str().unwrap().to_string();
    let b = tokens().await;
    let b1 = b["refresh_token"].as_str().unwrap().to_string();
    let logged_day_0 = count("signin_log");

    // Day 20: both families are alive, so nothing of them goes — least of all A's rotated token,
    // whose reuse must still end the family.
    f.server.advance(20 * DAY);
    let deleted = f.server.housekeep();
    assert_eq!(count("signin_log"), logged_day_0, "inside the 30 days");
    assert_eq!(count("sessions"), 0, "the day-0 sessions ended more than a week ago: {deleted:?}");
    assert_eq!(count("grants"), 2, "{deleted:?}");
    let (status, body) = refresh(&f.server, f.client(), &a1).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    let (status, _) = refresh(&f.server, f.client(), &a2).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the reuse ended family A");

    // Day 40: family B's last token expired on day 30 and every access token from it long ago;
    // the day-0 sessions and log rows are past their time. A sign-in today is untouched.
    f.server.advance(20 * DAY);
    let today = tokens().await;
    let grants = count("grants");
    let deleted = f.server.housekeep();
    let gone = |table: &str| deleted.iter().find(|(t, _)| *t == table).map_or(0, |(_, n)| *n);
    assert_eq!(gone("grants"), 2, "{deleted:?}");
    assert_eq!(count("grants"), grants - 2);
    assert_eq!(count("refresh_tokens"), 1, "only today's family is left, its rotated tokens gone with their grants");
    assert_eq!(gone("signin_log") as i64, logged_day_0, "{deleted:?}");
    assert_eq!(count("sessions"), 1);
    let (status, body) = refresh(&f.server, f.client(), today["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = refresh(&f.server, f.client(), &b1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(f.server.housekeep().iter().all(|(t, _)| *t != "grants"), "nothing more to remove");
    f.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_concurrent_grants_than_connections_while_the_keys_are_due_for_a_reload_all_succeed() {
    // Each grant holds a connection; re-reading the signing keys must never wait for a second
    // one, or a full pool waits for itself until the timeout and answers 503.
    let server = TestServer::spawn_with(|c| c.database.pool_size = 2);
    server.add_user("alice");
    let (id, secret) = server.add_client("App", &["authorization_code", "refresh_token"], false);
    let mut tokens = vec![];
    for _ in 0..8 {
        let (code, verifier) = code_for(&server, &browser(), &id, "alice").await;
        let (status, body) = redeem(&server, (&id, secret.as_deref().unwrap()), &code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        tokens.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    for round in 0..3 {
        server.advance(5); // the loaded keys are now stale
        let mut tasks = tokio::task::JoinSet::new();
        for (i, token) in tokens.iter().enumerate() {
            let (url, id, secret, token) = (server.url("/token"), id.clone(), secret.clone().unwrap(), token.clone());
            tasks.spawn(async move {
                let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
                let res = rp_http().post(url).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
                (i, res.status(), res.json::<serde_json::Value>().await.unwrap())
            });
        }
        for (i, status, body) in tasks.join_all().await {
            assert_eq!(status, StatusCode::OK, "round {round}: {body}");
            tokens[i] = body["refresh_token"].as_str().unwrap().to_string();
        }
    }
    server.stop().await;
}

/// A sign-in waiting its turn for the password hashing threads holds no database connection:
/// with one connection and every hashing thread busy, a sign-in page and a password grant wait
/// for their hashes while userinfo, a refresh and a new sign-in page are answered at once
/// (holding the connection, they would wait for it until `database.timeout_ms` and get 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_and_console_passwords_waiting_for_the_hashing_threads_leave_the_database_connection_to_other_requests() {
    let server = TestServer::spawn_with(|c| {
        c.database.pool_size = 1;
        c.database.timeout_ms = 1000;
    });
    server.add_user("alice");
    let (id, secret) = server.add_client("Wiki", &["authorization_code", "refresh_token", "password"], false);
    let secret = secret.unwrap();
    let (code, verifier) = code_for(&server, &browser(), &id, "alice").await;
    let (status, tokens) = redeem(&server, (&id, &secret), &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // An administrator, who will set bob's password.
    let bob = server.add_user("bob");
    let (admin, csrf) = crate::admin::mfa_browser(&server, "root", &[latchkey::store::directory::Role::GlobalAdmin]).await;

    // Every hashing thread kept busy until the test lets go.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (started_tx, started) = std::sync::mpsc::channel();
    let mut releases = vec![];
    let mut holders = vec![];
    for _ in 0..threads {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        releases.push(release);
        let (passwords, started_tx) = (server.passwords.clone(), started_tx.clone());
        holders.push(std::thread::spawn(move || {
            passwords
                .run(move |_, _| {
                    started_tx.send(()).unwrap();
                    let _ = hold.recv();
                })
                .unwrap()
        }));
    }
    for _ in 0..threads {
        started.recv_timeout(std::time::Duration::from_secs(10)).expect("a hashing thread took the job");
    }

    // A person signs in and an app uses the password grant: both wait for a hashing thread.
    let b = browser();
    let res = authorize(&server, &b, &good_auth_url(&server, &id, &pkce().1, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())];
    let signing_in = tokio::spawn(b.post(server.url("/login")).form(&form).send());
    let grant_form = [("grant_type", "password"), ("username", "alice"), ("password", PASSWORD), ("scope", "openid")];
    let granting = tokio::spawn(rp_http().post(server.url("/token")).basic_auth(&id, Some(&secret)).form(&grant_form).send());
    let password_form = [("csrf", csrf), ("new_password", "a brand new secret".into()), ("confirm_password", "a brand new secret".into())];
    let setting = tokio::spawn(admin.post(server.url(&format!("/admin/users/{bob}/password"))).form(&password_form).send());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.passwords.queued() < threads + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sign-in, the grant and the console's password never all reached the hashing queue (does one waiting for its hash hold the only connection?)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Meanwhile the one connection serves everyone else.
    let access = tokens["access_token"].as_str().unwrap();
    let res = rp_http().get(server.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "userinfo while sign-ins wait for hashing: {}", res.text().await.unwrap());
    let (status, body) = refresh(&server, (&id, &secret), tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "refresh while sign-ins wait for hashing: {body}");
    let other = browser();
    let res = authorize(&server, &other, &good_auth_url(&server, &id, &pkce().1, &[])).await;
    login_page(&server, &other, &location(&res)).await;
    assert!(!signing_in.is_finished() && !granting.is_finished() && !setting.is_finished(), "the hashes cannot have run yet");

    // Let go: the waiting sign-in and grant complete.
    drop(releases);
    for h in holders {
        h.join().unwrap();
    }
    let res = signing_in.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    let res = granting.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let res = setting.await.unwrap().unwrap();
    assert_eq!((res.status(), location(&res)), (StatusCode::SEE_OTHER, format!("/admin/users/{bob}")));
    assert_eq!(server.passwords.queued(), 0);
}

/// A browser app calls discovery, keys, the token endpoint, userinfo and revocation from its own
/// origin (CORS, without credentials); the sign-in pages, portal and console stay same-origin.
#[tokio::test]
async fn browser_apps_may_call_the_token_endpoints_across_origins_and_nothing_else() {
    let server = TestServer::spawn();
    let origin = "https://spa.example.com";
    let preflight = rp_http()
        .request(reqwest::Method::OPTIONS, server.url("/token"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase().contains("content-type"));
    assert!(preflight.headers().get("access-control-allow-credentials").is_none(), "never with cookies");
    for path in ["/.well-known/openid-configuration", "/jwks"] {
        let res = rp_http().get(server.url(path)).header("Origin", origin).send().await.unwrap();
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
    }
    let res = rp_http().post(server.url("/token")).header("Origin", origin).form(&[("grant_type", "authorization_code")]).send().await.unwrap();
    assert!(res.status().is_client_error());
    assert_eq!(res.headers()["access-control-allow-origin"], "*", "errors are readable too");
    let res = rp_http().get(server.url("/userinfo")).header("Origin", origin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    // Pages that use the session cookie: no CORS at all.
    for path in ["/login", "/", "/admin", "/introspect"] {
        let res = rp_http().get(server.url(path)).header("Origin", origin).send().await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none(), "{path}");
        let res = rp_http().request(reqwest::Method::OPTIONS, server.url(path)).header("Origin", origin).send().await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
    server.stop().await;
}
