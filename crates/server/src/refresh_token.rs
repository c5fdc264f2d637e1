//! Refresh tokens: opaque 256-bit values, URL-safe base64 with a `brt_` prefix (so
//! secret scanners can spot a leaked one). Only their SHA-256 is stored.
//!
//! A login's token comes from the OS CSPRNG. Every later token of a session is its
//! predecessor's *successor*: an HMAC-SHA256 of the predecessor under the chain key, a
//! key derived from the configured key material (the master key, or the HS256
//! secrets) that never touches the database. So a token presented again moments after
//! it rotated (a lost answer, racing tabs, or a thief) gets the very successor the
//! first presentation got, without the server storing it: the session keeps one chain.
//! Computing a successor needs both the predecessor, which only its holder has, and the
//! chain key; the database holds neither.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Prefix of refresh tokens.
pub const PREFIX: &str = "brt_";

/// What the chain key is derived for: an HMAC of this under the configured key.
const CHAIN_KEY_PURPOSE: &[u8] = b"baton refresh-token chain v1";

/// A refresh token and the SHA-256 to store for it.
pub struct Token {
    pub text: String,
    pub hash: [u8; 32],
}

impl Token {
    fn from_bytes(bytes: &[u8]) -> Self {
        let text = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = hash(&text);
        Token { text, hash }
    }
}

/// A new random refresh token: the first of a session.
pub fn generate() -> Token {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    Token::from_bytes(&bytes)
}

/// The stored form of a refresh token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The keys that derive successors: the current one, which every rotation uses, and
/// older ones (HS256 secrets being rotated by configuration), whose successors are
/// still recognised inside a grace window. No `Debug`: they are secret.
/// The keys are wiped from memory when dropped.
#[derive(Clone)]
pub struct ChainKeys {
    keys: Vec<Zeroizing<[u8; 32]>>,
}

impl ChainKeys {
    /// The chain keys derived from `current` key material and `previous` ones.
    pub fn derive(current: &[u8], previous: &[&[u8]]) -> Self {
        let keys = std::iter::once(current)
            .chain(previous.iter().copied())
            .map(|material| {
                let key = mac(material).chain_update(CHAIN_KEY_PURPOSE).finalize();
                Zeroizing::new(key.into_bytes().into())
            })
            .collect();
        Self { keys }
    }

    /// The successor of `token`, as the current key derives it.
    pub fn successor(&self, token: &str) -> Token {
        successor(&self.keys[0], token)
    }

    /// The successors of `token` under every key, the current key's first.
    pub fn successors<'a>(&'a self, token: &'a str) -> impl Iterator<Item = Token> + 'a {
        self.keys.iter().map(move |key| successor(key, token))
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn successor(key: &[u8; 32], token: &str) -> Token {
    let bytes = mac(key).chain_update(token.as_bytes()).finalize();
    Token::from_bytes(&bytes.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_256_bit_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a.text, b.text);
        assert!(a.text.starts_with(PREFIX));
        let body = &a.text[PREFIX.len()..];
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert!(body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(hash(&a.text), a.hash);
    }

    #[test]
    fn a_successor_depends_on_its_predecessor_and_the_key() {
        let keys = ChainKeys::derive(b"master key material", &[b"older material"]);
        let token = generate();
        let next = keys.successor(&token.text);
        assert_eq!(
            next.text,
            keys.successor(&token.text).text,
            "the same every time"
        );
        assert!(next.text.starts_with(PREFIX));
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(&next.text[PREFIX.len()..])
                .unwrap()
                .len(),
            32
        );
        assert_eq!(hash(&next.text), next.hash);
        assert_ne!(next.text, keys.successor(&generate().text).text);
        let other = ChainKeys::derive(b"other material", &[]);
        assert_ne!(next.text, other.successor(&token.text).text);
        // An older key's successor is recognised, the current key's comes first.
        let all: Vec<String> = keys.successors(&token.text).map(|t| t.text).collect();
        let older = ChainKeys::derive(b"older material", &[]);
        assert_eq!(all, [next.text, older.successor(&token.text).text]);
    }
}
