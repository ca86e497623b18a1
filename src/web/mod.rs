//! Cross-cutting HTTP: error pages, security headers, cookies, client IP, form parsing.

pub mod assets;
pub mod cookies;
pub mod health;
pub mod multipart;
pub mod observe;
pub mod params;
pub mod tls;

use crate::i18n::filters;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

/// Security headers on every response. CSP allows no inline script and no framing; with an
/// https issuer, HSTS too (RFC 6797).
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = if https { DefaultHeaders::new().add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000")) } else { DefaultHeaders::new() };
    headers
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
}

/// A page for a person: something went wrong that they should read, never a redirect.
#[derive(Debug, thiserror::Error)]
#[error("{title}: {message}")]
pub struct ErrorPage {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
}

impl ErrorPage {
    pub fn bad_request(title: &str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, title: title.into(), message: message.into() }
    }

    pub fn not_found() -> Self {
        Self { status: StatusCode::NOT_FOUND, title: "Not found".into(), message: "There is nothing at this address.".into() }
    }
}

/// Its title and message are English; the template shows them in the request's language,
/// with the request id as the correlation id.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    message: &'a str,
    correlation: String,
}

impl ResponseError for ErrorPage {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let page = ErrorTemplate { title: &self.title, message: &self.message, correlation: observe::correlation() };
        let mut res = html(self.status, &page);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::store::RETRY_AFTER_SECS));
        }
        res
    }
}

/// A fault inside latchkey: logged in full, shown to the person as a generic page.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("template error: {0}")]
    Template(#[from] askama::Error),
    #[error("{0}")]
    Other(String),
}

impl From<actix_web::error::BlockingError> for InternalError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Other(e.to_string())
    }
}

impl From<r2d2::Error> for InternalError {
    fn from(e: r2d2::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<crate::store::db::Error> for InternalError {
    fn from(e: crate::store::db::Error) -> Self {
        Self::Store(e.into())
    }
}

impl InternalError {
    fn unavailable(&self) -> bool {
        matches!(self, Self::Store(e) if e.unavailable())
    }

    /// The 503 page for a storage fault (counted, logged as a warning).
    pub fn unavailable_page(&self) -> ErrorPage {
        metrics::counter!("latchkey_db_unavailable_total").increment(1);
        tracing::warn!(error = %self, "storage unavailable");
        ErrorPage {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Temporarily unavailable".into(),
            message: "latchkey cannot answer right now. Please try again in a moment.".into(),
        }
    }
}

impl ResponseError for InternalError {
    fn status_code(&self) -> StatusCode {
        match self.unavailable() {
            true => StatusCode::SERVICE_UNAVAILABLE,
            false => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.unavailable() {
            return self.unavailable_page().error_response();
        }
        tracing::error!(error = %self, "internal error");
        ErrorPage {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Something went wrong".into(),
            message: "latchkey could not complete this request. Please try again in a moment.".into(),
        }
        .error_response()
    }
}

/// Either a page to show or an internal fault; what browser-facing handlers return.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Page(#[from] ErrorPage),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Page(p) => p.status_code(),
            Self::Internal(i) => i.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Page(p) => p.error_response(),
            Self::Internal(i) => i.error_response(),
        }
    }
}

macro_rules! into_page_error {
    ($($t:ty),*) => {$(
        impl From<$t> for PageError {
            fn from(e: $t) -> Self { Self::Internal(e.into()) }
        }
    )*};
}
into_page_error!(askama::Error, r2d2::Error, crate::store::db::Error, actix_web::error::BlockingError);

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::TooManyPending => Self::Page(ErrorPage {
                status: StatusCode::TOO_MANY_REQUESTS,
                title: "Too many sign-ins in progress".into(),
                message: "Too many sign-ins were started from your network and not finished. Wait a few minutes, then sign in again.".into(),
            }),
            e => Self::Internal(e.into()),
        }
    }
}

