-- A credential version per user, and the version each session was created under.
--
-- A password change moves the user's version on, in the transaction that writes the new
-- hash and ends the user's other sessions. A login creates its session only if the
-- version it verified the password under is still the user's (the INSERT ... SELECT
-- takes a share lock on the user's row, so a change in progress makes it wait and then
-- find the version moved), and a rotation only continues a session whose version is
-- the user's. So a login that checked the old password can never leave a session
-- behind a change. Existing users and sessions start at 0, alike.

ALTER TABLE users ADD COLUMN credential_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN credential_version BIGINT NOT NULL DEFAULT 0;
