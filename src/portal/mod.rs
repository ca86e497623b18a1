//! The signed-in person's own pages.

pub mod security;

pub use security::configure;
