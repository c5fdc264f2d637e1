//! Refresh-token rotation: the whole rule is [`rotate`], and this module holds every
//! statement it runs.
//!
//! A session row carries a `generation` counter. The refresh tokens that may rotate now
//! are those of the session's current generation; a token of an older generation has
//! been used. A presented token gets:
//!
//! | the presented token | [`Rotation`] |
//! |---|---|
//! | is not stored | `Unknown` |
//! | belongs to an ended session | `SessionEnded` |
//! | belongs to a session past its absolute end | `Expired` |
//! | is its session's current token, unused for longer than the idle lifetime | `Expired` |
//! | is its session's current token | `Rotated`: a successor of the next generation, which makes every token of this one used |
//! | is of the generation before the current one, and the session rotated at most the grace window ago | `Sibling`: another token of the current generation (a lost response or racing tabs must not log anyone out) |
//! | is any other used token | `Reused`: it was copied; the caller ends the session |
//!
//! A successor expires the idle lifetime after it is issued, and never after its
//! session: `MIN`/`LEAST(idle_until, sessions.expires_at)` in each statement that issues
//! one.
//!
//! Every statement that issues a token is a compare-and-swap on the session's
//! generation, so of any number of concurrent presentations of one token exactly one
//! rotates it. A presentation that loses reads the token again and is judged anew.
//!
//! On SQLite, a statement cannot both insert a token and update its session (no
//! data-modifying `WITH`). The trigger `refresh_tokens_advance_session`
//! (`migrations/sqlite/0002_one_statement_rotation.sql`) does the session half inside
//! the same statement: every inserted token sets its session's `last_used_at` to the
//! token's `created_at`, and a token of a newer generation also moves the session's
//! `generation` to it and sets `rotated_at`. The SQLite statements here only insert;
//! the single writer connection runs each one atomically, and its `WHERE` is the
//! compare-and-swap. PostgreSQL has no trigger: its statements update the session row
//! themselves, and the row lock of that `UPDATE` is the compare-and-swap.

use uuid::Uuid;

use super::sessions::{Issued, Lifetimes};
use super::{users, Db};
use crate::error::Result;
use crate::refresh_token;

/// What a presented refresh token gets. [`Issued`] holds a refresh token, so neither
/// this nor it implements `Debug`.
pub enum Rotation {
    /// The current token rotated: here is its successor.
    Rotated(Issued),
    /// A just-rotated token, inside the grace window: another token of the current
    /// generation.
    Sibling(Issued),
    /// A used token outside the grace window: the session must end.
    Reused { session_id: Uuid, user_id: Uuid },
    /// Other presentations changed the session [`PASSES`] times between this one's
    /// read and write; nothing was issued and nothing ended.
    Contended,
    /// The token is past its idle lifetime, or its session past its absolute end.
    Expired,
    /// The session was ended (logout, revocation, reuse).
    SessionEnded,
    /// No such token.
    Unknown,
}

/// How many times a presentation reads and tries again after another exchange changed
/// the session between its read and its write: enough for any interleaving of one
/// rotation and its grace siblings.
const PASSES: usize = 3;

/// Exchanges the refresh token whose hash is `presented` for a successor, at `now`.
/// See the module documentation for the rule.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    db: &Db,
    presented: &[u8],
    lifetimes: &Lifetimes,
    now: i64,
) -> Result<Rotation> {
    let (refresh_token, hash) = refresh_token::generate();
    let next = Next {
        hash: &hash,
        now,
        until: lifetimes.idle_until(now),
    };
    // The common case, a live session's current token, is one statement.
    if let Some(row) = advance(db, presented, next).await? {
        return Ok(Rotation::Rotated(row.issued(refresh_token)));
    }
    // Anything else: find out what the token is now.
    let mut found = find(db, presented, false).await?;
    for _ in 0..PASSES {
        let Some(token) = found else {
            return Ok(Rotation::Unknown);
        };
        match judge(&token, lifetimes, now) {
            Judgement::Final(rotation) => return Ok(rotation),
            Judgement::Current => {
                if let Some(row) = advance(db, presented, next).await? {
                    return Ok(Rotation::Rotated(row.issued(refresh_token)));
                }
            }
            Judgement::InGrace => {
                if let Some(expires_at) = add_sibling(db, &token, next).await? {
                    return Ok(Rotation::Sibling(Issued {
                        session_id: token.session_id,
                        user: token.user(),
                        refresh_token,
                        expires_at,
                    }));
                }
            }
        }
        // Another exchange changed the session between the read and the write: read
        // again on the write path, which sees every committed rotation.
        found = find(db, presented, true).await?;
    }
    Ok(Rotation::Contended)
}

enum Judgement {
    Final(Rotation),
    /// The session's current token: it rotates, unless another presentation does first.
    Current,
    /// A just-rotated token inside the grace window: it gets a sibling, unless the
    /// session moves on first.
    InGrace,
}

