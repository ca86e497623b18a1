-- OpenID Connect Back-Channel Logout 1.0.

ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;

-- Which apps received tokens in a session: the ones told when it ends.
CREATE TABLE session_apps (
    session_id  TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, client_id)
);

-- Logout tokens to deliver, queued in the same transaction that ends the session, delivered by
-- a background worker with retries.
CREATE TABLE logout_deliveries (
    id          INTEGER PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    session_id  TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    done_at     INTEGER,
    result      TEXT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries(next_at) WHERE done_at IS NULL;
