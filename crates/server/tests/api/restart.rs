//! A restart on the same database and key keeps every session working.

use std::time::Duration;

use baton_shared::ErrorCode;
use reqwest::StatusCode;

use crate::db_tests;
use crate::helpers::*;

db_tests!(tokens_survive_a_restart);

async fn tokens_survive_a_restart(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.tokens.reuse_grace = Duration::ZERO).await;
    let before = app.signup("alice").await;
    let rotated = app.refresh_ok(&before.refresh_token).await;
    let revoked = app.login_ok("alice").await;
    app.logout(&revoked.refresh_token).await;

    let app = app.restart().await;
    // Access and refresh tokens issued before the restart still work.
    assert_eq!(app.me(&rotated.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.me(&before.access_token).await.status(), StatusCode::OK);
    // A revocation made before the restart still holds for the access token.
    app.me_refused(&revoked.access_token, ErrorCode::SessionRevoked)
        .await;
    let next = app.refresh_ok(&rotated.refresh_token).await;
    // Reuse detection still fires for a token rotated before the restart.
    app.refresh_refused(&before.refresh_token, ErrorCode::RefreshTokenReused)
        .await;
    app.refresh_refused(&next.refresh_token, ErrorCode::SessionRevoked)
        .await;
}
