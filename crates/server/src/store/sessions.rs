//! The `sessions` and `refresh_tokens` tables: logins, their refresh-token families,
//! rotation and revocation.
//!
//! A session row carries a `generation` counter. The refresh tokens that may rotate now
//! are those of the session's current generation; every token of an older generation
//! has been used. A rotation inserts the successor of the next generation and moves the
//! session to it in one statement that only matches while the session is still at the
//! presented token's generation (see [`exchange`]): of any number of concurrent
//! rotations of one token, exactly one wins.

use baton_shared::{Session, User};
use uuid::Uuid;

use super::{users, with_db, Db};
use crate::clock::to_datetime;
use crate::error::Result;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    LogoutAll,
    PasswordChanged,
    Revoked,
    RefreshTokenReused,
    Operator,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::LogoutAll => "logout_all",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::Revoked => "revoked",
            RevokeReason::RefreshTokenReused => "refresh_token_reused",
            RevokeReason::Operator => "operator",
        }
    }
}

/// A new session: the login's device and the first refresh token (generation 0).
#[derive(Debug)]
pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_name: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
    pub token_hash: &'a [u8],
    pub token_expires_at: i64,
}

#[tracing::instrument(skip_all, fields(session_id = %new.id, user_id = %new.user_id))]
pub async fn create(db: &Db, new: NewSession<'_>) -> Result<()> {
    with_db!(db, write, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, device_name, user_agent, created_at, last_used_at, expires_at, generation)
             VALUES ($1, $2, $3, $4, $5, $5, $6, 0)",
        )
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.device_name)
        .bind(new.user_agent)
        .bind(new.now)
        .bind(new.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
             VALUES ($1, $2, 0, $3, $4)",
        )
        .bind(new.token_hash)
        .bind(new.id)
        .bind(new.now)
        .bind(new.token_expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// A refresh token with the state of its session and user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshLookup {
    pub session_id: Uuid,
    pub token_generation: i64,
    pub token_expires_at: i64,
    pub session_generation: i64,
    pub session_expires_at: i64,
    /// When the session last rotated to a new generation.
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub user_id: Uuid,
    pub username: String,
    pub user_created_at: i64,
}

impl RefreshLookup {
    pub fn user(&self) -> User {
        users::user(self.user_id, self.username.clone(), self.user_created_at)
    }
}

const LOOKUP_SQL: &str =
    "SELECT t.session_id, t.generation AS token_generation, t.expires_at AS token_expires_at,
        s.generation AS session_generation, s.expires_at AS session_expires_at,
        s.rotated_at, s.revoked_at, s.user_id, u.username, u.created_at AS user_created_at
   FROM refresh_tokens t
   JOIN sessions s ON s.id = t.session_id
   JOIN users u ON u.id = s.user_id
  WHERE t.token_hash = $1";

/// Looks a refresh token up by its hash, on the read path.
#[tracing::instrument(skip_all)]
pub async fn find_refresh(db: &Db, token_hash: &[u8]) -> Result<Option<RefreshLookup>> {
    Ok(with_db!(db, read, |pool| {
        sqlx::query_as(LOOKUP_SQL)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
    }))
}

/// Looks a refresh token up on the write path, which sees every committed rotation
/// (used after losing a race, to learn what the winner did).
#[tracing::instrument(skip_all)]
pub async fn find_refresh_fresh(db: &Db, token_hash: &[u8]) -> Result<Option<RefreshLookup>> {
    Ok(with_db!(db, write, |pool| {
        sqlx::query_as(LOOKUP_SQL)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
    }))
}

/// A successful [`rotate_current`]: the session, the new token's expiry and the user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Rotated {
    pub session_id: Uuid,
    pub expires_at: i64,
    pub user_id: Uuid,
    pub username: String,
    pub user_created_at: i64,
}

impl Rotated {
    pub fn user(&self) -> User {
        users::user(self.user_id, self.username.clone(), self.user_created_at)
    }
}

