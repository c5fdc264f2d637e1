-- The change feed, and what signing keys need to be retired at once.
--
-- `changes` holds every change that other instances must act on: a session ended
-- (however: logout, reuse, password change, an operator, a deleted user), or the
-- signing keys changed. Triggers write it in the transaction that makes the change, so
-- no code path can forget to, and NOTIFY `baton_changes` so that every listening
-- instance reads it at once. Each instance reads the rows after the last `seq` it has
-- seen.
--
-- `seq` is the order in which the rows commit: every statement that records a change
-- first takes one transaction-level advisory lock (held until commit), before it locks
-- any row, so a row with a smaller `seq` can never become visible after one with a
-- larger `seq`, and a reader that has seen `seq` n has seen everything before it.
-- `at` is the database's clock, for retention only.

CREATE FUNCTION baton_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS
    $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

CREATE TABLE changes (
    seq     BIGSERIAL PRIMARY KEY,
    kind    TEXT NOT NULL,
    subject UUID,
    -- unix ms
    at      BIGINT NOT NULL DEFAULT baton_now_ms()
);
CREATE INDEX changes_at_idx ON changes (at);

-- 'baton_changes' as a number: the lock every writer of `changes` takes first.
CREATE FUNCTION baton_lock_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4242420013);
    RETURN NULL;
END $$;

CREATE FUNCTION baton_session_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (kind, subject) VALUES ('session_ended', OLD.id);
    PERFORM pg_notify('baton_changes', '');
    RETURN NULL;
END $$;

CREATE FUNCTION baton_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (kind) VALUES ('keys');
    PERFORM pg_notify('baton_changes', '');
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_lock_changes BEFORE UPDATE OF revoked_at OR DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION baton_lock_changes();
CREATE TRIGGER sessions_ended AFTER UPDATE OF revoked_at ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION baton_session_ended();
-- A live session deleted (its user deleted) ends too; the purge deletes only
-- sessions that ended or expired long ago.
CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > baton_now_ms())
    EXECUTE FUNCTION baton_session_ended();

-- A revoked key verifies nothing, and leaves the JWKS, on every instance at once.
ALTER TABLE signing_keys ADD COLUMN revoked_at BIGINT;

-- HS256 secrets are configured, not stored; what is stored is when a secret was first
-- configured as a previous one (it verifies only tokens signed before), and whether it
-- was revoked. `kid` is the ring's `hs256-` id, a digest of the secret.
CREATE TABLE retired_secrets (
    kid         TEXT PRIMARY KEY,
    replaced_at BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TRIGGER signing_keys_lock_changes BEFORE INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION baton_lock_changes();
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION baton_keys_changed();
CREATE TRIGGER retired_secrets_lock_changes BEFORE INSERT OR UPDATE OR DELETE ON retired_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION baton_lock_changes();
CREATE TRIGGER retired_secrets_changed AFTER INSERT OR UPDATE OR DELETE ON retired_secrets
    FOR EACH ROW EXECUTE FUNCTION baton_keys_changed();
