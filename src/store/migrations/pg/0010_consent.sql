-- Consent for apps that are not the organisation's own (OIDC Core §3.1.2.4).

ALTER TABLE clients ADD COLUMN third_party BIGINT NOT NULL DEFAULT 0;
-- An administrator consented for everyone in the organisation.
ALTER TABLE clients ADD COLUMN consent_for_everyone BIGINT NOT NULL DEFAULT 0;

CREATE TABLE consents (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,                        -- JSON list of the scopes approved
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
