//! One DPoP proof JWT (RFC 9449 section 4.2): its parts, its public key, and the
//! checks of section 4.3 that need nothing but the proof: a compact JWS, `typ`
//! `dpop+jwt`, an allowed `alg` that matches the key, a public-only `jwk`, every
//! required claim, and the signature. The checks against the request and the server's
//! state (method, URL, `ath`, time, nonce, replay) are the caller's, [`super::Dpop`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use quick_cache::sync::Cache;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::batch::Ed25519Batches;
use crate::config::PublicOrigin;

/// The `typ` of a proof.
pub const TYP: &str = "dpop+jwt";

/// Longest `DPoP` header read (an Ed25519 proof is about 400 bytes, ES256 about 550).
pub const MAX_LEN: usize = 4096;

/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// Members of a JWK that belong to a private (or symmetric) key, RFC 7518 section 6:
/// a proof that carries one has given its key away, and is refused.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[derive(Clone)]
enum Key {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// A parsed proof whose signature is not checked yet ([`Proof::verify_signature`]).
pub struct Proof<'a> {
    signing_input: &'a str,
    /// Both algorithms' signatures are 64 bytes (ES256: `r || s`, RFC 7518 3.4).
    signature: [u8; 64],
    key: Key,
    /// The key's RFC 7638 thumbprint (base64url SHA-256): what a session is bound to.
    pub jkt: String,
    pub claims: Claims,
}

/// The claims of a proof. `ath` is required on resource calls, `nonce` always, but
/// both are the caller's to demand.
#[derive(Deserialize)]
pub struct Claims {
    pub jti: String,
    pub htm: String,
    pub htu: String,
    pub iat: serde_json::Number,
    #[serde(default)]
    pub ath: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
}

impl Claims {
    /// `iat` in whole unix seconds (a NumericDate may have a fraction).
    pub fn iat_secs(&self) -> Option<i64> {
        let iat = self.iat.as_f64()?;
        iat.is_finite().then(|| iat.floor() as i64)
    }
}

/// What a proof's header yields once checked: its key and thumbprint.
#[derive(Clone)]
struct Header {
    key: Key,
    jkt: String,
}

/// Checked headers by their exact text. Every proof a browser key makes has the same
/// header (`typ`, `alg`, `jwk`), and everything [`parse`] checks in it follows from that
/// text alone, so a header seen before skips its base64, its JSON, the key's
/// decompression and the thumbprint's hash. Bounded: [`Headers::CAPACITY`] headers of
/// at most [`Headers::MAX_HEADER_LEN`] bytes (a real one is about 150), about 2 MB.
pub struct Headers(Cache<Box<str>, Header>);

impl Default for Headers {
    fn default() -> Self {
        Headers(Cache::new(Self::CAPACITY))
    }
}

impl Headers {
    pub const CAPACITY: usize = 4_096;
    pub const MAX_HEADER_LEN: usize = 512;

    fn get_or_check(&self, text: &str) -> Result<Header, &'static str> {
        if let Some(header) = self.0.get(text) {
            return Ok(header);
        }
        let header = check_header(text)?;
        if text.len() <= Self::MAX_HEADER_LEN {
            self.0.insert(text.into(), header.clone());
        }
        Ok(header)
    }
}

/// Parses a proof: everything that needs no key first, then the key (its header
/// from `headers` when seen before).
pub fn parse<'a>(text: &'a str, headers: &Headers) -> Result<Proof<'a>, &'static str> {
    if text.len() > MAX_LEN {
        return Err("the DPoP proof is too long");
    }
    let mut parts = text.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the DPoP proof is not a compact JWS");
    };
    let Header { key, jkt } = headers.get_or_check(header)?;
    let claims: Claims = decode_json(payload).ok_or(
        "the DPoP proof's claims are not base64url JSON with jti, htm, htu and iat of the right types",
    )?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err("the DPoP proof's jti is empty or too long");
    }
    let mut bytes = [0u8; 64];
    let signature = match URL_SAFE_NO_PAD.decode_slice(signature, &mut bytes) {
        Ok(64) => bytes,
        _ => return Err("the DPoP proof's signature is not 64 bytes of base64url"),
    };
    Ok(Proof {
        signing_input: &text[..text.len() - 1 - signature_len(text)],
        signature,
        key,
        jkt,
        claims,
    })
}

