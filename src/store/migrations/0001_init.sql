-- Times are Unix seconds (UTC). Secrets are stored only as hashes.

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,            -- UUID; the OIDC `sub`
    username             TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email                TEXT,
    email_verified       INTEGER NOT NULL DEFAULT 0,
    name                 TEXT,
    password_hash        TEXT NOT NULL,               -- argon2id PHC string
    is_admin             INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    disabled             INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,       -- client_id
    name                      TEXT NOT NULL UNIQUE,
    secret_hash               TEXT,                   -- NULL for public clients
    redirect_uris             TEXT NOT NULL,          -- JSON array of exact URIs
    post_logout_redirect_uris TEXT NOT NULL,          -- JSON array of exact URIs
    grant_types               TEXT NOT NULL,          -- JSON array
    is_public                 INTEGER NOT NULL,
    enabled                   INTEGER NOT NULL DEFAULT 1,
    created_at                INTEGER NOT NULL
);

-- Single sign-on sessions; the browser holds a random cookie whose hash is token_hash.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,                     -- the `sid` claim
    token_hash  TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    auth_time   INTEGER NOT NULL,
    amr         TEXT NOT NULL,                        -- JSON array (RFC 8176)
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER
);
CREATE INDEX sessions_user ON sessions(user_id);

-- An authorization request waiting for the person to sign in.
CREATE TABLE auth_requests (
    id           TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,                       -- binds the request to one browser
    csrf_token   TEXT NOT NULL,
    params       TEXT NOT NULL,                       -- JSON of the validated request
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);

-- One grant per redeemed code (or per client_credentials token family); revoking it
-- kills every refresh and access token issued under it.
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    session_id  TEXT,
    scope       TEXT NOT NULL,
    auth_time   INTEGER,
    amr         TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE INDEX grants_client ON grants(client_id);
CREATE INDEX grants_user ON grants(user_id);

CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id     TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    grant_id       TEXT REFERENCES grants(id) ON DELETE CASCADE  -- set once redeemed
);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    rotated_at  INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens(grant_id);

-- Access tokens are self-contained JWTs; only revoked ones are recorded, until they expire.
CREATE TABLE revoked_access_tokens (
    jti         TEXT PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_pem  TEXT NOT NULL,
    encrypted    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER
);

CREATE TABLE signin_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    user_id     TEXT,
    username    TEXT,
    client_id   TEXT,
    ip          TEXT,
    user_agent  TEXT,
    result      TEXT NOT NULL,                        -- success | failure | interrupted
    reason      TEXT
);
CREATE INDEX signin_log_at ON signin_log(at);
CREATE INDEX signin_log_user ON signin_log(user_id);
