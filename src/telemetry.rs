//! What operators see of a running server: the log (text or one JSON object per line, to
//! stderr, never able to take a request down with it) and the Prometheus metrics listener.

use crate::config::{LogConfig, LogFormat};
use std::io::Write;
use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// stderr that never fails: a full disk or a closed pipe under the log must not fail (or
/// panic) the request that was logging. What could not be written is counted instead.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().write_all(buf).is_err() {
            metrics::counter!("latchkey_log_write_errors_total").increment(1);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// The HTTP library's complaints about what clients sent (malformed requests, connections
/// dropped mid-request): a client's doing, so debug-level and counted, not an ERROR per request.
fn client_noise(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("actix_http::h1") && *meta.level() <= Level::WARN
}

/// Counts the client noise the fmt layer leaves out, and says it again at debug level.
struct CountClientNoise;

/// The `message` of an event.
#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for CountClientNoise {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if client_noise(event.metadata()) {
            metrics::counter!("latchkey_http_client_errors_total").increment(1);
            let mut message = Message::default();
            event.record(&mut message);
            tracing::debug!(target: "latchkey::http", "malformed or aborted request: {}", message.0);
        }
    }
}

/// Installs the process's log: `log.level`, `log.format`; every line written while serving a
/// request carries its request id (the `request` span).
pub fn init_logging(config: &LogConfig) -> Result<(), String> {
    let level: Level = config.level.parse().map_err(|_| format!("log.level {:?} is not a level", config.level))?;
    let keep = filter_fn(move |meta| *meta.level() <= level && !client_noise(meta));
    // Colours only for a person at a terminal: a file, journald or a container log keeps plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(|| Stderr).with_target(false).with_ansi(colour);
    let fmt = match config.format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).boxed(),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(keep))
        .with(CountClientNoise.with_filter(filter_fn(client_noise)))
        .try_init()
        .map_err(|e| format!("cannot install the log: {e}"))
}

static METRICS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();

/// Whether metrics are recorded at all (`server.metrics_bind` is set): work that only builds a
/// metric's labels can be skipped otherwise.
pub fn metrics_on() -> bool {
    METRICS.get().is_some()
}

/// The process-wide metrics recorder, installed on first use; its handle renders the
/// exposition. Until something asks for it, recording a metric costs next to nothing.
pub fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = METRICS.get() {
        return Ok(handle.clone());
    }
    let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let recorder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets).map_err(|e| e.to_string())?.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    describe();
    Ok(METRICS.get_or_init(|| handle).clone())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("latchkey_http_requests_total", "HTTP requests answered, by route, method and status");
    describe_histogram!("latchkey_http_request_duration_seconds", "HTTP request latency, by route, method and status");
    describe_counter!("latchkey_http_client_errors_total", "Malformed or aborted HTTP requests from clients");
    describe_counter!("latchkey_signins_total", "Sign-in attempts written to the sign-in log, by result, method and app");
    describe_counter!("latchkey_policy_decisions_total", "Conditional-access policy results in sign-ins, by policy, state and result");
    describe_counter!("latchkey_token_grants_total", "Tokens issued at /token, by grant type");
    describe_counter!(
        "latchkey_token_grants_from_memory_total",
        "Client-credentials grants answered from the in-memory copies on the HTTP worker, without the database, by app"
    );
    describe_counter!("latchkey_risk_detections_total", "Identity protection detections, by kind");
    describe_counter!("latchkey_lockouts_total", "Accounts or clients locked out after too many attempts, by kind");
    describe_histogram!("latchkey_db_pool_wait_seconds", "Time spent waiting for a database connection");
    describe_counter!("latchkey_db_pool_timeouts_total", "Requests that got no database connection in time");
    describe_counter!("latchkey_db_unavailable_total", "Requests answered 503 because storage was unusable");
    describe_gauge!("latchkey_argon2_queue_depth", "Password hashes waiting for or running on the hashing threads");
    describe_counter!("latchkey_housekeeping_deleted_total", "Rows removed by housekeeping, by table");
    describe_counter!("latchkey_log_write_errors_total", "Log lines that could not be written");
    describe_gauge!("latchkey_tls_certificate_expiry_timestamp_seconds", "When the TLS certificate being served expires (Unix time; with server.tls_cert)");
    // The series without labels exist from the start, at zero: rate() and increase() then see
    // the first timeout or write error, and an alert on an absent series does not fire.
    for name in ["latchkey_http_client_errors_total", "latchkey_db_pool_timeouts_total", "latchkey_db_unavailable_total", "latchkey_log_write_errors_total"] {
        metrics::counter!(name).increment(0);
    }
    metrics::gauge!("latchkey_argon2_queue_depth").increment(0.0);
}

