-- Every write to a user reaches the change feed (and its NOTIFY), so that each
-- instance drops its in-memory copy of the row (src/users.rs). The lock first, as for
-- every writer of `changes` (migration 0004).

CREATE FUNCTION baton_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes (kind, subject) VALUES ('user_changed', OLD.id);
    PERFORM pg_notify('baton_changes', '');
    RETURN NULL;
END $$;

CREATE TRIGGER users_lock_changes BEFORE UPDATE OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION baton_lock_changes();
CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION baton_user_changed();
