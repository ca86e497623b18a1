//! Identity protection: what a password may not be (NIST SP 800-63B), smart lockout, and the
//! sign-in risk detectors (unfamiliar properties, password spray, brute force, risky IP,
//! breached password). Detectors feed conditional access through the sign-in context.

use crate::config::{PasswordConfig, ProtectionConfig};
use crate::crypto::sha256;
use crate::policy::model::Risk;
use crate::store::db::Connection;
use crate::store::{self, StoreError};
use std::collections::HashSet;

const COMMON: &str = include_str!("common_passwords.txt");

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Refused {
    #[error(transparent)]
    Rules(#[from] super::password::PasswordRuleError),
    #[error("This password is too common. Choose something less guessable, such as a few unrelated words.")]
    Common,
    #[error("This password contains a word that is banned in this organisation ({0:?}).")]
    Term(String),
    #[error("This password appears in a list of breached passwords. Choose a different one.")]
    Breached,
}

/// A short keyed hash: enough to tell values apart within the window, never the value itself.
type Mac = [u8; 16];

/// How much of a failed password's keyed hash is stored: enough to count the accounts one
/// password failed for (a chance collision among a window's failures costs nothing), far too
/// little to test guesses against should the database and the master secret both leak.
const PASSWORD_TAG: usize = 4;

pub struct Protection {
    common: HashSet<String>,
    terms: Vec<String>,
    breached: HashSet<[u8; 20]>,
    /// Keys the hashes of failed attempts; derived from the installation's master secret, so
    /// every instance hashes alike and the spray detector counts across them.
    key: [u8; 32],
    pub config: ProtectionConfig,
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha1(), data).expect("SHA-1 is available");
    digest.as_ref().try_into().expect("SHA-1 is 20 bytes")
}

fn hex20(s: &str) -> Option<[u8; 20]> {
    let s = s.trim();
    if s.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

impl Protection {
    /// `secret`: the installation's master secret (the same on every instance).
    pub fn new(passwords: &PasswordConfig, config: ProtectionConfig, secret: &str) -> Result<Self, String> {
        let common = COMMON.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_lowercase).collect();
        let breached = if passwords.breached_list.is_empty() {
            HashSet::new()
        } else {
            let text = std::fs::read_to_string(&passwords.breached_list)
                .map_err(|e| format!("cannot read password.breached_list {}: {e}", passwords.breached_list))?;
            text.lines().filter_map(|l| hex20(l.split(':').next().unwrap_or(""))).collect()
        };
        Ok(Self {
            common,
            terms: passwords.banned_terms.iter().map(|t| t.to_lowercase()).filter(|t| !t.is_empty()).collect(),
            breached,
            key: sha256(format!("latchkey password-failure key\0{secret}").as_bytes()),
            config,
        })
    }

    pub fn is_breached(&self, password: &str) -> bool {
        self.breached.contains(&sha1(password.as_bytes()))
    }

    /// Whether `password` may be chosen: length, then the common list, the organisation's
    /// terms and the breached list. The error says why, for the form.
    pub fn check_new(&self, password: &str) -> Result<(), Refused> {
        super::password::check_rules(password)?;
        let lower = password.to_lowercase();
        if self.common.contains(&lower) {
            return Err(Refused::Common);
        }
        if let Some(t) = self.terms.iter().find(|t| lower.contains(t.as_str())) {
            return Err(Refused::Term(t.clone()));
        }
        if self.is_breached(password) {
            return Err(Refused::Breached);
        }
        Ok(())
    }

    /// `what` keeps the three kinds of value apart: a username never matches a password.
    fn mac(&self, what: u8, value: &str) -> Mac {
        let mut data = self.key.to_vec();
        data.push(what);
        data.extend_from_slice(value.as_bytes());
        sha256(&data)[..16].try_into().expect("16 of 32 bytes")
    }

    /// Remembers a failed password for the spray detector, in the database (so every instance
    /// counts it), as keyed hashes; housekeeping drops it after the detection window.
    pub fn record_failure(&self, conn: &Connection, username: &str, ip: Option<&str>, password: &str, now: i64) -> Result<(), StoreError> {
        // An IPv6 client is its /64, as for every per-client count: the addresses in it are free.
        let (account, ip, password) = (self.mac(b'u', &username.to_lowercase()), self.mac(b'i', &client_key(ip.unwrap_or(""))), self.mac(b'p', password));
        store::protection::record_password_failure(conn, now, &account, &ip, &password[..PASSWORD_TAG])
    }

    /// Password spray: many different accounts failing recently from this IP, or with this
    /// very password.
    fn spray(&self, conn: &Connection, ip: Option<&str>, password: &str, now: i64) -> Result<Option<String>, StoreError> {
        let (ip, password) = (ip.map(|ip| self.mac(b'i', &client_key(ip))), self.mac(b'p', password));
        let (by_ip, by_password) =
            store::protection::spray_counts(conn, now - self.config.window_secs, ip.as_ref().map(|m| &m[..]), &password[..PASSWORD_TAG])?;
        let limit = self.config.spray_accounts;
        if by_ip >= limit {
            return Ok(Some(format!("password spray: {limit} or more accounts failed from this IP")));
        }
        if by_password >= limit {
            return Ok(Some(format!("password spray: this password failed for {limit} or more accounts")));
        }
        Ok(None)
    }
}

