//! latchkey: an OpenID Connect identity provider for SaaS single sign-on.

pub mod admin;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod gate;
pub mod i18n;
pub mod mail;
pub mod oidc;
pub mod policy;
pub mod portal;
pub mod store;
pub mod telemetry;
pub mod web;

use actix_web::{App, HttpServer, dev::Server, web as aw};
use auth::password::PasswordHasher;
use clock::Clock;
use config::Config;
use oidc::keys::KeyRing;
use std::net::TcpListener;

/// Everything a request handler needs, shared by all workers.
pub struct AppState {
    pub config: Config,
    pub pool: store::Pool,
    pub keys: KeyRing,
    pub clock: Clock,
    pub passwords: PasswordHasher,
    /// None when the issuer's host cannot be a WebAuthn relying-party id (an IP address).
    pub webauthn: Option<webauthn_rs::Webauthn>,
    pub protection: auth::protection::Protection,
    pub mail: mail::Mailer,
    /// Keys the made-up WebAuthn credential ids shown for accounts that do not exist; derived
    /// from the master secret, so every instance makes up the same ones for a name.
    pub fake_key: [u8; 32],
    /// Encrypts TOTP secrets and signing keys at rest.
    pub sealer: crypto::Sealer,
    /// `/readyz`'s memory of its last write probe.
    pub readiness: web::health::Readiness,
    /// What a memory connection to this database needs (`store::db::Connection::memory`); None
    /// for an in-memory database.
    pub memory: Option<store::db::Memory>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Keys(#[from] oidc::keys::KeyError),
    #[error("{0}")]
    Password(String),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("cannot read or create the master key (master.key in the data directory): {0}")]
    MasterKey(std::io::Error),
    #[error("{0}")]
    Tls(String),
}

impl AppState {
    /// Opens the database (running migrations) and the signing keys, generating the first key.
    pub fn open(config: Config, clock: Clock) -> Result<Self, StartError> {
        let db = &config.database;
        let pool =
            store::open_configured(&config.server.data_dir, db.url.expose().unwrap_or(""), db.pool_size, std::time::Duration::from_millis(db.timeout_ms))?;
        let sealer = crypto::Sealer::load(config.keys.encryption_secret.expose(), &config.server.data_dir).map_err(StartError::MasterKey)?;
        let conn = pool.get().map_err(store::StoreError::from)?;
        store::mfa::seal_plaintext_totp(&conn, |s| sealer.seal(s))?;
        let memory = conn.memory_of();
        drop(conn);
        let keys = KeyRing::open(pool.clone(), Some(sealer.passphrase().to_string()), config.max_jwt_ttl(), clock.now())?;
        let passwords = PasswordHasher::new(&config.password).map_err(StartError::Password)?;
        let webauthn = match auth::webauthn::relying_party(config.issuer()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("{e}; security keys and passkeys are off (serve on a domain name such as localhost)");
                None
            }
        };
        let protection = auth::protection::Protection::new(&config.password, config.protection.clone(), sealer.passphrase()).map_err(StartError::Password)?;
        let mail = mail::Mailer::new(&config).map_err(StartError::Password)?;
        Ok(Self {
            config,
            pool,
            keys,
            clock,
            passwords,
            webauthn,
            protection,
            mail,
            fake_key: crypto::sha256(format!("latchkey made-up credential ids\0{}", sealer.passphrase()).as_bytes()),
            sealer,
            readiness: Default::default(),
            memory,
        })
    }
}

