//! Access tokens (JWT, RFC 9068 profile).
//!
//! Access tokens carry `typ: at+jwt` and a `kid`; the claims `iss aud sub sid iat exp
//! jti` are all required on verification, only the configured algorithm is accepted,
//! and a token with any other `typ` (an ID token, a refresh token) is refused.
//! Refresh tokens are opaque: see [`crate::refresh_token`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::{now_ms, seconds};
use crate::config::TokenConfig;
use crate::error::BearerError;
use crate::keys::KeyRing;

/// `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: Uuid,
    /// Session id.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The key the token is bound to (RFC 9449 section 6.1), for a DPoP session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// `cnf` (RFC 7800): the RFC 7638 thumbprint of the session's DPoP key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// How many verified tokens are remembered (about 600 bytes each).
const VERIFIED_CACHE_CAPACITY: usize = 4096;

/// Signs and verifies access tokens with the current key ring.
pub struct AccessTokens {
    issuer: String,
    audience: String,
    ttl_secs: i64,
    leeway_secs: i64,
    validation: Validation,
    /// The ring, with a generation number that every replacement increments.
    ring: RwLock<(u64, Arc<KeyRing>)>,
    /// Tokens whose signature and claims were checked, by their full text: a client
    /// presents the same access token on every request of its lifetime, and an
    /// Ed25519 verification costs tens of microseconds. A hit still checks the expiry;
    /// revocation is checked by the caller on every request, cached or not.
    verified: RwLock<Verified>,
}

/// The verified-token cache: tokens checked with the ring of one generation. A new
/// ring empties it (a key revoked or replaced must not keep a token it signed here).
struct Verified {
    ring: u64,
    tokens: HashMap<Box<str>, AccessClaims>,
}

impl AccessTokens {
    pub fn new(config: &TokenConfig, ring: KeyRing) -> Self {
        let (issuer, audience) = (config.issuer.as_str(), config.audience.as_str());
        let leeway_secs = seconds(config.leeway);
        let mut validation = Validation::new(ring.algorithm());
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = leeway_secs as u64;
        validation.validate_exp = true;
        validation.validate_nbf = false;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .into_iter()
            .map(String::from)
            .collect::<HashSet<_>>();
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: seconds(config.access_ttl),
            leeway_secs,
            validation,
            ring: RwLock::new((0, Arc::new(ring))),
            verified: RwLock::new(Verified {
                ring: 0,
                tokens: HashMap::with_capacity(VERIFIED_CACHE_CAPACITY),
            }),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().expect("key ring lock").1.clone()
    }

    /// Puts a new ring in place and empties the verified-token cache: from now on every
    /// token is judged by the new ring.
    pub fn replace_ring(&self, ring: KeyRing) {
        let generation = {
            let mut slot = self.ring.write().expect("key ring lock");
            *slot = (slot.0 + 1, Arc::new(ring));
            slot.0
        };
        let mut verified = self.verified.write().expect("verified-token cache lock");
        verified.tokens.clear();
        verified.ring = generation;
    }

    /// A new access token for this user and session; returns it with its `exp`.
    pub fn sign(&self, user_id: Uuid, session_id: Uuid) -> anyhow::Result<(String, i64)> {
        self.sign_bound(user_id, session_id, None)
    }

