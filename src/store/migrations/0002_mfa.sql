-- Multi-factor authentication: authenticator apps, WebAuthn credentials, recovery codes.

-- Set when this user must use a second factor; one without a method is taken through registration.
ALTER TABLE users ADD COLUMN mfa_required INTEGER NOT NULL DEFAULT 0;

-- RFC 6238 secrets. Unconfirmed while the user has not yet entered a first code.
CREATE TABLE totp_secrets (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,                        -- base32
    confirmed   INTEGER NOT NULL DEFAULT 0,
    last_step   INTEGER NOT NULL DEFAULT 0,           -- the newest accepted time step: no replay
    created_at  INTEGER NOT NULL
);

CREATE TABLE webauthn_credentials (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('passkey', 'security_key')),
    name           TEXT NOT NULL,
    credential_id  TEXT NOT NULL UNIQUE,              -- base64url; unique across all users
    passkey        TEXT NOT NULL,                     -- webauthn-rs Passkey (public key, counter)
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials(user_id);

CREATE TABLE recovery_codes (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

-- WebAuthn ceremony state: single use, short-lived.
CREATE TABLE webauthn_ceremonies (
    id          TEXT PRIMARY KEY,
    user_id     TEXT,
    purpose     TEXT NOT NULL,
    state       TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor_id    TEXT,
    user_id     TEXT,
    action      TEXT NOT NULL,
    detail      TEXT
);
CREATE INDEX audit_log_user ON audit_log(user_id);

-- How a successful sign-in was proven (RFC 8176 amr values, JSON).
ALTER TABLE signin_log ADD COLUMN methods TEXT;
