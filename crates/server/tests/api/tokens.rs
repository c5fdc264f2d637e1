//! The access-token failure table (API.md, RFC 6750 section 3) and the JWKS.

use std::time::Duration;

use base64::Engine;
use baton_shared::ErrorCode;
use reqwest::StatusCode;

use crate::db_tests;
use crate::helpers::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

db_tests!(
    missing_or_non_bearer_authorization,
    empty_or_malformed_bearer_value,
    expired_access_token,
    tampered_and_foreign_tokens,
    jwks_publishes_the_verifying_key,
);

async fn missing_or_non_bearer_authorization(backend: Backend) {
    let app = spawn_app(backend).await;
    for auth in [None, Some("Basic YWxpY2U6cGFzc3dvcmQ="), Some("Token abc")] {
        let mut req = app.client.get(app.url("/api/me"));
        if let Some(value) = auth {
            req = req.header("authorization", value);
        }
        let r = req.send().await.unwrap();
        assert_eq!(
            challenge(&r).as_deref(),
            Some(r#"Bearer realm="baton""#),
            "{auth:?}"
        );
        assert_error(r, 401, ErrorCode::Unauthenticated).await;
    }
}

async fn empty_or_malformed_bearer_value(backend: Backend) {
    let app = spawn_app(backend).await;
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer a b c",
        "Bearer \"quoted\"",
        "Bearer ====",
    ] {
        let r = app
            .client
            .get(app.url("/api/notes"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            challenge(&r).as_deref(),
            Some(r#"Bearer realm="baton", error="invalid_request""#),
            "{value:?}"
        );
        assert_error(r, 400, ErrorCode::InvalidRequest).await;
    }
}

async fn expired_access_token(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.tokens.access_ttl = Duration::from_secs(1)).await;
    let pair = app.signup("alice").await;
    assert_eq!(pair.expires_in, 1);
    assert_eq!(app.me(&pair.access_token).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let r = app.me(&pair.access_token).await;
    assert_eq!(
        challenge(&r).as_deref(),
        Some(
            r#"Bearer realm="baton", error="invalid_token", error_description="the access token expired""#
        )
    );
    assert_error(r, 401, ErrorCode::TokenExpired).await;
    // The one signal to refresh on: the refresh works, and so does the new token.
    let fresh = app.refresh_ok(&pair.refresh_token).await;
    assert_eq!(app.me(&fresh.access_token).await.status(), StatusCode::OK);
}

async fn tampered_and_foreign_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let (header, claims) = jwt_parts(&pair.access_token);
    let parts: Vec<&str> = pair.access_token.split('.').collect();
    let reencode = |v: &serde_json::Value| B64.encode(serde_json::to_vec(v).unwrap());

    let mut other_sub = claims.clone();
    other_sub["sub"] = serde_json::json!(bob.user.id.to_string());
    let mut other_typ = header.clone();
    other_typ["typ"] = serde_json::json!("JWT");
    let mut other_kid = header.clone();
    other_kid["kid"] = serde_json::json!("not-a-key");
    let mut hs = header.clone();
    hs["alg"] = serde_json::json!("HS256");
    let mut none = header.clone();
    none["alg"] = serde_json::json!("none");
    let mut no_sid = claims.clone();
    no_sid.as_object_mut().unwrap().remove("sid");

    let cases = vec![
        (
            "payload changed (other user)",
            format!("{}.{}.{}", parts[0], reencode(&other_sub), parts[2]),
        ),
        (
            "typ changed",
            format!("{}.{}.{}", reencode(&other_typ), parts[1], parts[2]),
        ),
        (
            "unknown kid",
            format!("{}.{}.{}", reencode(&other_kid), parts[1], parts[2]),
        ),
        (
            "alg HS256",
            format!("{}.{}.{}", reencode(&hs), parts[1], parts[2]),
        ),
        ("alg none", format!("{}.{}.", reencode(&none), parts[1])),
        (
            "claim removed",
            format!("{}.{}.{}", parts[0], reencode(&no_sid), parts[2]),
        ),
        (
            "signature of another token",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                bob.access_token.split('.').nth(2).unwrap()
            ),
        ),
        ("not a JWT", "abc".to_owned()),
        ("two parts", format!("{}.{}", parts[0], parts[1])),
        ("refresh token", pair.refresh_token.clone()),
    ];
    for (name, token) in cases {
        let r = app.me(&token).await;
        assert_eq!(
            challenge(&r).as_deref(),
            Some(r#"Bearer realm="baton", error="invalid_token""#),
            "{name}"
        );
        let body = assert_error(r, 401, ErrorCode::TokenInvalid).await;
        assert!(
            !body.message.contains("signature"),
            "no crypto detail leaks: {}",
            body.message
        );
    }

    // A token from another Baton deployment (other keys, same issuer/audience).
    let other = spawn_app(Backend::Sqlite).await;
    let foreign = other.signup("alice").await;
    app.me_refused(&foreign.access_token, ErrorCode::TokenInvalid)
        .await;
}

async fn jwks_publishes_the_verifying_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    let r = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: serde_json::Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let (header, _) = jwt_parts(&pair.access_token);
    assert_eq!(keys[0]["kid"], header["kid"]);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "never the private part");
    // An outside verifier can check our token with nothing but the JWKS.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["baton"]);
    validation.set_issuer(&["baton"]);
    let data =
        jsonwebtoken::decode::<serde_json::Value>(&pair.access_token, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], pair.user.id.to_string());
}

#[tokio::test]
async fn hs256_signs_with_the_configured_secret_and_publishes_no_key() {
    let secret = "a-shared-secret-of-at-least-32-bytes!!";
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.keys.alg = baton_server::config::JwtAlgorithm::Hs256;
        c.keys.jwt_secret = Some(baton_server::config::Secret::new(secret));
    })
    .await;
    let pair = app.signup("alice").await;
    let (header, _) = jwt_parts(&pair.access_token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "at+jwt");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["baton"]);
    jsonwebtoken::decode::<serde_json::Value>(
        &pair.access_token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .expect("a verifier sharing the secret accepts the token");
    let jwks: serde_json::Value = app.jwks().await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        0,
        "secrets are never published"
    );
}

#[tokio::test]
async fn hs256_secrets_shorter_than_32_bytes_are_refused_at_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&Backend::Sqlite, &dir);
    config.keys.alg = baton_server::config::JwtAlgorithm::Hs256;
    config.keys.jwt_secret = Some(baton_server::config::Secret::new("short-secret"));
    let err = baton_server::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("32 bytes"), "{err:#}");
}

#[tokio::test]
async fn production_refuses_to_start_without_an_explicit_key() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = test_config(&Backend::Sqlite, &dir);
    config.environment = baton_server::config::Environment::Production;
    config.database.url = Some(baton_server::config::Secret::new(format!(
        "sqlite://{}",
        dir.path().join("prod.db").display()
    )));
    let err = baton_server::Application::build(config.clone())
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("BATON_MASTER_KEY"), "{err:#}");
    assert!(
        format!("{err:#}").contains("BATON_PUBLIC_ORIGIN"),
        "{err:#}"
    );
    config.dpop.public_origin = Some("https://baton.example.com".parse().unwrap());
    config.keys.master_key = Some(baton_server::config::Secret::new(
        baton_server::keys::MasterKey::generate_base64(),
    ));
    baton_server::Application::build(config)
        .await
        .expect("starts with an explicit key");
}
