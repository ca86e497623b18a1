//! JWS compact serialisation (RFC 7515 §7.1) for RS256 tokens. The signature itself is
//! OpenSSL's; this module only does the base64url framing.

use super::keys::{KeyRing, SigningKey};
use crate::crypto::{b64url, b64url_decode};
use openssl::hash::MessageDigest;
use openssl::sign::{Signer, Verifier};
use serde::Serialize;
use serde_json::Value;

/// `typ` of ID tokens and of access tokens (RFC 9068 §2.1).
pub const TYP_ID: &str = "JWT";
pub const TYP_ACCESS: &str = "at+jwt";

pub fn sign(key: &SigningKey, typ: &str, claims: &impl Serialize) -> String {
    let header = serde_json::json!({ "alg": "RS256", "typ": typ, "kid": key.kid });
    let mut token = b64url(header.to_string().as_bytes());
    token.push('.');
    token.push_str(&b64url(&serde_json::to_vec(claims).expect("claims serialise")));
    let mut signer = Signer::new(MessageDigest::sha256(), &key.pkey).expect("an RSA key can sign");
    signer.update(token.as_bytes()).expect("signer accepts input");
    let signature = signer.sign_to_vec().expect("RSA signing succeeds");
    token.push('.');
    token.push_str(&b64url(&signature));
    token
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
    let header: Value =
        b64url_decode(h).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(VerifyError::Malformed)?;
    if header["alg"] != "RS256" {
        return Err(VerifyError::Malformed);
    }
    if !header["typ"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))) {
        return Err(VerifyError::WrongType(typ));
    }
    let kid = header["kid"].as_str().ok_or(VerifyError::UnknownKey)?;
    let key = ring.verifying(kid, now).ok_or(VerifyError::UnknownKey)?;
    let signature = b64url_decode(s).ok_or(VerifyError::Malformed)?;
    let mut verifier = Verifier::new(MessageDigest::sha256(), &key.pkey).map_err(|_| VerifyError::BadSignature)?;
    let signed = &token[..h.len() + 1 + p.len()];
    if !verifier.verify_oneshot(&signature, signed.as_bytes()).unwrap_or(false) {
        return Err(VerifyError::BadSignature);
    }
    b64url_decode(p).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(VerifyError::Malformed)
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    b64url(&crate::crypto::sha256(access_token.as_bytes())[..16])
}
