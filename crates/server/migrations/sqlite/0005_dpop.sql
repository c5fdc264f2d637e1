-- DPoP (RFC 9449): sessions bound to a key, and the proofs that login and refresh
-- have used (see the PostgreSQL migration of the same number).

-- RFC 7638 thumbprint of the key the session's login proved; NULL: a Bearer session.
-- Every refresh of a bound session must carry a proof by this key.
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;

-- One row per proof accepted by login or refresh, on any instance: a proof presented
-- twice is refused. A proof is good only as long as its nonce, so a row whose proof
-- could no longer be accepted anyway (past expires_at) is purged.
CREATE TABLE dpop_proofs (
    -- SHA-256 of the proof's key thumbprint and its jti
    proof_key  BLOB PRIMARY KEY NOT NULL,
    -- unix ms
    expires_at INTEGER NOT NULL
);
CREATE INDEX dpop_proofs_expires_at_idx ON dpop_proofs (expires_at);
