//! The `jti`s of resource calls, remembered by each instance for as long as their
//! nonces are good (RFC 9449 section 11.1), in bounded memory and without I/O.
//!
//! Two generations of proof keys: new ones go into the current generation, which
//! becomes the previous one when it is a nonce lifetime old or half the capacity full
//! (then the previous one is dropped). The invariant is that every proof accepted
//! since `retained_since` is in one of the two sets, and a proof is accepted only with
//! a nonce issued at most [`FUTURE_SKEW`] after its acceptance. So the nonce of any
//! proof that was dropped was issued before `retained_since + FUTURE_SKEW`, and
//! requiring every nonce to be at least that recent ([`Replay::floor`]) refuses a
//! replay of it: the client is asked to use a newer nonce instead. Under light load
//! the floor is the nonce lifetime; under a load that fills the sets sooner, the
//! lifetime shrinks with it rather than memory growing.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// How far into the future a nonce's issue time may be: another instance's clock may
/// run this much ahead of ours.
pub const FUTURE_SKEW: i64 = 5;

/// A generation is never rotated out by capacity sooner than this (seconds), so that
/// the floor stays behind the present (it is at most `now - MIN_GENERATION +
/// FUTURE_SKEW`) and a nonce issued now is always good.
const MIN_GENERATION: i64 = 10;

/// What [`Replay::admit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not seen before; now recorded.
    Fresh,
    Replayed,
    /// The nonce is older than the floor: ask for a newer one.
    StaleNonce,
    /// Both generations are full and the current one is too young to rotate: more
    /// proofs than the capacity within [`MIN_GENERATION`] seconds.
    Full,
}

pub struct Replay {
    ttl: i64,
    half_capacity: usize,
    sets: Mutex<Generations>,
    /// Every proof accepted at or after this time (unix seconds) is remembered.
    retained_since: AtomicI64,
}

struct Generations {
    current: HashSet<u128>,
    current_since: i64,
    previous: HashSet<u128>,
}

impl Replay {
    pub fn new(ttl_secs: i64, capacity: usize, now: i64) -> Self {
        Self {
            ttl: ttl_secs,
            half_capacity: (capacity / 2).max(1),
            sets: Mutex::new(Generations {
                current: HashSet::new(),
                current_since: now,
                previous: HashSet::new(),
            }),
            // Nothing was accepted before the start.
            retained_since: AtomicI64::new(i64::MIN / 2),
        }
    }

    /// The oldest nonce issue time accepted at `now` for a resource call.
    pub fn floor(&self, now: i64) -> i64 {
        let retained = self.retained_since.load(Ordering::Acquire);
        (now - self.ttl).max(retained + FUTURE_SKEW)
    }

    /// Admits a proof (`key`: a digest of its key and `jti`) whose nonce was issued at
    /// `nonce_at`, at `now` (unix seconds).
    pub fn admit(&self, key: u128, nonce_at: i64, now: i64) -> Admission {
        let mut sets = self.sets.lock().expect("replay lock");
        let age = now - sets.current_since;
        let full = sets.current.len() >= self.half_capacity;
        if age >= self.ttl || (full && age >= MIN_GENERATION) {
            let retired = std::mem::take(&mut sets.current);
            sets.previous = retired;
            self.retained_since
                .store(sets.current_since, Ordering::Release);
            sets.current_since = now;
        } else if full && sets.current.len() >= 2 * self.half_capacity {
            return Admission::Full;
        }
        if nonce_at < self.floor(now) {
            return Admission::StaleNonce;
        }
        if sets.previous.contains(&key) || !sets.current.insert(key) {
            return Admission::Replayed;
        }
        Admission::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_admitted_once_while_its_nonce_is_good() {
        let t0 = 1_000_000;
        let replay = Replay::new(300, 1000, t0);
        assert_eq!(replay.admit(1, t0, t0), Admission::Fresh);
        assert_eq!(replay.admit(1, t0, t0 + 100), Admission::Replayed);
        assert_eq!(replay.admit(2, t0 - 301, t0), Admission::StaleNonce);
        assert_eq!(replay.admit(5, t0 + 299, t0 + 299), Admission::Fresh);
        // Rotated at t0 + 300: the proof of t0 + 299 is still remembered (previous
        // generation), and the nonce of t0 is past its lifetime.
        assert_eq!(replay.admit(3, t0 + 300, t0 + 300), Admission::Fresh);
        assert_eq!(replay.admit(5, t0 + 299, t0 + 300), Admission::Replayed);
        assert_eq!(replay.admit(1, t0, t0 + 300), Admission::StaleNonce);
        // Rotated again: the generation of t0 + 299 is gone, and so is its nonce.
        assert_eq!(replay.admit(4, t0 + 600, t0 + 600), Admission::Fresh);
        assert_eq!(replay.admit(5, t0 + 299, t0 + 600), Admission::StaleNonce);
    }

    #[test]
    fn a_full_set_rotates_early_and_raises_the_floor() {
        let t0 = 1_000_000;
        let replay = Replay::new(300, 1000, t0);
        for key in 0..500 {
            assert_eq!(replay.admit(key, t0, t0), Admission::Fresh);
        }
        // Half full, but younger than MIN_GENERATION: it grows up to the capacity.
        for key in 500..1000 {
            assert_eq!(replay.admit(key, t0 + 9, t0 + 9), Admission::Fresh);
        }
        assert_eq!(replay.admit(1000, t0 + 9, t0 + 9), Admission::Full);
        // Old enough: rotated. A proof of the old generation whose nonce is still
        // above the floor is caught by the previous set.
        assert_eq!(replay.admit(1000, t0 + 20, t0 + 20), Admission::Fresh);
        assert_eq!(replay.floor(t0 + 20), t0 + FUTURE_SKEW);
        assert_eq!(replay.admit(600, t0 + 9, t0 + 20), Admission::Replayed);
        assert_eq!(replay.admit(7, t0, t0 + 20), Admission::StaleNonce);
        for key in 2000..2500 {
            assert_eq!(replay.admit(key, t0 + 40, t0 + 40), Admission::Fresh);
        }
        // Rotated again at t0 + 40: the generation of t0 is gone, and with it every
        // nonce issued before t0 + 20 + FUTURE_SKEW, long before the lifetime is up.
        assert_eq!(replay.floor(t0 + 40), t0 + 20 + FUTURE_SKEW);
        assert_eq!(replay.admit(600, t0 + 9, t0 + 40), Admission::StaleNonce);
        assert_eq!(
            replay.admit(8, t0 + 20 + FUTURE_SKEW, t0 + 40),
            Admission::Fresh
        );
    }
}
