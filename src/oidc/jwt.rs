//! JWS compact serialisation (RFC 7515 §7.1) for RS256, ES256 and EdDSA tokens (RFC 7518,
//! RFC 8037). The signatures are OpenSSL's; this module only does the framing, and converts
//! ECDSA signatures between OpenSSL's DER and JWS's fixed-size r‖s (RFC 7518 §3.4).

use super::keys::{KeyRing, SigningKey};
use crate::crypto::{b64url, b64url_decode};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::md::Md;
use openssl::pkey::Private;
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
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

/// At most this many contexts of each kind are kept per key (one per thread using it at once).
const KEPT_CONTEXTS: usize = 64;

/// Runs `op` with a context of `key` set up once (for signing or verifying a SHA-256 digest)
/// and reused, as `openssl speed` does: a fresh `Signer` or `Verifier` fetches its algorithms
/// from OpenSSL's providers on every token, a fifth of an ES256 signature's cost. A context
/// whose operation failed is dropped, never reused.
fn with_context<T>(
    key: &SigningKey,
    sign: bool,
    op: impl FnOnce(&mut PkeyCtx<Private>) -> Result<T, openssl::error::ErrorStack>,
) -> Result<T, openssl::error::ErrorStack> {
    let kept = if sign { &key.signers } else { &key.verifiers };
    let reused = kept.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut ctx = match reused {
        Some(ctx) => ctx,
        None => {
            let mut ctx = PkeyCtx::new(&key.pkey)?;
            if sign {
                ctx.sign_init()?
            } else {
                ctx.verify_init()?
            }
            if key.alg == "RS256" {
                ctx.set_rsa_padding(Padding::PKCS1)?;
            }
            ctx.set_signature_md(Md::sha256())?;
            ctx
        }
    };
    let out = op(&mut ctx)?;
    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() < KEPT_CONTEXTS {
        kept.push(ctx);
    }
    Ok(out)
}

/// The JWS signature of `input`. EdDSA signs the message itself (no digest).
fn raw_signature(key: &SigningKey, input: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
    if key.alg == "EdDSA" {
        return Signer::new_without_digest(&key.pkey)?.sign_oneshot_to_vec(input);
    }
    let digest = crate::crypto::sha256(input);
    let signature = with_context(key, true, |ctx| {
        let mut signature = Vec::new();
        ctx.sign_to_vec(&digest, &mut signature)?;
        Ok(signature)
    })?;
    if key.alg == "ES256" {
        let der = EcdsaSig::from_der(&signature)?;
        let mut out = der.r().to_vec_padded(32)?;
        out.extend(der.s().to_vec_padded(32)?);
        return Ok(out);
    }
    Ok(signature)
}

fn check_signature(key: &SigningKey, input: &[u8], signature: &[u8]) -> Result<bool, openssl::error::ErrorStack> {
    let der;
    let signature = match key.alg.as_str() {
        "EdDSA" => return Verifier::new_without_digest(&key.pkey)?.verify_oneshot(signature, input),
        "ES256" => {
            if signature.len() != 64 {
                return Ok(false);
            }
            der = EcdsaSig::from_private_components(BigNum::from_slice(&signature[..32])?, BigNum::from_slice(&signature[32..])?)?.to_der()?;
            &der
        }
        _ => signature,
    };
    let digest = crate::crypto::sha256(input);
    // OpenSSL reports a wrong RSA signature as an error: it is a signature that does not verify,
    // and the context stays usable (verifying keeps no state between calls).
    with_context(key, false, |ctx| Ok(ctx.verify(&digest, signature).unwrap_or(false)))
}

/// At most this many verified tokens are remembered per key; then it starts again.
const REMEMBERED: usize = 10_000;

