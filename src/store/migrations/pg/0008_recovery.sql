-- Account recovery and credential hygiene.

-- An authenticator-app enrolment in progress: its own secret, bound to one sign-in flow or one
-- session, for 10 minutes. Only a confirmed secret becomes a method (totp_secrets).
CREATE TABLE totp_enrolments (
    binding     TEXT PRIMARY KEY,                     -- 'flow:<id>' or 'session:<id>'
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX totp_enrolments_expires ON totp_enrolments(expires_at);
-- Unconfirmed secrets were shown to whoever asked and never expired: gone.
DELETE FROM totp_secrets WHERE confirmed = 0;

-- Durable attempt budgets, independent of the rows they concern: per account and per IP, per
-- kind of attempt (password resets, wrong codes of each method). A spent budget pauses that kind
-- of attempt, each pause longer than the one before.
CREATE TABLE attempt_budgets (
    subject       TEXT NOT NULL,                      -- 'user:<id>', 'name:<hash>', 'ip:<addr>'
    kind          TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    spent         BIGINT NOT NULL DEFAULT 0,
    paused_until  BIGINT NOT NULL DEFAULT 0,
    pauses        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, kind)
);

-- E-mailed reset codes: how many this reset has sent, and when the last one went.
ALTER TABLE reset_requests ADD COLUMN email_sends BIGINT NOT NULL DEFAULT 0;
ALTER TABLE reset_requests ADD COLUMN email_sent_at BIGINT;
