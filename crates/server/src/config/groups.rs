//! The groups of settings, each a `clap` argument group flattened into [`Config`].
//!
//! [`Config`]: super::Config

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{JwtAlgorithm, Secret};

/// Whole seconds, as every duration setting is written.
pub(super) fn seconds(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_secs)
        .map_err(|e| format!("{e}: whole seconds"))
}

/// Whole milliseconds, for the settings whose name ends in `_MS`.
pub(super) fn millis(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_millis)
        .map_err(|e| format!("{e}: whole milliseconds"))
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` or `postgres://...`. Default: SQLite in the data directory.
    #[arg(long = "database-url", env = "DATABASE_URL", global = true)]
    pub url: Option<Secret>,

    /// Largest number of database connections (PostgreSQL; SQLite readers, at most 8).
    #[arg(
        long = "db-max-connections",
        env = "BATON_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub max_connections: u32,

    /// Seconds a request waits for a database connection before answering 503.
    #[arg(long = "db-acquire-timeout", env = "BATON_DB_ACQUIRE_TIMEOUT", value_parser = seconds,
        value_name = "SECONDS", default_value = "3", global = true)]
    pub acquire_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "HTTP")]
pub struct HttpConfig {
    /// Address to listen on. Default: LEPTOS_SITE_ADDR (as set by cargo-leptos), else 127.0.0.1:3000.
    #[arg(long, env = "BATON_BIND", global = true)]
    pub bind: Option<SocketAddr>,

    /// Reverse proxies in front of Baton that append to X-Forwarded-For. 0 (default):
    /// the header is ignored and the peer address is the client. N: the client is the
    /// N-th address from the right of the header.
    #[arg(
        long,
        env = "BATON_TRUSTED_PROXY_HOPS",
        default_value_t = 0,
        global = true
    )]
    pub trusted_proxy_hops: usize,

    /// Origins allowed to call the API from another origin (CORS), comma-separated.
    /// Empty (default): same origin only. Credentials (cookies) are never allowed.
    #[arg(
        long,
        env = "BATON_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_allowed_origins: Vec<String>,

    /// Send Strict-Transport-Security (set when Baton is served over HTTPS).
    #[arg(long, env = "BATON_HSTS", default_value_t = false, global = true)]
    pub hsts: bool,

    /// Seconds a client has to send a request's headers, and then its body, before the
    /// connection is closed (headers) or the request answered 408 (body): a client
    /// trickling bytes cannot hold a connection.
    #[arg(long = "header-read-timeout", env = "BATON_HEADER_READ_TIMEOUT", value_parser = seconds,
        value_name = "SECONDS", default_value = "10", global = true)]
    pub header_read_timeout: Duration,

    /// Seconds a client has to send a request's body once its headers arrived.
    #[arg(long = "body-read-timeout", env = "BATON_BODY_READ_TIMEOUT", value_parser = seconds,
        value_name = "SECONDS", default_value = "10", global = true)]
    pub body_read_timeout: Duration,

    /// Serve `GET /metrics` on this address of its own (e.g. 127.0.0.1:9100, for the
    /// scraper only), instead of on the public one.
    #[arg(long, env = "BATON_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,

    /// Serve `GET /metrics` on the public address to `Authorization: Bearer <this>` only
    /// (at least 32 bytes). Without it (and without BATON_METRICS_BIND) the public
    /// `/metrics` is open in development and absent in production. Letters, digits and
    /// `- . _ ~ + /` (`openssl rand -hex 32`).
    #[arg(
        long,
        env = "BATON_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<Secret>,
}

/// Who may read `GET /metrics` on the public address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicMetrics {
    /// Not served there (404).
    Off,
    Open,
    /// Only with this bearer token.
    Token(Secret),
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Tokens")]
pub struct TokenConfig {
    /// Seconds an access token lives.
    #[arg(long, env = "BATON_ACCESS_TTL", value_parser = seconds,
        value_name = "SECONDS", default_value = "900", global = true)]
    pub access_ttl: Duration,

    /// Seconds a refresh token stays valid unused (each rotation starts a new period).
    #[arg(long, env = "BATON_REFRESH_IDLE_TTL", value_parser = seconds,
        value_name = "SECONDS", default_value = "604800", global = true)]
    pub refresh_idle_ttl: Duration,

    /// Seconds a session lives at most from login; rotation never extends it.
    #[arg(long, env = "BATON_SESSION_TTL", value_parser = seconds,
        value_name = "SECONDS", default_value = "2592000", global = true)]
    pub session_ttl: Duration,

    /// Seconds during which a just-rotated refresh token may be presented again (lost
    /// response, racing tabs) without counting as reuse. 0 disables.
    #[arg(long, env = "BATON_REUSE_GRACE", value_parser = seconds,
        value_name = "SECONDS", default_value = "10", global = true)]
    pub reuse_grace: Duration,

    /// Seconds of clock skew tolerated when checking an access token's expiry.
    #[arg(long, env = "BATON_LEEWAY", value_parser = seconds,
        value_name = "SECONDS", default_value = "0", global = true)]
    pub leeway: Duration,

    /// `iss` of access tokens.
    #[arg(long, env = "BATON_ISSUER", default_value = "baton", global = true)]
    pub issuer: String,

    /// `aud` of access tokens.
    #[arg(long, env = "BATON_AUDIENCE", default_value = "baton", global = true)]
    pub audience: String,
}

