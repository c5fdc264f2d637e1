//! The fallback for browsers without the Web Locks API: a lease in `localStorage`
//! (`<until ms> <owner id>`) that a tab takes when it is free or
//! expired, then re-reads after a short pause to see whether another tab overwrote it.
//! Weaker than a Web Lock (two tabs can still race in a narrow window), which is why
//! the client never depends on it alone: a tab that waited always re-reads the stored
//! tokens before refreshing.

/// How long a lease is valid: longer than a refresh can take (its request times out
/// first), so a tab that crashed holding it blocks others for at most this long.
pub const LEASE_MS: i64 = 25_000;

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

pub fn check(raw: Option<&str>, me: &str, now_ms: i64) -> LeaseCheck {
    match raw.and_then(Lease::parse) {
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
        assert_eq!(
            Lease::parse(&new_lease("tab-1", 5)),
            Some(Lease {
                owner: "tab-1".into(),
                until: 5 + LEASE_MS
            })
        );
    }
}
