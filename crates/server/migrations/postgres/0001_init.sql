-- Baton schema (PostgreSQL). Times are unix milliseconds (UTC) as BIGINT, the same
-- representation as on SQLite, so that one set of queries serves both.

CREATE TABLE users (
    id                 UUID PRIMARY KEY,
    username           TEXT NOT NULL,
    -- lower-cased username: uniqueness regardless of case
    username_canonical TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username_canonical_key ON users (username_canonical);

-- One login on one device: the family of refresh tokens that rotation produces.
CREATE TABLE sessions (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_name    TEXT,
    user_agent     TEXT,
    created_at     BIGINT NOT NULL,
    last_used_at   BIGINT NOT NULL,
    -- absolute end of the session; rotation never moves it
    expires_at     BIGINT NOT NULL,
    -- generation of the refresh tokens that may rotate now; a rotation is a
    -- compare-and-swap on this column
    generation     BIGINT NOT NULL DEFAULT 0,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- Only the SHA-256 of a refresh token is stored.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- idle limit: unused past this, the token is expired
    expires_at BIGINT NOT NULL,
    -- set when the token (or its generation) was rotated
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_session_generation_idx ON refresh_tokens (session_id, generation);
CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at);

CREATE TABLE notes (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX notes_user_created_idx ON notes (user_id, created_at DESC);

-- Access-token signing keys (EdDSA), shared by every instance. The private key is
-- sealed (AES-256-GCM) with the master key, which never touches the database.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    sealed_key   BYTEA NOT NULL,
    public_key   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    -- signs from this time on (published in the JWKS from created_at)
    activates_at BIGINT NOT NULL
);
CREATE INDEX signing_keys_activates_at_idx ON signing_keys (activates_at);
