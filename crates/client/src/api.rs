//! Typed functions for every endpoint of the Baton API (`API.md`). Components call
//! these, never `gloo_net`.

pub mod auth;
pub mod me;
pub mod notes;
pub mod sessions;
