//! Server nonces (RFC 9449 section 8). A nonce says when it was issued, under a MAC
//! with a key derived from the master key (or the HS256 secret): any instance can
//! tell one of its own, or another instance's, from a forgery and read its age,
//! without a shared store. What it does not say is which proofs used it; that is the
//! replay check's part ([`super::replay`], and the database for login and refresh).
//!
//! A nonce is `base64url(version || issued_at || mac)`: one byte, eight bytes of unix
//! seconds (big-endian), and the first 16 bytes of HMAC-SHA256 over the first two.
//! Issue times are rounded down to a step (a fifth of the lifetime), so that every
//! answer within a step carries the same nonce and a client rarely has to switch.

use std::sync::RwLock;

use axum::http::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const LEN: usize = 1 + 8 + MAC_LEN;

pub struct Nonces {
    key: Zeroizing<[u8; 32]>,
    /// Seconds between issue times.
    step: i64,
    /// The nonce of the last issue time asked for, ready to send.
    last: RwLock<Option<(i64, HeaderValue)>>,
}

impl Nonces {
    pub fn new(key: Zeroizing<[u8; 32]>, ttl_secs: i64) -> Self {
        Self {
            key,
            step: (ttl_secs / 5).max(1),
            last: RwLock::new(None),
        }
    }

    /// The nonce to hand out at `now` (unix seconds): issued at the start of the
    /// current step, or at `floor` if that is later (the oldest issue time the replay
    /// check accepts at the moment).
    pub fn issue(&self, now: i64, floor: i64) -> HeaderValue {
        let at = (now - now.rem_euclid(self.step)).max(floor);
        if let Some((t, value)) = &*self.last.read().expect("nonce lock") {
            if *t == at {
                return value.clone();
            }
        }
        let mut bytes = [0u8; LEN];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&at.to_be_bytes());
        let mac = self.mac(&bytes[..9]).finalize().into_bytes();
        bytes[9..].copy_from_slice(&mac[..MAC_LEN]);
        let value = HeaderValue::from_str(&URL_SAFE_NO_PAD.encode(bytes))
            .expect("base64url is a valid header value");
        *self.last.write().expect("nonce lock") = Some((at, value.clone()));
        value
    }

    /// When `nonce` was issued (unix seconds), if this server's key made it.
    pub fn issued_at(&self, nonce: &str) -> Option<i64> {
        if nonce.len() > 64 {
            return None;
        }
        // Most proofs carry the nonce handed out last, which this server made.
        if let Some((at, value)) = &*self.last.read().expect("nonce lock") {
            if value.as_bytes() == nonce.as_bytes() {
                return Some(*at);
            }
        }
        let bytes = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if bytes.len() != LEN || bytes[0] != VERSION {
            return None;
        }
        self.mac(&bytes[..9])
            .verify_truncated_left(&bytes[9..])
            .ok()?;
        Some(i64::from_be_bytes(bytes[1..9].try_into().ok()?))
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&*self.key).expect("any key length");
        mac.update(data);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(key: u8) -> Nonces {
        Nonces::new(Zeroizing::new([key; 32]), 300)
    }

    #[test]
    fn a_nonce_carries_its_time_and_only_its_key_reads_it() {
        let n = nonces(1);
        let now = 1_700_000_123;
        let nonce = n.issue(now, 0);
        let text = nonce.to_str().unwrap();
        // Rounded down to the step (60 s), the same all through the step.
        assert_eq!(n.issued_at(text), Some(1_700_000_100));
        assert_eq!(n.issue(now + 30, 0), nonce);
        assert_ne!(n.issue(now + 60, 0), nonce);
        // Never before the floor.
        assert_eq!(
            n.issued_at(n.issue(now, now - 3).to_str().unwrap()),
            Some(now - 3)
        );
        // Another key (another deployment) does not accept it.
        assert_eq!(nonces(2).issued_at(text), None);
        // Nor a changed time, a cut MAC, or garbage.
        let mut bytes = URL_SAFE_NO_PAD.decode(text).unwrap();
        bytes[8] ^= 1;
        assert_eq!(n.issued_at(&URL_SAFE_NO_PAD.encode(&bytes)), None);
        assert_eq!(n.issued_at(&text[..text.len() - 2]), None);
        for bad in ["", "!!", "AAAA", &"A".repeat(100)] {
            assert_eq!(n.issued_at(bad), None, "{bad}");
        }
    }
}
