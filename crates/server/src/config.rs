//! Configuration: typed groups of settings, read from flags and environment variables.
//!
//! Every setting has a development default, so `cargo leptos watch` needs none. Each
//! default is written once, in the `default_value` of its argument; [`Config::default`]
//! is what those attributes give when no flag and no variable is set. Durations are
//! [`Duration`]s, read as whole seconds (milliseconds where the name says `_MS`).
//! [`Config::validate`] holds every rule a setting must meet; `BATON_ENV=production`
//! turns the defaults that are only safe on a developer's machine into start-up errors.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, ValueEnum};

mod dpop;
mod groups;
mod secret;

pub use dpop::{DpopConfig, DpopMode, PublicOrigin};
pub use groups::{
    BackgroundConfig, DatabaseConfig, HttpConfig, KeyConfig, LimitConfig, PublicMetrics,
    TokenConfig,
};
pub use secret::Secret;

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

/// The shortest HS256 secret accepted, in bytes (RFC 7518 section 3.2: at least the
/// hash's 256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// development or production.
    #[arg(long = "env", env = "BATON_ENV", value_enum, default_value_t = Environment::Development, global = true)]
    pub environment: Environment,

    /// Directory for the development database and keys.
    #[arg(long, env = "BATON_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// pretty or json.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub http: HttpConfig,

    #[command(flatten)]
    pub tokens: TokenConfig,

    #[command(flatten)]
    pub keys: KeyConfig,

    #[command(flatten)]
    pub limits: LimitConfig,

    #[command(flatten)]
    pub background: BackgroundConfig,

    #[command(flatten)]
    pub dpop: DpopConfig,
}

/// The configuration alone as a command line, to read the defaults from.
#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    config: Config,
}

impl Default for Config {
    /// The value of every `default_value` above: the configuration of a `baton-server`
    /// started with no flag and no environment variable.
    fn default() -> Self {
        let command = Defaults::command().mut_args(|arg| arg.env(None::<&str>));
        let matches = command
            .try_get_matches_from(["baton-server"])
            .expect("the defaults are valid arguments");
        Defaults::from_arg_matches(&matches)
            .expect("the defaults fill every setting")
            .config
    }
}

impl Config {
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> Secret {
        self.database.url.clone().unwrap_or_else(|| {
            Secret::new(format!(
                "sqlite://{}",
                self.data_dir.join("baton.db").display()
            ))
        })
    }

    /// Who may read `GET /metrics` on the public address: with BATON_METRICS_TOKEN
    /// whoever presents it; otherwise anyone in development, unless BATON_METRICS_BIND
    /// serves it elsewhere, and no one in production.
    pub fn public_metrics(&self) -> PublicMetrics {
        match (&self.http.metrics_token, &self.http.metrics_bind) {
            (Some(token), _) => PublicMetrics::Token(token.clone()),
            (None, None) if !self.is_production() => PublicMetrics::Open,
            (None, _) => PublicMetrics::Off,
        }
    }

