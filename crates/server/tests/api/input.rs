//! Bad input in every field: answered with the contract's code, never a 500 or a panic.

use baton_shared::ErrorCode;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    register_input_table,
    login_input_table,
    transport_level_errors,
    hostile_strings_are_data
);

async fn register_input_table(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"username": "", "password": PASSWORD}), &["username"]),
        (
            json!({"username": "ab", "password": PASSWORD}),
            &["username"],
        ),
        (
            json!({"username": "a".repeat(33), "password": PASSWORD}),
            &["username"],
        ),
        (
            json!({"username": "alice smith", "password": PASSWORD}),
            &["username"],
        ),
        (
            json!({"username": "alice'--", "password": PASSWORD}),
            &["username"],
        ),
        (
            json!({"username": "ålice", "password": PASSWORD}),
            &["username"],
        ),
        (
            json!({"username": "alice\u{0}", "password": PASSWORD}),
            &["username"],
        ),
        (json!({"username": "alice", "password": ""}), &["password"]),
        (
            json!({"username": "alice", "password": "1234567"}),
            &["password"],
        ),
        (
            json!({"username": "alice", "password": "p".repeat(1025)}),
            &["password"],
        ),
        (
            json!({"username": "x", "password": "y"}),
            &["username", "password"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post("/api/auth/register", &body, None).await;
        let e = assert_error(r, 400, ErrorCode::InvalidInput).await;
        let got = e.fields.unwrap_or_default();
        for f in fields {
            assert!(
                got.contains_key(*f),
                "{body}: expected a message for {f}, got {got:?}"
            );
        }
        assert_eq!(got.len(), fields.len(), "{body}: {got:?}");
    }
    // Wrong types and missing fields: invalid_input without field detail.
    for body in [
        json!({"username": 42, "password": PASSWORD}),
        json!({"username": "alice", "password": null}),
        json!({"username": ["alice"], "password": PASSWORD}),
        json!({"username": "alice"}),
        json!({}),
        json!([]),
        json!("alice"),
    ] {
        assert_error(
            app.post("/api/auth/register", &body, None).await,
            400,
            ErrorCode::InvalidInput,
        )
        .await;
    }
    // Boundaries that are valid.
    assert_eq!(
        app.register("abc", &"p".repeat(8)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.register(&"a".repeat(32), &"🔒".repeat(1024))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.login(&"a".repeat(32), &"🔒".repeat(1024))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn login_input_table(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("alice", PASSWORD).await;
    for body in [
        json!({"username": "alice"}),
        json!({"password": PASSWORD}),
        json!({"username": "alice", "password": ""}),
        json!({"username": "", "password": PASSWORD}),
        json!({"username": "alice", "password": PASSWORD, "device_name": 7}),
        json!({"username": "alice", "password": PASSWORD, "device_name": "d".repeat(65)}),
        json!({"username": "alice", "password": PASSWORD, "device_name": "bad\u{1b}[31m"}),
        json!({"username": "alice", "password": "x".repeat(1 << 15)}),
    ] {
        assert_error(
            app.post("/api/auth/login", &body, None).await,
            400,
            ErrorCode::InvalidInput,
        )
        .await;
    }
    // A password over the limit is refused before any hashing.
    let start = std::time::Instant::now();
    let r = app.login("alice", &"x".repeat(2000)).await;
    assert_error(r, 400, ErrorCode::InvalidInput).await;
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

async fn transport_level_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.signup("alice").await.access_token;
    let url = app.url("/api/auth/login");

    // Not JSON: 415.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = app
            .client
            .post(&url)
            .body(r#"{"username":"alice","password":"x"}"#);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        assert_error(
            req.send().await.unwrap(),
            415,
            ErrorCode::UnsupportedMediaType,
        )
        .await;
    }
    // Malformed JSON: 400.
    for body in ["{", "{\"username\": }", "null garbage", "\u{feff}{}", ""] {
        let r = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, ErrorCode::InvalidInput).await;
    }
    // Over 64 KiB: 413, before anything else is done. The server answers without
    // reading the rest of the body and closes the connection, so these go on
    // connections of their own: a pooled one could be handed to the next request
    // while its body write is failing.
    let unpooled = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let big = json!({"title": "t", "body": "x".repeat(70_000)});
    let r = unpooled
        .post(app.url("/api/notes"))
        .bearer_auth(&t)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_error(r, 413, ErrorCode::PayloadTooLarge).await;
    // A declared 1 MiB body is refused from its Content-Length alone: the server
    // answers 413 while the client has sent only a few bytes of it.
    let head = format!(
        "POST /api/auth/register HTTP/1.1\r\nhost: 127.0.0.1\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"user",
        1 << 20
    );
    let answer = raw_exchange(app.port, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
    // Without a declared length (chunked), reading stops at the limit.
    let mut chunked = format!(
        "POST /api/auth/register HTTP/1.1\r\nhost: 127.0.0.1\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        80_000
    )
    .into_bytes();
    chunked.extend(std::iter::repeat_n(b' ', 80_000));
    chunked.extend_from_slice(b"\r\n");
    let answer = raw_exchange(app.port, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
    // Unknown routes and methods.
    assert_error(app.get("/api/nope", None).await, 404, ErrorCode::NotFound).await;
    assert_error(
        app.get("/api/auth/login", None).await,
        405,
        ErrorCode::MethodNotAllowed,
    )
    .await;
    // A 1 MB header: refused by the HTTP layer (hyper answers 431 and closes the
    // connection, so these go on connections of their own); the server stays up.
    for (name, value) in [
        ("x-filler", "a".repeat(1 << 20)),
        ("authorization", format!("Bearer {}", "a".repeat(1 << 20))),
    ] {
        let r = unpooled
            .get(app.url("/api/me"))
            .header(name, value)
            .send()
            .await;
        match r {
            Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            Err(e) => assert!(
                e.is_request() || e.is_connect() || e.to_string().contains("closed"),
                "{e}"
            ),
        }
    }
    assert_eq!(app.me(&t).await.status(), StatusCode::OK, "still serving");
}

/// Writes `request` on a fresh connection and reads one JSON-bodied answer, without
/// waiting for the server to close (it may keep the connection open).
async fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    // A server that refuses an oversized body may answer and close before it has read
    // all of it; the write then fails, but the answer is already on its way.
    let _ = socket.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while !answer.ends_with(b"}") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 10 s");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn hostile_strings_are_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.signup("alice").await.access_token;
    for s in [
        "'; DROP TABLE users; --",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM notes;--",
        "日本語のメモ 🎉",
        "\u{202e}reversed",
        "%00%27",
        "{{7*7}} ${7*7}",
    ] {
        let r = app
            .post("/api/notes", &json!({"title": s, "body": s}), Some(&t))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{s}");
        let note: baton_shared::Note = r.json().await.unwrap();
        assert_eq!(note.title, s);
        assert_eq!(note.body, s);
        assert_error(app.login(s, PASSWORD).await, 400, ErrorCode::InvalidInput).await;
    }
    // Everything is still there.
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
    let notes: Vec<baton_shared::Note> =
        app.get("/api/notes", Some(&t)).await.json().await.unwrap();
    assert_eq!(notes.len(), 7);
}
