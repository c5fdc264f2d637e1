//! Refresh-token rotation: the whole rule is [`rotate`], and this module holds every
//! statement it runs.
//!
//! A session row carries a `generation` counter. The refresh token that may rotate now
//! is the one of the session's current generation; a token of an older generation has
//! been used. Every token but a login's is its predecessor's successor, derived with
//! the chain key ([`ChainKeys`]), so presenting one token always asks for one and the
//! same successor: a session has exactly one chain. A presented token gets:
//!
//! | the presented token | [`Rotation`] |
//! |---|---|
//! | is not stored | `Unknown` |
//! | belongs to a session bound to a DPoP key that the request's proof did not prove (no proof, or another key's) | `WrongKey`: nothing changes, nothing is revealed about the session |
//! | belongs to a Bearer session, and only bound sessions may refresh (`BATON_DPOP=required`) | `NotBound` |
//! | belongs to an ended session, or one created under an older password (credential version) than its user's | `SessionEnded` |
//! | belongs to a session past its absolute end | `Expired` |
//! | is its session's current token, unused for longer than the idle lifetime | `Expired` |
//! | is its session's current token | `Rotated`: its successor becomes the session's current token, which makes this one used |
//! | is the token before the current one, the current one is its successor, and the session rotated at most the grace window ago | `Replayed`: that successor again (a lost answer or racing tabs must not log anyone out) |
//! | is any other used token | `Reused`: it was copied; the caller ends the session |
//!
//! So whoever presents a just-rotated token inside the window, its owner or a thief,
//! ends up on the one chain, and the next rotation by either makes the other's token
//! used: presented after the window, it is reuse and ends the session.
//!
//! Times that decide (a rotation's time, the window, expiry) are the database's clock,
//! read in the statement ([`db_now`](super::db_now)), never an instance's: several
//! instances compare them, and one whose clock is off must not move a window for all.
//! A rotation dated more than the window away from the database's now, in either
//! direction, opens no window.
//!
//! A successor expires the idle lifetime after it is issued, and never after its
//! session: `MIN`/`LEAST(now + idle, sessions.expires_at)` in the statement that issues
//! it.
//!
//! The key check is in the statement that rotates too (the session's `dpop_jkt` is
//! the presented key, or the session is unbound and may be), so no token of a bound
//! session rotates without a proof by its key, however the requests interleave.
//!
//! The statement that rotates is a compare-and-swap on the session's generation, so of
//! any number of concurrent presentations of one token exactly one rotates it; the
//! others read the token again, find it just rotated and get the same successor
//! (`Replayed`, a read: it writes nothing).
//!
//! On SQLite, a statement cannot both insert a token and update its session (no
//! data-modifying `WITH`). The trigger `refresh_tokens_advance_session`
//! (`migrations/sqlite/0002_one_statement_rotation.sql`) does the session half inside
//! the same statement: every inserted token sets its session's `last_used_at` to the
//! token's `created_at`, and a token of a newer generation also moves the session's
//! `generation` to it and sets `rotated_at`. The SQLite statement here only inserts;
//! the single writer connection runs it atomically, and its `WHERE` is the
//! compare-and-swap. Rotations waiting for the writer commit together ([`group`]),
//! each statement still its own compare-and-swap. PostgreSQL has no trigger: its
//! statement updates the session row itself, and the row lock of that `UPDATE` is the
//! compare-and-swap.

use super::pool::row;

pub mod group;
use uuid::Uuid;

use super::sessions::{Issued, Lifetimes};
use super::{users, Db};
use crate::error::Result;
use crate::refresh_token::{ChainKeys, Token};

