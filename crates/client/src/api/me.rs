//! `/api/me`: the logged-in user, and password change.

use baton_shared::{ChangePasswordRequest, User, UserEnvelope};

use crate::{call, call_no_content, json_body, ClientError, Method};

/// `GET /api/me`
pub async fn get() -> Result<User, ClientError> {
    Ok(call::<UserEnvelope>(Method::Get, "/api/me", None)
        .await?
        .user)
}

/// `PUT /api/me/password`: every other session of the user ends.
pub async fn change_password(request: &ChangePasswordRequest) -> Result<(), ClientError> {
    call_no_content(Method::Put, "/api/me/password", json_body(request)).await
}
