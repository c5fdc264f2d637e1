//! The change feed: how an instance learns what other instances, and the operator
//! commands, changed in the shared database: which sessions ended (so that their
//! access tokens stop here too), whether the signing keys changed, and which users'
//! rows were written to (so that [`crate::users`] drops them). It is the one way such
//! news travels.
//!
//! - **Written by the database.** Triggers (migration 0004) add a row to `changes` in
//!   the transaction that ends a session or touches a key, whatever code path did it.
//!   `seq` is the commit order, so an instance reads the rows after the last one it
//!   has seen and never misses one that committed late ([`crate::store::changes`]).
//! - **Pushed.** On PostgreSQL the triggers `NOTIFY baton_changes`; each instance
//!   `LISTEN`s on a connection of its own and reads the new rows as soon as a
//!   notification arrives.
//! - **Polled as the backstop**, every `BATON_SYNC_INTERVAL_MS`: SQLite has no push,
//!   and a notification is lost with the connection that would have received it.
//! - **On its own connection**, not the request pool (a busy pool cannot starve it),
//!   with a statement timeout and a timeout on the whole round.
//! - **Fail closed.** [`Feed::is_stale`] tells when the last complete read began
//!   longer ago than `BATON_SYNC_MAX_STALENESS_MS`: this instance may then be missing
//!   revocations, and the authenticated path answers 503 until a read succeeds again,
//!   which the sync loop keeps trying without a restart.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::clock::now_ms;
use crate::config::Config;
use crate::store::changes::{self, Change, PAGE};
use crate::store::Db;

/// The PostgreSQL channel the triggers notify.
pub const CHANNEL: &str = "baton_changes";

/// A read of the feed, to be applied and then [committed](Feed::commit).
#[derive(Debug)]
pub struct Batch {
    /// Sessions that ended, in commit order.
    pub ended: Vec<Uuid>,
    /// The signing keys must be read again.
    pub reload_keys: bool,
    /// Users whose rows were written to.
    pub users: Vec<Uuid>,
    last_seq: i64,
    started: Instant,
}

pub struct Feed {
    /// The feed's own connection (PostgreSQL: a pool of one, with a statement timeout;
    /// SQLite: one read-only connection).
    db: Db,
    /// Where to `LISTEN` (PostgreSQL only).
    listen: Option<PgConnectOptions>,
    /// The `seq` of the last change applied.
    cursor: AtomicI64,
    /// The keys must be read again on the next round (after a failed one: a key
    /// change may have been read and not applied).
    reload_keys: AtomicBool,
    /// Milliseconds since `epoch` at which the last complete read began.
    fresh_at: AtomicU64,
    epoch: Instant,
    max_staleness: Duration,
    timeout: Duration,
    wake: Notify,
}

impl Feed {
    /// Opens the feed's connection and reads where it starts: the sessions that ended
    /// within `keep` (their access tokens may still be presented).
    pub async fn start(
        config: &Config,
        db: &Db,
        keep: Duration,
    ) -> anyhow::Result<(Self, Vec<Uuid>)> {
        let timeout = config.background.sync_timeout();
        let feed_db = db.dedicated(config, timeout).await?;
        let since = now_ms() - crate::clock::millis(keep);
        let (ended, cursor) = tokio::time::timeout(timeout, changes::start(&feed_db, since))
            .await
            .map_err(|_| {
                anyhow::anyhow!("reading the change feed took longer than {timeout:?}")
            })??;
        let listen = match db {
            Db::Postgres(_) => Some(
                PgConnectOptions::from_str(config.database_url().expose())?
                    .application_name("baton-listen"),
            ),
            Db::Sqlite { .. } => None,
        };
        let feed = Feed {
            listen,
            db: feed_db,
            cursor: AtomicI64::new(cursor),
            reload_keys: AtomicBool::new(false),
            fresh_at: AtomicU64::new(0),
            epoch: Instant::now(),
            max_staleness: config.background.max_staleness,
            timeout,
            wake: Notify::new(),
        };
        Ok((feed, ended))
    }

