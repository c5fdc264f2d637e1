//! Where to send the user: the login URL with a `next` parameter, and the check that a
//! `next` taken from a URL cannot send them to another site.

/// True if `next` is a path on this origin: it starts with exactly one `/`.
///
/// Refused: anything not starting with `/` (`https://evil.example`, `javascript:..`),
/// a protocol-relative `//host`, `/\host` (browsers read `\` as `/`), and any control
/// character or whitespace, because browsers drop tabs and newlines from URLs, which
/// would turn `/\t/evil.example` into `//evil.example`.
pub fn is_safe_next(next: &str) -> bool {
    let mut chars = next.chars();
    if chars.next() != Some('/') {
        return false;
    }
    if matches!(chars.next(), Some('/' | '\\')) {
        return false;
    }
    !next.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// `next` if it is safe (see [`is_safe_next`]), else `fallback`.
pub fn safe_next_or<'a>(next: Option<&'a str>, fallback: &'a str) -> &'a str {
    match next {
        Some(next) if is_safe_next(next) => next,
        _ => fallback,
    }
}

/// `login_path?next=<next>`, or just `login_path` when `next` is missing, unsafe, or
/// itself the login page.
pub fn login_url(login_path: &str, next: Option<&str>) -> String {
    match next {
        Some(next)
            if is_safe_next(next)
                && next != "/"
                && !next.starts_with(&format!("{login_path}?"))
                && next != login_path =>
        {
            format!("{login_path}?next={}", encode_query_value(next))
        }
        _ => login_path.to_owned(),
    }
}

/// Percent-encodes a query-string value: everything but unreserved characters and `/`
/// (kept for readable `next=/notes/…`).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(byte >> 4) as usize] as char);
                out.push(HEX[(byte & 0xf) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_paths_are_safe() {
        for next in ["/", "/notes", "/notes/123?tab=2#x", "/a//b", "/%2F%2Fx"] {
            assert!(is_safe_next(next), "{next}");
        }
    }

    #[test]
    fn anything_that_can_leave_the_origin_is_not() {
        for next in [
            "",
            "notes",
            "//evil.example",
            "//evil.example/notes",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            " /notes",
            "/no tes",
        ] {
            assert!(!is_safe_next(next), "{next:?}");
        }
        assert_eq!(safe_next_or(Some("//evil.example"), "/notes"), "/notes");
        assert_eq!(safe_next_or(Some("/devices"), "/notes"), "/devices");
        assert_eq!(safe_next_or(None, "/notes"), "/notes");
    }

    #[test]
    fn login_urls_carry_an_encoded_next() {
        assert_eq!(
            login_url("/login", Some("/notes/5?q=a%20b&x=1")),
            "/login?next=/notes/5%3Fq%3Da%2520b%26x%3D1"
        );
        assert_eq!(login_url("/login", Some("/notes")), "/login?next=/notes");
        assert_eq!(login_url("/login", None), "/login");
        assert_eq!(login_url("/login", Some("/")), "/login");
        assert_eq!(login_url("/login", Some("//evil.example")), "/login");
        assert_eq!(login_url("/login", Some("/login?next=/notes")), "/login");
        assert_eq!(login_url("/login", Some("/login")), "/login");
    }

    #[test]
    fn encoding_is_utf8_percent_encoding() {
        assert_eq!(encode_query_value("é"), "%C3%A9");
        assert_eq!(encode_query_value("a+b=c"), "a%2Bb%3Dc");
        assert_eq!(encode_query_value("~_.-/"), "~_.-/");
    }
}
