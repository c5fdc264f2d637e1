-- The change feed, and what signing keys need to be retired at once (see the
-- PostgreSQL migration of the same number for the whole story).
--
-- `changes` holds every change that other instances must act on, written by triggers
-- in the statement that makes the change. SQLite has one writer at a time, so `seq`
-- (AUTOINCREMENT: never reused, always growing) is the order in which rows commit.
-- `at` is the database's clock, for retention only.

CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    subject BLOB,
    -- unix ms
    at      INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
CREATE INDEX changes_at_idx ON changes (at);

CREATE TRIGGER sessions_ended AFTER UPDATE OF revoked_at ON sessions
    WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO changes (kind, subject) VALUES ('session_ended', NEW.id);
END;

-- A live session deleted (its user deleted) ends too; the purge deletes only sessions
-- that ended or expired long ago.
CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
    WHEN OLD.revoked_at IS NULL
     AND OLD.expires_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN
    INSERT INTO changes (kind, subject) VALUES ('session_ended', OLD.id);
END;

ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER;

CREATE TABLE retired_secrets (
    kid         TEXT PRIMARY KEY,
    replaced_at INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Any change of the keys (SQLite: one trigger per event).
CREATE TRIGGER signing_keys_inserted AFTER INSERT ON signing_keys BEGIN INSERT INTO changes (kind) VALUES ('keys'); END;
CREATE TRIGGER signing_keys_updated AFTER UPDATE ON signing_keys BEGIN INSERT INTO changes (kind) VALUES ('keys'); END;
CREATE TRIGGER signing_keys_deleted AFTER DELETE ON signing_keys BEGIN INSERT INTO changes (kind) VALUES ('keys'); END;
CREATE TRIGGER retired_secrets_inserted AFTER INSERT ON retired_secrets BEGIN INSERT INTO changes (kind) VALUES ('keys'); END;
CREATE TRIGGER retired_secrets_updated AFTER UPDATE ON retired_secrets BEGIN INSERT INTO changes (kind) VALUES ('keys'); END;
