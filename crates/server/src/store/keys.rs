//! The `signing_keys` table: EdDSA keys shared by every instance; and
//! `retired_secrets`: when each HS256 secret was replaced, and whether it was revoked.

use super::pool::row;
use super::{Arg, Db};
use crate::error::Result;

row! {
    /// A stored key. `sealed_key` is the PKCS#8 private key sealed with the master key.
    #[derive(Clone)]
    pub struct KeyRow {
        pub kid: String,
        pub alg: String,
        pub sealed_key: Vec<u8>,
        pub public_key: Vec<u8>,
        pub created_at: i64,
        pub activates_at: i64,
        pub revoked_at: Option<i64>,
    }
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("revoked_at", &self.revoked_at)
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
            "SELECT kid, alg, sealed_key, public_key, created_at, activates_at, revoked_at
               FROM signing_keys ORDER BY activates_at, kid",
            &[],
        )
        .await?;
    Ok(rows)
}

pub async fn insert(db: &Db, key: &KeyRow) -> Result<()> {
    db.write().execute(INSERT_SQL, &key.columns()).await?;
    Ok(())
}

/// What [`revoke`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked now; `replaced` when it was the key signing now and `replacement` took
    /// its place.
    Now {
        replaced: bool,
    },
    /// It was revoked already.
    Already,
    NotFound,
}

/// Revokes the key `kid` at `now`; if it is the key that signs now (no key that ever
/// signed activated after it), `replacement` (activating at `now`) is stored in the
/// same transaction, so that a signing key is never missing.
pub async fn revoke(db: &Db, kid: &str, now: i64, replacement: &KeyRow) -> Result<Revoked> {
    let mut insert_args = replacement.columns().to_vec();
    insert_args.extend::<[Arg; 2]>([kid.into(), now.into()]);
    let changed = db
        .write()
        .transaction(&[
            (
                "UPDATE signing_keys SET revoked_at = $2 WHERE kid = $1 AND revoked_at IS NULL",
                &[kid.into(), now.into()],
            ),
            (
                "INSERT INTO signing_keys (kid, alg, sealed_key, public_key, created_at, activates_at)
                 SELECT $1, $2, $3, $4, $5, $6
                  WHERE EXISTS (
                        SELECT 1 FROM signing_keys k
                         WHERE k.kid = $7 AND k.revoked_at = $8 AND k.activates_at <= $8
                           AND NOT EXISTS (
                               SELECT 1 FROM signing_keys n
                                WHERE n.activates_at > k.activates_at AND n.activates_at <= $8
                                  AND (n.revoked_at IS NULL OR n.revoked_at > n.activates_at)))",
                &insert_args,
            ),
        ])
        .await?;
    if changed[0] == 1 {
        return Ok(Revoked::Now {
            replaced: changed[1] == 1,
        });
    }
    let known: Option<(String,)> = db
        .write()
        .fetch_optional("SELECT kid FROM signing_keys WHERE kid = $1", &[kid.into()])
        .await?;
    Ok(if known.is_some() {
        Revoked::Already
    } else {
        Revoked::NotFound
    })
}

row! {
    /// A stored `retired_secrets` row.
    #[derive(Debug, Clone)]
    pub struct RetiredRow {
        pub kid: String,
        pub replaced_at: i64,
        pub revoked_at: Option<i64>,
    }
}

/// Every retired HS256 secret.
pub async fn retired(db: &Db) -> Result<Vec<RetiredRow>> {
    let rows = db
        .read()
        .fetch_all(
            "SELECT kid, replaced_at, revoked_at FROM retired_secrets",
            &[],
        )
        .await?;
    Ok(rows)
}

/// Records that the HS256 secret `kid` is replaced from `now`, unless that was
/// recorded already (by this instance earlier, or another one).
pub async fn retire(db: &Db, kid: &str, now: i64) -> Result<()> {
    db.write()
        .execute(
            "INSERT INTO retired_secrets (kid, replaced_at) VALUES ($1, $2)
             ON CONFLICT (kid) DO NOTHING",
            &[kid.into(), now.into()],
        )
        .await?;
    Ok(())
}

/// The HS256 secret `kid` signs again (configured as the current one): it is not
/// retired any more, unless it was revoked. Returns whether it was revoked.
pub async fn unretire(db: &Db, kid: &str) -> Result<bool> {
    let write = db.write();
    write
        .execute(
            "DELETE FROM retired_secrets WHERE kid = $1 AND revoked_at IS NULL",
            &[kid.into()],
        )
        .await?;
    let revoked: Option<(String,)> = write
        .fetch_optional(
            "SELECT kid FROM retired_secrets WHERE kid = $1",
            &[kid.into()],
        )
        .await?;
    Ok(revoked.is_some())
}

/// Revokes the HS256 secret `kid` at `now`. Returns whether it was revoked already.
pub async fn revoke_secret(db: &Db, kid: &str, now: i64) -> Result<bool> {
    let write = db.write();
    let already: Option<(String,)> = write
        .fetch_optional(
            "SELECT kid FROM retired_secrets WHERE kid = $1 AND revoked_at IS NOT NULL",
            &[kid.into()],
        )
        .await?;
    write
        .execute(
            "INSERT INTO retired_secrets (kid, replaced_at, revoked_at) VALUES ($1, $2, $2)
             ON CONFLICT (kid) DO UPDATE
                SET revoked_at = COALESCE(retired_secrets.revoked_at, excluded.revoked_at)",
            &[kid.into(), now.into()],
        )
        .await?;
    Ok(already.is_some())
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
