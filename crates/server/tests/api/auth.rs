//! Register, login and logout (API.md endpoint table).

use baton_shared::{ErrorCode, TokenPair, UserEnvelope};
use reqwest::StatusCode;
use serde_json::json;

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    register_creates_a_user,
    register_refuses_a_taken_username_regardless_of_case,
    register_stores_only_an_argon2id_hash,
    login_returns_a_token_pair,
    login_refuses_wrong_password_and_unknown_user_alike,
    login_records_device_and_user_agent,
    logout_ends_the_session_and_is_idempotent,
    auth_responses_are_never_cached,
);

async fn register_creates_a_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.register("Alice", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: UserEnvelope = r.json().await.unwrap();
    assert_eq!(body.user.username, "Alice", "display case is kept");
    assert_eq!(body.user.created_at.offset(), time::UtcOffset::UTC);
}

async fn register_refuses_a_taken_username_regardless_of_case(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    for name in ["alice", "ALICE", "aLiCe"] {
        assert_error(
            app.register(name, PASSWORD).await,
            409,
            ErrorCode::UsernameTaken,
        )
        .await;
    }
}

async fn register_stores_only_an_argon2id_hash(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.register("alice", PASSWORD).await;
    let user: UserEnvelope = r.json().await.unwrap();
    let hash = baton_server::store::users::find_password(&app.state.db, user.user.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(PASSWORD));
}

async fn login_returns_a_token_pair(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("alice", PASSWORD).await;
    let r = app.login("ALICE", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let raw: serde_json::Value = r.json().await.unwrap();
    for field in [
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "session_id",
        "user",
    ] {
        assert!(raw.get(field).is_some(), "TokenPair has {field}: {raw}");
    }
    let pair: TokenPair = serde_json::from_value(raw).unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert_eq!(pair.refresh_expires_in, 7 * 24 * 3600);
    assert_eq!(pair.user.username, "alice");
    let (header, claims) = jwt_parts(&pair.access_token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert!(header["kid"].is_string());
    assert_eq!(claims["sub"], pair.user.id.to_string());
    assert_eq!(claims["sid"], pair.session_id.to_string());
    assert_eq!(claims["iss"], "baton");
    assert_eq!(claims["aud"], "baton");
    // `exp` is rounded up to the whole second, `iat` down: the token lives at least
    // the 900 s the answer says.
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((900..=901).contains(&lifetime), "{lifetime}");
    assert!(claims["jti"].is_string());
    // The access token works.
    let me: UserEnvelope = app.me(&pair.access_token).await.json().await.unwrap();
    assert_eq!(me.user, pair.user);
}

async fn login_refuses_wrong_password_and_unknown_user_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice: UserEnvelope = app.register("alice", PASSWORD).await.json().await.unwrap();
    let wrong = assert_error(
        app.login("alice", "not the password").await,
        401,
        ErrorCode::InvalidCredentials,
    )
    .await;
    let unknown = assert_error(
        app.login("bob", PASSWORD).await,
        401,
        ErrorCode::InvalidCredentials,
    )
    .await;
    assert_eq!(
        wrong, unknown,
        "identical answers: usernames cannot be probed"
    );
    // Password is byte-exact: trailing space, other case.
    assert_error(
        app.login("alice", &format!("{PASSWORD} ")).await,
        401,
        ErrorCode::InvalidCredentials,
    )
    .await;
    assert_error(
        app.login("alice", &PASSWORD.to_uppercase()).await,
        401,
        ErrorCode::InvalidCredentials,
    )
    .await;
    assert_error(app.login("alice", "").await, 400, ErrorCode::InvalidInput).await;
    // No session was created by the failures.
    assert_eq!(app.sessions_of(alice.user.id).await, 0);
}

async fn login_records_device_and_user_agent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("alice", PASSWORD).await;
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .header("user-agent", "BatonTest/1.0 (X11)")
        .json(&json!({"username": "alice", "password": PASSWORD, "device_name": "  Work laptop  "}))
        .send()
        .await
        .unwrap();
    let pair: TokenPair = r.json().await.unwrap();
    let sessions: Vec<baton_shared::Session> = app
        .get("/api/sessions", Some(&pair.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].device_name.as_deref(), Some("Work laptop"));
    assert_eq!(
        sessions[0].user_agent.as_deref(),
        Some("BatonTest/1.0 (X11)")
    );
    assert!(sessions[0].current);
}

async fn logout_ends_the_session_and_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    assert_eq!(
        app.logout(&pair.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.logout(&pair.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.logout("brt_unknown-token").await.status(),
        StatusCode::NO_CONTENT
    );
    // The refresh token is dead, and so is the access token, at once.
    app.refresh_refused(&pair.refresh_token, ErrorCode::SessionRevoked)
        .await;
    let r = app.me(&pair.access_token).await;
    assert_eq!(
        challenge(&r).as_deref(),
        Some(r#"Bearer realm="baton", error="invalid_token""#)
    );
    assert_error(r, 401, ErrorCode::SessionRevoked).await;
    // Logout needs a token in the body.
    assert_error(
        app.post("/api/auth/logout", &json!({}), None).await,
        400,
        ErrorCode::InvalidInput,
    )
    .await;
    assert_error(
        app.post("/api/auth/logout", &json!({"refresh_token": ""}), None)
            .await,
        400,
        ErrorCode::InvalidInput,
    )
    .await;
}

async fn auth_responses_are_never_cached(backend: Backend) {
    let app = spawn_app(backend).await;
    let responses = vec![
        app.register("alice", PASSWORD).await,
        app.register("alice", PASSWORD).await,
        app.login("alice", PASSWORD).await,
        app.login("alice", "wrong password").await,
        app.refresh("brt_nope").await,
        app.logout("brt_nope").await,
        app.post("/api/auth/logout-all", &json!({}), None).await,
    ];
    for r in responses {
        assert_eq!(
            r.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "{} {}",
            r.url(),
            r.status()
        );
    }
}
