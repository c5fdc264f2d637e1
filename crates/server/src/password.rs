//! Password hashing: argon2id at OWASP's parameters (19 MiB, t=2, p=1).
//!
//! Hashes run on a small pool of dedicated threads, each owning one 19 MiB work area
//! that it reuses for every hash. So:
//! - memory is bounded: threads × 19 MiB, allocated once (no allocation, zeroing or
//!   page faults per hash, and no malloc arena per blocking thread keeping 19 MiB each);
//! - a login storm queues for a thread instead of stalling the async runtime; the queue
//!   is bounded (past [`QUEUE_PER_THREAD`] waiting per thread, 503 at once) and past a
//!   10 s wait the answer is 503 too;
//! - the queue holds requests, not work: a request takes a thread's permit, and only
//!   then hands its job over, with the permit inside, so that the thread counts as taken
//!   until the job is over even if the request is gone. A request that is dropped while
//!   waiting (its client hung up) leaves the queue, and a job whose caller has gone by
//!   the time a thread takes it is dropped unrun: no argon2 work is done for nobody;
//! - on Linux the threads run at a lower priority (nice 10), so while logins saturate
//!   them, requests of logged-in users still get the CPU first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use baton_shared::Password;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::metrics::HashMetrics;

/// OWASP password storage cheat sheet, argon2id option 2: m=19 MiB, t=2, p=1.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// How long a request waits for a free hashing thread before answering 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most requests that wait for (or hold) a hashing thread, per thread; beyond it a
/// request is answered 503 at once. About what a thread serves in the 10 s wait.
const QUEUE_PER_THREAD: usize = 256;

/// Nice value of the hashing threads (Linux).
const HASH_THREAD_NICE: i32 = 10;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

pub struct Passwords {
    params: Params,
    /// Holds at most one job per thread: a job is sent only with a permit.
    jobs: mpsc::SyncSender<Job>,
    permits: Arc<Semaphore>,
    queue: Arc<Queue>,
    /// A hash of a random password, verified against when the username is unknown,
    /// so that an unknown user costs the same as a wrong password.
    dummy_hash: String,
    metrics: HashMetrics,
}

