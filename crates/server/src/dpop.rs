//! DPoP (RFC 9449): tokens bound to a key that the client holds and cannot give
//! away, so that tokens copied out of a browser are worthless anywhere else. The whole
//! rule of what a request with (or without) a proof gets is here.
//!
//! | request | with `BATON_DPOP=allowed` (default) |
//! |---|---|
//! | login without a `DPoP` header | a Bearer session (`required`: 400 `invalid_dpop_proof`) |
//! | login with a valid proof | a session bound to the proof's key (its RFC 7638 thumbprint): `token_type` `DPoP`, `cnf.jkt` in every access token |
//! | refresh of a bound session | needs a valid proof by the bound key, else 400 `invalid_dpop_proof` and nothing changes ([`crate::store::rotation`]) |
//! | refresh of a Bearer session | as before, with or without a proof (`required`: refused) |
//! | `Authorization: DPoP <token>` | a valid proof with `ath`; by the bound key if the token has `cnf` |
//! | `Authorization: Bearer <token with cnf>` | 401 `token_invalid`: a bound token is never downgraded |
//!
//! A proof is valid (section 4.3) when it is one compact JWS ([`proof`]: `typ`, `alg`
//! EdDSA or ES256, a public-only `jwk`, the signature), names this request (`htm`, and
//! `htu` against [`PublicOrigin`], so that it works behind a proxy), has an `iat`
//! within `BATON_DPOP_IAT_SKEW` of the server's clock, carries a server nonce no older
//! than its lifetime ([`nonce`]; without one, or with an older one, the answer is
//! `use_dpop_nonce` with a fresh `DPoP-Nonce`, and the client retries once), and was
//! not presented before. The nonce, not `iat`, is what makes a proof fresh, so a
//! browser with a wrong clock still works.
//!
//! Replay (section 11.1): a login or refresh proof is recorded in the database, so it
//! is accepted once across all instances ([`crate::store::dpop`]). A resource call's
//! proof is recorded in this instance's memory only ([`replay`]): no I/O on the hot
//! path, at the price that one proof, copied from a request in flight, could be
//! replayed once on each other instance, for the same method, URL and access token,
//! within the nonce's lifetime.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::clock::now_ms;
use crate::config::{DpopConfig, DpopMode, PublicOrigin};
use crate::error::{BearerError, DpopAnswer, DpopEndpoint, DpopError, DpopProblem, Error};
use crate::metrics::SignatureMetrics;
use crate::state::AppState;
use crate::store::{self, Db};

pub mod batch;
pub mod nonce;
pub mod proof;
pub mod replay;

use batch::Ed25519Batches;
use nonce::Nonces;
use replay::{Admission, Replay, FUTURE_SKEW};

/// The request header that carries a proof.
pub static DPOP: HeaderName = HeaderName::from_static("dpop");
/// The response header that carries a server nonce.
pub static DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// How an access token was presented (`Authorization: <scheme> <token>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

impl Scheme {
    /// An access-token failure, answered in this scheme's terms.
    pub fn refuse(self, error: BearerError) -> Error {
        match self {
            Scheme::Bearer => Error::Bearer(error),
            Scheme::Dpop => resource(DpopProblem::Token(error)).into(),
        }
    }
}

/// The request a proof must name.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a Method,
    /// The path as the client sent it (before any nesting strips a prefix).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

pub struct Dpop {
    mode: DpopMode,
    origin: Option<PublicOrigin>,
    nonces: Nonces,
    replay: Replay,
    headers: proof::Headers,
    signatures: Ed25519Batches,
    ttl: i64,
    iat_skew: i64,
}

/// A proof that passed every check but the replay check.
struct Checked {
    jkt: String,
    /// SHA-256 of the key's thumbprint and the `jti`: what the replay check records.
    proof_key: [u8; 32],
    nonce_at: i64,
}

fn resource(problem: DpopProblem) -> DpopError {
    DpopError::new(problem, DpopEndpoint::Resource)
}

