//! `/notes`: the user's notes, newest first, and a way to start a new one.

use baton_client::ClientError;
use baton_shared::Note;
use leptos::either::EitherOf4;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::format::{ago, now_ms};
use crate::state::RequireAuth;
use crate::ui::Load;

#[component]
pub fn NotesPage() -> impl IntoView {
    view! {
        <Title text="Notes · Baton"/>
        <RequireAuth>
            <NotesList/>
        </RequireAuth>
    }
}

#[component]
fn NotesList() -> impl IntoView {
    let notes = RwSignal::new(Load::<Vec<Note>>::Loading);
    Effect::new(move |_| {
        spawn_local(async move {
            match baton_client::api::notes::list().await {
                Ok(list) => notes.set(Load::Ready(list)),
                Err(ClientError::SessionEnded | ClientError::NotLoggedIn) => {}
                Err(e) => notes.set(Load::Failed(e.user_message())),
            }
        });
    });
    let now = now_ms();
    view! {
        <div class="page-head">
            <h1>"Notes"</h1>
            <a class="button" href="/notes/new">"New note"</a>
        </div>
        {move || match notes.get() {
            Load::Loading => EitherOf4::A(view! { <p class="muted" aria-busy="true">"Loading notes…"</p> }),
            Load::Failed(message) => EitherOf4::B(view! { <p class="alert error" role="alert">{message}</p> }),
            Load::Ready(list) if list.is_empty() => EitherOf4::C(view! {
                <p class="muted" data-testid="no-notes">"No notes yet. Start one with “New note”."</p>
            }),
            Load::Ready(list) => EitherOf4::D(view! {
                <ul class="stack note-list" data-testid="note-list">
                    {list
                        .into_iter()
                        .map(|note| {
                            let href = format!("/notes/{}", note.id);
                            view! {
                                <li class="card note-item">
                                    <a href=href class="note-title">{note.title}</a>
                                    <span class="muted note-time">"Updated " {ago(now, note.updated_at)}</span>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            }),
        }}
    }
}
