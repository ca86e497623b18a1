-- A client secret's expiry (Unix seconds; NULL: never). An expired secret fails client
-- authentication like a wrong one.
ALTER TABLE clients ADD COLUMN secret_expires_at BIGINT;
