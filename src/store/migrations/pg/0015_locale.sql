-- The language a person chose with the switch on every page ("en" or "ja"); NULL: not chosen,
-- so the app's ui_locales or the browser's Accept-Language decides.
ALTER TABLE users ADD COLUMN locale TEXT;
