//! Time as the server counts it: unix milliseconds in an `i64`, the form the database
//! stores, and conversions of configured [`Duration`]s into it that cannot overflow.

use std::time::Duration;

/// The longest span a configured duration turns into: about 73 million years, far
/// beyond any real setting, and small enough that a timestamp plus a few of them never
/// overflows an `i64`.
pub const MAX_MS: i64 = i64::MAX / 4;

/// Current time as unix milliseconds.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds to a UTC date-time.
pub fn to_datetime(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A duration in milliseconds, saturating at [`MAX_MS`].
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).map_or(MAX_MS, |ms| ms.min(MAX_MS))
}

/// A duration in whole seconds, saturating at [`MAX_MS`] / 1000.
pub fn seconds(duration: Duration) -> i64 {
    millis(duration) / 1000
}

/// When something made at `from_ms` and living `life_ms` expires, as a JWT's `exp`
/// (whole seconds): rounded up, so it lives at least `life_ms`. The one rule for an
/// access token's `exp`, and for how long a replaced key may still have signed tokens
/// that are good.
pub fn expiry_secs(from_ms: i64, life_ms: i64) -> i64 {
    from_ms
        .saturating_add(life_ms)
        .saturating_add(999)
        .div_euclid(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_the_whole_second_at_or_after_the_end_of_life() {
        assert_eq!(expiry_secs(10_000, 4_000), 14);
        assert_eq!(expiry_secs(10_001, 4_000), 15);
        assert_eq!(expiry_secs(10_999, 4_000), 15);
        assert_eq!(expiry_secs(MAX_MS, MAX_MS), (2 * MAX_MS + 999) / 1000);
    }

    #[test]
    fn durations_saturate_instead_of_overflowing() {
        assert_eq!(millis(Duration::from_secs(900)), 900_000);
        assert_eq!(seconds(Duration::from_millis(1_999)), 1);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), MAX_MS);
        assert!(now_ms().checked_add(3 * millis(Duration::MAX)).is_some());
    }
}
