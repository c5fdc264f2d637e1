//! `/api/notes`: the user's notes.

use baton_shared::{Note, NoteInput};
use uuid::Uuid;

use crate::{call, call_no_content, json_body, ClientError, Method};

/// `GET /api/notes`, newest first.
pub async fn list() -> Result<Vec<Note>, ClientError> {
    call(Method::Get, "/api/notes", None).await
}

pub async fn get(id: Uuid) -> Result<Note, ClientError> {
    call(Method::Get, &format!("/api/notes/{id}"), None).await
}

pub async fn create(input: &NoteInput) -> Result<Note, ClientError> {
    call(Method::Post, "/api/notes", json_body(input)).await
}

pub async fn update(id: Uuid, input: &NoteInput) -> Result<Note, ClientError> {
    call(Method::Put, &format!("/api/notes/{id}"), json_body(input)).await
}

pub async fn delete(id: Uuid) -> Result<(), ClientError> {
    call_no_content(Method::Delete, &format!("/api/notes/{id}"), None).await
}