/// The common case of a refresh in one statement: when the presented token is its
/// session's current, unexpired token and the session is live, inserts the successor
/// (expiring at `idle_expires_at`, or at the session's end if sooner) and advances the
/// session. Returns `None` and changes nothing otherwise; the caller then looks the
/// token up to tell why (expired, revoked, used, unknown) or to apply the grace window.
///
/// The statement is the same compare-and-swap as [`exchange`] (the session must still
/// be at the token's generation when the write runs), so of any number of concurrent
/// rotations of one token exactly one gets `Some`.
#[tracing::instrument(skip_all)]
pub async fn rotate_current(
    db: &Db,
    presented_hash: &[u8],
    successor_hash: &[u8],
    now: i64,
    idle_expires_at: i64,
) -> Result<Option<Rotated>> {
    let rotated = match db {
        // The trigger `refresh_tokens_advance_session` moves the session on.
        Db::Sqlite { writer, .. } => sqlx::query_as(
            "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
             SELECT $1, s.id, s.generation + 1, $2, MIN($3, s.expires_at)
               FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
              WHERE t.token_hash = $4 AND t.generation = s.generation AND s.revoked_at IS NULL
                AND t.expires_at > $2 AND s.expires_at > $2
             RETURNING session_id, expires_at,
                (SELECT user_id FROM sessions WHERE id = refresh_tokens.session_id) AS user_id,
                (SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id
                  WHERE s.id = refresh_tokens.session_id) AS username,
                (SELECT u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
                  WHERE s.id = refresh_tokens.session_id) AS user_created_at",
        )
        .bind(successor_hash)
        .bind(now)
        .bind(idle_expires_at)
        .bind(presented_hash)
        .fetch_optional(writer)
        .await?,
        // A concurrent rotation holds the session row until it commits; this UPDATE
        // then re-checks its condition against the new row, where the generations no
        // longer match.
        Db::Postgres(pool) => sqlx::query_as(
            "WITH advanced AS (
                UPDATE sessions s
                   SET generation = s.generation + 1, rotated_at = $2, last_used_at = $2
                  FROM refresh_tokens t
                 WHERE t.token_hash = $4 AND s.id = t.session_id AND s.generation = t.generation
                   AND s.revoked_at IS NULL AND t.expires_at > $2 AND s.expires_at > $2
                RETURNING s.id, s.generation, s.user_id, LEAST($3, s.expires_at) AS expires_at),
             inserted AS (
                INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
                SELECT $1, id, generation, $2, expires_at FROM advanced
                RETURNING session_id, expires_at)
             SELECT i.session_id, i.expires_at, u.id AS user_id, u.username,
                    u.created_at AS user_created_at
               FROM inserted i
               JOIN advanced a ON a.id = i.session_id
               JOIN users u ON u.id = a.user_id",
        )
        .bind(successor_hash)
        .bind(now)
        .bind(idle_expires_at)
        .bind(presented_hash)
        .fetch_optional(pool)
        .await?,
    };
    Ok(rotated)
}

/// The successor of a rotation.
#[derive(Debug)]
pub struct Successor<'a> {
    pub session_id: Uuid,
    pub token_hash: &'a [u8],
    pub now: i64,
    pub expires_at: i64,
}

/// How a refresh token is exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// The current generation rotates: the successor starts the next generation, which
    /// makes every token of the presented one used. Of any number of concurrent
    /// rotations, one wins.
    Rotate,
    /// Inside the reuse grace window: a just-rotated token gets another token of the
    /// current generation, as long as the chain has not moved past it.
    Sibling,
}

/// Issues a successor token for a session that is still at `generation` (the presented
/// token's for [`Exchange::Rotate`], the session's for [`Exchange::Sibling`]), in one
/// statement. Returns false when the session moved on meanwhile (another exchange won)
/// or was revoked.
#[tracing::instrument(skip_all, fields(session_id = %next.session_id, ?exchange, generation))]
pub async fn exchange(
    db: &Db,
    exchange: Exchange,
    generation: i64,
    next: Successor<'_>,
) -> Result<bool> {
    let bump = i64::from(exchange == Exchange::Rotate);
    let inserted = match db {
        // The trigger `refresh_tokens_advance_session` (migration 0002) moves the
        // session to the new token's generation. The single writer connection runs
        // the statement atomically; its condition is the compare-and-swap.
        Db::Sqlite { writer, .. } => sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
             SELECT $1, id, generation + $2, $3, $4 FROM sessions
              WHERE id = $5 AND generation = $6 AND revoked_at IS NULL",
        )
        .bind(next.token_hash)
        .bind(bump)
        .bind(next.now)
        .bind(next.expires_at)
        .bind(next.session_id)
        .bind(generation)
        .execute(writer)
        .await?
        .rows_affected(),
        // The UPDATE locks the session row and re-checks its condition after any
        // concurrent rotation commits: the compare-and-swap. The INSERT takes what it
        // returns, in the same statement.
        Db::Postgres(pool) => sqlx::query(
            "WITH advanced AS (
                UPDATE sessions
                   SET generation = generation + $2,
                       rotated_at = CASE WHEN $2 = 1 THEN $3 ELSE rotated_at END,
                       last_used_at = $3
                 WHERE id = $5 AND generation = $6 AND revoked_at IS NULL
                RETURNING id, generation)
             INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
             SELECT $1, id, generation, $3, $4 FROM advanced",
        )
        .bind(next.token_hash)
        .bind(bump)
        .bind(next.now)
        .bind(next.expires_at)
        .bind(next.session_id)
        .bind(generation)
        .execute(pool)
        .await?
        .rows_affected(),
    };
    Ok(inserted == 1)
}

