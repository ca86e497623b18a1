-- Pending sign-ins remember the client that opened them, so one client can hold only a few
-- open at once (anonymous requests must not grow the database without bound).
ALTER TABLE auth_requests ADD COLUMN ip TEXT NOT NULL DEFAULT '';
CREATE INDEX auth_requests_ip ON auth_requests(ip, expires_at);
