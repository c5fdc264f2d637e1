//! `/login`: username, password and an optional device name; then back to `next`.

use baton_client::nav::safe_next_or;
use baton_shared::{ErrorCode, LoginRequest};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::state::{app_state, HOME_PATH};
use crate::ui::{Field, FieldMap, FormError};

#[component]
pub fn Login() -> impl IntoView {
    let state = app_state();
    let navigate = use_navigate();
    let query = use_query_map();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let device_name = RwSignal::new(String::new());
    let errors = RwSignal::new(FieldMap::new());
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // Why the user is here (their session ended), shown once.
    let notice = state.flash.get_untracked();
    state.flash.set(None);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let device = device_name.get_untracked();
        let request = LoginRequest {
            username: username.get_untracked(),
            password: password.get_untracked(),
            device_name: (!device.trim().is_empty()).then_some(device),
        };
        failure.set(None);
        if let Err(invalid) = request.parse() {
            errors.set(invalid.into_map());
            return;
        }
        errors.set(FieldMap::new());
        busy.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            let result = baton_client::api::auth::login(&request).await;
            busy.set(false);
            match result {
                Ok(_) => {
                    let next = query.read_untracked().get("next");
                    let to = safe_next_or(next.as_deref(), HOME_PATH).to_owned();
                    navigate(&to, Default::default());
                }
                Err(e) => {
                    errors.set(e.fields());
                    if e.code() != Some(ErrorCode::InvalidInput) {
                        failure.set(Some(e.user_message()));
                    }
                }
            }
        });
    };

    view! {
        <Title text="Log in · Baton"/>
        <h1>"Log in"</h1>
        {notice.map(|n| view! { <p class="alert info" data-testid="login-notice">{n}</p> })}
        <form class="card" method="post" novalidate on:submit=submit>
            <FormError message=failure/>
            <Field label="Username" name="username" value=username errors=errors autocomplete="username" required=true/>
            <Field label="Password" name="password" kind="password" value=password errors=errors autocomplete="current-password" required=true/>
            <Field label="Device name" name="device_name" value=device_name errors=errors
                hint="Optional: how this device appears in your device list."/>
            <div class="actions">
                <button type="submit" disabled=move || busy.get() || !state.hydrated.get()>
                    {move || if busy.get() { "Logging in…" } else { "Log in" }}
                </button>
            </div>
        </form>
        <p class="muted">"No account yet? " <a href="/register">"Register"</a></p>
    }
}
