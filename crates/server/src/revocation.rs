//! Instant revocation of stateless access tokens.
//!
//! Each instance keeps the set of revoked session ids in memory; the authenticated
//! request path checks it without any database I/O. An id is kept until every access
//! token of its session has expired (revocation time + token lifetime + leeway), then
//! forgotten, so the set stays as small as the number of sessions ended in the last
//! token lifetime. A background task polls the shared database (an indexed query on
//! `sessions.revoked_at`) to learn of revocations made by other instances.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use uuid::Uuid;

use crate::clock::millis;
use crate::error::Result;
use crate::store::{self, Db};

/// Re-read this far back on every poll (ms), so that a revocation committed late
/// (a slow transaction, a skewed clock on another instance) is not missed.
const OVERLAP_MS: i64 = 10_000;

pub struct Revocations {
    /// Session id → unix ms after which no access token of it can be valid.
    revoked: RwLock<HashMap<Uuid, i64>>,
    /// Time of the last successful poll (ms); `i64::MIN` before the first.
    last_poll: AtomicI64,
    /// Token lifetime plus leeway plus a second, in ms.
    keep_ms: i64,
}

impl Revocations {
    /// `access_token_life`: how long an access token can be accepted after signing
    /// (lifetime plus leeway); a revoked id is kept one second longer.
    pub fn new(access_token_life: Duration) -> Self {
        Self {
            revoked: RwLock::new(HashMap::new()),
            last_poll: AtomicI64::new(i64::MIN),
            keep_ms: millis(access_token_life) + 1000,
        }
    }

    /// Was this session revoked? The hot path: one read lock and a hash lookup.
    pub fn is_revoked(&self, session_id: &Uuid) -> bool {
        self.revoked
            .read()
            .expect("revocation lock")
            .contains_key(session_id)
    }

    pub fn insert(&self, session_id: Uuid, revoked_at: i64) {
        self.revoked
            .write()
            .expect("revocation lock")
            .insert(session_id, revoked_at + self.keep_ms);
    }

    pub fn len(&self) -> usize {
        self.revoked.read().expect("revocation lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Learns of revocations from the database (all instances' included) and forgets
    /// the ids whose tokens have all expired. Returns how many ids were new.
    pub async fn sync(&self, db: &Db, now: i64) -> Result<usize> {
        let last_poll = self.last_poll.load(Ordering::Relaxed);
        let since = if last_poll == i64::MIN {
            now - self.keep_ms
        } else {
            (last_poll - OVERLAP_MS).max(now - self.keep_ms)
        };
        let rows = store::sessions::revoked_since(db, since).await?;
        let mut new = 0;
        {
            let mut set = self.revoked.write().expect("revocation lock");
            for &(id, revoked_at) in &rows {
                let until = revoked_at + self.keep_ms;
                if until > now && set.insert(id, until).is_none() {
                    new += 1;
                }
            }
            set.retain(|_, until| *until > now);
        }
        self.last_poll.fetch_max(now, Ordering::Relaxed);
        Ok(new)
    }
}
