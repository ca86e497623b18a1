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
    pub database: DatabaseConfig,
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
    pub metrics_bind: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty: SQLite in the data directory; else a PostgreSQL URL.
    pub url: Secret,
    pub pool_size: u32,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub code_ttl_secs: i64,
    pub access_token_ttl_secs: i64,
    pub access_token_alg: String,
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
    pub format: LogFormat,
    pub events_file: PathBuf,
    pub retention_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A configured secret; `Debug` never prints it.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> Option<&str> {
        (!self.0.is_empty()).then_some(self.0.as_str())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Keys whose values `check-config` never prints.
/// Below this, `keys.encryption_secret` is warned about (a 32-character random secret is ~190 bits).
pub const MIN_ENCRYPTION_SECRET: usize = 32;

const SECRET_KEYS: &[&str] = &["mail.smtp_url", "keys.encryption_secret", "database.url"];

/// One effective configuration value, as `latchkey check-config` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Setting {
    pub name: String,
    /// The value (secrets redacted); printed as JSON text for people, kept as JSON by `--json`.
    pub value: serde_json::Value,
    /// "default", "file PATH" or "environment NAME".
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    pub fn load_from(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        Self::explain(file, env).map(|(config, _)| config)
    }

    /// Loads like [`Config::load_from`] and also says where each effective value came from
    /// (`latchkey check-config`): one entry per key, secrets redacted.
    pub fn explain(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<(Self, Vec<Setting>), ConfigError> {
        let mut table: toml::Table = DEFAULTS.parse().expect("built-in defaults are valid TOML");
        let mut sources = std::collections::BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
            let overlay: toml::Table = text.parse().map_err(|source| ConfigError::Parse { path: path.into(), source })?;
            for (section, keys) in &overlay {
                for key in keys.as_table().into_iter().flat_map(|t| t.keys()) {
                    sources.insert(format!("{section}.{key}"), format!("file {}", path.display()));
                }
            }
            merge(&mut table, overlay);
        }
        // LATCHKEY_TEST_* belong to the test suite, not to the configuration, and a name without
        // `__` names no key: Kubernetes gives every pod LATCHKEY_PORT, LATCHKEY_SERVICE_HOST and
        // the like when its Service is called latchkey (`check-config` shows what was read).
        let mut env: Vec<(String, String)> =
            env.into_iter().filter(|(name, _)| name.starts_with("LATCHKEY_") && !name.starts_with("LATCHKEY_TEST_") && name.contains("__")).collect();
        env.sort();
        for (name, value) in env {
            let rest = &name["LATCHKEY_".len()..];
            let Some((section, key)) = rest.split_once("__") else { continue };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let entry = table.entry(section.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(entries) = entry {
                // A value takes the type of the key's default (a secret or a word of digits stays a
                // string); a key whose default is a list takes a comma-separated list.
                let value = match entries.get(&key) {
                    Some(toml::Value::Array(items)) => {
                        toml::Value::Array(value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(|v| typed_like(items.first(), v)).collect())
                    }
                    existing => typed_like(existing, &value),
                };
                entries.insert(key.clone(), value);
            }
            sources.insert(format!("{section}.{key}"), format!("environment {name}"));
        }
        let mut settings = Vec::new();
        for (section, keys) in &table {
            for (key, value) in keys.as_table().into_iter().flatten() {
                let name = format!("{section}.{key}");
                let shown = if SECRET_KEYS.contains(&name.as_str()) && value.as_str().is_some_and(|v| !v.is_empty()) {
                    serde_json::Value::from("[redacted]")
                } else {
                    serde_json::to_value(value).unwrap_or_default()
                };
                let source = sources.remove(&name).unwrap_or_else(|| "default".into());
                settings.push(Setting { name, value: shown, source });
            }
        }
        let config: Config = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.validate()?;
        Ok((config, settings))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.server.issuer).map_err(|e| ConfigError::Invalid(format!("server.issuer is not a URL: {e}")))?;
        if !matches!(issuer.scheme(), "https" | "http") || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::Invalid("server.issuer must be an http(s) URL without query or fragment (OIDC Discovery §2)".into()));
        }
        // Relying parties compare the issuer as a string (OIDC Discovery §4.3), and latchkey
        // decides Secure cookies and proxy redirects from its text: no other spelling of the scheme.
        if !(self.server.issuer.starts_with("https://") || self.server.issuer.starts_with("http://")) {
            return Err(ConfigError::Invalid(format!(
                "server.issuer {:?} must start with https:// (or http://), written as relying parties will compare it",
                self.server.issuer
            )));
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
        if !crate::oidc::keys::ALGORITHMS.contains(&self.tokens.access_token_alg.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "tokens.access_token_alg {:?} is not one of {}",
                self.tokens.access_token_alg,
                crate::oidc::keys::ALGORITHMS.join(", ")
            )));
        }
        if self.server.tls_cert.as_os_str().is_empty() != self.server.tls_key.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("server.tls_cert and server.tls_key must be set together".into()));
        }
        // What `serve` would refuse, `check-config` refuses too.
        if std::net::ToSocketAddrs::to_socket_addrs(self.server.bind.as_str()).is_err() {
            return Err(ConfigError::Invalid(format!("server.bind {:?} is not an address such as 127.0.0.1:8080", self.server.bind)));
        }
        for (name, path) in [("server.tls_cert", &self.server.tls_cert), ("server.tls_key", &self.server.tls_key)] {
            if !path.as_os_str().is_empty()
                && let Err(e) = std::fs::File::open(path)
            {
                return Err(ConfigError::Invalid(format!("{name} {}: {e}", path.display())));
            }
        }
        let p = &self.password;
        if let Err(e) = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, None) {
            return Err(ConfigError::Invalid(format!(
                "password.memory_kib, iterations and parallelism ({}, {}, {}) are not valid argon2id parameters: {e}",
                p.memory_kib, p.iterations, p.parallelism
            )));
        }
        if !self.server.metrics_bind.is_empty() && self.server.metrics_bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!("server.metrics_bind {:?} is not an address such as 127.0.0.1:9090", self.server.metrics_bind)));
        }
        if let Some(url) = self.database.url.expose() {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid("database.url must be a postgres:// URL (leave it empty for SQLite in the data directory)".into()));
            }
            if self.keys.encryption_secret.expose().is_none() {
                return Err(ConfigError::Invalid(
                    "with database.url set, set keys.encryption_secret too, the same on every instance: it encrypts the signing keys and authenticator secrets they share"
                        .into(),
                ));
            }
        }
        if self.database.pool_size == 0 || self.database.timeout_ms == 0 {
            return Err(ConfigError::Invalid("database.pool_size and database.timeout_ms must be positive".into()));
        }
        if !(1..=3650).contains(&self.log.retention_days) {
            return Err(ConfigError::Invalid("log.retention_days must be between 1 and 3650".into()));
        }
        if self.log.level.parse::<tracing::Level>().is_err() {
            return Err(ConfigError::Invalid(format!("log.level {:?} is not one of error, warn, info, debug, trace", self.log.level)));
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

    /// Settings that are valid but weaken what latchkey protects: `check-config` prints them and
    /// `serve` logs them at start. Not refused: an operator may know better (a closed network,
    /// a secret an existing installation's sealed values depend on).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(secret) = self.keys.encryption_secret.expose()
            && secret.chars().count() < MIN_ENCRYPTION_SECRET
        {
            out.push(format!(
                "keys.encryption_secret has {} characters: with a copy of the database, a short secret can be guessed offline and the signing keys and \
                 authenticator secrets read; give a new installation at least {MIN_ENCRYPTION_SECRET} random characters (openssl rand -base64 32)",
                secret.chars().count()
            ));
        }
        let p = &self.password;
        // OWASP's least argon2id settings are pairs (47104 KiB × 1 pass … 7168 KiB × 5 passes):
        // at least 7 MiB, and memory × passes of at least 35840.
        if p.memory_kib < 7168 || u64::from(p.memory_kib) * u64::from(p.iterations) < 35840 {
            out.push(format!(
                "password.memory_kib = {} with password.iterations = {} is below OWASP's least argon2id setting (19456 KiB with 2 iterations, or an \
                 equivalent pair): stolen password hashes could be guessed faster",
                p.memory_kib, p.iterations
            ));
        }
        for range in &self.server.trusted_proxies {
            if let Ok(r) = crate::policy::locations::IpRange::parse(range)
                && r.prefix() < if r.is_ipv4() { 8 } else { 32 }
            {
                out.push(format!(
                    "server.trusted_proxies includes {range}: any client in it can set X-Forwarded-For and choose the address that named locations, \
                     risk detection and smart lockout see; list only your proxies' addresses"
                ));
            }
        }
        out
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

/// `raw` as the type of `default` (a string when that is a string or unknown).
fn typed_like(default: Option<&toml::Value>, raw: &str) -> toml::Value {
    match default {
        Some(toml::Value::Integer(_)) | Some(toml::Value::Boolean(_)) => env_value(raw),
        _ => toml::Value::String(raw.to_string()),
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
    fn an_issuer_spelled_other_than_https_or_http_colon_slash_slash_is_refused() {
        for issuer in ["HTTPS://id.example.com", " https://id.example.com", "https:id.example.com", "https:\\\\id.example.com"] {
            let err = Config::load_from(None, [("LATCHKEY_SERVER__ISSUER".into(), issuer.into())]).unwrap_err();
            assert!(err.to_string().contains("server.issuer"), "{issuer}: {err}");
        }
        let ok = Config::load_from(None, [("LATCHKEY_SERVER__ISSUER".into(), "https://id.example.com".into())]).unwrap();
        assert!(ok.secure_cookies());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::load_from(None, [("LATCHKEY_SERVER__BINDD".into(), "x".into())]).unwrap_err();
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn what_serve_would_refuse_is_refused_when_the_configuration_is_read() {
        for (name, value, says) in [
            ("LATCHKEY_SERVER__BIND", "notanaddr", "server.bind"),
            ("LATCHKEY_PASSWORD__PARALLELISM", "0", "argon2id"),
            ("LATCHKEY_PASSWORD__MEMORY_KIB", "1", "argon2id"),
            ("LATCHKEY_PASSWORD__ITERATIONS", "0", "argon2id"),
        ] {
            let err = Config::load_from(None, [(name.to_string(), value.to_string())]).unwrap_err();
            assert!(err.to_string().contains(says), "{name}={value}: {err}");
        }
        let env = [
            ("LATCHKEY_SERVER__TLS_CERT".to_string(), "/nonexistent/cert.pem".to_string()),
            ("LATCHKEY_SERVER__TLS_KEY".into(), "/nonexistent/key.pem".into()),
        ];
        let err = Config::load_from(None, env).unwrap_err();
        assert!(err.to_string().contains("server.tls_cert /nonexistent/cert.pem"), "{err}");
    }

    #[test]
    fn kubernetes_service_variables_are_not_configuration() {
        let env = [
            ("LATCHKEY_PORT".to_string(), "tcp://10.96.0.12:8080".to_string()),
            ("LATCHKEY_PORT_8080_TCP_ADDR".into(), "10.96.0.12".into()),
            ("LATCHKEY_SERVICE_HOST".into(), "10.96.0.12".into()),
            ("LATCHKEY_SERVER__BIND".into(), "0.0.0.0:8080".into()),
        ];
        let (c, settings) = Config::explain(None, env).unwrap();
        assert_eq!(c.server.bind, "0.0.0.0:8080");
        assert!(settings.iter().all(|s| !s.source.contains("LATCHKEY_PORT") && !s.source.contains("SERVICE_HOST")));
    }

    #[test]
    fn list_keys_take_comma_separated_values_from_the_environment() {
        let c = Config::load_from(None, [("LATCHKEY_SERVER__TRUSTED_PROXIES".into(), "10.0.0.1, 10.1.0.0/16".into())]).unwrap();
        assert_eq!(c.server.trusted_proxies, ["10.0.0.1", "10.1.0.0/16"]);
        let c = Config::load_from(None, [("LATCHKEY_SERVER__TRUSTED_PROXIES".into(), "".into())]).unwrap();
        assert!(c.server.trusted_proxies.is_empty());
        let err = Config::load_from(None, [("LATCHKEY_SERVER__TRUSTED_PROXIES".into(), "10.0.0.1,not-an-ip".into())]).unwrap_err();
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
    }

    #[test]
    fn explain_says_where_each_value_came_from_and_hides_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        std::fs::write(&file, "[server]\nbind = \"0.0.0.0:9000\"\n[keys]\nencryption_secret = \"hunter2hunter2\"\n").unwrap();
        let (c, settings) = Config::explain(Some(&file), [("LATCHKEY_LOG__FORMAT".into(), "json".into())]).unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        let find = |n: &str| settings.iter().find(|s| s.name == n).unwrap().clone();
        assert!(find("server.bind").source.starts_with("file "), "{:?}", find("server.bind"));
        assert_eq!(find("server.bind").value, "0.0.0.0:9000");
        assert_eq!(find("log.format").source, "environment LATCHKEY_LOG__FORMAT");
        assert_eq!(find("tokens.code_ttl_secs").source, "default");
        assert_eq!(find("keys.encryption_secret").value, "[redacted]");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn environment_values_take_the_type_of_their_key() {
        let env = [
            ("LATCHKEY_KEYS__ENCRYPTION_SECRET".to_string(), "123456789012345678".to_string()),
            ("LATCHKEY_PASSWORD__BANNED_TERMS".to_string(), "contoso,2024".to_string()),
            ("LATCHKEY_SERVER__WORKERS".to_string(), "3".to_string()),
        ];
        let c = Config::load_from(None, env).unwrap();
        assert_eq!(c.keys.encryption_secret.expose(), Some("123456789012345678"));
        assert_eq!(c.password.banned_terms, ["contoso", "2024"]);
        assert_eq!(c.server.workers, 3);
    }

    #[test]
    fn weak_but_valid_settings_are_warned_about() {
        let defaults = Config::load_from(None, std::iter::empty()).unwrap();
        assert_eq!(defaults.warnings(), Vec::<String>::new(), "the defaults are not weak");
        let env = [
            ("LATCHKEY_KEYS__ENCRYPTION_SECRET".to_string(), "hunter2hunter2".to_string()),
            ("LATCHKEY_PASSWORD__MEMORY_KIB".to_string(), "64".to_string()),
            ("LATCHKEY_PASSWORD__ITERATIONS".to_string(), "1".to_string()),
            ("LATCHKEY_SERVER__TRUSTED_PROXIES".to_string(), "10.0.0.0/8,0.0.0.0/0,::/0,2001:db8::/48".to_string()),
        ];
        let warnings = Config::load_from(None, env).unwrap().warnings();
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        assert!(warnings[0].starts_with("keys.encryption_secret has 14 characters"), "{}", warnings[0]);
        assert!(!warnings[0].contains("hunter2"), "the secret itself is never shown");
        assert!(warnings[1].starts_with("password.memory_kib = 64 with password.iterations = 1"), "{}", warnings[1]);
        assert!(warnings[2].contains("includes 0.0.0.0/0") && warnings[3].contains("includes ::/0"), "{warnings:#?}");
        // OWASP's other pairs are not weak.
        let env = [("LATCHKEY_PASSWORD__MEMORY_KIB".to_string(), "47104".to_string()), ("LATCHKEY_PASSWORD__ITERATIONS".to_string(), "1".to_string())];
        assert_eq!(Config::load_from(None, env).unwrap().warnings(), Vec::<String>::new());
        let env = [("LATCHKEY_KEYS__ENCRYPTION_SECRET".to_string(), "x".repeat(MIN_ENCRYPTION_SECRET))];
        assert_eq!(Config::load_from(None, env).unwrap().warnings(), Vec::<String>::new());
    }

    #[test]
    fn tls_files_must_come_together() {
        let err = Config::load_from(None, [("LATCHKEY_SERVER__TLS_CERT".into(), "/x.pem".into())]).unwrap_err();
        assert!(err.to_string().contains("together"), "{err}");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "[redacted]");
    }
}
