//! Baton's server: issues short-lived access tokens and single-use refresh tokens,
//! rotates them safely under concurrency, detects stolen refresh tokens, and serves
//! the notes API and the Leptos app.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let app = baton_server::Application::build(baton_server::config::Config::default()).await?;
//! println!("listening on port {}", app.port());
//! app.run_until_stopped().await?;
//! # Ok(()) }
//! ```

pub mod cli;
pub mod clock;
pub mod config;
pub mod dpop;
pub mod error;
pub mod extract;
pub mod feed;
pub mod files;
pub mod keys;
pub mod metrics;
pub mod password;
pub mod rate_limit;
pub mod refresh_token;
pub mod revocation;
pub mod routes;
pub mod security;
pub mod serve;
pub mod server;
pub mod state;
pub mod store;
pub mod tokens;
pub mod users;

pub use server::Application;
pub use state::AppState;
