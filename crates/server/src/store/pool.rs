//! One way to run a statement on either database: [`Pool`] is SQLite's or PostgreSQL's
//! pool, and its methods take the SQL text and the values of its `$n` placeholders as
//! [`Arg`]s. Only here does code match on the backend to run a statement, so a store
//! function is a plain call whose `?` means what it always means; where the two
//! dialects differ, the store function picks the SQL text with [`super::Db::is_sqlite`].
//!
//! Queries are checked at run time, not with sqlx's compile-time macros: `query!`
//! checks its SQL against the one database `DATABASE_URL` names while compiling, so a
//! text shared by both backends could only be checked against one of them (and the
//! two dialect-specific statements of [`super::rotation`] not at all), and the two
//! schemas decode UUIDs differently (a blob on SQLite, `uuid` on PostgreSQL). Instead,
//! every store function runs on both databases in the test suite (`db_tests!`), which
//! checks each statement against the real schema of each.

use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::sqlite::{SqliteQueryResult, SqliteRow};
use sqlx::{
    Arguments, Database, Encode, FromRow, IntoArguments, PgPool, Postgres, Sqlite, SqlitePool, Type,
};
use uuid::Uuid;

/// The value of one `$n` placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Uuid(Uuid),
    OptionalUuid(Option<Uuid>),
    Int(i64),
    Text(&'a str),
    OptionalText(Option<&'a str>),
    Bytes(&'a [u8]),
}

impl From<Uuid> for Arg<'_> {
    fn from(value: Uuid) -> Self {
        Arg::Uuid(value)
    }
}

impl From<Option<Uuid>> for Arg<'_> {
    fn from(value: Option<Uuid>) -> Self {
        Arg::OptionalUuid(value)
    }
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(value)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(value)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::OptionalText(value)
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(value: &'a [u8]) -> Self {
        Arg::Bytes(value)
    }
}

/// A row type both backends can decode: every struct declared with [`row!`] and every
/// tuple of column types (`(i64,)` for a single value).
pub trait Row: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// Declares a struct whose fields are a query's columns, by name, and its decoding from
/// a row of either backend. It does what `#[derive(sqlx::FromRow)]` would; sqlx's derive
/// lives in its proc-macro crate, which would compile a second copy of sqlx for the
/// host (see `build.rs`).
macro_rules! row {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty),* $(,)?
    }) => {
        $(#[$meta])* $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty),*
        }
        $crate::store::pool::row!(@decode $name sqlx::sqlite::SqliteRow, $($field),*);
        $crate::store::pool::row!(@decode $name sqlx::postgres::PgRow, $($field),*);
    };
    (@decode $name:ident $row:ty, $($field:ident),*) => {
        impl<'r> sqlx::FromRow<'r, $row> for $name {
            fn from_row(row: &'r $row) -> sqlx::Result<Self> {
                use sqlx::Row as _;
                Ok(Self { $($field: row.try_get(stringify!($field))?),* })
            }
        }
    };
}
pub(crate) use row;

/// The pool a statement runs on: SQLite's writer or readers, or PostgreSQL's pool.
#[derive(Debug, Clone, Copy)]
pub enum Pool<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}

