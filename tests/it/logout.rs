//! Single sign-out: OpenID Connect Back-Channel Logout 1.0, received and verified by a relying
//! party (a small HTTP listener, and the `openidconnect` crate's JWK Set for the signature).

use crate::common::*;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyId};
use reqwest::StatusCode;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// An app's back-channel logout endpoint: records every POST body and answers with `status`.
struct Listener {
    url: String,
    received: Arc<Mutex<Vec<String>>>,
    status: Arc<AtomicU16>,
}

impl Listener {
    fn start() -> Self {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/backchannel-logout", socket.local_addr().unwrap().port());
        let received = Arc::new(Mutex::new(vec![]));
        let status = Arc::new(AtomicU16::new(200));
        let (r, s) = (received.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in socket.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                r.lock().unwrap().push(String::from_utf8(body).unwrap());
                let code = s.load(Ordering::SeqCst);
                let _ = write!(stream, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Self { url, received, status }
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits (up to 10 s) for the `n`th logout token and returns it.
    fn wait_for(&self, n: usize) -> String {
        let start = Instant::now();
        while self.count() < n {
            assert!(start.elapsed() < Duration::from_secs(10), "no logout token #{n} arrived");
            std::thread::sleep(Duration::from_millis(50));
        }
        let body = self.received.lock().unwrap()[n - 1].clone();
        let token = body.strip_prefix("logout_token=").expect("a form with logout_token");
        percent_encoding::percent_decode_str(token).decode_utf8().unwrap().to_string()
    }
}

fn with_backchannel(server: &TestServer, client_id: &str, url: &str) {
    let conn = server.admin().pool.get().unwrap();
    conn.execute("UPDATE clients SET backchannel_logout_uri = ?2, backchannel_logout_session_required = 1 WHERE id = ?1", [client_id, url]).unwrap();
}

fn part(token: &str, i: usize) -> serde_json::Value {
    let raw = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, raw).unwrap()).unwrap()
}

/// Verifies a logout token as a relying party does (Back-Channel Logout 1.0 §2.6): signature by
/// latchkey's JWKS, issuer, audience, the event, sub/sid, no nonce, explicit type.
async fn verify(server: &TestServer, token: &str, client_id: &str) -> serde_json::Value {
    let header = part(token, 0);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "RS256");
    let jwks: CoreJsonWebKeySet = rp_http().get(server.url("/jwks")).send().await.unwrap().json().await.unwrap();
    let kid = JsonWebKeyId::new(header["kid"].as_str().unwrap().to_string());
    let key = jwks.keys().iter().find(|k| k.key_id() == Some(&kid)).expect("the key is published");
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
    key.verify_signature(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, signed.as_bytes(), &signature).expect("signed by latchkey");
    let claims = part(token, 1);
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["aud"], client_id);
    assert!(claims["events"][EVENT].is_object(), "{claims}");
    assert!(claims["jti"].is_string() && claims["iat"].is_i64() && claims["exp"].as_i64() > claims["iat"].as_i64());
    assert!(claims.get("nonce").is_none(), "never a nonce");
    claims
}

