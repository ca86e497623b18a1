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
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    version  TEXT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, md5(random()::text || clock_timestamp()::text));

CREATE FUNCTION config_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_version SET version = md5(random()::text || clock_timestamp()::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER config_clients_insert AFTER INSERT ON clients FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_clients_update AFTER UPDATE ON clients FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_clients_delete AFTER DELETE ON clients FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_policies_insert AFTER INSERT ON ca_policies FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_policies_update AFTER UPDATE ON ca_policies FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_policies_delete AFTER DELETE ON ca_policies FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_locations_insert AFTER INSERT ON named_locations FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_locations_update AFTER UPDATE ON named_locations FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_locations_delete AFTER DELETE ON named_locations FOR EACH ROW EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_settings_insert AFTER INSERT ON settings FOR EACH ROW WHEN (NEW.key = 'security_defaults')
    EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_settings_update AFTER UPDATE ON settings FOR EACH ROW WHEN (NEW.key = 'security_defaults')
    EXECUTE FUNCTION config_version_bump();
CREATE TRIGGER config_settings_delete AFTER DELETE ON settings FOR EACH ROW WHEN (OLD.key = 'security_defaults')
    EXECUTE FUNCTION config_version_bump();
