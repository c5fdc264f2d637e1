//! DPoP settings (RFC 9449), and the public origin every proof's `htu` must name.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::groups::seconds;

/// Whether sessions are bound to the key of a DPoP proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DpopMode {
    /// A login that carries a proof binds its session to the proof's key for its whole
    /// life; a login without one starts a Bearer session (curl, other clients).
    Allowed,
    /// Every login must carry a proof; Bearer tokens are refused.
    Required,
    /// Proofs are not read. Sessions bound earlier can no longer refresh (their users
    /// log in again and get Bearer sessions): switching DPoP off never unbinds a token.
    Off,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "DPoP (sender-constrained tokens)")]
pub struct DpopConfig {
    /// allowed, required or off.
    #[arg(long = "dpop", env = "BATON_DPOP", value_enum, default_value_t = DpopMode::Allowed, global = true)]
    pub mode: DpopMode,

    /// The origin clients reach this server at, as they see it (https://app.example.com,
    /// the proxy's, not the bind address): every proof's `htu` must name it. Required in
    /// production unless BATON_DPOP=off; in development, `http://` and the request's Host.
    #[arg(long, env = "BATON_PUBLIC_ORIGIN", global = true)]
    pub public_origin: Option<PublicOrigin>,

    /// Seconds a server nonce (`DPoP-Nonce`) stays good: how old a proof may be, and
    /// how long each instance remembers the `jti`s of resource calls (30-3600).
    #[arg(long = "dpop-nonce-ttl", env = "BATON_DPOP_NONCE_TTL", value_parser = seconds,
        value_name = "SECONDS", default_value = "300", global = true)]
    pub nonce_ttl: Duration,

    /// Seconds a proof's `iat` may be off this server's clock. Wide by default: the
    /// nonce is what makes a proof fresh, and a browser whose clock is wrong by a time
    /// zone must still work.
    #[arg(long = "dpop-iat-skew", env = "BATON_DPOP_IAT_SKEW", value_parser = seconds,
        value_name = "SECONDS", default_value = "86400", global = true)]
    pub iat_skew: Duration,

    /// How many `jti`s of resource calls each instance remembers (about 40 bytes each).
    /// Under more load than this holds in a nonce lifetime, the nonce lifetime shortens.
    #[arg(
        long = "dpop-replay-capacity",
        env = "BATON_DPOP_REPLAY_CAPACITY",
        default_value_t = 1_000_000,
        global = true
    )]
    pub replay_capacity: usize,
}

impl DpopConfig {
    /// What is wrong with these settings, if anything.
    pub fn problems(&self, production: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if !(30..=3600).contains(&self.nonce_ttl.as_secs()) {
            problems.push("BATON_DPOP_NONCE_TTL must be 30 to 3600 seconds".to_owned());
        }
        if self.replay_capacity < 1000 {
            problems.push("BATON_DPOP_REPLAY_CAPACITY must be at least 1000".to_owned());
        }
        if production && self.mode != DpopMode::Off && self.public_origin.is_none() {
            problems.push(
                "production needs BATON_PUBLIC_ORIGIN (the https:// origin clients use), \
                 which DPoP proofs must name; or BATON_DPOP=off"
                    .to_owned(),
            );
        }
        problems
    }
}

/// A normalised origin, `scheme://host[:port]` (RFC 6454): scheme and host in lower
/// case, the scheme's default port left out. The one normalisation for the configured
/// origin and for the origin part of a proof's `htu` (RFC 3986 section 6.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin(String);

impl PublicOrigin {
    /// `http(s)://host[:port]` with nothing after it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an origin like https://app.example.com");
        let (scheme, authority) = text.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => "443",
            "http" => "80",
            _ => return Err(bad()),
        };
        let authority = authority.to_ascii_lowercase();
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority.as_str(), None),
        };
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'[' | b']' | b':')
            });
        let port = match port {
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5 => {
                return Err(bad())
            }
            Some(p) => Some(match p.trim_start_matches('0') {
                "" => "0",
                p => p,
            }),
            None => None,
        };
        if !host_ok {
            return Err(bad());
        }
        Ok(match port {
            Some(p) if p != default_port => PublicOrigin(format!("{scheme}://{host}:{p}")),
            _ => PublicOrigin(format!("{scheme}://{host}")),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PublicOrigin {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

impl fmt::Display for PublicOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        for (text, origin) in [
            ("https://app.example.com", "https://app.example.com"),
            ("HTTPS://App.Example.COM:443", "https://app.example.com"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
            ("https://[::1]:8443", "https://[::1]:8443"),
            ("https://[::1]", "https://[::1]"),
        ] {
            assert_eq!(
                PublicOrigin::parse(text).unwrap().as_str(),
                origin,
                "{text}"
            );
        }
        for bad in [
            "app.example.com",
            "ftp://example.com",
            "https://",
            "https://example.com/",
            "https://example.com/app",
            "https://example.com:",
            "https://example.com:x",
            "https://user@example.com",
            "https://example.com?q",
        ] {
            assert!(PublicOrigin::parse(bad).is_err(), "{bad}");
        }
    }
}
