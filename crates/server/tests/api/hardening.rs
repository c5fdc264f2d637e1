//! Brute-force limits, security headers, CORS and edge limits: what keeps a hostile
//! client from guessing passwords, framing pages or flooding the server.

use std::time::Duration;

use baton_shared::ErrorCode;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

pub async fn login_from(
    app: &TestApp,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": username, "password": password}));
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("seconds")
}

#[tokio::test]
async fn the_31st_login_from_one_address_is_throttled() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("alice", PASSWORD).await; // counts as an attempt from this address
    for i in 1..30 {
        let password = if i % 2 == 0 {
            PASSWORD
        } else {
            "wrong password"
        };
        let r = app.login(&format!("user{i}"), password).await;
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS, "attempt {i}");
    }
    let r = app.login("alice", PASSWORD).await;
    let wait = retry_after(&r);
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
    assert_error(r, 429, ErrorCode::RateLimited).await;
    // A spoofed X-Forwarded-For does not reset it: the header is not trusted by default.
    let r = login_from(&app, "alice", PASSWORD, Some("198.51.100.7")).await;
    assert_error(r, 429, ErrorCode::RateLimited).await;
    // Refreshes have their own budget.
    app.refresh_refused("brt_unknown", ErrorCode::RefreshTokenInvalid)
        .await;
}

#[tokio::test]
async fn one_account_from_rotating_addresses_is_still_throttled() {
    // The account's ceiling (all addresses together) at 10 instead of 100.
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.http.trusted_proxy_hops = 1;
        c.limits.login_failures_per_account = 10;
    })
    .await;
    app.register("victim", PASSWORD).await;
    app.register("bystander", PASSWORD).await;
    for i in 0..10 {
        let r = login_from(
            &app,
            "victim",
            &format!("guess {i:04}"),
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        assert_error(r, 401, ErrorCode::InvalidCredentials).await;
    }
    // The 11th guess, from yet another address, and even the right password, wait (a
    // second: the waits grow only with further failures).
    let r = login_from(&app, "VICTIM", "guess 0011", Some("203.0.113.200")).await;
    assert!(retry_after(&r) >= 1);
    assert_error(r, 429, ErrorCode::RateLimited).await;
    let r = login_from(&app, "victim", PASSWORD, Some("203.0.113.201")).await;
    assert_error(r, 429, ErrorCode::RateLimited).await;
    // A legitimate user of another account is not affected.
    let r = login_from(&app, "bystander", PASSWORD, Some("192.0.2.10")).await;
    assert_eq!(r.status(), StatusCode::OK);
    // An unknown account is limited exactly like a known one (no way to probe names).
    for i in 0..10 {
        let r = login_from(
            &app,
            "nobody",
            "whatever password",
            Some(&format!("198.51.100.{i}")),
        )
        .await;
        assert_error(r, 401, ErrorCode::InvalidCredentials).await;
    }
    assert_error(
        login_from(&app, "nobody", "whatever password", Some("198.51.100.99")).await,
        429,
        ErrorCode::RateLimited,
    )
    .await;
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains(r#"baton_logins_total{result="rate_limited"} 3"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn refreshes_are_limited_per_address() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.limits.refresh_per_ip = 5).await;
    let mut pair = app.signup("alice").await;
    for _ in 0..5 {
        pair = app.refresh_ok(&pair.refresh_token).await;
    }
    let r = app.refresh(&pair.refresh_token).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        r.text().await
    );
    let r = app.refresh(&pair.refresh_token).await;
    assert!(retry_after(&r) >= 1);
    assert_error(r, 429, ErrorCode::RateLimited).await;
    // Nothing was consumed by the refused attempt: the token still works later.
    assert_eq!(app.me(&pair.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn pages_carry_a_strict_csp_with_a_fresh_nonce() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut nonces = Vec::new();
    for path in ["/", "/login", "/no-such-page"] {
        let r = app.get(path, None).await;
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let html = r.text().await.unwrap();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .expect("a nonce in script-src")
            .to_owned();
        for directive in [
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "'wasm-unsafe-eval'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp}");
        }
        assert!(
            !csp.contains("'unsafe-inline'") && !csp.contains("'unsafe-eval'"),
            "{csp}"
        );
        // Every inline script of the page carries this response's nonce.
        let scripts = html.matches("<script").count();
        assert!(scripts > 0, "{path} has its hydration script");
        assert_eq!(
            html.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "{path}: {html}"
        );
        nonces.push(nonce);
    }
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a new nonce per response");
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/api/health", "/api/nope", "/", "/.well-known/jwks.json"] {
        let r = app.get(path, None).await;
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h.contains_key("content-security-policy"), "{path}");
        assert!(
            !h.contains_key("strict-transport-security"),
            "no HSTS unless configured"
        );
    }
    assert_eq!(
        app.get("/api/health", None).await.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    let tls = spawn_app_with(Backend::Sqlite, |c| c.http.hsts = true).await;
    let r = tls.get("/api/health", None).await;
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
}

