-- Identity protection and self-service password reset.

-- Smart lockout, counted separately for familiar and unfamiliar locations.
CREATE TABLE lockouts (
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    familiar      BIGINT NOT NULL,
    failures      BIGINT NOT NULL DEFAULT 0,
    locked_until  BIGINT NOT NULL DEFAULT 0,
    lockouts      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, familiar)
);

-- Where and on what a user has signed in successfully: what "familiar" means.
CREATE TABLE signin_history (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    network   TEXT NOT NULL,
    platform  TEXT NOT NULL,
    last_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, network, platform)
);

-- The risk detected when a session's sign-in happened.
ALTER TABLE sessions ADD COLUMN sign_in_risk TEXT NOT NULL DEFAULT 'none';
ALTER TABLE sessions ADD COLUMN risk_reasons TEXT;

-- Self-service password reset in progress, bound to one browser.
CREATE TABLE reset_requests (
    id                  TEXT PRIMARY KEY,
    browser_hash        TEXT NOT NULL,
    csrf_token          TEXT NOT NULL,
    username            TEXT NOT NULL,
    user_id             TEXT REFERENCES users(id) ON DELETE CASCADE,   -- NULL: no such account
    ip                  TEXT,
    verified            TEXT NOT NULL DEFAULT '[]',                     -- JSON list of methods passed
    email_code_hash     TEXT,
    email_code_expires  BIGINT,
    attempts            BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL
);
CREATE INDEX reset_requests_username ON reset_requests(username);
CREATE INDEX reset_requests_ip ON reset_requests(ip);

-- Detectors count a user's recent failures at every password attempt: an index on (user, time)
-- keeps that a range scan however long the log grows.
CREATE INDEX signin_log_user_at ON signin_log(user_id, at);
