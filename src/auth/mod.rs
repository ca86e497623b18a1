//! How a person proves who they are: passwords, the sign-in pages, SSO sessions.

pub mod login;
pub mod password;
pub mod session;
pub mod users;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(login::home))
        .route("/login", web::get().to(login::show))
        .route("/login", web::post().to(login::submit))
        .route("/password/change", web::get().to(login::show_change_password))
        .route("/password/change", web::post().to(login::change_password));
}
