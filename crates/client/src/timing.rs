//! When to refresh, and how long to wait after a failed refresh. Pure functions of the
//! clock, so they are unit-tested natively.

/// The longest a proactive refresh runs ahead of expiry.
pub const MAX_LEAD_MS: i64 = 60_000;

/// The proactive refresh waits at least this long after the tokens came.
pub const MIN_REFRESH_GAP_MS: i64 = 1_000;

/// How long before an access token expires it is proactively refreshed: 60 s, or a
/// quarter of its lifetime for short-lived tokens (a 4 s token refreshes 1 s ahead).
pub fn lead_ms(lifetime_ms: i64) -> i64 {
    (lifetime_ms / 4).clamp(0, MAX_LEAD_MS)
}

/// An access token this close to expiry is not sent any more: it would likely expire
/// on the way. 2 s, or an eighth of the lifetime for short-lived tokens.
pub fn usable_margin_ms(lifetime_ms: i64) -> i64 {
    (lifetime_ms / 8).clamp(0, 2_000)
}

/// Retry schedule of a refresh that failed without being refused (network error, 429,
/// 5xx): exponential backoff with jitter, then a longer cool-down once it has failed
/// `cooldown_after` times in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub base_ms: i64,
    /// Longest wait before cool-down.
    pub max_ms: i64,
    /// Consecutive failures after which every wait is `cooldown_ms`.
    pub cooldown_after: u32,
    pub cooldown_ms: i64,
    /// Upper bound for a server's `Retry-After`.
    pub max_retry_after_ms: i64,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, 8 s, 16 s, then every 60 s (each ±25 %).
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            max_ms: 16_000,
            cooldown_after: 5,
            cooldown_ms: 60_000,
            max_retry_after_ms: 300_000,
        }
    }
}

impl Backoff {
    /// True once the failures are many enough for the cool-down.
    pub fn cooling_down(&self, failures: u32) -> bool {
        failures > self.cooldown_after
    }

    /// How long to wait after `failures` consecutive failures (1 for the first).
    ///
    /// `jitter` is a random number in `[0, 1)`; the wait is the scheduled one scaled by
    /// 0.75-1.25, so tabs and clients that failed together do not retry together.
    /// A server's `Retry-After` is honoured (up to `max_retry_after_ms`).
    pub fn delay_ms(&self, failures: u32, jitter: f64, retry_after_ms: Option<i64>) -> i64 {
        let scheduled = if self.cooling_down(failures) {
            self.cooldown_ms
        } else {
            let doublings = failures.saturating_sub(1).min(30);
            self.base_ms.saturating_mul(1 << doublings).min(self.max_ms)
        };
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jittered = (scheduled as f64 * (0.75 + 0.5 * jitter)) as i64;
        jittered.max(self.server_wait_ms(retry_after_ms)).max(0)
    }

    /// How much of a server's `Retry-After` is honoured: all of it, up to
    /// `max_retry_after_ms`.
    pub fn server_wait_ms(&self, retry_after_ms: Option<i64>) -> i64 {
        retry_after_ms
            .unwrap_or(0)
            .clamp(0, self.max_retry_after_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_is_a_minute_or_a_quarter_of_short_lifetimes() {
        assert_eq!(lead_ms(15 * 60_000), 60_000);
        assert_eq!(lead_ms(240_000), 60_000);
        assert_eq!(lead_ms(120_000), 30_000);
        assert_eq!(lead_ms(4_000), 1_000);
        assert_eq!(lead_ms(0), 0);
        assert_eq!(lead_ms(-5), 0);
    }

    #[test]
    fn usable_margin_is_small() {
        assert_eq!(usable_margin_ms(15 * 60_000), 2_000);
        assert_eq!(usable_margin_ms(4_000), 500);
        assert_eq!(usable_margin_ms(0), 0);
    }

    #[test]
    fn backoff_doubles_then_cools_down() {
        let b = Backoff::default();
        let middle: Vec<i64> = (1..=8).map(|n| b.delay_ms(n, 0.5, None)).collect();
        assert_eq!(
            middle,
            [1_000, 2_000, 4_000, 8_000, 16_000, 60_000, 60_000, 60_000]
        );
        assert!(!b.cooling_down(5));
        assert!(b.cooling_down(6));
        // Huge failure counts neither overflow nor shrink.
        assert_eq!(b.delay_ms(u32::MAX, 0.5, None), 60_000);
    }

    #[test]
    fn jitter_spreads_the_wait_by_a_quarter() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(1, 0.0, None), 750);
        assert_eq!(b.delay_ms(1, 0.999_999, None), 1_249);
        assert_eq!(b.delay_ms(2, 1.0, None), 2_500);
        // Nonsense randomness is treated as the middle.
        assert_eq!(b.delay_ms(1, f64::NAN, None), 1_000);
        assert_eq!(b.delay_ms(1, -3.0, None), 750);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let b = Backoff::default();
        assert_eq!(b.delay_ms(1, 0.5, Some(30_000)), 30_000);
        assert_eq!(b.delay_ms(1, 0.5, Some(10)), 1_000);
        assert_eq!(b.delay_ms(1, 0.5, Some(86_400_000)), 300_000);
        assert_eq!(b.delay_ms(1, 0.5, Some(-1)), 1_000);
    }
}
