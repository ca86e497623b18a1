//! Signing keys: RSA-2048 generated on first start, rotated on demand. The active key signs;
//! retired keys stay in JWKS until every token they signed has expired.

use crate::crypto::{b64url, sha256};
use crate::store::{self, Pool, StoreError, keys::KeyRow};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use serde_json::{Value, json};
use std::sync::{Arc, RwLock};

/// How often a running server looks for keys rotated by another process (the CLI).
const RELOAD_SECS: i64 = 5;

pub struct SigningKey {
    pub kid: String,
    pub pkey: PKey<Private>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub jwk: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid} cannot be loaded: {why}")]
    Load { kid: String, why: String },
    #[error("OpenSSL failed: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
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
}

impl KeyRing {
    /// Loads the keys, generating the first one when the database has none.
    pub fn open(pool: Pool, secret: Option<String>, max_token_ttl: i64, now: i64) -> Result<Self, KeyError> {
        if store::keys::all(&*pool.get().map_err(StoreError::from)?)?.is_empty() {
            rotate(&pool, secret.as_deref(), now)?;
        }
        let ring = Self { pool, secret, max_token_ttl, loaded: RwLock::new(Loaded { checked_at: 0, keys: vec![] }) };
        ring.reload(now)?;
        Ok(ring)
    }

    fn reload(&self, now: i64) -> Result<(), KeyError> {
        let rows = store::keys::all(&*self.pool.get().map_err(StoreError::from)?)?;
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
        let (kid, jwk) = public_jwk(&pkey)?;
        if kid != row.kid {
            return Err(load_err("its key material does not match its id"));
        }
        Ok(SigningKey { kid, pkey, created_at: row.created_at, retired_at: row.retired_at, jwk })
    }

    fn snapshot(&self, now: i64) -> Vec<Arc<SigningKey>> {
        let stale = self.loaded.read().expect("key ring lock").checked_at + RELOAD_SECS <= now;
        if stale && let Err(e) = self.reload(now) {
            tracing::error!(error = %e, "reloading signing keys failed; keeping the loaded ones");
        }
        self.loaded.read().expect("key ring lock").keys.clone()
    }

    /// The key new tokens are signed with.
    pub fn active(&self, now: i64) -> Arc<SigningKey> {
        let keys = self.snapshot(now);
        keys.iter().find(|k| k.retired_at.is_none()).or(keys.first()).expect("at least one signing key exists").clone()
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
        let keys: Vec<Value> =
            self.snapshot(now).iter().filter(|k| self.published(k, now)).map(|k| k.jwk.clone()).collect();
        json!({ "keys": keys })
    }
}

/// The public half as a JWK, and its RFC 7638 thumbprint, which is the key id.
fn public_jwk(pkey: &PKey<Private>) -> Result<(String, Value), KeyError> {
    let rsa = pkey.rsa()?;
    let n = b64url(&rsa.n().to_vec());
    let e = b64url(&rsa.e().to_vec());
    // RFC 7638 §3.2: the required members, lexicographic order, no whitespace.
    let kid = b64url(&sha256(format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#).as_bytes()));
    let jwk = json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e });
    Ok((kid, jwk))
}

/// Generates a new RSA-2048 key and makes it the active one. Safe while a server runs:
/// the server picks it up within a few seconds and keeps publishing the old one.
#[tracing::instrument(skip(pool, secret))]
pub fn rotate(pool: &Pool, secret: Option<&str>, now: i64) -> Result<String, KeyError> {
    let pkey = PKey::from_rsa(Rsa::generate(2048)?)?;
    let (kid, _) = public_jwk(&pkey)?;
    let private_pem = match secret {
        Some(s) => pkey.private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), s.as_bytes())?,
        None => pkey.private_key_to_pem_pkcs8()?,
    };
    let row = KeyRow {
        kid: kid.clone(),
        alg: "RS256".into(),
        private_pem: String::from_utf8(private_pem).expect("PEM is ASCII"),
        encrypted: secret.is_some(),
        created_at: now,
        retired_at: None,
    };
    store::keys::activate(&mut *pool.get().map_err(StoreError::from)?, &row)?;
    Ok(kid)
}
