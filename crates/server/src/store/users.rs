//! The `users` table.

use super::pool::row;
use baton_shared::{User, Username};
use uuid::Uuid;

use super::sessions::{self, Ending, RevokeReason};
use super::{Arg, Db};
use crate::clock::{now_ms, to_datetime};
use crate::error::{Error, ErrorCode, Result, ResultExt};

row! {
    struct UserRow {
        id: Uuid,
        username: String,
        created_at: i64,
    }
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
    /// Moves on with every password change: a session is created only under the
    /// version its password was checked against.
    pub credential_version: i64,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

row! {
    struct CredentialsRow {
        id: Uuid,
        username: String,
        created_at: i64,
        password_hash: String,
        credential_version: i64,
    }
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
            "SELECT id, username, created_at, password_hash, credential_version
               FROM users WHERE username_canonical = $1",
            &[canonical.as_str().into()],
        )
        .await?;
    Ok(row.map(|r| UserCredentials {
        user: user(r.id, r.username, r.created_at),
        password_hash: r.password_hash,
        credential_version: r.credential_version,
    }))
}

/// What a password change needs of its user. Its `Debug` hides the hash.
pub struct StoredPassword {
    /// The canonical username: the account that the limits on guesses count.
    pub account: String,
    pub password_hash: String,
    pub credential_version: i64,
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
    let row: Option<(String, String, i64)> = db
        .read()
        .fetch_optional(
            "SELECT username_canonical, password_hash, credential_version FROM users WHERE id = $1",
            &[user_id.into()],
        )
        .await?;
    Ok(row.map(
        |(account, password_hash, credential_version)| StoredPassword {
            account,
            password_hash,
            credential_version,
        },
    ))
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

/// Replaces a hash of weaker settings with `new` after a login, only where the stored
/// hash is still `old`, the one just verified: a password changed meanwhile stays
/// changed. The password is the same, so the credential version stays.
#[tracing::instrument(skip_all, fields(%user_id))]
pub async fn rehash(db: &Db, user_id: Uuid, old: &str, new: &str) -> Result<bool> {
    let changed = db
        .write()
        .execute(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4",
            &[new.into(), now_ms().into(), user_id.into(), old.into()],
        )
        .await?;
    Ok(changed == 1)
}

/// A password change, in one transaction: the new hash and the next credential
/// version, only if the user's version is still `version` (the one the current password
/// was checked under); the changing session `keep` moved to the new version; every
/// other session ended. Returns the ended sessions, or `None` when another change came
/// first (nothing was written).
#[tracing::instrument(skip(db, password_hash))]
pub async fn change_password(
    db: &Db,
    user_id: Uuid,
    version: i64,
    password_hash: &str,
    keep: Uuid,
    now: i64,
) -> Result<Option<Vec<Uuid>>> {
    let user: &[Arg] = &[
        password_hash.into(),
        now.into(),
        user_id.into(),
        version.into(),
    ];
    let kept: &[Arg] = &[(version + 1).into(), keep.into(), user_id.into()];
    let others = Ending::AllOfUser {
        user_id,
        except: Some(keep),
    };
    let (end_others, others) = sessions::ending(others, RevokeReason::PasswordChanged, now);
    let ended: Option<Vec<(Uuid,)>> = db
        .write()
        .guarded_transaction(
            (
                "UPDATE users SET password_hash = $1, credential_version = credential_version + 1,
                        updated_at = $2
                  WHERE id = $3 AND credential_version = $4",
                user,
            ),
            &[(
                "UPDATE sessions SET credential_version = $1 WHERE id = $2 AND user_id = $3",
                kept,
            )],
            (end_others, &others),
        )
        .await?;
    Ok(ended.map(|ended| ended.into_iter().map(|(id,)| id).collect()))
}
