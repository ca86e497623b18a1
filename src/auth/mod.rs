//! How a person proves who they are: passwords, the sign-in pages, SSO sessions.

pub mod access;
pub mod budget;
pub mod consent;
pub mod flow;
pub mod login;
pub mod mfa;
pub mod password;
pub mod password_step;
pub mod protection;
pub mod session;
pub mod users;
pub mod webauthn;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(crate::web::offload(login::show)))
        .route("/login", web::post().to(crate::web::offload(login::submit)))
        .route("/password/change", web::get().to(crate::web::offload(login::show_change_password)))
        .route("/password/change", web::post().to(crate::web::offload(login::change_password)))
        .route("/login/mfa", web::get().to(crate::web::offload(mfa::show_second_factor)))
        .route("/login/mfa", web::post().to(crate::web::offload(mfa::submit_second_factor)))
        .route("/mfa/setup", web::get().to(crate::web::offload(mfa::show_setup)))
        .route("/mfa/setup", web::post().to(crate::web::offload(mfa::submit_setup)))
        .route("/mfa/setup/skip", web::post().to(crate::web::offload(mfa::skip_setup)))
        .route("/consent", web::get().to(crate::web::offload(consent::show)))
        .route("/consent", web::post().to(crate::web::offload(consent::decide)))
        .route("/mfa/recovery", web::get().to(crate::web::offload(mfa::show_recovery)))
        .route("/mfa/recovery", web::post().to(crate::web::offload(mfa::continue_after_recovery)))
        .configure(webauthn::configure);
}
