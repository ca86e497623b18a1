//! What operators see: metrics on their own listener, request ids from request to log row,
//! and `check-config`.

use crate::common::*;
use latchkey::policy::model::{Apps, Principals, State};
use reqwest::StatusCode;

/// Starts the metrics listener on a port of its own (as `serve` does with server.metrics_bind).
fn metrics_listener() -> String {
    let handle = latchkey::telemetry::install_metrics().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    std::thread::spawn(move || actix_web::rt::System::new().block_on(latchkey::telemetry::metrics_server(listener, handle).unwrap()).unwrap());
    url
}

/// The value of the sample `name{…}` whose labels include every one of `labels` (0 if none).
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_sign_in_a_blocked_sign_in_and_client_credentials_grants_exactly_once() {
    let metrics = metrics_listener();
    let f = Fixture::new().await;
    let (blocked_app, _) = f.server.add_client("Blocked app", &["authorization_code"], false);
    let (service, secret) = f.server.add_client("Service", &["client_credentials"], false);
    // Policy names are labels: this test's own, so other tests' sign-ins do not count here.
    let policy = format!("Block {blocked_app}");
    put_template(&f.server, "block-legacy", State::On, |p| {
        p.name = policy.clone();
        p.conditions.client_app_types = vec![];
        p.include_users = Principals { all: true, ..Default::default() };
        p.include_apps = Apps { all: false, apps: vec![blocked_app.clone()] };
    });
    let scrape = || async { rp_http().get(&metrics).send().await.unwrap().text().await.unwrap() };
    let before = scrape().await;
    // The series without labels are there from the start (at zero until something happens).
    for series in ["latchkey_db_pool_timeouts_total ", "latchkey_db_unavailable_total ", "latchkey_log_write_errors_total ", "latchkey_argon2_queue_depth "] {
        assert!(before.lines().any(|l| l.starts_with(series)), "{series}missing: {before}");
    }

    let (code, verifier) = code_for(&f.server, &browser(), &f.client_id, "alice").await;
    assert_eq!(redeem(&f.server, f.client(), &code, &verifier).await.0, StatusCode::OK);
    let b = browser();
    let (_, challenge) = pkce();
    let res = authorize(&f.server, &b, &good_auth_url(&f.server, &blocked_app, &challenge, &[])).await;
    let page = login_page(&f.server, &b, &location(&res)).await;
    assert_eq!(submit_login(&f.server, &b, &page, "alice", PASSWORD).await.status(), StatusCode::FORBIDDEN);
    // Client credentials: the first grant reads the app into memory, the next ones are answered
    // from there (a copy serves for 250 ms after its read); each counts once either way.
    let mut grants = 0.0;
    let from_memory = || async { sample(&scrape().await, "latchkey_token_grants_from_memory_total", &[("app", &service)]) };
    while grants < 20.0 && (grants < 2.0 || from_memory().await == 0.0) {
        let (status, _, body) = post_form(&f.server, "/token", Some((&service, secret.as_deref().unwrap())), &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        grants += 1.0;
    }

    let after = scrape().await;
    let moved = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels) - sample(&before, name, labels);
    assert_eq!(moved("latchkey_signins_total", &[("app", &f.client_id), ("result", "success"), ("method", "pwd")]), 1.0, "{after}");
    assert_eq!(moved("latchkey_signins_total", &[("app", &blocked_app), ("result", "failure")]), 1.0);
    assert_eq!(moved("latchkey_policy_decisions_total", &[("policy", &policy), ("result", "block"), ("state", "on")]), 1.0);
    assert_eq!(moved("latchkey_token_grants_total", &[("app", &service), ("grant_type", "client_credentials")]), grants);
    let memory = moved("latchkey_token_grants_from_memory_total", &[("app", &service)]);
    assert!(memory >= 1.0 && memory < grants, "{memory} of {grants} grants from memory: the first reads the database");
    assert_eq!(moved("latchkey_token_grants_total", &[("app", &f.client_id), ("grant_type", "authorization_code")]), 1.0);
    // Requests by route and status, with their latency.
    assert!(moved("latchkey_http_requests_total", &[("route", "/token"), ("status", "200"), ("method", "POST")]) >= 2.0);
    assert!(after.contains("latchkey_http_request_duration_seconds_bucket{"), "a histogram");
    assert!(after.contains("# HELP latchkey_signins_total"));
    f.server.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_trusted_proxy_can_set_it() {
    // (Tests' servers trust loopback as a proxy.)
    let server = TestServer::spawn();
    let id = |res: &reqwest::Response| res.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
    let a = rp_http().get(server.url("/healthz")).send().await.unwrap();
    let b = rp_http().get(server.url("/healthz")).send().await.unwrap();
    let (a, b) = (id(&a).unwrap(), id(&b).unwrap());
    assert_eq!(a.len(), 20);
    assert_ne!(a, b, "a new id for every request");
    // From a trusted proxy, its id is kept; one that could not go into a log line as is, is not.
    let res = rp_http().get(server.url("/healthz")).header("x-request-id", "lb-7f3a.42").send().await.unwrap();
    assert_eq!(id(&res).as_deref(), Some("lb-7f3a.42"));
    let res = rp_http().get(server.url("/healthz")).header("x-request-id", "a b<script>").send().await.unwrap();
    assert_ne!(id(&res).as_deref(), Some("a b<script>"));
    // Two ids (a proxy that appends passed the client's on): neither is taken, and one id answers.
    let res = rp_http().get(server.url("/healthz")).header("x-request-id", "from-the-client").header("x-request-id", "lb-1").send().await.unwrap();
    let answered: Vec<_> = res.headers().get_all("x-request-id").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert!(answered[0] != "from-the-client" && answered[0] != "lb-1" && answered[0].len() == 20, "{answered:?}");
    // Error pages show it as the correlation id.
    let res = rp_http().get(server.url("/authorize?client_id=nope")).send().await.unwrap();
    let rid = id(&res).unwrap();
    assert_eq!(element_text(&res.text().await.unwrap(), "correlation-id"), rid);
    server.stop().await;
}

#[tokio::test]
async fn a_proxys_request_id_is_ignored_from_anyone_else() {
    let server = TestServer::spawn_with(|c| c.server.trusted_proxies = vec![]);
    let res = rp_http().get(server.url("/healthz")).header("x-request-id", "chosen-by-the-client").send().await.unwrap();
    assert_ne!(res.headers()["x-request-id"], "chosen-by-the-client");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_audit_events_are_appended_to_the_events_file_once_each() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("events.jsonl");
    let path = file.clone();
    let server = TestServer::spawn_with(move |c| c.log.events_file = path);
    server.add_user("alice");
    let (client_id, _) = server.add_client("Wiki", &["authorization_code"], false);
    let b = browser();
    let (_, challenge) = pkce();
    let res = authorize(&server, &b, &good_auth_url(&server, &client_id, &challenge, &[])).await;
    let page = login_page(&server, &b, &location(&res)).await;
    let res = submit_login(&server, &b, &page, "alice", "not her password").await;
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let admin = server.admin();
    latchkey::store::mfa::audit(&admin.pool.get().unwrap(), None, None, "test_event", Some("exported"), 1).unwrap();

    let mut lines: Vec<serde_json::Value> = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.iter().any(|l| l["type"] == "audit" && l["action"] == "test_event") && lines.iter().any(|l| l["type"] == "signin") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let signin = lines.iter().find(|l| l["type"] == "signin" && l["request_id"] == request_id.as_str()).unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(signin["client_id"], client_id.as_str());
    assert_eq!(signin["result"], "failure");
    assert_eq!(signin["username"], "alice");
    assert!(signin["policies"].is_array() || signin["policies"].is_null(), "JSON columns are JSON");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("not her password"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Once each: a later round adds only what is new.
    let before = lines.len();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let again = std::fs::read_to_string(&file).unwrap().lines().count();
    assert_eq!(again, before);
    let ids: std::collections::HashSet<String> = lines.iter().map(|l| format!("{}{}", l["type"], l["id"])).collect();
    assert_eq!(ids.len(), lines.len(), "no line twice");
    server.stop().await;
}
