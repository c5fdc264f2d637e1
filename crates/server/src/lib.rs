//! Baton's server: issues short-lived access tokens and single-use refresh tokens,
//! rotates them safely under concurrency, detects stolen refresh tokens, and serves
//! the notes API and the Leptos app.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let app = baton_server::Application::build(baton_server::config::Config::default()).await?;
//! println!("listening on port {}", app.port());
//! app.run_until_stopped().await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod password;
pub mod rate_limit;
pub mod revocation;
pub mod routes;
pub mod security;
pub mod store;
pub mod tokens;

use config::Config;
use keys::KeySource;
use metrics::Metrics;
use password::Passwords;
use rate_limit::RateLimits;
use revocation::Revocations;
use store::{now_ms, Db};
use tokens::AccessTokens;

/// Everything a request handler needs; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    pub keys: KeySource,
    pub tokens: AccessTokens,
    pub passwords: Passwords,
    pub revocations: Revocations,
    pub limits: RateLimits,
    pub metrics: Metrics,
    pub leptos: LeptosOptions,
}

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl AppState {
    /// Connects to the database, loads (or creates) the keys, and checks that they
    /// sign and verify. Everything the server and the operator commands share.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("refusing to start: {e}"))?;
        let db = Db::connect(&config).await?;
        let keys = KeySource::from_config(&config)?;
        let ring = keys.load(&db, verify_after_replaced_ms(&config)).await?;
        let tokens = AccessTokens::new(
            &config.issuer,
            &config.audience,
            config.access_ttl,
            config.leeway,
            ring,
        );
        tokens.self_test().context("signing key self-test")?;
        let passwords = Passwords::new(config.hash_concurrency())?;
        let revocations = Revocations::new(config.access_ttl, config.leeway);
        revocations.sync(&db, now_ms()).await?;
        let leptos = leptos_options(&config)?;
        let limits = RateLimits::new(&config);
        Ok(AppState(Arc::new(AppInner {
            config,
            db,
            keys,
            tokens,
            passwords,
            revocations,
            limits,
            metrics: Metrics::new(),
            leptos,
        })))
    }

    /// One round of learning what other instances did: revocations and keys.
    pub async fn sync_once(&self) -> anyhow::Result<()> {
        let now = now_ms();
        self.revocations.sync(&self.db, now).await?;
        let ring = self.tokens.ring();
        if let Some(new_ring) = self
            .keys
            .reload_if_changed(&self.db, &ring, verify_after_replaced_ms(&self.config))
            .await?
        {
            tracing::info!(kids = ?new_ring.published_kids(now), "signing keys changed");
            self.tokens.replace_ring(new_ring);
        }
        Ok(())
    }

    /// Deletes rows that can no longer be used: expired refresh tokens and sessions,
    /// revoked sessions once their access tokens have expired, superseded keys.
    pub async fn purge_once(&self) -> anyhow::Result<store::sessions::Purged> {
        let now = now_ms();
        let token_life = verify_after_replaced_ms(&self.config);
        let keep = token_life.max(3_600_000);
        let purged = store::sessions::purge(&self.db, now, keep).await?;
        // A replaced key is kept while a refresh token from its time may still be used,
        // so that an access token it signed is answered "expired", not "invalid".
        let key_life = token_life + (self.config.refresh_idle_ttl * 1000) as i64;
        let keys = store::keys::delete_superseded(&self.db, now - key_life).await?;
        if purged != store::sessions::Purged::default() || !keys.is_empty() {
            tracing::info!(
                refresh_tokens = purged.refresh_tokens,
                sessions = purged.sessions,
                keys = keys.len(),
                "purged expired rows"
            );
        }
        Ok(purged)
    }
}

/// How long a replaced key keeps verifying: one access-token lifetime plus leeway (ms).
fn verify_after_replaced_ms(config: &Config) -> i64 {
    ((config.access_ttl + config.leeway) * 1000) as i64
}

/// Leptos's options: from cargo-leptos's environment variables when it runs us, with
/// this project's defaults otherwise (tests, the release binary run by hand).
fn leptos_options(config: &Config) -> anyhow::Result<LeptosOptions> {
    let mut options = if std::env::var_os("LEPTOS_OUTPUT_NAME").is_some()
        || option_env!("LEPTOS_OUTPUT_NAME").is_some()
    {
        leptos::config::get_configuration(None)
            .context("reading the Leptos configuration")?
            .leptos_options
    } else {
        // Built by plain cargo (tests) and run without cargo-leptos's variables.
        let mut options = LeptosOptions::builder().output_name("baton").build();
        if let Ok(root) = std::env::var("LEPTOS_SITE_ROOT") {
            options.site_root = Arc::from(root);
        }
        options
    };
    if let Some(bind) = config.bind {
        options.site_addr = bind;
    }
    Ok(options)
}

/// The server, bound to its port and ready to run.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    port: u16,
    shutdown: CancellationToken,
}

impl Application {
    /// Builds the application and binds its listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let state = AppState::new(config).await?;
        let addr: SocketAddr = state.leptos.site_addr;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            state,
            listener,
            port,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Cancelling this token stops the server gracefully (in-flight requests finish).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled or the process gets SIGINT/SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            state,
            listener,
            shutdown,
            ..
        } = self;
        let background = spawn_background_tasks(state.clone(), shutdown.clone());
        let app = routes::router(state.clone());
        tracing::info!(addr = %listener.local_addr()?, "Baton is listening");
        let stop = shutdown.clone();
        let result = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = os_shutdown_signal() => {}
            }
        })
        .await;
        shutdown.cancel();
        for task in background {
            let _ = task.await;
        }
        state.db.close().await;
        result
    }
}

fn spawn_background_tasks(
    state: AppState,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sync_every = Duration::from_millis(state.config.sync_interval_ms.max(50));
    let purge_every = Duration::from_secs(state.config.purge_interval.max(1));
    vec![
        spawn_periodic(
            "sync with the database",
            sync_every,
            stop.clone(),
            state.clone(),
            |s| async move { s.sync_once().await.map(|_| ()) },
        ),
        spawn_periodic(
            "purge",
            purge_every,
            stop.clone(),
            state.clone(),
            |s| async move { s.purge_once().await.map(|_| ()) },
        ),
        spawn_periodic(
            "rate-limit pruning",
            Duration::from_secs(60),
            stop,
            state,
            |s| async move {
                s.limits.prune(now_ms());
                Ok(())
            },
        ),
    ]
}

/// Runs `job` every `every` until `stop`; a failed round is logged and retried next time.
fn spawn_periodic<F, Fut>(
    name: &'static str,
    every: Duration,
    stop: CancellationToken,
    state: AppState,
    job: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = job(state.clone()).await {
                        tracing::warn!(error = format!("{e:#}"), "{name} failed; will retry");
                    }
                }
            }
        }
    })
}

async fn os_shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
