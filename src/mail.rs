//! Outgoing e-mail (lettre): over SMTP when `mail.smtp_url` is set, otherwise as .eml files in
//! `<data_dir>/outbox`, which is what a deployment without mail (and the tests) read. The
//! outbox holds reset codes: it is 0700 and each message 0600.

use crate::config::Config;
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::{SmtpTransport, Transport};
use std::io::Write;
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
            None => {
                let dir = config.server.data_dir.join("outbox");
                // An existing installation's outbox and messages are tightened at start.
                if dir.exists() {
                    crate::store::private_dir(&dir).map_err(|e| format!("cannot secure outbox {}: {e}", dir.display()))?;
                    for entry in std::fs::read_dir(&dir).map_err(|e| format!("cannot read outbox {}: {e}", dir.display()))?.flatten() {
                        if entry.file_type().is_ok_and(|t| t.is_file()) {
                            crate::store::private_file(&entry.path()).map_err(|e| format!("cannot secure {}: {e}", entry.path().display()))?;
                        }
                    }
                }
                Self::Outbox { dir, from }
            }
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
                crate::store::private_dir(dir).map_err(|e| format!("cannot create outbox {}: {e}", dir.display()))?;
                // Written here rather than by lettre's FileTransport so the file is 0600 from
                // its creation, whatever the umask.
                let path = dir.join(format!("{}.eml", crate::crypto::random_token()));
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                file.write_all(&message.formatted()).map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
        }
    }
}
