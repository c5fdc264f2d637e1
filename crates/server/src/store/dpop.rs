//! The `dpop_proofs` table: the proofs login and refresh have accepted, on any
//! instance, so that each is accepted once (RFC 9449 section 11.1). Resource calls
//! keep theirs in memory instead ([`crate::dpop`]).

use super::Db;
use crate::error::Result;

/// Records a proof by its key (a digest of its key's thumbprint and its `jti`), kept
/// until `expires_at` (unix ms). False when it was recorded before: a replay.
#[tracing::instrument(skip_all)]
pub async fn record(db: &Db, proof_key: &[u8; 32], expires_at: i64) -> Result<bool> {
    let inserted = db
        .write()
        .execute(
            "INSERT INTO dpop_proofs (proof_key, expires_at) VALUES ($1, $2)
             ON CONFLICT (proof_key) DO NOTHING",
            &[proof_key[..].into(), expires_at.into()],
        )
        .await?;
    Ok(inserted == 1)
}

/// Deletes the proofs whose nonce has expired: no one can present them any more.
#[tracing::instrument(skip(db))]
pub async fn purge(db: &Db, now: i64) -> Result<u64> {
    let deleted = db
        .write()
        .execute(
            "DELETE FROM dpop_proofs WHERE expires_at < $1",
            &[now.into()],
        )
        .await?;
    Ok(deleted)
}
