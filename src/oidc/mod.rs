//! The OpenID Connect / OAuth 2.0 protocol, one module per endpoint.

pub mod authorize;
pub mod backchannel;
pub mod client_auth;
pub mod clients;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod jwt;
pub mod keys;
pub mod logout;
pub mod revoke;
pub mod token;
pub mod tokens;
pub mod userinfo;

use actix_web::web;

pub const AUTHORIZE_PATH: &str = "/authorize";
pub const TOKEN_PATH: &str = "/token";
pub const USERINFO_PATH: &str = "/userinfo";
pub const JWKS_PATH: &str = "/jwks";
pub const REVOKE_PATH: &str = "/revoke";
pub const INTROSPECT_PATH: &str = "/introspect";
pub const LOGOUT_PATH: &str = "/logout";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/openid-configuration", web::get().to(discovery::openid_configuration))
        .route(JWKS_PATH, web::get().to(discovery::jwks))
        .route(AUTHORIZE_PATH, web::get().to(crate::web::offload(authorize::get)))
        .route(AUTHORIZE_PATH, web::post().to(crate::web::offload(authorize::post)))
        .route(TOKEN_PATH, web::post().to(token::token))
        .route(USERINFO_PATH, web::get().to(userinfo::userinfo))
        .route(USERINFO_PATH, web::post().to(userinfo::userinfo))
        .route(REVOKE_PATH, web::post().to(revoke::revoke))
        .route(INTROSPECT_PATH, web::post().to(introspect::introspect))
        .route(LOGOUT_PATH, web::get().to(crate::web::offload(logout::get)))
        .route(LOGOUT_PATH, web::post().to(crate::web::offload(logout::post)));
}
