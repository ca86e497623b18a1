//! latchkey's cookies, all HttpOnly, SameSite=Lax and Path=/: `lk_session` holds the SSO
//! session token; `lk_browser` binds pending sign-ins to this browser; `lk_form` is the form
//! token of pages that start something; `lk_lang` is the language chosen on the page switch.
//! With an https issuer they are Secure and carry the `__Host-` prefix (RFC 6265bis §4.1.3.2):
//! a browser then accepts them only from this exact origin over https, so a sibling subdomain
//! or a network attacker on plain http cannot plant or overwrite them — and only the prefixed
//! names are read.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

/// One of latchkey's cookies; its name on the wire depends on whether the issuer is https.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Session,
    Browser,
    /// Double-submit CSRF protection.
    Form,
    /// The language chosen with the switch on every page (`en` or `ja`).
    Lang,
}

pub const SESSION: Name = Name::Session;
pub const BROWSER: Name = Name::Browser;
pub const FORM: Name = Name::Form;
pub const LANG: Name = Name::Lang;

impl Name {
    /// The cookie's name: `__Host-`-prefixed when `secure`.
    pub fn as_str(self, secure: bool) -> &'static str {
        match (self, secure) {
            (Name::Session, false) => "lk_session",
            (Name::Session, true) => "__Host-lk_session",
            (Name::Browser, false) => "lk_browser",
            (Name::Browser, true) => "__Host-lk_browser",
            (Name::Form, false) => "lk_form",
            (Name::Form, true) => "__Host-lk_form",
            (Name::Lang, false) => "lk_lang",
            (Name::Lang, true) => "__Host-lk_lang",
        }
    }
}

/// Whether this server's cookies are Secure and `__Host-` prefixed (its issuer is https), as
/// the configuration in the request's app data says.
pub fn secure(req: &HttpRequest) -> bool {
    req.app_data::<actix_web::web::Data<crate::AppState>>().is_some_and(|s| s.config.secure_cookies())
}

pub fn build(name: Name, value: String, secure: bool, max_age_secs: Option<i64>) -> Cookie<'static> {
    // `__Host-` requires Secure, Path=/ and no Domain attribute.
    let mut c = Cookie::build(name.as_str(secure), value).path("/").http_only(true).same_site(SameSite::Lax).secure(secure).finish();
    if let Some(secs) = max_age_secs {
        c.set_max_age(Duration::seconds(secs));
    }
    c
}

pub fn removal(name: Name, secure: bool) -> Cookie<'static> {
    let mut c = build(name, String::new(), secure, None);
    c.make_removal();
    c
}

/// The cookie `name` this browser sent, under the name this server uses (only the prefixed
/// one with an https issuer).
pub fn value(req: &HttpRequest, name: Name) -> Option<String> {
    named(req, name, secure(req))
}

fn named(req: &HttpRequest, name: Name, secure: bool) -> Option<String> {
    req.cookie(name.as_str(secure)).map(|c| c.value().to_string()).filter(|v| !v.is_empty())
}

/// This browser's `lk_browser` value, or a new one (then `Some` cookie to set on the answer).
pub fn browser(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    match named(req, BROWSER, secure) {
        Some(v) => (v, None),
        None => {
            let v = crate::crypto::random_token();
            (v.clone(), Some(build(BROWSER, v, secure, None)))
        }
    }
}

/// Whether this request comes from the browser whose `lk_browser` value hashes to `hash`:
/// what binds a pending sign-in or reset to the browser that started it.
pub fn same_browser(req: &HttpRequest, hash: &str) -> bool {
    value(req, BROWSER).is_some_and(|b| crate::crypto::constant_time_eq(crate::crypto::secret_hash(&b).as_bytes(), hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn an_https_server_sets_and_reads_only_host_prefixed_cookies() {
        let c = build(SESSION, "v".into(), true, None);
        assert_eq!(c.name(), "__Host-lk_session");
        assert_eq!((c.secure(), c.path(), c.domain()), (Some(true), Some("/"), None));
        assert_eq!(build(BROWSER, "v".into(), false, None).name(), "lk_browser");
        let req = TestRequest::default().cookie(Cookie::new("lk_session", "planted")).to_http_request();
        assert_eq!(named(&req, SESSION, true), None, "an unprefixed cookie is not read over https");
        assert_eq!(named(&req, SESSION, false).as_deref(), Some("planted"));
        let req = TestRequest::default().cookie(Cookie::new("__Host-lk_form", "f")).to_http_request();
        assert_eq!(named(&req, FORM, true).as_deref(), Some("f"));
    }
}
