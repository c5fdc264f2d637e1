//! The hashing pool does no work for callers that left.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::db_tests;
use crate::helpers::*;

db_tests!(clients_that_hang_up_leave_no_hash_work,);

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
