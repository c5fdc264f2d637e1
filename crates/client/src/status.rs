//! What the client tells the app: who is logged in, how long the access token has
//! left, and whether refreshing is currently failing. Apps subscribe and render it
//! (a Leptos app copies it into a signal).

use std::cell::RefCell;
use std::rc::Rc;

use baton_shared::{ErrorCode, User};
use uuid::Uuid;

use crate::stored::StoredSession;

/// The logged-in session, without its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub user: User,
    pub session_id: Uuid,
    /// When the access token expires (ms since the epoch, this browser's clock).
    pub access_expires_at: i64,
    /// How long access tokens of this session live, in milliseconds.
    pub access_lifetime_ms: i64,
    /// How many times the tokens were refreshed, by any tab.
    pub refreshes: u32,
}

impl From<&StoredSession> for SessionInfo {
    fn from(s: &StoredSession) -> Self {
        Self {
            user: s.user.clone(),
            session_id: s.session_id,
            access_expires_at: s.access_expires_at,
            access_lifetime_ms: s.access_lifetime_ms(),
            refreshes: s.refreshes,
        }
    }
}

/// Whether the client can currently refresh tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Online,
    /// Refreshing failed `failures` times in a row (network, 429, 5xx); the next
    /// attempt is at `retry_at` (ms since the epoch). The session is kept.
    Reconnecting {
        failures: u32,
        retry_at: i64,
        cooling_down: bool,
    },
}

/// Everything a subscriber is told, whole, on every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub session: Option<SessionInfo>,
    pub connection: Connection,
    /// The browser refuses to store the session (site data blocked, storage full): it
    /// lives in this tab's memory only, and other tabs or a reload do not share it.
    pub memory_only: bool,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            session: None,
            connection: Connection::Online,
            memory_only: false,
        }
    }
}

/// Why a session ended without the user logging out in this tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The server refused the session (`refresh_token_*`, `session_revoked`, ...).
    Refused(ErrorCode),
    /// The stored session disappeared: the user logged out in another tab.
    SignedOutElsewhere,
}

/// Told to the app's session-end handler: the session is gone; send the user to
/// `login_url` (which carries `next=<where they were>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    pub reason: EndReason,
    pub login_url: String,
}

/// Handle of a subscription; pass it to [`unsubscribe`](crate::unsubscribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subscription(u64);

type Listener = Rc<dyn Fn(&Snapshot)>;

/// What runs when a session ends (see [`crate::on_session_end`]).
pub(crate) type EndHandler = Rc<dyn Fn(&SessionEnd)>;

/// The subscribers of one client (one per thread, i.e. per browser tab).
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: u64,
    listeners: Vec<(u64, Listener)>,
}

impl Listeners {
    pub(crate) fn add(&mut self, listener: Listener) -> Subscription {
        self.next_id += 1;
        self.listeners.push((self.next_id, listener));
        Subscription(self.next_id)
    }

    pub(crate) fn remove(&mut self, subscription: Subscription) {
        self.listeners.retain(|(id, _)| *id != subscription.0);
    }

    fn all(&self) -> Vec<Listener> {
        self.listeners.iter().map(|(_, l)| l.clone()).collect()
    }
}

/// Calls every listener with `snapshot`. The list is copied first, so a listener may
/// subscribe or unsubscribe while being called.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn notify(listeners: &RefCell<Listeners>, snapshot: &Snapshot) {
    let all = listeners.borrow().all();
    for listener in all {
        listener(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn listeners_can_unsubscribe_while_being_notified() {
        let listeners = Rc::new(RefCell::new(Listeners::default()));
        let calls = Rc::new(Cell::new(0));
        let first = {
            let calls = calls.clone();
            listeners
                .borrow_mut()
                .add(Rc::new(move |_: &Snapshot| calls.set(calls.get() + 1)))
        };
        {
            let inner = listeners.clone();
            listeners.borrow_mut().add(Rc::new(move |_: &Snapshot| {
                inner.borrow_mut().remove(first);
            }));
        }
        notify(&listeners, &Snapshot::default());
        notify(&listeners, &Snapshot::default());
        assert_eq!(calls.get(), 1);
    }
}
