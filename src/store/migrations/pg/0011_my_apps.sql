-- My Apps: how an app is launched, whether it shows, and its logo (served by latchkey itself).

-- OpenID Connect Core §4, initiating login from a third party.
ALTER TABLE clients ADD COLUMN initiate_login_uri TEXT;
ALTER TABLE clients ADD COLUMN visible_in_my_apps BIGINT NOT NULL DEFAULT 1;

CREATE TABLE client_logos (
    client_id     TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    content_type  TEXT NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/svg+xml')),
    data          BYTEA NOT NULL,
    updated_at    BIGINT NOT NULL
);
