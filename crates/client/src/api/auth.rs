//! `/api/auth/*`: register, login, logout, logout-all.

use std::future::Future;

use baton_shared::{LoginRequest, RegisterRequest, User, UserEnvelope};

use crate::{call_no_content, call_public, json_body, runtime, ClientError, Method};

/// `POST /api/auth/register`: creates the account (does not log in).
pub async fn register(request: &RegisterRequest) -> Result<User, ClientError> {
    let answer = call_public(Method::Post, "/api/auth/register", json_body(request)).await?;
    Ok(answer.json::<UserEnvelope>()?.user)
}

/// `POST /api/auth/login`: with a proof by a new DPoP key of this browser, which the
/// session is bound to; on success the session is stored and shared with every tab.
pub async fn login(request: &LoginRequest) -> Result<User, ClientError> {
    runtime::log_in(json_body(request)).await
}

/// Logs out: forgets the session in every tab at once, during this call, before the
/// future it gives back is first polled (so before the page renders anything else);
/// the future ends the session on the server with a request that survives the page
/// closing. The local logout happens even if the server cannot be reached (the error
/// is still returned, for the app to mention) or the future is dropped.
pub fn logout() -> impl Future<Output = Result<(), ClientError>> {
    runtime::log_out_on_server(runtime::take_session())
}

/// `POST /api/auth/logout-all`: ends every session of the user, then this one locally.
pub async fn logout_all() -> Result<(), ClientError> {
    call_no_content(Method::Post, "/api/auth/logout-all", None).await?;
    runtime::take_session();
    Ok(())
}
