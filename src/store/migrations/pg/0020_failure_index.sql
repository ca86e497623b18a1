-- The brute-force detector counts a user's wrong passwords in the detection window on every
-- password sign-in. Through (user_id, at) that read every sign-in of the user in the window, a
-- cost that grew with how often the user signs in; this index holds the wrong passwords alone.
CREATE INDEX signin_log_user_wrong_password ON signin_log (user_id, at) WHERE failure = 'wrong_password';
