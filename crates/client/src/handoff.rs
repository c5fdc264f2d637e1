//! Handing fresh tokens from one tab to the next when `localStorage` lags.
//!
//! Chromium keeps a copy of `localStorage` in each renderer process and brings the
//! copies up to date asynchronously. So a tab can be granted the refresh lock before the
//! tokens the previous holder stored have reached it, read the old refresh token, and
//! present a token that was just spent. The server's grace window forgives that, but a
//! client should not lean on it.
//!
//! The lock manager has no such lag: it is one queue in the browser process. A tab that
//! spends a refresh token therefore takes a second Web Lock, named after that token
//! ([`spent_mark`]), before it lets go of the refresh lock, and holds it for
//! [`SPENT_MARK_MS`]. The next tab, before presenting a token, asks the lock manager
//! whether that token's mark is held; if it is, it waits (up to [`CATCH_UP_MS`]) for the
//! new tokens to arrive in its `localStorage` and uses them instead.

/// How long a tab keeps the mark of a token it spent: far longer than a write takes to
/// reach other tabs, and about the server's default grace window.
pub const SPENT_MARK_MS: u32 = 10_000;

/// How long a tab that sees the mark waits for the new tokens before presenting the old
/// one anyway (the server's grace window then still answers it).
pub const CATCH_UP_MS: i64 = 3_000;

/// How often a tab that waits re-reads `localStorage`.
pub const CATCH_UP_POLL_MS: u32 = 20;

/// Name of the Web Lock that marks `refresh_token` as spent. It carries a 64-bit digest
/// of the token, not the token: lock names can be listed by any script of the origin.
pub fn spent_mark(lock_name: &str, refresh_token: &str) -> String {
    format!("{lock_name}.spent.{:016x}", fnv1a(refresh_token.as_bytes()))
}

/// FNV-1a, 64-bit. Not a cryptographic hash, and it need not be: the token is 256 random
/// bits already spent when its mark is taken, and a collision only makes a tab wait.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_names_the_token_without_containing_it() {
        let token = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8";
        let mark = spent_mark("baton.session.v1.refresh-lock", token);
        assert!(mark.starts_with("baton.session.v1.refresh-lock.spent."));
        assert!(!mark.contains(token));
        assert_eq!(mark, spent_mark("baton.session.v1.refresh-lock", token));
        // 16 hex digits after the prefix.
        let digest = mark.rsplit('.').next().unwrap();
        assert_eq!(digest.len(), 16);
        assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn different_tokens_get_different_marks() {
        let marks: std::collections::HashSet<_> = (0..10_000)
            .map(|i| spent_mark("lock", &format!("token-{i}")))
            .collect();
        assert_eq!(marks.len(), 10_000);
        assert_ne!(spent_mark("lock", "a"), spent_mark("other", "a"));
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
