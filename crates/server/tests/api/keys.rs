//! Signing-key rotation: tokens signed before a rotation keep working until they
//! expire, then answer `token_expired` (not `token_invalid`); unknown kids are refused.

use std::time::Duration;

use base64::Engine;
use baton_shared::ErrorCode;
use reqwest::StatusCode;

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    rotation_keeps_old_tokens_until_they_expire,
    rotation_with_an_activation_delay
);

async fn rotation_keeps_old_tokens_until_they_expire(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.tokens.access_ttl = Duration::from_secs(2)).await;
    let old = app.signup("alice").await;
    let old_kid = jwt_parts(&old.access_token).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_key = app.state.keys.rotate(&app.state.db, 0).await.unwrap();
    app.state.sync_once().await.unwrap();

    let fresh = app.login_ok("alice").await;
    assert_eq!(
        jwt_parts(&fresh.access_token).0["kid"],
        new_key.kid.as_str()
    );
    assert_eq!(app.me(&fresh.access_token).await.status(), StatusCode::OK);
    assert_eq!(
        app.me(&old.access_token).await.status(),
        StatusCode::OK,
        "signed before the rotation"
    );

    // Past its expiry (and past the old key's time in the JWKS): "expired", so the
    // client refreshes instead of logging the user out.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    app.me_refused(&old.access_token, ErrorCode::TokenExpired)
        .await;
    let jwks: serde_json::Value = app.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        vec![new_key.kid.as_str()],
        "the retired key left the JWKS"
    );
    assert!(!kids.contains(&old_kid.as_str()));
    let refreshed = app.refresh_ok(&old.refresh_token).await;
    assert_eq!(
        app.me(&refreshed.access_token).await.status(),
        StatusCode::OK
    );

    // A token naming a kid the server never had is refused.
    let (mut header, _) = jwt_parts(&refreshed.access_token);
    header["kid"] = serde_json::json!("no-such-key");
    let parts: Vec<&str> = refreshed.access_token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&header).unwrap()),
        parts[1],
        parts[2]
    );
    app.me_refused(&forged, ErrorCode::TokenInvalid).await;
}

async fn rotation_with_an_activation_delay(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    let old_kid = jwt_parts(&pair.access_token).0["kid"].clone();
    let key = app.state.keys.rotate(&app.state.db, 1_500).await.unwrap();
    app.state.sync_once().await.unwrap();
    // Published at once, signing only after the delay.
    let jwks: serde_json::Value = app.jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let during = app.login_ok("alice").await;
    assert_eq!(jwt_parts(&during.access_token).0["kid"], old_kid);
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let after = app.login_ok("alice").await;
    assert_eq!(jwt_parts(&after.access_token).0["kid"], key.kid.as_str());
}
