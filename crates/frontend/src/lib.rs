//! The wasm entry point: cargo-leptos builds this crate to WebAssembly and the page
//! calls `hydrate()` once the server-rendered HTML has loaded. Empty on other targets.

#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsValue;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(baton_app::App);
    // Signals for tests and measurements: the page is interactive from here on, and
    // `__baton_hydrated_at` is when (ms since navigation start).
    if let Some(window) = web_sys::window() {
        let at = window.performance().map(|p| p.now()).unwrap_or(f64::NAN);
        let _ = js_sys::Reflect::set(&window, &"__baton_hydrated_at".into(), &at.into());
        let _ = js_sys::Reflect::set(&window, &"__baton_hydrated".into(), &JsValue::TRUE);
    }
}
