//! What every page shares: who is logged in (as far as this tab knows), whether
//! refreshing is failing, and a one-shot message for the next page.
//!
//! Tokens live in `localStorage`, which the server cannot see, so the server renders
//! every page as if the session were unknown; the browser reads the session only after
//! hydration (in [`ClientBridge`]'s effect), and the reactive state then updates the
//! page. Reading storage earlier would make the first client render differ from the
//! server's HTML.

use baton_client::{Config, Connection, EndReason, SessionInfo, Snapshot};
use baton_shared::User;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;
use uuid::Uuid;

/// The login page.
pub const LOGIN_PATH: &str = "/login";
/// Where a login goes without a `next`.
pub const HOME_PATH: &str = "/notes";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Server rendering and the first moments after hydration.
    Unknown,
    LoggedOut,
    LoggedIn(SessionInfo),
}

/// The part of [`Auth`] that decides what a protected page shows; it changes on login
/// and logout, not on every refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Unknown,
    LoggedOut,
    LoggedIn(Uuid),
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub auth: RwSignal<Auth>,
    pub connection: RwSignal<Connection>,
    /// The session lives in this tab only (the browser refuses to store it).
    pub memory_only: RwSignal<bool>,
    /// True once the client runs (after hydration); forms are disabled until then.
    pub hydrated: RwSignal<bool>,
    /// A message for the next page (e.g. why the user is on the login page).
    pub flash: RwSignal<Option<String>>,
    pub gate: Memo<Gate>,
}

impl AppState {
    pub fn new() -> Self {
        let auth = RwSignal::new(Auth::Unknown);
        let gate = Memo::new(move |_| match &*auth.read() {
            Auth::Unknown => Gate::Unknown,
            Auth::LoggedOut => Gate::LoggedOut,
            Auth::LoggedIn(s) => Gate::LoggedIn(s.user.id),
        });
        Self {
            auth,
            connection: RwSignal::new(Connection::Online),
            memory_only: RwSignal::new(false),
            hydrated: RwSignal::new(false),
            flash: RwSignal::new(None),
            gate,
        }
    }

    pub fn user(&self) -> Option<User> {
        match &*self.auth.read() {
            Auth::LoggedIn(s) => Some(s.user.clone()),
            _ => None,
        }
    }

    pub fn user_id_untracked(&self) -> Option<Uuid> {
        match &*self.auth.read_untracked() {
            Auth::LoggedIn(s) => Some(s.user.id),
            _ => None,
        }
    }

    fn apply(&self, snapshot: &Snapshot) {
        self.auth.set(match &snapshot.session {
            Some(s) => Auth::LoggedIn(s.clone()),
            None => Auth::LoggedOut,
        });
        self.connection.set(snapshot.connection);
        self.memory_only.set(snapshot.memory_only);
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}

pub fn app_state() -> AppState {
    expect_context::<AppState>()
}

/// The page's path and query, for `next=`.
pub fn current_path() -> String {
    let location = location();
    format!(
        "{}{}",
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default()
    )
}

/// Sends the user to `url` (a login URL), unless they are on the login page already:
/// several parts of the app may decide this at once.
pub fn go_to_login(navigate: &impl Fn(&str, NavigateOptions), url: &str) {
    if location_pathname().as_deref() == Some(LOGIN_PATH) {
        return;
    }
    navigate(
        url,
        NavigateOptions {
            replace: true,
            ..Default::default()
        },
    );
}

/// Starts the fetch wrapper once the page is hydrated and mirrors its state into
/// [`AppState`]. Lives inside the `<Router>` so it can navigate.
#[component]
pub fn ClientBridge() -> impl IntoView {
    let state = app_state();
    let navigate = use_navigate();
    Effect::new(move |_| {
        baton_client::init(Config::default());
        let navigate = navigate.clone();
        baton_client::on_session_end(move |end| {
            state.flash.set(Some(
                match end.reason {
                    EndReason::SignedOutElsewhere => "You were logged out in another tab.",
                    EndReason::Refused(_) => "Your session has ended. Please log in again.",
                }
                .to_owned(),
            ));
            go_to_login(&navigate, &end.login_url);
        });
        state.apply(&baton_client::snapshot());
        baton_client::subscribe(move |snapshot| state.apply(snapshot));
        state.hydrated.set(true);
    });
}

/// Builds `children` in the browser for a logged-in user, and takes them down on
/// logout (rebuilding them if another user logs in).
///
/// Session-dependent UI is never rendered on the server (it does not know the session),
/// so it is never hydrated either: it is built straight into an empty container once
/// the session is known. Besides keeping the server's HTML neutral, this keeps the
/// wasm small: only the build path of these views is compiled, not their hydration.
#[component]
pub fn WhenLoggedIn<V>(
    children: TypedChildrenFn<V>,
    /// Class of the container `<div>`.
    #[prop(optional)]
    class: &'static str,
) -> impl IntoView
where
    V: IntoView + 'static,
{
    let state = app_state();
    let container = NodeRef::<leptos::html::Div>::new();
    let children = children.into_inner();
    let mounted = StoredValue::new_local(None::<<View<V> as Render>::State>);
    Effect::new(move |_| {
        if let (Gate::LoggedIn(_), Some(parent)) = (state.gate.get(), container.get()) {
            let mut built = untrack(|| children().build());
            built.mount(&parent, None);
            mounted.set_value(Some(built));
            // The effect's owner is cleaned up before the effect runs again (the user
            // changed) and when the component goes away; its reactive parts go then,
            // and so must its DOM. The router may keep the container for the next
            // page (same element types), so it is not enough to rely on that.
            on_cleanup(move || {
                mounted.try_update_value(|m| {
                    if let Some(mut built) = m.take() {
                        built.unmount();
                    }
                });
            });
        }
    });
    view! { <div class=class node_ref=container></div> }
}

/// A page for logged-in users: anyone else goes to the login page with `next`
/// pointing back here. Until the session is known it shows a neutral placeholder.
#[component]
pub fn RequireAuth<V>(children: TypedChildrenFn<V>) -> impl IntoView
where
    V: IntoView + 'static,
{
    let state = app_state();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if state.gate.get() == Gate::LoggedOut {
            let url = baton_client::nav::login_url(LOGIN_PATH, Some(&current_path()));
            go_to_login(&navigate, &url);
        }
    });
    let waiting = move || !matches!(state.gate.get(), Gate::LoggedIn(_));
    view! {
        <p class="muted" aria-busy="true" hidden=move || !waiting()>"Loading…"</p>
        {WhenLoggedIn(WhenLoggedInProps { children, class: "" })}
    }
}
