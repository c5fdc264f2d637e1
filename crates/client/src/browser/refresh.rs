//! The refresh: single flight within a tab, one at a time across tabs, retried with
//! backoff on failure, and ended only by a definite refusal.

use std::cell::RefCell;

use baton_shared::{RefreshRequest, TokenPair};
use futures::channel::oneshot;
use futures::future::select;
use gloo_timers::future::TimeoutFuture;

use super::{
    config, end_session, http, lock, now_ms, session, set_connection, set_session, storage, Persist,
};
use crate::error::{classify_refresh_failure, error_from_answer, ClientError, RefreshVerdict};
use crate::handoff::{spent_mark, CATCH_UP_MS, CATCH_UP_POLL_MS, SPENT_MARK_MS};
use crate::status::{Connection, EndReason};
use crate::stored::StoredSession;
use crate::{Config, Method};

type Outcome = Result<(), ClientError>;

thread_local! {
    /// While a refresh runs in this tab: everyone waiting for its outcome.
    static IN_FLIGHT: RefCell<Option<Vec<oneshot::Sender<Outcome>>>> = const { RefCell::new(None) };
    /// Wakes a refresh that is waiting to retry (`online` event, the page becoming
    /// visible, or the user asking).
    static WAKE: RefCell<Option<oneshot::Sender<()>>> = const { RefCell::new(None) };
}

/// Makes sure this tab holds an access token newer than `stale_access`: returns at once
/// if it already does (another caller or tab refreshed meanwhile), else joins or starts
/// the refresh.
pub(crate) async fn refresh_after(stale_access: &str) -> Result<(), ClientError> {
    let current = session().ok_or(ClientError::SessionEnded)?;
    if current.access_token != stale_access && current.access_usable(now_ms()) {
        return Ok(());
    }
    flight(current.refresh_token).await
}

/// Waits for the refresh in flight, or starts one from `known_refresh`, the refresh
/// token this tab holds now. However many callers wait, there is one refresh.
async fn flight(known_refresh: String) -> Outcome {
    let (tx, rx) = oneshot::channel();
    let start = IN_FLIGHT.with(|f| match &mut *f.borrow_mut() {
        Some(waiting) => {
            waiting.push(tx);
            false
        }
        none => {
            *none = Some(vec![tx]);
            true
        }
    });
    if start {
        // Its own task, so it finishes (and releases the cross-tab lock) even if
        // every caller stops waiting.
        wasm_bindgen_futures::spawn_local(async move {
            let outcome = run(known_refresh).await;
            let waiting = IN_FLIGHT
                .with(|f| f.borrow_mut().take())
                .unwrap_or_default();
            for tx in waiting {
                let _ = tx.send(outcome.clone());
            }
        });
    }
    rx.await.unwrap_or(Err(ClientError::SessionEnded))
}

/// Wakes a refresh that waits to retry, so it tries again now.
pub(crate) fn retry_now() {
    if let Some(wake) = WAKE.with(|w| w.borrow_mut().take()) {
        let _ = wake.send(());
    }
}

enum Attempt {
    /// This tab now holds fresh tokens.
    Done,
    /// The server refused the session.
    Refused(baton_shared::ErrorCode, uuid::Uuid),
    /// Nothing is stored any more: the user logged out in another tab.
    Gone,
    /// No usable answer; try again later.
    Failed { retry_after_ms: Option<i64> },
}

async fn run(known_refresh: String) -> Result<(), ClientError> {
    let config = config();
    let mut failures = 0u32;
    let result = loop {
        let attempt = lock::exclusive(&config.lock_name(), attempt(&config, &known_refresh)).await;
        match attempt {
            Attempt::Done => break Ok(()),
            Attempt::Refused(code, session_id) => {
                end_session(EndReason::Refused(code), session_id);
                break Err(ClientError::SessionEnded);
            }
            Attempt::Gone => {
                if let Some(s) = session() {
                    end_session(EndReason::SignedOutElsewhere, s.session_id);
                }
                break Err(ClientError::SessionEnded);
            }
            Attempt::Failed { retry_after_ms } => {
                failures = failures.saturating_add(1);
                let delay =
                    config
                        .backoff
                        .delay_ms(failures, js_sys::Math::random(), retry_after_ms);
                set_connection(Connection::Reconnecting {
                    failures,
                    retry_at: now_ms() + delay,
                    cooling_down: config.backoff.cooling_down(failures),
                });
                wait(delay).await;
            }
        }
    };
    set_connection(Connection::Online);
    result
}

