//! Signing keys: Ed25519 key generation, sealing private keys with the master key,
//! and the key ring that signs and verifies access tokens.
//!
//! EdDSA keys live in the database (sealed with AES-256-GCM under a master key that
//! never touches it), so every instance signs with the same key and a rotation done
//! on one instance reaches all. A rotated key is published (JWKS, every instance's
//! ring) `key_activation_delay` seconds before it signs, and the key it replaces keeps
//! verifying what it signed before the replacement until that has expired. A revoked
//! key verifies nothing from the moment the change feed brings the news.
//!
//! HS256 keys are the configured shared secret(s) instead.

use anyhow::bail;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::clock::now_ms;
use crate::config::{hs256_secret_problem, Config, JwtAlgorithm};
use crate::files::{create_private_file, read_key_file};
use crate::refresh_token::ChainKeys;
use crate::store::keys::KeyRow;
use crate::store::{self, Db};

mod master;
mod ring;

pub use master::MasterKey;
pub use ring::{
    ed25519_kid, hs256_kid, new_ed25519_key, JwkSet, KeyRing, Retired, RingKey, Signer,
};

pub const ALG_EDDSA: &str = "EdDSA";

/// What the DPoP nonce key is derived for: an HMAC of this under the key material.
const DPOP_NONCE_KEY_PURPOSE: &[u8] = b"baton dpop nonce v1";

