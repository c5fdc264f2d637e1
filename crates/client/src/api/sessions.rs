//! `/api/sessions`: the user's logged-in devices.

use baton_shared::Session;
use uuid::Uuid;

use crate::{call, call_no_content, ClientError, Method};

/// `GET /api/sessions`: `current` marks this device.
pub async fn list() -> Result<Vec<Session>, ClientError> {
    call(Method::Get, "/api/sessions", None).await
}

/// `DELETE /api/sessions/{id}`: that device is logged out at its next request.
pub async fn revoke(id: Uuid) -> Result<(), ClientError> {
    call_no_content(Method::Delete, &format!("/api/sessions/{id}"), None).await
}