    /// [`AccessTokens::sign`], bound to a DPoP key (`cnf.jkt`) when the session is.
    pub fn sign_bound(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        jkt: Option<&str>,
    ) -> anyhow::Result<(String, i64)> {
        let now_ms = now_ms();
        let iat = now_ms.div_euclid(1000);
        // Rounded up, so the token lives at least the `expires_in` (= ttl) the answer
        // says from the moment it is signed. Rounded down, it would live up to a second
        // less, and a client timing its refresh by `expires_in` would send tokens the
        // server already counts as expired.
        let exp = crate::clock::expiry_secs(now_ms, self.ttl_secs.saturating_mul(1000));
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            sid: session_id,
            iat,
            exp,
            jti: Uuid::new_v4(),
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
        };
        let ring = self.ring();
        let (kid, key) = ring
            .signing_key(now_ms)
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        let mut header = Header::new(ring.algorithm());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(kid.to_owned());
        let token = key.sign(&header, &claims)?;
        Ok((token, claims.exp))
    }

    /// Verifies an access token: signature by a known key that may vouch for it
    /// ([`KeyRing::admits`]), `typ`, algorithm, issuer, audience, every claim present,
    /// and expiry (with the configured leeway).
    pub fn verify(&self, token: &str) -> Result<AccessClaims, BearerError> {
        let now_secs = now_ms().div_euclid(1000);
        let cached = self
            .verified
            .read()
            .expect("verified-token cache lock")
            .tokens
            .get(token)
            .cloned();
        if let Some(claims) = cached {
            if self.is_expired(claims.exp, now_secs) {
                self.verified
                    .write()
                    .expect("verified-token cache lock")
                    .tokens
                    .remove(token);
                return Err(BearerError::Expired);
            }
            return Ok(claims);
        }
        let (generation, ring) = self.ring.read().expect("key ring lock").clone();
        let claims = self.verify_with(&ring, token)?;
        let mut cache = self.verified.write().expect("verified-token cache lock");
        if cache.ring != generation {
            // The ring changed meanwhile: judged by the old one, not for the cache.
            return Ok(claims);
        }
        if cache.tokens.len() >= VERIFIED_CACHE_CAPACITY {
            // Drop what has expired; if that is not enough, start over (the next
            // request of each client verifies its token once more).
            cache
                .tokens
                .retain(|_, c| !self.is_expired(c.exp, now_secs));
            if cache.tokens.len() >= VERIFIED_CACHE_CAPACITY {
                cache.tokens.clear();
            }
        }
        cache.tokens.insert(token.into(), claims.clone());
        Ok(claims)
    }

    /// [`AccessTokens::verify`] without the cache: what a token costs the first time
    /// it is seen.
    pub fn verify_uncached(&self, token: &str) -> Result<AccessClaims, BearerError> {
        self.verify_with(&self.ring(), token)
    }

    fn verify_with(&self, ring: &KeyRing, token: &str) -> Result<AccessClaims, BearerError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| BearerError::Invalid)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok || header.alg != self.validation.algorithms[0] {
            return Err(BearerError::Invalid);
        }
        let kid = header.kid.as_deref().ok_or(BearerError::Invalid)?;
        let key = ring.key(kid).ok_or(BearerError::Invalid)?;
        match jsonwebtoken::decode::<AccessClaims>(token, key.decoding(), &self.validation) {
            // Genuine, but its key may no longer vouch for it (revoked, or replaced
            // before the token was issued): no longer valid, like an expired token, so
            // that a client refreshes instead of being logged out.
            Ok(data) if !ring.admits(key, data.claims.iat, data.claims.exp) => {
                Err(BearerError::Expired)
            }
            Ok(data) if self.is_expired(data.claims.exp, now_ms().div_euclid(1000)) => {
                Err(BearerError::Expired)
            }
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(BearerError::Expired),
            Err(_) => Err(BearerError::Invalid),
        }
    }

    /// `exp` is exclusive (RFC 7519 section 4.1.4: "on or after" it, the token must
    /// not be accepted), after the configured leeway. jsonwebtoken's own check lets
    /// `exp == now` through, so this one runs after it, and on every cache hit.
    fn is_expired(&self, exp: i64, now_secs: i64) -> bool {
        exp <= now_secs - self.leeway_secs
    }

    /// Signs and verifies one token: run at start-up so that a broken key or crypto
    /// backend stops the server instead of every login.
    pub fn self_test(&self) -> anyhow::Result<()> {
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let (token, _) = self.sign(user, session)?;
        let claims = self
            .verify(&token)
            .map_err(|e| anyhow::anyhow!("access-token self-test failed: {e:?}"))?;
        anyhow::ensure!(
            claims.sub == user && claims.sid == session,
            "access-token self-test returned other claims"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