impl TokenConfig {
    /// How long after signing an access token can still be accepted: its lifetime plus
    /// the tolerated skew. A revoked session stays in the revocation set, and a replaced
    /// signing key keeps verifying, for this long.
    pub fn access_token_life(&self) -> Duration {
        self.access_ttl.saturating_add(self.leeway)
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Signing keys")]
pub struct KeyConfig {
    /// EdDSA (default) or HS256.
    #[arg(long = "jwt-alg", env = "BATON_JWT_ALG", value_enum, default_value_t = JwtAlgorithm::EdDsa, global = true)]
    pub alg: JwtAlgorithm,

    /// EdDSA: base64 of 32 random bytes that seal the signing keys stored in the
    /// database. Required in production; generated into the data directory in development.
    #[arg(long, env = "BATON_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<Secret>,

    /// EdDSA: file holding the master key (instead of BATON_MASTER_KEY).
    #[arg(long, env = "BATON_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,

    /// HS256: the shared secret, at least 32 bytes.
    #[arg(long, env = "BATON_JWT_SECRET", global = true, hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// HS256: earlier secrets, comma-separated, that still verify (not sign) during a rotation.
    #[arg(
        long,
        env = "BATON_JWT_PREVIOUS_SECRETS",
        value_delimiter = ',',
        global = true,
        hide_env_values = true
    )]
    pub jwt_previous_secrets: Vec<Secret>,

    /// EdDSA: seconds between publishing a rotated key (JWKS, every instance) and
    /// signing with it, so that every instance knows it before it is used.
    #[arg(long = "key-activation-delay", env = "BATON_KEY_ACTIVATION_DELAY", value_parser = seconds,
        value_name = "SECONDS", default_value = "5", global = true)]
    pub activation_delay: Duration,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitConfig {
    /// Password hashes computed at once (each takes 19 MiB). Default: cores - 1, at least 1.
    #[arg(long, env = "BATON_HASH_CONCURRENCY", global = true)]
    pub hash_concurrency: Option<usize>,

    /// Login and register requests allowed per client IP per window (0: no limit).
    /// The defaults follow Supabase Auth: 30 logins and 150 refreshes per 5 minutes.
    #[arg(
        long = "login-limit-per-ip",
        env = "BATON_LOGIN_LIMIT_PER_IP",
        default_value_t = 30,
        global = true
    )]
    pub login_per_ip: u32,

    /// Refresh requests allowed per client IP per window (0: no limit).
    #[arg(
        long = "refresh-limit-per-ip",
        env = "BATON_REFRESH_LIMIT_PER_IP",
        default_value_t = 150,
        global = true
    )]
    pub refresh_per_ip: u32,

    /// Wrong passwords (logins and password changes) allowed per account from one
    /// address (IPv6: its /64) before that address waits: 1 s, doubling with every
    /// further wrong one, at most the window (0: no limit). Other addresses are not
    /// affected, so a stranger cannot lock the owner out.
    #[arg(
        long = "login-failures-per-address",
        env = "BATON_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 10,
        global = true
    )]
    pub login_failures_per_address: u32,

    /// Wrong passwords allowed per account from all addresses together before every
    /// address waits the same way: the ceiling for a guesser with many addresses
    /// (0: no limit).
    #[arg(
        long = "login-failures-per-account",
        env = "BATON_LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 100,
        global = true
    )]
    pub login_failures_per_account: u32,

    /// Seconds of the rate-limit window.
    #[arg(long = "rate-limit-window", env = "BATON_RATE_LIMIT_WINDOW", value_parser = seconds,
        value_name = "SECONDS", default_value = "300", global = true)]
    pub window: Duration,
}

impl LimitConfig {
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1)
        })
    }
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Background tasks")]
pub struct BackgroundConfig {
    /// Milliseconds between reads of the change feed (ended sessions, key changes) when
    /// nothing was pushed (at least 50). PostgreSQL pushes every change at once; this
    /// poll is the backstop, and SQLite's only way.
    #[arg(long = "sync-interval-ms", env = "BATON_SYNC_INTERVAL_MS", value_parser = millis,
        value_name = "MS", default_value = "500", global = true)]
    pub sync_interval: Duration,

    /// Milliseconds after the last complete read of the change feed past which this
    /// instance answers authenticated requests 503 `unavailable`: it can no longer know
    /// which sessions other instances ended. It recovers at the next read that succeeds.
    #[arg(long = "sync-max-staleness-ms", env = "BATON_SYNC_MAX_STALENESS_MS", value_parser = millis,
        value_name = "MS", default_value = "5000", global = true)]
    pub max_staleness: Duration,

    /// Seconds between purges of expired rows (at least 1).
    #[arg(long, env = "BATON_PURGE_INTERVAL", value_parser = seconds,
        value_name = "SECONDS", default_value = "3600", global = true)]
    pub purge_interval: Duration,
}

impl BackgroundConfig {
    /// How often the sync runs: as configured, but never more than 20 times a second.
    pub fn sync_every(&self) -> Duration {
        self.sync_interval.max(Duration::from_millis(50))
    }

    /// How long one read of the change feed may take (its statement timeout too): half
    /// the staleness bound, so that a hung read fails in time for the next one.
    pub fn sync_timeout(&self) -> Duration {
        (self.max_staleness / 2).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    pub fn purge_every(&self) -> Duration {
        self.purge_interval.max(Duration::from_secs(1))
    }
}
