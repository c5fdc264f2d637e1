//! The key ring: the keys one instance signs and verifies access tokens with, which
//! of them signs at a given time, and which are published in the JWKS.

use std::collections::HashMap;

use anyhow::bail;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::Signer as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rand::rngs::OsRng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{MasterKey, ALG_EDDSA};
use crate::store::keys::KeyRow;

/// RFC 7638 thumbprint of an Ed25519 public key: its `kid`.
pub fn ed25519_kid(public_key: &[u8; 32]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public_key);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A new Ed25519 key, sealed, as a row to store.
pub fn new_ed25519_key(master: &MasterKey, now: i64, activates_at: i64) -> KeyRow {
    let signing = ed25519_dalek::SigningKey::generate(&mut OsRng);
    let public = signing.verifying_key().to_bytes();
    let kid = ed25519_kid(&public);
    let der = signing
        .to_pkcs8_der()
        .expect("PKCS#8 encoding of an Ed25519 key cannot fail");
    KeyRow {
        sealed_key: master.seal(&kid, der.as_bytes()),
        public_key: public.to_vec(),
        kid,
        alg: ALG_EDDSA.to_owned(),
        created_at: now,
        activates_at,
        revoked_at: None,
    }
}

/// One key of the ring.
pub struct RingKey {
    kid: String,
    /// Unix ms from which it signs.
    activates_at: i64,
    /// Unix ms at which the next key took over: what this key signed was signed before.
    replaced_at: Option<i64>,
    /// Revoked: it verifies nothing, and is not published.
    revoked: bool,
    signer: Option<Signer>,
    decoding: DecodingKey,
    /// Public part for the JWKS (EdDSA only).
    public_x: Option<String>,
}

/// What signs access tokens.
pub enum Signer {
    /// Held as ed25519-dalek's key, whose public half is derived once, here: a
    /// jsonwebtoken `EncodingKey` keeps only the PKCS#8 bytes and derives the public key
    /// again for every signature, which was most of the cost of a signature.
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Hs256(EncodingKey),
}

impl Signer {
    /// The compact JWS of `claims` under `header`: for EdDSA the same bytes as
    /// `jsonwebtoken::encode` (each part the base64url of its JSON; Ed25519 signatures
    /// are deterministic), which a test checks.
    pub fn sign<T: Serialize>(&self, header: &Header, claims: &T) -> anyhow::Result<String> {
        match self {
            Signer::Hs256(key) => Ok(jsonwebtoken::encode(header, claims, key)?),
            Signer::Ed25519(key) => {
                anyhow::ensure!(header.alg == Algorithm::EdDSA, "an Ed25519 key signs EdDSA");
                let mut message = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
                message.push('.');
                URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut message);
                let signature = key.sign(message.as_bytes());
                message.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut message);
                Ok(message)
            }
        }
    }
}

impl RingKey {
    /// Checks the signature of a token that names this key.
    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// What is stored of an HS256 secret that was replaced (table `retired_secrets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    /// Unix ms from which another secret signed.
    pub replaced_at: i64,
    pub revoked: bool,
}

/// The keys one instance signs and verifies with, at a point in time.
pub struct KeyRing {
    alg: Algorithm,
    /// Oldest activation first.
    keys: Vec<RingKey>,
    by_kid: HashMap<String, usize>,
    /// How long an access token can be accepted after signing (ms): its lifetime plus
    /// the leeway. A replaced key verifies tokens that expire within this long of
    /// its replacement, and stays published this long.
    token_life: i64,
}

#[derive(Serialize)]
pub(crate) struct Jwk<'a> {
    kty: &'static str,
    crv: &'static str,
    pub(crate) x: &'a str,
    kid: &'a str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

#[derive(Serialize)]
pub struct JwkSet<'a> {
    pub(crate) keys: Vec<Jwk<'a>>,
}

/// The `kid` of an HS256 secret: a digest, so that tokens and the database can name
/// a secret without holding it.
pub fn hs256_kid(secret: &[u8]) -> String {
    format!(
        "hs256-{}",
        &URL_SAFE_NO_PAD.encode(Sha256::digest(secret))[..16]
    )
}

