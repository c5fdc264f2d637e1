//! Ed25519 proof signatures checked together: under load, the signatures of all the
//! requests waiting at this point are verified as one batch, which costs less than half
//! as much per signature as checking each alone (`verify_batch`: one multiscalar
//! multiplication for the whole batch; on this project's 2-core VM about 16 µs a
//! signature in batches of 16 and more, against 39 µs for `verify_strict`).
//!
//! The first request to arrive while nothing is being verified verifies, after one
//! turn of the scheduler, its own signature and whatever has queued up meanwhile (so
//! an idle server adds no task and next to no latency); requests that arrive while it
//! verifies queue, and if some are left when it is done a task verifies them, a batch
//! of at most [`MAX_BATCH`] at a time, yielding between batches. One verifier at a
//! time makes the largest batches, but it alone could not keep up with many cores:
//! when a whole batch is already waiting, the next request becomes one more verifier,
//! up to one per core.
//!
//! Outcomes are each signature's own. A batch that fails is checked again one
//! signature at a time with `verify_strict`, so a bad signature is refused alone and
//! every good one beside it is accepted; a client that sends bad signatures on purpose
//! makes the batches it lands in cost about 1.4 times what checking each alone would
//! have, no more. A batch accepts exactly the signatures that only the key's holder can
//! make (the same security as `verify_strict`); the two differ only on signatures that
//! a key's holder crafts on purpose (small-order components in `R`), which buys them
//! nothing: a proof's replay key is its key's thumbprint and its `jti`, which the
//! signature covers, not the signature's bytes ([`super::Checked`]), and keys of small
//! order are refused when a proof's header is read ([`super::proof`]).

use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::metrics::SignatureMetrics;

/// Most signatures verified in one batch: past about 32 a larger batch saves nothing
/// per signature, and one batch holds a worker thread for its whole time (64 × 16 µs).
pub const MAX_BATCH: usize = 64;

/// The queue of signatures waiting to be verified.
#[derive(Clone)]
pub struct Ed25519Batches(Arc<Inner>);

struct Inner {
    queue: Mutex<Queue>,
    /// Most verifiers at once: the cores.
    max_verifiers: usize,
    metrics: SignatureMetrics,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    /// Requests and tasks verifying now; those who arrive meanwhile only queue.
    verifiers: usize,
}

struct Job {
    key: VerifyingKey,
    message: Box<[u8]>,
    signature: Signature,
    answer: oneshot::Sender<bool>,
}

impl Ed25519Batches {
    pub fn new(metrics: SignatureMetrics) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ed25519Batches(Arc::new(Inner {
            queue: Mutex::new(Queue::default()),
            max_verifiers: cores,
            metrics,
        }))
    }

    /// True when `signature` is `key`'s signature of `message`.
    pub async fn verify(&self, key: VerifyingKey, message: &[u8], signature: Signature) -> bool {
        let (answer, outcome) = oneshot::channel();
        let job = Job {
            key,
            message: message.into(),
            signature,
            answer,
        };
        let verify_now = {
            let mut queue = self.0.queue.lock();
            queue.jobs.push(job);
            let start = queue.verifiers == 0
                || (queue.verifiers < self.0.max_verifiers && queue.jobs.len() >= MAX_BATCH);
            queue.verifiers += usize::from(start);
            start
        };
        if verify_now {
            // Let the other requests ready on this thread reach the queue first, so
            // that they join this batch instead of waiting for the next: under load
            // that makes batches larger; idle, it costs one turn of the scheduler.
            tokio::task::yield_now().await;
            // This request's own job is in the first batch, answered before this returns.
            if self.0.verify_next() {
                let batches = self.clone();
                tokio::spawn(async move { batches.drain().await });
            }
        }
        // A dropped sender means the verifying task panicked: refuse, never accept.
        outcome.await.unwrap_or(false)
    }

    async fn drain(self) {
        while self.0.verify_next() {
            tokio::task::yield_now().await;
        }
    }
}

impl Inner {
    /// Verifies one batch from the queue, as one of its verifiers; true when more wait
    /// (and the caller must verify them), false when the queue was left empty and the
    /// caller is no longer a verifier.
    fn verify_next(&self) -> bool {
        let batch = {
            let mut queue = self.queue.lock();
            let n = queue.jobs.len().min(MAX_BATCH);
            queue.jobs.drain(..n).collect::<Vec<_>>()
        };
        // Stop counting as a verifier even if verifying panics, so that later requests
        // are not left waiting for one that is gone (this batch's senders drop: refused).
        let guard = VerifierGuard(self);
        verify_batch(batch, &self.metrics);
        std::mem::forget(guard);
        let mut queue = self.queue.lock();
        let more = !queue.jobs.is_empty();
        if !more {
            queue.verifiers -= 1;
        }
        more
    }
}

struct VerifierGuard<'a>(&'a Inner);

impl Drop for VerifierGuard<'_> {
    fn drop(&mut self) {
        self.0.queue.lock().verifiers -= 1;
    }
}