/// Renders a template as an uncacheable HTML page.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Behind a TLS-terminating proxy: a request that a trusted proxy says arrived over plain http
/// (`X-Forwarded-Proto: http`) while the issuer is https is sent to the https address (GET,
/// HEAD: 308) or refused (anything else: a form posted over http is not acted on), so no page
/// that sets a Secure cookie or starts a WebAuthn ceremony is served over http. The header is
/// believed only from `server.trusted_proxies`; health checks answer whatever the scheme.
pub async fn forwarded_proto(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>, actix_web::Error> {
    if let Some(origin) = plain_http_behind_proxy(&req) {
        let res = match *req.method() {
            actix_web::http::Method::GET | actix_web::http::Method::HEAD => {
                let target = format!("{origin}{}", req.uri().path_and_query().map_or("/", |p| p.as_str()));
                HttpResponse::PermanentRedirect().insert_header((header::LOCATION, target)).finish()
            }
            _ => HttpResponse::BadRequest().content_type("text/plain; charset=utf-8").body("This service is only offered over https.\n"),
        };
        return Ok(req.into_response(res).map_into_right_body());
    }
    next.call(req).await.map(|r| r.map_into_left_body())
}

/// The endpoints a browser app (a public client, from its own origin) calls itself: discovery,
/// keys, the token exchange, userinfo and revocation. None of them reads a cookie, so any origin
/// may call them without credentials (`*` never lets a browser send cookies); the sign-in pages,
/// the portal and the console stay same-origin.
const CORS_PATHS: &[&str] =
    &["/.well-known/openid-configuration", crate::oidc::JWKS_PATH, crate::oidc::TOKEN_PATH, crate::oidc::USERINFO_PATH, crate::oidc::REVOKE_PATH];

/// CORS (Fetch standard) for [`CORS_PATHS`]: preflights answered, responses readable.
pub async fn cors(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>, actix_web::Error> {
    let open = req.headers().contains_key(header::ORIGIN) && CORS_PATHS.contains(&req.path());
    if open && req.method() == actix_web::http::Method::OPTIONS {
        let res = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Authorization, Content-Type"))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
            .finish();
        return Ok(req.into_response(res).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    if open {
        res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        res.headers_mut().insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("WWW-Authenticate"));
    }
    Ok(res.map_into_left_body())
}

/// HEAD is answered wherever GET is (RFC 9110 §9.3.2: uptime monitors and load balancers probe
/// with it): the request is routed as a GET, and the HTTP layer, which saw a HEAD, sends the
/// status and headers without the body.
pub async fn head_as_get(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
}

/// The https issuer's origin, when `req` came over plain http through a trusted proxy.
fn plain_http_behind_proxy(req: &actix_web::dev::ServiceRequest) -> Option<String> {
    let state = req.app_data::<actix_web::web::Data<crate::AppState>>()?;
    // The cheap tests first (this runs on every request); the issuer is parsed as the
    // configuration was validated, only for a request that came through a trusted proxy.
    if matches!(req.path(), "/healthz" | "/readyz") || !trusted_proxy(&state.config, peer_ip(req.peer_addr())?) {
        return None;
    }
    // Proxies append: the last value is the one our trusted proxy wrote (a client can send
    // anything before it).
    let values = req.headers().get_all("x-forwarded-proto").filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let last = values.last()?.trim();
    let issuer = url::Url::parse(state.config.issuer()).ok().filter(|u| u.scheme() == "https")?;
    last.eq_ignore_ascii_case("http").then(|| issuer.origin().ascii_serialization())
}

/// A 303 See Other to `location` (the right status after a POST, harmless after a GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).insert_header((header::CACHE_CONTROL, "no-store")).finish()
}

/// The TCP peer's address as the address it is: an IPv4 client of a server listening on `[::]`
/// arrives as `::ffff:203.0.113.5`, which is 203.0.113.5 (else every IPv4 client would share
/// one IPv6 network for risk, lockout and per-address budgets, and match no IPv4 range).
pub fn peer_ip(peer: Option<std::net::SocketAddr>) -> Option<std::net::IpAddr> {
    peer.map(|p| p.ip().to_canonical())
}

/// The client's IP: the TCP peer, unless the peer is a trusted proxy (`server.trusted_proxies`)
/// — then the right-most X-Forwarded-For address that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let peer = peer_ip(req.peer_addr())?;
    let Some(state) = req.app_data::<actix_web::web::Data<crate::AppState>>() else { return Some(peer.to_string()) };
    let trusted = |ip: std::net::IpAddr| trusted_proxy(&state.config, ip);
    if !trusted(peer) {
        return Some(peer.to_string());
    }
    let forwarded: Vec<&str> = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).collect();
    Some(forwarded_client(&forwarded, peer, trusted).to_string())
}

