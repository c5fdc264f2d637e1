-- A credential version per user, and the version each session was created under (see
-- the PostgreSQL migration of the same number for the whole story).

ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
