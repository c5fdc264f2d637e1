//! The browser runtime: the session in memory, kept equal to `localStorage` across
//! tabs, the calls that use it, and the refresh machine ([`crate::refresh`], driven by
//! [`driver`]) with the page events and timers that feed it.
//!
//! A browser tab runs one thread, so all of the runtime's state is one thread-local
//! [`Runtime`] with `RefCell`s; no borrow is ever held across an `.await` or a call out
//! to listeners.

mod dpop;
mod driver;
mod events;
mod http;
mod lock;
mod storage;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use baton_shared::{TokenPair, User, TOKEN_TYPE_DPOP};
use gloo_timers::callback::Timeout;
use uuid::Uuid;

use crate::error::{classify_api_answer, error_from_answer, ApiVerdict, ClientError};
use crate::status::{
    self, Connection, EndHandler, EndReason, Listeners, SessionEnd, SessionInfo, Snapshot,
};
use crate::stored::{Ended, StoredSession};
use crate::{nav, Answer, Config, Method, Subscription};

pub(crate) use driver::retry_now;

#[derive(Default)]
struct Runtime {
    config: RefCell<Config>,
    started: Cell<bool>,
    session: RefCell<Option<StoredSession>>,
    /// `localStorage` is unusable (it threw at the probe or refused a write): the
    /// session in memory is the only copy, and the refresh reads it instead.
    memory_only: Cell<bool>,
    connection: Cell<Option<Connection>>,
    listeners: RefCell<Listeners>,
    end_handler: RefCell<Option<EndHandler>>,
    /// Sessions this tab saw end (logout, refusal).
    ended: RefCell<Ended>,
    /// The refresh protocol's state, with the callers waiting for its outcome.
    refresh: RefCell<driver::Machine>,
    /// The proactive refresh, armed for the session in memory.
    refresh_timer: RefCell<Option<Timeout>>,
    /// The end of the refresh machine's backoff.
    backoff_timer: RefCell<Option<Timeout>>,
}

thread_local! {
    static RUNTIME: Runtime = Runtime::default();
}

fn with<R>(f: impl FnOnce(&Runtime) -> R) -> R {
    RUNTIME.with(f)
}

pub(crate) fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

pub(crate) fn random_id() -> String {
    format!(
        "{:08x}{:08x}",
        (js_sys::Math::random() * u32::MAX as f64) as u32,
        (js_sys::Math::random() * u32::MAX as f64) as u32
    )
}

fn config() -> Config {
    with(|rt| rt.config.borrow().clone())
}

pub(crate) fn init(config: Config) {
    with(|rt| *rt.config.borrow_mut() = config);
    let first = with(|rt| !rt.started.replace(true));
    if first {
        events::listen();
    }
    let key = self::config().storage_key;
    if !storage::probe(&key) {
        web_sys::console::warn_1(&"baton-client: no usable localStorage".into());
        with(|rt| rt.memory_only.set(true));
    }
    set_session(stored_session(), Persist::No);
}

fn ensure_started() {
    if !with(|rt| rt.started.get()) {
        init(config());
    }
}

pub(crate) fn snapshot() -> Snapshot {
    ensure_started();
    with(|rt| Snapshot {
        session: rt.session.borrow().as_ref().map(SessionInfo::from),
        connection: rt.connection.get().unwrap_or(Connection::Online),
        memory_only: rt.memory_only.get(),
    })
}

pub(crate) fn subscribe(listener: Rc<dyn Fn(&Snapshot)>) -> Subscription {
    with(|rt| rt.listeners.borrow_mut().add(listener))
}

pub(crate) fn unsubscribe(subscription: Subscription) {
    with(|rt| rt.listeners.borrow_mut().remove(subscription))
}

pub(crate) fn set_session_end_handler(handler: Option<EndHandler>) {
    with(|rt| *rt.end_handler.borrow_mut() = handler);
}

fn notify() {
    let snapshot = snapshot();
    with(|rt| status::notify(&rt.listeners, &snapshot));
}

/// The session in memory (the tokens this tab sends).
fn session() -> Option<StoredSession> {
    with(|rt| rt.session.borrow().clone())
}

