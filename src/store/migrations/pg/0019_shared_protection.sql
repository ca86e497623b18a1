-- Failed passwords for the password-spray detector, in the database so that every instance
-- counts them together: keyed hashes (HMAC with a key derived from the installation's master
-- secret) of the account, the IP and the password tried, never the values; kept for the
-- detection window (housekeeping removes older rows).
CREATE TABLE password_failures (
    at        BIGINT NOT NULL,
    account   BYTEA NOT NULL,
    ip        BYTEA NOT NULL,
    password  BYTEA NOT NULL
);
CREATE INDEX password_failures_ip ON password_failures (ip, at);
CREATE INDEX password_failures_password ON password_failures (password, at);
CREATE INDEX password_failures_at ON password_failures (at);
