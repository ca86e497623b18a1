//! Authentication strength: what a set of proven methods adds up to, and its `acr` value.

use serde::{Deserialize, Serialize};

/// Authentication strength, advertised as `acr` values (discovery `acr_values_supported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum Level {
    #[default]
    Password,
    Mfa,
    PhishingResistant,
}

pub const ACR_PASSWORD: &str = "urn:latchkey:acr:password";
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";
pub const ACR_PHISHING_RESISTANT: &str = "urn:latchkey:acr:phishing-resistant";

impl Level {
    pub fn acr(self) -> &'static str {
        match self {
            Level::Password => ACR_PASSWORD,
            Level::Mfa => ACR_MFA,
            Level::PhishingResistant => ACR_PHISHING_RESISTANT,
        }
    }

    pub fn from_acr(acr: &str) -> Option<Self> {
        match acr {
            ACR_PASSWORD => Some(Level::Password),
            ACR_MFA => Some(Level::Mfa),
            ACR_PHISHING_RESISTANT => Some(Level::PhishingResistant),
            _ => None,
        }
    }

    /// What a set of RFC 8176 methods adds up to. A WebAuthn key (hwk/swk) that counted as
    /// multi-factor is phishing-resistant: its signature is bound to latchkey's origin.
    pub fn of(amr: &[String]) -> Self {
        let has = |m: &str| amr.iter().any(|a| a == m);
        match (has("mfa"), has("hwk") || has("swk")) {
            (true, true) => Level::PhishingResistant,
            (true, false) => Level::Mfa,
            _ => Level::Password,
        }
    }
}
