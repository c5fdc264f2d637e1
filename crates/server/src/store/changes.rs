//! The `changes` table: the change feed's rows, written by the triggers of migration
//! 0004 and read by [`crate::feed`]. Nothing here writes a change; the statements that
//! make the changes do, through their triggers.

use super::pool::row;
use uuid::Uuid;

use super::Db;
use crate::error::Result;

/// What a row of `changes` says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A session ended: its access tokens must stop.
    SessionEnded(Uuid),
    /// A signing key was added, replaced, revoked or deleted: reload the key ring.
    KeysChanged,
    /// A user's row was written to: drop any copy of it.
    UserChanged(Uuid),
    /// A kind this build does not know (written by a newer one): nothing to do.
    Other,
}

row! {
    struct ChangeRow {
        seq: i64,
        kind: String,
        subject: Option<Uuid>,
    }
}

impl ChangeRow {
    fn change(&self) -> Change {
        match (self.kind.as_str(), self.subject) {
            ("session_ended", Some(id)) => Change::SessionEnded(id),
            ("keys", _) => Change::KeysChanged,
            ("user_changed", Some(id)) => Change::UserChanged(id),
            _ => Change::Other,
        }
    }
}

/// The most rows one read returns; a longer backlog is read in several.
pub const PAGE: i64 = 10_000;

/// The changes after `cursor`, in commit order (at most [`PAGE`]), with the last
/// one's `seq` (`cursor` when there is none).
pub async fn after(db: &Db, cursor: i64) -> Result<(Vec<Change>, i64)> {
    let rows: Vec<ChangeRow> = db
        .read()
        .fetch_all(
            "SELECT seq, kind, subject FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[cursor.into(), PAGE.into()],
        )
        .await?;
    let last = rows.last().map_or(cursor, |r| r.seq);
    Ok((rows.iter().map(ChangeRow::change).collect(), last))
}

/// Where the feed starts: the newest `seq`, and the sessions that ended since
/// `since` (unix ms, the database's clock) up to it.
pub async fn start(db: &Db, since: i64) -> Result<(Vec<Uuid>, i64)> {
    let read = db.read();
    let (cursor,): (i64,) = read
        .fetch_one("SELECT COALESCE(MAX(seq), 0) FROM changes", &[])
        .await?;
    let ended: Vec<(Uuid,)> = read
        .fetch_all(
            "SELECT subject FROM changes
              WHERE kind = 'session_ended' AND at >= $1 AND seq <= $2 AND subject IS NOT NULL",
            &[since.into(), cursor.into()],
        )
        .await?;
    Ok((ended.into_iter().map(|(id,)| id).collect(), cursor))
}

/// Deletes the changes written before `cutoff` (unix ms): every instance has read
/// them, or started after them and needs none of them.
pub async fn purge(db: &Db, cutoff: i64) -> Result<u64> {
    let purged = db
        .write()
        .execute("DELETE FROM changes WHERE at < $1", &[cutoff.into()])
        .await?;
    Ok(purged)
}