fn sid_of(tokens: &serde_json::Value) -> String {
    part(tokens["id_token"].as_str().unwrap(), 1)["sid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn signing_out_sends_the_app_a_verified_logout_token_with_its_session() {
    let f = Fixture::new().await;
    let rp = Listener::start();
    with_backchannel(&f.server, &f.client_id, &rp.url);
    let tokens = f.tokens().await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let res = f.browser.get(f.server.url(&format!("/logout?id_token_hint={id_token}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let claims = verify(&f.server, &rp.wait_for(1), &f.client_id).await;
    assert_eq!(claims["sid"], sid_of(&tokens).as_str());
    assert_eq!(claims["sub"], part(id_token, 1)["sub"]);
    let discovery: serde_json::Value = rp_http().get(f.server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);
    // Delivered once: the delivery is done, not repeated.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rp.count(), 1, "one token, once");
    f.server.stop().await;
}

#[tokio::test]
async fn a_password_change_and_an_admin_disabling_the_user_end_the_apps_sessions_too() {
    let mut f = Fixture::new().await;
    let rp = Listener::start();
    with_backchannel(&f.server, &f.client_id, &rp.url);
    // Two sessions of alice's: another browser's ends when she changes her password here.
    let other = f.tokens().await;
    let mine = {
        f.browser = browser();
        f.tokens().await
    };
    let res = f.browser.get(f.server.url("/password/change")).send().await.unwrap();
    let page = f.browser.get(f.server.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    let new = "a fresh passphrase for alice".to_string();
    let form = [
        ("request", field(&page, "request")),
        ("csrf", field(&page, "csrf")),
        ("current_password", PASSWORD.to_string()),
        ("new_password", new.clone()),
        ("confirm_password", new),
    ];
    f.browser.post(f.server.url("/password/change")).form(&form).send().await.unwrap();
    let claims = verify(&f.server, &rp.wait_for(1), &f.client_id).await;
    assert_eq!(claims["sid"], sid_of(&other).as_str(), "the other session, not the one she is using");
    // The admin disables her: her remaining session ends, and the app hears of it.
    let (admin, csrf) = crate::admin::mfa_browser(&f.server, "root", &[latchkey::store::directory::Role::GlobalAdmin]).await;
    let alice = latchkey::store::users::by_username(&f.server.admin().pool.get().unwrap(), "alice").unwrap().unwrap().id;
    let res = admin.post(f.server.url(&format!("/admin/users/{alice}/disable"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let claims = verify(&f.server, &rp.wait_for(2), &f.client_id).await;
    assert_eq!(claims["sid"], sid_of(&mine).as_str());
    f.server.stop().await;
}

#[tokio::test]
async fn a_failing_app_is_retried_with_backoff_and_every_attempt_is_audited() {
    let f = Fixture::new().await;
    let rp = Listener::start();
    rp.status.store(500, Ordering::SeqCst);
    with_backchannel(&f.server, &f.client_id, &rp.url);
    let tokens = f.tokens().await;
    let id_token = tokens["id_token"].as_str().unwrap();
    f.browser.get(f.server.url(&format!("/logout?id_token_hint={id_token}"))).send().await.unwrap();
    rp.wait_for(1);
    let conn = f.server.admin().pool.get().unwrap();
    let alice = latchkey::store::users::by_username(&conn, "alice").unwrap().unwrap().id;
    let audited = |action: &str| latchkey::store::mfa::audit_for_user(&conn, &alice).unwrap().iter().filter(|a| a.action == action).count();
    let start = Instant::now();
    while audited("backchannel_logout_retrying") == 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not again before the backoff…
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rp.count(), 1);
    // …then again, and this time the app accepts it.
    rp.status.store(200, Ordering::SeqCst);
    f.server.advance(6);
    let token = rp.wait_for(2);
    verify(&f.server, &token, &f.client_id).await;
    let start = Instant::now();
    while audited("backchannel_logout_delivered") == 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    let detail =
        latchkey::store::mfa::audit_for_user(&conn, &alice).unwrap().into_iter().find(|a| a.action == "backchannel_logout_retrying").unwrap().detail.unwrap();
    assert!(detail.contains("HTTP 500"), "{detail}");
    f.server.stop().await;
}

#[tokio::test]
async fn signing_out_loads_each_apps_front_channel_logout_page_with_iss_and_sid() {
    let f = Fixture::new().await;
    let conn = f.server.admin().pool.get().unwrap();
    conn.execute("UPDATE clients SET frontchannel_logout_uri = 'https://app.example.com/fc-logout' WHERE id = ?1", [&f.client_id]).unwrap();
    let tokens = f.tokens().await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let url = format!(
        "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=s1",
        percent_encoding::utf8_percent_encode(POST_LOGOUT, percent_encoding::NON_ALPHANUMERIC)
    );
    let res = f.browser.get(f.server.url(&url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a page that loads the apps' logout pages, then continues");
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("frame-src https://app.example.com;"), "only the apps' origins may be framed: {csp}");
    assert!(!csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"));
    let page = unescape(&res.text().await.unwrap());
    let src = page.split("<iframe src=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert!(src.starts_with("https://app.example.com/fc-logout?"), "{src}");
    assert_eq!(query_param(&src, "iss").as_deref(), Some(f.server.base.as_str()));
    assert_eq!(query_param(&src, "sid").as_deref(), Some(sid_of(&tokens).as_str()));
    assert!(page.contains(&format!("{POST_LOGOUT}?state=s1")), "then on to the app's registered page: {page}");
    let discovery: serde_json::Value = rp_http().get(f.server.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["frontchannel_logout_supported"], true);
    f.server.stop().await;
}
