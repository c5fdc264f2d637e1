//! The hashing pool does no work for callers that left, and a password change is
//! atomic with the logins that race it.

use std::sync::Arc;
use std::time::Duration;

use baton_shared::{ErrorCode, TokenPair};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    clients_that_hang_up_leave_no_hash_work,
    a_password_change_racing_logins_leaves_none_of_their_sessions,
    a_password_change_racing_logins_that_rehash_is_not_undone,
    a_session_behind_its_users_credentials_does_not_rotate,
);

/// The value of one series of the app's metrics (0 when absent).
pub fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.state.metrics.render();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

pub const VERIFICATIONS: &str = r#"baton_password_computations_total{work="verify"}"#;
/// A stored hash that takes long to check (argon2id with `passes` passes instead of
/// 2): real work that holds a hashing thread. Its output is made up, so no password
/// matches it.
pub fn slow_hash(passes: u32) -> String {
    let output = "A".repeat(43);
    format!("$argon2id$v=19$m=19456,t={passes},p=1$c29tZXNhbHRzb21lc2FsdA${output}")
}

pub async fn set_hash(app: &TestApp, username: &str, hash: &str) {
    let sql = "UPDATE users SET password_hash = $1 WHERE username = $2";
    let args = [hash.into(), username.into()];
    assert_eq!(app.state.db.write().execute(sql, &args).await.unwrap(), 1);
}

/// Sends a login on a connection of its own and returns the connection unread:
/// dropping it hangs up.
async fn send_login(app: &TestApp, username: &str, password: &str) -> TcpStream {
    let body = json!({"username": username, "password": password}).to_string();
    let request = format!(
        "POST /api/auth/login HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

async fn clients_that_hang_up_leave_no_hash_work(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.limits.hash_concurrency = Some(1)).await;
    app.register("slow", PASSWORD).await;
    app.register("alice", PASSWORD).await;
    // Seconds of work on the one hashing thread while the clients come and go.
    set_hash(&app, "slow", &slow_hash(150)).await;
    let blocker = send_login(&app, "slow", "wrong password").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(send_login(&app, &format!("user{i}"), "some password").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Everyone hangs up, in the order they asked, while the slow hash still runs.
    drop(blocker);
    for client in clients {
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(client);
    }
    // A login after them waits behind whatever is still queued (the queue is FIFO).
    app.login_ok("alice").await;
    let waiting = metric(&app, "baton_password_jobs_waiting");
    assert_eq!(waiting, 0.0, "nothing left in the queue");
    assert_eq!(
        metric(&app, VERIFICATIONS),
        2.0,
        "the slow one's and the last login's; none for the 20 that hung up"
    );
}

async fn a_password_change_racing_logins_leaves_none_of_their_sessions(backend: Backend) {
    race(backend, false).await;
}

async fn a_password_change_racing_logins_that_rehash_is_not_undone(backend: Backend) {
    race(backend, true).await;
}

/// A password change, and 50 logins with the old password sent one every 10 ms from its
/// start on, from 50 addresses. With `legacy`, the stored hash is of weaker settings,
/// so that every login that matches it also writes a new hash.
async fn race(backend: Backend, legacy: bool) {
    let app = spawn_app_with(backend, |c| {
        c.limits.hash_concurrency = Some(1);
        c.http.trusted_proxy_hops = 1;
    })
    .await;
    let here = app.signup("alice").await;
    if legacy {
        set_hash(&app, "alice", &weak_hash(PASSWORD)).await;
    }
    let app = Arc::new(app);
    let new_password = "a new password";
    let change = {
        let (app, token) = (app.clone(), here.access_token.clone());
        let body = json!({"current_password": PASSWORD, "new_password": new_password});
        tokio::spawn(async move { app.put("/api/me/password", &body, Some(&token)).await })
    };
    let mut logins = Vec::new();
    for i in 0..50 {
        let app = app.clone();
        logins.push(tokio::spawn(async move {
            let r = app
                .client
                .post(app.url("/api/auth/login"))
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .json(&json!({"username": "alice", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            match r.status() {
                StatusCode::OK => Some(r.json::<TokenPair>().await.unwrap()),
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => None,
                other => panic!("a login got {other}: {}", r.text().await.unwrap()),
            }
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(change.await.unwrap().status(), StatusCode::NO_CONTENT);
    let mut won = Vec::new();
    for login in logins {
        won.extend(login.await.unwrap());
    }

    let live = live_sessions(&app, here.user.id).await;
    assert_eq!(
        live,
        1,
        "only the changing session lives ({} logins got a session)",
        won.len()
    );
    for pair in &won {
        app.me_refused(&pair.access_token, ErrorCode::SessionRevoked)
            .await;
        app.refresh_refused(&pair.refresh_token, ErrorCode::SessionRevoked)
            .await;
    }
    app.refresh_ok(&here.refresh_token).await;
    let login = |password: &'static str| {
        let app = app.clone();
        async move {
            app.client
                .post(app.url("/api/auth/login"))
                .header("x-forwarded-for", "192.0.2.1")
                .json(&json!({"username": "alice", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_error(login(PASSWORD).await, 401, ErrorCode::InvalidCredentials).await;
    assert_eq!(
        login(new_password).await.status(),
        StatusCode::OK,
        "the new password holds"
    );
}

/// The rotation checks the credential version too: a session that a change somehow
/// left alive (here: the version moved by hand) gets no new token.
async fn a_session_behind_its_users_credentials_does_not_rotate(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    let sql = "UPDATE users SET credential_version = credential_version + 1";
    app.state.db.write().execute(sql, &[]).await.unwrap();
    app.refresh_refused(&pair.refresh_token, ErrorCode::SessionRevoked)
        .await;
    // A login under the new version works as ever.
    let fresh = app.login_ok("alice").await;
    app.refresh_ok(&fresh.refresh_token).await;
}

async fn live_sessions(app: &TestApp, user_id: Uuid) -> i64 {
    let sql = "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL";
    let (n,): (i64,) = app
        .state
        .db
        .write()
        .fetch_one(sql, &[user_id.into()])
        .await
        .unwrap();
    n
}

/// An argon2id hash of `password` with weaker settings than today's (4 MiB, t=1).
fn weak_hash(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let params = argon2::Params::new(4096, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}
