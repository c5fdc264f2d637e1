//! `/api/me`: the logged-in user, and password change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use baton_shared::{ApiError, ChangePasswordRequest, ErrorCode, UserEnvelope};

use crate::error::{BearerError, Error, Result};
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;
use crate::store;
use crate::store::sessions::{Ending, RevokeReason};

/// `GET /api/me`
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
#[utoipa::path(
    get, path = "/api/me", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserEnvelope),
        (status = 401, description = "Access-token failure", body = ApiError),
    )
)]
pub async fn get(State(state): State<AppState>, auth: AuthUser) -> Result<Json<UserEnvelope>> {
    // A valid token of a deleted user: the token no longer names anyone.
    let user = store::users::get(&state.db, auth.user_id)
        .await?
        .ok_or(Error::Bearer(BearerError::Invalid))?;
    Ok(Json(UserEnvelope { user }))
}

/// `PUT /api/me/password`: needs the current password; ends every other session.
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
#[utoipa::path(
    put, path = "/api/me/password", tag = "me", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session ended"),
        (status = 400, description = "`invalid_input`", body = ApiError),
        (status = 401, description = "Access-token failure", body = ApiError),
        (status = 403, description = "`invalid_credentials`: wrong current password", body = ApiError),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode> {
    let change = req.parse()?;
    let stored = store::users::find_password_hash(&state.db, auth.user_id).await?;
    if stored.is_none() {
        return Err(Error::Bearer(BearerError::Invalid));
    }
    if !state
        .passwords
        .verify(&change.current_password, stored.as_deref())
        .await?
    {
        return Err(Error::Forbidden(ApiError::new(
            ErrorCode::InvalidCredentials,
            "the current password is wrong",
        )));
    }
    let hash = state.passwords.hash(&change.new_password).await?;
    store::users::set_password_hash(&state.db, auth.user_id, &hash).await?;
    let others = Ending::AllOfUser {
        user_id: auth.user_id,
        except: Some(auth.session_id),
    };
    let ended = state
        .end_sessions(others, RevokeReason::PasswordChanged)
        .await?;
    tracing::info!(other_sessions_ended = ended.len(), "password changed");
    Ok(StatusCode::NO_CONTENT)
}