/// `GET /api/health` as a page of another origin would send it.
async fn get_from_evil_origin(app: &TestApp) -> reqwest::Response {
    let req = app.client.get(app.url("/api/health"));
    req.header("origin", "https://evil.example")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_is_same_origin_unless_configured() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = get_from_evil_origin(&app).await;
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.http.cors_allowed_origins = vec!["https://app.example.com".into()]
    })
    .await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/notes"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(!preflight
        .headers()
        .contains_key("access-control-allow-credentials"));
    let other = get_from_evil_origin(&app).await;
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn edge_limits() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.signup("alice").await.access_token;
    // 20 KiB of headers: 431 with the contract's body; the server stays up.
    let r = app
        .client
        .get(app.url("/api/me"))
        .bearer_auth(&t)
        .header("x-filler", "a".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_error(r, 431, ErrorCode::HeadersTooLarge).await;
    // Deeply nested JSON: refused before parsing.
    let deep = format!(
        "{{\"title\": {}1{}, \"body\": \"\"}}",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let r = app
        .client
        .post(app.url("/api/notes"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    let e = assert_error(r, 400, ErrorCode::InvalidInput).await;
    assert!(e.message.contains("nested"), "{}", e.message);
    // A 1 MB password costs nothing: refused before hashing.
    let start = std::time::Instant::now();
    let r = app.login("alice", &"x".repeat(60_000)).await;
    assert_error(r, 400, ErrorCode::InvalidInput).await;
    assert!(start.elapsed() < std::time::Duration::from_millis(500));
    assert_eq!(app.me(&t).await.status(), StatusCode::OK);
}

/// Sends `head` on a raw connection and waits up to `within` for the server to answer
/// or close; returns what it sent back (empty when it just closed).
async fn send_raw_and_wait(app: &TestApp, head: &[u8], within: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut answer)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.http.header_read_timeout = Duration::from_secs(1)
    })
    .await;
    // Headers that never end (no blank line): a slow-loris client holding a connection.
    let head = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n";
    let start = std::time::Instant::now();
    let answer = send_raw_and_wait(&app, head, Duration::from_secs(15)).await;
    assert!(answer.is_some(), "the connection was still open after 15 s");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn slow_bodies_are_cut_off() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.http.body_read_timeout = Duration::from_secs(1)
    })
    .await;
    let head = b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"username\"";
    let answer = send_raw_and_wait(&app, head, Duration::from_secs(15))
        .await
        .expect("an answer before the body ends");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app_with(Backend::Sqlite, |c| c.data_dir = c.data_dir.join("data")).await;
    app.signup("alice").await;
    let dir = app.config.data_dir.clone();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    for file in ["baton.db", "baton.db-wal", "baton.db-shm", "master.key"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_master_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, baton_server::keys::MasterKey::generate_base64()).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut config = test_config(&Backend::Sqlite, &dir);
    config.keys.master_key_file = Some(key_file);
    let err = baton_server::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("readable"), "{err:#}");
}