impl KeyRing {
    /// The ring for EdDSA, from the stored keys. The public half of each key is
    /// derived from its private key (the stored `public_key` must be that, and the kid
    /// its thumbprint): a row someone changed in the database is refused, not used. A
    /// key revoked before it activated never signed anything and is left out.
    pub fn from_rows(rows: &[KeyRow], master: &MasterKey, token_life: i64) -> anyhow::Result<Self> {
        let mut keys: Vec<RingKey> = Vec::with_capacity(rows.len());
        let mut rows: Vec<&KeyRow> = rows
            .iter()
            .filter(|row| row.revoked_at.is_none_or(|at| at > row.activates_at))
            .collect();
        rows.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
        for row in rows {
            if row.alg != ALG_EDDSA {
                bail!(
                    "signing key {} has unsupported algorithm {}",
                    row.kid,
                    row.alg
                );
            }
            let der = master.open(&row.kid, &row.sealed_key)?;
            let signing = ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                .map_err(|_| anyhow::anyhow!("signing key {} is not an Ed25519 key", row.kid))?;
            let public = signing.verifying_key().to_bytes();
            if ed25519_kid(&public) != row.kid {
                bail!(
                    "signing key {}: its kid is not its key's thumbprint",
                    row.kid
                );
            }
            if row.public_key != public {
                bail!(
                    "signing key {}: the stored public key is not its private key's own",
                    row.kid
                );
            }
            if let Some(previous) = keys.last_mut() {
                previous.replaced_at = Some(row.activates_at);
            }
            keys.push(RingKey {
                kid: row.kid.clone(),
                activates_at: row.activates_at,
                replaced_at: None,
                revoked: row.revoked_at.is_some(),
                signer: Some(Signer::Ed25519(Box::new(signing))),
                decoding: DecodingKey::from_ed_der(&public),
                public_x: Some(URL_SAFE_NO_PAD.encode(public)),
            });
        }
        Ok(Self::new(Algorithm::EdDSA, keys, token_life))
    }

    /// The ring for HS256: the current secret signs; the previous ones verify what
    /// they signed before they were replaced, unless revoked.
    pub fn from_secrets(current: &[u8], previous: &[(&[u8], Retired)], token_life: i64) -> Self {
        let mut keys: Vec<RingKey> = previous
            .iter()
            .map(|&(secret, retired)| RingKey {
                kid: hs256_kid(secret),
                activates_at: i64::MIN,
                replaced_at: Some(retired.replaced_at),
                revoked: retired.revoked,
                signer: None,
                decoding: DecodingKey::from_secret(secret),
                public_x: None,
            })
            .collect();
        keys.push(RingKey {
            kid: hs256_kid(current),
            activates_at: i64::MIN + 1,
            replaced_at: None,
            revoked: false,
            signer: Some(Signer::Hs256(EncodingKey::from_secret(current))),
            decoding: DecodingKey::from_secret(current),
            public_x: None,
        });
        Self::new(Algorithm::HS256, keys, token_life)
    }

