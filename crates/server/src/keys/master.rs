//! The master key: 32 bytes that seal the private signing keys stored in the database
//! (AES-256-GCM, the key id bound as associated data), and never touch it themselves.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{bail, Context};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::files::{create_private_file, read_key_file};
use crate::refresh_token::ChainKeys;

/// 32 bytes that seal the private signing keys stored in the database, and from which
/// the refresh-token chain key is derived. The cipher wipes its key schedule when
/// dropped (the `zeroize` features of aes-gcm's parts).
pub struct MasterKey {
    cipher: Aes256Gcm,
    chain: ChainKeys,
    dpop_nonce: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim()))
                .context("the master key is not base64")?,
        );
        if bytes.len() != 32 {
            bail!("the master key must be 32 bytes (base64 of 32 random bytes)");
        }
        Ok(Self {
            cipher: Aes256Gcm::new_from_slice(&bytes).expect("32-byte key"),
            chain: ChainKeys::derive(&bytes, &[]),
            dpop_nonce: super::derive_key(&bytes, super::DPOP_NONCE_KEY_PURPOSE),
        })
    }

    /// A new random master key, as base64 (what `keys generate-master` prints).
    pub fn generate_base64() -> String {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut *bytes);
        STANDARD.encode(*bytes)
    }

    /// From configuration, or else from `<data_dir>/master.key`, created on first
    /// start ([`Config::validate`] allows that only in development). A key file that
    /// others can read is refused.
    pub(super) fn load(config: &Config) -> anyhow::Result<Self> {
        if let Some(key) = &config.keys.master_key {
            return Self::from_base64(key.expose());
        }
        if let Some(path) = &config.keys.master_key_file {
            return Self::from_base64(&read_key_file(path)?);
        }
        let path = config.data_dir.join("master.key");
        if !path.exists() {
            create_private_file(&path, Self::generate_base64().as_bytes())?;
            tracing::info!(path = %path.display(), "created a development master key");
        }
        Self::from_base64(&read_key_file(&path)?)
    }

    /// The key that derives refresh-token successors.
    pub(super) fn chain_keys(&self) -> &ChainKeys {
        &self.chain
    }

    /// The key that MACs DPoP server nonces.
    pub(super) fn dpop_nonce_key(&self) -> Zeroizing<[u8; 32]> {
        self.dpop_nonce.clone()
    }

    pub(super) fn seal(&self, kid: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: kid.as_bytes(),
                },
            )
            .expect("AES-GCM sealing cannot fail for small inputs");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    pub(super) fn open(&self, kid: &str, sealed: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 12 {
            bail!("sealed key {kid} is truncated");
        }
        let (nonce, ciphertext) = sealed.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: kid.as_bytes() })
            .map(Zeroizing::new)
            .map_err(|_| {
                anyhow::anyhow!("cannot open signing key {kid}: the master key does not match the one it was sealed with")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
    }

    #[test]
    fn sealed_keys_open_only_with_their_master_key_and_kid() {
        let m = master();
        let sealed = m.seal("kid-1", b"private");
        assert_eq!(m.open("kid-1", &sealed).unwrap().as_slice(), b"private");
        assert!(
            m.open("kid-2", &sealed).is_err(),
            "kid is bound as associated data"
        );
        assert!(master().open("kid-1", &sealed).is_err());
        assert!(m.open("kid-1", &sealed[..5]).is_err());
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
    }
}
