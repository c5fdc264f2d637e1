//! The fallback for browsers without the Web Locks API: a lease in `localStorage`
//! (`<until ms> <owner id>`) that a tab takes when it is free or
//! expired, then re-reads after a short pause to see whether another tab overwrote it.
//! Weaker than a Web Lock (two tabs can still race in a narrow window), which is why
//! the client never depends on it alone: a tab that waited always re-reads the stored
//! tokens before refreshing.

/// How long a lease is valid: longer than one refresh request may take
/// (`Config::refresh_timeout_ms`, 7 s), and shorter than the server's reuse grace
/// window (10 s by default). A tab closed or reloaded gives its lease back on
/// `pagehide`; one that crashed (or was killed) while its refresh was in flight (the
/// token rotated, the answer never stored) holds the others back for at most this long,
/// so the next tab still presents that token inside the window and gets the same
/// successor, instead of everyone being logged out for reuse.
pub const LEASE_MS: i64 = 9_000;

// The server's default BATON_REUSE_GRACE, and the client's own reading of it.
const _: () = assert!(LEASE_MS < 10_000 && LEASE_MS < crate::refresh::SPENT_MARK_MS as i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

impl Lease {
    pub fn parse(raw: &str) -> Option<Lease> {
        let (until, owner) = raw.split_once(' ')?;
        Some(Lease {
            owner: owner.to_owned(),
            until: until.parse().ok()?,
        })
    }
}

/// What a tab should do about the lease it just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseCheck {
    /// It holds the lease.
    Held,
    /// Nobody holds it (absent, unreadable or expired): write one and check again.
    Free,
    /// Another tab holds it: wait and look again.
    Taken,
}

/// What the lease `raw` means for tab `me` at `now_ms`. A lease that ends further
/// ahead than a new one would was written before the clock went back: it is dead,
/// not valid for however long the jump was.
pub fn check(raw: Option<&str>, me: &str, now_ms: i64) -> LeaseCheck {
    match raw.and_then(Lease::parse) {
        Some(lease) if lease.until > now_ms + LEASE_MS => LeaseCheck::Free,
        Some(lease) if lease.owner == me && lease.until > now_ms => LeaseCheck::Held,
        Some(lease) if lease.until > now_ms => LeaseCheck::Taken,
        _ => LeaseCheck::Free,
    }
}

pub fn new_lease(me: &str, now_ms: i64) -> String {
    format!("{} {me}", now_ms + LEASE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlasts_a_refresh_request() {
        let refresh_timeout = i64::from(crate::Config::default().refresh_timeout_ms);
        assert!(LEASE_MS > refresh_timeout);
    }

    #[test]
    fn leases_are_held_free_or_taken() {
        let mine = new_lease("a", 1_000);
        assert_eq!(check(Some(&mine), "a", 1_000), LeaseCheck::Held);
        assert_eq!(check(Some(&mine), "b", 1_000), LeaseCheck::Taken);
        // Expired: free for anyone, including its old owner (who must write it again).
        assert_eq!(check(Some(&mine), "b", 1_000 + LEASE_MS), LeaseCheck::Free);
        assert_eq!(check(Some(&mine), "a", 1_000 + LEASE_MS), LeaseCheck::Free);
        assert_eq!(check(None, "a", 0), LeaseCheck::Free);
        assert_eq!(check(Some("garbage"), "a", 0), LeaseCheck::Free);
        assert_eq!(check(Some("12x a"), "a", 0), LeaseCheck::Free);
        // Written an hour ahead of this clock (it went back since): dead at once.
        let before_the_jump = new_lease("b", 1_000 + 3_600_000);
        assert_eq!(check(Some(&before_the_jump), "a", 1_000), LeaseCheck::Free);
        assert_eq!(check(Some(&before_the_jump), "b", 1_000), LeaseCheck::Free);
        assert_eq!(
            Lease::parse(&new_lease("tab-1", 5)),
            Some(Lease {
                owner: "tab-1".into(),
                until: 5 + LEASE_MS
            })
        );
    }
}
