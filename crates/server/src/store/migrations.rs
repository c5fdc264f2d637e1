//! The schema's migrations, embedded at build time (see `build.rs`), as sqlx migrations
//! named and checksummed exactly as sqlx names a directory's files
//! (`<version>_<description>.sql`), so databases migrated by any earlier build accept
//! them.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// A backend's embedded migration files.
#[derive(Debug, Clone, Copy)]
pub struct Embedded(&'static [(&'static str, &'static str)]);

pub const SQLITE: Embedded = Embedded(embedded::SQLITE);
pub const POSTGRES: Embedded = Embedded(embedded::POSTGRES);

impl Embedded {
    pub async fn migrator(self) -> Result<Migrator, sqlx::migrate::MigrateError> {
        Migrator::new(self).await
    }

    fn migrations(self) -> Result<Vec<Migration>, BoxDynError> {
        let mut migrations = self
            .0
            .iter()
            .map(|&(file_name, sql)| {
                let (version, rest) = file_name.split_once('_').ok_or_else(|| {
                    format!("migration {file_name:?} is not <version>_<description>.sql")
                })?;
                let version: i64 = version
                    .parse()
                    .map_err(|_| format!("migration {file_name:?} has no integer version"))?;
                let migration_type = MigrationType::from_filename(rest);
                let description = rest
                    .trim_end_matches(migration_type.suffix())
                    .replace('_', " ");
                let no_tx = sql.starts_with("-- no-transaction");
                Ok(Migration::new(
                    version,
                    Cow::Owned(description),
                    migration_type,
                    Cow::Borrowed(sql),
                    no_tx,
                ))
            })
            .collect::<Result<Vec<_>, BoxDynError>>()?;
        migrations.sort_by_key(|m| m.version);
        Ok(migrations)
    }
}

impl<'s> MigrationSource<'s> for Embedded {
    #[allow(clippy::type_complexity)] // the trait's own signature
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move { self.migrations() })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// What sqlx reads from the directory (as `migrate!` did) and what is embedded are
    /// the same migrations: versions, descriptions, types, checksums.
    #[tokio::test]
    async fn embedded_migrations_are_the_directories() {
        for (embedded, dir) in [
            (SQLITE, "migrations/sqlite"),
            (POSTGRES, "migrations/postgres"),
        ] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            let from_dir = Migrator::new(dir.as_path()).await.unwrap();
            let ours = embedded.migrator().await.unwrap();
            let key = |m: &Migration| {
                (
                    m.version,
                    m.description.to_string(),
                    m.migration_type,
                    m.checksum.to_vec(),
                    m.no_tx,
                )
            };
            let want: Vec<_> = from_dir.iter().map(key).collect();
            let got: Vec<_> = ours.iter().map(key).collect();
            assert!(!want.is_empty());
            assert_eq!(got, want, "{}", dir.display());
        }
    }
}
