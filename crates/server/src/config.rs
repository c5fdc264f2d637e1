//! Configuration: one typed struct, read from flags and environment variables.
//!
//! Every setting has a development default, so `cargo leptos watch` needs none.
//! `BATON_ENV=production` turns the defaults that are only safe on a developer's
//! machine into start-up errors (see [`Config::validate`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// A secret read from configuration. It never prints: `Debug` and `Display` show
/// `[redacted]`, and the value is only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Defaults that need no setup: a key generated into the data directory.
    Development,
    /// Refuses to start on settings that are only safe for development.
    Production,
}

/// Signature algorithm of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    /// Ed25519 signatures; keys live (sealed) in the database, public keys are in the JWKS.
    #[value(name = "EdDSA")]
    EdDsa,
    /// HMAC-SHA256 with a configured shared secret, for verifiers that share it.
    #[value(name = "HS256")]
    Hs256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

pub mod defaults {
    pub const ACCESS_TTL: u64 = 15 * 60;
    pub const REFRESH_IDLE_TTL: u64 = 7 * 24 * 3600;
    pub const SESSION_TTL: u64 = 30 * 24 * 3600;
    pub const REUSE_GRACE: u64 = 10;
    pub const ISSUER: &str = "baton";
    pub const AUDIENCE: &str = "baton";
    pub const KEY_ACTIVATION_DELAY: u64 = 5;
    pub const SYNC_INTERVAL_MS: u64 = 500;
    pub const PURGE_INTERVAL: u64 = 3600;
    /// In the spirit of Supabase Auth: 30 logins and 150 refreshes per 5 minutes per IP.
    pub const LOGIN_LIMIT_PER_IP: u32 = 30;
    pub const REFRESH_LIMIT_PER_IP: u32 = 150;
    pub const LOGIN_FAILURES_PER_ACCOUNT: u32 = 10;
    pub const RATE_LIMIT_WINDOW: u64 = 300;
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// development or production.
    #[arg(long = "env", env = "BATON_ENV", value_enum, default_value_t = Environment::Development, global = true)]
    pub environment: Environment,

    /// Directory for the development database and keys.
    #[arg(long, env = "BATON_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// `sqlite://path/to/file.db` or `postgres://...`. Default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<Secret>,

