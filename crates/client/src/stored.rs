//! The session as it is kept in `localStorage`: one versioned JSON document under one
//! key, so that every tab of the origin sees the same tokens.
//!
//! Anything under the key that is not a valid document of [`FORMAT_VERSION`] (corrupt
//! JSON, an older layout, a token missing) is discarded: the caller removes it and the
//! user logs in again. Parsing never panics.

use std::fmt;

use baton_shared::{TokenPair, User};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::timing;

/// The layout version this build reads and writes. Bump it when the layout changes;
/// documents of other versions are then discarded rather than misread.
pub const FORMAT_VERSION: u32 = 1;

/// Everything a tab needs to make authenticated calls and refresh them.
///
/// Times are absolute milliseconds since the Unix epoch on this browser's clock,
/// computed from the server's relative `expires_in` at receipt, so a wrong system clock
/// does not matter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    /// Always [`FORMAT_VERSION`].
    pub v: u32,
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token was received.
    pub access_received_at: i64,
    /// When the access token expires.
    pub access_expires_at: i64,
    /// When the refresh token expires (idle or absolute limit, whichever comes first).
    pub refresh_expires_at: i64,
    pub session_id: Uuid,
    pub user: User,
    /// How many times this session's tokens were refreshed (by any tab).
    pub refreshes: u32,
    /// The id of the IndexedDB entry of the DPoP key the session is bound to (never the
    /// key itself, which no script can read); absent for a Bearer session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
    /// The wait after a failed refresh, shared by every tab through this document (so
    /// a tab that did not fail, or was reloaded, waits as well); the next tokens come
    /// without one. Until `retry_after_until` (the server's `Retry-After`) no tab
    /// presents the refresh token, woken or not; until `backoff_until` (the client's
    /// backoff) only a tab woken (back online, visible again, "Retry now") does, as its
    /// reason to wait may be gone. 0 when there is none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_after_until: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub backoff_until: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("v", &self.v)
            .field("access_token", &"..")
            .field("refresh_token", &"..")
            .field("access_received_at", &self.access_received_at)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("session_id", &self.session_id)
            .field("user", &self.user)
            .field("refreshes", &self.refreshes)
            .field("dpop_key", &self.dpop_key)
            .field("retry_after_until", &self.retry_after_until)
            .field("backoff_until", &self.backoff_until)
            .finish()
    }
}

/// Why stored contents were discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Not JSON, or not the expected shape.
    Corrupt,
    /// A document of another layout version.
    OtherVersion(u32),
    /// The right shape, but values no session can have (an empty token, an expiry
    /// before its receipt).
    Invalid,
}

impl StoredSession {
    /// The session a login or refresh answer starts, received at `now_ms`.
    pub fn from_pair(pair: TokenPair, now_ms: i64, refreshes: u32) -> Self {
        let secs_to_ms = |s: i64| s.clamp(0, i64::MAX / 2000) * 1000;
        Self {
            v: FORMAT_VERSION,
            access_received_at: now_ms,
            access_expires_at: now_ms + secs_to_ms(pair.expires_in),
            refresh_expires_at: now_ms + secs_to_ms(pair.refresh_expires_in),
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            session_id: pair.session_id,
            user: pair.user,
            refreshes,
            dpop_key: None,
            retry_after_until: 0,
            backoff_until: 0,
        }
    }

    /// The same session, bound to DPoP key `key` (or to none).
    pub fn with_dpop_key(mut self, key: Option<String>) -> Self {
        self.dpop_key = key;
        self
    }

    /// The same session, with the wait of a failed refresh.
    pub fn waiting(self, retry_after_until: i64, backoff_until: i64) -> Self {
        Self {
            retry_after_until,
            backoff_until,
            ..self
        }
    }

    /// Until when a tab (`woken` or not) must wait before presenting the refresh token;
    /// `None` if it need not.
    pub fn wait_until(&self, now_ms: i64, woken: bool) -> Option<i64> {
        let until = if woken {
            self.retry_after_until
        } else {
            self.retry_after_until.max(self.backoff_until)
        };
        (until > now_ms).then_some(until)
    }

