-- DPoP (RFC 9449): sessions bound to a key, and the proofs that login and refresh
-- have used.
--
-- A session whose login carried a DPoP proof is bound to that proof's key for its
-- whole life: `dpop_jkt` is the key's RFC 7638 thumbprint, every access token of the
-- session carries it as `cnf.jkt`, and a refresh is a compare-and-swap that also
-- requires a proof by that key. NULL: a Bearer session.
--
-- `dpop_proofs` makes a login or refresh proof single-use across every instance: the
-- insert of its key is the check (ON CONFLICT DO NOTHING, nothing inserted: seen
-- before). A proof is good only as long as its server nonce, so a row past
-- `expires_at` guards nothing any more and the purge deletes it.

ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;

CREATE TABLE dpop_proofs (
    -- SHA-256 of the proof's key thumbprint and its jti
    proof_key  BYTEA PRIMARY KEY,
    -- unix ms
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expires_at_idx ON dpop_proofs (expires_at);
