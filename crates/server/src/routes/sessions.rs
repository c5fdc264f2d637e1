//! `/api/sessions`: where the user is logged in, and ending any of it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use baton_shared::ApiError;
use baton_shared::Session;

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::extract::{AuthUser, IdPath};
use crate::state::AppState;
use crate::store;
use crate::store::sessions::{Ending, RevokeReason};

/// `GET /api/sessions`: live sessions, most recently used first.
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
#[utoipa::path(
    get, path = "/api/sessions", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = Vec<Session>),
        (status = 401, description = "Access-token failure", body = ApiError),
    )
)]
pub async fn list(State(state): State<AppState>, auth: AuthUser) -> Result<Json<Vec<Session>>> {
    let sessions =
        store::sessions::list_active(&state.db, auth.user_id, auth.session_id, now_ms()).await?;
    Ok(Json(sessions))
}

/// `DELETE /api/sessions/{id}`: 404 for a session that is not the caller's (or is
/// already over), so that ids of other users cannot be probed.
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, session_id = %id))]
#[utoipa::path(
    delete, path = "/api/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "Access-token failure", body = ApiError),
        (status = 404, description = "`not_found`, also for another user's session", body = ApiError),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
) -> Result<StatusCode> {
    let theirs = Ending::UsersSession {
        user_id: auth.user_id,
        session_id: id,
    };
    let ended = state.end_sessions(theirs, RevokeReason::Revoked).await?;
    if ended.is_empty() {
        return Err(Error::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
