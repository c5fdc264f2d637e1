//! Sessions and devices: list, revoke one, logout everywhere, password change.

use baton_shared::{ErrorCode, Session};
use reqwest::StatusCode;
use serde_json::json;

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    sessions_list_marks_the_current_one,
    revoking_a_session_stops_its_tokens_at_once,
    another_users_session_is_not_found,
    logout_all_ends_every_session,
    password_change_keeps_only_this_session,
);

async fn sessions_list_marks_the_current_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let laptop = app.signup("alice").await;
    let phone = app.login_ok("alice").await;
    let ended = app.login_ok("alice").await;
    app.logout(&ended.refresh_token).await;
    let sessions: Vec<Session> = app
        .get("/api/sessions", Some(&phone.access_token))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = sessions.iter().map(|s| s.id).collect();
    assert_eq!(
        sessions.len(),
        2,
        "revoked sessions are not listed: {ids:?}"
    );
    assert!(ids.contains(&laptop.session_id) && ids.contains(&phone.session_id));
    for s in &sessions {
        assert_eq!(s.current, s.id == phone.session_id);
        assert!(s.expires_at > s.created_at);
        assert!(s.last_used_at >= s.created_at);
    }
}

async fn revoking_a_session_stops_its_tokens_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let laptop = app.signup("alice").await;
    let phone = app.login_ok("alice").await;
    let r = app
        .delete(
            &format!("/api/sessions/{}", phone.session_id),
            Some(&laptop.access_token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.me_refused(&phone.access_token, ErrorCode::SessionRevoked)
        .await;
    app.refresh_refused(&phone.refresh_token, ErrorCode::SessionRevoked)
        .await;
    assert_eq!(app.me(&laptop.access_token).await.status(), StatusCode::OK);
    // Again: it is gone.
    let r = app
        .delete(
            &format!("/api/sessions/{}", phone.session_id),
            Some(&laptop.access_token),
        )
        .await;
    assert_error(r, 404, ErrorCode::NotFound).await;
}

async fn another_users_session_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let r = app
        .delete(
            &format!("/api/sessions/{}", alice.session_id),
            Some(&bob.access_token),
        )
        .await;
    assert_error(r, 404, ErrorCode::NotFound).await;
    assert_eq!(
        app.me(&alice.access_token).await.status(),
        StatusCode::OK,
        "untouched"
    );
    let r = app
        .delete("/api/sessions/not-a-uuid", Some(&bob.access_token))
        .await;
    assert_error(r, 404, ErrorCode::NotFound).await;
}

async fn logout_all_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.signup("alice").await;
    let b = app.login_ok("alice").await;
    let bob = app.signup("bob").await;
    let r = app
        .post("/api/auth/logout-all", &json!({}), Some(&a.access_token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for pair in [&a, &b] {
        app.me_refused(&pair.access_token, ErrorCode::SessionRevoked)
            .await;
        app.refresh_refused(&pair.refresh_token, ErrorCode::SessionRevoked)
            .await;
    }
    assert_eq!(
        app.me(&bob.access_token).await.status(),
        StatusCode::OK,
        "other users untouched"
    );
    // Its own token is now revoked: a second call is refused.
    assert_error(
        app.post("/api/auth/logout-all", &json!({}), Some(&a.access_token))
            .await,
        401,
        ErrorCode::SessionRevoked,
    )
    .await;
}

async fn password_change_keeps_only_this_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let here = app.signup("alice").await;
    let elsewhere = app.login_ok("alice").await;
    let wrong = app
        .put(
            "/api/me/password",
            &json!({"current_password": "wrong password", "new_password": "a new password"}),
            Some(&here.access_token),
        )
        .await;
    assert_error(wrong, 403, ErrorCode::InvalidCredentials).await;
    let weak = app
        .put(
            "/api/me/password",
            &json!({"current_password": PASSWORD, "new_password": "short"}),
            Some(&here.access_token),
        )
        .await;
    let e = assert_error(weak, 400, ErrorCode::InvalidInput).await;
    assert!(e.fields.unwrap().contains_key("new_password"));
    assert_eq!(
        app.me(&elsewhere.access_token).await.status(),
        StatusCode::OK,
        "failures change nothing"
    );

    let r = app
        .put(
            "/api/me/password",
            &json!({"current_password": PASSWORD, "new_password": "a new password"}),
            Some(&here.access_token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.me_refused(&elsewhere.access_token, ErrorCode::SessionRevoked)
        .await;
    app.refresh_refused(&elsewhere.refresh_token, ErrorCode::SessionRevoked)
        .await;
    assert_eq!(app.me(&here.access_token).await.status(), StatusCode::OK);
    app.refresh_ok(&here.refresh_token).await;
    assert_error(
        app.login("alice", PASSWORD).await,
        401,
        ErrorCode::InvalidCredentials,
    )
    .await;
    assert_eq!(
        app.login("alice", "a new password").await.status(),
        StatusCode::OK
    );
}
