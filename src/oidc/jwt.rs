//! JWS compact serialisation (RFC 7515 §7.1) for RS256, ES256 and EdDSA tokens (RFC 7518,
//! RFC 8037). The signatures are OpenSSL's; this module only does the framing, and converts
//! ECDSA signatures between OpenSSL's DER and JWS's fixed-size r‖s (RFC 7518 §3.4).

use super::keys::{KeyRing, SigningKey};
use crate::crypto::{b64url, b64url_decode};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::sign::{Signer, Verifier};
use serde::Serialize;
use serde_json::Value;

/// `typ` of ID tokens and of access tokens (RFC 9068 §2.1).
pub const TYP_ID: &str = "JWT";
pub const TYP_ACCESS: &str = "at+jwt";

pub fn sign(key: &SigningKey, typ: &str, claims: &impl Serialize) -> String {
    let header = serde_json::json!({ "alg": key.alg, "typ": typ, "kid": key.kid });
    let mut token = b64url(header.to_string().as_bytes());
    token.push('.');
    token.push_str(&b64url(&serde_json::to_vec(claims).expect("claims serialise")));
    let signature = raw_signature(key, token.as_bytes()).expect("signing with a loaded key succeeds");
    token.push('.');
    token.push_str(&b64url(&signature));
    token
}

fn raw_signature(key: &SigningKey, input: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    match key.alg.as_str() {
        "EdDSA" => Signer::new_without_digest(&key.pkey)?.sign_oneshot_to_vec(input),
        "ES256" => {
            let mut signer = Signer::new(MessageDigest::sha256(), &key.pkey)?;
            signer.update(input)?;
            let der = EcdsaSig::from_der(&signer.sign_to_vec()?)?;
            let mut out = der.r().to_vec_padded(32)?;
            out.extend(der.s().to_vec_padded(32)?);
            Ok(out)
        }
        _ => {
            let mut signer = Signer::new(MessageDigest::sha256(), &key.pkey)?;
            signer.update(input)?;
            signer.sign_to_vec()
        }
    }
}

fn check_signature(key: &SigningKey, input: &[u8], signature: &[u8]) -> Result<bool, openssl::error::ErrorStack> {
    match key.alg.as_str() {
        "EdDSA" => Verifier::new_without_digest(&key.pkey)?.verify_oneshot(signature, input),
        "ES256" => {
            if signature.len() != 64 {
                return Ok(false);
            }
            let sig = EcdsaSig::from_private_components(BigNum::from_slice(&signature[..32])?, BigNum::from_slice(&signature[32..])?)?;
            let mut v = Verifier::new(MessageDigest::sha256(), &key.pkey)?;
            v.update(input)?;
            v.verify(&sig.to_der()?)
        }
        _ => Verifier::new(MessageDigest::sha256(), &key.pkey)?.verify_oneshot(signature, input),
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is not of type {0}")]
    WrongType(&'static str),
    #[error("the token was not signed by a current latchkey key")]
    UnknownKey,
    #[error("the token signature is invalid")]
    BadSignature,
}

/// Checks a token's form, type and signature and returns its claims. Expiry, issuer and
/// audience are the caller's to check, because they differ per use.
pub fn verify(ring: &KeyRing, token: &str, typ: &'static str, now: i64) -> Result<Value, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(VerifyError::Malformed);
    };
    let header: Value = b64url_decode(h).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(VerifyError::Malformed)?;
    if !header["typ"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))) {
        return Err(VerifyError::WrongType(typ));
    }
    let kid = header["kid"].as_str().ok_or(VerifyError::UnknownKey)?;
    let key = ring.verifying(kid, now).ok_or(VerifyError::UnknownKey)?;
    // The key decides the algorithm; a header naming another (e.g. "none") is refused.
    if header["alg"] != key.alg.as_str() {
        return Err(VerifyError::Malformed);
    }
    let signature = b64url_decode(s).ok_or(VerifyError::Malformed)?;
    let signed = &token[..h.len() + 1 + p.len()];
    if !check_signature(&key, signed.as_bytes(), &signature).unwrap_or(false) {
        return Err(VerifyError::BadSignature);
    }
    b64url_decode(p).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(VerifyError::Malformed)
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    b64url(&crate::crypto::sha256(access_token.as_bytes())[..16])
}
