//! The `sessions` and `refresh_tokens` tables: logins, their end, and what is left of
//! them. Rotation, the exchange of a refresh token for its successor, is
//! [`super::rotation`].

use super::pool::row;
use baton_shared::{Session, User};
use uuid::Uuid;

use super::{Arg, Db};
use crate::clock::{millis, to_datetime};
use crate::config::TokenConfig;
use crate::error::Result;
use crate::refresh_token;

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

/// The lifetimes of sessions and their refresh tokens, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// A session ends this long after login, whatever happens.
    pub session: i64,
    /// A refresh token unused this long expires.
    pub idle: i64,
    /// A just-rotated token may be presented again this long (0: never).
    pub grace: i64,
}

impl Lifetimes {
    pub fn new(config: &TokenConfig) -> Self {
        Self {
            session: millis(config.session_ttl),
            idle: millis(config.refresh_idle_ttl),
            grace: millis(config.reuse_grace),
        }
    }

    /// Until when a refresh token issued at `now` may stay unused. Where a token is
    /// issued, this is capped at its session's end: a token never outlives its session.
    pub fn idle_until(&self, now: i64) -> i64 {
        now + self.idle
    }
}

/// A refresh token just issued (at login or by a rotation), with its session and user.
/// It holds the token itself, so it does not implement `Debug`.
pub struct Issued {
    pub session_id: Uuid,
    pub user: User,
    pub refresh_token: String,
    /// When it was issued, and when it expires (unix ms).
    pub issued_at: i64,
    pub expires_at: i64,
    /// The thumbprint of the DPoP key the session is bound to, if it is.
    pub dpop_jkt: Option<String>,
}

/// A login: the user, the credential version its password was checked under, and the
/// device it comes from.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub user: User,
    pub credential_version: i64,
    pub device_name: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The thumbprint of the key the login's DPoP proof proved: binds the session.
    pub dpop_jkt: Option<&'a str>,
}

/// Starts a session with its first refresh token (generation 0), only if the user's
/// credential version is still the one the login checked the password under: `None`
/// (nothing written) when the password changed meanwhile. On PostgreSQL the statement
/// takes a share lock on the user's row, so a change in progress makes it wait for the
/// change's commit and then find the version moved, and a change that comes later
/// finds this session committed and ends it (migration 0006).
#[tracing::instrument(skip_all, fields(user_id = %new.user.id))]
pub async fn create(
    db: &Db,
    new: NewSession<'_>,
    lifetimes: &Lifetimes,
    now: i64,
) -> Result<Option<Issued>> {
    let id = Uuid::new_v4();
    let expires_at = now + lifetimes.session;
    let token_expires_at = lifetimes.idle_until(now).min(expires_at);
    let first = refresh_token::generate();
    let session: &[Arg] = &[
        id.into(),
        new.user.id.into(),
        new.device_name.into(),
        new.user_agent.into(),
        now.into(),
        expires_at.into(),
        new.dpop_jkt.into(),
        new.credential_version.into(),
    ];
    let first_token: &[Arg] = &[
        first.hash[..].into(),
        id.into(),
        now.into(),
        token_expires_at.into(),
    ];
    macro_rules! insert_session {
        ($lock:literal) => {
            concat!(
                "INSERT INTO sessions (id, user_id, device_name, user_agent, created_at, last_used_at,
                                       expires_at, generation, dpop_jkt, credential_version)
                 SELECT $1, id, $3, $4, $5, $5, $6, 0, $7, credential_version
                   FROM users WHERE id = $2 AND credential_version = $8",
                $lock
            )
        };
    }
    let insert_session = if db.is_sqlite() {
        // One writer: a change is wholly before or wholly after this statement.
        insert_session!("")
    } else {
        insert_session!(" FOR SHARE")
    };
    let created: Option<Vec<(Uuid,)>> = db
        .write()
        .guarded_transaction(
            (insert_session, session),
            &[],
            (
                "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
                 VALUES ($1, $2, 0, $3, $4)
                 RETURNING session_id",
                first_token,
            ),
        )
        .await?;
    if created.is_none() {
        return Ok(None);
    }
    Ok(Some(Issued {
        session_id: id,
        user: new.user,
        refresh_token: first.text,
        issued_at: now,
        expires_at: token_expires_at,
        dpop_jkt: new.dpop_jkt.map(str::to_owned),
    }))
}

