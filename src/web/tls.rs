//! HTTPS without a proxy (`server.tls_cert`, `server.tls_key`): rustls with the certificate
//! read again on SIGHUP, so a renewed certificate is served without a restart. A reload that
//! fails (a half-written file, a key that does not match, a certificate that has expired) keeps
//! the certificate being served. A certificate that expires within `RENEW_WITHIN_DAYS` is
//! warned about, and its expiry is the `latchkey_tls_certificate_expiry_timestamp_seconds` gauge.

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
    let expires = still_valid(&chain[0], cert, now_unix())?;
    let provider = ring::default_provider();
    let certified = CertifiedKey::from_der(chain, der, &provider).map_err(|e| format!("server.tls_key {} does not fit server.tls_cert: {e}", key.display()))?;
    metrics::gauge!("latchkey_tls_certificate_expiry_timestamp_seconds").set(expires as f64);
    Ok(certified)
}

/// Below this, a certificate being loaded is warned about.
const RENEW_WITHIN_DAYS: i64 = 14;

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The leaf certificate's expiry (Unix seconds), or why it is not served: it has expired.
/// Expiring soon, or not valid yet (a clock or a renewal ahead of time), is logged.
fn still_valid(leaf: &CertificateDer<'_>, path: &Path, now: i64) -> Result<i64, String> {
    let unreadable = |e: openssl::error::ErrorStack| format!("server.tls_cert {}: not a readable X.509 certificate: {e}", path.display());
    let x509 = openssl::x509::X509::from_der(leaf).map_err(unreadable)?;
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(unreadable)?;
    let unix = |t: &openssl::asn1::Asn1TimeRef| epoch.diff(t).map(|d| i64::from(d.days) * 86_400 + i64::from(d.secs)).map_err(unreadable);
    let (not_before, not_after) = (unix(x509.not_before())?, unix(x509.not_after())?);
    if not_after <= now {
        return Err(format!("server.tls_cert {} expired on {}: put the renewed certificate in place", path.display(), x509.not_after()));
    }
    if not_before > now {
        tracing::warn!(cert = %path.display(), not_before = %x509.not_before(), "the TLS certificate is not valid yet: clients will refuse it until then");
    }
    if not_after - now < RENEW_WITHIN_DAYS * 86_400 {
        tracing::warn!(cert = %path.display(), not_after = %x509.not_after(), "the TLS certificate expires within {RENEW_WITHIN_DAYS} days: renew it");
    }
    Ok(not_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;

    /// A self-signed DER certificate valid from `from` to `to` (Unix seconds).
    fn certificate(from: i64, to: i64) -> CertificateDer<'static> {
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(&openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut b = openssl::x509::X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(from).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::from_unix(to).unwrap()).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
        CertificateDer::from(b.build().to_der().unwrap())
    }

    #[test]
    fn an_expired_certificate_is_refused_and_a_valid_ones_expiry_is_read() {
        let now = 1_800_000_000;
        let path = Path::new("/etc/latchkey/cert.pem");
        assert_eq!(still_valid(&certificate(now - 86_400, now + 90 * 86_400), path, now), Ok(now + 90 * 86_400));
        // Soon to expire, or not valid yet: served (and logged).
        assert_eq!(still_valid(&certificate(now - 86_400, now + 3600), path, now), Ok(now + 3600));
        assert_eq!(still_valid(&certificate(now + 3600, now + 86_400), path, now), Ok(now + 86_400));
        let err = still_valid(&certificate(now - 2 * 86_400, now - 1), path, now).unwrap_err();
        assert!(err.starts_with("server.tls_cert /etc/latchkey/cert.pem expired on "), "{err}");
        assert!(still_valid(&CertificateDer::from(vec![1, 2, 3]), path, now).unwrap_err().contains("not a readable X.509 certificate"));
    }
}
