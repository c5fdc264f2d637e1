//! Password hashing: argon2id at OWASP's parameters (19 MiB, t=2, p=1), on a bounded
//! pool of blocking threads so that a login storm can neither stall the async runtime
//! nor allocate 19 MiB per concurrent request.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use baton_shared::Password;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// OWASP password storage cheat sheet, argon2id option 2: m=19 MiB, t=2, p=1.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// How long a request waits for a free hashing thread before answering 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Passwords {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the username is unknown,
    /// so that an unknown user costs the same as a wrong password.
    dummy_hash: String,
}

impl Passwords {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(&random, &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
            .context("cannot compute the dummy password hash")?
            .to_string();
        Ok(Self {
            argon,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash,
        })
    }

    async fn on_blocking_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::unavailable())?
            .map_err(|_| Error::unavailable())?;
        let argon = self.argon.clone();
        let out = tokio::task::spawn_blocking(move || {
            let out = work(argon);
            drop(permit);
            out
        })
        .await
        .context("password hashing task failed")?;
        Ok(out)
    }

    /// The PHC string to store for a new password.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let password = password.clone();
        let hashed = self
            .on_blocking_pool(move |argon| {
                let salt = SaltString::generate(&mut OsRng);
                argon
                    .hash_password(password.expose().as_bytes(), &salt)
                    .map(|h| h.to_string())
            })
            .await?;
        hashed.map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
    }

    /// Does `password` match `stored`? With `stored = None` (unknown user) the same
    /// work is done against a dummy hash and the answer is always no.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool> {
        let known = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.clone();
        let matched = self
            .on_blocking_pool(move |argon| {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        argon
                            .verify_password(password.expose().as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matched)
    }

    /// True when a stored hash was made with weaker settings than today's, so that
    /// it should be replaced after a successful login.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() < MEMORY_KIB
            || params.t_cost() < ITERATIONS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let passwords = Passwords::new(1).unwrap();
        let pw = Password::parse("correct horse battery").unwrap();
        let hash = passwords.hash(&pw).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(passwords.verify(&pw, Some(&hash)).await.unwrap());
        let wrong = Password::parse("correct horse battery ").unwrap();
        assert!(!passwords.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!passwords.verify(&pw, None).await.unwrap());
        assert!(!passwords.needs_rehash(&hash));
        let weak =
            "$argon2id$v=19$m=4096,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        assert!(passwords.needs_rehash(weak));
        assert!(passwords.needs_rehash("not a hash"));
    }
}
