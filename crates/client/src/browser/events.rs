//! What keeps a tab current without any API call: the `storage` event (another tab
//! refreshed, logged in or out), the proactive-refresh timer, `visibilitychange` and
//! `online`.

use gloo_timers::callback::Timeout;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::driver::{look_again, refresh_after, retry_now};
use super::lock;
use super::{
    config, end_session, is_ended, now_ms, session, set_session, storage, stored_session, with,
    Persist,
};
use crate::status::EndReason;

/// Attaches the page-lifetime listeners (once per page).
pub(crate) fn listen() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let on_storage = Closure::<dyn Fn(web_sys::StorageEvent)>::new(on_storage);
    let _ = window.add_event_listener_with_callback("storage", on_storage.as_ref().unchecked_ref());
    on_storage.forget();

    let on_visible = Closure::<dyn Fn()>::new(on_visible);
    if let Some(document) = window.document() {
        let _ = document.add_event_listener_with_callback(
            "visibilitychange",
            on_visible.as_ref().unchecked_ref(),
        );
    }
    let _ =
        window.add_event_listener_with_callback("pageshow", on_visible.as_ref().unchecked_ref());
    on_visible.forget();

    let on_online = Closure::<dyn Fn()>::new(retry_now);
    let _ = window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
    on_online.forget();

    let on_hide = Closure::<dyn Fn()>::new(|| lock::release_on_hide(&config().lock_name()));
    let _ = window.add_event_listener_with_callback("pagehide", on_hide.as_ref().unchecked_ref());
    on_hide.forget();
}

fn on_storage(event: web_sys::StorageEvent) {
    let key = config().storage_key;
    // `key` is null when the whole storage was cleared.
    if event.key().is_some_and(|k| k != key) {
        return;
    }
    catch_up();
}

/// Takes on what storage holds: another tab's tokens, login or logout.
fn catch_up() {
    match stored_session() {
        // Another tab wrote a session this tab saw end (it finished a refresh just as
        // the user logged out here): it stays ended, for every tab.
        Some(stored) if is_ended(stored.session_id) => storage::remove(&config().storage_key),
        Some(stored) => {
            set_session(Some(stored), Persist::No);
            // Another tab's tokens (or login) end this tab's wait for its own refresh.
            look_again();
        }
        None => {
            if let Some(s) = session() {
                end_session(EndReason::SignedOutElsewhere, s.session_id);
            }
        }
    }
}

fn visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
}

fn on_visible() {
    if !visible() {
        return;
    }
    // Back from sleep, another tab, a freeze or the back/forward cache, where `storage`
    // events may have been missed: catch up with what other tabs stored (a logout or
    // another user included), and refresh first if the token went stale meanwhile.
    catch_up();
    retry_now();
    if session().is_some_and(|s| s.refresh_due(now_ms())) {
        wasm_bindgen_futures::spawn_local(refresh_now());
    }
}

/// A proactive refresh of the tokens this tab holds (joining one in flight).
async fn refresh_now() {
    if let Some(current) = session() {
        let _ = refresh_after(&current.access_token).await;
    }
}

/// (Re)arms the proactive refresh for the session in memory.
pub(crate) fn schedule_refresh() {
    let next = session().map(|s| s.proactive_refresh_in(now_ms(), js_sys::Math::random()));
    let timer = next.map(|delay| {
        Timeout::new(delay, || {
            // A hidden tab leaves it to visible ones (or to its own return, see
            // `on_visible`). The timer is re-armed on every session change, so when it
            // fires, the session it was armed for is the current one.
            if visible() {
                wasm_bindgen_futures::spawn_local(refresh_now());
            }
        })
    });
    // Dropping the previous `Timeout` cancels it.
    with(|rt| *rt.refresh_timer.borrow_mut() = timer);
}