/// A key for one purpose, derived from the configured key material: HMAC-SHA256 of the
/// purpose under it, so that no two purposes share a key.
fn derive_key(material: &[u8], purpose: &[u8]) -> Zeroizing<[u8; 32]> {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(material).expect("HMAC takes a key of any length");
    mac.update(purpose);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

/// Where keys come from, as configured.
pub enum KeySource {
    Database(Box<MasterKey>),
    Secrets {
        current: Zeroizing<Vec<u8>>,
        previous: Vec<Zeroizing<Vec<u8>>>,
    },
}

impl KeySource {
    /// The keys a validated configuration names ([`Config::validate`]); in development,
    /// what it leaves out is generated into the data directory.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match config.keys.alg {
            JwtAlgorithm::EdDsa => Ok(KeySource::Database(Box::new(MasterKey::load(config)?))),
            JwtAlgorithm::Hs256 => {
                let current = match &config.keys.jwt_secret {
                    Some(secret) => Zeroizing::new(secret.expose().as_bytes().to_vec()),
                    None => {
                        let path = config.data_dir.join("jwt-secret");
                        if !path.exists() {
                            let mut bytes = Zeroizing::new([0u8; 32]);
                            OsRng.fill_bytes(&mut *bytes);
                            let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(*bytes));
                            create_private_file(&path, text.as_bytes())?;
                        }
                        Zeroizing::new(read_key_file(&path)?.trim().as_bytes().to_vec())
                    }
                };
                if let Some(problem) = hs256_secret_problem(&current) {
                    bail!("the HS256 secret {problem}");
                }
                let previous = config
                    .keys
                    .jwt_previous_secrets
                    .iter()
                    .map(|s| Zeroizing::new(s.expose().as_bytes().to_vec()))
                    .collect();
                Ok(KeySource::Secrets { current, previous })
            }
        }
    }

    /// The keys that derive refresh-token successors: from the master key, or from the
    /// HS256 secrets (the current one derives, earlier ones are still recognised).
    pub fn chain_keys(&self) -> ChainKeys {
        match self {
            KeySource::Database(master) => master.chain_keys().clone(),
            KeySource::Secrets { current, previous } => {
                let previous: Vec<&[u8]> = previous.iter().map(|s| s.as_slice()).collect();
                ChainKeys::derive(current, &previous)
            }
        }
    }

    /// The key that MACs DPoP server nonces ([`crate::dpop::nonce`]): from the master
    /// key, or from the current HS256 secret. Every instance derives the same one.
    pub fn dpop_nonce_key(&self) -> Zeroizing<[u8; 32]> {
        match self {
            KeySource::Database(master) => master.dpop_nonce_key(),
            KeySource::Secrets { current, .. } => derive_key(current, DPOP_NONCE_KEY_PURPOSE),
        }
    }

    /// At start-up: for EdDSA, creates the first key when there is none; for HS256,
    /// records when each previous secret was first configured as one (it verifies only
    /// what was signed before), and takes the current secret out of that record if it
    /// was there (refusing it if it was revoked). Then builds the ring.
    pub async fn start(&self, db: &Db, token_life: i64) -> anyhow::Result<KeyRing> {
        match self {
            KeySource::Secrets { current, previous } => {
                let now = now_ms();
                for secret in previous {
                    store::keys::retire(db, &hs256_kid(secret), now).await?;
                }
                let kid = hs256_kid(current);
                if store::keys::unretire(db, &kid).await? {
                    bail!(
                        "the HS256 secret {kid} (BATON_JWT_SECRET) was revoked: configure another"
                    );
                }
            }
            KeySource::Database(master) => {
                if store::keys::all(db).await?.is_empty() {
                    let now = now_ms();
                    let first = new_ed25519_key(master, now, now);
                    if store::keys::insert_first(db, &first).await? {
                        tracing::info!(kid = %first.kid, "created the first signing key");
                    }
                }
            }
        }
        self.load(db, token_life).await
    }

    /// Builds the ring from the stored keys (EdDSA) or the stored record of the
    /// previous secrets (HS256): what a change of the keys makes every instance do.
    pub async fn load(&self, db: &Db, token_life: i64) -> anyhow::Result<KeyRing> {
        match self {
            KeySource::Secrets { current, previous } => {
                let stored = store::keys::retired(db).await?;
                let now = now_ms();
                let previous: Vec<(&[u8], Retired)> = previous
                    .iter()
                    .map(|secret| {
                        let kid = hs256_kid(secret);
                        let row = stored.iter().find(|row| row.kid == kid);
                        // Not recorded (another instance configures it as the current
                        // secret): replaced as of now, as far as this instance knows.
                        let retired = Retired {
                            replaced_at: row.map_or(now, |row| row.replaced_at),
                            revoked: row.is_some_and(|row| row.revoked_at.is_some()),
                        };
                        (secret.as_slice(), retired)
                    })
                    .collect();
                Ok(KeyRing::from_secrets(current, &previous, token_life))
            }
            KeySource::Database(master) => {
                let rows = store::keys::all(db).await?;
                KeyRing::from_rows(&rows, master, token_life)
            }
        }
    }

    /// Rotation: stores a new key that is published now and signs from
    /// `now + activation_delay`. Returns the new row.
    pub async fn rotate(&self, db: &Db, activation_delay_ms: i64) -> anyhow::Result<KeyRow> {
        let KeySource::Database(master) = self else {
            bail!("HS256 keys are rotated by configuration: set the new BATON_JWT_SECRET and move the old one to BATON_JWT_PREVIOUS_SECRETS");
        };
        let now = now_ms();
        let key = new_ed25519_key(master, now, now + activation_delay_ms);
        store::keys::insert(db, &key).await?;
        Ok(key)
    }

    /// Revokes a key at once, on every instance: tokens it signed are refused, it
    /// leaves the JWKS. A revoked EdDSA key that signs now is replaced by a new one in
    /// the same transaction. An HS256 secret is named by its `hs256-` kid; the current
    /// one cannot be revoked (configure another BATON_JWT_SECRET first).
    pub async fn revoke(&self, db: &Db, kid: &str) -> anyhow::Result<Revoked> {
        let now = now_ms();
        match self {
            KeySource::Database(master) => {
                let replacement = new_ed25519_key(master, now, now);
                match store::keys::revoke(db, kid, now, &replacement).await? {
                    store::keys::Revoked::Now { replaced: true } => {
                        Ok(Revoked::Replaced(replacement))
                    }
                    store::keys::Revoked::Now { replaced: false } => Ok(Revoked::Revoked),
                    store::keys::Revoked::Already => Ok(Revoked::Already),
                    store::keys::Revoked::NotFound => bail!("there is no signing key {kid}"),
                }
            }
            KeySource::Secrets { current, .. } => {
                if hs256_kid(current) == kid {
                    bail!("{kid} is the current BATON_JWT_SECRET: configure another one first, then revoke this one");
                }
                if store::keys::revoke_secret(db, kid, now).await? {
                    Ok(Revoked::Already)
                } else {
                    Ok(Revoked::Revoked)
                }
            }
        }
    }
}

/// What [`KeySource::revoke`] did.
#[derive(Debug)]
pub enum Revoked {
    Revoked,
    /// Revoked, and this key signs in its place from now on.
    Replaced(KeyRow),
    Already,
}
