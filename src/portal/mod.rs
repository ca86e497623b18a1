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

/// Sends mail without waiting for it: how long a mail server takes must not tell whether an
/// account exists (or has an address).
pub(crate) fn send_later(state: &actix_web::web::Data<crate::AppState>, to: String, subject: String, body: String) {
    // The local outbox is written at once (a file, no network wait to measure).
    if let crate::mail::Mailer::Outbox { .. } = state.mail {
        if let Err(e) = state.mail.send(&to, &subject, body) {
            tracing::error!(error = %e, subject, "could not send an e-mail");
        }
        return;
    }
    // A thread of its own: pages run on the blocking threads, outside the async runtime.
    let state = state.clone();
    let sending = std::thread::Builder::new().name("latchkey-mail".into()).spawn(move || {
        if let Err(e) = state.mail.send(&to, &subject, body) {
            tracing::error!(error = %e, subject, "could not send an e-mail");
        }
    });
    if let Err(e) = sending {
        tracing::error!(error = %e, "could not start sending an e-mail");
    }
}