fn now_secs() -> i64 {
    now_ms().div_euclid(1000)
}

impl Dpop {
    pub fn new(
        config: &DpopConfig,
        nonce_key: Zeroizing<[u8; 32]>,
        signatures: SignatureMetrics,
    ) -> Self {
        let ttl = crate::clock::seconds(config.nonce_ttl);
        Self {
            mode: config.mode,
            origin: config.public_origin.clone(),
            nonces: Nonces::new(nonce_key, ttl),
            replay: Replay::new(ttl, config.replay_capacity, now_secs()),
            headers: proof::Headers::default(),
            signatures: Ed25519Batches::new(signatures),
            ttl,
            iat_skew: crate::clock::seconds(config.iat_skew),
        }
    }

    pub fn mode(&self) -> DpopMode {
        self.mode
    }

    /// True when the `DPoP` authorization scheme and proofs are read at all.
    pub fn enabled(&self) -> bool {
        self.mode != DpopMode::Off
    }

    /// The nonce to send now in `DPoP-Nonce`.
    pub fn current_nonce(&self) -> axum::http::HeaderValue {
        let now = now_secs();
        self.nonces.issue(now, self.replay.floor(now))
    }

    /// Login and refresh: the thumbprint of the key the request's proof proves, once
    /// the proof is recorded as used; `None` without a proof (unless `required`) or
    /// with DPoP off.
    pub async fn token_request(
        &self,
        db: &Db,
        target: &Target<'_>,
    ) -> Result<Option<String>, Error> {
        let refuse = |problem| Error::from(DpopError::new(problem, DpopEndpoint::Token));
        if !self.enabled() {
            return Ok(None);
        }
        if !target.headers.contains_key(&DPOP) {
            return match self.mode {
                DpopMode::Required => Err(refuse(DpopProblem::Missing)),
                _ => Ok(None),
            };
        }
        let checked = self.check(target, None, None).await.map_err(refuse)?;
        let now = now_secs();
        if checked.nonce_at < now - self.ttl {
            return Err(refuse(DpopProblem::UseNonce));
        }
        // Kept until the nonce expires: after that the proof is refused anyway.
        let expires_at = (checked.nonce_at.max(now) + self.ttl + FUTURE_SKEW) * 1000;
        if !store::dpop::record(db, &checked.proof_key, expires_at).await? {
            return Err(refuse(DpopProblem::Replayed));
        }
        Ok(Some(checked.jkt))
    }

    /// A call with an access token presented in `scheme`, whose `cnf.jkt` is `bound`.
    pub async fn resource_request(
        &self,
        target: &Target<'_>,
        scheme: Scheme,
        token: &str,
        bound: Option<&str>,
    ) -> Result<(), Error> {
        match (scheme, bound) {
            (Scheme::Bearer, Some(_)) => return Err(resource(DpopProblem::Downgrade).into()),
            (Scheme::Bearer, None) if self.mode == DpopMode::Required => {
                return Err(resource(DpopProblem::Missing).into())
            }
            (Scheme::Bearer, None) => return Ok(()),
            (Scheme::Dpop, _) => {}
        }
        if !target.headers.contains_key(&DPOP) {
            return Err(resource(DpopProblem::Missing).into());
        }
        let checked = self
            .check(target, Some(token), bound)
            .await
            .map_err(resource)?;
        let key = u128::from_be_bytes(checked.proof_key[..16].try_into().expect("16 bytes"));
        match self.replay.admit(key, checked.nonce_at, now_secs()) {
            Admission::Fresh => Ok(()),
            Admission::Replayed => Err(resource(DpopProblem::Replayed).into()),
            Admission::StaleNonce => Err(resource(DpopProblem::UseNonce).into()),
            Admission::Full => Err(Error::unavailable()),
        }
    }

