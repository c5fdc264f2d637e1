//! Times as people read them. Pure, so they are unit-tested natively; no `chrono`, no
//! format-description parser in the wasm.

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, on this browser's clock.
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    return js_sys::Date::now() as i64;
    #[cfg(not(target_arch = "wasm32"))]
    return std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
}

fn epoch_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// `2026-11-24 10:05 UTC`
pub fn date_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// `just now`, `5 min ago`, `3 h ago`, `2 days ago`, or the date for older times.
pub fn ago(now_ms: i64, at: OffsetDateTime) -> String {
    let secs = (now_ms - epoch_ms(at)) / 1000;
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3_600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3_600),
        s if s < 2 * 86_400 => "yesterday".into(),
        s if s < 30 * 86_400 => format!("{} days ago", s / 86_400),
        _ => date_time(at),
    }
}

/// Time left until `until_ms`, rounded up to whole seconds: `4 s`, `14 min 59 s`,
/// `expired`.
pub fn remaining(now_ms: i64, until_ms: i64) -> String {
    let left = until_ms - now_ms;
    if left <= 0 {
        return "expired".into();
    }
    let secs = (left + 999) / 1000;
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-11-24 10:05:09 UTC);

    fn ms(at: OffsetDateTime) -> i64 {
        epoch_ms(at)
    }

    #[test]
    fn dates_are_utc_to_the_minute() {
        assert_eq!(date_time(AT), "2026-11-24 10:05 UTC");
        assert_eq!(
            date_time(datetime!(2026-11-24 12:05:09 +02:00)),
            "2026-11-24 10:05 UTC"
        );
    }

    #[test]
    fn ago_reads_naturally() {
        let t = ms(AT);
        assert_eq!(ago(t, AT), "just now");
        assert_eq!(ago(t - 5_000, AT), "just now");
        assert_eq!(ago(t + 59_999, AT), "just now");
        assert_eq!(ago(t + 60_000, AT), "1 min ago");
        assert_eq!(ago(t + 3_599_000, AT), "59 min ago");
        assert_eq!(ago(t + 3_600_000, AT), "1 h ago");
        assert_eq!(ago(t + 86_400_000, AT), "yesterday");
        assert_eq!(ago(t + 3 * 86_400_000, AT), "3 days ago");
        assert_eq!(ago(t + 40 * 86_400_000, AT), "2026-11-24 10:05 UTC");
    }

    #[test]
    fn remaining_rounds_up_and_stops_at_expired() {
        assert_eq!(remaining(0, 4_000), "4 s");
        assert_eq!(remaining(1, 4_000), "4 s");
        assert_eq!(remaining(3_001, 4_000), "1 s");
        assert_eq!(remaining(4_000, 4_000), "expired");
        assert_eq!(remaining(5_000, 4_000), "expired");
        assert_eq!(remaining(0, 900_000), "15 min 0 s");
        assert_eq!(remaining(1_000, 900_000), "14 min 59 s");
    }
}
