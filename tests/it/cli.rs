//! The `latchkey` command as an operator uses it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn latchkey(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey")).arg("--data-dir").arg(dir).args(args).env("LATCHKEY_PASSWORD__MEMORY_KIB", "1024").output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn cli_adds_users_and_clients_and_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, _) = latchkey(d, &["--json", "user", "add", "--username", "bob", "--password", "a long password", "--email", "bob@example.com"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["username"], "bob");

    let (ok, out, _) = latchkey(d, &["--json", "user", "add", "--username", "dave", "--password", "a long password", "--require-mfa"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["mfa_required"], true);

    let (ok, _, err) = latchkey(d, &["user", "add", "--username", "BOB", "--password", "a long password"]);
    assert!(!ok);
    assert!(err.contains(r#"a user named "BOB" already exists"#), "{err}");
    let (ok, _, err) = latchkey(d, &["user", "add", "--username", "carol", "--password", "short"]);
    assert!(!ok && err.contains("at least 8"), "{err}");
    let (ok, _, err) = latchkey(d, &["user", "add", "--username", "carol", "--password", "a long password", "--email", "nope"]);
    assert!(!ok && err.contains("e-mail"), "{err}");

    let (ok, out, _) = latchkey(d, &["--json", "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/oidc/callback"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["client_id"].as_str().unwrap().len() >= 22);
    assert!(v["client_secret"].as_str().unwrap().len() >= 43);

    for (uri, why) in [
        ("http://wiki.example.com/cb", "http is only allowed for loopback"),
        ("wiki.example.com/cb", "absolute URI"),
        ("https://wiki.example.com/cb#x", "fragment"),
        ("https://*.example.com/cb", "wildcards"),
    ] {
        let (ok, _, err) = latchkey(d, &["client", "add", "--name", "Bad", "--redirect-uri", uri]);
        assert!(!ok, "{uri} accepted");
        assert!(err.starts_with("latchkey: ") && err.contains(why), "{uri}: {err}");
    }
    let (ok, _, err) = latchkey(d, &["client", "add", "--name", "Wiki", "--redirect-uri", "https://x.example/cb"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = latchkey(d, &["client", "add", "--name", "SPA", "--public", "--grant-type", "client_credentials"]);
    assert!(!ok && err.contains("public client cannot use client_credentials"), "{err}");
    let (ok, out, _) = latchkey(d, &["client", "add", "--name", "SPA", "--public", "--redirect-uri", "http://localhost:5173/cb"]);
    assert!(ok && !out.contains("client_secret"), "{out}");

    let (ok, out, _) = latchkey(d, &["--json", "policy", "security-defaults", "off"]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["security_defaults"], false);
    let (ok, _, err) = latchkey(d, &["policy", "security-defaults", "maybe"]);
    assert!(!ok && err.contains("invalid value"), "{err}");

    let (ok, out, _) = latchkey(d, &["--json", "keys", "rotate"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kids = v["kids"].as_array().unwrap();
    assert_eq!(kids.len(), 3, "RS256, ES256 and EdDSA");
    assert!(kids.iter().all(|k| k.as_str().unwrap().len() == 43));
}

#[test]
fn serve_prints_the_first_admin_once_and_answers_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://{bind}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--json", "serve", "--bind", &bind, "--issuer", &issuer])
        .env("LATCHKEY_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["first_admin"]["username"], "admin");
    assert!(v["first_admin"]["one_time_password"].as_str().unwrap().len() >= 16);

    let url = format!("{issuer}/.well-known/openid-configuration");
    let mut body = None;
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(&bind) {
            use std::io::{Read, Write};
            write!(s, "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {bind}\r\nConnection: close\r\n\r\n").unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            body = Some(text);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let body = body.unwrap_or_else(|| panic!("{url} never answered"));
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(&format!(r#""issuer":"{issuer}""#)), "{body}");
    assert!(dir.path().join("latchkey.db").exists());
}
