//! Signing keys: one active key per algorithm (RS256, ES256, EdDSA), generated on first
//! start and rotated on demand. Retired keys stay in JWKS until every token they signed has
//! expired. RS256 signs access tokens and, by default, ID tokens; an app may choose ES256 or
//! EdDSA for its ID tokens.

use crate::crypto::{b64url, sha256};
use crate::store::{self, Pool, StoreError, keys::KeyRow};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

/// How often a running server looks for keys rotated by another process (the CLI).
const RELOAD_SECS: i64 = 2;

pub const ALGORITHMS: &[&str] = &["RS256", "ES256", "EdDSA"];

pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub pkey: PKey<Private>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub jwk: Value,
    /// Signing and verifying contexts set up for this key, reused token after token (`jwt`).
    pub signers: std::sync::Mutex<Vec<openssl::pkey_ctx::PkeyCtx<Private>>>,
    pub verifiers: std::sync::Mutex<Vec<openssl::pkey_ctx::PkeyCtx<Private>>>,
    /// SHA-256 of the tokens whose signature this key has verified (`jwt::verify`).
    pub verified: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid} cannot be loaded: {why}")]
    Load { kid: String, why: String },
    #[error("OpenSSL failed: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("unsupported signing algorithm {0}")]
    Algorithm(String),
}

struct Loaded {
    checked_at: i64,
    keys: Vec<Arc<SigningKey>>,
}

pub struct KeyRing {
    pool: Pool,
    secret: Option<String>,
    max_token_ttl: i64,
    loaded: RwLock<Loaded>,
    /// Held while the keys are re-read and installed, so reloads take turns and a slower,
    /// older read never replaces a newer one.
    reloading: std::sync::Mutex<()>,
    /// A thread of the server re-reads the keys every second (`refresh`): requests then never
    /// do, so `/jwks` and token signing never wait for the database.
    background: std::sync::atomic::AtomicBool,
}

impl KeyRing {
    /// Loads the keys, generating a first key for any algorithm that has none.
    pub fn open(pool: Pool, secret: Option<String>, max_token_ttl: i64, now: i64) -> Result<Self, KeyError> {
        let existing = store::keys::all(&*pool.get().map_err(StoreError::from)?)?;
        // Keys stored in plaintext before encryption at rest are encrypted now.
        if let Some(s) = secret.as_deref() {
            for row in existing.iter().filter(|r| !r.encrypted) {
                let pkey = PKey::private_key_from_pem(row.private_pem.as_bytes())?;
                let pem = pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), s.as_bytes())?;
                store::keys::encrypt(&*pool.get().map_err(StoreError::from)?, &row.kid, &String::from_utf8(pem).expect("PEM is ASCII"))?;
            }
        }
        for alg in ALGORITHMS {
            if !existing.iter().any(|k| k.alg == *alg) {
                rotate_alg(&pool, secret.as_deref(), alg, now)?;
            }
        }
        let ring = Self {
            pool,
            secret,
            max_token_ttl,
            loaded: RwLock::new(Loaded { checked_at: 0, keys: vec![] }),
            reloading: Default::default(),
            background: Default::default(),
        };
        ring.reload(now)?;
        Ok(ring)
    }

    fn reload(&self, now: i64) -> Result<(), KeyError> {
        self.reload_from(&*self.pool.get().map_err(StoreError::from)?, now)
    }

    /// Re-reads the keys now, waiting for a connection: the server's own thread does this every
    /// second (`lib::reload_keys`), so keys rotated through another instance or the CLI are
    /// used within two seconds even when every connection is busy serving requests.
    pub fn refresh(&self, now: i64) -> Result<(), KeyError> {
        self.background.store(true, std::sync::atomic::Ordering::Relaxed);
        let _turn = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        self.reload(now)
    }

    fn reload_from(&self, conn: &store::db::Connection, now: i64) -> Result<(), KeyError> {
        let rows = store::keys::all(conn)?;
        let previous = self.loaded.read().expect("key ring lock").keys.clone();
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            match previous.iter().find(|k| k.kid == row.kid && k.retired_at == row.retired_at) {
                Some(k) => keys.push(k.clone()),
                None => keys.push(Arc::new(self.parse(&row)?)),
            }
        }
        *self.loaded.write().expect("key ring lock") = Loaded { checked_at: now, keys };
        Ok(())
    }

    fn parse(&self, row: &KeyRow) -> Result<SigningKey, KeyError> {
        let load_err = |why: &str| KeyError::Load { kid: row.kid.clone(), why: why.into() };
        let pkey = if row.encrypted {
            let secret = self.secret.as_deref().ok_or_else(|| load_err("it is encrypted and keys.encryption_secret is not set"))?;
            PKey::private_key_from_pem_passphrase(row.private_pem.as_bytes(), secret.as_bytes())
                .map_err(|_| load_err("keys.encryption_secret does not decrypt it"))?
        } else {
            PKey::private_key_from_pem(row.private_pem.as_bytes())?
        };
        let (kid, jwk) = public_jwk(&pkey, &row.alg)?;
        if kid != row.kid {
            return Err(load_err("its key material does not match its id"));
        }
        Ok(SigningKey {
            kid,
            alg: row.alg.clone(),
            pkey,
            created_at: row.created_at,
            retired_at: row.retired_at,
            jwk,
            signers: Default::default(),
            verifiers: Default::default(),
            verified: Default::default(),
        })
    }

    fn snapshot(&self, now: i64) -> Vec<Arc<SigningKey>> {
        let stale = self.loaded.read().expect("key ring lock").checked_at + RELOAD_SECS <= now;
        // Without the server's reload thread (the CLI), one caller reloads, and only with a
        // connection that is free at once: it may hold one already, and with every connection
        // held by callers waiting for a second one, none would ever come back.
        if stale
            && !self.background.load(std::sync::atomic::Ordering::Relaxed)
            && let Ok(_turn) = self.reloading.try_lock()
            && let Some(conn) = self.pool.try_get()
            && let Err(e) = self.reload_from(&conn, now)
        {
            tracing::error!(error = %e, "reloading signing keys failed; keeping the loaded ones");
        }
        self.loaded.read().expect("key ring lock").keys.clone()
    }

    /// The RS256 key new access tokens (and default ID tokens) are signed with.
    pub fn active(&self, now: i64) -> Arc<SigningKey> {
        self.active_for("RS256", now)
    }

    /// The active key for `alg` (one of `ALGORITHMS`).
    pub fn active_for(&self, alg: &str, now: i64) -> Arc<SigningKey> {
        let keys = self.snapshot(now);
        keys.iter()
            .filter(|k| k.alg == alg)
            .find(|k| k.retired_at.is_none())
            .or_else(|| keys.iter().find(|k| k.alg == alg))
            .expect("a key exists for every algorithm")
            .clone()
    }

    /// A key that may still verify tokens: active, or retired less than a token lifetime ago.
    pub fn verifying(&self, kid: &str, now: i64) -> Option<Arc<SigningKey>> {
        self.snapshot(now).into_iter().find(|k| k.kid == kid && self.published(k, now))
    }

    fn published(&self, k: &SigningKey, now: i64) -> bool {
        k.retired_at.is_none_or(|r| r + self.max_token_ttl > now)
    }

    /// The JWK Set (RFC 7517 §5) published at /jwks.
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<Value> = self.snapshot(now).iter().filter(|k| self.published(k, now)).map(|k| k.jwk.clone()).collect();
        json!({ "keys": keys })
    }

    /// Rotates every algorithm's key; returns the new key ids.
    pub fn rotate_all(&self, now: i64) -> Result<Vec<String>, KeyError> {
        let kids = rotate(&self.pool, self.secret.as_deref(), now)?;
        self.reload(now)?;
        Ok(kids)
    }
}

