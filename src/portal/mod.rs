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
    // One mail thread, fed by a bounded queue: pages run on the blocking threads, outside the
    // async runtime, and a large import must not open a thread (or an SMTP connection) per row.
    let queue = MAIL_QUEUE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Mail>(MAIL_QUEUE_LEN);
        let sender = std::thread::Builder::new().name("latchkey-mail".into()).spawn(move || {
            for (state, to, subject, body) in rx {
                if let Err(e) = state.mail.send(&to, &subject, body) {
                    tracing::error!(error = %e, subject, "could not send an e-mail");
                }
            }
        });
        if let Err(e) = sender {
            tracing::error!(error = %e, "could not start the mail thread");
        }
        std::sync::Mutex::new(tx)
    });
    let queued = queue.lock().map_err(|_| ()).and_then(|q| q.try_send((state.clone(), to, subject.clone(), body)).map_err(|_| ()));
    if queued.is_err() {
        tracing::error!(subject, "could not send an e-mail: the mail queue is full or its thread is gone");
    }
}

type Mail = (actix_web::web::Data<crate::AppState>, String, String, String);

/// Mails waiting for the mail thread; more are dropped (and logged).
const MAIL_QUEUE_LEN: usize = 10_000;

static MAIL_QUEUE: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::SyncSender<Mail>>> = std::sync::OnceLock::new();
