//! `/account`: who you are, and a password change.

use baton_shared::{ChangePasswordRequest, ErrorCode};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::format::date_time;
use crate::state::{app_state, RequireAuth};
use crate::ui::{Field, FieldMap, FormError};

#[component]
pub fn AccountPage() -> impl IntoView {
    view! {
        <Title text="Account · Baton"/>
        <RequireAuth>
            <Account/>
        </RequireAuth>
    }
}

#[component]
fn Account() -> impl IntoView {
    let state = app_state();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let errors = RwSignal::new(FieldMap::new());
    let failure = RwSignal::new(None::<String>);
    let success = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let request = ChangePasswordRequest {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        };
        failure.set(None);
        success.set(None);
        if let Err(invalid) = request.parse() {
            errors.set(invalid.into_map());
            return;
        }
        errors.set(FieldMap::new());
        busy.set(true);
        spawn_local(async move {
            let result = baton_client::api::me::change_password(&request).await;
            busy.set(false);
            match result {
                Ok(()) => {
                    current.set(String::new());
                    new.set(String::new());
                    success.set(Some(
                        "Password changed. Your other devices have been logged out.".into(),
                    ));
                }
                Err(e) if e.code() == Some(ErrorCode::InvalidCredentials) => {
                    let mut fields = FieldMap::new();
                    fields.insert("current_password".into(), e.user_message());
                    errors.set(fields);
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
        <h1>"Account"</h1>
        {move || state.user().map(|u| view! {
            <dl class="card account-facts">
                <dt>"Username"</dt>
                <dd data-testid="account-username">{u.username}</dd>
                <dt>"Member since"</dt>
                <dd>{date_time(u.created_at)}</dd>
            </dl>
        })}
        <h2>"Change password"</h2>
        <form class="card" method="post" novalidate on:submit=submit>
            <FormError message=failure/>
            <Field label="Current password" name="current_password" kind="password" value=current errors=errors
                autocomplete="current-password" required=true/>
            <Field label="New password" name="new_password" kind="password" value=new errors=errors
                autocomplete="new-password" required=true hint=Some("At least 8 characters.")/>
            <div class="actions">
                <button type="submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Changing…" } else { "Change password" }}
                </button>
            </div>
            <p class="form-status" role="status" data-testid="account-status">
                {move || success.get().map(|m| view! { <span class="alert success">{m}</span> })}
            </p>
        </form>
    }
}
