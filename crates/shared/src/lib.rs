//! Types shared by the Baton server and the browser client.
//!
//! Everything on the wire is defined here once, so that the server and the client
//! cannot drift apart: the error body and its codes ([`error`]), the request and
//! response shapes ([`types`]) and the input rules ([`input`]), which turn raw
//! request fields into parsed values or a map of field errors.
//!
//! The crate is plain serde and compiles for native targets and `wasm32`.

pub mod error;
pub mod input;
pub mod rfc3339;
pub mod types;

pub use error::{ApiError, ErrorCode};
pub use input::{DeviceName, FieldErrors, NoteBody, NoteTitle, Password, Username};
pub use types::*;
