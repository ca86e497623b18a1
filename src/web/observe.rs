//! What every request leaves behind for operators: a request id (a trusted proxy's
//! `X-Request-Id`, else a new one) that is echoed in the response, carried by every log line
//! written while serving it, shown on error and block pages as the correlation id and stored on
//! the sign-in log rows it writes; and the HTTP metrics (requests and latency by route and
//! status).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::time::Instant;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served; None outside a request (background work, the CLI).
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `f` as part of the request `id` (work handed to another thread keeps its request id).
pub fn within<R>(id: Option<String>, f: impl FnOnce() -> R) -> R {
    match id {
        Some(id) => REQUEST_ID.sync_scope(id, f),
        None => f(),
    }
}

/// The correlation id a person is shown (on block and error pages, in an app's error
/// description): the request id, which the sign-in log rows of this request also carry.
pub fn correlation() -> String {
    current().unwrap_or_else(|| "-".into())
}

/// A proxy's id is kept only when it is short and plain, so it can go into logs and pages as is.
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// A fresh id: 80 random bits, hex, short enough to read out from a screenshot.
fn generate() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(20);
    for b in crate::crypto::random_bytes::<10>() {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 15)]));
    }
    id
}

fn from_trusted_proxy(req: &ServiceRequest) -> Option<String> {
    let peer = crate::web::peer_ip(req.peer_addr())?;
    let state = req.app_data::<actix_web::web::Data<crate::AppState>>()?;
    if !crate::web::trusted_proxy(&state.config, peer) {
        return None;
    }
    // Two ids: a proxy that appends its own passed the client's on, and which is which cannot
    // be told, so neither is taken.
    let mut ids = req.headers().get_all(HEADER);
    let id = ids.next()?.to_str().ok()?;
    if ids.next().is_some() {
        return None;
    }
    acceptable(id).then(|| id.to_string())
}

/// The middleware: outermost, so error pages rendered by inner layers see the id.
pub async fn observe(req: ServiceRequest, next: Next<impl MessageBody>) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = from_trusted_proxy(&req).unwrap_or_else(generate);
    // A fixed set of words: a client inventing methods cannot create new metrics.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        _ => "other",
    };
    // At ERROR level so that even a log of errors only keeps each line's request id.
    let span = tracing::error_span!("request", id = %id);
    let result = REQUEST_ID.scope(id.clone(), next.call(req)).instrument(span.clone()).await;
    let mut res = result?;
    // The route and labels cost a lookup and a few strings: only when someone reads them.
    let metrics = crate::telemetry::metrics_on();
    if metrics || tracing::enabled!(tracing::Level::DEBUG) {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
        let status = res.status().as_u16().to_string();
        let _in_request = span.enter();
        tracing::debug!(%method, %route, %status, ms = started.elapsed().as_millis() as u64, "request answered");
        if metrics {
            let labels = [("route", route), ("method", method.to_string()), ("status", status)];
            metrics::counter!("latchkey_http_requests_total", &labels).increment(1);
            metrics::histogram!("latchkey_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_from_a_proxy_are_kept() {
        assert!(acceptable("3f2a-9c.1:x_Y"));
        assert!(!acceptable(""));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable("a b"));
        assert!(!acceptable("<script>"));
        assert!(!acceptable("id\r\nSet-Cookie: x"));
        assert_eq!(generate().len(), 20);
        assert_ne!(generate(), generate());
    }
}
