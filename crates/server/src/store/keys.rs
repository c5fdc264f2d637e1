//! The `signing_keys` table: EdDSA keys shared by every instance.

use super::{Arg, Db};
use crate::error::Result;

/// A stored key. `sealed_key` is the PKCS#8 private key sealed with the master key.
#[derive(Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub sealed_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: i64,
    pub activates_at: i64,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

impl KeyRow {
    /// The columns in the order of [`INSERT_SQL`] and [`INSERT_FIRST_SQL`].
    fn columns(&self) -> [Arg<'_>; 6] {
        [
            self.kid.as_str().into(),
            self.alg.as_str().into(),
            self.sealed_key.as_slice().into(),
            self.public_key.as_slice().into(),
            self.created_at.into(),
            self.activates_at.into(),
        ]
    }
}

const INSERT_SQL: &str =
    "INSERT INTO signing_keys (kid, alg, sealed_key, public_key, created_at, activates_at)
     VALUES ($1, $2, $3, $4, $5, $6)";

/// The same insert, only into an empty table.
const INSERT_FIRST_SQL: &str =
    "INSERT INTO signing_keys (kid, alg, sealed_key, public_key, created_at, activates_at)
     SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM signing_keys)";

/// Every key, oldest activation first.
pub async fn all(db: &Db) -> Result<Vec<KeyRow>> {
    let rows = db
        .read()
        .fetch_all(
            "SELECT kid, alg, sealed_key, public_key, created_at, activates_at
               FROM signing_keys ORDER BY activates_at, kid",
            &[],
        )
        .await?;
    Ok(rows)
}

/// A cheap fingerprint of the table (count and newest creation), polled to notice a
/// rotation done by another instance.
pub async fn fingerprint(db: &Db) -> Result<(i64, i64)> {
    let fingerprint = db
        .read()
        .fetch_one(
            "SELECT COUNT(*), COALESCE(MAX(created_at), 0) FROM signing_keys",
            &[],
        )
        .await?;
    Ok(fingerprint)
}

pub async fn insert(db: &Db, key: &KeyRow) -> Result<()> {
    db.write().execute(INSERT_SQL, &key.columns()).await?;
    Ok(())
}

/// Inserts `key` only if the table is empty (first start). Safe when several
/// instances start at once: exactly one first key is kept.
pub async fn insert_first(db: &Db, key: &KeyRow) -> Result<bool> {
    let inserted = if db.is_sqlite() {
        // One writer connection: the check and the insert cannot interleave.
        db.write().execute(INSERT_FIRST_SQL, &key.columns()).await?
    } else {
        // The table lock keeps another instance's check out until this one commits.
        let changed = db
            .write()
            .transaction(&[
                ("LOCK TABLE signing_keys IN EXCLUSIVE MODE", &[]),
                (INSERT_FIRST_SQL, &key.columns()),
            ])
            .await?;
        changed[1]
    };
    Ok(inserted == 1)
}

/// Deletes keys whose successor activated before `cutoff`: no unexpired token can
/// carry their signature any more. Returns the deleted kids.
pub async fn delete_superseded(db: &Db, cutoff: i64) -> Result<Vec<String>> {
    let kids: Vec<(String,)> = db
        .write()
        .fetch_all(
            "DELETE FROM signing_keys
              WHERE EXISTS (SELECT 1 FROM signing_keys newer
                             WHERE newer.activates_at > signing_keys.activates_at
                               AND newer.activates_at < $1)
             RETURNING kid",
            &[cutoff.into()],
        )
        .await?;
    Ok(kids.into_iter().map(|(kid,)| kid).collect())
}
