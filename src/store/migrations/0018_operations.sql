-- The request id of the request that wrote each sign-in row: the correlation id people see on
-- error and block pages, so a screenshot leads an admin to the row.
ALTER TABLE signin_log ADD COLUMN request_id TEXT;
CREATE INDEX signin_log_request_id ON signin_log (request_id) WHERE request_id IS NOT NULL;
-- Retention deletes the audit log by age (the sign-in log has its index since 0001).
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);

-- What every sign-in and grant reads but admins rarely change (apps, policies, named locations,
-- security defaults) is cached in memory; this token changes, in the same transaction, with
-- every change to them, so each reader sees at once whether its copy is current — whichever
-- process made the change. A random token, not a counter: a change rolled back never comes
-- back as "current".
CREATE TABLE config_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  TEXT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, lower(hex(randomblob(16))));
CREATE TRIGGER config_clients_insert AFTER INSERT ON clients BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_clients_update AFTER UPDATE ON clients BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_clients_delete AFTER DELETE ON clients BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_policies_insert AFTER INSERT ON ca_policies BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_policies_update AFTER UPDATE ON ca_policies BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_policies_delete AFTER DELETE ON ca_policies BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_locations_insert AFTER INSERT ON named_locations BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_locations_update AFTER UPDATE ON named_locations BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_locations_delete AFTER DELETE ON named_locations BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_settings_insert AFTER INSERT ON settings WHEN NEW.key = 'security_defaults'
    BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_settings_update AFTER UPDATE ON settings WHEN NEW.key = 'security_defaults'
    BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
CREATE TRIGGER config_settings_delete AFTER DELETE ON settings WHEN OLD.key = 'security_defaults'
    BEGIN UPDATE config_version SET version = lower(hex(randomblob(16))); END;
