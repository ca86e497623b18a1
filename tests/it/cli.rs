//! The `latchkey` command as an operator uses it.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

/// A password on the command line is readable by every user of the machine (`ps`) and stays in
/// shell history; `--password-stdin` takes it from standard input instead.
#[test]
fn a_new_users_password_can_come_from_standard_input() {
    use std::io::Write;
    let dir = DataDir::new();
    let d = dir.path();
    let add = |username: &str, stdin: &[u8], extra: &[&str]| {
        let mut child = latchkey_command(d)
            .args(["user", "add", "--username", username, "--password-stdin"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command may refuse before it reads: a closed pipe is then no error of the test's.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8(out.stderr).unwrap())
    };
    let (ok, err) = add("erin", b"a long password from stdin\r\nsecond line\n", &[]);
    assert!(ok, "{err}");
    // The first line, without its line break, is the password.
    let state = latchkey::AppState::open(test_config(d, "127.0.0.1", 0), latchkey::clock::Clock::system()).unwrap();
    let erin = latchkey::store::users::by_username(&state.pool.get().unwrap(), "erin").unwrap().unwrap();
    assert!(state.passwords.verify("a long password from stdin", Some(&erin.password_hash)));
    assert!(!state.passwords.verify("a long password from stdin\r", Some(&erin.password_hash)));
    let (ok, err) = add("frank", b"", &[]);
    assert!(!ok && err.contains("no password on standard input"), "{err}");
    let (ok, err) = add("frank", b"short\n", &[]);
    assert!(!ok && err.contains("at least 8"), "{err}");
    let (ok, err) = add("frank", b"a long password\n", &["--password", "another long password"]);
    assert!(!ok && err.contains("cannot be used with"), "one password, from one place: {err}");
    let (ok, _, err) = latchkey_run(d, &["user", "add", "--username", "frank"]);
    assert!(!ok && err.contains("--password"), "a password is required: {err}");
}

#[test]
fn cli_adds_users_and_clients_and_refuses_bad_input_clearly() {
    let dir = DataDir::new();
    let d = dir.path();
    let (ok, out, _) = latchkey_run(d, &["--json", "user", "add", "--username", "bob", "--password", "a long password", "--email", "bob@example.com"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["username"], "bob");

    let (ok, out, _) = latchkey_run(d, &["--json", "user", "add", "--username", "dave", "--password", "a long password", "--require-mfa"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["mfa_required"], true);

    let (ok, _, err) = latchkey_run(d, &["user", "add", "--username", "BOB", "--password", "a long password"]);
    assert!(!ok);
    assert!(err.contains(r#"a user named "BOB" already exists"#), "{err}");
    let (ok, _, err) = latchkey_run(d, &["user", "add", "--username", "carol", "--password", "short"]);
    assert!(!ok && err.contains("at least 8"), "{err}");
    let (ok, _, err) = latchkey_run(d, &["user", "add", "--username", "carol", "--password", "a long password", "--email", "nope"]);
    assert!(!ok && err.contains("e-mail"), "{err}");

    let (ok, out, _) = latchkey_run(d, &["--json", "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/oidc/callback"]);
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
        let (ok, _, err) = latchkey_run(d, &["client", "add", "--name", "Bad", "--redirect-uri", uri]);
        assert!(!ok, "{uri} accepted");
        assert!(err.starts_with("latchkey: ") && err.contains(why), "{uri}: {err}");
    }
    let (ok, _, err) = latchkey_run(d, &["client", "add", "--name", "Wiki", "--redirect-uri", "https://x.example/cb"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = latchkey_run(d, &["client", "add", "--name", "SPA", "--public", "--grant-type", "client_credentials"]);
    assert!(!ok && err.contains("public client cannot use client_credentials"), "{err}");
    let (ok, out, _) = latchkey_run(d, &["client", "add", "--name", "SPA", "--public", "--redirect-uri", "http://localhost:5173/cb"]);
    assert!(ok && !out.contains("client_secret"), "{out}");

    let (ok, out, _) = latchkey_run(d, &["--json", "policy", "security-defaults", "off"]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["security_defaults"], false);
    let (ok, _, err) = latchkey_run(d, &["policy", "security-defaults", "maybe"]);
    assert!(!ok && err.contains("invalid value"), "{err}");

    let (ok, out, _) = latchkey_run(d, &["--json", "keys", "rotate"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let kids = v["kids"].as_array().unwrap();
    assert_eq!(kids.len(), 3, "RS256, ES256 and EdDSA");
    assert!(kids.iter().all(|k| k.as_str().unwrap().len() == 43));
}

#[test]
fn serve_prints_the_first_admin_once_and_answers_discovery() {
    let dir = DataDir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://{bind}");
    let mut child = latchkey_command(dir.path())
        .args(["--json", "serve", "--bind", &bind, "--issuer", &issuer])
        .env("LATCHKEY_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    // An IP-address issuer leaves passkeys off, with a warning; a log read from a pipe (a file,
    // journald) is plain text, without terminal colour codes.
    assert!(log.contains("WARN") && log.contains("WebAuthn cannot use issuer"), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in a log that is not a terminal: {log:?}");
    let body = body.unwrap_or_else(|| panic!("{url} never answered"));
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(&format!(r#""issuer":"{issuer}""#)), "{body}");
    assert_eq!(dir.path().join("latchkey.db").exists(), !on_postgres(), "the database is where database.url says");
}

/// The database the commands on `dir` used (on PostgreSQL, the test's own, not a SQLite file).
fn store_of(dir: &std::path::Path) -> latchkey::store::Pool {
    let url = test_database(dir).unwrap_or_default();
    latchkey::store::open_configured(dir, &url, 2, std::time::Duration::from_secs(2)).unwrap()
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// `latchkey --json ARGS…`, which must succeed: its JSON.
fn ok_json(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = latchkey_run(dir, &all);
    assert!(ok, "{args:?} failed: {err}");
    json_of(&out)
}

/// `latchkey ARGS…`, which must fail: its error line.
fn refused(dir: &std::path::Path, args: &[&str]) -> String {
    let (ok, out, err) = latchkey_run(dir, args);
    assert!(!ok, "{args:?} succeeded: {out}");
    assert!(err.starts_with("latchkey: "), "{err}");
    err
}

#[test]
fn cli_lists_shows_and_changes_users_clients_groups_and_policies_and_the_audit_log_says_so() {
    let dir = DataDir::new();
    let d = dir.path();
    for u in ["alice", "bob"] {
        ok_json(d, &["user", "add", "--username", u, "--password", "a long password", "--email", &format!("{u}@example.com")]);
    }
    // Users.
    let list = ok_json(d, &["user", "list"]);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(ok_json(d, &["user", "list", "--search", "ALI"]).as_array().unwrap().len(), 1);
    let alice = ok_json(d, &["user", "show", "--username", "alice"]);
    assert_eq!((alice["email"].as_str(), alice["disabled"].as_bool(), alice["groups"].as_array().unwrap().len()), (Some("alice@example.com"), Some(false), 0));
    assert!(refused(d, &["user", "show", "--username", "nobody"]).contains("no user named \"nobody\""));
    assert_eq!(ok_json(d, &["user", "disable", "--username", "alice"])["done"], "disabled");
    assert_eq!(ok_json(d, &["user", "show", "--username", "alice"])["disabled"], true);
    ok_json(d, &["user", "enable", "--username", "alice"]);
    assert_eq!(ok_json(d, &["user", "show", "--username", "alice"])["disabled"], false);
    assert_eq!(ok_json(d, &["user", "unlock", "--username", "alice"])["done"], "unlocked");

    // Groups and members.
    assert_eq!(ok_json(d, &["group", "add", "--name", "Sales", "--description", "The sales team"])["name"], "Sales");
    assert!(refused(d, &["group", "add", "--name", "sales"]).contains("already exists"));
    assert_eq!(ok_json(d, &["group", "member", "add", "--group", "Sales", "--username", "alice"])["changed"], true);
    assert_eq!(ok_json(d, &["group", "member", "add", "--group", "Sales", "--username", "alice"])["changed"], false);
    assert_eq!(ok_json(d, &["user", "show", "--username", "alice"])["groups"], serde_json::json!(["Sales"]));
    assert_eq!(ok_json(d, &["group", "list"])[0]["members"], 1);
    assert_eq!(ok_json(d, &["group", "member", "remove", "--group", "Sales", "--username", "alice"])["changed"], true);
    assert!(refused(d, &["group", "member", "add", "--group", "Nope", "--username", "alice"]).contains("no group named"));

    // Deleting a user needs --yes.
    ok_json(d, &["group", "member", "add", "--group", "Sales", "--username", "bob"]);
    let err = refused(d, &["user", "delete", "--username", "bob"]);
    assert!(err.contains("--yes") && err.contains("1 group(s)"), "{err}");
    assert_eq!(ok_json(d, &["user", "show", "--username", "bob"])["username"], "bob", "still there");
    ok_json(d, &["user", "delete", "--username", "bob", "--yes"]);
    refused(d, &["user", "show", "--username", "bob"]);
    ok_json(d, &["group", "delete", "--name", "Sales"]);
    assert_eq!(ok_json(d, &["group", "list"]).as_array().unwrap().len(), 0);

    // Clients.
    let added = ok_json(d, &["client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb"]);
    let id = added["client_id"].as_str().unwrap().to_string();
    let (ok, list, _) = latchkey_run(d, &["--json", "client", "list"]);
    assert!(ok && !list.contains("secret_hash") && !list.contains(added["client_secret"].as_str().unwrap()), "no secret is ever listed: {list}");
    assert_eq!(json_of(&list)[0]["client_id"].as_str().or(json_of(&list)[0]["id"].as_str()), Some(id.as_str()));
    assert_eq!(ok_json(d, &["client", "show", "--name", "wiki"])["redirect_uris"], serde_json::json!(["https://wiki.example.com/cb"]));
    let rotated = ok_json(d, &["client", "rotate-secret", "--client-id", &id, "--grace-secs", "3600"]);
    let secret = rotated["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43 && secret != added["client_secret"].as_str().unwrap());
    assert!(refused(d, &["client", "rotate-secret", "--client-id", &id, "--grace-secs", "5"]).contains("--grace-secs"));
    ok_json(d, &["client", "disable", "--client-id", &id]);
    assert_eq!(ok_json(d, &["client", "show", "--client-id", &id])["enabled"], false);
    ok_json(d, &["client", "enable", "--name", "Wiki"]);
    assert!(refused(d, &["client", "delete", "--client-id", &id]).contains("--yes"));
    ok_json(d, &["client", "delete", "--client-id", &id, "--yes"]);
    assert!(refused(d, &["client", "show", "--client-id", &id]).contains("no such application"));

    // Policies: a new installation has security defaults on, so a policy cannot be switched on.
    let (_, _, mut policy) = latchkey::policy::templates::all().into_iter().next().unwrap();
    policy.id = "mfa-admins".into();
    policy.state = latchkey::policy::model::State::On;
    let file = d.join("policies.json");
    std::fs::write(&file, serde_json::to_string(&[&policy]).unwrap()).unwrap();
    assert!(refused(d, &["policy", "import", "--file", file.to_str().unwrap()]).contains("security defaults are on"));
    policy.state = latchkey::policy::model::State::ReportOnly;
    std::fs::write(&file, serde_json::to_string(&[&policy]).unwrap()).unwrap();
    assert_eq!(ok_json(d, &["policy", "import", "--file", file.to_str().unwrap()])["imported"][0]["state"], "report_only");
    std::fs::write(&file, "{ not json").unwrap();
    assert!(refused(d, &["policy", "import", "--file", file.to_str().unwrap()]).contains("not a list of policies"));
    let list = ok_json(d, &["policy", "list"]);
    assert_eq!((list["security_defaults"].as_bool(), list["policies"][0]["id"].as_str()), (Some(true), Some("mfa-admins")));
    assert!(refused(d, &["policy", "set-state", "--policy", "mfa-admins", "on"]).contains("security defaults are on"));
    ok_json(d, &["policy", "security-defaults", "off"]);
    assert_eq!(ok_json(d, &["policy", "set-state", "--policy", &policy.name, "on"])["state"], "on");
    let (ok, _, err) = latchkey_run(d, &["policy", "set-state", "--policy", "mfa-admins", "maybe"]);
    assert!(!ok && err.contains("invalid value"), "{err}");

    // Every change is in the audit log, by the command line, with before and after.
    let pool = store_of(d);
    let conn = pool.get().unwrap();
    let entries = audit_by_cli(&conn);
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for a in [
        "user_disabled",
        "user_enabled",
        "user_unlocked",
        "group_created",
        "group_member_added",
        "group_member_removed",
        "user_deleted",
        "group_deleted",
        "app_secret_rotated",
        "app_disabled",
        "app_enabled",
        "app_deleted",
        "policy_imported",
        "policy_updated",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let disabled = entries.iter().find(|e| e.action == "user_disabled").unwrap();
    assert!(disabled.before.as_deref().unwrap().contains(r#""disabled":false"#) && disabled.after.as_deref().unwrap().contains(r#""disabled":true"#));
}

#[test]
fn client_add_prints_the_issuer_the_running_server_serves() {
    let dir = DataDir::new();
    let d = dir.path();
    // No server has run here: the configuration's issuer.
    let v = ok_json(d, &["client", "add", "--name", "Before", "--redirect-uri", "https://a.example.com/cb"]);
    assert_eq!(v["issuer"], "http://localhost:8080");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let issuer = format!("http://localhost:{port}");
    let mut child = latchkey_command(d)
        .args(["serve", "--bind", &bind, "--issuer", &issuer])
        .env("LATCHKEY_LOG__LEVEL", "warn")
        .env("LATCHKEY_PASSWORD__MEMORY_KIB", "1024")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        // Answering HTTP, not only listening: the issuer is recorded before the server starts.
        if let Ok(mut s) = std::net::TcpStream::connect(&bind) {
            use std::io::{Read, Write};
            write!(s, "GET /.well-known/openid-configuration HTTP/1.1\r\nHost: {bind}\r\nConnection: close\r\n\r\n").unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            if text.starts_with("HTTP/1.1 200") {
                up = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let v = up.then(|| latchkey_run(d, &["--json", "client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb"]));
    child.kill().unwrap();
    child.wait().unwrap();
    let (ok, out, err) = v.expect("the server never listened");
    assert!(ok, "{err}");
    assert_eq!(json_of(&out)["issuer"], issuer.as_str(), "the served issuer, not the configuration's");
}

#[test]
fn cli_group_delete_takes_the_group_out_of_policies_and_rotate_secret_ends_the_old_secret_like_the_console() {
    let dir = DataDir::new();
    let d = dir.path();
    // A policy that includes one group and excludes another.
    let sales = ok_json(d, &["group", "add", "--name", "Sales"])["id"].as_str().unwrap().to_string();
    let kept = ok_json(d, &["group", "add", "--name", "Kept"])["id"].as_str().unwrap().to_string();
    let (_, _, mut policy) = latchkey::policy::templates::all().into_iter().next().unwrap();
    policy.id = "sales-mfa".into();
    policy.state = latchkey::policy::model::State::ReportOnly;
    policy.include_users.groups = vec![sales.clone(), kept.clone()];
    policy.exclude_users.groups = vec![sales.clone()];
    let file = d.join("policies.json");
    std::fs::write(&file, serde_json::to_string(&[&policy]).unwrap()).unwrap();
    ok_json(d, &["policy", "import", "--file", file.to_str().unwrap()]);

    ok_json(d, &["group", "delete", "--name", "Sales"]);
    let pool = store_of(d);
    let conn = pool.get().unwrap();
    let after = latchkey::store::policies::by_id(&conn, "sales-mfa").unwrap().unwrap();
    assert_eq!((after.include_users.groups, after.exclude_users.groups), (vec![kept], vec![]), "the policy no longer names Sales");
    let entries = audit_by_cli(&conn);
    let updated = entries.iter().find(|e| e.action == "policy_updated").expect("the policy change is audited");
    assert!(updated.before.as_deref().unwrap().contains(&sales) && !updated.after.as_deref().unwrap().contains(&sales));
    assert!(entries.iter().any(|e| e.action == "group_deleted"));

    // A rotation as the console makes it by default: the old secret works a day more, the new
    // one expires in a year.
    let added = ok_json(d, &["client", "add", "--name", "Wiki", "--redirect-uri", "https://wiki.example.com/cb"]);
    let id = added["client_id"].as_str().unwrap().to_string();
    let before = now();
    let rotated = ok_json(d, &["client", "rotate-secret", "--client-id", &id]);
    let (old_until, new_until) = (rotated["old_secret_expires_at"].as_i64().unwrap(), rotated["client_secret_expires_at"].as_i64().unwrap());
    assert!((before + 86_400..=now() + 86_400).contains(&old_until), "{rotated}");
    assert!((before + 365 * 86_400..=now() + 365 * 86_400).contains(&new_until), "{rotated}");
    let shown = ok_json(d, &["client", "show", "--client-id", &id]);
    assert_eq!((shown["previous_secret_expires_at"].as_i64(), shown["secret_expires_at"].as_i64()), (Some(old_until), Some(new_until)));
    // Stopped at once, and a secret that never expires.
    let rotated = ok_json(d, &["client", "rotate-secret", "--client-id", &id, "--grace-secs", "0", "--lifetime-days", "0"]);
    assert_eq!((rotated["old_secret_expires_at"].is_null(), rotated["client_secret_expires_at"].is_null()), (true, true), "{rotated}");
    assert!(refused(d, &["client", "rotate-secret", "--client-id", &id, "--lifetime-days", "10"]).contains("--lifetime-days"));
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Every audit entry the command line made, oldest first.
fn audit_by_cli(conn: &latchkey::store::db::Connection) -> Vec<latchkey::store::directory::AuditRow> {
    let filter = latchkey::store::directory::AuditFilter { actor: Some("cli".into()), ..Default::default() };
    let window = latchkey::admin::list::ListQuery::parse(
        "/",
        &latchkey::web::params::Params::default(),
        &latchkey::admin::list::Columns { sorts: &[("at", "a.at")], default: ("at", latchkey::admin::list::Dir::Asc), tiebreak: "a.id" },
    )
    .everything();
    latchkey::store::directory::audit_page(conn, &filter, &window).unwrap()
}

#[test]
fn a_bad_database_url_a_missing_shared_secret_and_a_bad_copy_source_are_refused_clearly() {
    let dir = DataDir::new();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut c = latchkey_command(dir.path());
        c.env_remove("LATCHKEY_DATABASE__URL").env_remove("LATCHKEY_KEYS__ENCRYPTION_SECRET");
        let out = c.envs(envs.iter().copied()).args(args).output().unwrap();
        (out.status.success(), String::from_utf8(out.stderr).unwrap())
    };
    let (ok, err) = run(&[("LATCHKEY_DATABASE__URL", "mysql://db.internal/latchkey")], &["check-config"]);
    assert!(!ok && err.contains("database.url must be a postgres:// URL"), "{err}");
    let (ok, err) = run(&[("LATCHKEY_DATABASE__URL", "postgres://db.internal/latchkey")], &["check-config"]);
    assert!(!ok && err.contains("set keys.encryption_secret too"), "{err}");
    let (ok, err) = run(&[], &["store", "copy", "--from", "./data/latchkey.db", "--to", "postgres://db.internal/latchkey"]);
    assert!(!ok && err.contains("--from must be sqlite:PATH"), "{err}");
    let (ok, err) = run(&[], &["store", "copy", "--from", "sqlite:/nonexistent/latchkey.db", "--to", "postgres://db.internal/latchkey"]);
    assert!(!ok && err.contains("no database file at /nonexistent/latchkey.db"), "{err}");
    let file = dir.path().join("old.db");
    std::fs::write(&file, b"").unwrap();
    let (ok, err) = run(&[], &["store", "copy", "--from", &format!("sqlite:{}", file.display())]);
    assert!(!ok && err.contains("--to postgres://… or database.url names the target"), "{err}");
}

/// A command on a directory that holds no installation (a typo in --data-dir, a configuration
/// that does not say where the data is) says so; a backup of it is refused, not an empty copy.
#[test]
fn a_command_on_a_directory_without_an_installation_says_so_and_backup_refuses() {
    if sqlite_only("a data directory without latchkey.db") {
        return;
    }
    let dir = DataDir::new();
    let typo = dir.path().join("typo");
    let (ok, _, err) = latchkey_run(&typo, &["backup", "--to", dir.path().join("nightly.db").to_str().unwrap()]);
    assert!(!ok);
    assert!(err.starts_with("latchkey: nothing to back up: there is no latchkey.db in") && err.contains("typo"), "{err}");
    assert!(!dir.path().join("nightly.db").exists() && !typo.join("latchkey.db").exists());

    let (ok, _, err) = latchkey_run(&typo, &["user", "add", "--username", "alice", "--password", "a long passphrase 1"]);
    assert!(ok, "{err}");
    assert!(err.contains("no installation in") && err.contains("creating a new one"), "{err}");
    // Now there is one: no note, and a backup of it.
    let (ok, _, err) = latchkey_run(&typo, &["user", "add", "--username", "bob", "--password", "a long passphrase 2"]);
    assert!(ok && !err.contains("no installation"), "{err}");
    let (ok, _, err) = latchkey_run(&typo, &["backup", "--to", dir.path().join("nightly.db").to_str().unwrap()]);
    assert!(ok, "{err}");
}

/// The first administrator's one-time password is made and printed by the start that serves:
/// a start that cannot take its port prints none, and the next start that can does.
#[test]
fn a_start_that_cannot_listen_prints_no_first_admin_and_the_next_start_does() {
    let dir = DataDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let out = latchkey_command(dir.path()).args(["--json", "serve", "--bind", &bind]).env("LATCHKEY_LOG__LEVEL", "warn").output().unwrap();
    assert!(!out.status.success());
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(!stdout.contains("one_time_password"), "{stdout}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    drop(taken);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = latchkey_command(dir.path())
        .args(["--json", "serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("LATCHKEY_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(v["first_admin"]["username"], "admin");
}
