-- A rotation becomes one statement.
--
-- A refresh token no longer records when it was used: every token whose generation is
-- behind its session's generation is used, and the session records when it last
-- rotated (for the reuse grace window). Inserting a token of a newer generation
-- advances its session (trigger below), so `INSERT ... SELECT ... FROM sessions WHERE
-- generation = <the presented token's>` is the whole compare-and-swap, atomic as one
-- statement.

ALTER TABLE sessions ADD COLUMN rotated_at INTEGER;

UPDATE sessions
   SET rotated_at = (SELECT MAX(t.used_at) FROM refresh_tokens t WHERE t.session_id = sessions.id);

ALTER TABLE refresh_tokens DROP COLUMN used_at;

-- Every new token marks its session used; a token of a newer generation also moves
-- the session to that generation (which makes every older token "used").
CREATE TRIGGER refresh_tokens_advance_session AFTER INSERT ON refresh_tokens
BEGIN
    UPDATE sessions
       SET rotated_at   = CASE WHEN NEW.generation > generation THEN NEW.created_at ELSE rotated_at END,
           generation   = MAX(generation, NEW.generation),
           last_used_at = NEW.created_at
     WHERE id = NEW.session_id;
END;