    /// Refuses settings that make no sense anywhere, and in production the ones that
    /// are only safe on a developer's machine. Every rule a setting must meet is here.
    pub fn validate(&self) -> Result<(), String> {
        let (tokens, keys, limits) = (&self.tokens, &self.keys, &self.limits);
        let mut problems = Vec::new();
        if tokens.access_ttl.is_zero() {
            problems.push("BATON_ACCESS_TTL must be at least 1 second".to_owned());
        }
        if tokens.refresh_idle_ttl.is_zero() || tokens.session_ttl.is_zero() {
            problems.push(
                "BATON_REFRESH_IDLE_TTL and BATON_SESSION_TTL must be at least 1 second".to_owned(),
            );
        }
        if tokens.issuer.is_empty() || tokens.audience.is_empty() {
            problems.push("BATON_ISSUER and BATON_AUDIENCE must not be empty".to_owned());
        }
        if limits.hash_concurrency == Some(0) || self.database.max_connections == 0 {
            problems.push(
                "BATON_HASH_CONCURRENCY and BATON_DB_MAX_CONNECTIONS must be at least 1".to_owned(),
            );
        }
        if let Some(problem) = keys
            .jwt_secret
            .as_ref()
            .and_then(|s| hs256_secret_problem(s.expose().as_bytes()))
        {
            problems.push(format!("BATON_JWT_SECRET {problem}"));
        }
        if keys
            .jwt_previous_secrets
            .iter()
            .any(|s| hs256_secret_problem(s.expose().as_bytes()).is_some())
        {
            problems.push(format!(
                "every BATON_JWT_PREVIOUS_SECRETS entry must be at least {MIN_HS256_SECRET_BYTES} bytes"
            ));
        }
        let background = &self.background;
        if background.max_staleness < 2 * background.sync_every() {
            problems.push(
                "BATON_SYNC_MAX_STALENESS_MS must be at least twice BATON_SYNC_INTERVAL_MS"
                    .to_owned(),
            );
        }
        if self.http.header_read_timeout.is_zero() || self.http.body_read_timeout.is_zero() {
            problems.push(
                "BATON_HEADER_READ_TIMEOUT and BATON_BODY_READ_TIMEOUT must be at least 1 second"
                    .to_owned(),
            );
        }
        if let Some(problem) = self
            .http
            .metrics_token
            .as_ref()
            .and_then(|s| hs256_secret_problem(s.expose().as_bytes()))
        {
            problems.push(format!("BATON_METRICS_TOKEN {problem}"));
        }
        if self.http.metrics_token.as_ref().is_some_and(|token| {
            !token.expose().bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            })
        }) {
            problems.push(
                "BATON_METRICS_TOKEN may hold only letters, digits and - . _ ~ + / (it is sent as a bearer token)"
                    .to_owned(),
            );
        }
        if limits.window.is_zero() {
            problems.push("BATON_RATE_LIMIT_WINDOW must be at least 1 second".to_owned());
        }
        for origin in &self.http.cors_allowed_origins {
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
        problems.extend(self.dpop.problems(self.is_production()));
        if keys.master_key.is_some() && keys.master_key_file.is_some() {
            problems.push("set BATON_MASTER_KEY or BATON_MASTER_KEY_FILE, not both".to_owned());
        }
        if self.is_production() {
            match keys.alg {
                JwtAlgorithm::EdDsa
                    if keys.master_key.is_none() && keys.master_key_file.is_none() =>
                {
                    problems.push(
                        "production needs an explicit key: set BATON_MASTER_KEY or BATON_MASTER_KEY_FILE \
                         (generate one with `baton-server keys generate-master`)"
                            .to_owned(),
                    );
                }
                JwtAlgorithm::Hs256 if keys.jwt_secret.is_none() => {
                    problems.push(
                        "production with HS256 needs BATON_JWT_SECRET (at least 32 bytes)"
                            .to_owned(),
                    );
                }
                _ => {}
            }
            if self.database.url.is_none() {
                problems.push("production needs an explicit DATABASE_URL".to_owned());
            }
            if tokens.access_ttl > Duration::from_secs(3600) {
                problems
                    .push("BATON_ACCESS_TTL above one hour is refused in production".to_owned());
            }
            if tokens.reuse_grace > Duration::from_secs(60) {
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

/// What is wrong with an HS256 secret, if anything: the one rule for configured secrets
/// and for the development secret generated into the data directory.
pub fn hs256_secret_problem(secret: &[u8]) -> Option<String> {
    (secret.len() < MIN_HS256_SECRET_BYTES)
        .then(|| format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn defaults_are_the_flags_defaults() {
        let config = Config::default();
        assert_eq!(config.tokens.access_ttl, Duration::from_secs(15 * 60));
        assert_eq!(
            config.tokens.session_ttl,
            Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(config.background.sync_interval, Duration::from_millis(500));
        assert_eq!(config.limits.login_per_ip, 30);
        assert_eq!(config.keys.alg, JwtAlgorithm::EdDsa);
        assert_eq!(config.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn durations_are_whole_units() {
        use groups::{millis, seconds};
        assert_eq!(seconds("900"), Ok(Duration::from_secs(900)));
        assert_eq!(millis("500"), Ok(Duration::from_millis(500)));
        for bad in ["", "-1", "1.5", "15m", " 9"] {
            assert!(seconds(bad).is_err(), "{bad:?}");
        }
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
        let mut config = Config::default();
        config.keys.alg = JwtAlgorithm::Hs256;
        config.keys.jwt_secret = Some(Secret::new("too short"));
        assert!(config.validate().unwrap_err().contains("32 bytes"));
    }

    #[test]
    fn secrets_never_print() {
        let mut config = Config::default();
        config.keys.jwt_secret = Some(Secret::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"));
        config.database.url = Some(Secret::new("postgres://u:hunter2@db/baton"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
