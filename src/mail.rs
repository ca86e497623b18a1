//! Outgoing e-mail (lettre): over SMTP when `mail.smtp_url` is set, otherwise as .eml files in
//! `<data_dir>/outbox`, which is what a deployment without mail (and the tests) read.

use crate::config::Config;
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::{FileTransport, SmtpTransport, Transport};
use std::path::PathBuf;

pub enum Mailer {
    Smtp { transport: SmtpTransport, from: Mailbox },
    Outbox { dir: PathBuf, from: Mailbox },
}

impl Mailer {
    pub fn new(config: &Config) -> Result<Self, String> {
        let from: Mailbox = config.mail.from.parse().map_err(|e| format!("mail.from: {e}"))?;
        Ok(match config.mail.smtp_url.expose() {
            Some(url) => Self::Smtp { transport: SmtpTransport::from_url(url).map_err(|e| format!("mail.smtp_url: {e}"))?.build(), from },
            None => Self::Outbox { dir: config.server.data_dir.join("outbox"), from },
        })
    }

    /// Sends a plain-text message. Blocking: call it off the async workers.
    pub fn send(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let from = match self {
            Self::Smtp { from, .. } | Self::Outbox { from, .. } => from.clone(),
        };
        let message = Message::builder().from(from).to(to).subject(subject).header(ContentType::TEXT_PLAIN).body(body).map_err(|e| e.to_string())?;
        match self {
            Self::Smtp { transport, .. } => transport.send(&message).map(|_| ()).map_err(|e| e.to_string()),
            Self::Outbox { dir, .. } => {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create outbox {}: {e}", dir.display()))?;
                FileTransport::new(dir).send(&message).map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }
}
