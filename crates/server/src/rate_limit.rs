//! Brute-force limits on login, password change and refresh.
//!
//! - Per client address (IPv6: its /64, which one subscriber gets whole): login (and
//!   register, and password change) and refresh requests, with GCRA limiters from
//!   `governor` (a burst of N per window, refilling evenly).
//! - Wrong passwords, at login and at a password change alike ([`guesses`]):
//!   - per account and address: past `BATON_LOGIN_FAILURES_PER_ADDRESS` (10) that
//!     address waits before its next check for the account, 1 s, then twice as long
//!     after every further wrong password, up to the window. Other addresses are not
//!     affected: a stranger cannot lock the owner out. A right password clears it.
//!   - per account, from all addresses: past `BATON_LOGIN_FAILURES_PER_ACCOUNT` (100),
//!     every address waits in the same way (a guesser with many addresses).
//!
//!   A check is reserved before the password is verified and counts as a failure
//!   until it is resolved, so concurrent guesses cannot all pass one check: past a
//!   limit, one check runs at a time. A key is forgotten two windows after its last
//!   failure; a full table forgets its least recently failed keys first, so it keeps
//!   counting new ones (it never fails open).
//!
//! Over a limit the answer is 429 `rate_limited` with `Retry-After`. Every count is
//! this instance's own (memory): N instances allow N times the numbers.

mod guesses;

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub use guesses::Guess;

use crate::clock::millis;
use crate::config::LimitConfig;
use crate::error::Error;

pub struct RateLimits {
    login_per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    refresh_per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    guesses: Option<guesses::Guesses>,
}

fn limiter(per_window: u32, window: Duration) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    let burst = NonZeroU32::new(per_window)?;
    let quota = Quota::with_period(window / per_window)?.allow_burst(burst);
    Some(RateLimiter::keyed(quota))
}

fn check(limiter: &Option<DefaultKeyedRateLimiter<IpAddr>>, ip: &IpAddr) -> Result<(), Error> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check_key(&prefix(*ip)).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Error::RateLimited {
            retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

/// The part of an address that limits count: an IPv4 address whole (also when written
/// as IPv4-mapped IPv6), an IPv6 address by its /64, the smallest network a subscriber
/// gets, who could otherwise pick a fresh address for every request.
pub fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        },
    }
}

impl RateLimits {
    pub fn new(config: &LimitConfig) -> Self {
        let window = config.window.max(Duration::from_secs(1));
        let (per_address, per_account) = (
            config.login_failures_per_address,
            config.login_failures_per_account,
        );
        Self {
            login_per_ip: limiter(config.login_per_ip, window),
            refresh_per_ip: limiter(config.refresh_per_ip, window),
            guesses: (per_address > 0 || per_account > 0).then(|| {
                guesses::Guesses::new(per_address, per_account, millis(window), guesses::CAPACITY)
            }),
        }
    }

    /// Counts a login, register or password-change request from `ip`.
    pub fn login_attempt(&self, ip: &IpAddr) -> Result<(), Error> {
        check(&self.login_per_ip, ip)
    }

    /// Counts a refresh request from `ip`.
    pub fn refresh_attempt(&self, ip: &IpAddr) -> Result<(), Error> {
        check(&self.refresh_per_ip, ip)
    }

    /// Reserves a check of a password for `account` (its canonical name) from `ip`,
    /// before the password is verified; refused while the account is held back for
    /// that address or for all. Resolve it with [`Guess::wrong`] or [`Guess::right`].
    pub fn guess(&self, account: &str, ip: &IpAddr, now: i64) -> Result<Guess<'_>, Error> {
        match &self.guesses {
            Some(guesses) => guesses.reserve(account, prefix(*ip), now),
            None => Ok(Guess::unlimited()),
        }
    }

    /// Forgets what no longer limits anyone (run periodically).
    pub fn prune(&self, now: i64) {
        for limiter in [&self.login_per_ip, &self.refresh_per_ip]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
        }
        if let Some(guesses) = &self.guesses {
            guesses.prune(now);
        }
    }
}

/// The client's address: the peer, or with `trusted_proxy_hops = N` the N-th address
/// from the right of `X-Forwarded-For` (what the nearest trusted proxy saw). An
/// `X-Forwarded-For` from anyone else is ignored, so it cannot reset a limit.
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, hops: usize) -> IpAddr {
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|s| s.parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
    if forwarded.len() >= hops {
        forwarded[forwarded.len() - hops]
    } else {
        peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn an_address_gets_exactly_its_burst() {
        let limiter = limiter(5, Duration::from_secs(300));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..5 {
            assert!(check(&limiter, &ip).is_ok(), "request {i}");
        }
        assert!(check(&limiter, &ip).is_err());
    }

    #[test]
    fn forwarded_for_is_trusted_only_as_configured() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        assert_eq!(client_ip(peer, &headers, 0), peer, "ignored by default");
        assert_eq!(
            client_ip(peer, &headers, 1),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, &headers, 2),
            "6.6.6.6".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, &headers, 3), peer, "too few hops: the peer");
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("garbage, 1.2.3.4"),
        );
        assert_eq!(
            client_ip(peer, &headers, 1),
            peer,
            "a malformed header is ignored"
        );
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let p = |s: &str| prefix(s.parse().unwrap()).to_string();
        assert_eq!(p("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(p("2001:db8:1:2::ffff"), "2001:db8:1:2::");
        assert_eq!(p("2001:db8:1:3::1"), "2001:db8:1:3::");
        assert_eq!(p("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(p("192.0.2.7"), "192.0.2.7");
        let limiter = limiter(2, Duration::from_secs(300));
        for ip in ["2001:db8::1", "2001:db8::2"] {
            assert!(check(&limiter, &ip.parse().unwrap()).is_ok());
        }
        assert!(check(&limiter, &"2001:db8::3".parse().unwrap()).is_err());
        assert!(check(&limiter, &"2001:db8:0:1::3".parse().unwrap()).is_ok());
    }
}
