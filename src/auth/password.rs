//! Passwords: argon2id with OWASP parameters, hashed and verified off the async workers.

use crate::config::PasswordConfig;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A real hash of a random password: unknown usernames are verified against it so a
    /// wrong username costs the same time as a wrong password.
    decoy: String,
}

impl PasswordHasher {
    pub fn new(c: &PasswordConfig) -> Result<Self, String> {
        let params = Params::new(c.memory_kib, c.iterations, c.parallelism, None).map_err(|e| e.to_string())?;
        let mut hasher = Self { params, decoy: String::new() };
        hasher.decoy = hasher.hash(&crate::crypto::random_token());
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random salt.
    pub fn hash(&self, password: &str) -> String {
        self.argon2().hash_password(password.as_bytes()).expect("argon2 hashing with valid parameters").to_string()
    }

    /// Verifies against `stored`, or against the decoy when there is no such user.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let ok = self.argon2().verify_password(password.as_bytes(), stored.unwrap_or(&self.decoy)).is_ok();
        ok && stored.is_some()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PasswordRuleError {
    #[error("Use at least {MIN_LEN} characters.")]
    TooShort,
    #[error("Use at most {MAX_LEN} characters.")]
    TooLong,
}

/// NIST SP 800-63B §3.1.1.2: length is what matters; no composition rules.
pub fn check_rules(password: &str) -> Result<(), PasswordRuleError> {
    let n = password.chars().count();
    if n < MIN_LEN {
        Err(PasswordRuleError::TooShort)
    } else if n > MAX_LEN {
        Err(PasswordRuleError::TooLong)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(&PasswordConfig { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = fast();
        let stored = h.hash("correct horse");
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify("correct horse", Some(&stored)));
        assert!(!h.verify("wrong horse", Some(&stored)));
    }

    #[test]
    fn an_unknown_user_never_verifies() {
        let h = fast();
        assert!(!h.verify("anything", None));
    }

    #[test]
    fn length_rules_follow_nist() {
        assert_eq!(check_rules("short"), Err(PasswordRuleError::TooShort));
        assert_eq!(check_rules("long enough"), Ok(()));
        assert_eq!(check_rules(&"x".repeat(257)), Err(PasswordRuleError::TooLong));
    }
}
