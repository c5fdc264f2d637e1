//! Wrong passwords, counted per (account, address) and per account: the rule of
//! [`super`]'s documentation, in two tables under one lock.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::error::Error;

/// The most keys each table remembers. When it is full, the keys whose last failure is
/// oldest are forgotten first (never one with a check in flight): bounded memory under
/// a spray of guesses, and new guessers are still counted.
pub(super) const CAPACITY: usize = 100_000;

/// The first wait past a limit; each further failure doubles it, up to the window.
const FIRST_WAIT_MS: i64 = 1_000;

/// What a key has done lately.
#[derive(Debug, Default, Clone, Copy)]
struct Entry {
    failures: u32,
    /// When the last failure was recorded (unix ms).
    last: i64,
    /// Checks reserved and not yet resolved.
    in_flight: u32,
}

/// How a reserved check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Wrong,
    /// The right password: the failures are forgotten where `clears` says.
    Right,
    /// No password was checked (the request failed or went away first).
    Void,
}

struct Table<K> {
    /// Failures allowed before the waits begin; 0: this table is off.
    limit: u32,
    capacity: usize,
    entries: HashMap<K, Entry>,
    /// Whether a right password forgets this table's failures.
    clears: bool,
}

impl<K: Hash + Eq> Table<K> {
    fn new(limit: u32, capacity: usize, clears: bool) -> Self {
        Self {
            limit,
            capacity,
            entries: HashMap::new(),
            clears,
        }
    }

    /// How long a check for `key` must wait (ms), or `None` when it may run now.
    fn wait(&self, key: &K, now: i64, window: i64) -> Option<i64> {
        let e = self
            .entries
            .get(key)
            .filter(|e| !forgotten(e, now, window))?;
        if self.limit == 0 || e.failures + e.in_flight < self.limit {
            return None;
        }
        // At the limit: one check at a time, spaced by the growing wait.
        let mut ready = now;
        if e.failures >= self.limit {
            let doublings = (e.failures - self.limit).min(20);
            ready = e.last + (FIRST_WAIT_MS << doublings).min(window);
        }
        if e.in_flight > 0 {
            ready = ready.max(now + FIRST_WAIT_MS);
        }
        (ready > now).then_some(ready - now)
    }

    fn reserve(&mut self, key: K, now: i64, window: i64) {
        if self.limit == 0 {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now, window);
        }
        let e = self.entries.entry(key).or_default();
        if forgotten(e, now, window) {
            *e = Entry::default();
        }
        e.in_flight += 1;
    }

    fn resolve(&mut self, key: &K, outcome: Outcome, now: i64) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Wrong => {
                e.failures = e.failures.saturating_add(1);
                e.last = now;
            }
            Outcome::Right if self.clears => e.failures = 0,
            Outcome::Right | Outcome::Void => {}
        }
        if e.failures == 0 && e.in_flight == 0 {
            self.entries.remove(key);
        }
    }

    /// Forgets what no longer counts; if the table is still full, the least recently
    /// failed eighth of it, rather than stop counting new keys (failing open).
    fn make_room(&mut self, now: i64, window: i64) {
        self.prune(now, window);
        if self.entries.len() < self.capacity {
            return;
        }
        let mut lasts: Vec<i64> = (self.entries.values())
            .filter(|e| e.in_flight == 0)
            .map(|e| e.last)
            .collect();
        if lasts.is_empty() {
            return;
        }
        let cut = (lasts.len() / 8).min(lasts.len() - 1);
        let (_, &mut oldest_kept, _) = lasts.select_nth_unstable(cut);
        self.entries
            .retain(|_, e| e.in_flight > 0 || e.last > oldest_kept);
    }

    fn prune(&mut self, now: i64, window: i64) {
        self.entries.retain(|_, e| !forgotten(e, now, window));
    }
}

/// A key is forgotten two windows after its last failure, when no check is in flight:
/// long enough that waits grown to the window keep their length.
fn forgotten(e: &Entry, now: i64, window: i64) -> bool {
    e.in_flight == 0 && now - e.last >= 2 * window
}

type Pair = (String, IpAddr);

pub(super) struct Guesses {
    window: i64,
    tables: Mutex<(Table<Pair>, Table<String>)>,
}

impl Guesses {
    pub(super) fn new(per_address: u32, per_account: u32, window: i64, capacity: usize) -> Self {
        let pairs = Table::new(per_address, capacity, true);
        // A right password clears its own address only: the owner logging in must not
        // wipe out what a guesser with many addresses has spent of the ceiling.
        let accounts = Table::new(per_account, capacity, false);
        Self {
            window,
            tables: Mutex::new((pairs, accounts)),
        }
    }

