//! How an app configures the client.

use crate::timing::Backoff;

/// Client settings. [`Config::default`] fits an app served by the Baton server itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Prefix of every API URL: empty for the same origin, or e.g.
    /// `https://auth.example.com` (no trailing slash).
    pub base_url: String,
    /// The `localStorage` key holding the session. Versioned: change it (or
    /// [`crate::stored::FORMAT_VERSION`]) when the stored layout changes.
    pub storage_key: String,
    /// The app's login page; the user is sent to `login_path?next=<where they were>`
    /// when their session is refused.
    pub login_path: String,
    /// A request without an answer after this long counts as a network error.
    pub request_timeout_ms: u32,
    /// A refresh without an answer after this long is retried (its answer is still
    /// used if it comes). Longer than the server's own longest wait before it answers
    /// (5 s on SQLite's busy lock, then 503), so that answer is heard; and the retry
    /// must reach the server inside its reuse grace window (`BATON_REUSE_GRACE`, 10 s
    /// by default): this plus the first backoff (at most 1.25 × `backoff.base_ms`)
    /// must stay under it.
    pub refresh_timeout_ms: u32,
    /// A call waiting for a refresh fails (as a network error) after this long; the
    /// refresh carries on.
    pub call_deadline_ms: u32,
    /// Retry schedule of a refresh that failed without being refused.
    pub backoff: Backoff,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            storage_key: "baton.session.v1".into(),
            login_path: "/login".into(),
            request_timeout_ms: 20_000,
            refresh_timeout_ms: 7_000,
            call_deadline_ms: 15_000,
            backoff: Backoff::default(),
        }
    }
}

impl Config {
    /// Name of the Web Lock (or the `localStorage` lease) that lets one tab at a time
    /// refresh.
    pub fn lock_name(&self) -> String {
        format!("{}.refresh-lock", self.storage_key)
    }

    /// Full URL of an API path such as `/api/notes`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}