/// Builds the HTTP server on an already-bound listener; the caller runs the returned future.
pub fn build_app(state: AppState, listener: TcpListener) -> Result<Server, StartError> {
    let workers = match state.config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let https = state.config.issuer().starts_with("https://");
    let shutdown_timeout = state.config.server.shutdown_timeout_secs;
    let server_config = &state.config.server;
    let tls = match server_config.tls_cert.as_os_str().is_empty() {
        true => None,
        false => Some(web::tls::Certificate::load(&server_config.tls_cert, &server_config.tls_key).map_err(StartError::Tls)?),
    };
    let state = aw::Data::new(state);
    housekeeping(std::sync::Arc::downgrade(&state.clone().into_inner()));
    reload_keys(std::sync::Arc::downgrade(&state.clone().into_inner()));
    if !state.config.log.events_file.as_os_str().is_empty() {
        telemetry::export_events_continuously(std::sync::Arc::downgrade(&state.clone().into_inner()));
    }
    // The back-channel logout worker runs on its own thread until the server's state is gone.
    let weak = std::sync::Arc::downgrade(&state.clone().into_inner());
    std::thread::Builder::new()
        .name("latchkey-logout".into())
        .spawn(move || actix_web::rt::System::new().block_on(oidc::backchannel::run(weak)))
        .map_err(StartError::Listen)?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(aw::FormConfig::default().limit(64 * 1024))
            .app_data(aw::JsonConfig::default().limit(64 * 1024))
            .wrap(actix_web::middleware::from_fn(web::head_as_get))
            .wrap(actix_web::middleware::from_fn(web::cors))
            .wrap(web::security_headers(https))
            .wrap(actix_web::middleware::from_fn(i18n::request::select))
            .wrap(actix_web::middleware::from_fn(web::forwarded_proto))
            .wrap(actix_web::middleware::from_fn(web::observe::observe))
            .configure(oidc::configure)
            .configure(auth::configure)
            .configure(portal::configure)
            .configure(admin::configure)
            .configure(web::assets::configure)
            .configure(web::health::configure)
            .configure(i18n::configure)
    })
    .workers(workers)
    .shutdown_timeout(shutdown_timeout);
    web::tls::on_sighup(tls.as_ref())?;
    let server = match tls {
        Some(cert) => server.listen_rustls_0_23(listener, cert.server_config().map_err(StartError::Tls)?)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// Re-reads the signing keys every second on a thread of its own, until the server's state is
/// gone: a key rotated through another instance or the CLI is published and used within two
/// seconds, without any request waiting for the database to learn it.
fn reload_keys(state: std::sync::Weak<AppState>) {
    let run = move || {
        while let Some(state) = state.upgrade() {
            if let Err(e) = state.keys.refresh(state.clock.now()) {
                tracing::warn!(error = %e, "reloading signing keys failed; keeping the loaded ones");
            }
            drop(state);
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    };
    if let Err(e) = std::thread::Builder::new().name("latchkey-keys".into()).spawn(run) {
        tracing::warn!(error = %e, "no key reload thread; requests reload the keys when a connection is free");
    }
}

/// How often housekeeping runs.
const HOUSEKEEPING_SECS: u64 = 60;

/// One round of housekeeping at the state's `now`: expired pending sign-ins, TOTP enrolments and
/// finished back-channel deliveries (kept a week for the record), then the retention rules
/// (`store::retention`). Returns what went, by table; also counted in the metrics.
pub fn housekeep(state: &AppState) -> Result<store::retention::Deleted, store::StoreError> {
    let now = state.clock.now();
    let conn = state.pool.get()?;
    let mut deleted = vec![
        ("auth_requests", store::codes::purge_requests(&conn, now)?),
        ("totp_enrolments", store::mfa::purge_enrolments(&conn, now)?),
        ("logout_deliveries", store::logout::purge_done(&conn, now - 7 * 86_400)?),
    ];
    deleted.retain(|(_, n)| *n > 0);
    let retention = store::retention::Retention {
        log_secs: state.config.log.retention_days * 86_400,
        token_secs: state.config.max_jwt_ttl(),
        window_secs: state.config.protection.window_secs,
    };
    deleted.extend(store::retention::run(&conn, retention, now)?);
    for (table, n) in &deleted {
        metrics::counter!("latchkey_housekeeping_deleted_total", "table" => *table).increment(*n as u64);
    }
    Ok(deleted)
}

/// Runs `housekeep` now and every minute, on a thread of its own (the caller may not be inside
/// an async runtime yet), until the server's state is gone. Inserting a pending sign-in also
/// purges; this keeps the tables small when the traffic stops.
fn housekeeping(state: std::sync::Weak<AppState>) {
    let run = move || {
        while let Some(state) = state.upgrade() {
            match housekeep(&state) {
                Ok(deleted) if deleted.is_empty() => {}
                Ok(deleted) => tracing::info!(?deleted, "housekeeping removed expired rows"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
            drop(state);
            std::thread::sleep(std::time::Duration::from_secs(HOUSEKEEPING_SECS));
        }
    };
    if let Err(e) = std::thread::Builder::new().name("housekeeping".into()).spawn(run) {
        tracing::warn!(error = %e, "no housekeeping thread; expired rows go when new ones arrive");
    }
}
