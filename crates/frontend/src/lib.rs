//! The wasm entry point: cargo-leptos builds this crate to WebAssembly and the page
//! calls `hydrate()` once the server-rendered HTML has loaded.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(baton_app::App);
}
