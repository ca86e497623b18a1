//! Registering a relying party: the rules its redirect URIs and grants must meet. The CLI
//! and (later) the admin console both go through `register`.

use crate::crypto::{b64url, random_bytes, random_token, secret_hash};
use crate::store::db::Connection;
use crate::store::{self, StoreError, clients::ClientSettings};

/// `password` is the legacy resource-owner password grant: off unless chosen.
pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials", "password"];
pub const DEFAULT_GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RegistrationError {
    #[error("the application name must be 1 to 100 characters")]
    Name,
    #[error("redirect URI {0:?} is invalid: {1}")]
    RedirectUri(String, &'static str),
    #[error("grant type {0:?} is not supported (choose from authorization_code, refresh_token, client_credentials, password)")]
    GrantType(String),
    #[error("{0}")]
    Combination(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("ID token signing algorithm {0:?} is not supported (choose RS256, ES256 or EdDSA)")]
    Algorithm(String),
    #[error("the {0} {1:?} must be an absolute http(s) URL")]
    Url(&'static str, String),
    #[error("the back-channel logout URI {0:?} must be an absolute https URL to a public address, without a fragment")]
    BackchannelLogoutUri(String),
}

/// Checks one redirect URI (RFC 9700 §4.1, RFC 8252 §7): absolute, no fragment, no wildcard;
/// https, or http only on a loopback host, or (public native apps) a private-use scheme.
pub fn check_redirect_uri(uri: &str, public: bool) -> Result<(), RegistrationError> {
    let bad = |why| Err(RegistrationError::RedirectUri(uri.to_string(), why));
    if uri.contains('*') {
        return bad("wildcards are not allowed; register each exact URI");
    }
    let Ok(url) = url::Url::parse(uri) else { return bad("it must be an absolute URI") };
    if url.fragment().is_some() || uri.contains('#') {
        return bad("it must not contain a fragment (#)");
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
            if !loopback {
                return bad("http is only allowed for loopback addresses (127.0.0.1, [::1], localhost); use https");
            }
        }
        scheme if public && scheme.contains('.') => {}
        _ => return bad("it must use https (or http on a loopback address)"),
    }
    if url.username() != "" || url.password().is_some() {
        return bad("it must not contain credentials");
    }
    Ok(())
}

pub const ID_TOKEN_ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];

pub struct Registration<'a> {
    pub name: &'a str,
    pub redirect_uris: &'a [String],
    pub post_logout_redirect_uris: &'a [String],
    pub grant_types: &'a [String],
    pub public: bool,
}

#[derive(Debug)]
pub struct Registered {
    pub client_id: String,
    /// Shown once; only its hash is stored. None for public clients.
    pub client_secret: Option<String>,
}

/// Checks and normalises settings: the rules every app must meet, whoever registers it.
pub fn check(s: &mut ClientSettings) -> Result<(), RegistrationError> {
    s.name = s.name.trim().to_string();
    if s.name.is_empty() || s.name.chars().count() > 100 {
        return Err(RegistrationError::Name);
    }
    let mut grants: Vec<String> = vec![];
    for g in &s.grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(RegistrationError::GrantType(g.clone()));
        }
        if !grants.contains(g) {
            grants.push(g.clone());
        }
    }
    if grants.is_empty() {
        grants = DEFAULT_GRANT_TYPES.iter().map(|g| g.to_string()).collect();
    }
    s.grant_types = grants;
    let has = |g: &str| s.grant_types.iter().any(|x| x == g);
    if s.is_public && has("client_credentials") {
        return Err(RegistrationError::Combination("a public client cannot use client_credentials: it has no secret"));
    }
    if has("refresh_token") && !has("authorization_code") && !has("password") {
        return Err(RegistrationError::Combination("refresh_token needs authorization_code: refresh tokens come from sign-ins"));
    }
    if has("authorization_code") && s.redirect_uris.is_empty() {
        return Err(RegistrationError::Combination("authorization_code needs at least one redirect URI"));
    }
    for uri in s.redirect_uris.iter().chain(&s.post_logout_redirect_uris) {
        check_redirect_uri(uri, s.is_public)?;
    }
    if !ID_TOKEN_ALGS.contains(&s.id_token_alg.as_str()) {
        return Err(RegistrationError::Algorithm(s.id_token_alg.clone()));
    }
    // Back-Channel Logout 1.0 §2.2: an absolute URL without a fragment; https except on a
    // loopback address, like redirect URIs.
    if let Some(u) = &s.backchannel_logout_uri
        && (check_redirect_uri(u, false).is_err() || !public_https(u))
    {
        return Err(RegistrationError::BackchannelLogoutUri(u.clone()));
    }
    // Front-Channel Logout 1.0 §2: the same rules; the page is loaded in an iframe.
    if let Some(u) = &s.frontchannel_logout_uri
        && check_redirect_uri(u, false).is_err()
    {
        return Err(RegistrationError::Url("front-channel logout URI", u.clone()));
    }
    // OIDC Core §4: the app's login-initiation endpoint, https like redirect URIs.
    if let Some(u) = &s.initiate_login_uri
        && check_redirect_uri(u, false).is_err()
    {
        return Err(RegistrationError::Url("login-initiation URI", u.clone()));
    }
    for (field, url) in [("logo URL", &s.logo_url), ("launch URL", &s.launch_url)] {
        if let Some(u) = url
            && !url::Url::parse(u).is_ok_and(|p| p.scheme() == "https" || p.scheme() == "http")
        {
            return Err(RegistrationError::Url(field, u.clone()));
        }
    }
    Ok(())
}