/// The header's checks: `typ`, no `crit`, an allowed `alg` that matches a public-only
/// `jwk`.
fn check_header(text: &str) -> Result<Header, &'static str> {
    let header: Map<String, Value> =
        decode_json(text).ok_or("the DPoP proof's header is not base64url JSON")?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case(TYP)) {
        return Err("the DPoP proof's typ is not dpop+jwt");
    }
    if header.contains_key("crit") {
        return Err("the DPoP proof names critical extensions this server does not know");
    }
    let alg = header.get("alg").and_then(Value::as_str);
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or("the DPoP proof's header has no jwk")?;
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err("the DPoP proof's jwk holds a private key");
    }
    let (key, jkt) = match alg {
        Some("EdDSA") => ed25519_key(jwk)?,
        Some("ES256") => p256_key(jwk)?,
        _ => return Err("the DPoP proof's alg is not EdDSA or ES256"),
    };
    Ok(Header { key, jkt })
}

/// The length of the signature part: what follows the last `.`.
fn signature_len(text: &str) -> usize {
    text.rsplit('.').next().map_or(0, str::len)
}

impl Proof<'_> {
    /// Checks the signature with the proof's own key: Ed25519 in a batch with the
    /// proofs of other requests waiting at the same time ([`super::batch`]), P-256
    /// alone. (An Ed25519 key of small order is refused when the header is read.)
    pub async fn verify_signature(&self, batches: &Ed25519Batches) -> Result<(), &'static str> {
        const BAD: &str = "the DPoP proof's signature does not verify";
        let message = self.signing_input.as_bytes();
        match &self.key {
            Key::Ed25519(key) => {
                let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
                match batches.verify(*key, message, signature).await {
                    true => Ok(()),
                    false => Err(BAD),
                }
            }
            Key::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                let signature =
                    p256::ecdsa::Signature::from_slice(&self.signature).map_err(|_| BAD)?;
                key.verify(message, &signature).map_err(|_| BAD)
            }
        }
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, &'static str> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or("the DPoP proof's jwk lacks a member its key type needs")
}

/// A coordinate of `len` bytes in canonical base64url (no padding, no stray bits), so
/// that one key has one thumbprint.
fn coordinate(text: &str, len: usize) -> Result<Vec<u8>, &'static str> {
    const BAD: &str = "the DPoP proof's jwk holds a malformed coordinate";
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| BAD)?;
    if bytes.len() != len || URL_SAFE_NO_PAD.encode(&bytes) != text {
        return Err(BAD);
    }
    Ok(bytes)
}

fn ed25519_key(jwk: &Map<String, Value>) -> Result<(Key, String), &'static str> {
    if member(jwk, "kty")? != "OKP" || member(jwk, "crv")? != "Ed25519" {
        return Err("an EdDSA proof's jwk must be an OKP key on Ed25519");
    }
    let x = member(jwk, "x")?;
    let bytes: [u8; 32] = coordinate(x, 32)?.try_into().expect("32 bytes");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "the DPoP proof's jwk is not an Ed25519 public key")?;
    // Anyone can sign for a key of small order; `verify_strict` refuses such keys, and
    // the batched check ([`super::batch`]) relies on their being refused here.
    if key.is_weak() {
        return Err("the DPoP proof's jwk is an Ed25519 key of small order");
    }
    // RFC 7638: the required members, in lexicographic order, no whitespace.
    let jkt = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
    Ok((Key::Ed25519(key), jkt))
}

fn p256_key(jwk: &Map<String, Value>) -> Result<(Key, String), &'static str> {
    if member(jwk, "kty")? != "EC" || member(jwk, "crv")? != "P-256" {
        return Err("an ES256 proof's jwk must be an EC key on P-256");
    }
    let (x, y) = (member(jwk, "x")?, member(jwk, "y")?);
    let (xb, yb) = (coordinate(x, 32)?, coordinate(y, 32)?);
    let point = p256::EncodedPoint::from_affine_coordinates(
        p256::FieldBytes::from_slice(&xb),
        p256::FieldBytes::from_slice(&yb),
        false,
    );
    let key = p256::ecdsa::VerifyingKey::from_encoded_point(&point)
        .map_err(|_| "the DPoP proof's jwk is not a point on P-256")?;
    let jkt = thumbprint(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
    ));
    Ok((Key::P256(key), jkt))
}

fn thumbprint(canonical_jwk: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical_jwk.as_bytes()))
}