/// The network a sign-in comes from, for "familiar": /24 for IPv4, /48 for IPv6.
pub fn network_of(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => ip.to_string(),
    }
}

/// The wider network around an address or a `network_of` network, roughly one provider's:
/// /16 for IPv4, /32 for IPv6. A sign-in from outside all of a user's is unfamiliar.
pub fn provider_of(ip_or_network: &str) -> String {
    let addr = ip_or_network.split('/').next().unwrap_or_default();
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.0.0/16", o[0], o[1])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}::/32", s[0], s[1])
        }
        Err(_) => ip_or_network.to_string(),
    }
}

/// The client a per-client limit counts: the IPv4 address, or the IPv6 /64 (one subscriber's
/// allocation: the addresses inside it cost an attacker nothing).
pub fn client_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.chars().take(64).collect(),
    }
}

/// What the detectors found about one password attempt.
#[derive(Debug, Clone, Default)]
pub struct Assessment {
    pub risk: Option<Risk>,
    pub reasons: Vec<String>,
    /// Whether the IP network is one this user has signed in from successfully before.
    pub familiar: bool,
}

impl Assessment {
    fn raise(&mut self, risk: Risk, reason: String) {
        // The detector's name is what the reason starts with ("password spray: …").
        let kind = reason.split(':').next().unwrap_or_default().to_string();
        metrics::counter!("latchkey_risk_detections_total", "kind" => kind).increment(1);
        self.risk = self.risk.max(Some(risk));
        self.reasons.push(reason);
    }
}