    /// Every check of a proof but the replay check: one `DPoP` header, a well-formed
    /// proof ([`proof::parse`]), `htm`, `htu`, `ath` (`token`: the access token of a
    /// resource call), `iat`, a nonce of ours that is not from the future, the key
    /// (`bound`: the thumbprint a bound token names), and the signature, which costs
    /// the most and so comes last.
    async fn check(
        &self,
        target: &Target<'_>,
        token: Option<&str>,
        bound: Option<&str>,
    ) -> Result<Checked, DpopProblem> {
        let invalid = DpopProblem::Invalid;
        let mut values = target.headers.get_all(&DPOP).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(invalid("a request carries one DPoP header"));
        };
        let text = value
            .to_str()
            .map_err(|_| invalid("the DPoP header is not a JWT"))?;
        let proof = proof::parse(text, &self.headers).map_err(invalid)?;
        let claims = &proof.claims;
        if claims.htm != target.method.as_str() {
            return Err(invalid("the DPoP proof's htm is not this request's method"));
        }
        let from_host;
        let origin = match &self.origin {
            Some(origin) => origin,
            None => {
                from_host = host_origin(target.headers)?;
                &from_host
            }
        };
        if !proof::htu_matches(&claims.htu, origin, target.path) {
            return Err(invalid("the DPoP proof's htu is not this request's URL"));
        }
        match (token, claims.ath.as_deref()) {
            (Some(_), None) => return Err(invalid("the DPoP proof has no ath")),
            (Some(token), Some(ath)) if !proof::ath_matches(ath, token) => {
                return Err(invalid(
                    "the DPoP proof's ath is not this access token's hash",
                ))
            }
            _ => {}
        }
        let now = now_secs();
        let iat = claims
            .iat_secs()
            .ok_or(invalid("the DPoP proof's iat is not a time"))?;
        if iat.abs_diff(now) > self.iat_skew.unsigned_abs() {
            return Err(invalid(
                "the DPoP proof's iat is too far from the server's clock",
            ));
        }
        let nonce_at = claims
            .nonce
            .as_deref()
            .and_then(|n| self.nonces.issued_at(n))
            .filter(|&at| at <= now + FUTURE_SKEW)
            .ok_or(DpopProblem::UseNonce)?;
        if bound.is_some_and(|jkt| jkt != proof.jkt) {
            return Err(DpopProblem::WrongKey);
        }
        proof
            .verify_signature(&self.signatures)
            .await
            .map_err(invalid)?;
        let proof_key = Sha256::new()
            .chain_update(proof.jkt.as_bytes())
            .chain_update(b".")
            .chain_update(claims.jti.as_bytes())
            .finalize()
            .into();
        Ok(Checked {
            jkt: proof.jkt,
            proof_key,
            nonce_at,
        })
    }
}

/// Without a configured origin (development only, [`DpopConfig::problems`]): the
/// request's own `Host`, over plain HTTP.
fn host_origin(headers: &HeaderMap) -> Result<PublicOrigin, DpopProblem> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|host| PublicOrigin::parse(&format!("http://{host}")).ok())
        .ok_or(DpopProblem::Invalid(
            "the request has no Host for the DPoP proof's htu",
        ))
}

/// Middleware of the API: every answer carries a `DPoP-Nonce` the client can put in its
/// next proof (section 8.2: at any time), so that a client can have one before its
/// first proof (any call will do, `GET /api/health` is the cheapest) instead of
/// meeting `use_dpop_nonce`; every DPoP refusal ([`DpopAnswer`]) is counted.
pub async fn nonce_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if !state.dpop.enabled() {
        return response;
    }
    let answer = response.extensions().get::<DpopAnswer>().copied();
    if let Some(refusal) = answer.and_then(|a| a.refusal) {
        state.metrics.dpop_refusal(refusal);
        if refusal != "use_nonce" {
            tracing::info!(refusal, "DPoP refused");
        }
    }
    let nonce = state.dpop.current_nonce();
    response.headers_mut().insert(DPOP_NONCE.clone(), nonce);
    response
}