/// What a presented refresh token gets. [`Issued`] holds a refresh token, so neither
/// this nor it implements `Debug`.
pub enum Rotation {
    /// The current token rotated: here is its successor.
    Rotated(Issued),
    /// The token rotated moments ago, inside the grace window: the successor it got
    /// then, which is still the session's current token.
    Replayed(Issued),
    /// A used token, outside the grace window or not the one before the current
    /// token: the session must end.
    Reused { session_id: Uuid, user_id: Uuid },
    /// The token was current on every read but its rotation wrote nothing, [`PASSES`]
    /// times: nothing was issued and nothing ended (the caller may try again).
    Contended,
    /// The token is past its idle lifetime, or its session past its absolute end.
    Expired,
    /// The session was ended (logout, revocation, reuse).
    SessionEnded,
    /// No such token.
    Unknown,
    /// The session is bound to a DPoP key that the request did not prove.
    WrongKey { session_id: Uuid },
    /// A Bearer session, where only DPoP-bound sessions may refresh.
    NotBound,
}

/// Who presents the token, as far as DPoP goes: the thumbprint of the key the
/// request's proof proved, and whether a session bound to no key may rotate.
#[derive(Debug, Clone, Copy)]
pub struct Presenter<'a> {
    pub jkt: Option<&'a str>,
    pub bearer_allowed: bool,
}

/// How many times a presentation that reads its token current tries to rotate it.
/// A rotation that loses to a concurrent one finds the token rotated on the next read,
/// so more than one pass is needed only when the database itself is amiss.
const PASSES: usize = 3;

/// Exchanges `presented` for its successor. See the module documentation for the rule.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    db: &Db,
    chain: &ChainKeys,
    presented: &str,
    presenter: Presenter<'_>,
    lifetimes: &Lifetimes,
) -> Result<Rotation> {
    let presented_hash = crate::refresh_token::hash(presented);
    let successor = chain.successor(presented);
    // The common case, a live session's current token, is one statement.
    if let Some(row) = advance(db, &presented_hash, &successor, presenter, lifetimes).await? {
        return Ok(Rotation::Rotated(row.issued(successor.text)));
    }
    // Anything else: find out what the token is now.
    let mut fresh = false;
    for _ in 0..PASSES {
        let found = find(db, &presented_hash, fresh).await?;
        match judge(&found, chain, presented, presenter, lifetimes) {
            Judgement::Final(rotation) => return Ok(rotation),
            Judgement::Current => {
                if let Some(row) =
                    advance(db, &presented_hash, &successor, presenter, lifetimes).await?
                {
                    return Ok(Rotation::Rotated(row.issued(successor.text)));
                }
            }
        }
        // Read again on the write path, which sees every committed rotation.
        fresh = true;
    }
    Ok(Rotation::Contended)
}

enum Judgement {
    Final(Rotation),
    /// The session's current token: it rotates, unless another presentation does first.
    Current,
}

