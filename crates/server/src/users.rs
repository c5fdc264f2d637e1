//! The user rows that authenticated reads answer with (`GET /api/me`), kept in memory
//! so that such a request does no database I/O once its user has been seen.
//!
//! - **Bounded**: at most [`CAPACITY`] users (a row is an id, a username of at most 32
//!   bytes and a time: about 1 MB in all), evicted by quick_cache's CLOCK-Pro policy,
//!   so a flood of distinct users costs reads, not memory.
//! - **Invalidated on every write to a user**: a trigger records each `UPDATE` of
//!   `users` in the change feed (migration 0007), whatever code path made it, and every
//!   instance drops the row when it reads the change ([`crate::feed`], pushed on
//!   PostgreSQL); the instance that made the change drops it at once as well.
//! - **No stale refill**: a read that began before an invalidation may finish after it;
//!   the generation counter makes such a read leave the cache as it found it.

use std::sync::atomic::{AtomicU64, Ordering};

use baton_shared::User;
use quick_cache::sync::Cache;
use uuid::Uuid;

use crate::error::Result;
use crate::store::{self, Db};

/// The most users kept.
pub const CAPACITY: usize = 10_000;

pub struct Users {
    rows: Cache<Uuid, User>,
    /// Bumped by every invalidation, before the row is dropped.
    generation: AtomicU64,
}

impl Default for Users {
    fn default() -> Self {
        Self::new(CAPACITY)
    }
}

impl Users {
    pub fn new(capacity: usize) -> Self {
        Users {
            rows: Cache::new(capacity),
            generation: AtomicU64::new(0),
        }
    }

    /// The user `id`, from memory or else the database (`None`: no such user).
    pub async fn get(&self, db: &Db, id: Uuid) -> Result<Option<User>> {
        if let Some(user) = self.rows.get(&id) {
            return Ok(Some(user));
        }
        let before = self.generation.load(Ordering::Acquire);
        let Some(user) = store::users::get(db, id).await? else {
            return Ok(None);
        };
        self.rows.insert(id, user.clone());
        // An invalidation since the read began may have come before the insert (and
        // dropped nothing): then this row may predate the write, so it goes. One that
        // comes after this check drops it itself.
        if self.generation.load(Ordering::Acquire) != before {
            self.rows.remove(&id);
        }
        Ok(Some(user))
    }

    /// The user `id` was written to: the next read goes to the database.
    pub fn invalidate(&self, id: Uuid) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.rows.remove(&id);
    }
}
