//! Storage faults and process lifecycle, against the real binary or a real server on a real
//! file system: a read-only volume or database file at start, a full disk while serving,
//! SIGTERM under load, and `check-config`.
//!
//! The file-system faults use what this machine kind allows its tests (root): a small tmpfs
//! for a disk that fills, a read-only remount, and the immutable attribute on a file.

use crate::common::*;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `latchkey` on `dir`, logging warnings and errors only.
fn latchkey(dir: &Path) -> Command {
    let mut c = latchkey_command(dir);
    c.env("LATCHKEY_LOG__LEVEL", "warn");
    c
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Volume {
    dir: tempfile::TempDir,
}

impl Volume {
    fn new(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        run("mount", &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.path().to_str().unwrap()]);
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        run("mount", &["-o", &format!("remount,{mode}"), self.path().to_str().unwrap()]);
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// An installation in `dir`: the database, keys and a user, made by the CLI.
fn install(dir: &Path) {
    let out = latchkey(dir).args(["user", "add", "--username", "alice", "--password", PASSWORD]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `serve` on `dir` and waits for it to exit; returns (status ok, stderr, how long).
fn serve_until_exit(dir: &Path) -> (bool, String, Duration) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let mut child = latchkey(dir).args(["serve", "--bind", &format!("127.0.0.1:{port}")]).stderr(Stdio::piped()).spawn().unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            // Nothing took the port meanwhile: it was never bound.
            assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
            return (status.success(), err, started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            panic!("serve kept running on a storage it cannot write");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_on_a_read_only_data_directory_exits_at_once_with_the_reason() {
    if sqlite_only("a read-only data directory") {
        return;
    }
    let volume = Volume::new("64m");
    let dir = volume.path().join("data");
    install(&dir);
    volume.remount("ro");
    let (ok, err, took) = serve_until_exit(&dir);
    assert!(!ok);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("latchkey: ") && err.contains("not writable") && err.contains(dir.to_str().unwrap()), "{err}");
}

/// Sets or clears the immutable attribute: even root cannot write the file then.
fn immutable(file: &Path, on: bool) {
    run("chattr", &[if on { "+i" } else { "-i" }, file.to_str().unwrap()]);
}

#[test]
fn serve_on_a_read_only_database_file_exits_at_once_with_the_reason() {
    if sqlite_only("a read-only database file") {
        return;
    }
    let dir = DataDir::new();
    install(dir.path());
    let db = dir.path().join("latchkey.db");
    immutable(&db, true);
    let (ok, err, took) = serve_until_exit(dir.path());
    immutable(&db, false);
    assert!(!ok);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("latchkey.db") && (err.contains("read-only") || err.contains("cannot be opened for writing")), "{err}");
}

/// Fills the volume's free space with one file; returns it.
fn fill(volume: &Path) -> PathBuf {
    let filler = volume.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let _ = std::io::Write::write_all(&mut f, &[0u8; 512]);
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_every_sign_in_cleanly_and_service_returns_with_the_space() {
    if sqlite_only("a full disk") {
        return;
    }
    let volume = Volume::new("32m");
    let dir = volume.path().join("data");
    let server = TestServer::spawn_at(&dir, 0);
    server.add_user("alice");
    let (client_id, secret) = server.add_client("Wiki", &["authorization_code"], false);
    let secret = secret.unwrap();
    // Everything the WAL held is in the database file, so the next write needs new space.
    let checkpoint = || rusqlite::Connection::open(dir.join("latchkey.db")).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    checkpoint();
    let filler = fill(volume.path());

    let mut unavailable = 0;
    for _ in 0..10 {
        let b = browser();
        let (_, challenge) = pkce();
        // Each step either works or is a clean 503 page: never a dropped connection.
        let res = b.get(good_auth_url(&server, &client_id, &challenge, &[])).send().await.expect("an answer, not a dropped connection");
        let status = res.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(res.headers().contains_key("retry-after"));
            assert!(res.text().await.unwrap().contains("Temporarily unavailable"));
            unavailable += 1;
            continue;
        }
        assert_eq!(status, StatusCode::SEE_OTHER);
        let page = b.get(server.url(&location(&res))).send().await.expect("an answer");
        if page.status() == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
            continue;
        }
        let page = page.text().await.unwrap();
        let res = b
            .post(server.url("/login"))
            .form(&[("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())])
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert!(matches!(res.status(), StatusCode::SEE_OTHER | StatusCode::SERVICE_UNAVAILABLE), "{}", res.status());
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
        }
    }
    assert!(unavailable > 0, "the full disk was hit");
    // OAuth clients get the OAuth word for it.
    let (status, _, body) = post_form(&server, "/token", Some((&client_id, &secret)), &[("grant_type", "authorization_code"), ("code", "x")]).await;
    assert!(status == StatusCode::BAD_REQUEST || (status == StatusCode::SERVICE_UNAVAILABLE && body["error"] == "temporarily_unavailable"), "{status} {body}");
    let ready = rp_http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE, "not ready while writes fail");

    std::fs::remove_file(filler).unwrap();
    let ready = rp_http().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "{}", ready.text().await.unwrap());
    let (code, verifier) = code_for(&server, &browser(), &client_id, "alice").await;
    assert_eq!(redeem(&server, (&client_id, &secret), &code, &verifier).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_what_was_accepted_and_the_restart_serves_the_same_data() {
    let dir = DataDir::new();
    let out = latchkey(dir.path())
        .args(["--json", "client", "add", "--name", "Service", "--redirect-uri", "https://service.example.com/cb", "--grant-type", "client_credentials"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let client: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, secret) = (client["client_id"].as_str().unwrap().to_string(), client["client_secret"].as_str().unwrap().to_string());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let start = || latchkey(dir.path()).args(["serve", "--bind", &format!("127.0.0.1:{port}")]).stdout(Stdio::null()).spawn().unwrap();
    // Bounded: once the server has exited, another test's listener may take its port and
    // accept without ever answering; an unanswered request then ends the load like a refusal.
    let grant = |base: String, id: String, secret: String| async move {
        rp_http()
            .post(format!("{base}/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .timeout(Duration::from_secs(10))
            .send()
            .await
    };
    let mut child = start();
    wait_ready(&base).await;

    let load = (0..8).map(|_| {
        let (base, id, secret) = (base.clone(), id.clone(), secret.clone());
        tokio::spawn(async move {
            let mut answered = 0;
            loop {
                match grant(base.clone(), id.clone(), secret.clone()).await {
                    // An answer is a whole one: a token, or a clean refusal while stopping.
                    Ok(res) => {
                        let status = res.status();
                        let body: serde_json::Value = res.json().await.expect("a whole JSON body");
                        assert!(status == StatusCode::OK && body["access_token"].is_string() || status == StatusCode::SERVICE_UNAVAILABLE, "{status} {body}");
                        answered += 1;
                    }
                    // Once it stops accepting, connections are refused: the client can go elsewhere.
                    Err(_) => return answered,
                }
            }
        })
    });
    let load: Vec<_> = load.collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // `systemctl reload` without TLS: nothing to reload, and the server keeps serving.
    run("kill", &["-HUP", &child.id().to_string()]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP must not stop the server");
    run("kill", &["-TERM", &child.id().to_string()]);
    let mut answered = 0;
    for task in load {
        answered += task.await.unwrap();
    }
    assert!(answered > 8, "the load ran ({answered} answers)");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "exit status {status:?}");
    // A clean stop leaves one database file: the write-ahead log was folded in.
    let wal = dir.path().join("latchkey.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "WAL checkpointed");

    let mut child = start();
    wait_ready(&base).await;
    let res = grant(base.clone(), id, secret).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the same app, after the restart");
    run("kill", &["-TERM", &child.id().to_string()]);
    assert!(child.wait().unwrap().success());
}

#[test]
fn check_config_prints_every_value_with_its_source_and_hides_secrets() {
    let dir = DataDir::new();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "[server]\nissuer = \"https://id.example.com\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["--json", "--config", file.to_str().unwrap(), "check-config"])
        .env("LATCHKEY_SERVER__TRUSTED_PROXIES", "10.0.0.1,10.2.0.0/16")
        .env("LATCHKEY_KEYS__ENCRYPTION_SECRET", "correct-horse-battery-staple-9")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("correct-horse"), "a secret was printed: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let setting = |name: &str| v["settings"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
    // Values are JSON values, not JSON text inside strings.
    assert_eq!(setting("server.trusted_proxies")["value"], serde_json::json!(["10.0.0.1", "10.2.0.0/16"]));
    assert_eq!(setting("tokens.code_ttl_secs")["value"], serde_json::json!(60));
    assert_eq!(setting("server.trusted_proxies")["source"], "environment LATCHKEY_SERVER__TRUSTED_PROXIES");
    assert!(setting("server.issuer")["source"].as_str().unwrap().starts_with("file "));
    assert_eq!(setting("tokens.code_ttl_secs")["source"], "default");
    assert_eq!(setting("keys.encryption_secret")["value"], "[redacted]");
    // Valid but weak: said, without the secret.
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().starts_with("keys.encryption_secret has 30 characters"), "{warnings:?}");

    // A proxy list that trusts every address is valid, and said to be dangerous.
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey")).arg("check-config").env("LATCHKEY_SERVER__TRUSTED_PROXIES", "0.0.0.0/0").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("\nwarning: server.trusted_proxies includes 0.0.0.0/0: any client"), "{stdout}");
    assert!(stdout.ends_with("configuration is valid\n"), "{stdout}");

    // An invalid configuration: a clear one-line reason and status 1.
    let out =
        Command::new(env!("CARGO_BIN_EXE_latchkey")).arg("check-config").env("LATCHKEY_SERVER__TRUSTED_PROXIES", "10.0.0.1,not-an-address").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("latchkey: invalid configuration: server.trusted_proxies"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_never_a_secret() {
    let dir = DataDir::new();
    let cli = |args: &[&str]| {
        let out = latchkey(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://localhost:{port}");
    let log = dir.path().join("stderr.log");
    let mut child = latchkey(dir.path())
        .args(["--json", "serve", "--bind", &format!("127.0.0.1:{port}"), "--issuer", &base])
        .env("LATCHKEY_LOG__LEVEL", "debug")
        .env("LATCHKEY_LOG__FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The first admin's one-time password is printed on stdout (for the operator), never logged.
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    let first: serde_json::Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}; log: {}", std::fs::read_to_string(&log).unwrap()));
    let admin_password = first["first_admin"]["one_time_password"].as_str().unwrap().to_string();
    cli(&["user", "add", "--username", "alice", "--password", PASSWORD]);
    let app: serde_json::Value = serde_json::from_str(&cli(&[
        "--json",
        "client",
        "add",
        "--name",
        "Wiki",
        "--redirect-uri",
        REDIRECT,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--grant-type",
        "client_credentials",
    ]))
    .unwrap();
    let (id, secret) = (app["client_id"].as_str().unwrap().to_string(), app["client_secret"].as_str().unwrap().to_string());
    let http = browser();
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // A whole sign-in with every kind of secret: password, code, tokens, client secret.
    let (verifier, challenge) = pkce();
    let auth = format!(
        "{base}/authorize?response_type=code&client_id={id}&redirect_uri={}&scope=openid%20offline_access&state=s&code_challenge={challenge}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    // (Security defaults are on: alice may skip registering MFA for now.)
    let res = http.get(&auth).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{}", res.text().await.unwrap());
    let page = http.get(format!("{base}{}", location(&res))).send().await.unwrap().text().await.unwrap();
    let form = [("request", field(&page, "request")), ("csrf", field(&page, "csrf")), ("username", "alice".into()), ("password", PASSWORD.into())];
    let mut res = http.post(format!("{base}/login")).form(&form).send().await.unwrap();
    let mut back = location(&res);
    if !back.starts_with(REDIRECT) {
        let page = http.get(format!("{base}{back}")).send().await.unwrap().text().await.unwrap();
        let skip = [("request", field(&page, "request")), ("csrf", field(&page, "csrf"))];
        res = http.post(format!("{base}/mfa/setup/skip")).form(&skip).send().await.unwrap();
        back = location(&res);
    }
    let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let token = |form: Vec<(&'static str, String)>| {
        let (http, base, id, secret) = (rp_http(), base.clone(), id.clone(), secret.clone());
        async move { http.post(format!("{base}/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let tokens = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", verifier.clone()),
    ])
    .await;
    let refresh = tokens["refresh_token"].as_str().unwrap_or_else(|| panic!("{tokens}")).to_string();
    let rotated = token(vec![("grant_type", "refresh_token".into()), ("refresh_token", refresh.clone())]).await;
    // A replayed code and a reused refresh token: errors are logged, their secrets are not.
    token(vec![("grant_type", "authorization_code".into()), ("code", code.clone()), ("redirect_uri", REDIRECT.into()), ("code_verifier", verifier.clone())])
        .await;
    token(vec![("grant_type", "refresh_token".into()), ("refresh_token", refresh.clone())]).await;
    let cc = token(vec![("grant_type", "client_credentials".into())]).await;
    let bad = http
        .post(format!("{base}/login"))
        .form(&[("request", "x"), ("csrf", "y"), ("username", "alice"), ("password", "a-wrong-password-9")])
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error());
    // Malformed requests are the client's fault: no ERROR line each (they are counted instead).
    for garbage in ["GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n", "GET /\0 HTTP/9.9\r\n\r\n"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut s, garbage.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut answer);
    }
    run("kill", &["-TERM", &child.id().to_string()]);
    assert!(child.wait().unwrap().success());

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.lines().any(|l| l.contains(r#""level":"ERROR""#)), "{text}");
    assert!(text.lines().any(|l| l.contains(r#""level":"DEBUG""#) && l.contains("malformed or aborted request")), "{text}");
    // The tests' argon2id settings are weak on purpose: said once, at start.
    assert_eq!(text.lines().filter(|l| l.contains(r#""level":"WARN""#) && l.contains("below OWASP's least argon2id setting")).count(), 1, "{text}");
    let secrets = [
        PASSWORD.to_string(),
        "a-wrong-password-9".into(),
        admin_password,
        secret.clone(),
        code,
        verifier,
        refresh,
        tokens["access_token"].as_str().unwrap().into(),
        tokens["id_token"].as_str().unwrap().into(),
        rotated["refresh_token"].as_str().unwrap().into(),
        cc["access_token"].as_str().unwrap().into(),
    ];
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret is in the log: {s}");
    }
    let mut in_requests = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
        if v["fields"]["message"] == "request answered" {
            assert_eq!(v["span"]["id"].as_str().unwrap().len(), 20, "{line}");
            in_requests += 1;
        }
    }
    assert!(in_requests >= 8, "{text}");
}
