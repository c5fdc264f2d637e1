//! `/notes/:id` (and `/notes/new`): edit, save, delete. Every keystroke is kept as a
//! draft in `localStorage` until the note is saved, so nothing typed is lost to an
//! expired session, a failed save or a forced re-login.

use baton_client::ClientError;
use baton_shared::{ErrorCode, NoteInput};
use leptos::either::EitherOf4;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};
use leptos_router::NavigateOptions;
use uuid::Uuid;

use crate::drafts::{self, Draft};
use crate::format::{date_time, now_ms};
use crate::state::{app_state, RequireAuth};
use crate::ui::FieldMap;

#[component]
pub fn EditorPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    view! {
        <Title text="Note · Baton"/>
        <RequireAuth>
            // A new editor for each note (also after "new" was created and got its id).
            {move || view! { <Editor id=id.get()/> }}
        </RequireAuth>
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Loading,
    Ready,
    Missing,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Info(String),
    Saved(String),
    Error(String),
}

#[component]
fn Editor(id: String) -> impl IntoView {
    let state = app_state();
    let navigate = use_navigate();
    let note_id: Option<Uuid> = Uuid::parse_str(&id).ok();
    let is_new = id == "new";
    let draft_name = StoredValue::new(id.clone());
    let user = state.user_id_untracked();

    let title = RwSignal::new(String::new());
    let body = RwSignal::new(String::new());
    // What the server has: the draft is dropped when the text matches it again.
    let saved = RwSignal::new(None::<(String, String)>);
    let phase = RwSignal::new(if is_new || note_id.is_some() {
        Phase::Loading
    } else {
        Phase::Missing
    });
    let restored = RwSignal::new(None::<i64>);
    let errors = RwSignal::new(FieldMap::new());
    let status = RwSignal::new(state.flash.get_untracked().map(Status::Saved));
    state.flash.set(None);
    let busy = RwSignal::new(false);
    let confirm_delete = RwSignal::new(false);

    Effect::new(move |_| {
        if phase.get_untracked() != Phase::Loading {
            return;
        }
        spawn_local(async move {
            let server = match note_id {
                Some(id) => match baton_client::api::notes::get(id).await {
                    Ok(note) => (note.title, note.body),
                    Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                        phase.set(Phase::Missing);
                        return;
                    }
                    Err(ClientError::SessionEnded | ClientError::NotLoggedIn) => return,
                    Err(e) => {
                        phase.set(Phase::Failed(e.user_message()));
                        return;
                    }
                },
                None => (String::new(), String::new()),
            };
            let draft = user.and_then(|u| drafts::load(u, &draft_name.get_value()));
            match draft {
                Some(d)
                    if (d.title.as_str(), d.body.as_str()) != (&server.0[..], &server.1[..]) =>
                {
                    title.set(d.title);
                    body.set(d.body);
                    restored.set(Some(d.saved_at));
                }
                other => {
                    if other.is_some() {
                        if let Some(u) = user {
                            drafts::discard(u, &draft_name.get_value());
                        }
                    }
                    title.set(server.0.clone());
                    body.set(server.1.clone());
                }
            }
            saved.set(Some(server));
            phase.set(Phase::Ready);
        });
    });

    // Called on every input: keep the text as a draft, or drop the draft when the text
    // is back to what the server has.
    let remember = move || {
        let (Some(user), Phase::Ready) = (user, phase.get_untracked()) else {
            return;
        };
        let current = (title.get_untracked(), body.get_untracked());
        if saved.with_untracked(|s| s.as_ref() == Some(&current)) {
            drafts::discard(user, &draft_name.get_value());
        } else {
            drafts::save(
                user,
                &draft_name.get_value(),
                &Draft {
                    title: current.0,
                    body: current.1,
                    saved_at: now_ms(),
                },
            );
        }
        status.set(None);
    };

    let discard_draft = move |_| {
        if let (Some(user), Some((t, b))) = (user, saved.get_untracked()) {
            drafts::discard(user, &draft_name.get_value());
            title.set(t);
            body.set(b);
        }
        restored.set(None);
    };

    let save = {
        let navigate = navigate.clone();
        move |ev: SubmitEvent| {
            ev.prevent_default();
            if busy.get_untracked() || phase.get_untracked() != Phase::Ready {
                return;
            }
            let input = NoteInput {
                title: title.get_untracked(),
                body: body.get_untracked(),
            };
            if let Err(invalid) = input.parse() {
                errors.set(invalid.into_map());
                status.set(Some(Status::Error(
                    "Please fix the fields marked above.".into(),
                )));
                return;
            }
            errors.set(FieldMap::new());
            busy.set(true);
            status.set(Some(Status::Info("Saving…".into())));
            let navigate = navigate.clone();
            spawn_local(async move {
                let result = match note_id {
                    Some(id) => baton_client::api::notes::update(id, &input).await,
                    None => baton_client::api::notes::create(&input).await,
                };
                busy.set(false);
                match result {
                    Ok(note) => {
                        if let Some(user) = user {
                            drafts::discard(user, &draft_name.get_value());
                        }
                        restored.set(None);
                        saved.set(Some((note.title.clone(), note.body.clone())));
                        let message = format!("Saved at {}", date_time(note.updated_at));
                        if note_id.is_none() {
                            state.flash.set(Some(message));
                            navigate(
                                &format!("/notes/{}", note.id),
                                NavigateOptions {
                                    replace: true,
                                    ..Default::default()
                                },
                            );
                        } else {
                            status.set(Some(Status::Saved(message)));
                        }
                    }
                    // The app is sending the user to log in; the draft stays for later.
                    Err(ClientError::SessionEnded | ClientError::NotLoggedIn) => status.set(None),
                    Err(e) => {
                        errors.set(e.fields());
                        status.set(Some(Status::Error(format!(
                            "Not saved: {} Your text is kept on this device.",
                            e.user_message()
                        ))));
                    }
                }
            });
        }
    };

    let delete = move |_| {
        let Some(id) = note_id else { return };
        if !confirm_delete.get_untracked() {
            confirm_delete.set(true);
            return;
        }
        busy.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            let result = baton_client::api::notes::delete(id).await;
            busy.set(false);
            match result {
                Ok(()) => {
                    if let Some(user) = user {
                        drafts::discard(user, &draft_name.get_value());
                    }
                    navigate("/notes", Default::default());
                }
                Err(ClientError::SessionEnded | ClientError::NotLoggedIn) => {}
                Err(e) => {
                    confirm_delete.set(false);
                    status.set(Some(Status::Error(e.user_message())));
                }
            }
        });
    };

    let status_class = move || match status.get() {
        Some(Status::Saved(_)) => "success",
        Some(Status::Error(_)) => "error",
        _ => "",
    };
    let status_text = move || {
        status.get().map(|s| match s {
            Status::Info(m) | Status::Saved(m) | Status::Error(m) => m,
        })
    };
    let field_error = move |name: &'static str| move || errors.with(|e| e.get(name).cloned());
    let invalid =
        move |name: &'static str| move || errors.with(|e| e.contains_key(name)).then_some("true");

    view! {
        <p><a href="/notes">"← All notes"</a></p>
        {move || match phase.get() {
            Phase::Loading => EitherOf4::A(view! { <p class="muted" aria-busy="true">"Loading note…"</p> }),
            Phase::Missing => EitherOf4::B(view! {
                <h1>"Note not found"</h1>
                <p>"It may have been deleted. " <a href="/notes">"Back to your notes"</a></p>
            }),
            Phase::Failed(message) => EitherOf4::C(view! { <p class="alert error" role="alert">{message}</p> }),
            Phase::Ready => EitherOf4::D(view! {
                <h1>{if is_new { "New note" } else { "Edit note" }}</h1>
                {move || restored.get().map(|at| view! {
                    <div class="alert info draft-notice" data-testid="draft-restored">
                        <p>"Restored your unsaved changes from " {date_time(time::OffsetDateTime::from_unix_timestamp(at / 1000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH))} "."</p>
                        <button type="button" class="secondary small" on:click=discard_draft>"Discard changes"</button>
                    </div>
                })}
                <form class="card editor" method="post" novalidate on:submit=save.clone()>
                    <div class="field">
                        <label for="note-title">"Title"</label>
                        <input id="note-title" name="title" type="text" maxlength="200" required
                            aria-invalid=invalid("title") aria-describedby="note-title-error"
                            prop:value=move || title.get()
                            on:input=move |ev| { title.set(event_target_value(&ev)); remember(); }/>
                        <p class="field-error" id="note-title-error">{field_error("title")}</p>
                    </div>
                    <div class="field">
                        <label for="note-body">"Body"</label>
                        <textarea id="note-body" name="body" rows="12"
                            aria-invalid=invalid("body") aria-describedby="note-body-error"
                            prop:value=move || body.get()
                            on:input=move |ev| { body.set(event_target_value(&ev)); remember(); }></textarea>
                        <p class="field-error" id="note-body-error">{field_error("body")}</p>
                    </div>
                    <div class="actions">
                        <button type="submit" data-testid="save" disabled=move || busy.get()>"Save"</button>
                        {(!is_new).then(|| view! {
                            <button type="button" class="danger" data-testid="delete" disabled=move || busy.get() on:click=delete.clone()>
                                {move || if confirm_delete.get() { "Really delete?" } else { "Delete" }}
                            </button>
                        })}
                    </div>
                    <p class="form-status" role="status" data-testid="editor-status">
                        <span class=status_class>{status_text}</span>
                    </p>
                </form>
            }),
        }}
    }
}