/// Walks an X-Forwarded-For chain from the right (the entries trusted proxies appended) to the
/// first address that is not a trusted proxy. An entry that is not an address (`unknown`, a
/// typo, an obfuscated name) ends the walk at the proxy that wrote it: everything to its left
/// was written by someone latchkey cannot vouch for. Some proxies append `IP:port` or
/// `[IPv6]:port`; those are read as their address.
fn forwarded_client(chain: &[&str], peer: std::net::IpAddr, trusted: impl Fn(std::net::IpAddr) -> bool) -> std::net::IpAddr {
    let mut nearest = peer;
    for entry in chain.iter().rev().map(|e| e.trim()) {
        let ip = match entry.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_canonical(),
            Err(_) => match entry.parse::<std::net::SocketAddr>() {
                Ok(addr) => addr.ip().to_canonical(),
                Err(_) => return nearest,
            },
        };
        if !trusted(ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// Whether `ip` is one of `server.trusted_proxies`, whose forwarding headers latchkey believes.
pub fn trusted_proxy(config: &crate::config::Config, ip: std::net::IpAddr) -> bool {
    config.server.trusted_proxies.iter().filter_map(|p| crate::policy::locations::IpRange::parse(p).ok()).any(|r| r.contains(ip))
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect())
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, required on token responses (RFC 6749 §5.1).
pub fn no_store(builder: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    builder.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))).insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
}

