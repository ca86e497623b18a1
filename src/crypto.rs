//! Small wrappers for the few primitives latchkey needs outside JWT signing: random tokens
//! (the operating system's CSPRNG), SHA-256 and constant-time comparison (OpenSSL).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Base64url without padding (RFC 7515 §2), the encoding of every token latchkey hands out.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Bytes from the kernel's CSPRNG (getrandom(2)): one system call, where OpenSSL's DRBG costs
/// several times that per call (measured: 0.5 µs against 1.6 µs warm, more on a busy thread).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's CSPRNG failed");
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

/// SHA-256 through OpenSSL's direct interface: its one-shot `SHA256()` fetches the algorithm
/// from a provider on every call in OpenSSL 3, nine times the cost of the hash itself.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(data);
    hasher.finish()
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

/// Encrypts secrets kept in the database (TOTP secrets; signing keys use its passphrase for
/// PKCS#8): with `keys.encryption_secret` when set, else with a key generated on first start
/// into `<data_dir>/master.key` (mode 0600). Someone who copies the database alone (a backup,
/// another local user reading the file) gets no usable secret; someone who also has the key
/// file or the configuration does.
pub struct Sealer {
    passphrase: String,
    key: [u8; 32],
}

const SEALED: &str = "enc:v1:";

impl Sealer {
    pub fn new(passphrase: &str) -> Self {
        let key = sha256(format!("latchkey sealed secrets\0{passphrase}").as_bytes());
        Self { passphrase: passphrase.to_string(), key }
    }

    /// The configured secret, or the installation's master key file (made if missing).
    pub fn load(configured: Option<&str>, data_dir: &std::path::Path) -> std::io::Result<Self> {
        if let Some(s) = configured {
            return Ok(Self::new(s));
        }
        let path = data_dir.join("master.key");
        let passphrase = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                #[cfg(unix)]
                use std::os::unix::fs::OpenOptionsExt;
                let secret = random_token();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                options.mode(0o600);
                let mut f = options.open(&path)?;
                f.write_all(secret.as_bytes())?;
                f.sync_all()?;
                secret
            }
            Err(e) => return Err(e),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Self::new(&passphrase))
    }

    /// What PKCS#8 private keys are encrypted with.
    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED)
    }

    /// AES-256-GCM with a random 96-bit nonce: `enc:v1:` + base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plain: &str) -> String {
        let nonce = random_bytes::<12>();
        let mut tag = [0u8; 16];
        let ct = openssl::symm::encrypt_aead(openssl::symm::Cipher::aes_256_gcm(), &self.key, Some(&nonce), SEALED.as_bytes(), plain.as_bytes(), &mut tag)
            .expect("AES-GCM encryption");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out.extend_from_slice(&tag);
        format!("{SEALED}{}", b64url(&out))
    }

    /// The plaintext of a sealed value; a value stored before sealing existed passes through.
    /// None: sealed with another key, or tampered with.
    pub fn open(&self, stored: &str) -> Option<String> {
        let Some(body) = stored.strip_prefix(SEALED) else { return Some(stored.to_string()) };
        let raw = b64url_decode(body)?;
        if raw.len() < 28 {
            return None;
        }
        let (nonce, rest) = raw.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        let plain = openssl::symm::decrypt_aead(openssl::symm::Cipher::aes_256_gcm(), &self.key, Some(nonce), SEALED.as_bytes(), ct, tag).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod sealer_tests {
    use super::Sealer;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_plaintext_passes_through() {
        let s = Sealer::new("one secret");
        let sealed = s.seal("JBSWY3DPEHPK3PXP");
        assert!(Sealer::is_sealed(&sealed) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(sealed, s.seal("JBSWY3DPEHPK3PXP"), "a fresh nonce each time");
        assert_eq!(s.open(&sealed).as_deref(), Some("JBSWY3DPEHPK3PXP"));
        assert_eq!(Sealer::new("another").open(&sealed), None);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(s.open(&tampered), None);
        assert_eq!(s.open("PLAINTEXT").as_deref(), Some("PLAINTEXT"));
    }

    #[test]
    fn the_master_key_is_made_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Sealer::load(None, dir.path()).unwrap();
        let b = Sealer::load(None, dir.path()).unwrap();
        assert_eq!(a.passphrase(), b.passphrase());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Sealer::load(Some("configured"), dir.path()).unwrap().passphrase(), "configured");
    }
}