/// Runs the detectors for a password attempt by `user_id` (known user) from `ip` on `platform`.
#[allow(clippy::too_many_arguments)]
pub fn assess(
    p: &Protection,
    conn: &Connection,
    user_id: Option<&str>,
    ip: Option<&str>,
    platform: &str,
    password: &str,
    verified: bool,
    now: i64,
) -> Result<Assessment, StoreError> {
    let mut a = Assessment::default();
    let network = ip.map(network_of);
    if let Some(user) = user_id {
        let (known_networks, known_platforms) = store::protection::history(conn, user)?;
        a.familiar = network.as_ref().is_some_and(|n| known_networks.contains(n));
        // The network is the signal: the device platform comes from the User-Agent, which is
        // the attacker's to choose, so claiming the usual one must not make a far network familiar.
        let near = ip.map(provider_of).is_some_and(|p| known_networks.iter().any(|n| provider_of(n) == p));
        if !known_networks.is_empty() && !a.familiar {
            if !near {
                a.raise(Risk::Medium, "unfamiliar sign-in properties: a network far from any this user has signed in from".into());
            } else if !known_platforms.iter().any(|k| k == platform) {
                a.raise(Risk::Low, "unfamiliar sign-in properties: a new network and device platform for this user".into());
            }
        }
        // Wrong passwords elsewhere do not make a sign-in from a network the person has used
        // risky (else anyone, anywhere, could keep them out at home with a few guesses, as smart
        // lockout's separate counts prevent); from any other network, all of them count.
        let failed_from = store::protection::recent_failures(conn, user, now - p.config.window_secs)?;
        let failures = failed_from.iter().filter(|ip| !a.familiar || ip.as_deref().map(network_of) == network).count() as i64;
        if failures >= p.config.brute_force_failures {
            a.raise(Risk::Medium, format!("brute force: {failures} failed passwords for this account recently"));
        }
        if verified && p.is_breached(password) {
            a.raise(Risk::High, "leaked credentials: the password appears in a breached-password list".into());
        }
    }
    if let Some(reason) = p.spray(conn, ip, password, now)? {
        a.raise(Risk::High, reason);
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection_with(breached: &str, secret: &str) -> Protection {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("breached.txt");
        std::fs::write(&path, breached).unwrap();
        let pw = PasswordConfig { memory_kib: 64, iterations: 1, parallelism: 1, banned_terms: vec!["Acme".into()], breached_list: path.display().to_string() };
        let cfg = ProtectionConfig { lockout_threshold: 3, lockout_secs: 60, window_secs: 600, spray_accounts: 3, brute_force_failures: 3 };
        Protection::new(&pw, cfg, secret).unwrap()
    }

    fn protection(breached: &str) -> Protection {
        protection_with(breached, "master secret")
    }

    #[test]
    fn new_passwords_are_refused_with_the_reason() {
        // SHA-1("correct horse battery staple") in the Pwned Passwords format.
        let hash: String = sha1(b"correct horse battery staple").iter().map(|b| format!("{b:02X}")).collect();
        let p = protection(&format!("{hash}:42\n"));
        assert_eq!(p.check_new("short"), Err(Refused::Rules(crate::auth::password::PasswordRuleError::TooShort)));
        assert_eq!(p.check_new("Password123"), Err(Refused::Common));
        assert_eq!(p.check_new("i love working at ACME corp"), Err(Refused::Term("acme".into())));
        assert_eq!(p.check_new("correct horse battery staple"), Err(Refused::Breached));
        assert_eq!(p.check_new("unusual violet lanterns"), Ok(()));
    }

    #[test]
    fn many_accounts_failing_from_one_ip_or_with_one_password_is_a_spray() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        let p = protection("");
        for (i, user) in ["a", "b"].iter().enumerate() {
            p.record_failure(&conn, user, Some("198.51.100.7"), &format!("pw{i}"), 100).unwrap();
        }
        assert!(p.spray(&conn, Some("198.51.100.7"), "x", 100).unwrap().is_none());
        p.record_failure(&conn, "c", Some("198.51.100.7"), "pw9", 100).unwrap();
        assert!(p.spray(&conn, Some("198.51.100.7"), "x", 100).unwrap().unwrap().contains("from this IP"));
        assert!(p.spray(&conn, Some("198.51.100.7"), "x", 701).unwrap().is_none(), "outside the window");
        for (i, user) in ["d", "e", "f"].iter().enumerate() {
            p.record_failure(&conn, user, Some(&format!("203.0.113.{i}")), "Winter2026!", 800).unwrap();
        }
        assert!(p.spray(&conn, Some("192.0.2.1"), "Winter2026!", 800).unwrap().unwrap().contains("this password"));
        // An IPv6 client is its /64: rotating addresses inside it is one IP spraying.
        for (i, user) in ["g", "h", "i"].iter().enumerate() {
            p.record_failure(&conn, user, Some(&format!("2001:db8:1:2::{}", i + 1)), &format!("v6 pw{i}"), 900).unwrap();
        }
        assert!(p.spray(&conn, Some("2001:db8:1:2::99"), "x", 900).unwrap().unwrap().contains("from this IP"));
        assert!(p.spray(&conn, Some("2001:db8:1:3::1"), "x", 900).unwrap().is_none(), "another /64");
    }

    #[test]
    fn instances_sharing_the_secret_count_failures_together_and_only_hashes_are_stored() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        let (a, b) = (protection("a"), protection(""));
        a.record_failure(&conn, "alice", Some("198.51.100.7"), "Winter2026!", 100).unwrap();
        b.record_failure(&conn, "bob", Some("198.51.100.7"), "Winter2026!", 100).unwrap();
        a.record_failure(&conn, "carol", Some("198.51.100.7"), "Winter2026!", 100).unwrap();
        assert!(b.spray(&conn, Some("198.51.100.7"), "x", 100).unwrap().unwrap().contains("from this IP"), "three accounts across two instances");
        // Another installation's key hashes differently: its failures are not these.
        let other = protection_with("", "another secret");
        assert!(other.spray(&conn, Some("198.51.100.7"), "Winter2026!", 100).unwrap().is_none());
        let rows: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = conn
            .prepare("SELECT account, ip, password FROM password_failures")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 3);
        for (account, ip, password) in rows {
            assert_eq!((account.len(), ip.len(), password.len()), (16, 16, 4), "fixed-size keyed hashes, whatever was typed; 4 bytes of the password's");
            assert!(!String::from_utf8_lossy(&password).contains("Winter"));
        }
    }

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        assert_eq!(network_of("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(network_of("2001:db8:aa:1::5"), "2001:db8:aa::/48");
        assert_eq!(client_key("2001:db8:aa:1:ffff::5"), "2001:db8:aa:1::/64");
        assert_eq!(client_key("203.0.113.77"), "203.0.113.77");
        // A provider's wider network, of an address or of a stored /24 or /48.
        assert_eq!(provider_of("203.0.113.77"), "203.0.0.0/16");
        assert_eq!(provider_of("203.0.113.0/24"), "203.0.0.0/16");
        assert_eq!(provider_of("2001:db8:aa::/48"), "2001:db8::/32");
        assert_eq!(provider_of("2001:db8:aa:1::5"), "2001:db8::/32");
    }
}