    /// Largest number of database connections (PostgreSQL; SQLite readers).
    #[arg(
        long,
        env = "BATON_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before answering 503.
    #[arg(
        long,
        env = "BATON_DB_ACQUIRE_TIMEOUT",
        default_value_t = 3,
        global = true
    )]
    pub db_acquire_timeout: u64,

    /// Address to listen on. Default: LEPTOS_SITE_ADDR (as set by cargo-leptos), else 127.0.0.1:3000.
    #[arg(long, env = "BATON_BIND", global = true)]
    pub bind: Option<SocketAddr>,

    /// Seconds an access token lives.
    #[arg(long, env = "BATON_ACCESS_TTL", default_value_t = defaults::ACCESS_TTL, global = true)]
    pub access_ttl: u64,

    /// Seconds a refresh token stays valid unused (each rotation starts a new period).
    #[arg(long, env = "BATON_REFRESH_IDLE_TTL", default_value_t = defaults::REFRESH_IDLE_TTL, global = true)]
    pub refresh_idle_ttl: u64,

    /// Seconds a session lives at most from login; rotation never extends it.
    #[arg(long, env = "BATON_SESSION_TTL", default_value_t = defaults::SESSION_TTL, global = true)]
    pub session_ttl: u64,

    /// Seconds during which a just-rotated refresh token may be presented again (lost
    /// response, racing tabs) without counting as reuse. 0 disables.
    #[arg(long, env = "BATON_REUSE_GRACE", default_value_t = defaults::REUSE_GRACE, global = true)]
    pub reuse_grace: u64,

    /// Seconds of clock skew tolerated when checking an access token's expiry.
    #[arg(long, env = "BATON_LEEWAY", default_value_t = 0, global = true)]
    pub leeway: u64,

    /// `iss` of access tokens.
    #[arg(long, env = "BATON_ISSUER", default_value = defaults::ISSUER, global = true)]
    pub issuer: String,

    /// `aud` of access tokens.
    #[arg(long, env = "BATON_AUDIENCE", default_value = defaults::AUDIENCE, global = true)]
    pub audience: String,

    /// EdDSA (default) or HS256.
    #[arg(long, env = "BATON_JWT_ALG", value_enum, default_value_t = JwtAlgorithm::EdDsa, global = true)]
    pub jwt_alg: JwtAlgorithm,

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
    #[arg(long, env = "BATON_KEY_ACTIVATION_DELAY", default_value_t = defaults::KEY_ACTIVATION_DELAY, global = true)]
    pub key_activation_delay: u64,

    /// Milliseconds between polls of the database for revocations and keys from other instances.
    #[arg(long, env = "BATON_SYNC_INTERVAL_MS", default_value_t = defaults::SYNC_INTERVAL_MS, global = true)]
    pub sync_interval_ms: u64,

    /// Seconds between purges of expired rows.
    #[arg(long, env = "BATON_PURGE_INTERVAL", default_value_t = defaults::PURGE_INTERVAL, global = true)]
    pub purge_interval: u64,

    /// Password hashes computed at once (each takes 19 MiB). Default: cores - 1, at least 1.
    #[arg(long, env = "BATON_HASH_CONCURRENCY", global = true)]
    pub hash_concurrency: Option<usize>,

    /// pretty or json.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// Login and register requests allowed per client IP per window (0: no limit).
    #[arg(long, env = "BATON_LOGIN_LIMIT_PER_IP", default_value_t = defaults::LOGIN_LIMIT_PER_IP, global = true)]
    pub login_limit_per_ip: u32,

    /// Refresh requests allowed per client IP per window (0: no limit).
    #[arg(long, env = "BATON_REFRESH_LIMIT_PER_IP", default_value_t = defaults::REFRESH_LIMIT_PER_IP, global = true)]
    pub refresh_limit_per_ip: u32,

    /// Failed logins allowed per account per window, from any address (0: no limit).
    /// Past it, the account answers 429 until the window frees up, whatever the password.
    #[arg(long, env = "BATON_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = defaults::LOGIN_FAILURES_PER_ACCOUNT, global = true)]
    pub login_failures_per_account: u32,

    /// Seconds of the rate-limit window.
    #[arg(long, env = "BATON_RATE_LIMIT_WINDOW", default_value_t = defaults::RATE_LIMIT_WINDOW, global = true)]
    pub rate_limit_window: u64,

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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            environment: Environment::Development,
            data_dir: PathBuf::from("data"),
            database_url: None,
            db_max_connections: 16,
            db_acquire_timeout: 3,
            bind: None,
            access_ttl: defaults::ACCESS_TTL,
            refresh_idle_ttl: defaults::REFRESH_IDLE_TTL,
            session_ttl: defaults::SESSION_TTL,
            reuse_grace: defaults::REUSE_GRACE,
            leeway: 0,
            issuer: defaults::ISSUER.to_owned(),
            audience: defaults::AUDIENCE.to_owned(),
            jwt_alg: JwtAlgorithm::EdDsa,
            master_key: None,
            master_key_file: None,
            jwt_secret: None,
            jwt_previous_secrets: Vec::new(),
            key_activation_delay: defaults::KEY_ACTIVATION_DELAY,
            sync_interval_ms: defaults::SYNC_INTERVAL_MS,
            purge_interval: defaults::PURGE_INTERVAL,
            hash_concurrency: None,
            log_format: LogFormat::Pretty,
            login_limit_per_ip: defaults::LOGIN_LIMIT_PER_IP,
            refresh_limit_per_ip: defaults::REFRESH_LIMIT_PER_IP,
            login_failures_per_account: defaults::LOGIN_FAILURES_PER_ACCOUNT,
            rate_limit_window: defaults::RATE_LIMIT_WINDOW,
            trusted_proxy_hops: 0,
            cors_allowed_origins: Vec::new(),
            hsts: false,
        }
    }
}