    fn new(alg: Algorithm, keys: Vec<RingKey>, token_life: i64) -> Self {
        let by_kid = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.kid.clone(), i))
            .collect();
        Self {
            alg,
            keys,
            by_kid,
            token_life,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key that signs at `now`: the newest activated one (or, before any is
    /// active, the oldest). If that one was revoked, the next one after it signs early
    /// (`keys revoke` stores one activating at once; a clock slightly behind the
    /// operator's would otherwise see none yet).
    pub fn signing_key(&self, now: i64) -> Option<(&str, &Signer)> {
        let signs = |k: &RingKey| k.signer.is_some();
        let current = self
            .keys
            .iter()
            .rposition(|k| signs(k) && k.activates_at <= now)
            .or_else(|| self.keys.iter().position(signs))?;
        let key = self.keys[current..]
            .iter()
            .find(|k| signs(k) && !k.revoked)?;
        Some((key.kid.as_str(), key.signer.as_ref()?))
    }

    /// Is this key published at `now`: not revoked, and not replaced longer than a
    /// token lifetime ago (what it signed may still be unexpired).
    fn is_published(&self, key: &RingKey, now: i64) -> bool {
        !key.revoked
            && key
                .replaced_at
                .is_none_or(|at| now < self.last_expiry_secs(at).saturating_mul(1000))
    }

    /// The key that names itself `kid` in a token's header.
    ///
    /// Every stored key answers, including revoked keys and keys retired longer ago
    /// than a token lifetime: what they signed can no longer be accepted
    /// ([`KeyRing::admits`]), but their signature still tells a genuine token
    /// (`token_expired`: the client refreshes) from a forgery (`token_invalid`). Without
    /// this, a laptop waking up after a key rotation would be logged out instead of
    /// refreshing. Retired keys leave the ring when the purge deletes them, once no
    /// refresh token from their time can still be used.
    pub fn key(&self, kid: &str) -> Option<&RingKey> {
        let &i = self.by_kid.get(kid)?;
        Some(&self.keys[i])
    }

    /// May a token signed by `key`, issued at `iat` and expiring at `exp` (seconds),
    /// be accepted? Not if the key was revoked; if it was replaced, only if the token
    /// was issued before the replacement and expires within a token lifetime of it,
    /// which is all the key legitimately signed: a stolen key stops minting tokens
    /// when it is rotated out, and stops at once when it is revoked.
    pub fn admits(&self, key: &RingKey, iat: i64, exp: i64) -> bool {
        if key.revoked {
            return false;
        }
        key.replaced_at
            .is_none_or(|at| iat.saturating_mul(1000) < at && exp <= self.last_expiry_secs(at))
    }

    /// The latest `exp` of a token signed before `replaced_at`.
    fn last_expiry_secs(&self, replaced_at: i64) -> i64 {
        crate::clock::expiry_secs(replaced_at, self.token_life)
    }

    /// The public keys as a JWK set (RFC 7517). Empty for HS256: secrets are never published.
    pub fn jwks(&self, now: i64) -> JwkSet<'_> {
        let keys = self
            .keys
            .iter()
            .filter(|k| self.is_published(k, now))
            .filter_map(|k| {
                Some(Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    x: k.public_x.as_deref()?,
                    kid: &k.kid,
                    alg: ALG_EDDSA,
                    use_: "sig",
                })
            })
            .collect();
        JwkSet { keys }
    }

    /// Kids of the keys this ring verifies at `now`, signing key last.
    pub fn published_kids(&self, now: i64) -> Vec<&str> {
        self.keys
            .iter()
            .filter(|k| self.is_published(k, now))
            .map(|k| k.kid.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_publishes_early_signs_later_and_retires_after_the_token_lifetime() {
        let m = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let old = new_ed25519_key(&m, 0, 0);
        let new = new_ed25519_key(&m, 1_000, 6_000);
        let ring = KeyRing::from_rows(&[old.clone(), new.clone()], &m, 900_000).unwrap();
        // Before activation: old signs, both verify, both in the JWKS.
        assert_eq!(ring.signing_key(2_000).unwrap().0, old.kid);
        assert!(ring.key(&new.kid).is_some());
        assert_eq!(
            ring.published_kids(2_000),
            vec![old.kid.as_str(), new.kid.as_str()]
        );
        // After activation: new signs, old stays published for one token lifetime...
        assert_eq!(ring.signing_key(6_000).unwrap().0, new.kid);
        assert_eq!(
            ring.published_kids(6_000 + 899_999),
            vec![old.kid.as_str(), new.kid.as_str()]
        );
        assert_eq!(ring.published_kids(6_000 + 900_000), vec![new.kid.as_str()]);
        // ...and keeps checking signatures (to tell expired from forged) until purged,
        // admitting only what it signed before the replacement.
        let old_key = ring.key(&old.kid).unwrap();
        assert!(ring.admits(old_key, 5, 5 + 900));
        assert!(
            !ring.admits(old_key, 6, 6 + 900),
            "issued after the replacement"
        );
        assert!(ring.admits(old_key, 5, 906), "expires a lifetime after it");
        assert!(
            !ring.admits(old_key, 5, 907),
            "outlives it by more than a lifetime"
        );
        assert!(ring.key("unknown").is_none());
    }

    #[test]
    fn a_revoked_key_admits_nothing_and_its_successor_signs_at_once() {
        let m = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let mut old = new_ed25519_key(&m, 0, 0);
        old.revoked_at = Some(10_000);
        // Stored by `keys revoke` a moment "later" by a clock ahead of this one.
        let successor = new_ed25519_key(&m, 10_000, 10_500);
        // A key revoked before it activated never signed: left out.
        let mut withdrawn = new_ed25519_key(&m, 1_000, 60_000);
        withdrawn.revoked_at = Some(2_000);
        let rows = [old.clone(), successor.clone(), withdrawn.clone()];
        let ring = KeyRing::from_rows(&rows, &m, 900_000).unwrap();
        assert_eq!(ring.signing_key(10_000).unwrap().0, successor.kid);
        assert_eq!(ring.signing_key(100_000).unwrap().0, successor.kid);
        assert!(!ring.admits(ring.key(&old.kid).unwrap(), 1, 900));
        assert_eq!(ring.published_kids(10_000), vec![successor.kid.as_str()]);
        assert!(ring.key(&withdrawn.kid).is_none());
    }

    #[test]
    fn a_previous_hs256_secret_admits_only_what_it_signed_before() {
        let retired = Retired {
            replaced_at: 100_000,
            revoked: false,
        };
        let ring = KeyRing::from_secrets(b"new", &[(b"old", retired)], 900_000);
        let old = ring.key(&hs256_kid(b"old")).unwrap();
        assert!(ring.admits(old, 99, 99 + 900));
        assert!(!ring.admits(old, 100, 100 + 900));
        let revoked = Retired {
            revoked: true,
            ..retired
        };
        let ring = KeyRing::from_secrets(b"new", &[(b"old", revoked)], 900_000);
        assert!(!ring.admits(ring.key(&hs256_kid(b"old")).unwrap(), 99, 99 + 900));
        assert_eq!(ring.signing_key(0).unwrap().0, hs256_kid(b"new"));
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 public key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let kid = ed25519_kid(&x.try_into().unwrap());
        assert_eq!(kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