fn judge(token: &Found, lifetimes: &Lifetimes, now: i64) -> Judgement {
    if token.revoked_at.is_some() {
        return Judgement::Final(Rotation::SessionEnded);
    }
    if now >= token.session_expires_at {
        return Judgement::Final(Rotation::Expired);
    }
    if token.token_generation == token.session_generation {
        if now >= token.token_expires_at {
            return Judgement::Final(Rotation::Expired);
        }
        return Judgement::Current;
    }
    let just_rotated = token.token_generation + 1 == token.session_generation
        && token
            .rotated_at
            .is_some_and(|rotated| now - rotated <= lifetimes.grace);
    if lifetimes.grace > 0 && just_rotated {
        Judgement::InGrace
    } else {
        Judgement::Final(Rotation::Reused {
            session_id: token.session_id,
            user_id: token.user_id,
        })
    }
}

/// A successful [`advance`]: the session, the successor's expiry and the user.
#[derive(sqlx::FromRow)]
struct Advanced {
    session_id: Uuid,
    expires_at: i64,
    user_id: Uuid,
    username: String,
    user_created_at: i64,
}

impl Advanced {
    fn issued(self, refresh_token: String) -> Issued {
        Issued {
            session_id: self.session_id,
            user: users::user(self.user_id, self.username, self.user_created_at),
            refresh_token,
            expires_at: self.expires_at,
        }
    }
}

/// The token a presentation issues if it may: its hash, when (`created_at`), and until
/// when it may stay unused (`$3` of the statements, capped there at the session's end).
#[derive(Clone, Copy)]
struct Next<'a> {
    hash: &'a [u8],
    now: i64,
    until: i64,
}

/// When `presented` is its session's current, unexpired token and the session is live:
/// inserts `next` as the first token of the next generation and moves the session
/// to it, in one statement. `None`, and nothing changed, otherwise.
async fn advance(db: &Db, presented: &[u8], next: Next<'_>) -> Result<Option<Advanced>> {
    let sql = if db.is_sqlite() {
        // The trigger moves the session on. `RETURNING` sees only the inserted row,
        // hence the subqueries for the user.
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
              WHERE s.id = refresh_tokens.session_id) AS user_created_at"
    } else {
        // A concurrent rotation holds the session row until it commits; this UPDATE
        // then re-checks its condition against the new row, where the generations no
        // longer match.
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
           JOIN users u ON u.id = a.user_id"
    };
    let args = [
        next.hash.into(),
        next.now.into(),
        next.until.into(),
        presented.into(),
    ];
    Ok(db.write().fetch_optional(sql, &args).await?)
}

/// When the session is still at the generation `token` saw and live: inserts
/// `next` as another token of that generation, in one statement, and returns its
/// expiry. `None`, and nothing changed, when the session moved on or ended meanwhile.
async fn add_sibling(db: &Db, token: &Found, next: Next<'_>) -> Result<Option<i64>> {
    let sql = if db.is_sqlite() {
        // The trigger marks the session used.
        "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
         SELECT $1, id, generation, $2, MIN($3, expires_at) FROM sessions
          WHERE id = $4 AND generation = $5 AND revoked_at IS NULL
         RETURNING expires_at"
    } else {
        "WITH touched AS (
            UPDATE sessions SET last_used_at = $2
             WHERE id = $4 AND generation = $5 AND revoked_at IS NULL
            RETURNING id, generation, LEAST($3, expires_at) AS expires_at)
         INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
         SELECT $1, id, generation, $2, expires_at FROM touched
         RETURNING expires_at"
    };
    let (session, generation) = (token.session_id, token.session_generation);
    let args = [
        next.hash.into(),
        next.now.into(),
        next.until.into(),
        session.into(),
        generation.into(),
    ];
    let issued: Option<(i64,)> = db.write().fetch_optional(sql, &args).await?;
    Ok(issued.map(|(expires_at,)| expires_at))
}

/// A stored refresh token with the state of its session and user.
#[derive(sqlx::FromRow)]
struct Found {
    session_id: Uuid,
    token_generation: i64,
    token_expires_at: i64,
    session_generation: i64,
    session_expires_at: i64,
    /// When the session last rotated to a new generation.
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
    user_id: Uuid,
    username: String,
    user_created_at: i64,
}

impl Found {
    fn user(&self) -> baton_shared::User {
        users::user(self.user_id, self.username.clone(), self.user_created_at)
    }
}

/// Looks a refresh token up by its hash: on SQLite's readers, or with `fresh` on the
/// writer, which has seen every committed rotation.
async fn find(db: &Db, token_hash: &[u8], fresh: bool) -> Result<Option<Found>> {
    const SQL: &str =
        "SELECT t.session_id, t.generation AS token_generation, t.expires_at AS token_expires_at,
            s.generation AS session_generation, s.expires_at AS session_expires_at,
            s.rotated_at, s.revoked_at, s.user_id, u.username, u.created_at AS user_created_at
           FROM refresh_tokens t
           JOIN sessions s ON s.id = t.session_id
           JOIN users u ON u.id = s.user_id
          WHERE t.token_hash = $1";
    let pool = if fresh { db.write() } else { db.read() };
    Ok(pool.fetch_optional(SQL, &[token_hash.into()]).await?)
}
