//! Integration tests: the real server on a real port, driven as relying parties and browsers do.
//! One test binary (each file in tests/ would be a separate link).

mod common;
mod flow;
mod authorize_errors;
mod token_errors;
mod lifecycle;
mod cli;
mod mfa;
mod cdp;
mod browser;
mod admin;
mod policy;
mod protection;
