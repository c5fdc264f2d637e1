//! The frame around every page: header with navigation and logout, the session
//! indicator, and the "Reconnecting…" notice.

use std::time::Duration;

use baton_client::Connection;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_location, use_navigate};

use crate::drafts;
use crate::format::{now_ms, remaining};
use crate::state::{app_state, Auth, Gate, WhenLoggedIn, LOGIN_PATH};

#[component]
pub fn Header() -> impl IntoView {
    let state = app_state();
    let navigate = use_navigate();
    let log_out = move |_| {
        let user = state.user_id_untracked();
        // Forget the session (and so stop every tab's use of it) in this very event,
        // before the login page is rendered: on a slow device that takes a while, and
        // the tab may be closed right after the click. What reacts to it on this page
        // runs after this handler, when the URL is already the login page's.
        let on_server = baton_client::api::auth::logout();
        navigate(LOGIN_PATH, Default::default());
        if let Some(user) = user {
            drafts::discard_all(user);
        }
        spawn_local(async move {
            let _ = on_server.await;
        });
    };
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <a class="brand" href="/">"Baton"</a>
            <nav aria-label="Main">
                <WhenLoggedIn class="nav-links">
                    <NavLink href="/notes" label="Notes"/>
                    <NavLink href="/devices" label="Devices"/>
                    <NavLink href="/account" label="Account"/>
                    <button type="button" class="secondary" data-testid="logout" on:click=log_out.clone()>
                        "Log out"
                    </button>
                </WhenLoggedIn>
                {move || (state.gate.get() == Gate::LoggedOut).then(|| view! {
                    <NavLink href="/login" label="Log in"/>
                    <NavLink href="/register" label="Register"/>
                })}
            </nav>
        </header>
        <WhenLoggedIn class="status-bar">
            <ConnectionNotice/>
            <SessionIndicator/>
        </WhenLoggedIn>
    }
}

/// A navigation link, marked `aria-current="page"` on its page (and the pages under
/// it). The router handles clicks on plain links, so no `<A>` is needed.
#[component]
fn NavLink(href: &'static str, label: &'static str) -> impl IntoView {
    let path = use_location().pathname;
    let current = move || {
        let path = path.get();
        (path == href || path.starts_with(&format!("{href}/"))).then_some("page")
    };
    view! { <a href=href aria-current=current>{label}</a> }
}

/// Non-blocking notice while refreshing fails (network, 429, 5xx). The session is
/// kept; the client retries on its own, or now with the button.
#[component]
fn ConnectionNotice() -> impl IntoView {
    let state = app_state();
    let reconnecting = move || match state.connection.get() {
        Connection::Online => None,
        Connection::Reconnecting { cooling_down, .. } => Some(cooling_down),
    };
    view! {
        {move || state.memory_only.get().then(|| view! {
            <p class="connection-notice" role="status" data-testid="storage-notice">
                "This browser does not let Baton store your login: you stay logged in in this tab only."
            </p>
        })}
        <div class="connection-notice" role="status" aria-live="polite" data-testid="connection-status">
            {move || reconnecting().map(|cooling_down| view! {
                <span class="reconnecting">
                    "Reconnecting…"
                    {cooling_down.then_some(" The server has not answered for a while; retrying every minute.")}
                </span>
                <button type="button" class="secondary small" on:click=|_| baton_client::retry_now()>
                    "Retry now"
                </button>
            })}
        </div>
    }
}

/// A small, collapsible view of the session: who, the access token's remaining life
/// (ticking), and how many times it was refreshed. Also a demo of single-flight
/// refresh: one button sends ten API calls at once.
#[component]
fn SessionIndicator() -> impl IntoView {
    let state = app_state();
    let now = RwSignal::new(now_ms());
    if let Ok(handle) = set_interval_with_handle(move || now.set(now_ms()), Duration::from_secs(1))
    {
        on_cleanup(move || handle.clear());
    }
    let burst = RwSignal::new(None::<(u32, u32)>);
    let send_ten = move |_| {
        burst.set(Some((0, 0)));
        for _ in 0..10 {
            spawn_local(async move {
                let ok = baton_client::api::me::get().await.is_ok();
                burst.update(|b| {
                    if let Some((done, succeeded)) = b {
                        *done += 1;
                        *succeeded += ok as u32;
                    }
                });
            });
        }
    };
    let session = move || match &*state.auth.read() {
        Auth::LoggedIn(s) => Some(s.clone()),
        _ => None,
    };
    let left = move || {
        let expires_at = session().map(|s| s.access_expires_at).unwrap_or(0);
        remaining(now.get(), expires_at)
    };
    // Built once per login (see `WhenLoggedIn`), so an open <details> stays open
    // across refreshes.
    view! {
        <details class="session-indicator" data-testid="session-indicator">
            <summary>"Session · " <span data-testid="access-remaining">{left}</span></summary>
            <dl>
                <dt>"User"</dt>
                <dd data-testid="session-user">{move || session().map(|s| s.user.username)}</dd>
                <dt>"Access token"</dt>
                <dd>
                    {left} " left of "
                    {move || session().map(|s| s.access_lifetime_ms / 1000)} " s"
                </dd>
                <dt>"Refreshes"</dt>
                <dd data-testid="refresh-count">{move || session().map(|s| s.refreshes)}</dd>
            </dl>
            <button type="button" class="secondary small" data-testid="burst" on:click=send_ten>
                "Send 10 API calls at once"
            </button>
            <p class="hint" data-testid="burst-result">
                {move || burst.get().map(|(done, ok)| format!("{ok} of {done} calls succeeded"))}
            </p>
        </details>
    }
}
