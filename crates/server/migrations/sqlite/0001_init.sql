-- Baton schema (SQLite). Times are unix milliseconds (UTC); ids are UUIDs stored as
-- 16-byte blobs. The PostgreSQL migration of the same number has the same shape.

CREATE TABLE users (
    id                 BLOB PRIMARY KEY NOT NULL,
    username           TEXT NOT NULL,
    -- lower-cased username: uniqueness regardless of case
    username_canonical TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username_canonical_key ON users (username_canonical);

-- One login on one device: the family of refresh tokens that rotation produces.
CREATE TABLE sessions (
    id             BLOB PRIMARY KEY NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_name    TEXT,
    user_agent     TEXT,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER NOT NULL,
    -- absolute end of the session; rotation never moves it
    expires_at     INTEGER NOT NULL,
    -- generation of the refresh tokens that may rotate now; a rotation is a
    -- compare-and-swap on this column
    generation     INTEGER NOT NULL DEFAULT 0,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- Only the SHA-256 of a refresh token is stored.
CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- idle limit: unused past this, the token is expired
    expires_at INTEGER NOT NULL,
    -- set when the token (or its generation) was rotated
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_session_generation_idx ON refresh_tokens (session_id, generation);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE notes (
    id         BLOB PRIMARY KEY NOT NULL,
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX notes_user_created_idx ON notes (user_id, created_at DESC);

-- Access-token signing keys (EdDSA), shared by every instance. The private key is
-- sealed (AES-256-GCM) with the master key, which never touches the database.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    sealed_key   BLOB NOT NULL,
    public_key   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    -- signs from this time on (published in the JWKS from created_at)
    activates_at INTEGER NOT NULL
);
CREATE INDEX signing_keys_activates_at_idx ON signing_keys (activates_at);