/// The public half as a JWK, and its RFC 7638 thumbprint, which is the key id.
pub fn public_jwk(pkey: &PKey<Private>, alg: &str) -> Result<(String, Value), KeyError> {
    // RFC 7638 §3.2: the required members, in lexicographic order, no whitespace.
    let (canonical, jwk) = match (alg, pkey.id()) {
        ("RS256", Id::RSA) => {
            let rsa = pkey.rsa()?;
            let (n, e) = (b64url(&rsa.n().to_vec()), b64url(&rsa.e().to_vec()));
            (format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#), json!({ "kty": "RSA", "n": n, "e": e }))
        }
        ("ES256", Id::EC) => {
            let ec = pkey.ec_key()?;
            let mut ctx = BigNumContext::new()?;
            let point = ec.public_key().to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)?;
            let (x, y) = (b64url(&point[1..33]), b64url(&point[33..65]));
            (format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#), json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y }))
        }
        ("EdDSA", Id::ED25519) => {
            let x = b64url(&pkey.raw_public_key()?);
            (format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#), json!({ "kty": "OKP", "crv": "Ed25519", "x": x }))
        }
        _ => return Err(KeyError::Algorithm(alg.to_string())),
    };
    let kid = b64url(&sha256(canonical.as_bytes()));
    let mut jwk = jwk;
    jwk["use"] = json!("sig");
    jwk["alg"] = json!(alg);
    jwk["kid"] = json!(kid);
    Ok((kid, jwk))
}

fn generate(alg: &str) -> Result<PKey<Private>, KeyError> {
    Ok(match alg {
        "RS256" => PKey::from_rsa(Rsa::generate(2048)?)?,
        "ES256" => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
        "EdDSA" => PKey::generate_ed25519()?,
        other => return Err(KeyError::Algorithm(other.to_string())),
    })
}

/// Generates a new key for `alg` and makes it the active one.
pub fn rotate_alg(pool: &Pool, secret: Option<&str>, alg: &str, now: i64) -> Result<String, KeyError> {
    let pkey = generate(alg)?;
    let (kid, _) = public_jwk(&pkey, alg)?;
    let private_pem = match secret {
        Some(s) => pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), s.as_bytes())?,
        None => pkey.private_key_to_pem_pkcs8()?,
    };
    let row = KeyRow {
        kid: kid.clone(),
        alg: alg.into(),
        private_pem: String::from_utf8(private_pem).expect("PEM is ASCII"),
        encrypted: secret.is_some(),
        created_at: now,
        retired_at: None,
    };
    store::keys::activate(&mut *pool.get().map_err(StoreError::from)?, &row)?;
    Ok(kid)
}

/// Rotates the key of every algorithm; returns the new key ids, RS256 first. Safe while a
/// server runs: it picks the new keys up within a few seconds and keeps publishing the old.
#[tracing::instrument(skip(pool, secret))]
pub fn rotate(pool: &Pool, secret: Option<&str>, now: i64) -> Result<Vec<String>, KeyError> {
    ALGORITHMS.iter().map(|alg| rotate_alg(pool, secret, alg, now)).collect()
}
