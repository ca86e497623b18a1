-- The sign-in gate.

-- Why an attempt failed, as a word (the reason column is for people and may carry risk
-- detections): the brute-force detector counts 'wrong_password'.
ALTER TABLE signin_log ADD COLUMN failure TEXT;
UPDATE signin_log SET failure = 'wrong_password' WHERE reason = 'wrong password';

-- A one-time password printed for an administrator stops working at this time.
ALTER TABLE users ADD COLUMN password_expires_at BIGINT;

-- How a grant was obtained: a refresh of a legacy (password grant) grant stays legacy for
-- conditional access.
ALTER TABLE grants ADD COLUMN client_app_type TEXT NOT NULL DEFAULT 'browser';
