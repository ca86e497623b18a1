//! Several instances behind a load balancer, in a real browser: a passkey registered and used
//! with each WebAuthn ceremony started on one instance and finished on the other.

use crate::browser::{app, passkey_sign_in, register_passkey};
use crate::cdp::Browser;
use crate::common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What the balancer did with one WebAuthn request: its path, the instance that answered it
/// (0 = A, 1 = B) and the status.
type Routed = (String, usize, u16);

/// A load balancer with no stickiness, for one test: each request goes on a connection of its
/// own (the answer closes it) to instance A or B. A WebAuthn ceremony starts on A and finishes
/// on B, so it completes only if the instances share it; every other request alternates.
struct Balancer {
    port: u16,
    backends: Arc<OnceLock<[u16; 2]>>,
    ceremonies: Arc<Mutex<Vec<Routed>>>,
}

impl Balancer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let backends = Arc::new(OnceLock::new());
        let ceremonies = Arc::new(Mutex::new(vec![]));
        let turn = Arc::new(AtomicUsize::new(0));
        let (to, log) = (backends.clone(), ceremonies.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (to, log, turn) = (to.clone(), log.clone(), turn.clone());
                std::thread::spawn(move || {
                    let _ = relay(client, &to, &log, &turn);
                });
            }
        });
        Balancer { port, backends, ceremonies }
    }
}

/// Reads one request, sends it to its instance with `Connection: close`, and hands the whole
/// answer back.
fn relay(mut client: TcpStream, backends: &OnceLock<[u16; 2]>, ceremonies: &Mutex<Vec<Routed>>, turn: &AtomicUsize) -> std::io::Result<()> {
    let (mut request, mut chunk) = (Vec::new(), [0u8; 8192]);
    let head_end = loop {
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut chunk)? {
            0 => return Ok(()),
            n => request.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        match client.read(&mut chunk)? {
            0 => break,
            n => request.extend_from_slice(&chunk[..n]),
        }
    }
    let path = head.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let ceremony = path.starts_with("/webauthn/");
    let instance = match () {
        _ if ceremony && path.ends_with("/start") => 0,
        _ if ceremony && path.ends_with("/finish") => 1,
        _ => turn.fetch_add(1, Ordering::SeqCst) % 2,
    };
    let mut forwarded: String =
        head.trim_end().split("\r\n").filter(|line| !line.to_ascii_lowercase().starts_with("connection:")).map(|line| format!("{line}\r\n")).collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    let port = backends.get().expect("the instances are known before the browser starts")[instance];
    let mut backend = TcpStream::connect(("127.0.0.1", port))?;
    backend.write_all(forwarded.as_bytes())?;
    backend.write_all(&request[head_end..])?;
    let mut answer = Vec::new();
    backend.read_to_end(&mut answer)?;
    if ceremony {
        let status = String::from_utf8_lossy(&answer[..answer.len().min(12)]).split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        ceremonies.lock().unwrap().push((path, instance, status));
    }
    client.write_all(&answer)
}

#[tokio::test]
async fn passkey_ceremonies_started_on_one_instance_finish_on_the_other_in_a_browser() {
    if postgres_only("several instances") {
        return;
    }
    let balancer = Balancer::start();
    let a = TestServer::spawn_localhost_behind(balancer.port);
    let b = a.spawn_beside();
    balancer.backends.set([a.port, b.port]).unwrap();
    a.add_user("alice");
    let wiki = app(&a, "Wiki").await;
    let mut browser = Browser::launch();
    let authenticator = browser.add_authenticator(true, true);

    // Signed in with a password (forms shown by one instance, posted to the other), a passkey
    // is registered on Security info; signed out, the passkey alone signs in to the app.
    register_passkey(&mut browser, &a, &authenticator);
    passkey_sign_in(&wiki, &mut browser, &a).await;

    // Every ceremony began on A and was completed by B (the balancer's rule), and each answer
    // was a success: B found the challenge A had stored.
    let routed = balancer.ceremonies.lock().unwrap().clone();
    for finish in ["/webauthn/register/finish", "/webauthn/authenticate/finish"] {
        assert!(routed.iter().any(|(path, instance, status)| path == finish && *instance == 1 && *status == 200), "{finish} on B: {routed:?}");
    }
    assert!(routed.iter().all(|(_, _, status)| *status == 200), "{routed:?}");
    b.stop().await;
    a.stop().await;
}