/// The session as every tab shares it: in `localStorage`, or, where that is unusable,
/// this tab's memory (never "nothing", which would read as a logout elsewhere).
fn stored_session() -> Option<StoredSession> {
    if with(|rt| rt.memory_only.get()) {
        return session();
    }
    storage::load_session(&config().storage_key)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Persist {
    /// Also write (or remove) it in `localStorage`.
    Yes,
    /// It came from `localStorage`.
    No,
}

/// Replaces the session in memory, reschedules the proactive refresh, tells listeners.
fn set_session(session: Option<StoredSession>, persist: Persist) {
    let key = config().storage_key;
    if persist == Persist::Yes {
        match &session {
            // A refused write must not leave the spent refresh token stored for any
            // tab to present: it goes, and this tab keeps the session in memory.
            Some(s) if !storage::save_session(&key, s) => {
                storage::remove(&key);
                if !storage::save_session(&key, s) {
                    storage::remove(&key);
                    with(|rt| rt.memory_only.set(true));
                }
            }
            Some(_) => {}
            None => storage::remove(&key),
        }
    }
    let changed = with(|rt| {
        let mut current = rt.session.borrow_mut();
        let changed = *current != session;
        *current = session;
        changed
    });
    if changed {
        events::schedule_refresh();
        notify();
    }
}

fn mark_ended(session_id: Uuid) {
    with(|rt| rt.ended.borrow_mut().mark(session_id));
}

fn is_ended(session_id: Uuid) -> bool {
    with(|rt| rt.ended.borrow().contains(session_id))
}

fn set_connection(connection: Connection) {
    let changed = with(|rt| rt.connection.replace(Some(connection)) != Some(connection));
    if changed {
        notify();
    }
}

/// Path and query of the page, for `next=`.
fn current_path() -> Option<String> {
    let location = web_sys::window()?.location();
    Some(format!(
        "{}{}",
        location.pathname().ok()?,
        location.search().unwrap_or_default()
    ))
}

/// The session `session_id` is over. Clears it (unless another tab has meanwhile
/// stored a different session, which is adopted instead) and, if this tab was using
/// it, tells the app where to send the user.
fn end_session(reason: EndReason, session_id: Uuid) {
    let config = config();
    mark_ended(session_id);
    let stored = stored_session();
    let was_ours = with(|rt| {
        rt.session
            .borrow()
            .as_ref()
            .is_some_and(|s| s.session_id == session_id)
    });
    // Its DPoP key goes with it (this tab's copy of the session, or the stored one).
    let ours = with(|rt| rt.session.borrow().clone()).filter(|s| s.session_id == session_id);
    let key = ours.and_then(|s| s.dpop_key).or_else(|| {
        stored
            .as_ref()
            .filter(|s| s.session_id == session_id)?
            .dpop_key
            .clone()
    });
    if let Some(key) = key {
        dpop::delete(key);
    }
    match stored {
        Some(other) if other.session_id != session_id => {
            set_session(Some(other), Persist::No);
            return;
        }
        Some(_) => storage::remove(&config.storage_key),
        None => {}
    }
    if !was_ours {
        return;
    }
    set_session(None, Persist::No);
    set_connection(Connection::Online);
    let end = SessionEnd {
        reason,
        login_url: nav::login_url(&config.login_path, current_path().as_deref()),
    };
    let handler = with(|rt| rt.end_handler.borrow().clone());
    match handler {
        Some(handler) => handler(&end),
        None => {
            if let Some(window) = web_sys::window() {
                let _ = window.location().assign(&end.login_url);
            }
        }
    }
}

/// An exchange without the access token (register, login, logout).
pub(crate) async fn send_public(
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<Answer, ClientError> {
    let config = config();
    http::send(
        method,
        &config.url(path),
        body.as_deref(),
        http::Auth::None,
        config.request_timeout_ms,
    )
    .await
}

/// `POST url` without the access token, with a proof by DPoP key `key` if there is one
/// (login and refresh). Not an `async fn`: [`http::send`]'s one boxed future is enough.
pub(crate) fn send_proved<'a>(
    url: &'a str,
    body: Option<&'a str>,
    key: Option<&'a str>,
) -> http::Sending<'a> {
    let auth = match key {
        Some(key) => http::Auth::Dpop { key, token: None },
        None => http::Auth::None,
    };
    http::send(Method::Post, url, body, auth, config().request_timeout_ms)
}

/// `POST /api/auth/login` with a proof by a new DPoP key (unless the browser cannot
/// make one): the session is bound to it, and stored with the key's id.
pub(crate) async fn log_in(body: Option<String>) -> Result<User, ClientError> {
    ensure_started();
    let config = config();
    // A test (or a diagnosis) can make this browser skip Ed25519.
    let es256 =
        storage::get(&format!("{}.dpop-alg", config.storage_key)).as_deref() == Some("ES256");
    let key = dpop::create(es256).await;
    let url = config.url("/api/auth/login");
    let answer = send_proved(&url, body.as_deref(), key.as_deref())
        .await
        .and_then(Answer::into_result)
        .and_then(|answer| answer.json::<TokenPair>());
    // A server that did not bind the session (BATON_DPOP=off) gets Bearer calls.
    let pair = match answer {
        Ok(pair) if pair.token_type == TOKEN_TYPE_DPOP => Ok((pair, key)),
        other => {
            if let Some(key) = key {
                dpop::delete(key);
            }
            other.map(|pair| (pair, None))
        }
    };
    let (pair, key) = pair?;
    let user = pair.user.clone();
    // Whoever was logged in in this browser is logged out on the server, and every tab
    // moves to the new session when it is stored (overwritten, not removed first, so no
    // tab passes through "logged out"). A refresh of the old session still in flight
    // then finds another session stored and stores nothing.
    let previous = forget_sessions();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = log_out_on_server(previous).await;
    });
    start_session(pair, key);
    Ok(user)
}

