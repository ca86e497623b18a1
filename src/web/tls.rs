//! HTTPS without a proxy (`server.tls_cert`, `server.tls_key`): rustls with the certificate
//! read again on SIGHUP, so a renewed certificate is served without a restart. A reload that
//! fails (a half-written file, a key that does not match) keeps the certificate being served.

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The certificate being served, replaced on reload.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let current = RwLock::new(Arc::new(read(cert, key)?));
        Ok(Arc::new(Self { cert: cert.into(), key: key.into(), current }))
    }

    /// Reads the files again; on failure the old certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = Arc::new(read(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The rustls configuration serving this certificate (TLS 1.2 and 1.3, HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Handles SIGHUP (`systemctl reload`) on a thread of its own: re-reads `cert` when HTTPS is
/// served, else says there is nothing to reload. The handler is in place when this returns, so a
/// SIGHUP never stops the server.
pub fn on_sighup(cert: Option<&Arc<Certificate>>) -> std::io::Result<()> {
    // Without a certificate one handler serves the whole process (and every server in it).
    static PLAIN: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut plain = PLAIN.lock().unwrap_or_else(|e| e.into_inner());
    if cert.is_none() && *plain {
        return Ok(());
    }
    let weak = cert.map(Arc::downgrade);
    let (ready, registered) = std::sync::mpsc::channel();
    std::thread::Builder::new().name("latchkey-sighup".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_io().build();
        let rt = match rt {
            Ok(rt) => rt,
            Err(e) => return drop(ready.send(Err(e))),
        };
        rt.block_on(async move {
            let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(h) => h,
                Err(e) => return drop(ready.send(Err(e))),
            };
            let _ = ready.send(Ok(()));
            while hangup.recv().await.is_some() {
                let Some(weak) = &weak else {
                    tracing::info!("SIGHUP: nothing to reload (no server.tls_cert)");
                    continue;
                };
                let Some(cert) = weak.upgrade() else { return };
                match cert.reload() {
                    Ok(()) => tracing::info!(cert = %cert.cert.display(), "TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; still serving the previous one"),
                }
            }
        })
    })?;
    registered.recv().map_err(|_| std::io::Error::other("the SIGHUP thread stopped"))??;
    *plain |= cert.is_none();
    Ok(())
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn read(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("server.tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("server.tls_cert {} holds no certificate", cert.display()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("server.tls_key {}: {e}", key.display()))?;
    let provider = ring::default_provider();
    let certified = CertifiedKey::from_der(chain, der, &provider).map_err(|e| format!("server.tls_key {} does not fit server.tls_cert: {e}", key.display()))?;
    Ok(certified)
}
