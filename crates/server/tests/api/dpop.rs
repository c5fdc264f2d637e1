//! DPoP sessions (RFC 9449): a login with a proof binds the session to the key, and
//! copies of its tokens are worthless without that key. The modes.

use baton_server::config::DpopMode;
use baton_shared::{ErrorCode, TokenPair};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::db_tests;
use crate::dpop_client::*;
use crate::helpers::*;

db_tests!(
    a_login_with_a_proof_binds_the_session_to_its_key,
    a_copied_access_token_is_refused_without_its_key,
    a_copied_refresh_token_is_refused_without_its_key,
    bearer_sessions_still_work_when_dpop_is_allowed,
    required_refuses_logins_and_tokens_without_a_proof,
    off_reads_no_proofs_and_unbinds_no_session,
);

fn cnf_jkt(pair: &TokenPair) -> Option<String> {
    let (_, claims) = jwt_parts(&pair.access_token);
    claims["cnf"]["jkt"].as_str().map(str::to_owned)
}

async fn a_login_with_a_proof_binds_the_session_to_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    for (name, key) in [
        ("edwards", DpopKey::ed25519()),
        ("weierstrass", DpopKey::p256()),
    ] {
        let jkt = key.jkt.clone();
        let client = DpopClient::new(&app, key);
        let pair = client.signup(name).await;
        assert_eq!(pair.token_type, "DPoP", "{name}");
        assert_eq!(cnf_jkt(&pair).as_deref(), Some(jkt.as_str()), "{name}");
        assert_eq!(session_jkt(&app, pair.session_id).await, Some(jkt.clone()));
        assert_eq!(client.me(&pair.access_token).await.status(), StatusCode::OK);
        // Every refresh keeps the binding.
        let next = client.refresh_ok(&pair.refresh_token).await;
        assert_eq!(next.token_type, "DPoP");
        assert_eq!(cnf_jkt(&next).as_deref(), Some(jkt.as_str()));
        let last = client.refresh_ok(&next.refresh_token).await;
        assert_eq!(client.me(&last.access_token).await.status(), StatusCode::OK);
    }
}