/// Ends a session. Returns true when this call ended it (false: already ended or unknown).
#[tracing::instrument(skip(db))]
pub async fn revoke(db: &Db, session_id: Uuid, reason: RevokeReason, now: i64) -> Result<bool> {
    let n = with_db!(db, write, |pool| {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
              WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(session_id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Ends a session of this user; false when there is no such live session of theirs.
#[tracing::instrument(skip(db))]
pub async fn revoke_owned(
    db: &Db,
    user_id: Uuid,
    session_id: Uuid,
    reason: RevokeReason,
    now: i64,
) -> Result<bool> {
    let n = with_db!(db, write, |pool| {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
              WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(session_id)
        .bind(user_id)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// Ends every live session of a user, but `except` if given. Returns the ended ids.
#[tracing::instrument(skip(db))]
pub async fn revoke_all(
    db: &Db,
    user_id: Uuid,
    except: Option<Uuid>,
    reason: RevokeReason,
    now: i64,
) -> Result<Vec<Uuid>> {
    Ok(with_db!(db, write, |pool| {
        sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
              WHERE user_id = $3 AND revoked_at IS NULL AND ($4 IS NULL OR id <> $4)
              RETURNING id",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(user_id)
        .bind(except)
        .fetch_all(pool)
        .await?
    }))
}

/// The session a refresh token belongs to, whatever the token's state.
#[tracing::instrument(skip_all)]
pub async fn session_of_token(db: &Db, token_hash: &[u8]) -> Result<Option<Uuid>> {
    Ok(with_db!(db, read, |pool| {
        sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
    }))
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    device_name: Option<String>,
    user_agent: Option<String>,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
}

/// Live sessions of a user (not revoked, not past their absolute or idle limit),
/// most recently used first. `current` marks the asking session.
#[tracing::instrument(skip(db))]
pub async fn list_active(db: &Db, user_id: Uuid, current: Uuid, now: i64) -> Result<Vec<Session>> {
    let rows: Vec<SessionRow> = with_db!(db, read, |pool| {
        sqlx::query_as(
            "SELECT s.id, s.device_name, s.user_agent, s.created_at, s.last_used_at, s.expires_at
               FROM sessions s
              WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
                AND EXISTS (SELECT 1 FROM refresh_tokens t
                             WHERE t.session_id = s.id AND t.generation = s.generation
                               AND t.expires_at > $2)
              ORDER BY s.last_used_at DESC, s.id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|r| Session {
            id: r.id,
            device_name: r.device_name,
            user_agent: r.user_agent,
            created_at: to_datetime(r.created_at),
            last_used_at: to_datetime(r.last_used_at),
            expires_at: to_datetime(r.expires_at),
            current: r.id == current,
        })
        .collect())
}

/// Sessions revoked at or after `since` (unix ms), with when: what other instances
/// poll to learn of revocations.
#[tracing::instrument(skip(db))]
pub async fn revoked_since(db: &Db, since: i64) -> Result<Vec<(Uuid, i64)>> {
    Ok(with_db!(db, read, |pool| {
        sqlx::query_as(
            "SELECT id, revoked_at FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1",
        )
        .bind(since)
        .fetch_all(pool)
        .await?
    }))
}

/// What a purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub refresh_tokens: u64,
    pub sessions: u64,
}

/// Deletes what can no longer be used: refresh tokens past their idle limit, and
/// sessions past their absolute limit or revoked, once `keep` milliseconds have
/// passed (so that reuse detection and revocation sync still see them).
#[tracing::instrument(skip(db))]
pub async fn purge(db: &Db, now: i64, keep: i64) -> Result<Purged> {
    let cutoff = now - keep;
    with_db!(db, write, |pool| {
        let refresh_tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected();
        let sessions = sqlx::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
        )
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected();
        Ok(Purged {
            refresh_tokens,
            sessions,
        })
    })
}
