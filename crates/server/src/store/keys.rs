//! The `signing_keys` table: EdDSA keys shared by every instance.

use super::{with_db, Db};
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

/// Binds the columns of `key` in the order of [`INSERT_SQL`] and [`INSERT_FIRST_SQL`].
fn bind_key<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    key: &'q KeyRow,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.sealed_key)
        .bind(&key.public_key)
        .bind(key.created_at)
        .bind(key.activates_at)
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
    Ok(with_db!(db, read, |pool| {
        sqlx::query_as(
            "SELECT kid, alg, sealed_key, public_key, created_at, activates_at
               FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(pool)
        .await?
    }))
}

/// A cheap fingerprint of the table (count and newest creation), polled to notice a
/// rotation done by another instance.
pub async fn fingerprint(db: &Db) -> Result<(i64, i64)> {
    Ok(with_db!(db, read, |pool| {
        sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(created_at), 0) FROM signing_keys")
            .fetch_one(pool)
            .await?
    }))
}

pub async fn insert(db: &Db, key: &KeyRow) -> Result<()> {
    with_db!(db, write, |pool| {
        bind_key(sqlx::query(INSERT_SQL), key)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Inserts `key` only if the table is empty (first start). Safe when several
/// instances start at once: exactly one first key is kept.
pub async fn insert_first(db: &Db, key: &KeyRow) -> Result<bool> {
    let inserted = match db {
        Db::Sqlite { writer, .. } => {
            // One writer connection: the check and the insert cannot interleave.
            bind_key(sqlx::query(INSERT_FIRST_SQL), key)
                .execute(writer)
                .await?
                .rows_affected()
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("LOCK TABLE signing_keys IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let n = bind_key(sqlx::query(INSERT_FIRST_SQL), key)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        }
    };
    Ok(inserted == 1)
}

/// Deletes keys whose successor activated before `cutoff`: no unexpired token can
/// carry their signature any more. Returns the deleted kids.
pub async fn delete_superseded(db: &Db, cutoff: i64) -> Result<Vec<String>> {
    Ok(with_db!(db, write, |pool| {
        sqlx::query_scalar(
            "DELETE FROM signing_keys
              WHERE EXISTS (SELECT 1 FROM signing_keys newer
                             WHERE newer.activates_at > signing_keys.activates_at
                               AND newer.activates_at < $1)
             RETURNING kid",
        )
        .bind(cutoff)
        .fetch_all(pool)
        .await?
    }))
}
