//! The refresh protocol of one tab, as a state machine that does no I/O.
//!
//! A tab needs new tokens when a call met 401 `token_expired`, when the access token it
//! holds is too close to expiry to send, and ahead of expiry (the proactive timer).
//! However many callers ask, one refresh runs in the tab (a *flight*: from the first
//! caller to the outcome every caller is told), and across tabs one at a time, under the
//! refresh lock (a Web Lock, or the `localStorage` lease of [`crate::lease`]).
//!
//! [`Machine::step`] takes an [`Event`] (a caller asking, or the result of an I/O the
//! machine asked for) and returns the [`Effect`]s to carry out, in order. The browser
//! runtime (`browser/driver.rs`) carries them out and feeds every result back as an
//! event; nothing else drives the refresh. Each I/O carries the [`Ticket`] it was asked
//! with, and an answer whose ticket is not the one the machine awaits is stale: it is
//! dropped (a lock it brings is released at once).
//!
//! | state | awaits | event | next state | effects |
//! |---|---|---|---|---|
//! | any | | `Need`, no session held | same | tell that caller `SessionEnded` |
//! | any | | `Need`, the held access token is not the stale one and usable | same | tell that caller `Ok` |
//! | `Idle` | a caller | `Need` | `Locking` | `Lock` |
//! | busy | | `Need` | same | the caller joins the flight |
//! | `Locking` | the refresh lock | `Locked`, nothing stored | `Idle` | *gone* |
//! | `Locking` | | `Locked`, a session stored | `Checking` | `CheckMark` of its refresh token |
//! | `Checking` | the lock manager | `Checked`, no mark | *decide* | |
//! | `Checking` | | `Checked`, marked | as `Polled` | |
//! | `CatchingUp` | a read of storage | `Polled`, nothing stored | `Idle` | *gone* |
//! | `CatchingUp` | | `Polled`, another token, or [`CATCH_UP_MS`] passed | *decide* | |
//! | `CatchingUp` | | `Polled`, still the spent token | `CatchingUp` | `Poll` |
//! | *decide* | | another session stored (another user logged in) | `Idle` | `Adopt`, `Unlock`, *done* `SessionEnded` |
//! | *decide* | | stored token not the flight's, access usable | `Idle` | `Adopt`, `Unlock`, *done* `Ok` |
//! | *decide* | | the stored session's wait (after a failure) is not over | `BackingOff` | `Unlock`, `Connection(Reconnecting)`, `Sleep` until then |
//! | *decide* | | otherwise | `Requesting` | `Send` the stored refresh token |
//! | `Requesting` | the server | `Answered`, tokens, storage still holds the presented token | `Marking` | `Mark` the presented token spent |
//! | `Requesting` | | `Answered`, tokens, storage holds something else | *moved on* | |
//! | `Requesting` | | `Answered`, refused | `Idle` | `Unlock`, `End`, *done* `SessionEnded` |
//! | `Requesting` | | `Answered`, failed (network, 429, 5xx) | `BackingOff` | `StoreWait` beside the tokens (if storage still holds the presented one), `Unlock`, `Connection(Reconnecting)`, `Sleep` |
//! | `Marking` | the spent mark | `Marked`, storage still holds the presented token | `Idle` | `Store` the new tokens, `Unlock`, *done* `Ok` |
//! | `Marking` | | `Marked`, storage holds something else | *moved on* | |
//! | *moved on* | | nothing stored (logged out meanwhile) | `Idle` | *gone* |
//! | *moved on* | | otherwise | *decide* | |
//! | `BackingOff` | a timer | `Slept`, `Stored`, or `Wake` (the next *decide* skips the client backoff) | `Locking` | `Lock` |
//! | not `BackingOff` | | `Wake`, `Stored` | same | |
//! | any | | `Late`, tokens, storage still holds the token it was asked with | as `Wake` | `Store` the new tokens first |
//! | any | | `Late`, otherwise | same | |
//!
//! *gone* is `Unlock`, `EndHeld` (the user logged out in another tab), *done*
//! `SessionEnded`; *done* is `Connection(Online)` and `Settle`: every caller of the
//! flight is told the outcome. Whatever this tab writes to storage (`Store`) comes before
//! `Unlock`, so the next tab to hold the lock can find it.
//!
//! A failed refresh's wait is shared: the server's `Retry-After` and the backoff go into
//! the session's document ([`StoredSession::wait_until`]), so every tab, and a tab reloaded meanwhile,
//! waits them out before presenting the token. A wake-up (back online, visible again,
//! "Retry now") skips only the backoff, never the server's `Retry-After`. The next tokens
//! come without a wait.
//!
//! Every commit is a compare-and-set: new tokens are stored only while storage still
//! holds the token they were asked with (so neither a logout nor another user's login
//! meanwhile is overwritten), and a flight never ends `Ok` on another session's tokens.
//!
//! # Handing tokens from one tab to the next
//!
//! Chromium keeps a copy of `localStorage` in each renderer process and brings the
//! copies up to date asynchronously. So a tab can be granted the refresh lock before the
//! tokens the previous holder stored have reached it, read the old refresh token, and
//! present a token that was just spent. The server's grace window forgives that, but a
//! client should not lean on it.
//!
//! The lock manager has no such lag: it is one queue in the browser process. A tab that
//! spends a refresh token therefore takes a second Web Lock, named after that token
//! ([`spent_mark`]), before it lets go of the refresh lock (`Marking`), and holds it for
//! [`SPENT_MARK_MS`]. The next tab, before presenting a token, asks the lock manager
//! whether that token's mark is held (`Checking`); if it is, it waits (`CatchingUp`, up
//! to [`CATCH_UP_MS`]) for the new tokens to arrive in its `localStorage` and uses them
//! instead. Without Web Locks the mark is never held and this costs nothing.

