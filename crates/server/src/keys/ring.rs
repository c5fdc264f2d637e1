//! The key ring: the keys one instance signs and verifies access tokens with, which
//! of them signs at a given time, and which are published in the JWKS.

use std::collections::HashMap;

use anyhow::{bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
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
    }
}

/// One key of the ring.
struct RingKey {
    kid: String,
    /// Unix ms from which it signs.
    activates_at: i64,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    /// Public part for the JWKS (EdDSA only).
    public_x: Option<String>,
}

/// The keys one instance signs and verifies with, at a point in time.
pub struct KeyRing {
    alg: Algorithm,
    /// Oldest activation first.
    keys: Vec<RingKey>,
    by_kid: HashMap<String, usize>,
    /// How long after being replaced a key still verifies (ms): the access-token
    /// lifetime plus leeway.
    verify_after_replaced: i64,
    /// The `signing_keys` fingerprint this ring was built from.
    pub fingerprint: (i64, i64),
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

impl KeyRing {
    /// The ring for EdDSA, from the stored keys.
    pub fn from_rows(
        rows: &[KeyRow],
        master: &MasterKey,
        verify_after_replaced: i64,
        fingerprint: (i64, i64),
    ) -> anyhow::Result<Self> {
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            if row.alg != ALG_EDDSA {
                bail!(
                    "signing key {} has unsupported algorithm {}",
                    row.kid,
                    row.alg
                );
            }
            let der = master.open(&row.kid, &row.sealed_key)?;
            let public: [u8; 32] = row
                .public_key
                .as_slice()
                .try_into()
                .with_context(|| format!("public key of {} is not 32 bytes", row.kid))?;
            keys.push(RingKey {
                kid: row.kid.clone(),
                activates_at: row.activates_at,
                encoding: Some(EncodingKey::from_ed_der(&der)),
                decoding: DecodingKey::from_ed_der(&public),
                public_x: Some(URL_SAFE_NO_PAD.encode(public)),
            });
        }
        Ok(Self::new(
            Algorithm::EdDSA,
            keys,
            verify_after_replaced,
            fingerprint,
        ))
    }

    /// The ring for HS256: the current secret signs, the previous ones verify.
    pub fn from_secrets(current: &[u8], previous: &[&[u8]]) -> Self {
        let kid = |secret: &[u8]| {
            format!(
                "hs256-{}",
                &URL_SAFE_NO_PAD.encode(Sha256::digest(secret))[..16]
            )
        };
        let mut keys: Vec<RingKey> = previous
            .iter()
            .map(|secret| RingKey {
                kid: kid(secret),
                activates_at: i64::MIN,
                encoding: None,
                decoding: DecodingKey::from_secret(secret),
                public_x: None,
            })
            .collect();
        keys.push(RingKey {
            kid: kid(current),
            activates_at: i64::MIN + 1,
            encoding: Some(EncodingKey::from_secret(current)),
            decoding: DecodingKey::from_secret(current),
            public_x: None,
        });
        // Previous secrets verify for as long as they are configured.
        Self::new(Algorithm::HS256, keys, i64::MAX / 2, (0, 0))
    }

    fn new(
        alg: Algorithm,
        keys: Vec<RingKey>,
        verify_after_replaced: i64,
        fingerprint: (i64, i64),
    ) -> Self {
        let by_kid = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.kid.clone(), i))
            .collect();
        Self {
            alg,
            keys,
            by_kid,
            verify_after_replaced,
            fingerprint,
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Index of the key that signs at `now`: the newest activated one (or, before
    /// any is active, the oldest).
    fn signing_index(&self, now: i64) -> Option<usize> {
        self.keys
            .iter()
            .rposition(|k| k.activates_at <= now && k.encoding.is_some())
            .or_else(|| self.keys.iter().position(|k| k.encoding.is_some()))
    }

    /// The key that signs at `now`, with its kid.
    pub fn signing_key(&self, now: i64) -> Option<(&str, &EncodingKey)> {
        let key = &self.keys[self.signing_index(now)?];
        Some((key.kid.as_str(), key.encoding.as_ref()?))
    }

    /// Is key `i` published at `now`: not yet replaced, or replaced recently enough
    /// that tokens it signed may still be unexpired?
    fn is_published(&self, i: usize, now: i64) -> bool {
        let Some(signing) = self.signing_index(now) else {
            return false;
        };
        if i >= signing {
            return true;
        }
        // Key i was replaced when key i+1 activated.
        let replaced_at = self.keys[i + 1].activates_at;
        now < replaced_at.saturating_add(self.verify_after_replaced)
    }

    /// The key that checks the signature of a token with this `kid`.
    ///
    /// Every stored key answers, including keys retired longer ago than a token
    /// lifetime: a token they signed can no longer be valid, but its signature still
    /// tells a genuine expired token (`token_expired`: the client refreshes) from a
    /// forgery (`token_invalid`). Without this, a laptop waking up after a key rotation
    /// would be logged out instead of refreshing. Retired keys leave the ring when the
    /// purge deletes them, once no refresh token from their time can still be used.
    pub fn verifying_key(&self, kid: &str) -> Option<&DecodingKey> {
        let &i = self.by_kid.get(kid)?;
        Some(&self.keys[i].decoding)
    }

    /// The public keys as a JWK set (RFC 7517). Empty for HS256: secrets are never published.
    pub fn jwks(&self, now: i64) -> JwkSet<'_> {
        let keys = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| self.is_published(*i, now))
            .filter_map(|(_, k)| {
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
        (0..self.keys.len())
            .filter(|&i| self.is_published(i, now))
            .map(|i| self.keys[i].kid.as_str())
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
        let ring =
            KeyRing::from_rows(&[old.clone(), new.clone()], &m, 900_000, (2, 1_000)).unwrap();
        // Before activation: old signs, both verify, both in the JWKS.
        assert_eq!(ring.signing_key(2_000).unwrap().0, old.kid);
        assert!(ring.verifying_key(&new.kid).is_some());
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
        // ...and keeps checking signatures (to tell expired from forged) until purged.
        assert!(ring.verifying_key(&old.kid).is_some());
        assert!(ring.verifying_key("unknown").is_none());
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