impl Passwords {
    /// Starts `threads` hashing threads.
    pub fn new(threads: usize, metrics: HashMetrics) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::sync_channel::<Job>(threads);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            let blocks = params.block_count();
            std::thread::Builder::new()
                .name(format!("baton-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    let mut memory = vec![Block::default(); blocks];
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match receiver.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(&mut memory),
                            Err(_) => return, // Passwords dropped: no more jobs.
                        }
                    }
                })
                .context("cannot start a password-hashing thread")?;
        }
        let mut passwords = Self {
            params,
            jobs: sender,
            permits: Arc::new(Semaphore::new(threads)),
            queue: Arc::new(Queue {
                len: AtomicUsize::new(0),
                max: threads * QUEUE_PER_THREAD,
                metrics: metrics.clone(),
            }),
            dummy_hash: String::new(),
            metrics,
        };
        let mut random = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
        let mut memory = vec![Block::default(); passwords.params.block_count()];
        passwords.dummy_hash = hash_with(&passwords.params, &random, &mut memory)
            .context("cannot compute the dummy password hash")?;
        Ok(passwords)
    }

    /// Runs `work` on a hashing thread with its work area.
    async fn on_hash_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let place = self.queue.enter().ok_or_else(Error::unavailable)?;
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::unavailable())?
            .map_err(|_| Error::unavailable())?;
        let (done, result) = oneshot::channel();
        let job = Running {
            _permit: permit,
            _place: place,
        };
        let metrics = self.metrics.clone();
        // `job` (the permit and the place in the queue) is held until the work is
        // over, whatever becomes of the request, and let go before the answer is sent.
        let job: Job = Box::new(move |memory| {
            if done.is_closed() {
                metrics.abandoned();
                return;
            }
            let value = work(memory);
            drop(job);
            let _ = done.send(value);
        });
        self.jobs
            .try_send(job)
            .map_err(|_| anyhow::anyhow!("hashing threads are gone"))?;
        Ok(result.await.context("password hashing thread failed")?)
    }

    /// The PHC string to store for a new password.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let password = password.clone();
        let params = self.params.clone();
        let metrics = self.metrics.clone();
        self.on_hash_thread(move |memory| {
            metrics.computed("hash");
            hash_with(&params, password.expose().as_bytes(), memory)
        })
        .await?
        .map_err(Error::Internal)
    }

    /// Does `password` match `stored`? With `stored = None` (unknown user) the same
    /// work is done against a dummy hash and the answer is always no.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool> {
        let known = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.clone();
        let metrics = self.metrics.clone();
        let matched = self
            .on_hash_thread(move |memory| {
                metrics.computed("verify");
                verify_with(password.expose().as_bytes(), &hash, memory)
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

/// The requests that wait for a hashing thread or hold one, bounded.
struct Queue {
    len: AtomicUsize,
    max: usize,
    metrics: HashMetrics,
}

impl Queue {
    /// A place in the queue, or `None` when it is full.
    fn enter(self: &Arc<Self>) -> Option<Place> {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        self.metrics.queue_entered();
        Some(Place(self.clone()))
    }
}

/// A request's place in the [`Queue`]: it leaves with the request, or with its job.
struct Place(Arc<Queue>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.len.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.queue_left();
    }
}

/// What a job holds while it waits for and runs on a thread.
struct Running {
    _permit: OwnedSemaphorePermit,
    _place: Place,
}

/// Computes the argon2 output for `password` and `salt` in `memory` (grown if the
/// parameters need more, as a stored hash from stronger settings may).
fn compute(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: argon2::password_hash::Salt<'_>,
    output_len: usize,
    memory: &mut Vec<Block>,
) -> anyhow::Result<Output> {
    let mut salt_buf = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Output::init_with(output_len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

fn hash_with(params: &Params, password: &[u8], memory: &mut Vec<Block>) -> anyhow::Result<String> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let output = compute(
        &argon,
        params,
        password,
        salt.as_salt(),
        Params::DEFAULT_OUTPUT_LEN,
        memory,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Constant-time check of `password` against a stored PHC string (any argon2 variant
/// and parameters it names).
fn verify_with(password: &[u8], stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let argon = Argon2::new(algorithm, version, params.clone());
    match compute(&argon, &params, password, salt, expected.len(), memory) {
        // `Output`'s equality is constant-time.
        Ok(computed) => computed == expected,
        Err(_) => false,
    }
}

fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory-safety preconditions; on Linux, who = 0 with
    // PRIO_PROCESS names the calling thread only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, HASH_THREAD_NICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher as _;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let passwords = Passwords::new(1, HashMetrics::default()).unwrap();
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
        assert!(!passwords.verify(&pw, Some("not a hash")).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_from_the_reference_implementation_verify() {
        // Made by the argon2 crate's own PasswordHasher, with other parameters (the
        // work area grows for a stronger one) and other variants.
        let passwords = Passwords::new(1, HashMetrics::default()).unwrap();
        let pw = Password::parse("a password from elsewhere").unwrap();
        for (algorithm, m) in [
            (Algorithm::Argon2id, 8 * 1024),
            (Algorithm::Argon2id, 32 * 1024),
            (Algorithm::Argon2i, 4096),
        ] {
            let argon = Argon2::new(
                algorithm,
                Version::V0x13,
                Params::new(m, 2, 1, None).unwrap(),
            );
            let salt = SaltString::generate(&mut OsRng);
            let phc = argon
                .hash_password(pw.expose().as_bytes(), &salt)
                .unwrap()
                .to_string();
            assert!(passwords.verify(&pw, Some(&phc)).await.unwrap(), "{phc}");
            let other = Password::parse("another password").unwrap();
            assert!(!passwords.verify(&other, Some(&phc)).await.unwrap());
        }
        // And ours verify with the reference implementation.
        let ours = passwords.hash(&pw).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        argon2::PasswordVerifier::verify_password(
            &Argon2::default(),
            pw.expose().as_bytes(),
            &parsed,
        )
        .unwrap();
    }

    #[test]
    fn the_queue_is_bounded() {
        let queue = Arc::new(Queue {
            len: AtomicUsize::new(0),
            max: 2,
            metrics: HashMetrics::default(),
        });
        let first = queue.enter().unwrap();
        let _second = queue.enter().unwrap();
        assert!(queue.enter().is_none(), "full");
        drop(first);
        assert!(queue.enter().is_some(), "a place left");
    }

    #[tokio::test]
    async fn concurrent_hashes_share_the_pool() {
        let passwords = Arc::new(Passwords::new(2, HashMetrics::default()).unwrap());
        let pw = Password::parse("correct horse battery").unwrap();
        let hash = passwords.hash(&pw).await.unwrap();
        let checks = (0..6).map(|_| {
            let passwords = passwords.clone();
            let (pw, hash) = (pw.clone(), hash.clone());
            tokio::spawn(async move { passwords.verify(&pw, Some(&hash)).await.unwrap() })
        });
        for check in checks {
            assert!(check.await.unwrap());
        }
    }
}
