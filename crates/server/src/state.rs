//! [`AppState`]: what every request handler and operator command shares.

use std::ops::Deref;
use std::sync::Arc;

use uuid::Uuid;

use anyhow::Context;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::clock::{millis, now_ms};
use crate::config::Config;
use crate::keys::KeySource;
use crate::metrics::Metrics;
use crate::password::Passwords;
use crate::rate_limit::RateLimits;
use crate::revocation::Revocations;
use crate::store::sessions::{Ending, Lifetimes, RevokeReason};
use crate::store::{self, Db};
use crate::tokens::AccessTokens;

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
        let verify_after_replaced = millis(config.tokens.access_token_life());
        let ring = keys.load(&db, verify_after_replaced).await?;
        let tokens = AccessTokens::new(&config.tokens, ring);
        tokens.self_test().context("signing key self-test")?;
        let passwords = Passwords::new(config.limits.hash_concurrency())?;
        let revocations = Revocations::new(config.tokens.access_token_life());
        revocations.sync(&db, now_ms()).await?;
        let leptos = leptos_options(&config)?;
        let limits = RateLimits::new(&config.limits);
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

    /// The lifetimes of sessions and refresh tokens, as configured.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes::new(&self.config.tokens)
    }

    /// Ends sessions, every way that matters: in the database, so that other
    /// instances learn of it at their next sync; in this instance's revocation set, so
    /// that their access tokens stop here at once; in the metrics and the log. Returns
    /// the ids this call ended (none if they had ended already).
    pub async fn end_sessions(
        &self,
        which: Ending<'_>,
        reason: RevokeReason,
    ) -> crate::error::Result<Vec<Uuid>> {
        let now = now_ms();
        let ended = store::sessions::end(&self.db, which, reason, now).await?;
        for &session_id in &ended {
            self.revocations.insert(session_id, now);
            self.metrics.revocation(reason);
            if reason == RevokeReason::RefreshTokenReused {
                tracing::warn!(%session_id, "refresh token reuse detected: session revoked");
            } else {
                tracing::info!(%session_id, reason = reason.as_str(), "session ended");
            }
        }
        Ok(ended)
    }

    /// One round of learning what other instances did: revocations and keys.
    pub async fn sync_once(&self) -> anyhow::Result<()> {
        let now = now_ms();
        self.revocations.sync(&self.db, now).await?;
        let ring = self.tokens.ring();
        let verify_after_replaced = millis(self.config.tokens.access_token_life());
        if let Some(new_ring) = self
            .keys
            .reload_if_changed(&self.db, &ring, verify_after_replaced)
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
        let token_life = millis(self.config.tokens.access_token_life());
        let keep = token_life.max(3_600_000);
        let purged = store::sessions::purge(&self.db, now, keep).await?;
        // A replaced key is kept while a refresh token from its time may still be used,
        // so that an access token it signed is answered "expired", not "invalid".
        let key_life = token_life + millis(self.config.tokens.refresh_idle_ttl);
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
    if let Some(bind) = config.http.bind {
        options.site_addr = bind;
    }
    Ok(options)
}
