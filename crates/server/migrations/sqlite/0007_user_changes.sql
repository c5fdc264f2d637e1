-- Every write to a user reaches the change feed, so that each instance drops its
-- in-memory copy of the row (src/users.rs).
CREATE TRIGGER users_changed AFTER UPDATE ON users
BEGIN
    INSERT INTO changes (kind, subject) VALUES ('user_changed', NEW.id);
END;

CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN
    INSERT INTO changes (kind, subject) VALUES ('user_changed', OLD.id);
END;
