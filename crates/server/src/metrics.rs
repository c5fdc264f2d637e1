//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! One registry per application (no process globals), so that several instances in
//! one process (the tests) count separately.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::error::ErrorCode;
use crate::store::sessions::RevokeReason;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkLabel {
    work: &'static str,
}

/// What the password-hashing pool ([`crate::password`]) did; it holds a clone.
#[derive(Clone, Default)]
pub struct HashMetrics {
    computed: Family<WorkLabel, Counter>,
    abandoned: Counter,
    waiting: Gauge,
}

impl HashMetrics {
    /// An argon2 computation ran: `work` is "hash" (a new password) or "verify".
    pub fn computed(&self, work: &'static str) {
        self.computed.get_or_create(&WorkLabel { work }).inc();
    }

    /// A job was dropped unrun: its caller had gone.
    pub fn abandoned(&self) {
        self.abandoned.inc();
    }

    /// A request began to wait for a hashing thread.
    pub fn queue_entered(&self) {
        self.waiting.inc();
    }

    /// A request's job ended, or the request left before it had one.
    pub fn queue_left(&self) {
        self.waiting.dec();
    }
}

/// What the batched check of DPoP proofs' Ed25519 signatures ([`crate::dpop::batch`])
/// did; it holds a clone. Signatures over batches is the mean batch size.
#[derive(Clone, Default)]
pub struct SignatureMetrics {
    signatures: Counter,
    batches: Counter,
    failed_batches: Counter,
}

impl SignatureMetrics {
    /// A batch of `n` signatures was verified.
    pub fn verified(&self, n: usize) {
        self.signatures.inc_by(n as u64);
        self.batches.inc();
    }

    /// A batch held a bad signature, and so was checked again one signature at a time.
    pub fn batch_failed(&self) {
        self.failed_batches.inc();
    }

    /// Signatures, batches and failed batches so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.signatures.get(),
            self.batches.get(),
            self.failed_batches.get(),
        )
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

pub struct Metrics {
    registry: Registry,
    logins: Family<ResultLabel, Counter>,
    refreshes: Family<ResultLabel, Counter>,
    reuse_detections: Counter,
    revocations: Family<ReasonLabel, Counter>,
    requests: Family<RequestLabels, Histogram>,
    revoked_sessions: Gauge<i64, std::sync::atomic::AtomicI64>,
    sync_failures: Counter,
    sync_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    stale_refusals: Counter,
    pub hashing: HashMetrics,
    dpop_refusals: Family<ReasonLabel, Counter>,
    pub dpop_signatures: SignatureMetrics,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3 s.
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ])
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("baton");
        let logins = Family::<ResultLabel, Counter>::default();
        registry.register("logins", "Login attempts by result", logins.clone());
        let refreshes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "refreshes",
            "Refresh-token exchanges by result (ok or the error code)",
            refreshes.clone(),
        );
        let reuse_detections = Counter::default();
        registry.register(
            "refresh_token_reuse_detections",
            "Rotated refresh tokens presented again, each revoking its session",
            reuse_detections.clone(),
        );
        let revocations = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "session_revocations",
            "Sessions ended, by reason",
            revocations.clone(),
        );
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            requests.clone(),
        );
        let revoked_sessions = Gauge::default();
        registry.register(
            "revoked_sessions_tracked",
            "Revoked session ids held in memory for access-token checks",
            revoked_sessions.clone(),
        );
        let sync_failures = Counter::default();
        registry.register(
            "change_feed_failures",
            "Reads of the change feed (ended sessions, key changes) that failed",
            sync_failures.clone(),
        );
        let sync_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "change_feed_age_seconds",
            "Time since the last complete read of the change feed began; past BATON_SYNC_MAX_STALENESS_MS authenticated requests get 503",
            sync_age.clone(),
        );
        let stale_refusals = Counter::default();
        registry.register(
            "stale_refusals",
            "Authenticated requests answered 503 because the change feed was stale",
            stale_refusals.clone(),
        );
        let hashing = HashMetrics::default();
        registry.register(
            "password_computations",
            "argon2 computations run, by work (hash: a new password; verify: a login or a password change)",
            hashing.computed.clone(),
        );
        registry.register(
            "password_jobs_abandoned",
            "Password jobs dropped before they ran because their caller had gone",
            hashing.abandoned.clone(),
        );
        registry.register(
            "password_jobs_waiting",
            "Password jobs waiting for a hashing thread or running on one",
            hashing.waiting.clone(),
        );
        let dpop_refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "dpop_refusals",
            "Requests refused over their DPoP proof, by reason (wrong_key, bearer_downgrade and missing_proof are what a copied token meets)",
            dpop_refusals.clone(),
        );
        let dpop_signatures = SignatureMetrics::default();
        registry.register(
            "dpop_signatures_verified",
            "Ed25519 signatures of DPoP proofs verified",
            dpop_signatures.signatures.clone(),
        );
        registry.register(
            "dpop_signature_batches",
            "Batches the Ed25519 signatures of DPoP proofs were verified in (signatures over batches: the mean batch size)",
            dpop_signatures.batches.clone(),
        );
        registry.register(
            "dpop_signature_batches_failed",
            "Batches that held a bad signature and were checked again one signature at a time",
            dpop_signatures.failed_batches.clone(),
        );
        Self {
            registry,
            logins,
            refreshes,
            reuse_detections,
            revocations,
            requests,
            revoked_sessions,
            sync_failures,
            sync_age,
            stale_refusals,
            hashing,
            dpop_refusals,
            dpop_signatures,
        }
    }

    /// A request refused over its DPoP proof; `reason` is one of the static labels of
    /// [`crate::error::DpopProblem`].
    pub fn dpop_refusal(&self, reason: &'static str) {
        self.dpop_refusals
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn sync_failed(&self) {
        self.sync_failures.inc();
    }

    pub fn set_sync_age(&self, age: std::time::Duration) {
        self.sync_age.set(age.as_secs_f64());
    }

    pub fn stale_refusal(&self) {
        self.stale_refusals.inc();
    }

    pub fn login_ok(&self) {
        self.logins
            .get_or_create(&ResultLabel {
                result: "ok".to_owned(),
            })
            .inc();
    }

    /// A refused login, by its error code (invalid_credentials, rate_limited, ...).
    pub fn login_failed(&self, code: ErrorCode) {
        self.logins
            .get_or_create(&ResultLabel {
                result: code.as_str().to_owned(),
            })
            .inc();
    }

    pub fn refresh(&self, error: Option<ErrorCode>) {
        let result = error.map_or("ok", ErrorCode::as_str);
        self.refreshes
            .get_or_create(&ResultLabel {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn revocation(&self, reason: RevokeReason) {
        if reason == RevokeReason::RefreshTokenReused {
            self.reuse_detections.inc();
        }
        self.revocations
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn set_revoked_sessions(&self, n: usize) {
        self.revoked_sessions.set(n as i64);
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .observe(seconds);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
