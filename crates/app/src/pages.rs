//! One module per page.

pub mod account;
pub mod auth;
pub mod devices;
pub mod editor;
pub mod home;
pub mod notes;

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <Title text="Not found · Baton"/>
        <h1>"Page not found"</h1>
        <p><a href="/">"Go to the start page"</a></p>
    }
}
