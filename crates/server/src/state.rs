//! [`AppState`]: what every request handler and operator command shares.

use std::ops::Deref;
use std::sync::Arc;

use uuid::Uuid;

use anyhow::Context;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::clock::{millis, now_ms};
use crate::config::Config;
use crate::dpop::Dpop;
use crate::feed::Feed;
use crate::keys::KeySource;
use crate::metrics::Metrics;
use crate::password::Passwords;
use crate::rate_limit::RateLimits;
use crate::refresh_token::ChainKeys;
use crate::revocation::Revocations;
use crate::store::sessions::{Ending, Lifetimes, RevokeReason};
use crate::store::{self, Db};
use crate::tokens::AccessTokens;
use crate::users::Users;

/// Everything a request handler needs; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    pub keys: KeySource,
    /// Derives every refresh token's successor (see [`crate::refresh_token`]).
    pub chain: ChainKeys,
    pub tokens: AccessTokens,
    /// Proofs of possession (RFC 9449): nonces, replay checks, the proof rule.
    pub dpop: Dpop,
    pub passwords: Passwords,
    pub revocations: Revocations,
    /// What other instances changed: ended sessions, key changes.
    pub feed: Feed,
    /// User rows in memory, for authenticated reads.
    pub users: Users,
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
        let chain = keys.chain_keys();
        let token_life = config.tokens.access_token_life();
        // The feed first: a key change made after it starts is read by its first round.
        let revocations = Revocations::new(token_life);
        let (feed, ended) = Feed::start(&config, &db, revocations.keep()).await?;
        revocations.insert(ended);
        let ring = keys.start(&db, millis(token_life)).await?;
        let tokens = AccessTokens::new(&config.tokens, ring);
        tokens.self_test().context("signing key self-test")?;
        let metrics = Metrics::new();
        let dpop = Dpop::new(
            &config.dpop,
            keys.dpop_nonce_key(),
            metrics.dpop_signatures.clone(),
        );
        let passwords = Passwords::new(config.limits.hash_concurrency(), metrics.hashing.clone())?;
        let leptos = leptos_options(&config)?;
        let limits = RateLimits::new(&config.limits);
        Ok(AppState(Arc::new(AppInner {
            config,
            db,
            keys,
            chain,
            tokens,
            dpop,
            passwords,
            revocations,
            feed,
            users: Users::default(),
            limits,
            metrics,
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
        self.sessions_ended(&ended, reason);
        Ok(ended)
    }

    /// What follows sessions ended in the database (by [`Self::end_sessions`], or in a
    /// transaction of their own): their access tokens stop here at once; the metrics
    /// and the log.
    pub fn sessions_ended(&self, ended: &[Uuid], reason: RevokeReason) {
        self.revocations.insert(ended.iter().copied());
        for &session_id in ended {
            self.metrics.revocation(reason);
            if reason == RevokeReason::RefreshTokenReused {
                tracing::warn!(%session_id, "refresh token reuse detected: session revoked");
            } else {
                tracing::info!(%session_id, reason = reason.as_str(), "session ended");
            }
        }
    }

    /// One round of the change feed: learns which sessions other instances ended and,
    /// when the keys changed, reads them again. Times out after the feed's timeout; on
    /// any failure nothing is skipped (the next round reads the same changes again).
    pub async fn sync_once(&self) -> anyhow::Result<()> {
        let round = async {
            let batch = self.feed.read().await?;
            self.revocations.insert(batch.ended.iter().copied());
            for &user in &batch.users {
                self.users.invalidate(user);
            }
            if batch.reload_keys {
                if let Err(e) = self.reload_keys().await {
                    self.feed.retry(&batch);
                    return Err(e);
                }
            }
            self.revocations.forget_expired();
            self.feed.commit(&batch);
            Ok(())
        };
        let timeout = self.feed.timeout();
        match tokio::time::timeout(timeout, round).await {
            Ok(done) => done,
            Err(_) => {
                self.feed.retry_keys();
                anyhow::bail!("reading the change feed took longer than {timeout:?}")
            }
        }
    }

    /// Reads the keys again (on the feed's connection) and puts the new ring in place.
    async fn reload_keys(&self) -> anyhow::Result<()> {
        let token_life = millis(self.config.tokens.access_token_life());
        let ring = self.keys.load(self.feed.db(), token_life).await?;
        tracing::info!(kids = ?ring.published_kids(now_ms()), "signing keys changed");
        self.tokens.replace_ring(ring);
        Ok(())
    }

    /// Deletes rows that can no longer be used: expired refresh tokens and sessions,
    /// revoked sessions once their access tokens have expired, superseded keys.
    pub async fn purge_once(&self) -> anyhow::Result<store::sessions::Purged> {
        let now = now_ms();
        let token_life = millis(self.config.tokens.access_token_life());
        let keep = token_life.max(3_600_000);
        let purged = store::sessions::purge(&self.db, now, keep).await?;
        let keep_changes = keep.max(millis(self.revocations.keep()));
        store::changes::purge(&self.db, now - keep_changes).await?;
        store::dpop::purge(&self.db, now).await?;
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
