//! Group commit of rotations on SQLite. Every rotation is a write, and SQLite has one
//! writer: one at a time, each its own transaction, each answer handed back from
//! sqlx's connection thread before the next rotation can take the connection. Here a
//! task of its own takes every rotation waiting (up to [`MAX_BATCH`]) and runs their
//! statements in one transaction, as one multi-statement command on the connection
//! thread: three hand-offs and one commit for the batch instead of per rotation.
//!
//! Nothing about a rotation's outcome changes. The statements run in order in one
//! transaction, so each sees the ones before it and is still its own compare-and-swap
//! (two presentations of one token in a batch: the first rotates, the second finds
//! the generation moved and changes nothing). No answer leaves before the commit,
//! so a rotation is as durable as it was alone (WAL, `synchronous=NORMAL`). When the
//! batch fails as a whole (a statement's error rolls it back), each rotation runs again
//! on its own, so that one's error stays its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use futures_util::TryStreamExt;
use sqlx::{Either, FromRow, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{Advanced, ADVANCE_ARGS, ADVANCE_SQLITE};
use crate::store::pool::{arguments, Arg, Pool};

/// Most rotations in one transaction. Each batch size has its own statement text, which
/// sqlx prepares once and keeps in its per-connection cache (100 statements).
pub const MAX_BATCH: usize = 32;

/// The values of one rotation's statement, owned: they cross to the committing task.
pub struct Advance {
    pub successor_hash: Vec<u8>,
    pub idle: i64,
    pub presented_hash: Vec<u8>,
    pub jkt: Option<String>,
    pub bearer_allowed: bool,
}

impl Advance {
    /// The values of the statement's `$1`..`$5`, in order.
    pub(super) fn args(&self) -> [Arg<'_>; ADVANCE_ARGS] {
        [
            self.successor_hash[..].into(),
            self.idle.into(),
            self.presented_hash[..].into(),
            self.jkt.as_deref().into(),
            i64::from(self.bearer_allowed).into(),
        ]
    }
}

type Reply = oneshot::Sender<Result<Option<Advanced>, sqlx::Error>>;

/// The queue of rotations waiting for the writer. Cloning shares it.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<(Advance, Reply)>,
    commits: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the committing task on `writer`; it ends when the last clone is dropped.
    pub fn start(writer: SqlitePool) -> Self {
        let (queue, mut waiting) = mpsc::unbounded_channel::<(Advance, Reply)>();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let transactions = commit(&writer, std::mem::take(&mut batch)).await;
                counted.fetch_add(transactions, Ordering::Relaxed);
            }
        });
        Self { queue, commits }
    }

    /// How many transactions the rotations took so far (attempted ones included).
    pub fn transactions(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Runs one rotation's statement in the next batch; its row once committed.
    pub async fn advance(&self, advance: Advance) -> Result<Option<Advanced>, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        let closed = || sqlx::Error::PoolClosed;
        self.queue.send((advance, reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Runs a batch and answers each of its rotations; returns how many transactions it
/// took.
async fn commit(writer: &SqlitePool, batch: Vec<(Advance, Reply)>) -> u64 {
    // Alone, the statement is its own transaction, as without batching.
    let mut transactions = 0;
    if batch.len() > 1 {
        transactions += 1;
        match in_one_transaction(writer, &batch).await {
            Ok(rows) => {
                for ((_, reply), row) in batch.into_iter().zip(rows) {
                    // A caller that went away (its client hung up) misses nothing it can use.
                    let _ = reply.send(Ok(row));
                }
                return transactions;
            }
            Err(error) => {
                tracing::warn!(%error, rotations = batch.len(), "a group commit of rotations failed; each runs again on its own");
            }
        }
    }
    for (advance, reply) in batch {
        transactions += 1;
        let row = Pool::Sqlite(writer)
            .fetch_optional(ADVANCE_SQLITE, &advance.args())
            .await;
        let _ = reply.send(row);
    }
    transactions
}

/// The batch's statements as one command in one transaction: each statement's row,
/// in order, or the error that rolled them all back.
async fn in_one_transaction(
    writer: &SqlitePool,
    batch: &[(Advance, Reply)],
) -> Result<Vec<Option<Advanced>>, sqlx::Error> {
    let args: Vec<Arg<'_>> = batch.iter().flat_map(|(a, _)| a.args()).collect();
    let arguments = arguments::<Sqlite>(&args)?;
    let mut tx = writer.begin().await?;
    let mut rows: Vec<Option<Advanced>> = Vec::with_capacity(batch.len());
    let mut current = None;
    {
        // One command of many statements, each with its own values: sqlx 0.8 runs that
        // on SQLite only (hence deprecated, for the other drivers' sake), and it is the
        // point here: one hand-off to the connection thread for the whole batch.
        #[allow(deprecated)]
        let mut results = sqlx::query_with(batch_sql(batch.len()), arguments).fetch_many(&mut *tx);
        while let Some(result) = results.try_next().await? {
            match result {
                Either::Right(row) => {
                    current.get_or_insert(Advanced::from_row(&row)?);
                }
                Either::Left(_done) => rows.push(current.take()),
            }
        }
    }
    if rows.len() != batch.len() {
        return Err(sqlx::Error::Protocol(format!(
            "a batch of {} rotations ended {} statements",
            batch.len(),
            rows.len()
        )));
    }
    tx.commit().await?;
    Ok(rows)
}

/// The statement of `n` rotations: the single one `n` times, the `k`-th with its
/// placeholders moved past the first `k` rotations' values.
fn batch_sql(n: usize) -> &'static str {
    static TEXTS: OnceLock<Vec<String>> = OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (1..=MAX_BATCH)
            .map(|n| {
                (0..n)
                    .map(|k| renumbered(ADVANCE_SQLITE, k * ADVANCE_ARGS))
                    .collect::<Vec<_>>()
                    .join(";\n")
            })
            .collect()
    });
    &texts[n - 1]
}

/// `sql` with every placeholder `$i` as `$(i + offset)`.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        let number: usize = rest[at + 1..at + 1 + digits]
            .parse()
            .expect("a placeholder is $ and a number");
        out.push_str(&format!("${}", number + offset));
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_moved_past_the_rotations_before() {
        assert_eq!(
            renumbered("SELECT $1, $10 WHERE x = $2", 5),
            "SELECT $6, $15 WHERE x = $7"
        );
        let two = batch_sql(2);
        assert!(two.contains("$3") && two.contains("$8") && !two.contains("$11"));
        assert_eq!(two.matches("INSERT INTO refresh_tokens").count(), 2);
    }
}
