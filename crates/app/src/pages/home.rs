//! `/`: notes for a logged-in user, the login page for anyone else.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

use crate::state::{app_state, Gate, HOME_PATH, LOGIN_PATH};

#[component]
pub fn Home() -> impl IntoView {
    let state = app_state();
    let navigate = use_navigate();
    Effect::new(move |_| {
        let to = match state.gate.get() {
            Gate::Unknown => return,
            Gate::LoggedIn(_) => HOME_PATH,
            Gate::LoggedOut => LOGIN_PATH,
        };
        navigate(
            to,
            NavigateOptions {
                replace: true,
                ..Default::default()
            },
        );
    });
    view! { <p class="muted" aria-busy="true">"Loading…"</p> }
}
