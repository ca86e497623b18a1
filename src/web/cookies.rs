//! latchkey's two cookies, both HttpOnly and SameSite=Lax (Secure when the issuer is https):
//! `lk_session` holds the SSO session token; `lk_browser` binds pending sign-ins to this browser.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};

pub const SESSION: &str = "lk_session";
pub const BROWSER: &str = "lk_browser";
/// The form token of pages that start something (double-submit CSRF protection).
pub const FORM: &str = "lk_form";

pub fn build(name: &'static str, value: String, secure: bool, max_age_secs: Option<i64>) -> Cookie<'static> {
    let mut c = Cookie::build(name, value).path("/").http_only(true).same_site(SameSite::Lax).secure(secure).finish();
    if let Some(secs) = max_age_secs {
        c.set_max_age(Duration::seconds(secs));
    }
    c
}

pub fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = build(name, String::new(), secure, None);
    c.make_removal();
    c
}

pub fn value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_string()).filter(|v| !v.is_empty())
}

/// This browser's `lk_browser` value, or a new one (then `Some` cookie to set on the answer).
pub fn browser(req: &HttpRequest, secure: bool) -> (String, Option<Cookie<'static>>) {
    match value(req, BROWSER) {
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
