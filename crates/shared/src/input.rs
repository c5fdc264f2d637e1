//! Input rules, as parsed newtypes: a value of these types is valid by construction.
//!
//! The server parses every request field through these types, so handlers never see a
//! raw `String`; the browser app runs the same rules before it sends a form, so a user
//! sees the same messages either way.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Field name → what is wrong with it. Empty means the input is valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// Records the error of a parse, if any, and gives back the value when valid.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, &'static str>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

/// The impls every text newtype shares: `as_str`, and the conversions serde goes
/// through (`#[serde(try_from = "String", into = "String")]`), which parse on the way in.
macro_rules! text_newtype {
    ($($name:ident),*) => {$(
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    )*};
    (parsed: $($name:ident),*) => {$(
        impl TryFrom<String> for $name {
            type Error = &'static str;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
    )*};
}

text_newtype!(Username, NoteTitle, NoteBody, DeviceName);
text_newtype!(parsed: Username, NoteTitle, NoteBody);

fn char_count_between(s: &str, min: usize, max: usize) -> bool {
    // Cheap upper bound first: a string of more than 4*max bytes has more than max chars.
    if s.len() > max.saturating_mul(4) {
        return false;
    }
    let n = s.chars().count();
    (min..=max).contains(&n)
}

/// A username: 3-32 characters of ASCII letters, digits, `_`, `-` and `.`.
///
/// Usernames are unique without regard to case: [`Username::canonical`] is the form
/// the server compares and indexes. Non-ASCII letters are refused so that two
/// usernames can never look alike (no homoglyphs, no Unicode case-folding pitfalls).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 3;
    pub const MAX: usize = 32;

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Err("is required");
        }
        if !char_count_between(s, Self::MIN, Self::MAX) {
            return Err("must be 3-32 characters");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err("may contain only letters, digits, '_', '-' and '.'");
        }
        Ok(Self(s.to_owned()))
    }

    /// The case-insensitive form used for uniqueness and lookup.
    pub fn canonical(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password: 8-1024 characters, taken byte-exact (never trimmed or normalised).
///
/// It does not implement `Serialize`, `Display`, or a revealing `Debug`: the only way
/// to read it is [`Password::expose`], so it cannot reach a log or a response by accident.
/// The 1024-character cap is checked before any hashing, so a huge password costs nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 1024;

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Err("is required");
        }
        if !char_count_between(s, Self::MIN, Self::MAX) {
            return Err("must be 8-1024 characters");
        }
        Ok(Self(s.to_owned()))
    }

    /// A password typed to prove who someone is (login, password change): checked
    /// against a stored hash, not against today's rules, so only its presence and its
    /// size (the cost of hashing it) are bounded.
    pub fn parse_existing(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Err("is required");
        }
        if !char_count_between(s, 1, Self::MAX) {
            return Err("must be at most 1024 characters");
        }
        Ok(Self(s.to_owned()))
    }

    /// The password's bytes, for hashing. Never log them.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A note title: 1-200 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteTitle(String);

impl NoteTitle {
    pub const MAX: usize = 200;

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.trim().is_empty() {
            return Err("is required");
        }
        if !char_count_between(s, 1, Self::MAX) {
            return Err("must be 1-200 characters");
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(s.to_owned()))
    }
}

/// A note body: up to 16,000 characters; newlines and tabs are fine, other control
/// characters are not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteBody(String);

impl NoteBody {
    pub const MAX: usize = 16_000;

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !char_count_between(s, 0, Self::MAX) {
            return Err("must be at most 16000 characters");
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err("must not contain control characters other than newlines and tabs");
        }
        Ok(Self(s.to_owned()))
    }
}

/// A device name chosen at login ("Work laptop"): 1-64 characters, no control
/// characters. Surrounding whitespace is trimmed; an all-blank name counts as none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceName(String);

impl DeviceName {
    pub const MAX: usize = 64;

    /// `Ok(None)` for a blank name.
    pub fn parse(s: &str) -> Result<Option<Self>, &'static str> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if !char_count_between(s, 1, Self::MAX) {
            return Err("must be at most 64 characters");
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Some(Self(s.to_owned())))
    }
}