/// True when `ath` is the `ath` of access token `token`: base64url of its SHA-256 (RFC
/// 9449 section 4.2). Compared decoded, which is as strict (base64url without padding
/// has one text for 32 bytes: the decoder refuses stray bits).
pub fn ath_matches(ath: &str, token: &str) -> bool {
    let mut hash = [0u8; 32];
    ath.len() == 43
        && matches!(URL_SAFE_NO_PAD.decode_slice(ath, &mut hash), Ok(32))
        && hash[..] == Sha256::digest(token.as_bytes())[..]
}

/// True when `htu` names `origin` and `path`, ignoring its query and fragment (RFC
/// 9449 section 4.3, step 9), with scheme, host and port compared normalised.
pub fn htu_matches(htu: &str, origin: &PublicOrigin, path: &str) -> bool {
    let htu = htu.split(['?', '#']).next().unwrap_or("");
    // What a browser sends, the origin already in normal form: no need to normalise.
    if htu
        .strip_prefix(origin.as_str())
        .is_some_and(|rest| rest == path || (rest.is_empty() && path == "/"))
    {
        return true;
    }
    let Some((scheme, rest)) = htu.split_once("://") else {
        return false;
    };
    let (authority, htu_path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let Ok(htu_origin) = PublicOrigin::parse(&format!("{scheme}://{authority}")) else {
        return false;
    };
    htu_origin == *origin && htu_path == path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_is_compared_normalised_without_query_or_fragment() {
        let origin = PublicOrigin::parse("https://app.example.com").unwrap();
        for htu in [
            "https://app.example.com/api/me",
            "HTTPS://APP.example.com:443/api/me",
            "https://app.example.com/api/me?x=1",
            "https://app.example.com/api/me#frag",
        ] {
            assert!(htu_matches(htu, &origin, "/api/me"), "{htu}");
        }
        for htu in [
            "http://app.example.com/api/me",
            "https://app.example.com:8443/api/me",
            "https://evil.example.com/api/me",
            "https://app.example.com/api/notes",
            "https://app.example.com/API/me",
            "https://app.example.com",
            "app.example.com/api/me",
            "",
        ] {
            assert!(!htu_matches(htu, &origin, "/api/me"), "{htu}");
        }
        assert!(htu_matches("https://app.example.com", &origin, "/"));
    }

    #[test]
    fn ath_is_the_tokens_hash_in_its_one_encoding() {
        let token = "header.claims.signature";
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        assert!(ath_matches(&ath, token));
        assert!(!ath_matches(&ath, "header.claims.other"));
        assert!(!ath_matches(&format!("{ath}="), token), "padded");
        assert!(!ath_matches(&ath[..42], token), "short");
        // The last character carries two bits past the 32 bytes: they must be zero.
        let last = ath.as_bytes()[42];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        let stray = format!("{}{}", &ath[..42], alphabet[index | 1] as char);
        assert!(!ath_matches(&stray, token), "stray bits");
    }

    #[test]
    fn malformed_proofs_are_refused_before_any_key_work() {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = b64(&serde_json::json!({"jti": "j", "htm": "GET", "htu": "x", "iat": 1}));
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([0u8; 32])});
        let with = |header: Value| format!("{}.{claims}.AAAA", b64(&header));
        let cases: Vec<(String, &str)> = vec![
            ("a.b".into(), "compact JWS"),
            ("a.b.c.d".into(), "compact JWS"),
            (
                with(serde_json::json!({"typ": "JWT", "alg": "EdDSA", "jwk": jwk})),
                "typ",
            ),
            (
                with(serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk})),
                "alg",
            ),
            (
                with(serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk})),
                "alg",
            ),
            (
                with(serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})),
                "EC key",
            ),
            (
                with(serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA"})),
                "no jwk",
            ),
            (
                with(
                    serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA"}}),
                ),
                "private key",
            ),
            (
                with(
                    serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk, "crit": ["x"]}),
                ),
                "critical",
            ),
            (
                // The identity point: every signature verifies for it.
                with(
                    serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode({ let mut x = [0u8; 32]; x[0] = 1; x })}}),
                ),
                "small order",
            ),
            ("x".repeat(MAX_LEN + 1), "too long"),
        ];
        // A refused header is not kept: the second time is checked again.
        let headers = Headers::default();
        for (text, expected) in cases.iter().chain(&cases) {
            match parse(text, &headers) {
                Err(why) => assert!(why.contains(expected), "{why:?} for {expected}"),
                Ok(_) => panic!("accepted a proof that should fail on {expected}"),
            }
        }
    }
}
