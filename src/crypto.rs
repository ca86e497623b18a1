//! Small wrappers over OpenSSL for the few primitives latchkey needs outside JWT signing:
//! random tokens, SHA-256 and constant-time comparison.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Base64url without padding (RFC 7515 §2), the encoding of every token latchkey hands out.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    openssl::rand::rand_bytes(&mut buf).expect("the OpenSSL CSPRNG failed");
    buf
}

/// A one-time code of `n` decimal digits for a person to type (uniform: bytes ≥ 250 are
/// rejected rather than folded, so no digit is likelier than another).
pub fn random_digits(n: usize) -> String {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<16>() {
            if b < 250 && out.len() < n {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out
}

/// A 256-bit random token, base64url: codes, refresh tokens, session cookies, client secrets.
pub fn random_token() -> String {
    b64url(&random_bytes::<32>())
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(data)
}

/// How high-entropy secrets (client secrets, refresh tokens, codes, cookies) are stored:
/// a fast hash is enough when the secret itself carries 256 random bits.
pub fn secret_hash(secret: &str) -> String {
    b64url(&sha256(secret.as_bytes()))
}

/// Compares two secrets (or their hashes) without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

/// A random (version 4) UUID, the stable `sub` of a user and the id of sessions and grants.
pub fn new_uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let a = new_uuid();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, new_uuid());
    }

    #[test]
    fn one_time_codes_are_digits_of_the_asked_length() {
        let c = random_digits(6);
        assert_eq!(c.len(), 6);
        assert!(c.chars().all(|x| x.is_ascii_digit()));
    }

    #[test]
    fn constant_time_eq_needs_equal_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
