//! Metrics, request ids, and logs that never contain a secret.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn metrics_count_what_happens() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.tokens.reuse_grace = Duration::ZERO).await;
    let pair = app.signup("alice").await;
    app.login("alice", "wrong password").await;
    let next = app.refresh_ok(&pair.refresh_token).await;
    app.refresh(&pair.refresh_token).await; // reuse: revokes the session
    app.refresh(&next.refresh_token).await; // session_revoked
    app.get("/api/health", None).await;

    let r = app.get("/metrics", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    for line in [
        r#"baton_logins_total{result="ok"} 1"#,
        r#"baton_logins_total{result="invalid_credentials"} 1"#,
        r#"baton_refreshes_total{result="ok"} 1"#,
        r#"baton_refreshes_total{result="refresh_token_reused"} 1"#,
        r#"baton_refreshes_total{result="session_revoked"} 1"#,
        "baton_refresh_token_reuse_detections_total 1",
        r#"baton_session_revocations_total{reason="refresh_token_reused"} 1"#,
        "baton_revoked_sessions_tracked 1",
        r#"baton_http_request_duration_seconds_count{method="POST",route="/api/auth/refresh",status="200"} 1"#,
        r#"baton_http_request_duration_seconds_count{method="GET",route="/api/health",status="200"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app.get("/api/health", None).await;
    let id = r
        .headers()
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let r = app
        .client
        .get(app.url("/api/nope"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-request-id"],
        "trace-me-123",
        "an incoming id is kept"
    );
}

/// Runs the real binary with JSON logs, drives every secret-bearing endpoint, and
/// searches the whole log for the secrets.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let dir = tempfile::TempDir::new().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton-server"))
        .env_clear()
        .env("BATON_DATA_DIR", dir.path())
        .env("BATON_BIND", format!("127.0.0.1:{port}"))
        .env("BATON_LOG_FORMAT", "json")
        .env("BATON_REUSE_GRACE", "0")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let password = "Sup3r-Secret-Passw0rd";
    let new_password = "An0ther-Secret-Passw0rd";
    // One request; its JSON answer (null when it has none).
    let send = |method: reqwest::Method,
                path: &str,
                bearer: Option<&str>,
                body: Option<serde_json::Value>| {
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(body) = body {
            req = req.json(&body);
        }
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        async move {
            let answer = req.send().await.unwrap();
            answer.json::<serde_json::Value>().await.unwrap_or_default()
        }
    };
    let credentials = json!({"username": "alice", "password": password});
    send(
        Method::POST,
        "/api/auth/register",
        None,
        Some(credentials.clone()),
    )
    .await;
    let wrong = json!({"username": "alice", "password": "Wrong-Secret-Passw0rd"});
    send(Method::POST, "/api/auth/login", None, Some(wrong)).await;
    let pair: baton_shared::TokenPair = serde_json::from_value(
        send(Method::POST, "/api/auth/login", None, Some(credentials)).await,
    )
    .unwrap();
    let refresh = json!({"refresh_token": pair.refresh_token});
    let next: baton_shared::TokenPair = serde_json::from_value(
        send(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(refresh.clone()),
        )
        .await,
    )
    .unwrap();
    let access = Some(next.access_token.as_str());
    send(Method::GET, "/api/me", access, None).await;
    let change = json!({"current_password": password, "new_password": new_password});
    send(Method::PUT, "/api/me/password", access, Some(change)).await;
    send(Method::POST, "/api/auth/refresh", None, Some(refresh)).await;
    let logout = json!({"refresh_token": next.refresh_token});
    send(Method::POST, "/api/auth/logout", None, Some(logout)).await;

    // SIGTERM: a graceful stop.
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown on SIGTERM: {status}");
    let lines = reader.join().unwrap();
    assert!(
        lines.len() > 10,
        "the server logged its requests: {lines:?}"
    );
    let log = lines.join("\n");
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(
        log.contains("refresh token reuse detected"),
        "security events are logged"
    );
    assert!(log.contains("request_id"), "requests carry their id");
    let master_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    for secret in [
        password,
        new_password,
        "Wrong-Secret-Passw0rd",
        &pair.refresh_token,
        &next.refresh_token,
        &pair.access_token,
        &next.access_token,
        next.access_token.split('.').nth(2).unwrap(),
        master_key.trim(),
    ] {
        assert!(!log.contains(secret), "a secret reached the log: {secret}");
    }
}

#[tokio::test]
async fn only_a_short_token_like_request_id_is_kept() {
    let app = spawn_app(Backend::Sqlite).await;
    let long = "a".repeat(65);
    // Spaces and `=` would forge fields in the pretty log format; a long id floods it.
    for bad in [
        "abc request_id=forged user_id=0",
        "",
        "quote\"d",
        long.as_str(),
    ] {
        let r = app
            .client
            .get(app.url("/api/health"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "a fresh id, not {id:?}");
    }
}

/// A production configuration (explicit key and database) with `customize` applied.
async fn production_app(customize: impl FnOnce(&mut baton_server::config::Config)) -> TestApp {
    use baton_server::config::{Environment, Secret};
    spawn_app_with(Backend::Sqlite, |c| {
        c.environment = Environment::Production;
        c.keys.master_key = Some(Secret::new(baton_server::keys::MasterKey::generate_base64()));
        let db = c.data_dir.join("baton.db");
        c.database.url = Some(Secret::new(format!("sqlite://{}", db.display())));
        c.dpop.public_origin = Some("https://baton.example.com".parse().unwrap());
        customize(c);
    })
    .await
}

#[tokio::test]
async fn metrics_are_off_the_public_router_in_production() {
    let app = production_app(|_| {}).await;
    assert_eq!(
        app.get("/metrics", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn metrics_behind_a_token_or_on_their_own_address() {
    let token = "a-metrics-token-of-at-least-32-bytes";
    let app = production_app(|c| {
        c.http.metrics_token = Some(baton_server::config::Secret::new(token));
    })
    .await;
    assert_eq!(
        app.get("/metrics", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = "not-the-metrics-token-but-as-long-as-it";
    assert_eq!(
        app.get("/metrics", Some(wrong)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app.get("/metrics", Some(token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("baton_revoked_sessions_tracked"));

    let app = production_app(|c| c.http.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await;
    assert_eq!(
        app.get("/metrics", None).await.status(),
        StatusCode::NOT_FOUND
    );
    let port = app.metrics_port.expect("a metrics listener");
    let r = app
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("baton_change_feed_age_seconds"));
    // Nothing else is served there.
    let r = app
        .client
        .get(format!("http://127.0.0.1:{port}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
