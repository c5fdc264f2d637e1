//! Signing-key rotation: tokens signed before a rotation keep working until they
//! expire, then answer `token_expired` (not `token_invalid`); unknown kids are refused.

use std::time::Duration;

use base64::Engine;
use baton_server::config::{JwtAlgorithm, Secret};
use baton_server::keys::{KeyRing, MasterKey};
use baton_server::tokens::AccessTokens;
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

db_tests!(
    a_replaced_key_refuses_tokens_signed_after_its_replacement,
    a_stored_public_key_that_does_not_match_its_private_key_is_refused,
    a_previous_hs256_secret_refuses_tokens_signed_after_its_replacement,
);

/// What someone who stole the app's signing keys holds: the stored rows, opened with
/// the master key of the data directory.
async fn stolen_keys(app: &TestApp) -> AccessTokens {
    let master = std::fs::read_to_string(app.data_dir.path().join("master.key")).unwrap();
    let master = MasterKey::from_base64(&master).unwrap();
    let rows = baton_server::store::keys::all(&app.state.db).await.unwrap();
    let ring = KeyRing::from_rows(&rows, &master, i64::MAX / 4).unwrap();
    AccessTokens::new(&app.config.tokens, ring)
}

async fn a_replaced_key_refuses_tokens_signed_after_its_replacement(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signup("alice").await;
    let stolen = stolen_keys(&app).await;
    let (signed_before, _) = stolen.sign(alice.user.id, alice.session_id).unwrap();
    app.state.keys.rotate(&app.state.db, 0).await.unwrap();
    app.state.sync_once().await.unwrap();
    // What the old key signed before it was replaced works until it expires...
    assert_eq!(app.me(&alice.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.me(&signed_before).await.status(), StatusCode::OK);
    // ...but a token it signs now, with a fresh `iat`, is refused: whoever stole the
    // key cannot go on minting tokens after the rotation. (`iat` is in whole seconds.)
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (forged, _) = stolen.sign(alice.user.id, alice.session_id).unwrap();
    // Refused as no longer valid: a client refreshes, a forger gets nothing.
    app.me_refused(&forged, ErrorCode::TokenExpired).await;
}

async fn a_stored_public_key_that_does_not_match_its_private_key_is_refused(backend: Backend) {
    let mut app = spawn_app(backend).await;
    // A key published ahead of its activation: it verifies, but does not sign yet.
    let next = app.state.keys.rotate(&app.state.db, 600_000).await.unwrap();
    // Someone who can write to the database, but has no master key, puts their own
    // public key in its row, to sign tokens with their private key under its kid.
    let theirs = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = theirs.verifying_key().to_bytes();
    app.state
        .db
        .write()
        .execute(
            "UPDATE signing_keys SET public_key = $1 WHERE kid = $2",
            &[public[..].into(), next.kid.as_str().into()],
        )
        .await
        .unwrap();
    app.stop().await;
    let err = baton_server::Application::build(app.config.clone())
        .await
        .err()
        .expect("a key whose public half is not its own is refused");
    assert!(format!("{err:#}").contains(&next.kid), "{err:#}");
}

async fn a_previous_hs256_secret_refuses_tokens_signed_after_its_replacement(backend: Backend) {
    const OLD: &str = "the-old-hs256-secret-of-at-least-32-bytes";
    const NEW: &str = "the-new-hs256-secret-of-at-least-32-bytes";
    let app = spawn_app_with(backend, |c| {
        c.keys.alg = JwtAlgorithm::Hs256;
        c.keys.jwt_secret = Some(Secret::new(OLD));
    })
    .await;
    let alice = app.signup("alice").await;
    let stolen = AccessTokens::new(
        &app.config.tokens,
        KeyRing::from_secrets(OLD.as_bytes(), &[], i64::MAX / 4),
    );
    // The documented rotation: the new secret signs, the old one still verifies.
    let app = app
        .restart_with(|c| {
            c.keys.jwt_secret = Some(Secret::new(NEW));
            c.keys.jwt_previous_secrets = vec![Secret::new(OLD)];
        })
        .await;
    assert_eq!(app.me(&alice.access_token).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (forged, _) = stolen.sign(alice.user.id, alice.session_id).unwrap();
    app.me_refused(&forged, ErrorCode::TokenExpired).await;
    // Revoked: what it signed before stops too, at once.
    let kid = jwt_parts(&alice.access_token).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.state.keys.revoke(&app.state.db, &kid).await.unwrap();
    app.state.sync_once().await.unwrap();
    app.me_refused(&alice.access_token, ErrorCode::TokenExpired)
        .await;
    let refreshed = app.refresh_ok(&alice.refresh_token).await;
    assert_eq!(
        app.me(&refreshed.access_token).await.status(),
        StatusCode::OK
    );
    // The current secret cannot be revoked: nothing would sign.
    let current = jwt_parts(&refreshed.access_token).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(app
        .state
        .keys
        .revoke(&app.state.db, &current)
        .await
        .is_err());
}
