//! The signed-in person's own pages.

pub mod apps;
pub mod reset;
pub mod security;
pub mod sessions;

pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    apps::configure(cfg);
    security::configure(cfg);
    sessions::configure(cfg);
    reset::configure(cfg);
}
