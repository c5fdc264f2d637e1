//! Signing keys: Ed25519 key generation, sealing private keys with the master key,
//! and the key ring that signs and verifies access tokens.
//!
//! EdDSA keys live in the database (sealed with AES-256-GCM under a master key that
//! never touches it), so every instance signs with the same key and a rotation done
//! on one instance reaches all. A rotated key is published (JWKS, every instance's
//! ring) `key_activation_delay` seconds before it signs, and the key it replaces keeps
//! verifying until every token it signed has expired.
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
use crate::store::keys::KeyRow;
use crate::store::{self, Db};

mod master;
mod ring;

pub use master::MasterKey;
pub use ring::{ed25519_kid, new_ed25519_key, JwkSet, KeyRing};

pub const ALG_EDDSA: &str = "EdDSA";

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

    /// Builds the ring; for EdDSA, creates the first key when there is none.
    pub async fn load(&self, db: &Db, verify_after_replaced: i64) -> anyhow::Result<KeyRing> {
        match self {
            KeySource::Secrets { current, previous } => {
                let previous: Vec<&[u8]> = previous.iter().map(|s| s.as_slice()).collect();
                Ok(KeyRing::from_secrets(current, &previous))
            }
            KeySource::Database(master) => {
                let mut fingerprint = store::keys::fingerprint(db).await?;
                if fingerprint.0 == 0 {
                    let now = now_ms();
                    let first = new_ed25519_key(master, now, now);
                    if store::keys::insert_first(db, &first).await? {
                        tracing::info!(kid = %first.kid, "created the first signing key");
                    }
                    fingerprint = store::keys::fingerprint(db).await?;
                }
                let rows = store::keys::all(db).await?;
                KeyRing::from_rows(&rows, master, verify_after_replaced, fingerprint)
            }
        }
    }

    /// Reloads the ring if another instance changed the stored keys.
    pub async fn reload_if_changed(
        &self,
        db: &Db,
        current: &KeyRing,
        verify_after_replaced: i64,
    ) -> anyhow::Result<Option<KeyRing>> {
        let KeySource::Database(master) = self else {
            return Ok(None);
        };
        let fingerprint = store::keys::fingerprint(db).await?;
        if fingerprint == current.fingerprint {
            return Ok(None);
        }
        let rows = store::keys::all(db).await?;
        Ok(Some(KeyRing::from_rows(
            &rows,
            master,
            verify_after_replaced,
            fingerprint,
        )?))
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
}
