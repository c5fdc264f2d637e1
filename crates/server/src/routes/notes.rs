//! `/api/notes`: the protected resource of the demo app.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use baton_shared::ApiError;
use baton_shared::{Note, NoteInput};

use crate::error::{Error, Result};
use crate::extract::{ApiJson, AuthUser, IdPath};
use crate::state::AppState;
use crate::store;

/// `GET /api/notes`: newest first.
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
#[utoipa::path(
    get, path = "/api/notes", tag = "notes", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's notes, newest first", body = Vec<Note>),
        (status = 401, description = "Access-token failure", body = ApiError),
    )
)]
pub async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Vec<Note>>> {
    Ok(Json(store::notes::list(&state.db, auth.user_id).await?))
}

/// `POST /api/notes`
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
#[utoipa::path(
    post, path = "/api/notes", tag = "notes", security(("bearer" = [])), request_body = NoteInput,
    responses(
        (status = 201, description = "Created", body = Note),
        (status = 400, description = "`invalid_input`", body = ApiError),
        (status = 401, description = "Access-token failure", body = ApiError),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(input): ApiJson<NoteInput>,
) -> Result<(StatusCode, Json<Note>)> {
    let note = input.parse()?;
    let note = store::notes::create(&state.db, auth.user_id, &note).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// `GET /api/notes/{id}`
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, note_id = %id))]
#[utoipa::path(
    get, path = "/api/notes/{id}", tag = "notes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Note id")),
    responses(
        (status = 200, description = "The note", body = Note),
        (status = 401, description = "Access-token failure", body = ApiError),
        (status = 404, description = "`not_found`, also for another user's note", body = ApiError),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
) -> Result<Json<Note>> {
    store::notes::get(&state.db, auth.user_id, id)
        .await?
        .map(Json)
        .ok_or_else(Error::not_found)
}

/// `PUT /api/notes/{id}`
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, note_id = %id))]
#[utoipa::path(
    put, path = "/api/notes/{id}", tag = "notes", security(("bearer" = [])), request_body = NoteInput,
    params(("id" = Uuid, Path, description = "Note id")),
    responses(
        (status = 200, description = "Updated", body = Note),
        (status = 400, description = "`invalid_input`", body = ApiError),
        (status = 401, description = "Access-token failure", body = ApiError),
        (status = 404, description = "`not_found`, also for another user's note", body = ApiError),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
    ApiJson(input): ApiJson<NoteInput>,
) -> Result<Json<Note>> {
    let note = input.parse()?;
    store::notes::update(&state.db, auth.user_id, id, &note)
        .await?
        .map(Json)
        .ok_or_else(Error::not_found)
}

/// `DELETE /api/notes/{id}`
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, note_id = %id))]
#[utoipa::path(
    delete, path = "/api/notes/{id}", tag = "notes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Note id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Access-token failure", body = ApiError),
        (status = 404, description = "`not_found`, also for another user's note", body = ApiError),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
) -> Result<StatusCode> {
    if store::notes::delete(&state.db, auth.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found())
    }
}