/// The values of `args`, in order, as the arguments of one statement of `DB`.
pub(crate) fn arguments<'q, DB>(args: &[Arg<'q>]) -> Result<DB::Arguments<'q>, sqlx::Error>
where
    DB: Database,
    Uuid: Encode<'q, DB> + Type<DB>,
    Option<Uuid>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
{
    let mut out = DB::Arguments::default();
    for arg in args {
        match *arg {
            Arg::Uuid(v) => out.add(v),
            Arg::OptionalUuid(v) => out.add(v),
            Arg::Int(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::OptionalText(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

impl Pool<'_> {
    /// Runs a statement; returns how many rows it changed.
    pub async fn execute(self, sql: &str, args: &[Arg<'_>]) -> Result<u64, sqlx::Error> {
        let done = match self {
            Pool::Sqlite(pool) => {
                let query = sqlx::query_with(sql, arguments::<Sqlite>(args)?);
                query.execute(pool).await?.rows_affected()
            }
            Pool::Postgres(pool) => {
                let query = sqlx::query_with(sql, arguments::<Postgres>(args)?);
                query.execute(pool).await?.rows_affected()
            }
        };
        Ok(done)
    }

    /// The row of a statement that returns at most one.
    pub async fn fetch_optional<R: Row>(
        self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<R>, sqlx::Error> {
        Ok(self.fetch_all(sql, args).await?.into_iter().next())
    }

    /// The one row a statement must return.
    pub async fn fetch_one<R: Row>(self, sql: &str, args: &[Arg<'_>]) -> Result<R, sqlx::Error> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Every row.
    pub async fn fetch_all<R: Row>(
        self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Vec<R>, sqlx::Error> {
        match self {
            Pool::Sqlite(pool) => {
                let query = sqlx::query_as_with(sql, arguments::<Sqlite>(args)?);
                query.fetch_all(pool).await
            }
            Pool::Postgres(pool) => {
                let query = sqlx::query_as_with(sql, arguments::<Postgres>(args)?);
                query.fetch_all(pool).await
            }
        }
    }

    /// Runs the statements in order in one transaction, all of them or none; returns
    /// how many rows each changed.
    pub async fn transaction(
        self,
        statements: &[(&str, &[Arg<'_>])],
    ) -> Result<Vec<u64>, sqlx::Error> {
        match self {
            Pool::Sqlite(pool) => {
                let changed = |done: SqliteQueryResult| done.rows_affected();
                in_transaction(pool, statements, arguments::<Sqlite>, changed).await
            }
            Pool::Postgres(pool) => {
                let changed = |done: PgQueryResult| done.rows_affected();
                in_transaction(pool, statements, arguments::<Postgres>, changed).await
            }
        }
    }
}

/// One statement: its SQL text and the values of its placeholders.
pub type Statement<'s, 'a> = (&'s str, &'s [Arg<'a>]);

impl Pool<'_> {
    /// Runs `guard`, `statements` and `last` in order in one transaction and returns the
    /// rows of `last`; but when `guard` changes no row (a compare-and-swap that lost),
    /// rolls back at once and returns `None`.
    pub async fn guarded_transaction<R: Row>(
        self,
        guard: Statement<'_, '_>,
        statements: &[Statement<'_, '_>],
        last: Statement<'_, '_>,
    ) -> Result<Option<Vec<R>>, sqlx::Error> {
        match self {
            Pool::Sqlite(pool) => {
                let changed = |done: SqliteQueryResult| done.rows_affected();
                let arguments = arguments::<Sqlite>;
                in_guarded_transaction(pool, guard, statements, last, arguments, changed).await
            }
            Pool::Postgres(pool) => {
                let changed = |done: PgQueryResult| done.rows_affected();
                let arguments = arguments::<Postgres>;
                in_guarded_transaction(pool, guard, statements, last, arguments, changed).await
            }
        }
    }
}

/// [`Pool::guarded_transaction`] on one backend's pool. Dropping the transaction
/// without commit rolls it back.
async fn in_guarded_transaction<'q, DB: Database, R>(
    pool: &sqlx::Pool<DB>,
    guard: Statement<'q, 'q>,
    statements: &[Statement<'q, 'q>],
    last: Statement<'q, 'q>,
    arguments: fn(&[Arg<'q>]) -> Result<DB::Arguments<'q>, sqlx::Error>,
    changed: fn(DB::QueryResult) -> u64,
) -> Result<Option<Vec<R>>, sqlx::Error>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments<'q>: IntoArguments<'q, DB>,
    R: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
{
    let mut tx = pool.begin().await?;
    let (sql, args) = guard;
    let done = sqlx::query_with(sql, arguments(args)?)
        .execute(&mut *tx)
        .await?;
    if changed(done) == 0 {
        return Ok(None);
    }
    for &(sql, args) in statements {
        sqlx::query_with(sql, arguments(args)?)
            .execute(&mut *tx)
            .await?;
    }
    let (sql, args) = last;
    let rows = sqlx::query_as_with(sql, arguments(args)?)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(rows))
}

/// [`Pool::transaction`] on one backend's pool.
async fn in_transaction<'q, DB: Database>(
    pool: &sqlx::Pool<DB>,
    statements: &[(&'q str, &[Arg<'q>])],
    arguments: fn(&[Arg<'q>]) -> Result<DB::Arguments<'q>, sqlx::Error>,
    changed: fn(DB::QueryResult) -> u64,
) -> Result<Vec<u64>, sqlx::Error>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let mut tx = pool.begin().await?;
    let mut counts = Vec::with_capacity(statements.len());
    for &(sql, args) in statements {
        let done = sqlx::query_with(sql, arguments(args)?)
            .execute(&mut *tx)
            .await?;
        counts.push(changed(done));
    }
    tx.commit().await?;
    Ok(counts)
}
