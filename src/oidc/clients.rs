//! Registering a relying party: the rules its redirect URIs and grants must meet. The CLI
//! and (later) the admin console both go through `register`.

use crate::crypto::{b64url, random_bytes, random_token, secret_hash};
use crate::store::{self, StoreError, clients::NewClient};
use rusqlite::Connection;

pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];
pub const DEFAULT_GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RegistrationError {
    #[error("the application name must be 1 to 100 characters")]
    Name,
    #[error("redirect URI {0:?} is invalid: {1}")]
    RedirectUri(String, &'static str),
    #[error("grant type {0:?} is not supported (choose from authorization_code, refresh_token, client_credentials)")]
    GrantType(String),
    #[error("{0}")]
    Combination(&'static str),
    #[error("{0}")]
    Conflict(String),
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

#[tracing::instrument(skip(conn, r), fields(name = r.name))]
pub fn register(conn: &Connection, r: &Registration<'_>, now: i64) -> Result<Registered, RegistrationError> {
    let name = r.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(RegistrationError::Name);
    }
    let mut grants: Vec<String> = vec![];
    for g in r.grant_types {
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
    let has = |g: &str| grants.iter().any(|x| x == g);
    if r.public && has("client_credentials") {
        return Err(RegistrationError::Combination("a public client cannot use client_credentials: it has no secret"));
    }
    if has("refresh_token") && !has("authorization_code") {
        return Err(RegistrationError::Combination("refresh_token needs authorization_code: refresh tokens come from sign-ins"));
    }
    if has("authorization_code") && r.redirect_uris.is_empty() {
        return Err(RegistrationError::Combination("authorization_code needs at least one redirect URI"));
    }
    for uri in r.redirect_uris.iter().chain(r.post_logout_redirect_uris) {
        check_redirect_uri(uri, r.public)?;
    }
    let client_id = b64url(&random_bytes::<16>());
    let secret = (!r.public).then(random_token);
    let hash = secret.as_deref().map(secret_hash);
    let new = NewClient {
        name,
        secret_hash: hash.as_deref(),
        redirect_uris: r.redirect_uris,
        post_logout_redirect_uris: r.post_logout_redirect_uris,
        grant_types: &grants,
        is_public: r.public,
    };
    store::clients::insert(conn, &client_id, &new, now).map_err(|e| match e {
        StoreError::Conflict(m) => RegistrationError::Conflict(m),
        other => RegistrationError::Conflict(format!("could not save the application: {other}")),
    })?;
    Ok(Registered { client_id, client_secret: secret })
}

#[cfg(test)]
mod tests {
    use super::*;

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
