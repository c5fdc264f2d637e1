//! Brute-force limits on login and refresh.
//!
//! - Per client address: login (and register) and refresh requests, with GCRA limiters
//!   from `governor` (a burst of N per window, refilling evenly).
//! - Per account: failed logins, from any address. An attacker rotating addresses (or
//!   spoofing `X-Forwarded-For`, which is ignored unless proxies are configured) still
//!   hits this one; a legitimate user of another account never does.
//!
//! Over a limit the answer is 429 `rate_limited` with `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::clock::millis;
use crate::config::LimitConfig;
use crate::error::Error;

/// The most accounts whose recent failures are remembered; beyond it the oldest
/// records are dropped (bounded memory under a spray of guesses).
const MAX_TRACKED_ACCOUNTS: usize = 100_000;

pub struct RateLimits {
    login_per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    refresh_per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Option<FailureWindow>,
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
    limiter.check_key(ip).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Error::RateLimited {
            retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

impl RateLimits {
    pub fn new(config: &LimitConfig) -> Self {
        let window = config.window.max(Duration::from_secs(1));
        Self {
            login_per_ip: limiter(config.login_per_ip, window),
            refresh_per_ip: limiter(config.refresh_per_ip, window),
            failures: (config.login_failures_per_account > 0).then(|| FailureWindow {
                limit: config.login_failures_per_account as usize,
                window_ms: millis(window),
                failures: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Counts a login or register request from `ip`.
    pub fn login_attempt(&self, ip: &IpAddr) -> Result<(), Error> {
        check(&self.login_per_ip, ip)
    }

    /// Counts a refresh request from `ip`.
    pub fn refresh_attempt(&self, ip: &IpAddr) -> Result<(), Error> {
        check(&self.refresh_per_ip, ip)
    }

    /// Refuses a login for an account with too many recent failures.
    pub fn check_account(&self, account: &str, now: i64) -> Result<(), Error> {
        match &self.failures {
            Some(f) => f.check(account, now),
            None => Ok(()),
        }
    }

    pub fn login_failed(&self, account: &str, now: i64) {
        if let Some(f) = &self.failures {
            f.record(account, now);
        }
    }

    pub fn login_succeeded(&self, account: &str) {
        if let Some(f) = &self.failures {
            f.clear(account);
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
        if let Some(f) = &self.failures {
            f.prune(now);
        }
    }
}

/// Failed logins per account in a sliding window.
struct FailureWindow {
    limit: usize,
    window_ms: i64,
    /// Account → times (ms) of its failures within the window, oldest first.
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl FailureWindow {
    fn check(&self, account: &str, now: i64) -> Result<(), Error> {
        let map = self.failures.lock().expect("rate-limit lock");
        let Some(times) = map.get(account) else {
            return Ok(());
        };
        let recent: Vec<i64> = times
            .iter()
            .copied()
            .filter(|t| now - t < self.window_ms)
            .collect();
        if recent.len() < self.limit {
            return Ok(());
        }
        // Free again when the oldest failure that keeps it at the limit leaves the window.
        let frees_at = recent[recent.len() - self.limit] + self.window_ms;
        Err(Error::RateLimited {
            retry_after: ((frees_at - now).max(1) as u64).div_ceil(1000),
        })
    }

    fn record(&self, account: &str, now: i64) {
        let mut map = self.failures.lock().expect("rate-limit lock");
        if map.len() >= MAX_TRACKED_ACCOUNTS && !map.contains_key(account) {
            let window = self.window_ms;
            map.retain(|_, times| times.back().is_some_and(|t| now - t < window));
            if map.len() >= MAX_TRACKED_ACCOUNTS {
                return;
            }
        }
        let times = map.entry(account.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.limit || times.front().is_some_and(|t| now - t >= self.window_ms) {
            times.pop_front();
        }
    }

    fn clear(&self, account: &str) {
        self.failures
            .lock()
            .expect("rate-limit lock")
            .remove(account);
    }

    fn prune(&self, now: i64) {
        let window = self.window_ms;
        self.failures
            .lock()
            .expect("rate-limit lock")
            .retain(|_, times| times.back().is_some_and(|t| now - t < window));
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
    fn failures_lock_an_account_for_the_rest_of_the_window() {
        let w = FailureWindow {
            limit: 3,
            window_ms: 60_000,
            failures: Mutex::new(HashMap::new()),
        };
        for t in [0, 1_000, 2_000] {
            assert!(w.check("alice", t).is_ok());
            w.record("alice", t);
        }
        match w.check("alice", 3_000) {
            Err(Error::RateLimited { retry_after }) => assert_eq!(retry_after, 57),
            other => panic!("{other:?}"),
        }
        assert!(
            w.check("bob", 3_000).is_ok(),
            "other accounts are not affected"
        );
        assert!(
            w.check("alice", 60_000).is_ok(),
            "the oldest failure left the window"
        );
        w.record("alice", 60_000);
        assert!(w.check("alice", 60_001).is_err());
        w.clear("alice");
        assert!(w.check("alice", 60_001).is_ok());
    }
}
