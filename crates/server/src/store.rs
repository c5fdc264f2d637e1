//! Storage: SQLite (embedded default) or PostgreSQL, chosen by `DATABASE_URL`.
//!
//! Both speak the same SQL here: `$n` placeholders, `RETURNING`, times as unix
//! milliseconds in 64-bit integers and UUIDs as the database's native form (a blob on
//! SQLite, `uuid` on PostgreSQL), so each query is written once and runs on whichever
//! pool is configured: `db.read()` or `db.write()`, a [`Pool`] (see [`pool`]).
//!
//! SQLite gets one writer connection and a pool of readers (WAL mode): writes queue in
//! the pool instead of fighting over the database lock, so there is never a
//! "database is locked" under load, only a short wait.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::Config;

pub use pool::{Arg, Pool, Row};

/// The database's clock, as SQL for the backend (`db_now!(sqlite)`, `db_now!(postgres)`):
/// unix milliseconds, the same value wherever a statement uses it. Times that several
/// instances compare (a rotation and its grace window, a token's expiry) come from it,
/// so an instance whose own clock is off moves none of them. On PostgreSQL it is
/// `now()`, the start of the transaction; on SQLite, the clock of the process that
/// runs the statement (every process on the file shares the machine's clock).
macro_rules! db_now {
    (sqlite) => {
        "CAST(ROUND(unixepoch('subsec') * 1000) AS INTEGER)"
    };
    (postgres) => {
        "(EXTRACT(EPOCH FROM now()) * 1000)::bigint"
    };
}

pub mod changes;
pub mod dpop;
pub mod keys;
mod migrations;
pub mod notes;
pub mod pool;
pub mod rotation;
pub mod sessions;
pub mod users;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite {
        /// One connection: every write transaction goes through it, in turn.
        writer: SqlitePool,
        /// Read-only queries.
        reader: SqlitePool,
        /// Rotations, committed in groups on the writer ([`rotation::group`]).
        rotations: rotation::group::GroupCommit,
    },
    Postgres(PgPool),
}

impl Db {
    /// Connects and runs the migrations. Fails loudly (with the migration's error) when
    /// a migration fails: the server must not run against a schema it does not know.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let url = config.database_url();
        let url = url.expose();
        let acquire_timeout = config.database.acquire_timeout;
        let db = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).context("invalid DATABASE_URL")?;
            let pool = PgPoolOptions::new()
                .max_connections(config.database.max_connections)
                .min_connections(1)
                .acquire_timeout(acquire_timeout)
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .context("cannot connect to PostgreSQL")?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("invalid DATABASE_URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                .pragma("temp_store", "memory");
            // Readable by this user only: the directory 0700, the file 0600 (SQLite
            // gives its -wal and -shm files the mode of the database file).
            let path = options.get_filename();
            if let Some(parent) = path.parent() {
                crate::files::create_private_dir(parent)?;
            }
            if path != std::path::Path::new(":memory:") && !path.exists() {
                crate::files::create_private_file(path, b"")?;
            }
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(acquire_timeout)
                .test_before_acquire(false)
                .connect_with(options.clone())
                .await
                .context("cannot open the SQLite database")?;
            let reader = SqlitePoolOptions::new()
                .max_connections(config.database.max_connections.clamp(1, 8))
                .acquire_timeout(acquire_timeout)
                .test_before_acquire(false)
                .connect_with(options.read_only(true))
                .await
                .context("cannot open the SQLite database")?;
            let rotations = rotation::group::GroupCommit::start(writer.clone());
            Db::Sqlite {
                writer,
                reader,
                rotations,
            }
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://");
        };
        db.migrate().await?;
        Ok(db)
    }

    /// A connection of its own, for the change feed ([`crate::feed`]), so that a busy
    /// request pool cannot hold it up: on PostgreSQL one connection whose statements
    /// time out after `timeout` (`application_name` `baton-feed`), on SQLite one
    /// read-only connection. Both of its pools are that connection; it only reads.
    pub async fn dedicated(&self, config: &Config, timeout: Duration) -> anyhow::Result<Db> {
        fn one<DB: sqlx::Database>(timeout: Duration) -> PoolOptions<DB> {
            PoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(timeout)
                // A connection the server ended (a restart, pg_terminate_backend) is
                // noticed before use, not by a failed round.
                .test_before_acquire(true)
        }
        let url = config.database_url();
        match self {
            Db::Postgres(_) => {
                let options = PgConnectOptions::from_str(url.expose())
                    .context("invalid DATABASE_URL")?
                    .application_name("baton-feed")
                    .options([("statement_timeout", timeout.as_millis().to_string())]);
                let pool: PgPool = one(timeout)
                    .connect_with(options)
                    .await
                    .context("cannot connect to PostgreSQL for the change feed")?;
                Ok(Db::Postgres(pool))
            }
            Db::Sqlite { .. } => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .context("invalid DATABASE_URL")?
                    .busy_timeout(timeout)
                    .read_only(true);
                let pool: SqlitePool = one(timeout)
                    .connect_with(options)
                    .await
                    .context("cannot open the SQLite database for the change feed")?;
                Ok(Db::Sqlite {
                    rotations: rotation::group::GroupCommit::start(pool.clone()),
                    writer: pool.clone(),
                    reader: pool,
                })
            }
        }
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite { writer, .. } => migrations::SQLITE
                .migrator()
                .await?
                .run(writer)
                .await
                .context("database migration failed")?,
            Db::Postgres(pool) => migrations::POSTGRES
                .migrator()
                .await?
                .run(pool)
                .await
                .context("database migration failed")?,
        }
        Ok(())
    }

    /// The pool for reads: SQLite's read-only connections, or PostgreSQL's pool.
    pub fn read(&self) -> Pool<'_> {
        match self {
            Db::Sqlite { reader, .. } => Pool::Sqlite(reader),
            Db::Postgres(pool) => Pool::Postgres(pool),
        }
    }

    /// The pool for writes, and for reads that must see every committed write: SQLite's
    /// one writer connection, or PostgreSQL's pool.
    pub fn write(&self) -> Pool<'_> {
        match self {
            Db::Sqlite { writer, .. } => Pool::Sqlite(writer),
            Db::Postgres(pool) => Pool::Postgres(pool),
        }
    }

    /// `SELECT 1`: is the database there and answering?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.read().execute("SELECT 1", &[]).await.map(drop)
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Db::Sqlite { .. })
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader, .. } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