    /// Reads stored contents; `Err` means: remove them.
    pub fn parse(raw: &str) -> Result<Self, Discard> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version = serde_json::from_str::<Version>(raw)
            .map_err(|_| Discard::Corrupt)?
            .v;
        if version != FORMAT_VERSION {
            return Err(Discard::OtherVersion(version));
        }
        let session: Self = serde_json::from_str(raw).map_err(|_| Discard::Corrupt)?;
        let valid = !session.access_token.is_empty()
            && !session.refresh_token.is_empty()
            && session.access_received_at > 0
            && session.access_expires_at >= session.access_received_at
            && session.refresh_expires_at >= session.access_received_at;
        if valid {
            Ok(session)
        } else {
            Err(Discard::Invalid)
        }
    }

    /// The document to store.
    pub fn to_json(&self) -> String {
        // Plain strings, integers and a UUID: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// How long the access token lives, in milliseconds.
    pub fn access_lifetime_ms(&self) -> i64 {
        self.access_expires_at - self.access_received_at
    }

    /// When a proactive refresh is due: [`timing::lead_ms`] before expiry.
    pub fn refresh_due_at(&self) -> i64 {
        self.access_expires_at - timing::lead_ms(self.access_lifetime_ms())
    }

    /// True when the access token is still good to send: not expired and not about to
    /// (within [`timing::usable_margin_ms`]).
    pub fn access_usable(&self, now_ms: i64) -> bool {
        now_ms + timing::usable_margin_ms(self.access_lifetime_ms()) < self.access_expires_at
    }

    /// True when a proactive refresh is due.
    pub fn refresh_due(&self, now_ms: i64) -> bool {
        now_ms >= self.refresh_due_at()
    }

    /// How long from `now_ms` the proactive refresh timer waits: until the refresh is
    /// due, less up to a quarter of the lead (at most 2 s) picked by `jitter` (in
    /// `[0, 1)`), which spreads tabs so they rarely contend for the lock; never sooner
    /// than [`timing::MIN_REFRESH_GAP_MS`] after the tokens came, so that no lifetime (a
    /// server with `BATON_ACCESS_TTL=0`) makes a tab refresh in a loop.
    pub fn proactive_refresh_in(&self, now_ms: i64, jitter: f64) -> u32 {
        let spread = (timing::lead_ms(self.access_lifetime_ms()) / 4).min(2_000) as f64;
        let due = (self.refresh_due_at() - (jitter * spread) as i64)
            .max(self.access_received_at + timing::MIN_REFRESH_GAP_MS);
        (due - now_ms).clamp(0, i32::MAX as i64) as u32
    }

    /// True when the refresh token itself is past its limit: the session is over.
    pub fn refresh_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.refresh_expires_at
    }
}

/// Sessions a tab saw end: a late write of one of them by another tab (possible where
/// only the `localStorage` lease coordinates tabs) is removed again instead of adopted.
/// Such a write comes within seconds, so the last [`Ended::KEPT`] are enough, and a tab
/// open for months does not grow without bound.
#[derive(Debug, Default)]
pub struct Ended(Vec<Uuid>);

impl Ended {
    pub const KEPT: usize = 16;

    pub fn mark(&mut self, session_id: Uuid) {
        if !self.contains(session_id) {
            if self.0.len() == Self::KEPT {
                self.0.remove(0);
            }
            self.0.push(session_id);
        }
    }

