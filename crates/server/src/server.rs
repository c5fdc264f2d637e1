//! [`Application`]: the server bound to its port, its background tasks, and a graceful
//! shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::config::Config;
use crate::routes;
use crate::serve::serve;
use crate::state::AppState;

/// The server, bound to its port (and the metrics address, if configured) and ready
/// to run.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    port: u16,
    metrics_listener: Option<TcpListener>,
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
        let metrics_listener = match state.config.http.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (BATON_METRICS_BIND)"))?,
            ),
            None => None,
        };
        Ok(Self {
            state,
            listener,
            port,
            metrics_listener,
            shutdown: CancellationToken::new(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of BATON_METRICS_BIND's listener, if configured.
    pub fn metrics_port(&self) -> Option<u16> {
        let listener = self.metrics_listener.as_ref()?;
        Some(listener.local_addr().ok()?.port())
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
            metrics_listener,
            shutdown,
            ..
        } = self;
        let mut background = spawn_background_tasks(state.clone(), shutdown.clone());
        let header_read_timeout = state.config.http.header_read_timeout;
        if let Some(listener) = metrics_listener {
            tracing::info!(addr = %listener.local_addr()?, "metrics are served here");
            let router = routes::metrics_router(state.clone());
            let stop = shutdown.clone();
            background.push(tokio::spawn(async move {
                let _ = serve(listener, router, header_read_timeout, stop).await;
            }));
        }
        let app = routes::router(state.clone());
        tracing::info!(addr = %listener.local_addr()?, "Baton is listening");
        let signal = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = os_shutdown_signal() => shutdown.cancel(),
                }
            })
        };
        let result = serve(listener, app, header_read_timeout, shutdown.clone()).await;
        shutdown.cancel();
        let _ = signal.await;
        for task in background {
            let _ = task.await;
        }
        state.feed.close().await;
        state.db.close().await;
        result
    }
}

fn spawn_background_tasks(
    state: AppState,
    stop: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sync_every = state.config.background.sync_every();
    let purge_every = state.config.background.purge_every();
    vec![
        tokio::spawn(sync_changes(state.clone(), sync_every, stop.clone())),
        {
            let (state, stop) = (state.clone(), stop.clone());
            tokio::spawn(async move { state.feed.listen(stop).await })
        },
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

/// Reads the change feed whenever a change is pushed and at least every `every`, until
/// `stop`. Failures are logged when they start, every 30 s while they last, and when
/// they end; so is the moment the instance goes stale (and answers 503) and recovers.
async fn sync_changes(state: AppState, every: Duration, stop: CancellationToken) {
    let mut failing_since: Option<std::time::Instant> = None;
    let mut last_warning = std::time::Instant::now();
    let mut stale = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = state.feed.next_round(every) => {}
        }
        match state.sync_once().await {
            Ok(()) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(after = ?since.elapsed(), "the change feed is read again");
                }
                if std::mem::take(&mut stale) {
                    tracing::info!(
                        "revocations are current again: authenticated requests are served"
                    );
                }
            }
            Err(e) => {
                state.metrics.sync_failed();
                let now = std::time::Instant::now();
                if failing_since.is_none() || now - last_warning >= Duration::from_secs(30) {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "reading the change feed failed; retrying"
                    );
                    last_warning = now;
                }
                failing_since.get_or_insert(now);
                if !stale && state.feed.is_stale() {
                    stale = true;
                    tracing::error!(
                        age = ?state.feed.age(),
                        "revocations are stale: authenticated requests get 503 until the change feed is read again"
                    );
                }
            }
        }
    }
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
