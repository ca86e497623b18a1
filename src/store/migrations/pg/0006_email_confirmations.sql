-- A new password-reset e-mail address waits here until the code sent to it comes back.
CREATE TABLE email_confirmations (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0
);
-- (Earlier builds kept these in settings.)
-- ILIKE: SQLite's LIKE ignores ASCII case.
DELETE FROM settings WHERE key ILIKE 'pending_email:%';
