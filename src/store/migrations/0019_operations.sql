-- The request id of the request that wrote each sign-in row: the correlation id people see on
-- error and block pages, so a screenshot leads an admin to the row.
ALTER TABLE signin_log ADD COLUMN request_id TEXT;
CREATE INDEX signin_log_request_id ON signin_log (request_id) WHERE request_id IS NOT NULL;
-- Retention deletes the audit log by age (the sign-in log has its index since 0001).
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