async fn a_copied_access_token_is_refused_without_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = DpopClient::new(&app, DpopKey::ed25519());
    let pair = owner.signup("alice").await;
    // The thief has the token (copied out of localStorage), not the key.
    let r = app.me(&pair.access_token).await;
    let bearer = challenge(&r).unwrap();
    assert_error(r, 401, ErrorCode::TokenInvalid).await;
    assert!(
        bearer.starts_with("DPoP ") && bearer.contains(r#"error="invalid_token""#),
        "{bearer}"
    );
    for thief_key in [DpopKey::ed25519(), DpopKey::p256()] {
        let thief = DpopClient::new(&app, thief_key);
        let r = thief.me(&pair.access_token).await;
        let why = challenge(&r).unwrap();
        assert_error(r, 401, ErrorCode::InvalidDpopProof).await;
        assert!(why.contains(r#"error="invalid_dpop_proof""#), "{why}");
    }
    // The DPoP scheme without a proof.
    let authorization = format!("DPoP {}", pair.access_token);
    let r = send_raw(
        &app,
        Method::GET,
        "/api/me",
        None,
        &[("Authorization", &authorization)],
    )
    .await;
    assert_error(r, 401, ErrorCode::InvalidDpopProof).await;
    // The owner's calls are untouched, and the session lives on.
    assert_eq!(owner.me(&pair.access_token).await.status(), StatusCode::OK);
    owner.refresh_ok(&pair.refresh_token).await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    for line in [
        r#"baton_dpop_refusals_total{reason="bearer_downgrade"} 1"#,
        r#"baton_dpop_refusals_total{reason="wrong_key"} 2"#,
        r#"baton_dpop_refusals_total{reason="missing_proof"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

async fn a_copied_refresh_token_is_refused_without_its_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = DpopClient::new(&app, DpopKey::p256());
    let thief = DpopClient::new(&app, DpopKey::ed25519());
    let pair = owner.signup("alice").await;
    // Without a proof, and with a proof by another key: refused, nothing changes.
    assert_error(
        app.refresh(&pair.refresh_token).await,
        400,
        ErrorCode::InvalidDpopProof,
    )
    .await;
    let r = thief.refresh(&pair.refresh_token).await;
    let body = assert_error(r, 400, ErrorCode::InvalidDpopProof).await;
    assert!(body.message.contains("another key"), "{}", body.message);
    assert_eq!(app.refresh_tokens_of(pair.session_id).await, 1);
    // The owner's token still rotates, and the session was not ended.
    let next = owner.refresh_ok(&pair.refresh_token).await;
    // A used token presented by the thief is not even reuse: without the key, it
    // cannot end the owner's session.
    assert_error(
        thief.refresh(&pair.refresh_token).await,
        400,
        ErrorCode::InvalidDpopProof,
    )
    .await;
    assert_eq!(owner.me(&next.access_token).await.status(), StatusCode::OK);
    owner.refresh_ok(&next.refresh_token).await;
}

async fn bearer_sessions_still_work_when_dpop_is_allowed(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("curl").await;
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(cnf_jkt(&pair), None);
    assert_eq!(session_jkt(&app, pair.session_id).await, None);
    assert_eq!(app.me(&pair.access_token).await.status(), StatusCode::OK);
    let next = app.refresh_ok(&pair.refresh_token).await;
    assert_eq!(next.token_type, "Bearer");
    // A proof on a Bearer session's refresh is checked but binds nothing.
    let client = DpopClient::new(&app, DpopKey::ed25519());
    let r = client.refresh(&next.refresh_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let last: TokenPair = r.json().await.unwrap();
    assert_eq!(last.token_type, "Bearer");
    assert_eq!(cnf_jkt(&last), None);
    assert_eq!(app.me(&last.access_token).await.status(), StatusCode::OK);
    // And an unbound token may be sent in the DPoP scheme, with a valid proof.
    assert_eq!(client.me(&last.access_token).await.status(), StatusCode::OK);
}

async fn required_refuses_logins_and_tokens_without_a_proof(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.signup("early").await; // a Bearer session from before
    let app = app.restart_with(|c| c.dpop.mode = DpopMode::Required).await;
    let r = app.login("early", PASSWORD).await;
    assert!(
        r.headers().contains_key("dpop-nonce"),
        "a nonce to build a proof with"
    );
    let body = assert_error(r, 400, ErrorCode::InvalidDpopProof).await;
    assert!(body.message.contains("required"), "{}", body.message);
    let client = DpopClient::new(&app, DpopKey::ed25519());
    let pair = client.login_ok("early").await;
    assert_eq!(pair.token_type, "DPoP");
    assert_eq!(client.me(&pair.access_token).await.status(), StatusCode::OK);
    // The Bearer session of before can neither call nor refresh.
    assert_error(
        app.me(&before.access_token).await,
        401,
        ErrorCode::InvalidDpopProof,
    )
    .await;
    assert_error(
        client.refresh(&before.refresh_token).await,
        400,
        ErrorCode::InvalidDpopProof,
    )
    .await;
}

async fn off_reads_no_proofs_and_unbinds_no_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = DpopClient::new(&app, DpopKey::ed25519());
    let bound = owner.signup("alice").await;
    let key = owner.key;
    let app = app.restart_with(|c| c.dpop.mode = DpopMode::Off).await;
    let owner = DpopClient::new(&app, key);
    // A bound session cannot go on as a Bearer one: its user logs in again.
    assert_error(
        owner.refresh(&bound.refresh_token).await,
        401,
        ErrorCode::RefreshTokenInvalid,
    )
    .await;
    assert_error(
        app.me(&bound.access_token).await,
        401,
        ErrorCode::TokenInvalid,
    )
    .await;
    // The DPoP scheme is not known, and proofs are not read.
    let r = owner.me(&bound.access_token).await;
    assert!(!r.headers().contains_key("dpop-nonce"));
    assert_error(r, 401, ErrorCode::Unauthenticated).await;
    let r = owner
        .send(
            Method::POST,
            "/api/auth/login",
            Some(&json!({"username": "alice", "password": PASSWORD})),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair: TokenPair = r.json().await.unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(session_jkt(&app, pair.session_id).await, None);
}
