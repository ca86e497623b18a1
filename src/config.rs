//! Layered configuration: built-in defaults (config/latchkey.toml) → an optional TOML file →
//! `LATCHKEY_<SECTION>__<KEY>` environment variables.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

const DEFAULTS: &str = include_str!("../config/latchkey.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub tokens: TokenConfig,
    pub session: SessionConfig,
    pub admin: AdminConfig,
    pub password: PasswordConfig,
    pub protection: ProtectionConfig,
    pub mail: MailConfig,
    pub keys: KeyConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub issuer: String,
    pub data_dir: PathBuf,
    pub workers: usize,
    pub trusted_proxies: Vec<String>,
    pub backchannel_private_addresses: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub code_ttl_secs: i64,
    pub access_token_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    pub ttl_secs: i64,
    pub login_request_ttl_secs: i64,
    pub max_pending_per_ip: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub idle_timeout_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    #[serde(default)]
    pub banned_terms: Vec<String>,
    #[serde(default)]
    pub breached_list: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionConfig {
    pub lockout_threshold: i64,
    pub lockout_secs: i64,
    pub window_secs: i64,
    pub spray_accounts: i64,
    pub brute_force_failures: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub smtp_url: Secret,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub encryption_secret: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
}

/// A configured secret; `Debug` never prints it.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> Option<&str> {
        (!self.0.is_empty()).then_some(self.0.as_str())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {0} must look like LATCHKEY_<SECTION>__<KEY>")]
    EnvName(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    pub fn load_from(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table: toml::Table = DEFAULTS.parse().expect("built-in defaults are valid TOML");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            let overlay: toml::Table = text.parse().map_err(|source| ConfigError::Parse { path: path.into(), source })?;
            merge(&mut table, overlay);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("LATCHKEY_") else { continue };
            let (section, key) = rest.split_once("__").ok_or_else(|| ConfigError::EnvName(name.clone()))?;
            let section = table.entry(section.to_ascii_lowercase()).or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(section) = section {
                section.insert(key.to_ascii_lowercase(), env_value(&value));
            }
        }
        let config: Config = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.server.issuer).map_err(|e| ConfigError::Invalid(format!("server.issuer is not a URL: {e}")))?;
        if !matches!(issuer.scheme(), "https" | "http") || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::Invalid("server.issuer must be an http(s) URL without query or fragment (OIDC Discovery §2)".into()));
        }
        if !(1..=60).contains(&self.tokens.code_ttl_secs) {
            return Err(ConfigError::Invalid("tokens.code_ttl_secs must be between 1 and 60".into()));
        }
        for (name, v) in [
            ("tokens.access_token_ttl_secs", self.tokens.access_token_ttl_secs),
            ("tokens.id_token_ttl_secs", self.tokens.id_token_ttl_secs),
            ("tokens.refresh_token_ttl_secs", self.tokens.refresh_token_ttl_secs),
            ("session.ttl_secs", self.session.ttl_secs),
            ("session.login_request_ttl_secs", self.session.login_request_ttl_secs),
            ("session.max_pending_per_ip", self.session.max_pending_per_ip),
            ("admin.idle_timeout_secs", self.admin.idle_timeout_secs),
            ("protection.lockout_threshold", self.protection.lockout_threshold),
            ("protection.lockout_secs", self.protection.lockout_secs),
            ("protection.window_secs", self.protection.window_secs),
            ("protection.spray_accounts", self.protection.spray_accounts),
            ("protection.brute_force_failures", self.protection.brute_force_failures),
        ] {
            if v <= 0 {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        for p in &self.server.trusted_proxies {
            crate::policy::locations::IpRange::parse(p).map_err(|e| ConfigError::Invalid(format!("server.trusted_proxies: {e}")))?;
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid(format!("mail.from {:?} is not an e-mail address", self.mail.from)));
        }
        Ok(())
    }

    /// The issuer without a trailing slash, used to build endpoint URLs.
    pub fn issuer(&self) -> &str {
        self.server.issuer.trim_end_matches('/')
    }

    pub fn secure_cookies(&self) -> bool {
        self.server.issuer.starts_with("https://")
    }

    /// The longest a token signed by a key can stay valid: how long JWKS keeps a retired key.
    pub fn max_jwt_ttl(&self) -> i64 {
        self.tokens.access_token_ttl_secs.max(self.tokens.id_token_ttl_secs)
    }
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_env_overrides_win() {
        let c = Config::load_from(None, [("LATCHKEY_TOKENS__ACCESS_TOKEN_TTL_SECS".into(), "300".into())]).unwrap();
        assert_eq!(c.tokens.access_token_ttl_secs, 300);
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert!(c.keys.encryption_secret.expose().is_none());
    }

    #[test]
    fn a_code_lifetime_over_sixty_seconds_is_refused() {
        let err = Config::load_from(None, [("LATCHKEY_TOKENS__CODE_TTL_SECS".into(), "600".into())]).unwrap_err();
        assert!(err.to_string().contains("code_ttl_secs"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::load_from(None, [("LATCHKEY_SERVER__BINDD".into(), "x".into())]).unwrap_err();
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
    }
}