/// Serves `/metrics` on its own listener (`server.metrics_bind`), apart from the public one.
pub fn metrics_server(listener: std::net::TcpListener, handle: metrics_exporter_prometheus::PrometheusHandle) -> std::io::Result<actix_web::dev::Server> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let handle = web::Data::new(handle);
    Ok(HttpServer::new(move || {
        App::new().app_data(handle.clone()).route(
            "/metrics",
            web::get().to(|h: web::Data<metrics_exporter_prometheus::PrometheusHandle>| async move {
                HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(h.render())
            }),
        )
    })
    .workers(1)
    .listen(listener)?
    .run())
}

/// Appends the sign-in and audit rows committed since the last call to `file`, one JSON object
/// per line (`log.events_file`), and moves the export's cursor past them; returns how many. The
/// file is opened for each round (0600, append), so log rotation by renaming just works. A
/// crash between the write and the cursor's update repeats those lines: at least once, in order.
pub fn export_events(pool: &crate::store::Pool, file: &std::path::Path) -> Result<usize, String> {
    use crate::store::events;
    // One export at a time (the background thread and the last one at shutdown).
    static EXPORTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = EXPORTING.lock().unwrap_or_else(|e| e.into_inner());
    let conn = pool.get().map_err(|e| e.to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = None;
    let mut written = 0;
    for (table, kind) in events::STREAMS {
        let mut cursor = events::cursor(&conn, table).map_err(|e| e.to_string())?;
        loop {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            let (rows, last) = events::after(&conn, table, kind, cursor, 500, now).map_err(|e| e.to_string())?;
            if rows.is_empty() {
                break;
            }
            let f = match &mut out {
                Some(f) => f,
                None => out.insert(std::io::BufWriter::new(options.open(file).map_err(|e| format!("{}: {e}", file.display()))?)),
            };
            for row in &rows {
                serde_json::to_writer(&mut *f, row).map_err(|e| e.to_string())?;
                f.write_all(b"\n").map_err(|e| format!("{}: {e}", file.display()))?;
            }
            f.flush().map_err(|e| format!("{}: {e}", file.display()))?;
            events::set_cursor(&conn, table, last).map_err(|e| e.to_string())?;
            written += rows.len();
            cursor = last;
        }
    }
    Ok(written)
}

/// Runs `export_events` every second on a thread of its own while the server's state lives.
pub fn export_events_continuously(state: std::sync::Weak<crate::AppState>) {
    let run = move || {
        let mut failing = false;
        while let Some(state) = state.upgrade() {
            let file = state.config.log.events_file.clone();
            match export_events(&state.pool, &file) {
                Err(e) => {
                    metrics::counter!("latchkey_log_write_errors_total").increment(1);
                    // Said once when it starts failing, not every second.
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(error = %e, "sign-in and audit events cannot be exported; retrying every second");
                    }
                }
                Ok(_) if std::mem::replace(&mut failing, false) => tracing::info!("sign-in and audit events are exported again"),
                Ok(_) => {}
            }
            drop(state);
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    };
    if let Err(e) = std::thread::Builder::new().name("latchkey-events".into()).spawn(run) {
        tracing::warn!(error = %e, "no event export thread");
    }
}
