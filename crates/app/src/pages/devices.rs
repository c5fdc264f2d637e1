//! `/devices`: where the user is logged in; revoke one device or all of them.

use baton_client::ClientError;
use baton_shared::Session;
use leptos::either::EitherOf3;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;
use uuid::Uuid;

use crate::format::{ago, date_time, now_ms};
use crate::state::{RequireAuth, LOGIN_PATH};
use crate::ui::Load;

#[component]
pub fn DevicesPage() -> impl IntoView {
    view! {
        <Title text="Devices · Baton"/>
        <RequireAuth>
            <Devices/>
        </RequireAuth>
    }
}

#[component]
fn Devices() -> impl IntoView {
    let navigate = use_navigate();
    let sessions = RwSignal::new(Load::<Vec<Session>>::Loading);
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let confirm_all = RwSignal::new(false);

    let reload = move || {
        spawn_local(async move {
            match baton_client::api::sessions::list().await {
                Ok(list) => sessions.set(Load::Ready(list)),
                Err(ClientError::SessionEnded | ClientError::NotLoggedIn) => {}
                Err(e) => sessions.set(Load::Failed(e.user_message())),
            }
        })
    };
    Effect::new(move |_| reload());

    let revoke = move |id: Uuid| {
        busy.set(true);
        failure.set(None);
        spawn_local(async move {
            let result = baton_client::api::sessions::revoke(id).await;
            busy.set(false);
            match result {
                Ok(()) => reload(),
                Err(ClientError::SessionEnded | ClientError::NotLoggedIn) => {}
                Err(e) => failure.set(Some(e.user_message())),
            }
        });
    };

    let log_out_everywhere = move |_| {
        if !confirm_all.get_untracked() {
            confirm_all.set(true);
            return;
        }
        busy.set(true);
        failure.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            let result = baton_client::api::auth::logout_all().await;
            busy.set(false);
            match result {
                Ok(()) => navigate(LOGIN_PATH, Default::default()),
                Err(ClientError::SessionEnded | ClientError::NotLoggedIn) => {}
                Err(e) => {
                    confirm_all.set(false);
                    failure.set(Some(e.user_message()));
                }
            }
        });
    };

    view! {
        <h1>"Devices"</h1>
        <p class="muted">"Every device where you are logged in. Revoking one logs it out at its next request."</p>
        <div role="alert">{move || failure.get().map(|m| view! { <p class="alert error">{m}</p> })}</div>
        {move || match sessions.get() {
            Load::Loading => EitherOf3::A(view! { <p class="muted" aria-busy="true">"Loading devices…"</p> }),
            Load::Failed(message) => EitherOf3::B(view! { <p class="alert error" role="alert">{message}</p> }),
            Load::Ready(list) => {
                let now = now_ms();
                EitherOf3::C(view! {
                    <ul class="stack device-list" data-testid="device-list">
                        {list
                            .into_iter()
                            .map(|s| {
                                let name = s.device_name.clone().unwrap_or_else(|| "Unnamed device".into());
                                let label = format!("Revoke {name}");
                                let id = s.id;
                                view! {
                                    <li class="card device" class:current=s.current data-testid="device">
                                        <div class="device-head">
                                            <strong class="device-name">{name}</strong>
                                            {s.current.then(|| view! { <span class="badge" data-testid="this-device">"This device"</span> })}
                                        </div>
                                        <p class="device-agent muted">{s.user_agent.unwrap_or_else(|| "Unknown browser".into())}</p>
                                        <p class="device-times">
                                            "Last used " {ago(now, s.last_used_at)} " · signed in " {date_time(s.created_at)}
                                        </p>
                                        {(!s.current).then(|| view! {
                                            <button type="button" class="secondary" aria-label=label data-testid="revoke"
                                                disabled=move || busy.get() on:click=move |_| revoke(id)>
                                                "Revoke"
                                            </button>
                                        })}
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                })
            }
        }}
        <section class="danger-zone">
            <h2>"Log out everywhere"</h2>
            <p class="muted">"Ends every session, including this one."</p>
            <button type="button" class="danger" data-testid="logout-all" disabled=move || busy.get() on:click=log_out_everywhere>
                {move || if confirm_all.get() { "Really log out everywhere?" } else { "Log out everywhere" }}
            </button>
        </section>
    }
}
