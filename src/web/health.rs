//! Health for load balancers and orchestrators: `/healthz` (the process answers) and `/readyz`
//! (it can serve: the database answers and accepts writes, its schema is the latest, signing
//! keys are loaded). Both are cheap enough to poll every second, carry no secrets, and are not
//! cached.

use crate::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, web};

fn plain(mut res: actix_web::HttpResponseBuilder, body: String) -> HttpResponse {
    res.insert_header((header::CACHE_CONTROL, "no-store")).content_type("text/plain; charset=utf-8").body(body)
}

async fn healthz() -> HttpResponse {
    plain(HttpResponse::Ok(), "ok\n".into())
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let s = state.clone();
    let db = web::block(move || -> Result<(), String> {
        let mut conn = s.pool.get().map_err(|e| format!("database pool: {e}"))?;
        crate::store::ready(&mut conn, now)
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
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