/// Whether an IP address is one latchkey may send requests to: not loopback, private,
/// link-local (cloud metadata), unique-local, shared (CGNAT), benchmarking, reserved,
/// unspecified, broadcast or multicast — nor an IPv6 address that carries such an IPv4
/// address to a translator (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16).
pub fn public_ip(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && o[1] & 0xC0 == 64)
                || (o[0] == 198 && o[1] & 0xFE == 18)
                || o[0] >= 240)
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_ip(std::net::IpAddr::V4(v4));
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| std::net::IpAddr::V4(std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8));
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return public_ip(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return public_ip(embedded(s[1], s[2]));
            }
            let first = s[0];
            !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80)
        }
    }
}

/// A URL latchkey's server may call itself: https, and not a literal internal address or
/// localhost (the worker also refuses names that resolve inside, at send time).
pub fn public_https(uri: &str) -> bool {
    let Ok(u) = url::Url::parse(uri) else { return false };
    if u.scheme() != "https" {
        return false;
    }
    match u.host() {
        Some(url::Host::Ipv4(ip)) => public_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => public_ip(ip.into()),
        Some(url::Host::Domain(d)) => !(d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")),
        None => false,
    }
}

/// Registers an app with full settings; returns its id and (confidential apps) its secret.
#[tracing::instrument(skip(conn, s), fields(name = s.name))]
pub fn register_settings(conn: &Connection, s: &mut ClientSettings, now: i64) -> Result<Registered, RegistrationError> {
    check(s)?;
    let client_id = b64url(&random_bytes::<16>());
    let secret = (!s.is_public).then(random_token);
    let hash = secret.as_deref().map(secret_hash);
    store::clients::insert(conn, &client_id, s, hash.as_deref(), now).map_err(|e| match e {
        StoreError::Conflict(m) => RegistrationError::Conflict(m),
        other => RegistrationError::Conflict(format!("could not save the application: {other}")),
    })?;
    Ok(Registered { client_id, client_secret: secret })
}

/// The CLI's registration: defaults for everything the command line does not set.
pub fn register(conn: &Connection, r: &Registration<'_>, now: i64) -> Result<Registered, RegistrationError> {
    let mut s = ClientSettings {
        name: r.name.to_string(),
        redirect_uris: r.redirect_uris.to_vec(),
        post_logout_redirect_uris: r.post_logout_redirect_uris.to_vec(),
        grant_types: r.grant_types.to_vec(),
        is_public: r.public,
        id_token_alg: "RS256".into(),
        visible_in_my_apps: true,
        ..ClientSettings::default()
    };
    register_settings(conn, &mut s, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_called_whatever_their_spelling() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for public in ["93.184.216.34", "2606:2800:220:1::1", "64:ff9b::5db8:d822", "2002:5db8:d822::1"] {
            assert!(public_ip(ip(public)), "{public}");
        }
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "100.64.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::a00:1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
        ] {
            assert!(!public_ip(ip(internal)), "{internal}");
        }
    }

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://app.example.com/cb", false).is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9000/cb", false).is_ok());
        assert!(check_redirect_uri("http://localhost/cb", false).is_ok());
        assert!(check_redirect_uri("http://[::1]:8000/cb", false).is_ok());
        assert!(check_redirect_uri("com.example.app:/cb", true).is_ok());
        for (uri, public) in [
            ("http://app.example.com/cb", false),
            ("https://app.example.com/cb#frag", false),
            ("https://*.example.com/cb", false),
            ("/relative/cb", false),
            ("not a uri", false),
            ("com.example.app:/cb", false),
            ("javascript:alert(1)", true),
            ("https://user:pw@app.example.com/cb", false),
        ] {
            assert!(check_redirect_uri(uri, public).is_err(), "{uri} should be refused");
        }
    }

    #[test]
    fn registration_refuses_bad_combinations_and_duplicate_names() {
        let pool = crate::store::open_in_memory();
        let conn = pool.get().unwrap();
        let uris = vec!["https://a.example/cb".to_string()];
        fn reg<'a>(name: &'a str, uris: &'a [String], grants: &'a [String], public: bool) -> Registration<'a> {
            Registration { name, redirect_uris: uris, post_logout_redirect_uris: &[], grant_types: grants, public }
        }
        let ok = register(&conn, &reg("A", &uris, &[], false), 1).unwrap();
        assert!(ok.client_secret.is_some());
        assert!(matches!(register(&conn, &reg("A", &uris, &[], false), 1), Err(RegistrationError::Conflict(_))));
        let cc = vec!["client_credentials".to_string()];
        assert!(matches!(register(&conn, &reg("B", &uris, &cc, true), 1), Err(RegistrationError::Combination(_))));
        let bogus = vec!["implicit".to_string()];
        assert_eq!(register(&conn, &reg("C", &uris, &bogus, false), 1).unwrap_err(), RegistrationError::GrantType("implicit".into()));
        let public = register(&conn, &reg("D", &uris, &[], true), 1).unwrap();
        assert!(public.client_secret.is_none());
    }
}