/// Which sessions [`end`] ends.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// One session, whoever's it is.
    Session(Uuid),
    /// The session of the refresh token with this hash, whatever the token's state.
    OfRefreshToken(&'a [u8]),
    /// One live session, only if it is this user's.
    UsersSession { user_id: Uuid, session_id: Uuid },
    /// Every session of the user, but `except` if given.
    AllOfUser { user_id: Uuid, except: Option<Uuid> },
}

/// Ends sessions that have not ended yet; returns the ids this call ended. Only the
/// database: [`crate::state::AppState::end_sessions`] also stops their access tokens.
#[tracing::instrument(skip(db))]
pub async fn end(db: &Db, which: Ending<'_>, reason: RevokeReason, now: i64) -> Result<Vec<Uuid>> {
    let (sql, args) = ending(which, reason, now);
    let ended: Vec<(Uuid,)> = db.write().fetch_all(sql, &args).await?;
    Ok(ended.into_iter().map(|(id,)| id).collect())
}

/// The statement that ends the sessions `which` names (`RETURNING id`), and its values.
pub(super) fn ending<'a>(
    which: Ending<'a>,
    reason: RevokeReason,
    now: i64,
) -> (&'static str, Vec<Arg<'a>>) {
    // Each form is its own statement, so that each keeps its index.
    let (sql, target): (&str, Vec<Arg>) = match which {
        Ending::Session(id) => (
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
              WHERE id = $3 AND revoked_at IS NULL
              RETURNING id",
            vec![id.into()],
        ),
        Ending::OfRefreshToken(hash) => (
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
              WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $3)
                AND revoked_at IS NULL
              RETURNING id",
            vec![hash.into()],
        ),
        Ending::UsersSession {
            user_id,
            session_id,
        } => (
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
              WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL AND expires_at > $1
              RETURNING id",
            vec![session_id.into(), user_id.into()],
        ),
        Ending::AllOfUser { user_id, except } => (
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2
              WHERE user_id = $3 AND revoked_at IS NULL AND ($4 IS NULL OR id <> $4)
              RETURNING id",
            vec![user_id.into(), except.into()],
        ),
    };
    let args: Vec<Arg> = [now.into(), reason.as_str().into()]
        .into_iter()
        .chain(target)
        .collect();
    (sql, args)
}

row! {
    struct SessionRow {
        id: Uuid,
        device_name: Option<String>,
        user_agent: Option<String>,
        created_at: i64,
        last_used_at: i64,
        expires_at: i64,
    }
}

/// Live sessions of a user (not revoked, not past their absolute or idle limit),
/// most recently used first. `current` marks the asking session.
#[tracing::instrument(skip(db))]
pub async fn list_active(db: &Db, user_id: Uuid, current: Uuid, now: i64) -> Result<Vec<Session>> {
    let rows: Vec<SessionRow> = db
        .read()
        .fetch_all(
            "SELECT s.id, s.device_name, s.user_agent, s.created_at, s.last_used_at, s.expires_at
               FROM sessions s
              WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
                AND EXISTS (SELECT 1 FROM refresh_tokens t
                             WHERE t.session_id = s.id AND t.generation = s.generation
                               AND t.expires_at > $2)
              ORDER BY s.last_used_at DESC, s.id",
            &[user_id.into(), now.into()],
        )
        .await?;
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
    let revoked = db
        .read()
        .fetch_all(
            "SELECT id, revoked_at FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at >= $1",
            &[since.into()],
        )
        .await?;
    Ok(revoked)
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
    let write = db.write();
    let refresh_tokens = write
        .execute(
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
            &[cutoff.into()],
        )
        .await?;
    let sessions = write
        .execute(
            "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
            &[cutoff.into()],
        )
        .await?;
    Ok(Purged {
        refresh_tokens,
        sessions,
    })
}
