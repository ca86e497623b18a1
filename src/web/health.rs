//! Health for load balancers and orchestrators: `/healthz` (the process answers) and `/readyz`
//! (it can serve: the database answers and accepts writes, its schema is the latest, signing
//! keys are loaded). Both are cheap enough to poll every second, carry no secrets, and are not
//! cached.

use crate::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
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
}

/// A write proven this recently is not tried again: polling `/readyz` (anyone can) must not
/// take the write lock from sign-ins. A failed one is retried at once, so recovery shows.
const WRITE_PROBE_MS: u64 = 1000;

fn millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
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
    match (db, keys) {
        (Ok(()), true) => plain(HttpResponse::Ok(), "ready\n".into()),
        (Err(why), _) => plain(HttpResponse::ServiceUnavailable(), format!("not ready: {why}\n")),
        (Ok(()), false) => plain(HttpResponse::ServiceUnavailable(), "not ready: signing keys are not loaded\n".into()),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz)).route("/readyz", web::get().to(readyz));
}