    /// Reserves a check of a password for `account` from `address` (a prefix), or
    /// refuses it with how long to wait.
    pub(super) fn reserve(
        &self,
        account: &str,
        address: IpAddr,
        now: i64,
    ) -> Result<Guess<'_>, Error> {
        let pair = (account.to_owned(), address);
        let mut tables = self.tables.lock().expect("rate-limit lock");
        let (pairs, accounts) = &mut *tables;
        let wait = [
            pairs.wait(&pair, now, self.window),
            accounts.wait(&pair.0, now, self.window),
        ];
        if let Some(wait) = wait.into_iter().flatten().max() {
            return Err(Error::RateLimited {
                retry_after: (wait.max(1) as u64).div_ceil(1000),
            });
        }
        pairs.reserve(pair.clone(), now, self.window);
        accounts.reserve(pair.0.clone(), now, self.window);
        Ok(Guess {
            guesses: Some(self),
            pair,
        })
    }

    fn resolve(&self, pair: &Pair, outcome: Outcome, now: i64) {
        let mut tables = self.tables.lock().expect("rate-limit lock");
        tables.0.resolve(pair, outcome, now);
        tables.1.resolve(&pair.0, outcome, now);
    }

    pub(super) fn prune(&self, now: i64) {
        let mut tables = self.tables.lock().expect("rate-limit lock");
        tables.0.prune(now, self.window);
        tables.1.prune(now, self.window);
    }
}

/// A reserved password check: counted as in flight until it is resolved. Dropped
/// unresolved (no password was checked, or the request went away), it counts nothing.
pub struct Guess<'a> {
    guesses: Option<&'a Guesses>,
    pair: Pair,
}

impl Guess<'_> {
    /// A check no limit applies to.
    pub(super) fn unlimited() -> Self {
        Guess {
            guesses: None,
            pair: (String::new(), IpAddr::from([0, 0, 0, 0])),
        }
    }

    /// The password was wrong.
    pub fn wrong(mut self, now: i64) {
        self.resolve(Outcome::Wrong, now);
    }

    /// The password was right.
    pub fn right(mut self, now: i64) {
        self.resolve(Outcome::Right, now);
    }

    fn resolve(&mut self, outcome: Outcome, now: i64) {
        if let Some(guesses) = self.guesses.take() {
            guesses.resolve(&self.pair, outcome, now);
        }
    }
}

impl Drop for Guess<'_> {
    fn drop(&mut self) {
        self.resolve(Outcome::Void, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 300_000;

    fn retry_after(r: Result<Guess<'_>, Error>) -> u64 {
        match r {
            Err(Error::RateLimited { retry_after }) => retry_after,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("allowed"),
        }
    }

    #[test]
    fn checks_in_flight_count_against_the_limit() {
        let g = Guesses::new(3, 100, WINDOW, CAPACITY);
        let ip = IpAddr::from([192, 0, 2, 1]);
        let held: Vec<_> = (0..3).map(|_| g.reserve("alice", ip, 0).unwrap()).collect();
        assert_eq!(retry_after(g.reserve("alice", ip, 0)), 1, "three in flight");
        drop(held); // none was checked: nothing counted
        let held: Vec<_> = (0..3).map(|_| g.reserve("alice", ip, 0).unwrap()).collect();
        for guess in held {
            guess.wrong(10);
        }
        assert_eq!(retry_after(g.reserve("alice", ip, 20)), 1);
    }

    #[test]
    fn waits_grow_and_other_addresses_are_not_affected() {
        let g = Guesses::new(2, 5, WINDOW, CAPACITY);
        let stranger = IpAddr::from([203, 0, 113, 9]);
        let owner = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..2 {
            g.reserve("alice", stranger, 0).unwrap().wrong(0);
        }
        assert_eq!(retry_after(g.reserve("alice", stranger, 0)), 1);
        g.reserve("alice", stranger, 1_000).unwrap().wrong(1_000);
        assert_eq!(retry_after(g.reserve("alice", stranger, 1_000)), 2);
        g.reserve("alice", stranger, 3_000).unwrap().wrong(3_000);
        assert_eq!(retry_after(g.reserve("alice", stranger, 3_000)), 4);
        // The owner, elsewhere, is not held up; a typo of theirs reaches the ceiling.
        g.reserve("alice", owner, 3_000).unwrap().wrong(3_000);
        assert_eq!(
            retry_after(g.reserve("alice", owner, 3_000)),
            1,
            "the ceiling"
        );
        g.reserve("alice", owner, 4_000).unwrap().right(4_000);
        assert_eq!(
            retry_after(g.reserve("alice", stranger, 4_000)),
            3,
            "the owner's login clears only the owner's address"
        );
        assert!(
            g.reserve("bob", stranger, 4_000).is_ok(),
            "other accounts are not affected"
        );

        // Waits stop at the window; two quiet windows later all is forgotten.
        let g = Guesses::new(1, 0, 60_000, CAPACITY);
        for t in (0..30).map(|i| i * 60_000) {
            g.reserve("carol", stranger, t).unwrap().wrong(t);
        }
        assert_eq!(retry_after(g.reserve("carol", stranger, 29 * 60_000)), 60);
        assert!(g.reserve("carol", stranger, 31 * 60_000).is_ok());
    }

    #[test]
    fn a_full_table_still_counts_new_accounts() {
        let g = Guesses::new(3, 0, WINDOW, 64);
        let ip = IpAddr::from([192, 0, 2, 1]);
        for i in 0..64 {
            g.reserve(&format!("sprayed{i}"), ip, 1_000)
                .unwrap()
                .wrong(1_000);
        }
        let in_flight = g.reserve("sprayed0", ip, 1_500).unwrap();
        for t in [2_000, 2_001, 2_002] {
            g.reserve("victim", ip, t).unwrap().wrong(t);
        }
        assert!(
            g.reserve("victim", ip, 2_003).is_err(),
            "the victim's failures were counted"
        );
        assert!(g.tables.lock().unwrap().0.entries.len() <= 64);
        drop(in_flight);
    }
}
