-- A rotation becomes one statement (see the SQLite migration of the same number).
--
-- A refresh token no longer records when it was used: every token whose generation is
-- behind its session's generation is used, and the session records when it last
-- rotated (for the reuse grace window). On PostgreSQL the rotation is one statement
-- with a data-modifying CTE: `UPDATE sessions ... WHERE generation = $g RETURNING`
-- feeding the `INSERT` of the successor; the UPDATE's row lock makes it a
-- compare-and-swap under concurrency.

ALTER TABLE sessions ADD COLUMN rotated_at BIGINT;

UPDATE sessions s
   SET rotated_at = (SELECT MAX(t.used_at) FROM refresh_tokens t WHERE t.session_id = s.id);

ALTER TABLE refresh_tokens DROP COLUMN used_at;