    pub fn contains(&self, session_id: Uuid) -> bool {
        self.0.contains(&session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tab_remembers_the_last_sessions_that_ended_and_no_more() {
        let mut ended = Ended::default();
        for n in 0..100 {
            ended.mark(Uuid::from_u128(n));
            ended.mark(Uuid::from_u128(n));
        }
        assert_eq!(ended.0.len(), Ended::KEPT);
        assert!(ended.contains(Uuid::from_u128(99)));
        assert!(ended.contains(Uuid::from_u128(100 - Ended::KEPT as u128)));
        assert!(!ended.contains(Uuid::from_u128(99 - Ended::KEPT as u128)));
    }

    fn pair() -> TokenPair {
        TokenPair {
            access_token: "access-1".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: "refresh-1".into(),
            refresh_expires_in: 7 * 24 * 3600,
            session_id: Uuid::from_u128(7),
            user: User {
                id: Uuid::from_u128(1),
                username: "alice".into(),
                created_at: time::macros::datetime!(2026-11-24 10:00:00 UTC),
            },
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_token_pair_becomes_absolute_times_at_receipt() {
        let s = StoredSession::from_pair(pair(), NOW, 3);
        assert_eq!(s.v, FORMAT_VERSION);
        assert_eq!(s.access_received_at, NOW);
        assert_eq!(s.access_expires_at, NOW + 900_000);
        assert_eq!(s.refresh_expires_at, NOW + 7 * 24 * 3600 * 1000);
        assert_eq!(s.access_lifetime_ms(), 900_000);
        assert_eq!(s.refreshes, 3);
        assert_eq!(s.user.username, "alice");
    }

    #[test]
    fn what_is_stored_reads_back() {
        let s = StoredSession::from_pair(pair(), NOW, 0);
        assert_eq!(StoredSession::parse(&s.to_json()), Ok(s));
    }

    #[test]
    fn a_failed_refreshs_wait_is_stored_and_binds_by_kind() {
        let fresh = StoredSession::from_pair(pair(), NOW, 0);
        // A document without a wait does not mention it (as those of older builds).
        assert!(!fresh.to_json().contains("until"));
        assert_eq!(fresh.wait_until(NOW, false), None);
        let s = fresh.waiting(NOW + 20_000, NOW + 30_000);
        assert_eq!(StoredSession::parse(&s.to_json()), Ok(s.clone()));
        assert_eq!(s.wait_until(NOW, false), Some(NOW + 30_000));
        assert_eq!(
            s.wait_until(NOW, true),
            Some(NOW + 20_000),
            "woken: the server's only"
        );
        assert_eq!(s.wait_until(NOW + 20_000, true), None);
        assert_eq!(s.wait_until(NOW + 30_000, false), None);
    }

    #[test]
    fn corrupt_contents_are_discarded_not_panicked_on() {
        for raw in [
            "",
            "null",
            "{",
            "[]",
            "42",
            "\"string\"",
            "{\"v\":1}",
            "{\"v\":\"1\"}",
            "{\"access_token\":\"a\",\"refresh_token\":\"b\"}",
            "\u{0}\u{ffff}",
        ] {
            assert_eq!(
                StoredSession::parse(raw),
                Err(Discard::Corrupt),
                "{raw:?} should be discarded as corrupt"
            );
        }
    }

    #[test]
    fn other_versions_are_discarded() {
        let mut doc: serde_json::Value =
            serde_json::from_str(&StoredSession::from_pair(pair(), NOW, 0).to_json()).unwrap();
        doc["v"] = 0.into();
        assert_eq!(
            StoredSession::parse(&doc.to_string()),
            Err(Discard::OtherVersion(0))
        );
        doc["v"] = 2.into();
        assert_eq!(
            StoredSession::parse(&doc.to_string()),
            Err(Discard::OtherVersion(2))
        );
    }

    #[test]
    fn impossible_values_are_discarded() {
        let good = StoredSession::from_pair(pair(), NOW, 0);
        let mut empty_refresh = good.clone();
        empty_refresh.refresh_token.clear();
        let mut empty_access = good.clone();
        empty_access.access_token.clear();
        let mut backwards = good.clone();
        backwards.access_expires_at = NOW - 1;
        for bad in [empty_refresh, empty_access, backwards] {
            assert_eq!(StoredSession::parse(&bad.to_json()), Err(Discard::Invalid));
        }
    }

    #[test]
    fn debug_output_hides_the_tokens() {
        let shown = format!("{:?}", StoredSession::from_pair(pair(), NOW, 0));
        assert!(
            !shown.contains("access-1") && !shown.contains("refresh-1"),
            "{shown}"
        );
    }

    #[test]
    fn usable_due_and_expired() {
        let s = StoredSession::from_pair(pair(), NOW, 0);
        // 15 minutes: refresh 60 s before expiry, stop sending it 2 s before.
        assert!(!s.refresh_due(NOW));
        assert!(!s.refresh_due(NOW + 839_999));
        assert!(s.refresh_due(NOW + 840_000));
        assert!(s.access_usable(NOW + 897_999));
        assert!(!s.access_usable(NOW + 898_000));
        assert!(!s.refresh_expired(NOW + 900_000));
        assert!(s.refresh_expired(s.refresh_expires_at));
    }

    #[test]
    fn the_proactive_timer_runs_until_due_less_a_spread() {
        let s = StoredSession::from_pair(pair(), NOW, 0);
        // Due 840 s after receipt; the spread is at most 2 s.
        assert_eq!(s.proactive_refresh_in(NOW, 0.0), 840_000);
        assert_eq!(s.proactive_refresh_in(NOW, 0.5), 839_000);
        assert_eq!(s.proactive_refresh_in(NOW + 100_000, 0.999), 738_002);
        // Overdue: at once.
        assert_eq!(s.proactive_refresh_in(NOW + 900_000, 0.5), 0);
        // A token of no lifetime still waits the floor: no refresh loop.
        let mut instant = pair();
        instant.expires_in = 0;
        let s = StoredSession::from_pair(instant, NOW, 0);
        assert_eq!(s.proactive_refresh_in(NOW, 0.5), 1_000);
        assert_eq!(s.proactive_refresh_in(NOW + 1_000, 0.5), 0);
    }
}
