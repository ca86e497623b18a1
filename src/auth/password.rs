//! Passwords: argon2id with OWASP parameters.
//!
//! Hashing is deliberately expensive (≈19 MiB of memory per hash), so the server runs it on a
//! small pool of threads, one per core, each reusing its own block memory: throughput stays at
//! the machine's argon2 limit and memory stays bounded however many people sign in at once.

use crate::config::PasswordConfig;
use crate::crypto::{constant_time_eq, random_bytes};
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;
const OUTPUT_LEN: usize = 32;

/// Reusable argon2 block memory.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    fn blocks(&mut self, n: usize) -> &mut [Block] {
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A real hash of a random password: unknown usernames are verified against it so a
    /// wrong username costs the same time as a wrong password.
    decoy: Arc<str>,
    pool: Arc<OnceLock<Mutex<Sender<Job>>>>,
    /// Jobs submitted and not yet done (the `latchkey_argon2_queue_depth` gauge, readable).
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug, thiserror::Error)]
#[error("the password hashing pool has stopped")]
pub struct PoolGone;

impl PasswordHasher {
    pub fn new(c: &PasswordConfig) -> Result<Self, String> {
        let params = Params::new(c.memory_kib, c.iterations, c.parallelism, Some(OUTPUT_LEN)).map_err(|e| e.to_string())?;
        let mut hasher = Self { params, decoy: Arc::from(""), pool: Arc::default(), queued: Arc::default() };
        hasher.decoy = Arc::from(hasher.hash(&crate::crypto::random_token()));
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random 16-byte salt.
    pub fn hash_with(&self, password: &str, mem: &mut Memory) -> String {
        let salt = random_bytes::<16>();
        let mut out = [0u8; OUTPUT_LEN];
        Self::argon2(self.params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, mem.blocks(self.params.block_count()))
            .expect("argon2 with validated parameters");
        PasswordHash {
            algorithm: ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).expect("validated parameters encode"),
            salt: Some(Salt::new(&salt).expect("16 bytes is a valid salt")),
            hash: Some(Output::new(&out).expect("32 bytes is a valid output")),
        }
        .to_string()
    }

    /// Verifies against `stored` (whatever argon2 parameters it was made with), or against
    /// the decoy when there is no such user. Never true without a stored hash.
    pub fn verify_with(&self, password: &str, stored: Option<&str>, mem: &mut Memory) -> bool {
        let phc = stored.unwrap_or(&self.decoy);
        let mut check = || -> Option<bool> {
            let parsed = PasswordHash::new(phc).ok()?;
            let params = Params::try_from(&parsed).ok()?;
            let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
            let version = parsed.version.map_or(Some(Version::V0x13), |v| Version::try_from(v).ok())?;
            let expected = parsed.hash?;
            let mut out = vec![0u8; expected.len()];
            let blocks = params.block_count();
            Argon2::new(algorithm, version, params)
                .hash_password_into_with_memory(password.as_bytes(), parsed.salt?.as_ref(), &mut out, mem.blocks(blocks))
                .ok()?;
            Some(constant_time_eq(&out, expected.as_bytes()))
        };
        let ok = check().unwrap_or_else(|| {
            tracing::error!("a stored password hash is not a valid argon2 PHC string");
            false
        });
        ok && stored.is_some()
    }

    pub fn hash(&self, password: &str) -> String {
        self.hash_with(password, &mut Memory::default())
    }

    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        self.verify_with(password, stored, &mut Memory::default())
    }

    /// Jobs waiting for or running on the hashing threads.
    pub fn queued(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs `work` on the hashing pool and waits for it, from a blocking thread (`web::db`,
    /// `web::offload`); never from an async worker.
    pub fn run<T: Send + 'static>(&self, work: impl FnOnce(&PasswordHasher, &mut Memory) -> T + Send + 'static) -> Result<T, PoolGone> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        /// Counts a job in the queue from submission until it has run or is dropped.
        struct Queued(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Queued {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                metrics::gauge!("latchkey_argon2_queue_depth").decrement(1.0);
            }
        }
        metrics::gauge!("latchkey_argon2_queue_depth").increment(1.0);
        self.queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let queued = Queued(self.queued.clone());
        let job: Job = Box::new(move |mem| {
            let _queued = queued;
            let _ = tx.send(work(&me, mem));
        });
        self.pool.get_or_init(start_pool).lock().map_err(|_| PoolGone)?.send(job).map_err(|_| PoolGone)?;
        rx.blocking_recv().map_err(|_| PoolGone)
    }
}

/// One thread per core, each with its own block memory, fed from one queue.
fn start_pool() -> Mutex<Sender<Job>> {
    let (tx, rx) = channel::<Job>();
    let rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(rx));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 0..threads {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                let mut mem = Memory::default();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut mem),
                        Err(_) => return,
                    }
                }
            })
            .expect("spawning a password hashing thread");
    }
    Mutex::new(tx)
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
    use argon2::password_hash::PasswordVerifier;

    fn fast() -> PasswordHasher {
        PasswordHasher::new(&PasswordConfig { memory_kib: 64, iterations: 1, parallelism: 1, banned_terms: vec![], breached_list: String::new() }).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = fast();
        let stored = h.hash("correct horse");
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{stored}");
        assert!(h.verify("correct horse", Some(&stored)));
        assert!(!h.verify("wrong horse", Some(&stored)));
    }

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        let h = fast();
        // Ours verify with the argon2 crate's own verifier…
        let ours = h.hash("interop");
        assert!(Argon2::default().verify_password(b"interop", ours.as_str()).is_ok());
        // …and a hash made elsewhere, with other parameters, verifies with ours.
        use argon2::password_hash::PasswordHasher as _;
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(32, 2, 1, None).unwrap());
        let theirs = other.hash_password(b"password").unwrap().to_string();
        assert!(theirs.starts_with("$argon2id$v=19$m=32,t=2,p=1$"), "{theirs}");
        assert!(h.verify("password", Some(&theirs)));
        assert!(!h.verify("passwore", Some(&theirs)));
    }

    #[test]
    fn an_unknown_user_or_a_corrupt_hash_never_verifies() {
        let h = fast();
        assert!(!h.verify("anything", None));
        assert!(!h.verify("anything", Some("$argon2id$garbage")));
    }

    #[test]
    fn the_pool_runs_work_and_returns_its_result() {
        let h = fast();
        let stored = h.hash("pooled");
        let ok = h.run(move |h, mem| h.verify_with("pooled", Some(&stored), mem)).unwrap();
        assert!(ok);
    }

    #[test]
    fn length_rules_follow_nist() {
        assert_eq!(check_rules("short"), Err(PasswordRuleError::TooShort));
        assert_eq!(check_rules("long enough"), Ok(()));
        assert_eq!(check_rules(&"x".repeat(257)), Err(PasswordRuleError::TooLong));
    }
}