use baton_shared::{ErrorCode, TokenPair};
use uuid::Uuid;

use crate::error::{classify_refresh_failure, error_from_answer, RefreshVerdict};
use crate::status::{Connection, EndReason};
use crate::stored::StoredSession;
use crate::timing::Backoff;
use crate::{Answer, ClientError};

/// How long a tab keeps the mark of a token it spent: far longer than a write takes to
/// reach other tabs, and about the server's default grace window.
pub const SPENT_MARK_MS: u32 = 10_000;

/// How long a tab that sees the mark waits for the new tokens before presenting the old
/// one anyway (the server's grace window then still answers it).
pub const CATCH_UP_MS: i64 = 3_000;

/// How often a tab that waits re-reads `localStorage`.
pub const CATCH_UP_POLL_MS: u32 = 20;

/// Name of the Web Lock that marks `refresh_token` as spent. It carries a 64-bit digest
/// of the token, not the token: lock names can be listed by any script of the origin.
pub fn spent_mark(lock_name: &str, refresh_token: &str) -> String {
    format!("{lock_name}.spent.{:016x}", fnv1a(refresh_token.as_bytes()))
}

/// FNV-1a, 64-bit. Not a cryptographic hash, and it need not be: the token is 256 random
/// bits already spent when its mark is taken, and a collision only makes a tab wait.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What every caller of a flight is told.
pub type Outcome = Result<(), ClientError>;

/// Names one I/O the machine asked for; its result comes back with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u32);

/// What the answer to `POST /api/auth/refresh` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// New tokens.
    Tokens(TokenPair),
    /// A definite refusal: the session is over.
    Refused(ErrorCode),
    /// No usable answer (network error, timeout, 429, 5xx, a body we cannot read).
    Failed { retry_after_ms: Option<i64> },
}

impl Reply {
    pub fn read(answer: Result<Answer, ClientError>) -> Reply {
        let failed = Reply::Failed {
            retry_after_ms: None,
        };
        let Ok(answer) = answer else {
            return failed;
        };
        if answer.is_success() {
            return serde_json::from_str(&answer.body).map_or(failed, Reply::Tokens);
        }
        let error = error_from_answer(answer.status, &answer.body);
        match classify_refresh_failure(Some(answer.status), Some(error.code)) {
            RefreshVerdict::Refused(code) => Reply::Refused(code),
            RefreshVerdict::Failed => Reply::Failed {
                retry_after_ms: answer.retry_after_ms,
            },
        }
    }
}

