//! The signed-in person's own pages.

pub mod reset;
pub mod security;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    security::configure(cfg);
    reset::configure(cfg);
}
