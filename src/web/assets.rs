//! Static assets, compiled into the binary so it runs from anywhere.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../static/style.css")),
    ("webauthn.js", "text/javascript; charset=utf-8", include_str!("../../static/webauthn.js")),
    ("copy.js", "text/javascript; charset=utf-8", include_str!("../../static/copy.js")),
    ("tz.js", "text/javascript; charset=utf-8", include_str!("../../static/tz.js")),
    ("picker.js", "text/javascript; charset=utf-8", include_str!("../../static/picker.js")),
];

async fn asset(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, mime, body)) => {
            HttpResponse::Ok().insert_header((header::CONTENT_TYPE, *mime)).insert_header((header::CACHE_CONTROL, "public, max-age=3600")).body(*body)
        }
        None => HttpResponse::NotFound().finish(),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{name}", web::get().to(asset));
}
