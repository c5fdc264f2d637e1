//! `/register`: creates the account, then logs straight in.

use baton_shared::{ErrorCode, LoginRequest, RegisterRequest};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use crate::state::{app_state, HOME_PATH, LOGIN_PATH};
use crate::ui::{Field, FieldMap, FormError};

#[component]
pub fn Register() -> impl IntoView {
    let state = app_state();
    let navigate = use_navigate();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let errors = RwSignal::new(FieldMap::new());
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let request = RegisterRequest {
            username: username.get_untracked(),
            password: password.get_untracked(),
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
            let registered = baton_client::api::auth::register(&request).await;
            if let Err(e) = registered {
                busy.set(false);
                let mut fields = e.fields();
                if e.code() == Some(ErrorCode::UsernameTaken) {
                    fields.insert("username".into(), e.user_message());
                } else if e.code() != Some(ErrorCode::InvalidInput) {
                    failure.set(Some(e.user_message()));
                }
                errors.set(fields);
                return;
            }
            let login = LoginRequest {
                username: request.username.clone(),
                password: request.password.clone(),
                device_name: None,
            };
            let logged_in = baton_client::api::auth::login(&login).await;
            busy.set(false);
            match logged_in {
                Ok(_) => navigate(HOME_PATH, Default::default()),
                // The account exists; let them log in by hand.
                Err(_) => navigate(LOGIN_PATH, Default::default()),
            }
        });
    };

    view! {
        <Title text="Register · Baton"/>
        <h1>"Create an account"</h1>
        <form class="card" method="post" novalidate on:submit=submit>
            <FormError message=failure/>
            <Field label="Username" name="username" value=username errors=errors autocomplete="username" required=true
                hint="3-32 letters, digits, '_', '-' or '.'"/>
            <Field label="Password" name="password" kind="password" value=password errors=errors autocomplete="new-password" required=true
                hint="At least 8 characters."/>
            <div class="actions">
                <button type="submit" disabled=move || busy.get() || !state.hydrated.get()>
                    {move || if busy.get() { "Creating account…" } else { "Register" }}
                </button>
            </div>
        </form>
        <p class="muted">"Already registered? " <a href="/login">"Log in"</a></p>
    }
}
