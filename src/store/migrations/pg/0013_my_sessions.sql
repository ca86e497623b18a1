-- My sessions and sign-ins: where each session was started, and the sign-ins a person
-- reported as not theirs ("This wasn't me").

ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE signin_log ADD COLUMN reported_at BIGINT;

-- A session's last use for an app is its newest grant.
CREATE INDEX grants_session ON grants(session_id);
