//! Health for load balancers and orchestrators: `/healthz` (the process answers) and `/readyz`
//! (it can serve: the database answers and accepts writes, its schema is the latest, signing
//! keys are loaded). Both are cheap enough to poll every second, carry no secrets, and are not
//! cached. Why it is not ready is logged when it changes, and told only to a direct request
//! from this machine.

use crate::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::atomic::{AtomicU64, Ordering};

fn plain(mut res: actix_web::HttpResponseBuilder, body: String) -> HttpResponse {
    res.insert_header((header::CACHE_CONTROL, "no-store")).content_type("text/plain; charset=utf-8").body(body)
}

async fn healthz() -> HttpResponse {
    plain(HttpResponse::Ok(), "ok\n".into())
}

/// When this server's write probe last succeeded (milliseconds since the Unix epoch).
#[derive(Debug, Default)]
pub struct Readiness {
    last_write_ok: AtomicU64,
    /// The reason last logged (None: ready), so a poll every second logs changes only.
    logged: std::sync::Mutex<Option<String>>,
}

impl Readiness {
    fn report(&self, reason: Option<&str>) {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.as_deref() == reason {
            return;
        }
        match reason {
            Some(why) => tracing::warn!(reason = %why, "not ready"),
            None => tracing::info!("ready again"),
        }
        *logged = reason.map(str::to_string);
    }
}

/// Whether the reason goes in the answer: to someone on this machine asking directly (an
/// operator's curl), not through a proxy, so the world is not told what is wrong inside.
fn tell_why(req: &HttpRequest) -> bool {
    let direct = !["x-forwarded-for", "x-real-ip", "forwarded"].iter().any(|h| req.headers().contains_key(*h));
    direct && crate::web::peer_ip(req.peer_addr()).is_some_and(|ip| ip.is_loopback())
}

/// A write proven this recently is not tried again: polling `/readyz` (anyone can) must not
/// take the write lock from sign-ins. A failed one is retried at once, so recovery shows.
const WRITE_PROBE_MS: u64 = 1000;

fn millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn readyz(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let s = state.clone();
    let last = &state.readiness.last_write_ok;
    let write = millis().saturating_sub(last.load(Ordering::Relaxed)) >= WRITE_PROBE_MS;
    let db = web::block(move || -> Result<(), String> {
        let conn = s.pool.get().map_err(|e| format!("database pool: {e}"))?;
        crate::store::ready(&conn, now, write)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match (&db, write) {
        (Ok(()), true) => last.store(millis(), Ordering::Relaxed),
        (Err(_), _) => last.store(0, Ordering::Relaxed),
        _ => {}
    }
    let keys = crate::oidc::keys::ALGORITHMS.iter().all(|alg| state.keys.active_for(alg, now).alg == *alg);
    let why = match (db, keys) {
        (Ok(()), true) => None,
        (Err(why), _) => Some(why),
        (Ok(()), false) => Some("signing keys are not loaded".to_string()),
    };
    state.readiness.report(why.as_deref());
    match why {
        None => plain(HttpResponse::Ok(), "ready\n".into()),
        Some(why) if tell_why(&req) => plain(HttpResponse::ServiceUnavailable(), format!("not ready: {why}\n")),
        Some(_) => plain(HttpResponse::ServiceUnavailable(), "not ready (the reason is in the server's log)\n".into()),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz)).route("/readyz", web::get().to(readyz));
}