/// Whether `signature` of `token` (whose signed part is `signed`) holds for `key`. A token
/// that verified once is remembered by the SHA-256 of all of it, signature included (another
/// payload or signature is another token), so a resource server that introspects one token on
/// every call, or an app that calls userinfo with it, costs one signature check, not one per
/// call. Only tokens that verified are remembered: made-up ones cannot fill the memory.
fn signature_holds(key: &SigningKey, token: &str, signed: &str, signature: &[u8]) -> bool {
    let id = crate::crypto::sha256(token.as_bytes());
    if key.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&id) {
        return true;
    }
    if !check_signature(key, signed.as_bytes(), signature).unwrap_or(false) {
        return false;
    }
    let mut verified = key.verified.lock().unwrap_or_else(|e| e.into_inner());
    if verified.len() >= REMEMBERED {
        verified.clear();
    }
    verified.insert(id);
    true
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
    if !signature_holds(&key, token, signed, &signature) {
        return Err(VerifyError::BadSignature);
    }
    b64url_decode(p).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(VerifyError::Malformed)
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    b64url(&crate::crypto::sha256(access_token.as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;

    fn key_for(alg: &str) -> SigningKey {
        let pkey = match alg {
            "RS256" => PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(),
            "ES256" => PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap()).unwrap(),
            _ => PKey::generate_ed25519().unwrap(),
        };
        let (kid, jwk) = super::super::keys::public_jwk(&pkey, alg).unwrap();
        SigningKey {
            kid,
            alg: alg.into(),
            pkey,
            created_at: 0,
            retired_at: None,
            jwk,
            signers: Default::default(),
            verifiers: Default::default(),
            verified: Default::default(),
        }
    }

    #[test]
    fn signatures_made_with_a_reused_context_verify_and_differ_per_message() {
        for alg in ["RS256", "ES256", "EdDSA"] {
            let key = key_for(alg);
            let mut seen = Vec::new();
            for i in 0..3 {
                let token = sign(&key, TYP_ACCESS, &serde_json::json!({ "n": i }));
                let (input, signature) = token.rsplit_once('.').unwrap();
                let signature = b64url_decode(signature).unwrap();
                assert!(check_signature(&key, input.as_bytes(), &signature).unwrap(), "{alg} token {i} verifies");
                assert!(!check_signature(&key, format!("{input}x").as_bytes(), &signature).unwrap(), "{alg}: another message does not");
                seen.push(signature);
            }
            assert_ne!(seen[0], seen[1]);
            if alg != "EdDSA" {
                assert_eq!(key.signers.lock().unwrap().len(), 1, "{alg}: one signing context, set up once and reused");
                assert_eq!(key.verifiers.lock().unwrap().len(), 1, "{alg}: one verifying context, reused after a failed check too");
            }
            // A signature of the wrong length or one from another key never verifies.
            let other = key_for(alg);
            let token = sign(&other, TYP_ACCESS, &serde_json::json!({}));
            let (input, signature) = token.rsplit_once('.').unwrap();
            let signature = b64url_decode(signature).unwrap();
            assert!(!check_signature(&key, input.as_bytes(), &signature).unwrap_or(false), "{alg}: another key's signature");
            assert!(!check_signature(&key, input.as_bytes(), &signature[..signature.len() - 1]).unwrap_or(false), "{alg}: a truncated signature");
        }
    }

    #[test]
    fn a_token_verified_once_is_remembered_and_nothing_else_is() {
        for alg in ["RS256", "ES256", "EdDSA"] {
            let key = key_for(alg);
            let holds = |token: &str| {
                let (signed, signature) = token.rsplit_once('.').unwrap();
                signature_holds(&key, token, signed, &b64url_decode(signature).unwrap())
            };
            let token = sign(&key, TYP_ACCESS, &serde_json::json!({ "sub": "alice" }));
            assert!(holds(&token) && holds(&token), "{alg}: verified, then remembered");
            assert_eq!(key.verified.lock().unwrap().len(), 1);
            // The same payload under another signature, and another payload under the same
            // signature, are other tokens: checked, refused, and not remembered.
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let mut flipped = b64url_decode(signature).unwrap();
            flipped[10] ^= 1;
            assert!(!holds(&format!("{signed}.{}", b64url(&flipped))), "{alg}: a changed signature");
            let (header, _) = signed.split_once('.').unwrap();
            let bob = b64url(br#"{"sub":"bob"}"#);
            assert!(!holds(&format!("{header}.{bob}.{signature}")), "{alg}: a changed payload");
            // A token one key remembers is checked afresh against another key.
            let other = key_for(alg);
            let (signed, signature) = token.rsplit_once('.').unwrap();
            assert!(!signature_holds(&other, &token, signed, &b64url_decode(signature).unwrap()), "{alg}: another key");
            assert_eq!(key.verified.lock().unwrap().len(), 1, "{alg}: only what verified is remembered");
        }
    }
}