/// An exchange with the access token: refreshed first if it is known to be stale,
/// refreshed and retried once on 401 `token_expired`, and the session ended on a 401
/// that refuses it.
pub(crate) async fn send_authed(
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<Answer, ClientError> {
    ensure_started();
    let config = config();
    let mut session = session().ok_or(ClientError::NotLoggedIn)?;
    if !session.access_usable(now_ms()) {
        session = renewed(session).await?;
    }
    let mut retried = false;
    loop {
        let auth = match &session.dpop_key {
            Some(key) => http::Auth::Dpop {
                key,
                token: Some(&session.access_token),
            },
            None => http::Auth::Bearer(&session.access_token),
        };
        let answer = http::send(
            method,
            &config.url(path),
            body.as_deref(),
            auth,
            config.request_timeout_ms,
        )
        .await?;
        if answer.is_success() {
            return Ok(answer);
        }
        let error = error_from_answer(answer.status, &answer.body);
        match classify_api_answer(answer.status, Some(error.code)) {
            ApiVerdict::RefreshAndRetry if !retried => {
                retried = true;
                session = renewed(session).await?;
            }
            ApiVerdict::EndSession(code) => {
                end_session(EndReason::Refused(code), session.session_id);
                return Err(ClientError::SessionEnded);
            }
            _ => {
                return Err(ClientError::Api {
                    status: answer.status,
                    error,
                })
            }
        }
    }
}

/// `stale` refreshed (or as another tab or caller refreshed it). Only the same session
/// will do: if another user logged in meanwhile, the call fails rather than being sent
/// under their identity.
async fn renewed(stale: StoredSession) -> Result<StoredSession, ClientError> {
    driver::refresh_after(&stale.access_token).await?;
    session()
        .filter(|s| s.session_id == stale.session_id)
        .ok_or(ClientError::SessionEnded)
}

/// Stores the tokens of a successful login, bound to DPoP key `key` if it is.
fn start_session(pair: TokenPair, key: Option<String>) {
    let session = StoredSession::from_pair(pair, now_ms(), 0).with_dpop_key(key);
    set_session(Some(session), Persist::Yes);
    set_connection(Connection::Online);
}

/// Forgets the session in this tab and in storage (so, through the `storage` event, in
/// every tab) before anything is awaited: a logout never waits for the refresh lock or
/// a hung refresh (whose answer then finds nothing stored and is dropped). Gives back
/// the refresh token of each session forgotten, for the server-side logout, which finds
/// a session from any token of its chain, so a token rotated meanwhile is no matter.
pub(crate) fn take_session() -> Vec<String> {
    ensure_started();
    let tokens = forget_sessions();
    storage::remove(&config().storage_key);
    set_session(None, Persist::No);
    set_connection(Connection::Online);
    // A refresh backing off ends now, and its callers with it.
    driver::retry_now();
    tokens
}

/// Marks the sessions stored and held here ended and deletes their DPoP keys; their
/// refresh tokens, for the server-side logout.
fn forget_sessions() -> Vec<String> {
    let mut tokens = Vec::new();
    for s in [stored_session(), session()].into_iter().flatten() {
        if !is_ended(s.session_id) {
            mark_ended(s.session_id);
            if let Some(key) = s.dpop_key {
                dpop::delete(key);
            }
            tokens.push(s.refresh_token);
        }
    }
    tokens
}

/// `POST /api/auth/logout` for each token, as `fetch` with `keepalive`: sent to the end
/// even if the page closes right after.
pub(crate) async fn log_out_on_server(tokens: Vec<String>) -> Result<(), ClientError> {
    let url = config().url("/api/auth/logout");
    let mut result = Ok(());
    for refresh_token in tokens {
        let body = crate::json_body(&baton_shared::RefreshRequest { refresh_token });
        let status = http::keepalive_post(&url, body.as_deref().unwrap_or_default()).await;
        if !(200..300).contains(&status) {
            result = Err(ClientError::Network(format!("logout answered {status}")));
        }
    }
    result
}
