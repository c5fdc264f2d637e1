//! A DPoP client's key pair (Ed25519 or P-256) and the proofs it signs (RFC 9449
//! section 4.2). Shared by the API tests and the benchmarks (`#[path]`), so it needs
//! nothing of the test harness.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub enum Signer {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

/// A client's key pair.
pub struct DpopKey {
    signer: Signer,
    /// The public JWK, as a proof's header carries it.
    pub jwk: Value,
    /// Its RFC 7638 thumbprint.
    pub jkt: String,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl DpopKey {
    pub fn ed25519() -> Self {
        let signer = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let x = b64(signer.verifying_key().as_bytes());
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        Self {
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            jkt: b64(Sha256::digest(canonical)),
            signer: Signer::Ed25519(signer),
        }
    }

    pub fn p256() -> Self {
        let signer = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let point = signer.verifying_key().to_encoded_point(false);
        let (x, y) = (b64(point.x().unwrap()), b64(point.y().unwrap()));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        Self {
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            jkt: b64(Sha256::digest(canonical)),
            signer: Signer::P256(signer),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Ed25519(_) => "EdDSA",
            Signer::P256(_) => "ES256",
        }
    }

    /// The header of a proof by this key.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk})
    }

    /// The claims of a proof for `method url`, with a nonce and an access token's
    /// `ath` if given, a fresh `jti` and `iat` now.
    pub fn claims(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> Value {
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": url,
            "iat": baton_server::clock::now_ms() / 1000,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(b64(Sha256::digest(token.as_bytes())));
        }
        claims
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = match &self.signer {
            Signer::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(input.as_bytes()).to_bytes().to_vec()
            }
            Signer::P256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
                signature.to_bytes().to_vec()
            }
        };
        format!("{input}.{}", b64(signature))
    }

    /// A proof for `method url`.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&str>,
    ) -> String {
        self.sign(
            &self.header(),
            &self.claims(method, url, nonce, access_token),
        )
    }
}