/// What the machine is told. `W` is how a caller waits for the outcome, `L` a held
/// refresh lock (released when dropped). `stored` is what `localStorage` held when the
/// I/O finished.
pub enum Event<W, L> {
    /// A caller needs an access token other than `stale_access`; `held` is the session
    /// this tab holds in memory.
    Need {
        stale_access: String,
        held: Option<StoredSession>,
        waiter: W,
    },
    Locked {
        ticket: Ticket,
        lock: L,
        stored: Option<StoredSession>,
    },
    /// Whether the spent mark of the stored refresh token is held by some tab.
    Checked {
        ticket: Ticket,
        marked: bool,
        stored: Option<StoredSession>,
    },
    Polled {
        ticket: Ticket,
        stored: Option<StoredSession>,
    },
    Answered {
        ticket: Ticket,
        reply: Reply,
        stored: Option<StoredSession>,
    },
    Marked {
        ticket: Ticket,
        stored: Option<StoredSession>,
    },
    /// The answer to a refresh request given up on (its timeout passed) came after
    /// all: `presented` is the refresh token it was asked with.
    Late {
        presented: String,
        reply: Reply,
        stored: Option<StoredSession>,
    },
    Slept {
        ticket: Ticket,
    },
    /// Retry now instead of waiting out the backoff (`online`, the page becoming
    /// visible, the user asking), though never before a server's `Retry-After`.
    Wake,
    /// Another tab changed the stored session: a flight backing off looks at it now
    /// (new tokens end its wait; a wait stored beside the same tokens does not).
    Stored,
}

impl<W, L> Event<W, L> {
    fn ticket(&self) -> Option<Ticket> {
        match self {
            Event::Need { .. } | Event::Wake | Event::Stored | Event::Late { .. } => None,
            Event::Locked { ticket, .. }
            | Event::Checked { ticket, .. }
            | Event::Polled { ticket, .. }
            | Event::Answered { ticket, .. }
            | Event::Marked { ticket, .. }
            | Event::Slept { ticket } => Some(*ticket),
        }
    }
}

/// I/O the machine asks for. Its result comes back as the event named, with the ticket
/// it was asked with.
#[cfg_attr(test, derive(Debug, PartialEq))]
pub enum Io {
    /// Queue for the refresh lock: `Locked`.
    Lock,
    /// Ask whether some tab holds the spent mark of this refresh token: `Checked`.
    CheckMark(String),
    /// Read storage again after [`CATCH_UP_POLL_MS`]: `Polled`.
    Poll,
    /// `POST /api/auth/refresh` with this refresh token: `Answered`.
    Send(String),
    /// Take the spent mark of this refresh token for [`SPENT_MARK_MS`], not waiting if
    /// another tab has it: `Marked`.
    Mark(String),
    /// Sleep this many milliseconds: `Slept`.
    Sleep(u32),
}

/// What the runtime does for the machine.
#[cfg_attr(test, derive(Debug, PartialEq))]
pub enum Effect<W, L> {
    Io(Ticket, Io),
    Unlock(L),
    /// Use this session, read from storage (another tab stored it).
    Adopt(StoredSession),
    /// Write this session to storage, and use it.
    Store(StoredSession),
    /// The same tokens with a failure's wait: write it if storage takes it (a refused
    /// write loses only the wait, never the tokens), and use it.
    StoreWait(StoredSession),
    /// The server refused this session.
    End(EndReason, Uuid),
    /// Nothing is stored any more: end the session this tab holds, as logged out in
    /// another tab.
    EndHeld,
    Connection(Connection),
    /// Tell these callers the outcome.
    Settle(Vec<W>, Outcome),
}

/// What the machine reads besides the event: the clock, a random number in `[0, 1)` for
/// the backoff's jitter, the retry schedule.
pub struct Ctx {
    pub now_ms: i64,
    pub jitter: f64,
    pub backoff: Backoff,
}

mod machine;

pub use machine::Machine;

#[cfg(test)]
mod tests;
