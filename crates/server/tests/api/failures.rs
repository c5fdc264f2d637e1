//! The database going away: 503 with the generic body, no token issued, and service
//! back without a restart when the database returns.

use std::time::{Duration, Instant};

use baton_shared::{ApiError, ErrorCode};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::*;

const GENERIC: &str = "the service is temporarily unavailable, try again shortly";

async fn assert_unavailable(r: reqwest::Response) {
    let body = assert_error(r, 503, ErrorCode::Unavailable).await;
    assert_eq!(body.message, GENERIC, "generic message, no database detail");
}

/// Polls until `GET /api/health` is 200 again (the pool reconnects by itself).
async fn wait_healthy(app: &TestApp, within: Duration) {
    let start = Instant::now();
    loop {
        let r = app.get("/api/health", None).await;
        if r.status() == StatusCode::OK {
            return;
        }
        assert!(
            start.elapsed() < within,
            "service did not resume within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_mid_run() {
    let Some(Backend::Postgres(url)) = Backend::postgres().await else {
        return;
    };
    let proxy = ChaosProxy::start(postgres_addr(&url)).await;
    let proxied = with_host(&url, proxy.addr);
    let app = spawn_app(Backend::Postgres(proxied)).await;
    let alice = app.signup("alice").await;
    app.register("bob", PASSWORD).await;

    proxy.cut();
    assert_unavailable(app.get("/api/health", None).await).await;
    assert_unavailable(app.login("bob", PASSWORD).await).await;
    assert_unavailable(app.refresh(&alice.refresh_token).await).await;
    assert_unavailable(app.get("/api/notes", Some(&alice.access_token)).await).await;
    assert_unavailable(app.register("carol", PASSWORD).await).await;

    proxy.restore();
    wait_healthy(&app, Duration::from_secs(15)).await;
    // Nothing was issued or lost while it was down: bob has no session, alice's
    // refresh token was not consumed.
    let bob_sessions = {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'bob'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        n
    };
    assert_eq!(
        bob_sessions, 0,
        "no token was issued while the database was down"
    );
    let next = app.refresh_ok(&alice.refresh_token).await;
    assert_eq!(app.me(&next.access_token).await.status(), StatusCode::OK);
    app.login_ok("bob").await;
    assert_eq!(
        app.register("carol", PASSWORD).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process() {
    // SQLite has no network to lose; its failure is another process holding the
    // write lock (a backup, a stuck tool). Writes wait the busy timeout, then 503.
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.signup("alice").await;
    app.register("bob", PASSWORD).await;
    let db_path = app.data_dir.path().join("baton.db");
    let mut locker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();

    let (login, refresh) = tokio::join!(
        app.login("bob", PASSWORD),
        app.refresh(&alice.refresh_token)
    );
    assert_unavailable(login).await;
    assert_unavailable(refresh).await;

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    drop(locker);
    wait_healthy(&app, Duration::from_secs(10)).await;
    let bob = app.login_ok("bob").await;
    assert_eq!(
        app.sessions_of(bob.user.id).await,
        1,
        "only the login made after the lock"
    );
    app.refresh_ok(&alice.refresh_token).await;
}

#[tokio::test]
async fn a_bad_migration_stops_start_up_loudly() {
    // A database whose schema history says a migration ran with other contents.
    let dir = tempfile::TempDir::new().unwrap();
    let config = test_config(&Backend::Sqlite, &dir);
    baton_server::Application::build(config.clone())
        .await
        .unwrap();
    let db_path = dir.path().join("baton.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = X'00'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let err = baton_server::Application::build(config)
        .await
        .err()
        .expect("refuses to start");
    assert!(format!("{err:#}").contains("migration"), "{err:#}");
}

#[tokio::test]
async fn errors_never_leak_internals() {
    let app = spawn_app(Backend::Sqlite).await;
    let pair = app.signup("alice").await;
    // Break the schema under the running server: queries on notes now fail.
    app.state
        .db
        .write()
        .execute("DROP TABLE notes", &[])
        .await
        .unwrap();
    let r = app
        .post(
            "/api/notes",
            &json!({"title": "t", "body": "b"}),
            Some(&pair.access_token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = r.text().await.unwrap();
    let body: ApiError = serde_json::from_str(&text).unwrap();
    assert_eq!(body.code, ErrorCode::Internal);
    assert_eq!(body.message, "an internal error occurred");
    assert!(
        !text.to_lowercase().contains("notes") && !text.contains("sql"),
        "{text}"
    );
}