impl TryFrom<String> for DeviceName {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)?.ok_or("is required")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", Some("is required")),
            ("ab", Some("must be 3-32 characters")),
            ("abc", None),
            ("A.b-c_9", None),
            (&"a".repeat(32), None),
            (&"a".repeat(33), Some("must be 3-32 characters")),
            (
                "with space",
                Some("may contain only letters, digits, '_', '-' and '.'"),
            ),
            (
                "robert'); DROP TABLE users;--",
                Some("may contain only letters, digits, '_', '-' and '.'"),
            ),
            (
                "bob';--",
                Some("may contain only letters, digits, '_', '-' and '.'"),
            ),
            (
                "ünïcode",
                Some("may contain only letters, digits, '_', '-' and '.'"),
            ),
            (
                "аdmin",
                Some("may contain only letters, digits, '_', '-' and '.'"),
            ), // Cyrillic а
            (
                "tab\there",
                Some("may contain only letters, digits, '_', '-' and '.'"),
            ),
            (
                "nul\0x",
                Some("may contain only letters, digits, '_', '-' and '.'"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Username::parse(input).err(), *expected, "input {input:?}");
        }
    }

    #[test]
    fn usernames_compare_without_case() {
        let a = Username::parse("Alice").unwrap();
        let b = Username::parse("aLICE").unwrap();
        assert_ne!(a, b, "display form is kept");
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.as_str(), "Alice");
    }

    #[test]
    fn passwords_are_byte_exact_and_bounded() {
        assert_eq!(Password::parse("").err(), Some("is required"));
        assert_eq!(
            Password::parse("1234567").err(),
            Some("must be 8-1024 characters")
        );
        assert!(Password::parse("12345678").is_ok());
        // Whitespace is kept, not trimmed.
        assert_eq!(
            Password::parse("  pass  word  ").unwrap().expose(),
            "  pass  word  "
        );
        // Counted in characters, not bytes: 1024 four-byte characters are fine.
        assert!(Password::parse(&"🔑".repeat(1024)).is_ok());
        assert!(Password::parse(&"🔑".repeat(1025)).is_err());
        // A megabyte is refused without scanning it.
        assert!(Password::parse(&"x".repeat(1 << 20)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("hunter22").unwrap()),
            "Password(..)"
        );
    }

    #[test]
    fn note_titles_and_bodies() {
        assert_eq!(NoteTitle::parse("").err(), Some("is required"));
        assert_eq!(NoteTitle::parse("   ").err(), Some("is required"));
        assert!(NoteTitle::parse("<img src=x onerror=alert(1)>").is_ok());
        assert!(NoteTitle::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            NoteTitle::parse(&"é".repeat(201)).err(),
            Some("must be 1-200 characters")
        );
        assert!(NoteTitle::parse("line\nbreak").is_err());
        assert!(NoteBody::parse("").is_ok());
        assert!(NoteBody::parse("multi\nline\r\n\ttext").is_ok());
        assert!(NoteBody::parse(&"x".repeat(16_000)).is_ok());
        assert!(NoteBody::parse(&"x".repeat(16_001)).is_err());
        assert!(NoteBody::parse("bell\u{7}").is_err());
    }

    #[test]
    fn device_names() {
        assert_eq!(DeviceName::parse("  ").unwrap(), None);
        assert_eq!(
            DeviceName::parse(" Work laptop ")
                .unwrap()
                .unwrap()
                .as_str(),
            "Work laptop"
        );
        assert!(DeviceName::parse(&"d".repeat(65)).is_err());
        assert!(DeviceName::parse("evil\u{1b}[31m").is_err());
    }

    #[test]
    fn field_errors_keep_the_first_message_per_field() {
        let mut errors = FieldErrors::new();
        assert_eq!(errors.check("username", Username::parse("ab")), None);
        errors.add("username", "second");
        assert_eq!(errors.get("username"), Some("must be 3-32 characters"));
        assert!(!errors.is_empty());
    }
}
