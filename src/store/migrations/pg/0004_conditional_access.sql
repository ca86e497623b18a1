-- Conditional access: policies, named locations, risk inputs, security defaults, and the
-- evaluated context and policy results on each sign-in log row.

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
-- A new installation starts with security defaults on.
INSERT INTO settings (key, value) VALUES ('security_defaults', 'on');

CREATE TABLE ca_policies (
    id          TEXT PRIMARY KEY,
    name        CITEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL CHECK (state IN ('on', 'off', 'report_only')),
    definition  JSONB NOT NULL,                       -- the policy as JSON (policy::model::Policy)
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE named_locations (
    id          TEXT PRIMARY KEY,
    name        CITEXT NOT NULL UNIQUE,
    ranges      TEXT NOT NULL,                        -- JSON list of CIDR ranges
    trusted     BIGINT NOT NULL DEFAULT 0,
    risk        TEXT NOT NULL DEFAULT 'none' CHECK (risk IN ('none', 'low', 'medium', 'high')),
    created_at  BIGINT NOT NULL
);

ALTER TABLE users ADD COLUMN user_risk TEXT NOT NULL DEFAULT 'none';
-- Security defaults' 14-day MFA registration grace counts from here.
ALTER TABLE users ADD COLUMN first_signin_at BIGINT;
ALTER TABLE users ADD COLUMN password_changed_at BIGINT;

ALTER TABLE signin_log ADD COLUMN context TEXT;
ALTER TABLE signin_log ADD COLUMN policies TEXT;
ALTER TABLE signin_log ADD COLUMN blocked_by_policy BIGINT NOT NULL DEFAULT 0;
ALTER TABLE signin_log ADD COLUMN report_only_block BIGINT NOT NULL DEFAULT 0;

-- Housekeeping deletes expired rows on every sign-in; keep those deletes off full scans.
CREATE INDEX authorization_codes_expires ON authorization_codes(expires_at);
CREATE INDEX auth_requests_expires ON auth_requests(expires_at);
