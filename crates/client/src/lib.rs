//! Baton's browser client: a fetch wrapper that keeps a user logged in.
//!
//! - The session (access token, refresh token, their expiry, the user, a refresh
//!   counter) lives in `localStorage` under one versioned key ([`Config::storage_key`]),
//!   so every tab of the origin shares it; anything unreadable there is discarded.
//! - Login makes a DPoP key (RFC 9449) with WebCrypto that no script can read, kept in
//!   IndexedDB for every tab of the origin, and binds the session to it; every call and
//!   every refresh then carries a proof by it, with the server's latest nonce (fetched
//!   ahead when missing, and retried once on `use_dpop_nonce`). Tokens copied out of
//!   `localStorage` are worthless elsewhere. `<storage_key>.dpop-alg` = `ES256` in
//!   `localStorage` skips Ed25519 (for tests).
//! - Every call goes through [`call`] (or the typed functions in [`api`]), which
//!   attaches `Authorization: DPoP` (or `Bearer` for a session the server did not
//!   bind). On 401 `token_expired`, and only that code, it
//!   refreshes and retries the call once. Concurrent calls share one refresh, and a
//!   Web Lock (or a `localStorage` lease where Web Locks are missing) lets one tab at a
//!   time refresh; a tab that waited re-reads the storage and uses what another tab
//!   obtained, waiting for it first if the storage has not caught up. The protocol is
//!   one state machine, [`refresh`].
//!   The refresh call itself is never retried on 401, so nothing can loop.
//! - Tokens are refreshed ahead of expiry while the page is visible, and when it
//!   becomes visible again after sleep.
//! - Only a definite refusal (401 `refresh_token_*`, `session_revoked`, ...) ends the
//!   session: storage is cleared and the app's [`on_session_end`] handler (by default a
//!   page load of `login_path?next=<where the user was>`) runs. A network error, 429
//!   or 5xx keeps the session: the refresh is retried with backoff and jitter, cooling
//!   down after repeated failures, and [`Snapshot::connection`] says `Reconnecting` so
//!   the app can show it.
//!
//! ```ignore
//! baton_client::init(baton_client::Config::default());
//! let user = baton_client::api::auth::login(&request).await?;
//! let notes = baton_client::api::notes::list().await?;
//! ```
//!
//! Outside the browser the crate compiles (for server-side rendering) but has no
//! session, and every call answers [`ClientError::Unsupported`].

pub mod api;
mod config;
mod error;
pub mod lease;
pub mod nav;
pub mod refresh;
mod status;
pub mod stored;
pub mod timing;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
use browser as runtime;
#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
use native as runtime;

use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use config::Config;
pub use error::{
    classify_api_answer, classify_refresh_failure, error_from_answer, parse_retry_after,
    ApiVerdict, ClientError, RefreshVerdict,
};
pub use status::{Connection, EndReason, SessionEnd, SessionInfo, Snapshot, Subscription};

/// HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// A raw answer: status, body text, and `Retry-After` in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after_ms: Option<i64>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn into_result(self) -> Result<Answer, ClientError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(ClientError::Api {
                status: self.status,
                error: error_from_answer(self.status, &self.body),
            })
        }
    }

    fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_str(&self.body).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// Starts the client (once per page; calling it again only replaces the
/// configuration and re-reads the storage). Call it in the browser, after hydration.
/// Every other function starts the client with [`Config::default`] if this was not
/// called.
pub fn init(config: Config) {
    runtime::init(config);
}

/// The current session and connection state.
pub fn snapshot() -> Snapshot {
    runtime::snapshot()
}

/// Calls `listener` with a new [`Snapshot`] whenever it changes: login, logout,
/// refresh (in any tab), or the connection state.
pub fn subscribe(listener: impl Fn(&Snapshot) + 'static) -> Subscription {
    runtime::subscribe(Rc::new(listener))
}

pub fn unsubscribe(subscription: Subscription) {
    runtime::unsubscribe(subscription)
}

/// Replaces what happens when the session ends without the user logging out here
/// (refused by the server, or logged out in another tab). The default loads
/// `end.login_url`; a router-based app navigates instead.
pub fn on_session_end(handler: impl Fn(&SessionEnd) + 'static) {
    runtime::set_session_end_handler(Some(Rc::new(handler)));
}

/// Retries a failing refresh now instead of waiting out its backoff.
pub fn retry_now() {
    runtime::retry_now();
}

/// JSON for a request body.
pub fn json_body<B: Serialize + ?Sized>(body: &B) -> Option<String> {
    serde_json::to_string(body).ok()
}

/// An authenticated call answering JSON.
pub async fn call<T: DeserializeOwned>(
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<T, ClientError> {
    runtime::send_authed(method, path, body)
        .await?
        .into_result()?
        .json()
}

/// An authenticated call answering 204 No Content.
pub async fn call_no_content(
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<(), ClientError> {
    runtime::send_authed(method, path, body)
        .await?
        .into_result()
        .map(drop)
}

/// A call without the access token (register, login, logout).
pub async fn call_public(
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<Answer, ClientError> {
    runtime::send_public(method, path, body)
        .await?
        .into_result()
}

/// Never-throwing `localStorage` access for apps (drafts, preferences): a browser
/// that refuses storage behaves like an empty one; outside the browser it is always
/// empty.
pub mod local_storage {
    #[cfg(target_arch = "wasm32")]
    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    pub fn get(key: &str) -> Option<String> {
        #[cfg(target_arch = "wasm32")]
        return storage()?.get_item(key).ok()?;
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = key;
            None
        }
    }

    /// False if the browser refused (full, disabled) or there is no browser.
    pub fn set(key: &str, value: &str) -> bool {
        #[cfg(target_arch = "wasm32")]
        return storage().is_some_and(|s| s.set_item(key, value).is_ok());
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (key, value);
            false
        }
    }

    pub fn remove(key: &str) {
        #[cfg(target_arch = "wasm32")]
        if let Some(s) = storage() {
            let _ = s.remove_item(key);
        }
        #[cfg(not(target_arch = "wasm32"))]
        let _ = key;
    }

    /// Every key starting with `prefix`.
    pub fn keys_with_prefix(prefix: &str) -> Vec<String> {
        #[cfg(target_arch = "wasm32")]
        {
            let Some(s) = storage() else {
                return Vec::new();
            };
            let n = s.length().unwrap_or(0);
            (0..n)
                .filter_map(|i| s.key(i).ok().flatten())
                .filter(|k| k.starts_with(prefix))
                .collect()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = prefix;
            Vec::new()
        }
    }
}
