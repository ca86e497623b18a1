//! Integration tests: the real server on a real port, driven as relying parties and browsers do.
//! One test binary (each file in tests/ would be a separate link).

mod admin;
mod attacks;
mod attacks_portal;
mod authorize_errors;
mod axe;
mod browser;
mod browser_console;
mod browser_console_apps;
mod browser_console_pages;
mod browser_portal;
mod cdp;
mod cli;
mod common;
mod consent;
mod console;
mod console_apps;
mod console_policies;
mod console_users;
mod faults;
mod flow;
mod gate;
mod hygiene;
mod i18n;
mod lifecycle;
mod logout;
mod mfa;
mod my_apps;
mod ops;
mod policy;
mod protection;
mod recovery;
mod sessions;
mod telemetry;
mod tls;
mod token_errors;