fn verify_batch(batch: Vec<Job>, metrics: &SignatureMetrics) {
    let strict = |job: &Job| job.key.verify_strict(&job.message, &job.signature).is_ok();
    let outcomes: Vec<bool> = match batch.len() {
        0 => return,
        1 => vec![strict(&batch[0])],
        n => {
            let messages: Vec<&[u8]> = batch.iter().map(|job| &job.message[..]).collect();
            let signatures: Vec<Signature> = batch.iter().map(|job| job.signature).collect();
            let keys: Vec<VerifyingKey> = batch.iter().map(|job| job.key).collect();
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                vec![true; n]
            } else {
                metrics.batch_failed();
                batch.iter().map(strict).collect()
            }
        }
    };
    metrics.verified(batch.len());
    for (job, ok) in batch.into_iter().zip(outcomes) {
        // The request may have gone meanwhile: nobody to tell.
        let _ = job.answer.send(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A request that verifies `signer`'s good signature of `message`.
    fn spawn_signed(
        batches: &Ed25519Batches,
        signer: &SigningKey,
        message: String,
    ) -> tokio::task::JoinHandle<bool> {
        let batches = batches.clone();
        let signature = signer.sign(message.as_bytes());
        let key = signer.verifying_key();
        tokio::spawn(async move { batches.verify(key, message.as_bytes(), signature).await })
    }

    /// Many requests at once, some with a bad signature (wrong message, wrong key, a
    /// flipped bit): every good one is accepted and every bad one refused, however
    /// the batches fall.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_signature_gets_its_own_outcome_in_a_batch() {
        let metrics = SignatureMetrics::default();
        let batches = Ed25519Batches::new(metrics.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..400u32 {
            let batches = batches.clone();
            tasks.spawn(async move {
                let signer = key((i % 7) as u8);
                let message = format!("proof {i}");
                let mut signature = signer.sign(message.as_bytes());
                let good = match i % 10 {
                    3 => {
                        signature = signer.sign(b"another message");
                        false
                    }
                    6 => {
                        signature = key(99).sign(message.as_bytes());
                        false
                    }
                    9 => {
                        let mut bytes = signature.to_bytes();
                        bytes[5] ^= 1;
                        signature = Signature::from_bytes(&bytes);
                        false
                    }
                    _ => true,
                };
                let ok = batches
                    .verify(signer.verifying_key(), message.as_bytes(), signature)
                    .await;
                (i, good, ok)
            });
        }
        while let Some(result) = tasks.join_next().await {
            let (i, good, ok) = result.unwrap();
            assert_eq!(ok, good, "request {i}");
        }
        let (signatures, batches_run, failed) = metrics.counts();
        assert_eq!(signatures, 400);
        assert!(batches_run <= 400);
        assert!(failed <= batches_run);
        assert!(batches.0.queue.lock().jobs.is_empty());
        // The last verifier answers its batch before it stops counting as one.
        for _ in 0..1000 {
            if batches.0.queue.lock().verifiers == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(batches.0.queue.lock().verifiers, 0);
    }

    /// Signatures that wait together are verified as one batch, and a bad one among
    /// them fails that batch without failing its neighbours.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_signatures_are_verified_together() {
        let metrics = SignatureMetrics::default();
        let batches = Ed25519Batches::new(metrics.clone());
        // Be the one verifier, as a request verifying on another thread would, so that
        // the 20 below queue up behind it.
        batches.0.queue.lock().verifiers = 1;
        let signer = key(1);
        let mut waiting = Vec::new();
        for i in 0..20 {
            let message = format!("proof {i}");
            let signature = if i == 13 {
                key(2).sign(message.as_bytes())
            } else {
                signer.sign(message.as_bytes())
            };
            let batches = batches.clone();
            let key = signer.verifying_key();
            waiting.push(tokio::spawn(async move {
                batches.verify(key, message.as_bytes(), signature).await
            }));
        }
        tokio::task::yield_now().await;
        assert_eq!(batches.0.queue.lock().jobs.len(), 20);
        // The one verifier finishes: what waits is verified in one batch.
        assert!(!batches.0.verify_next(), "nothing is left to verify");
        for (i, task) in waiting.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i != 13, "request {i}");
        }
        assert_eq!(metrics.counts(), (20, 1, 1));
        assert_eq!(batches.0.queue.lock().verifiers, 0);
    }

    /// One verifier that cannot keep up (held here, never finishing) gets help once a
    /// whole batch waits, up to the limit: the requests are answered all the same.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_batch_waiting_gets_another_verifier() {
        let metrics = SignatureMetrics::default();
        let batches = Ed25519Batches(Arc::new(Inner {
            queue: Mutex::new(Queue::default()),
            max_verifiers: 2,
            metrics: metrics.clone(),
        }));
        batches.0.queue.lock().verifiers = 1;
        let signer = key(3);
        let waiting: Vec<_> = (0..MAX_BATCH + 10)
            .map(|i| spawn_signed(&batches, &signer, format!("proof {i}")))
            .collect();
        for task in waiting {
            assert!(task.await.unwrap());
        }
        // The first verifier never ran; the second verified every batch and stopped.
        assert_eq!(batches.0.queue.lock().verifiers, 1);
        assert_eq!(metrics.counts().0, (MAX_BATCH + 10) as u64);
        // With the limit reached, a full queue only waits.
        batches.0.queue.lock().verifiers = 2;
        let pending: Vec<_> = (0..MAX_BATCH)
            .map(|i| spawn_signed(&batches, &signer, format!("late {i}")))
            .collect();
        // Each turn of this scheduler runs a bounded number of tasks (61 in tokio
        // 1.x), so let them all reach the queue; none of them may start verifying.
        while batches.0.queue.lock().jobs.len() < MAX_BATCH {
            tokio::task::yield_now().await;
        }
        assert_eq!(batches.0.queue.lock().verifiers, 2);
        assert!(!batches.0.verify_next());
        for task in pending {
            assert!(task.await.unwrap());
        }
    }
}
