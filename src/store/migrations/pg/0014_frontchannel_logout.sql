-- OpenID Connect Front-Channel Logout 1.0, for apps that can only clear cookies in a browser.
ALTER TABLE clients ADD COLUMN frontchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN frontchannel_logout_session_required BIGINT NOT NULL DEFAULT 0;