impl Config {
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> Secret {
        self.database_url.clone().unwrap_or_else(|| {
            Secret::new(format!(
                "sqlite://{}",
                self.data_dir.join("baton.db").display()
            ))
        })
    }

    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl)
    }

    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1)
        })
    }

    /// Refuses settings that make no sense anywhere, and in production the ones that
    /// are only safe on a developer's machine.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.access_ttl == 0 {
            problems.push("BATON_ACCESS_TTL must be at least 1 second".to_owned());
        }
        if self.refresh_idle_ttl == 0 || self.session_ttl == 0 {
            problems.push(
                "BATON_REFRESH_IDLE_TTL and BATON_SESSION_TTL must be at least 1 second".to_owned(),
            );
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            problems.push("BATON_ISSUER and BATON_AUDIENCE must not be empty".to_owned());
        }
        if self.hash_concurrency == Some(0) || self.db_max_connections == 0 {
            problems.push(
                "BATON_HASH_CONCURRENCY and BATON_DB_MAX_CONNECTIONS must be at least 1".to_owned(),
            );
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.expose().len() < 32 {
                problems.push("BATON_JWT_SECRET must be at least 32 bytes".to_owned());
            }
        }
        if self
            .jwt_previous_secrets
            .iter()
            .any(|s| s.expose().len() < 32)
        {
            problems.push(
                "every BATON_JWT_PREVIOUS_SECRETS entry must be at least 32 bytes".to_owned(),
            );
        }
        if self.rate_limit_window == 0 {
            problems.push("BATON_RATE_LIMIT_WINDOW must be at least 1 second".to_owned());
        }
        for origin in &self.cors_allowed_origins {
            let ok = origin == "*"
                || ((origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin.ends_with('/')
                    && axum::http::HeaderValue::from_str(origin).is_ok());
            if !ok {
                problems.push(format!(
                    "BATON_CORS_ALLOWED_ORIGINS: {origin:?} is not an origin like https://app.example.com"
                ));
            }
        }
        if self.master_key.is_some() && self.master_key_file.is_some() {
            problems.push("set BATON_MASTER_KEY or BATON_MASTER_KEY_FILE, not both".to_owned());
        }
        if self.is_production() {
            match self.jwt_alg {
                JwtAlgorithm::EdDsa
                    if self.master_key.is_none() && self.master_key_file.is_none() =>
                {
                    problems.push(
                        "production needs an explicit key: set BATON_MASTER_KEY or BATON_MASTER_KEY_FILE \
                         (generate one with `baton-server keys generate-master`)"
                            .to_owned(),
                    );
                }
                JwtAlgorithm::Hs256 if self.jwt_secret.is_none() => {
                    problems.push(
                        "production with HS256 needs BATON_JWT_SECRET (at least 32 bytes)"
                            .to_owned(),
                    );
                }
                _ => {}
            }
            if self.database_url.is_none() {
                problems.push("production needs an explicit DATABASE_URL".to_owned());
            }
            if self.access_ttl > 3600 {
                problems
                    .push("BATON_ACCESS_TTL above one hour is refused in production".to_owned());
            }
            if self.reuse_grace > 60 {
                problems
                    .push("BATON_REUSE_GRACE above 60 seconds is refused in production".to_owned());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn production_refuses_implicit_keys_and_database() {
        let config = Config {
            environment: Environment::Production,
            ..Config::default()
        };
        let err = config.validate().unwrap_err();
        assert!(err.contains("BATON_MASTER_KEY"), "{err}");
        assert!(err.contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn short_hs256_secrets_are_refused_everywhere() {
        let config = Config {
            jwt_alg: JwtAlgorithm::Hs256,
            jwt_secret: Some(Secret::new("too short")),
            ..Config::default()
        };
        assert!(config.validate().unwrap_err().contains("32 bytes"));
    }

    #[test]
    fn secrets_never_print() {
        let config = Config {
            jwt_secret: Some(Secret::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t")),
            database_url: Some(Secret::new("postgres://u:hunter2@db/baton")),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
