//! Small building blocks shared by the pages.

use std::collections::BTreeMap;

use leptos::prelude::*;

/// Field name → what is wrong with it: the server's `ApiError.fields`, or the same
/// input rules checked before sending.
pub type FieldMap = BTreeMap<String, String>;

/// A labelled input with its error below it (linked with `aria-describedby`).
#[component]
pub fn Field(
    /// The visible label.
    label: &'static str,
    /// The request field it edits; also the key in `errors`.
    name: &'static str,
    value: RwSignal<String>,
    errors: RwSignal<FieldMap>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "off")] autocomplete: &'static str,
    #[prop(default = None)] hint: Option<&'static str>,
    #[prop(optional)] required: bool,
) -> impl IntoView {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described_by = if hint.is_some() {
        format!("{error_id} {hint_id}")
    } else {
        error_id.clone()
    };
    let error = move || errors.with(|e| e.get(name).cloned());
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                required=required
                aria-invalid=move || error().map(|_| "true")
                aria-describedby=described_by
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
            />
            {hint.map(|hint| view! { <p class="hint" id=hint_id>{hint}</p> })}
            <p class="field-error" id=error_id>{error}</p>
        </div>
    }
}

/// The general error of a form (wrong password, server unreachable).
#[component]
pub fn FormError(message: RwSignal<Option<String>>) -> impl IntoView {
    view! { <p class="alert error form-error" role="alert" data-testid="form-error">{message}</p> }
}

/// Data a page loads after hydration.
#[derive(Debug, Clone, PartialEq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(String),
}
