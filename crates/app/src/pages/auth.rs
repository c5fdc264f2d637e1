//! `/login` and `/register`: one form component for both (one view type, so the
//! wasm carries its code once).
//!
//! Login takes username, password and an optional device name, then goes back to
//! `next` (same-origin paths only). Register creates the account and logs straight in.

use baton_client::nav::safe_next_or;
use baton_client::ClientError;
use baton_shared::{ErrorCode, LoginRequest, RegisterRequest};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::state::{app_state, HOME_PATH, LOGIN_PATH};
use crate::ui::{Field, FieldMap, FormError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Login,
    Register,
}

#[component]
pub fn Login() -> impl IntoView {
    view! { <CredentialsForm mode=Mode::Login/> }
}

#[component]
pub fn Register() -> impl IntoView {
    view! { <CredentialsForm mode=Mode::Register/> }
}

#[component]
fn CredentialsForm(mode: Mode) -> impl IntoView {
    let state = app_state();
    let navigate = use_navigate();
    let query = use_query_map();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let device_name = RwSignal::new(String::new());
    let errors = RwSignal::new(FieldMap::new());
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let login = mode == Mode::Login;
    // Why the user is here (their session ended), shown once.
    let notice = if login {
        state.flash.get_untracked()
    } else {
        None
    };
    state.flash.set(None);

    let show_error = move |e: ClientError| {
        let mut fields = e.fields();
        match e.code() {
            Some(ErrorCode::UsernameTaken) => {
                fields.insert("username".into(), e.user_message());
            }
            Some(ErrorCode::InvalidInput) if !fields.is_empty() => {}
            _ => failure.set(Some(e.user_message())),
        }
        errors.set(fields);
    };

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let device = device_name.get_untracked();
        let credentials = LoginRequest {
            username: username.get_untracked(),
            password: password.get_untracked(),
            device_name: (login && !device.trim().is_empty()).then_some(device),
        };
        let registration = RegisterRequest {
            username: credentials.username.clone(),
            password: credentials.password.clone(),
        };
        // The same input rules as the server's, so the messages match.
        let checked = if login {
            credentials.parse().map(drop)
        } else {
            registration.parse().map(drop)
        };
        failure.set(None);
        if let Err(invalid) = checked {
            errors.set(invalid.into_map());
            return;
        }
        errors.set(FieldMap::new());
        busy.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            if !login {
                if let Err(e) = baton_client::api::auth::register(&registration).await {
                    busy.set(false);
                    show_error(e);
                    return;
                }
            }
            let result = baton_client::api::auth::login(&credentials).await;
            busy.set(false);
            match result {
                Ok(_) => {
                    let next = query.read_untracked().get("next");
                    let to = safe_next_or(next.as_deref(), HOME_PATH).to_owned();
                    navigate(&to, Default::default());
                }
                // Registered, but the login failed: let them log in by hand.
                Err(_) if !login => navigate(LOGIN_PATH, Default::default()),
                Err(e) => show_error(e),
            }
        });
    };

    let (title, heading, action, busy_action) = if login {
        ("Log in · Baton", "Log in", "Log in", "Logging in…")
    } else {
        (
            "Register · Baton",
            "Create an account",
            "Register",
            "Creating account…",
        )
    };
    let (other_text, other_href, other_link) = if login {
        ("No account yet? ", "/register", "Register")
    } else {
        ("Already registered? ", "/login", "Log in")
    };
    view! {
        <Title text=title/>
        <h1>{heading}</h1>
        {notice.map(|n| view! { <p class="alert info" data-testid="login-notice">{n}</p> })}
        <form class="card" method="post" novalidate on:submit=submit>
            <FormError message=failure/>
            <Field label="Username" name="username" value=username errors=errors autocomplete="username" required=true
                hint=(!login).then_some("3-32 letters, digits, '_', '-' or '.'")/>
            <Field label="Password" name="password" kind="password" value=password errors=errors required=true
                autocomplete=if login { "current-password" } else { "new-password" }
                hint=(!login).then_some("At least 8 characters.")/>
            {login.then(|| view! {
                <Field label="Device name" name="device_name" value=device_name errors=errors
                    hint=Some("Optional: how this device appears in your device list.")/>
            })}
            <div class="actions">
                <button type="submit" disabled=move || busy.get() || !state.hydrated.get()>
                    {move || if busy.get() { busy_action } else { action }}
                </button>
            </div>
        </form>
        <p class="muted">{other_text} <a href=other_href>{other_link}</a></p>
    }
}
