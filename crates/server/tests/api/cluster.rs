//! Several instances on one database behave as one: reuse detection, revocation and
//! key rotation cross instances.

use std::time::{Duration, Instant};

use baton_shared::ErrorCode;
use reqwest::StatusCode;

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    reuse_is_detected_across_instances,
    logout_on_one_instance_stops_the_token_on_another_within_2s,
    a_key_rotated_on_one_instance_signs_and_verifies_on_both,
);

/// Two instances with the default sync interval (500 ms) on one database.
async fn pair_of_instances(backend: Backend) -> (TestApp, TestApp) {
    let a = spawn_app_with(backend, |c| {
        c.background.sync_interval = baton_server::config::Config::default()
            .background
            .sync_interval;
        c.tokens.reuse_grace = Duration::ZERO;
    })
    .await;
    let b = a.second_instance().await;
    (a, b)
}

async fn reuse_is_detected_across_instances(backend: Backend) {
    let (a, b) = pair_of_instances(backend).await;
    let first = a.signup("alice").await;
    let second = a.refresh_ok(&first.refresh_token).await;
    // Replayed on the other instance: reuse, and the family dies on both.
    b.refresh_refused(&first.refresh_token, ErrorCode::RefreshTokenReused)
        .await;
    a.refresh_refused(&second.refresh_token, ErrorCode::SessionRevoked)
        .await;
    // The access token of the revoked session stops on both (B revoked it itself).
    b.me_refused(&second.access_token, ErrorCode::SessionRevoked)
        .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.me(&second.access_token).await.status() == StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "instance A still accepts the token after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn logout_on_one_instance_stops_the_token_on_another_within_2s(backend: Backend) {
    let (a, b) = pair_of_instances(backend).await;
    let pair = a.signup("alice").await;
    assert_eq!(b.me(&pair.access_token).await.status(), StatusCode::OK);
    let start = Instant::now();
    assert_eq!(
        a.logout(&pair.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    a.me_refused(&pair.access_token, ErrorCode::SessionRevoked)
        .await;
    loop {
        let r = b.me(&pair.access_token).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            assert_error(r, 401, ErrorCode::SessionRevoked).await;
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "B still accepted the token {:?} after the logout",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!(
        "revocation reached the other instance in {:?}",
        start.elapsed()
    );
}

async fn a_key_rotated_on_one_instance_signs_and_verifies_on_both(backend: Backend) {
    let (a, b) = pair_of_instances(backend).await;
    let before = a.signup("alice").await;
    let old_kid = jwt_parts(&before.access_token).0["kid"].clone();

    // Rotate on A, the way the operator command does (activation delay 0 in tests).
    let key = a.state.keys.rotate(&a.state.db, 0).await.unwrap();
    // Both instances pick it up from the database.
    let deadline = Instant::now() + Duration::from_secs(3);
    for app in [&a, &b] {
        loop {
            let pair = app.login_ok("alice").await;
            if jwt_parts(&pair.access_token).0["kid"] == key.kid.as_str() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the new key never signed on {}",
                app.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let from_a = a.login_ok("alice").await;
    let from_b = b.login_ok("alice").await;
    for token in [&from_a.access_token, &from_b.access_token] {
        assert_eq!(jwt_parts(token).0["kid"], key.kid.as_str());
        assert_eq!(a.me(token).await.status(), StatusCode::OK);
        assert_eq!(b.me(token).await.status(), StatusCode::OK);
    }
    // The token signed before the rotation still works on both, and both JWKS list both keys.
    assert_eq!(a.me(&before.access_token).await.status(), StatusCode::OK);
    assert_eq!(b.me(&before.access_token).await.status(), StatusCode::OK);
    for app in [&a, &b] {
        let jwks: serde_json::Value = app.jwks().await;
        let kids: Vec<&serde_json::Value> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| &k["kid"])
            .collect();
        assert!(
            kids.contains(&&old_kid) && kids.iter().any(|k| *k == key.kid.as_str()),
            "{kids:?}"
        );
    }
}
