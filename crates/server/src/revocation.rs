//! Instant revocation of stateless access tokens.
//!
//! Each instance keeps the set of revoked session ids in memory; the authenticated
//! request path checks it without any database I/O. Ids come from this instance's own
//! revocations at once, and from every other instance's through the change feed
//! ([`crate::feed`], which also says whether the set is current).
//!
//! An id is kept until no access token of its session can be accepted any more: for the
//! token lifetime, plus the leeway, plus [`RETENTION_MARGIN`], counted from when this
//! instance learned of it on its own monotonic clock. The revoking instance's clock, or
//! the database's, does not enter: a token signed by an instance whose clock runs ahead
//! of this one's by up to the margin is still refused to its last second.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use uuid::Uuid;

/// How far the clocks of two instances may disagree without a revoked session's token
/// outliving its entry here.
pub const RETENTION_MARGIN: Duration = Duration::from_secs(60);

pub struct Revocations {
    /// Session id → when this instance may forget it.
    revoked: RwLock<HashMap<Uuid, Instant>>,
    keep: Duration,
}

impl Revocations {
    /// `access_token_life`: how long an access token can be accepted after signing
    /// (lifetime plus leeway).
    pub fn new(access_token_life: Duration) -> Self {
        Self {
            revoked: RwLock::new(HashMap::new()),
            keep: access_token_life.saturating_add(RETENTION_MARGIN),
        }
    }

    /// How long an id is kept after it is learned: also how far back a starting
    /// instance must read ended sessions.
    pub fn keep(&self) -> Duration {
        self.keep
    }

    /// Was this session revoked? The hot path: one read lock and a hash lookup.
    pub fn is_revoked(&self, session_id: &Uuid) -> bool {
        self.revoked
            .read()
            .expect("revocation lock")
            .contains_key(session_id)
    }

    /// Learns that these sessions ended; returns how many were new here.
    pub fn insert(&self, session_ids: impl IntoIterator<Item = Uuid>) -> usize {
        let until = Instant::now() + self.keep;
        let mut set = self.revoked.write().expect("revocation lock");
        session_ids
            .into_iter()
            .filter(|&id| set.insert(id, until).is_none())
            .count()
    }

    /// Forgets the ids whose access tokens have all expired.
    pub fn forget_expired(&self) {
        let now = Instant::now();
        self.revoked
            .write()
            .expect("revocation lock")
            .retain(|_, until| *until > now);
    }

    pub fn len(&self) -> usize {
        self.revoked.read().expect("revocation lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_kept_for_the_token_life_and_the_margin() {
        let revocations = Revocations::new(Duration::from_secs(900));
        assert_eq!(revocations.keep(), Duration::from_secs(960));
        let id = Uuid::new_v4();
        assert_eq!(revocations.insert([id, id]), 1);
        assert_eq!(revocations.insert([id]), 0, "known already");
        revocations.forget_expired();
        assert!(revocations.is_revoked(&id));
        let short = Revocations {
            revoked: RwLock::default(),
            keep: Duration::ZERO,
        };
        short.insert([id]);
        short.forget_expired();
        assert!(short.is_empty());
    }
}
