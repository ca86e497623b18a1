-- The admin console: app details and assignment, groups, roles, invitations, audit before/after.

ALTER TABLE clients ADD COLUMN logo_url TEXT;
ALTER TABLE clients ADD COLUMN launch_url TEXT;
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE clients ADD COLUMN assignment_required BIGINT NOT NULL DEFAULT 0;
-- After a secret rotation with a grace period, the old secret keeps working until then.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;

CREATE TABLE groups (
    id           TEXT PRIMARY KEY,
    name         CITEXT NOT NULL UNIQUE,
    description  TEXT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

-- Who may sign in to an app that requires assignment: users, or members of groups.
CREATE TABLE app_assignments (
    client_id       TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    principal_type  TEXT NOT NULL CHECK (principal_type IN ('user', 'group')),
    principal_id    TEXT NOT NULL,
    PRIMARY KEY (client_id, principal_type, principal_id)
);

CREATE TABLE user_roles (
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('global_admin', 'app_admin')),
    PRIMARY KEY (user_id, role)
);
INSERT INTO user_roles (user_id, role) SELECT id, 'global_admin' FROM users WHERE is_admin = 1;

-- One-time links with which an invited user sets their own password.
CREATE TABLE invites (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

ALTER TABLE audit_log ADD COLUMN before TEXT;
ALTER TABLE audit_log ADD COLUMN after TEXT;

-- Admin sessions end after inactivity.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