/// The rule of the module's table, on what [`find`] read: one row per token of the
/// session's current generation (one, but for sessions from before chained tokens).
fn judge(
    rows: &[Found],
    chain: &ChainKeys,
    presented: &str,
    presenter: Presenter<'_>,
    lifetimes: &Lifetimes,
) -> Judgement {
    let Some(token) = rows.first() else {
        return Judgement::Final(Rotation::Unknown);
    };
    match token.dpop_jkt.as_deref() {
        Some(bound) if presenter.jkt != Some(bound) => {
            return Judgement::Final(Rotation::WrongKey {
                session_id: token.session_id,
            })
        }
        None if !presenter.bearer_allowed => return Judgement::Final(Rotation::NotBound),
        _ => {}
    }
    let now = token.now;
    if token.revoked_at.is_some() || token.credentials_changed {
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
    let in_window = lifetimes.grace > 0
        && token.token_generation + 1 == token.session_generation
        && token
            .rotated_at
            .is_some_and(|rotated| now.abs_diff(rotated) <= lifetimes.grace.unsigned_abs());
    if in_window {
        // The current token must be this one's successor: the session moved on from
        // it, not from another token of its generation.
        for successor in chain.successors(presented) {
            if let Some(current) = rows
                .iter()
                .find(|row| row.current_hash.as_deref() == Some(&successor.hash[..]))
            {
                let Some(expires_at) = current.current_expires_at.filter(|&at| now < at) else {
                    return Judgement::Final(Rotation::Expired);
                };
                return Judgement::Final(Rotation::Replayed(Issued {
                    session_id: token.session_id,
                    user: token.user(),
                    refresh_token: successor.text,
                    issued_at: now,
                    expires_at,
                    dpop_jkt: token.dpop_jkt.clone(),
                }));
            }
        }
    }
    Judgement::Final(Rotation::Reused {
        session_id: token.session_id,
        user_id: token.user_id,
    })
}

row! {
    /// A successful [`advance`]: the session, when (the database's now), the successor's
    /// expiry and the user.
    pub struct Advanced {
        session_id: Uuid,
        created_at: i64,
        expires_at: i64,
        user_id: Uuid,
        username: String,
        user_created_at: i64,
        dpop_jkt: Option<String>,
    }
}

impl Advanced {
    fn issued(self, refresh_token: String) -> Issued {
        Issued {
            session_id: self.session_id,
            user: users::user(self.user_id, self.username, self.user_created_at),
            refresh_token,
            issued_at: self.created_at,
            expires_at: self.expires_at,
            dpop_jkt: self.dpop_jkt,
        }
    }
}

/// The statement of [`advance`] on SQLite, whose placeholders are [`group::Advance::args`].
/// The trigger moves the session on. `RETURNING` sees only the inserted row, hence the
/// subqueries for the user.
const ADVANCE_SQLITE: &str = concat!(
    "INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
     SELECT $1, s.id, s.generation + 1, c.now, MIN(c.now + $2, s.expires_at)
       FROM (SELECT ",
    db_now!(sqlite),
    " AS now) c,
            refresh_tokens t JOIN sessions s ON s.id = t.session_id
            JOIN users u ON u.id = s.user_id
      WHERE t.token_hash = $3 AND t.generation = s.generation AND s.revoked_at IS NULL
        AND t.expires_at > c.now AND s.expires_at > c.now
        AND (s.dpop_jkt = $4 OR (s.dpop_jkt IS NULL AND $5 = 1))
        AND s.credential_version = u.credential_version
     RETURNING session_id, created_at, expires_at,
        (SELECT dpop_jkt FROM sessions WHERE id = refresh_tokens.session_id) AS dpop_jkt,
        (SELECT user_id FROM sessions WHERE id = refresh_tokens.session_id) AS user_id,
        (SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.id = refresh_tokens.session_id) AS username,
        (SELECT u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.id = refresh_tokens.session_id) AS user_created_at"
);

/// How many values [`ADVANCE_SQLITE`] and [`ADVANCE_POSTGRES`] take.
const ADVANCE_ARGS: usize = 5;

/// The statement of [`advance`] on PostgreSQL. A concurrent rotation holds the session
/// row until it commits; this UPDATE then re-checks its condition against the new row,
/// where the generations no longer match.
const ADVANCE_POSTGRES: &str = concat!(
    "WITH c AS (SELECT ",
    db_now!(postgres),
    " AS now),
     advanced AS (
        UPDATE sessions s
           SET generation = s.generation + 1, rotated_at = c.now, last_used_at = c.now
          FROM refresh_tokens t, c, users u
         WHERE t.token_hash = $3 AND s.id = t.session_id AND s.generation = t.generation
           AND s.revoked_at IS NULL AND t.expires_at > c.now AND s.expires_at > c.now
           AND (s.dpop_jkt = $4 OR (s.dpop_jkt IS NULL AND $5 = 1))
           AND u.id = s.user_id AND s.credential_version = u.credential_version
        RETURNING s.id, s.generation, s.user_id, s.dpop_jkt, c.now,
                  LEAST(c.now + $2, s.expires_at) AS expires_at),
     inserted AS (
        INSERT INTO refresh_tokens (token_hash, session_id, generation, created_at, expires_at)
        SELECT $1, id, generation, now, expires_at FROM advanced
        RETURNING session_id, created_at, expires_at)
     SELECT i.session_id, i.created_at, i.expires_at, u.id AS user_id, u.username,
            u.created_at AS user_created_at, a.dpop_jkt
       FROM inserted i
       JOIN advanced a ON a.id = i.session_id
       JOIN users u ON u.id = a.user_id"
);

/// When `presented` is its session's current, unexpired token, the session is live
/// and bound to the presenter's key (or to none, where that may rotate): inserts
/// `successor` as the token of the next generation and moves the session to it, in one
/// statement. `None`, and nothing changed, otherwise. On SQLite the statement runs in
/// the next group commit ([`group`]).
async fn advance(
    db: &Db,
    presented: &[u8],
    successor: &Token,
    presenter: Presenter<'_>,
    lifetimes: &Lifetimes,
) -> Result<Option<Advanced>> {
    let advance = group::Advance {
        successor_hash: successor.hash.to_vec(),
        idle: lifetimes.idle,
        presented_hash: presented.to_vec(),
        jkt: presenter.jkt.map(str::to_owned),
        bearer_allowed: presenter.bearer_allowed,
    };
    match db {
        Db::Sqlite { rotations, .. } => Ok(rotations.advance(advance).await?),
        Db::Postgres(_) => Ok(db
            .write()
            .fetch_optional(ADVANCE_POSTGRES, &advance.args())
            .await?),
    }
}

row! {
    /// A stored refresh token with the state of its session and user, a token of the
    /// session's current generation, and the database's now.
    struct Found {
        session_id: Uuid,
        token_generation: i64,
        token_expires_at: i64,
        session_generation: i64,
        session_expires_at: i64,
        /// When the session last rotated to a new generation.
        rotated_at: Option<i64>,
        revoked_at: Option<i64>,
        /// The user's password changed after the session was created.
        credentials_changed: bool,
        user_id: Uuid,
        username: String,
        user_created_at: i64,
        current_hash: Option<Vec<u8>>,
        current_expires_at: Option<i64>,
        dpop_jkt: Option<String>,
        now: i64,
    }
}

impl Found {
    fn user(&self) -> baton_shared::User {
        users::user(self.user_id, self.username.clone(), self.user_created_at)
    }
}

/// Looks a refresh token up by its hash: on SQLite's readers, or with `fresh` on the
/// writer, which has seen every committed rotation. One row per token of the session's
/// current generation.
async fn find(db: &Db, token_hash: &[u8], fresh: bool) -> Result<Vec<Found>> {
    macro_rules! find_sql {
        ($backend:ident) => {
            concat!(
                "SELECT t.session_id, t.generation AS token_generation,
                    t.expires_at AS token_expires_at, s.generation AS session_generation,
                    s.expires_at AS session_expires_at, s.rotated_at, s.revoked_at, s.user_id,
                    s.credential_version <> u.credential_version AS credentials_changed,
                    u.username, u.created_at AS user_created_at,
                    c.token_hash AS current_hash, c.expires_at AS current_expires_at,
                    s.dpop_jkt, ", db_now!($backend), " AS now
                   FROM refresh_tokens t
                   JOIN sessions s ON s.id = t.session_id
                   JOIN users u ON u.id = s.user_id
                   LEFT JOIN refresh_tokens c ON c.session_id = s.id AND c.generation = s.generation
                  WHERE t.token_hash = $1"
            )
        };
    }
    let sql = if db.is_sqlite() {
        find_sql!(sqlite)
    } else {
        find_sql!(postgres)
    };
    let pool = if fresh { db.write() } else { db.read() };
    Ok(pool.fetch_all(sql, &[token_hash.into()]).await?)
}
