//! Every check of a DPoP proof (RFC 9449 section 4.3) has its refusal; server nonces
//! (section 8); a proof is accepted once (section 11.1), across instances for login
//! and refresh.

use baton_server::dpop::nonce::Nonces;
use baton_shared::ErrorCode;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::db_tests;
use crate::dpop_client::*;
use crate::helpers::*;

db_tests!(
    every_check_of_a_proof_has_its_refusal,
    a_login_proof_must_be_valid_too,
    the_nonce_flow,
    a_proof_is_accepted_once,
    login_and_refresh_proofs_are_accepted_once_across_instances,
    used_proofs_are_purged_when_their_nonce_expires,
);

/// `GET /api/me` with `Authorization: DPoP <token>` and these `DPoP` headers.
async fn me_with(app: &TestApp, token: &str, proofs: &[&str]) -> reqwest::Response {
    let authorization = format!("DPoP {token}");
    let mut headers = vec![("Authorization", authorization.as_str())];
    headers.extend(proofs.iter().map(|p| ("DPoP", *p)));
    send_raw(app, Method::GET, "/api/me", None, &headers).await
}

async fn every_check_of_a_proof_has_its_refusal(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = DpopClient::new(&app, DpopKey::ed25519());
    let pair = owner.signup("alice").await;
    let token = pair.access_token.as_str();
    let (key, nonce) = (&owner.key, owner.nonce().unwrap());
    let url = app.url("/api/me");
    let claims = || key.claims("GET", &url, Some(&nonce), Some(token));
    let changed = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        key.sign(&key.header(), &c)
    };
    let with_header = |name: &str, value: Value| {
        let mut h = key.header();
        h[name] = value;
        key.sign(&h, &claims())
    };
    let now = baton_server::clock::now_ms() / 1000;
    let good = key.sign(&key.header(), &claims());
    let mut private_jwk = key.jwk.clone();
    private_jwk["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    let other = DpopKey::ed25519();
    let (h, c, _) = {
        let mut parts = good.split('.');
        (parts.next().unwrap(), parts.next().unwrap(), parts.next())
    };
    let cases: Vec<(&str, String)> = vec![
        ("wrong htm", changed("htm", json!("POST"))),
        (
            "wrong htu path",
            changed("htu", json!(app.url("/api/notes"))),
        ),
        (
            "wrong htu origin",
            changed("htu", json!("http://evil.example/api/me")),
        ),
        ("no ath", {
            let mut c = claims();
            c.as_object_mut().unwrap().remove("ath");
            key.sign(&key.header(), &c)
        }),
        (
            "ath of another token",
            changed("ath", json!("x".repeat(43))),
        ),
        ("stale iat", changed("iat", json!(now - 2 * 86_400))),
        (
            "iat from the future",
            changed("iat", json!(now + 2 * 86_400)),
        ),
        ("iat not a number", changed("iat", json!("now"))),
        ("no jti", {
            let mut c = claims();
            c.as_object_mut().unwrap().remove("jti");
            key.sign(&key.header(), &c)
        }),
        ("typ JWT", with_header("typ", json!("JWT"))),
        (
            "alg none",
            format!("{}.{c}.", {
                let mut h = key.header();
                h["alg"] = json!("none");
                b64_json(&h)
            }),
        ),
        ("alg HS256", with_header("alg", json!("HS256"))),
        (
            "alg ES256 with an Ed25519 key",
            with_header("alg", json!("ES256")),
        ),
        ("private jwk", with_header("jwk", private_jwk)),
        ("another key's signature", {
            // The owner's jwk in the header, signed by someone else.
            other.sign(&key.header(), &claims())
        }),
        ("a cut signature", format!("{h}.{c}.AAAA")),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (case, proof) in &cases {
        let r = me_with(&app, token, &[proof]).await;
        let why = challenge(&r).unwrap_or_default();
        assert!(r.headers().contains_key("dpop-nonce"), "{case}: a nonce");
        let body = assert_error(r, 401, ErrorCode::InvalidDpopProof).await;
        assert!(
            why.contains(r#"error="invalid_dpop_proof""#),
            "{case}: {why}"
        );
        assert!(
            body.message.contains(expected_reason(case)),
            "{case}: refused for another reason: {}",
            body.message
        );
    }
    // Two DPoP headers.
    let (a, b) = (
        key.sign(&key.header(), &claims()),
        key.sign(&key.header(), &claims()),
    );
    assert_error(
        me_with(&app, token, &[&a, &b]).await,
        401,
        ErrorCode::InvalidDpopProof,
    )
    .await;
    // The request was otherwise fine: the good proof passes.
    assert_eq!(
        me_with(&app, token, &[&good]).await.status(),
        StatusCode::OK
    );
    // A browser whose clock is two hours off still works: the nonce makes it fresh.
    let skewed = changed("iat", json!(now - 7200));
    assert_eq!(
        me_with(&app, token, &[&skewed]).await.status(),
        StatusCode::OK
    );
}

/// The part of the refusal's message that names the check each case fails.
fn expected_reason(case: &str) -> &'static str {
    match case {
        "wrong htm" => "htm",
        "wrong htu path" => "htu",
        "wrong htu origin" => "htu",
        "no ath" => "no ath",
        "ath of another token" => "ath is not",
        "stale iat" => "iat is too far",
        "iat from the future" => "iat is too far",
        "iat not a number" => "claims",
        "no jti" => "claims",
        "typ JWT" => "typ",
        "alg none" => "alg",
        "alg HS256" => "alg",
        "alg ES256 with an Ed25519 key" => "EC key",
        "private jwk" => "private key",
        "another key's signature" => "signature",
        "a cut signature" => "signature",
        "not a JWT" => "compact JWS",
        _ => unreachable!("{case}"),
    }
}

async fn post_with_proof(
    app: &TestApp,
    path: &str,
    body: &Value,
    proof: &str,
) -> reqwest::Response {
    send_raw(app, Method::POST, path, Some(body), &[("DPoP", proof)]).await
}

fn b64_json(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn a_login_proof_must_be_valid_too(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("alice", PASSWORD).await;
    let client = DpopClient::new(&app, DpopKey::p256());
    let body = json!({"username": "alice", "password": PASSWORD});
    // A first try fetches a nonce.
    let r = client.login("nobody").await;
    assert_error(r, 401, ErrorCode::InvalidCredentials).await;
    let nonce = client.nonce().unwrap();
    let url = app.url("/api/auth/login");
    let mut private_jwk = client.key.jwk.clone();
    private_jwk["d"] = json!("AAAA");
    let mut header = client.key.header();
    header["jwk"] = private_jwk;
    let claims = client.key.claims("POST", &url, Some(&nonce), None);
    let wrong_url = client
        .key
        .proof("POST", &app.url("/api/auth/refresh"), Some(&nonce), None);
    for (case, proof) in [
        ("private jwk", client.key.sign(&header, &claims)),
        ("wrong htu", wrong_url),
        (
            "wrong htm",
            client.key.proof("PUT", &url, Some(&nonce), None),
        ),
    ] {
        let r = post_with_proof(&app, "/api/auth/login", &body, &proof).await;
        assert!(
            challenge(&r).is_none(),
            "{case}: a token endpoint answers in its body"
        );
        assert_error(r, 400, ErrorCode::InvalidDpopProof).await;
    }
    client.login_ok("alice").await;
}

async fn the_nonce_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("alice", PASSWORD).await;
    let key = DpopKey::ed25519();
    let body = json!({"username": "alice", "password": PASSWORD});
    let login = |proof: String| {
        let (app, body) = (&app, &body);
        async move { post_with_proof(app, "/api/auth/login", body, &proof).await }
    };
    let url = app.url("/api/auth/login");
    // No nonce: 400 use_dpop_nonce, with one to use.
    let r = login(key.proof("POST", &url, None, None)).await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_error(r, 400, ErrorCode::UseDpopNonce).await;
    // A forged nonce, and one past its lifetime (made with the server's own key).
    let ttl = baton_server::clock::seconds(app.config.dpop.nonce_ttl);
    let now = baton_server::clock::now_ms() / 1000;
    let old = Nonces::new(app.state.keys.dpop_nonce_key(), ttl).issue(now - ttl - 10, 0);
    for bad in ["AQAAAABl8dZ4AAAAAAAAAAAAAAAAAAAAAAA", old.to_str().unwrap()] {
        let r = login(key.proof("POST", &url, Some(bad), None)).await;
        assert_error(r, 400, ErrorCode::UseDpopNonce).await;
    }
    // With the nonce it was given: logged in, and the answer carries the nonce.
    let r = login(key.proof("POST", &url, Some(&nonce), None)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("dpop-nonce"));
    let pair: baton_shared::TokenPair = r.json().await.unwrap();
    // On a resource: 401 with a DPoP challenge and a nonce.
    let me = app.url("/api/me");
    let r = me_with(
        &app,
        &pair.access_token,
        &[&key.proof("GET", &me, None, Some(&pair.access_token))],
    )
    .await;
    let why = challenge(&r).unwrap();
    assert!(
        why.contains(r#"error="use_dpop_nonce""#) && why.contains(r#"algs="EdDSA ES256""#),
        "{why}"
    );
    let fresh = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_error(r, 401, ErrorCode::UseDpopNonce).await;
    let old_proof = key.proof("GET", &me, old.to_str().ok(), Some(&pair.access_token));
    assert_error(
        me_with(&app, &pair.access_token, &[&old_proof]).await,
        401,
        ErrorCode::UseDpopNonce,
    )
    .await;
    let proof = key.proof("GET", &me, Some(&fresh), Some(&pair.access_token));
    assert_eq!(
        me_with(&app, &pair.access_token, &[&proof]).await.status(),
        StatusCode::OK
    );
    // Another instance (same master key) accepts this instance's nonce: no shared store.
    let b = app.second_instance().await;
    let client = DpopClient::new(&b, key);
    client.set_nonce(Some(fresh));
    let proof = client.proof(&Method::GET, "/api/me", Some(&pair.access_token));
    assert_eq!(
        me_with(&b, &pair.access_token, &[&proof]).await.status(),
        StatusCode::OK
    );
}

async fn a_proof_is_accepted_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = DpopClient::new(&app, DpopKey::ed25519());
    let pair = owner.signup("alice").await;
    let proof = owner.proof(&Method::GET, "/api/me", Some(&pair.access_token));
    assert_eq!(
        me_with(&app, &pair.access_token, &[&proof]).await.status(),
        StatusCode::OK
    );
    let r = me_with(&app, &pair.access_token, &[&proof]).await;
    let body = assert_error(r, 401, ErrorCode::InvalidDpopProof).await;
    assert!(body.message.contains("used before"), "{}", body.message);
    assert_eq!(owner.me(&pair.access_token).await.status(), StatusCode::OK);
}

async fn login_and_refresh_proofs_are_accepted_once_across_instances(backend: Backend) {
    // One public origin for both instances, as behind one load balancer.
    let origin = "http://baton.test";
    let a = spawn_app_with(backend, |c| {
        c.dpop.public_origin = Some(origin.parse().unwrap())
    })
    .await;
    let b = a.second_instance().await;
    a.register("alice", PASSWORD).await;
    let client = DpopClient::new(&a, DpopKey::p256()).with_origin(origin);
    client.login_ok("alice").await; // fetches a nonce
    let body = json!({"username": "alice", "password": PASSWORD});
    let proof = client.proof(&Method::POST, "/api/auth/login", None);
    let login = "/api/auth/login";
    let r = post_with_proof(&a, login, &body, &proof).await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair: baton_shared::TokenPair = r.json().await.unwrap();
    for app in [&b, &a] {
        let r = post_with_proof(app, login, &body, &proof).await;
        assert_error(r, 400, ErrorCode::InvalidDpopProof).await;
    }
    // A refresh proof, replayed on the other instance with the next refresh token.
    let proof = client.proof(&Method::POST, "/api/auth/refresh", None);
    let refresh = "/api/auth/refresh";
    let body = json!({"refresh_token": pair.refresh_token});
    let r = post_with_proof(&a, refresh, &body, &proof).await;
    assert_eq!(r.status(), StatusCode::OK);
    let next: baton_shared::TokenPair = r.json().await.unwrap();
    let body = json!({"refresh_token": next.refresh_token});
    let r = post_with_proof(&b, refresh, &body, &proof).await;
    assert_error(r, 400, ErrorCode::InvalidDpopProof).await;
    // Nothing rotated: the client's own next proof works, on either instance.
    let nonce = client.nonce();
    let client_b = DpopClient::new(&b, client.key).with_origin(origin);
    client_b.set_nonce(nonce);
    client_b.refresh_ok(&next.refresh_token).await;
}

async fn used_proofs_are_purged_when_their_nonce_expires(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = DpopClient::new(&app, DpopKey::ed25519());
    client.signup("alice").await;
    let count = || async {
        let (n,): (i64,) = app
            .state
            .db
            .write()
            .fetch_one("SELECT COUNT(*) FROM dpop_proofs", &[])
            .await
            .unwrap();
        n
    };
    assert_eq!(count().await, 1, "the login's proof");
    app.state.purge_once().await.unwrap();
    assert_eq!(count().await, 1, "kept while its nonce is good");
    app.state
        .db
        .write()
        .execute("UPDATE dpop_proofs SET expires_at = 0", &[])
        .await
        .unwrap();
    app.state.purge_once().await.unwrap();
    assert_eq!(count().await, 0);
}
