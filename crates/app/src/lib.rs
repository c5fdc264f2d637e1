//! Baton's browser app: Leptos components rendered on the server (feature `ssr`) and
//! hydrated in the browser (feature `hydrate`).
//!
//! The server cannot know who is logged in (tokens live in the browser's
//! `localStorage`), so it renders a neutral shell; pages that need a session show a
//! placeholder until the browser has read it (see [`state`]). All HTTP goes through
//! `baton-client`.

mod drafts;
mod format;
mod layout;
mod pages;
mod state;
mod ui;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use pages::account::AccountPage;
use pages::auth::{Login, Register};
use pages::devices::DevicesPage;
use pages::editor::EditorPage;
use pages::home::Home;
use pages::notes::NotesPage;
use pages::NotFound;

/// The HTML document around the app; the server renders it for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(state::AppState::new());
    view! {
        <Stylesheet id="leptos" href="/pkg/baton.css"/>
        <Title text="Baton"/>
        <Router>
            <state::ClientBridge/>
            <layout::Header/>
            <main id="main" tabindex="-1">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Home/>
                    <Route path=path!("/login") view=Login/>
                    <Route path=path!("/register") view=Register/>
                    <Route path=path!("/notes") view=NotesPage/>
                    <Route path=path!("/notes/:id") view=EditorPage/>
                    <Route path=path!("/devices") view=DevicesPage/>
                    <Route path=path!("/account") view=AccountPage/>
                </Routes>
            </main>
        </Router>
    }
}
