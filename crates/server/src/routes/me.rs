//! `/api/me`: the logged-in user, and password change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use baton_shared::{ApiError, ChangePasswordRequest, ErrorCode, UserEnvelope};

use crate::clock::now_ms;
use crate::error::{BearerError, Error, Result};
use crate::extract::{ApiJson, AuthUser, ClientIp};
use crate::state::AppState;
use crate::store;
use crate::store::sessions::RevokeReason;

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
    let user = state
        .users
        .get(&state.db, auth.user_id)
        .await?
        .ok_or(Error::Bearer(BearerError::Invalid))?;
    Ok(Json(UserEnvelope { user }))
}

/// `PUT /api/me/password`: needs the current password; ends every other session. A
/// wrong current password counts like a wrong password at login (per account and
/// address, [`crate::rate_limit`]): a stolen access token must not become a way to
/// guess the password at the hashing pool's speed.
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
#[utoipa::path(
    put, path = "/api/me/password", tag = "me", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session ended"),
        (status = 400, description = "`invalid_input`", body = ApiError),
        (status = 401, description = "Access-token failure", body = ApiError),
        (status = 403, description = "`invalid_credentials`: wrong current password", body = ApiError),
        (status = 429, description = "`rate_limited`, with `Retry-After`: too many requests or wrong passwords", body = ApiError),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: AuthUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode> {
    state.limits.login_attempt(&ip)?;
    let change = req.parse()?;
    let Some(stored) = store::users::find_password(&state.db, auth.user_id).await? else {
        return Err(Error::Bearer(BearerError::Invalid));
    };
    let guess = state.limits.guess(&stored.account, &ip, now_ms())?;
    if !state
        .passwords
        .verify(&change.current_password, Some(&stored.password_hash))
        .await?
    {
        guess.wrong(now_ms());
        return Err(wrong_current_password());
    }
    guess.right(now_ms());
    let hash = state.passwords.hash(&change.new_password).await?;
    // The hash, the credential version (which stops any login still holding the old
    // password from creating a session) and the end of every other session, at once.
    let changed = store::users::change_password(
        &state.db,
        auth.user_id,
        stored.credential_version,
        &hash,
        auth.session_id,
        now_ms(),
    )
    .await?;
    // Here at once; elsewhere through the change feed.
    state.users.invalidate(auth.user_id);
    let Some(ended) = changed else {
        // Another change came first: the password checked is no longer the current one.
        return Err(wrong_current_password());
    };
    state.sessions_ended(&ended, RevokeReason::PasswordChanged);
    tracing::info!(other_sessions_ended = ended.len(), "password changed");
    Ok(StatusCode::NO_CONTENT)
}

fn wrong_current_password() -> Error {
    Error::Forbidden(ApiError::new(
        ErrorCode::InvalidCredentials,
        "the current password is wrong",
    ))
}