    /// The feed's own connection, for what a round reads besides the changes (keys).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// How long one round may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Reads the changes after the cursor.
    pub async fn read(&self) -> crate::error::Result<Batch> {
        let started = Instant::now();
        let mut cursor = self.cursor.load(Ordering::Acquire);
        let mut batch = Batch {
            ended: Vec::new(),
            users: Vec::new(),
            reload_keys: self.reload_keys.swap(false, Ordering::AcqRel),
            last_seq: cursor,
            started,
        };
        loop {
            let (rows, last) = match changes::after(&self.db, cursor).await {
                Ok(read) => read,
                Err(e) => {
                    self.reload_keys
                        .fetch_or(batch.reload_keys, Ordering::AcqRel);
                    return Err(e);
                }
            };
            let full = rows.len() as i64 == PAGE;
            for change in rows {
                match change {
                    Change::SessionEnded(id) => batch.ended.push(id),
                    Change::KeysChanged => batch.reload_keys = true,
                    Change::UserChanged(id) => batch.users.push(id),
                    Change::Other => {}
                }
            }
            cursor = last;
            if !full {
                break;
            }
        }
        batch.last_seq = cursor;
        Ok(batch)
    }

    /// Records that `batch` was applied: the cursor moves past it, and this instance
    /// knows every change that committed before the read began.
    pub fn commit(&self, batch: &Batch) {
        self.cursor.store(batch.last_seq, Ordering::Release);
        self.mark_fresh(batch.started);
    }

    /// A batch was read but could not be applied (the keys did not load): the next
    /// round reads its changes again, and the keys.
    pub fn retry(&self, batch: &Batch) {
        self.reload_keys
            .fetch_or(batch.reload_keys, Ordering::AcqRel);
    }

    /// A round was cut short: the next one reads the keys again, in case it had read
    /// a key change it did not apply.
    pub fn retry_keys(&self) {
        self.reload_keys.store(true, Ordering::Release);
    }

    /// Marks the state as complete up to `at` (the start of the read).
    pub fn mark_fresh(&self, at: Instant) {
        let ms = at.saturating_duration_since(self.epoch).as_millis() as u64;
        self.fresh_at.fetch_max(ms, Ordering::AcqRel);
    }

    /// How long ago the last complete read began.
    pub fn age(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.fresh_at.load(Ordering::Acquire)))
    }

    /// Is this instance's knowledge of ended sessions older than the staleness bound?
    /// The authenticated path's check: two atomic reads and the monotonic clock.
    pub fn is_stale(&self) -> bool {
        self.age() > self.max_staleness
    }

    /// Waits until the next round is due: a notification arrived, or `every` passed.
    pub async fn next_round(&self, every: Duration) {
        tokio::select! {
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }

    /// PostgreSQL: listens for the triggers' notifications until `stop`, waking the
    /// sync loop on each (and on every reconnection, since notifications sent while
    /// the connection was down are lost). SQLite: returns at once.
    pub async fn listen(&self, stop: CancellationToken) {
        let Some(options) = &self.listen else {
            return;
        };
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let connected = async {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await?;
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = tokio::select! {
                _ = stop.cancelled() => return,
                connected = connected => match connected {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for changes; polling meanwhile");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                },
            };
            backoff = Duration::from_millis(100);
            // Anything sent before the LISTEN took effect is read now.
            self.wake.notify_one();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    received = listener.try_recv() => match received {
                        Ok(Some(_)) => self.wake.notify_one(),
                        // The connection was lost: notifications may be missing.
                        Ok(None) => self.wake.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "listening for changes failed; reconnecting");
                            break;
                        }
                    },
                }
            }
        }
    }

    pub async fn close(&self) {
        self.db.close().await;
    }
}
