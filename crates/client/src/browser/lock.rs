//! One refresh at a time across every tab of the origin.
//!
//! With the Web Locks API (`navigator.locks.request`), the browser queues the tabs and
//! releases a lock when its tab closes. web-sys only exposes it behind
//! `web_sys_unstable_apis`, so it is bound here by hand. Where it is missing (old
//! browsers, pages not served from a secure context) a `localStorage` lease stands in,
//! see [`crate::lease`]. When the locks are taken and released is decided by the
//! refresh machine, [`crate::refresh`].

use std::future::Future;
use std::pin::Pin;

use futures::channel::oneshot;
use futures::future::{select, Either};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::{now_ms, random_id, storage};
use crate::lease::{self, LeaseCheck};

#[wasm_bindgen]
extern "C" {
    type LockManager;

    #[wasm_bindgen(method, js_name = request)]
    fn request(this: &LockManager, name: &str, callback: &js_sys::Function) -> js_sys::Promise;

    #[wasm_bindgen(method, js_name = request)]
    fn request_with_options(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &js_sys::Function,
    ) -> js_sys::Promise;
}

fn lock_manager() -> Option<LockManager> {
    let navigator = web_sys::window()?.navigator();
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    let request = js_sys::Reflect::get(&locks, &JsValue::from_str("request")).ok()?;
    request.is_function().then(|| locks.unchecked_into())
}

/// A held refresh lock: a Web Lock, or the lease standing in for one. Released when
/// dropped (also when the future holding it is cancelled, or the tab closes).
pub(crate) enum Held {
    Web(WebLock),
    Lease(Lease),
}

impl Held {
    pub(crate) fn release(self) {
        match self {
            Held::Web(lock) => drop(lock),
            Held::Lease(lease) => drop(lease),
        }
    }
}

/// Waits for the exclusive lock `name`.
pub(crate) fn acquire(name: String) -> Pin<Box<dyn Future<Output = Held>>> {
    Box::pin(async move {
        if let Some(manager) = lock_manager() {
            if let Grant::Held(held) = web_lock(&manager, &name, Wait::Yes).await {
                return Held::Web(held);
            }
        }
        Held::Lease(lease(&name).await)
    })
}

/// Takes the Web Lock `name`, if no tab holds it, and keeps it for `hold_ms` (or until
/// the tab closes); returns once it is held or known to be taken, never waiting for it.
/// Without Web Locks it does nothing. See [`crate::handoff`].
pub(crate) async fn hold_for(name: &str, hold_ms: u32) {
    let Some(manager) = lock_manager() else {
        return;
    };
    if let Grant::Held(held) = web_lock(&manager, name, Wait::No).await {
        wasm_bindgen_futures::spawn_local(async move {
            TimeoutFuture::new(hold_ms).await;
            drop(held);
        });
    }
}

/// True if some tab of the origin holds the Web Lock `name` now (asked as a request
/// with `ifAvailable`, released at once if granted). False without Web Locks.
pub(crate) async fn is_held(name: &str) -> bool {
    let Some(manager) = lock_manager() else {
        return false;
    };
    matches!(web_lock(&manager, name, Wait::No).await, Grant::Taken)
}

/// Releases a Web Lock when dropped (also when the future holding it is cancelled).
pub(crate) struct WebLock(js_sys::Function);

impl Drop for WebLock {
    fn drop(&mut self) {
        let _ = self.0.call0(&JsValue::UNDEFINED);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Queue for the lock.
    Yes,
    /// Take it only if it is free now (`ifAvailable`).
    No,
}

enum Grant {
    Held(WebLock),
    /// Another holder has it (only with [`Wait::No`]).
    Taken,
    /// The browser refused the request (e.g. an opaque origin).
    Refused,
}

/// Requests the Web Lock `name`.
async fn web_lock(manager: &LockManager, name: &str, wait: Wait) -> Grant {
    let mut resolve = None;
    // The lock is held until the promise the callback returns settles.
    let release = js_sys::Promise::new(&mut |res, _rej| resolve = Some(res));
    let Some(resolve) = resolve else {
        return Grant::Refused;
    };
    let held = WebLock(resolve);
    let (granted_tx, granted_rx) = oneshot::channel::<bool>();
    let callback = Callback(Some(Closure::once(move |lock: JsValue| -> JsValue {
        // `null` when `ifAvailable` found the lock taken.
        let granted = !lock.is_null();
        let _ = granted_tx.send(granted);
        if granted {
            release.into()
        } else {
            JsValue::UNDEFINED
        }
    })));
    let function: &js_sys::Function = match &callback.0 {
        Some(closure) => closure.as_ref().unchecked_ref(),
        None => return Grant::Refused,
    };
    let requested = match wait {
        Wait::Yes => manager.request(name, function),
        Wait::No => {
            let options = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
            manager.request_with_options(name, &options, function)
        }
    };
    let grant = match select(granted_rx, JsFuture::from(requested)).await {
        Either::Left((Ok(true), _)) => Grant::Held(held),
        Either::Left((Ok(false), _)) => Grant::Taken,
        // The request promise settled before the callback ran: it was rejected.
        _ => Grant::Refused,
    };
    callback.settled();
    grant
}

/// The lock request's callback. Once the request has settled, the browser has called it
/// or never will (a rejected request), and it is freed; a request given up while still
/// queued leaves it to the browser, which calls it when the lock comes (and the lock is
/// then released at once, its holder gone).
struct Callback(Option<Closure<dyn FnMut(JsValue) -> JsValue>>);

impl Callback {
    fn settled(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if let Some(closure) = self.0.take() {
            closure.forget();
        }
    }
}

/// Releases a `localStorage` lease when dropped, if it is still ours.
pub(crate) struct Lease {
    key: String,
    me: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        release_lease(&self.key, &self.me);
    }
}

fn release_lease(key: &str, me: &str) {
    if lease::check(storage::get(key).as_deref(), me, now_ms()) == LeaseCheck::Held {
        storage::remove(key);
    }
}

fn lease_key(name: &str) -> String {
    format!("{name}.lease")
}

thread_local! {
    /// Whose leases this tab's are: one owner per tab, so that the tab can give its
    /// lease back as it goes away (one refresh at a time runs in a tab).
    static TAB: String = random_id();
}

/// The page is going away (closed, reloaded, navigated, or into the back/forward
/// cache): give back the lease `name` if this tab holds it, so the next tab need not
/// wait it out. Its refresh, if one was in flight, will not be stored here; the next
/// tab presents the same token, inside the server's grace window.
pub(crate) fn release_on_hide(name: &str) {
    TAB.with(|me| release_lease(&lease_key(name), me));
}

async fn lease(name: &str) -> Lease {
    let held = Lease {
        key: lease_key(name),
        me: TAB.with(String::clone),
    };
    if !storage::available() {
        // Nothing to coordinate through; the re-read of the tokens is all we have.
        return held;
    }
    loop {
        let now = now_ms();
        match lease::check(storage::get(&held.key).as_deref(), &held.me, now) {
            LeaseCheck::Held => return held,
            LeaseCheck::Free => {
                if !storage::set(&held.key, &lease::new_lease(&held.me, now)) {
                    return held;
                }
                // Let a tab that wrote at the same moment win or lose visibly.
                TimeoutFuture::new(20 + (js_sys::Math::random() * 30.0) as u32).await;
            }
            LeaseCheck::Taken => {
                TimeoutFuture::new(50 + (js_sys::Math::random() * 100.0) as u32).await;
            }
        }
    }
}