/// Runs `work` with a pooled connection on the runtime's blocking threads, never on an HTTP
/// worker: waiting for a connection, a lock or a slow database holds a blocking thread while the
/// worker goes on serving other requests.
pub async fn db<T, E>(
    state: &actix_web::web::Data<crate::AppState>,
    work: impl FnOnce(&crate::AppState, &mut crate::store::db::Connection) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<crate::store::StoreError> + Send + 'static,
{
    db_lease(state, move |state, lease| work(state, lease)).await
}

/// As [`db`], with a connection the work can hand back while it waits for the password
/// hashing threads (`store::Lease::without`).
pub async fn db_lease<T, E>(
    state: &actix_web::web::Data<crate::AppState>,
    work: impl FnOnce(&crate::AppState, &mut crate::store::Lease) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<crate::store::StoreError> + Send + 'static,
{
    let state = state.clone();
    blocking(move || {
        let mut lease = crate::store::Lease::get(&state.pool)?;
        work(&state, &mut lease)
    })
    .await
}

/// Runs `work` on the runtime's blocking threads as part of this request: it keeps the
/// request's id (its log lines and sign-in log rows), tracing span and language.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<crate::store::StoreError> + Send + 'static,
{
    let span = tracing::Span::current();
    let (request_id, carried) = (observe::current(), crate::i18n::request::carry());
    let (out, carried) = actix_web::web::block(move || {
        let _span = span.enter();
        observe::within(request_id, || crate::i18n::request::resume(carried, work))
    })
    .await
    .unwrap_or_else(|_| (Err(crate::store::StoreError::Interrupted.into()), crate::i18n::request::carry()));
    crate::i18n::request::adopt(carried);
    out
}

/// A page handler that does database work: it runs whole on the blocking threads (`db`), with
/// a copy of the request (method, URI, headers, peer, path parameters, the app's state), and its
/// answer is carried back to the HTTP worker. Every page of the sign-in, the portal and the
/// console is served this way.
pub fn offload<P>(
    page: P,
) -> impl Fn(HttpRequest, actix_web::web::Bytes) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, PageError>>>> + Clone + 'static
where
    P: Fn(&HttpRequest, actix_web::web::Data<crate::AppState>, actix_web::web::Bytes) -> Result<HttpResponse, PageError> + Copy + Send + 'static,
{
    move |req: HttpRequest, body: actix_web::web::Bytes| {
        Box::pin(async move {
            let state = req.app_data::<actix_web::web::Data<crate::AppState>>().expect("AppState is registered").clone();
            let copy = RequestCopy::of(&req);
            let answer = blocking(move || {
                let req = copy.rebuild(state.clone());
                page(&req, state, body).map(Answer::of)
            })
            .await?;
            Ok(answer.into_response())
        })
    }
}

/// The path parameter `name` of the route that matched, percent-decoded as `web::Path` would
/// (the router leaves `%25`, `%2F` and `%2B` encoded; this decodes them, once).
pub fn path_param(req: &HttpRequest, name: &str) -> String {
    let raw = req.match_info().get(name).unwrap_or_default();
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// What a page handler reads of its request, sent to the thread that serves it. The rebuilt
/// request has actix's default app configuration and no resource map: pages must not use
/// `connection_info()`, `url_for()` or `match_pattern()` (latchkey's own config says its
/// address; `web::client_ip` the client's).
struct RequestCopy {
    method: actix_web::http::Method,
    uri: actix_web::http::Uri,
    version: actix_web::http::Version,
    headers: actix_web::http::header::HeaderMap,
    peer: Option<std::net::SocketAddr>,
    params: Vec<(String, String)>,
}

impl RequestCopy {
    fn of(req: &HttpRequest) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            peer: req.peer_addr(),
            params: req.match_info().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn rebuild(self, state: actix_web::web::Data<crate::AppState>) -> HttpRequest {
        let mut r = actix_web::test::TestRequest::default().method(self.method).uri(&self.uri.to_string()).version(self.version).app_data(state);
        for (name, value) in self.headers.iter() {
            r = r.append_header((name.clone(), value.clone()));
        }
        if let Some(peer) = self.peer {
            r = r.peer_addr(peer);
        }
        for (k, v) in self.params {
            r = r.param(k, v);
        }
        r.to_http_request()
    }
}

/// A page's answer, carried back to the HTTP worker.
struct Answer {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: actix_web::web::Bytes,
}

impl Answer {
    fn of(res: HttpResponse) -> Self {
        let (status, headers) = (res.status(), res.headers().clone());
        match actix_web::body::MessageBody::try_into_bytes(res.into_body()) {
            Ok(body) => Self { status, headers, body },
            // Pages are rendered whole; a streamed body cannot be carried back.
            Err(_) => {
                tracing::error!("a page answered with a streamed body, which cannot leave its thread");
                Self { status: StatusCode::INTERNAL_SERVER_ERROR, headers: Default::default(), body: "internal error".into() }
            }
        }
    }

    fn into_response(self) -> HttpResponse {
        let mut res = HttpResponse::with_body(self.status, self.body).map_into_boxed_body();
        *res.headers_mut() = self.headers;
        res
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_path_parameter_is_percent_decoded_once_as_web_path_does() {
        // What the router hands over: everything decoded but `%25`, `%2F` and `%2B`.
        let req = actix_web::test::TestRequest::default().param("id", "a%2Fb%2B%2525 c").to_http_request();
        assert_eq!(super::path_param(&req, "id"), "a/b+%25 c");
        assert_eq!(super::path_param(&req, "missing"), "");
    }

    #[test]
    fn a_forwarded_chain_is_believed_only_as_far_as_trusted_proxies_wrote_it() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let proxy = ip("10.0.0.1");
        let trusted = |a: std::net::IpAddr| a == ip("10.0.0.1") || a == ip("10.0.0.2");
        let client = |chain: &[&str]| super::forwarded_client(chain, proxy, trusted).to_string();
        assert_eq!(client(&["6.6.6.6", "203.0.113.7"]), "203.0.113.7", "the client wrote the left part");
        assert_eq!(client(&["6.6.6.6", "203.0.113.7", " 10.0.0.2"]), "203.0.113.7", "a second trusted hop");
        // Proxies that append a port, as Azure Application Gateway and IIS ARR do.
        assert_eq!(client(&["6.6.6.6", "203.0.113.7:4444"]), "203.0.113.7");
        assert_eq!(client(&["6.6.6.6", "[2001:db8::1]:443"]), "2001:db8::1");
        // What is not an address ends the walk at the proxy that wrote it: never past it.
        assert_eq!(client(&["6.6.6.6", "unknown"]), "10.0.0.1");
        assert_eq!(client(&["6.6.6.6", "5.5.5.5:4444:1", "10.0.0.2"]), "10.0.0.2");
        assert_eq!(client(&["6.6.6.6", ""]), "10.0.0.1");
        assert_eq!(client(&[]), "10.0.0.1");
        assert_eq!(client(&["10.0.0.2"]), "10.0.0.2");
        // An IPv4 address written as IPv6 (a proxy listening on [::]) is the IPv4 address.
        assert_eq!(client(&["::ffff:203.0.113.7"]), "203.0.113.7");
        assert_eq!(client(&["6.6.6.6", "::ffff:10.0.0.2"]), "6.6.6.6", "the trusted hop, whatever its spelling");
    }

    #[test]
    fn an_ipv4_client_of_a_server_on_ipv6_is_its_ipv4_address() {
        let req = actix_web::test::TestRequest::default().peer_addr("[::ffff:203.0.113.5]:40000".parse().unwrap()).to_http_request();
        assert_eq!(super::client_ip(&req).as_deref(), Some("203.0.113.5"));
        let req = actix_web::test::TestRequest::default().peer_addr("[2001:db8::5]:40000".parse().unwrap()).to_http_request();
        assert_eq!(super::client_ip(&req).as_deref(), Some("2001:db8::5"));
    }
}
