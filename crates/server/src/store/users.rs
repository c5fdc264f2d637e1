//! The `users` table.

use baton_shared::{User, Username};
use uuid::Uuid;

use super::Db;
use crate::clock::{now_ms, to_datetime};
use crate::error::{Error, ErrorCode, Result, ResultExt};

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    username: String,
    created_at: i64,
}

/// A user from their stored columns (`created_at` in Unix milliseconds).
pub(super) fn user(id: Uuid, username: String, created_at: i64) -> User {
    User {
        id,
        username,
        created_at: to_datetime(created_at),
    }
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        user(row.id, row.username, row.created_at)
    }
}

/// A user with the hash of their password, for login. Not `Serialize`, and its
/// `Debug` hides the hash.
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    id: Uuid,
    username: String,
    created_at: i64,
    password_hash: String,
}

#[tracing::instrument(skip(db, password_hash))]
pub async fn create(db: &Db, username: &Username, password_hash: &str) -> Result<User> {
    let canonical = username.canonical();
    let row: UserRow = db
        .write()
        .fetch_one(
            "INSERT INTO users (id, username, username_canonical, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             RETURNING id, username, created_at",
            &[
                Uuid::now_v7().into(),
                username.as_str().into(),
                canonical.as_str().into(),
                password_hash.into(),
                now_ms().into(),
            ],
        )
        .await
        .on_constraint("users_username_canonical_key", || {
            Error::client(ErrorCode::UsernameTaken, "this username is taken")
        })?;
    Ok(row.into())
}

#[tracing::instrument(skip(db))]
pub async fn find_credentials(db: &Db, username: &Username) -> Result<Option<UserCredentials>> {
    let canonical = username.canonical();
    let row: Option<CredentialsRow> = db
        .read()
        .fetch_optional(
            "SELECT id, username, created_at, password_hash FROM users WHERE username_canonical = $1",
            &[canonical.as_str().into()],
        )
        .await?;
    Ok(row.map(|r| UserCredentials {
        user: user(r.id, r.username, r.created_at),
        password_hash: r.password_hash,
    }))
}

/// What a password change needs of its user. Its `Debug` hides the hash.
pub struct StoredPassword {
    /// The canonical username: the account that the limits on guesses count.
    pub account: String,
    pub password_hash: String,
}

impl std::fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPassword")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[tracing::instrument(skip(db))]
pub async fn find_password(db: &Db, user_id: Uuid) -> Result<Option<StoredPassword>> {
    let row: Option<(String, String)> = db
        .read()
        .fetch_optional(
            "SELECT username_canonical, password_hash FROM users WHERE id = $1",
            &[user_id.into()],
        )
        .await?;
    Ok(row.map(|(account, password_hash)| StoredPassword {
        account,
        password_hash,
    }))
}

#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, user_id: Uuid) -> Result<Option<User>> {
    let row: Option<UserRow> = db
        .read()
        .fetch_optional(
            "SELECT id, username, created_at FROM users WHERE id = $1",
            &[user_id.into()],
        )
        .await?;
    Ok(row.map(User::from))
}

#[tracing::instrument(skip(db, password_hash))]
pub async fn set_password_hash(db: &Db, user_id: Uuid, password_hash: &str) -> Result<()> {
    db.write()
        .execute(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
            &[password_hash.into(), now_ms().into(), user_id.into()],
        )
        .await?;
    Ok(())
}
