//! RFC 3339 timestamps on the wire (`created_at`, `expires_at`...), for
//! `#[serde(with = "crate::rfc3339")]`: what `time::serde::rfc3339` reads and writes,
//! for the one shape Baton needs (calendar date, time, an optional fraction, `Z` or a
//! `±hh:mm` offset), in a few hundred bytes of code. `time`'s general-purpose parser
//! and formatter cost the browser bundle about 6 KB of wasm for the same.
//!
//! Written in UTC, with the fraction's trailing zeros left out (none when it is
//! zero), as `time` writes a UTC time; read with any offset.

use std::fmt::Write;

use serde::{de, Deserialize, Deserializer, Serializer};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `at` in UTC as RFC 3339, or `None` for a year outside 0-9999 (RFC 3339 has four
/// digits for it).
pub fn format(at: OffsetDateTime) -> Option<String> {
    let at = at.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&at.year()) {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    let nanos = at.nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        let _ = write!(out, ".{}", fraction.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

/// An RFC 3339 date-time (`T`, `t` or a space between date and time, `Z`, `z` or `±hh:mm`
/// after it; fraction digits past nanoseconds ignored), or `None`.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let month = Month::try_from(number(5, 2)? as u8).ok()?;
    let date = Date::from_calendar_date(number(0, 4)? as i32, month, number(8, 2)? as u8).ok()?;
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if at(i, b".") {
        i += 1;
        let start = i;
        while at(i, b"0123456789") {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub((i - start) as u32));
    }
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).ok()?;
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => UtcOffset::UTC,
        sign @ (b'+' | b'-') if i + 6 == b.len() && at(i + 3, b":") => {
            let (h, m) = (number(i + 1, 2)?, number(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let (h, m) = (h as i8, m as i8);
            let (h, m) = if *sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        _ => return None,
    };
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let text = format(*at)
        .ok_or_else(|| serde::ser::Error::custom("a year outside 0-9999 has no RFC 3339 form"))?;
    serializer.serialize_str(&text)
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).ok_or_else(|| de::Error::custom("not an RFC 3339 date-time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn it_writes_what_time_writes_for_utc() {
        for nanos in [0, 1, 5_000_000, 643_000_000, 123_456_789, 100_000_000] {
            for unix in [0, 1_796_227_929, 253_402_300_799, 1_000_000_000] {
                let at = OffsetDateTime::from_unix_timestamp(unix)
                    .unwrap()
                    .replace_nanosecond(nanos)
                    .unwrap();
                let ours = format(at).unwrap();
                assert_eq!(ours, at.format(&Rfc3339).unwrap(), "{unix} {nanos}");
                assert_eq!(parse(&ours), Some(at), "{ours}");
            }
        }
        let with_offset = parse("2026-11-24T12:05:09.5+02:00").unwrap();
        assert_eq!(format(with_offset).unwrap(), "2026-11-24T10:05:09.5Z");
        assert_eq!(
            format(OffsetDateTime::from_unix_timestamp(-62_167_219_201).unwrap()),
            None
        );
    }

    #[test]
    fn it_reads_what_time_reads() {
        for text in [
            "2026-11-24T10:05:09Z",
            "2026-11-24t10:05:09z",
            "2026-11-24 10:05:09Z",
            "2026-11-24T10:05:09.1Z",
            "2026-11-24T10:05:09.123456789Z",
            "2026-11-24T10:05:09.1234567891Z",
            "2026-11-24T10:05:09-07:30",
            "2024-02-29T23:59:59+14:00",
        ] {
            let theirs = OffsetDateTime::parse(text, &Rfc3339).unwrap();
            assert_eq!(parse(text), Some(theirs), "{text}");
        }
        for bad in [
            "",
            "2026-11-24",
            "2026-13-24T10:05:09Z",
            "2026-02-30T10:05:09Z",
            "2026-11-24T24:05:09Z",
            "2026-11-24T10:05:09",
            "2026-11-24T10:05:09.Z",
            "2026-11-24T10:05:09+0200",
            "2026-11-24T10:05:09Zjunk",
            "2026-11-24T10:05:09+25:00",
            "+2026-11-24T10:05:09Z",
            "２026-11-24T10:05:09Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
            assert!(
                OffsetDateTime::parse(bad, &Rfc3339).is_err(),
                "time refuses {bad:?} too"
            );
        }
    }
}