/// One try, holding the cross-tab lock.
async fn attempt(config: &Config, known_refresh: &str) -> Attempt {
    // Re-read: another tab may have refreshed (or logged out) while we waited.
    let Some(mut stored) = storage::load_session(&config.storage_key) else {
        return Attempt::Gone;
    };
    // The tokens the previous holder of the lock stored may not have reached this tab's
    // copy of localStorage yet (see `crate::handoff`).
    if lock::is_held(&spent_mark(&config.lock_name(), &stored.refresh_token)).await {
        match catch_up(config, &stored.refresh_token).await {
            Some(newer) => stored = newer,
            None => return Attempt::Gone,
        }
    }
    if stored.refresh_token != known_refresh && stored.access_usable(now_ms()) {
        set_session(Some(stored), Persist::No);
        return Attempt::Done;
    }
    let body = serde_json::to_string(&RefreshRequest {
        refresh_token: stored.refresh_token.clone(),
    })
    .unwrap_or_default();
    let answer = http::send(
        Method::Post,
        &config.url("/api/auth/refresh"),
        Some(&body),
        None,
        config.request_timeout_ms,
    )
    .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(_) => {
            return Attempt::Failed {
                retry_after_ms: None,
            }
        }
    };
    if answer.is_success() {
        return match serde_json::from_str::<TokenPair>(&answer.body) {
            Ok(pair) => {
                // The user may have logged out (in another tab) while the request was
                // out: then these tokens are not stored. The logout revoked the whole
                // session on the server, these tokens included.
                if storage::load_session(&config.storage_key).is_none() {
                    return Attempt::Gone;
                }
                // Before the refresh lock goes to another tab, mark the token spent.
                lock::hold_for(
                    &spent_mark(&config.lock_name(), &stored.refresh_token),
                    SPENT_MARK_MS,
                )
                .await;
                let fresh = StoredSession::from_pair(pair, now_ms(), stored.refreshes + 1);
                set_session(Some(fresh), Persist::Yes);
                Attempt::Done
            }
            Err(_) => Attempt::Failed {
                retry_after_ms: None,
            },
        };
    }
    let error = error_from_answer(answer.status, &answer.body);
    match classify_refresh_failure(Some(answer.status), Some(error.code)) {
        RefreshVerdict::Refused(code) => Attempt::Refused(code, stored.session_id),
        RefreshVerdict::Failed => Attempt::Failed {
            retry_after_ms: answer.retry_after_ms,
        },
    }
}

/// Waits until this tab's `localStorage` holds something other than the session with
/// the spent token `spent`, for at most [`CATCH_UP_MS`]: the newer session, or the
/// same one when nothing arrived in time. `None` when nothing is stored any more.
async fn catch_up(config: &Config, spent: &str) -> Option<StoredSession> {
    let deadline = now_ms() + CATCH_UP_MS;
    loop {
        let stored = storage::load_session(&config.storage_key)?;
        if stored.refresh_token != spent || now_ms() >= deadline {
            return Some(stored);
        }
        TimeoutFuture::new(CATCH_UP_POLL_MS).await;
    }
}

/// Sleeps `ms`, or less if [`retry_now`] is called.
async fn wait(ms: i64) {
    let (wake, woken) = oneshot::channel();
    WAKE.with(|w| *w.borrow_mut() = Some(wake));
    let ms = ms.clamp(0, i32::MAX as i64) as u32;
    select(TimeoutFuture::new(ms), woken).await;
    WAKE.with(|w| *w.borrow_mut() = None);
}

/// A proactive refresh, if one is due.
pub(crate) async fn refresh_if_due() {
    if session().is_some_and(|s| s.refresh_due(now_ms())) {
        refresh_now().await;
    }
}

/// A proactive refresh of the tokens this tab holds (joining one in flight).
pub(crate) async fn refresh_now() {
    if let Some(current) = session() {
        let _ = refresh_after(&current.access_token).await;
    }
}
