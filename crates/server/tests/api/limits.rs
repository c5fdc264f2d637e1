//! Login limits that cannot be raced, flooded or turned against an account's owner,
//! and the password change counted like a login.

use std::sync::Arc;
use std::time::Duration;

use baton_shared::ErrorCode;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::db_tests;
use crate::helpers::*;
use crate::passwords::{metric, set_hash, slow_hash, VERIFICATIONS};

db_tests!(
    concurrent_guesses_get_only_the_configured_verifications,
    a_stranger_cannot_lock_the_owner_out,
    ipv6_addresses_are_limited_by_their_64,
    password_changes_are_counted_like_logins,
);

/// A login from `ip` (the app must trust one proxy hop).
async fn login_from(app: &TestApp, ip: &str, username: &str, password: &str) -> reqwest::Response {
    crate::hardening::login_from(app, username, password, Some(ip)).await
}

/// Asserts a 429 `rate_limited`; returns its `Retry-After`.
async fn assert_limited(r: reqwest::Response) -> u64 {
    let wait = r.headers().get("retry-after").cloned();
    assert_error(r, 429, ErrorCode::RateLimited).await;
    let wait = wait.expect("Retry-After");
    wait.to_str().unwrap().parse().expect("seconds")
}

/// Sends `n` wrong guesses for `victim` at once, from `ip(i)`, while the hashing thread
/// is busy with a slow hash (so that they all arrive before any is verified, as they
/// would at a busy server); returns how many got 401, 429 and 503.
async fn guess_at_once(app: &Arc<TestApp>, n: usize, ip: fn(usize) -> String) -> [usize; 3] {
    let busy = {
        let app = app.clone();
        tokio::spawn(async move { app.login("slow", "wrong password").await.status() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let guesses: Vec<_> = (0..n)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                login_from(&app, &ip(i), "victim", &format!("guess {i:04}"))
                    .await
                    .status()
            })
        })
        .collect();
    let mut answers = [0; 3];
    for guess in guesses {
        match guess.await.unwrap() {
            StatusCode::UNAUTHORIZED => answers[0] += 1,
            StatusCode::TOO_MANY_REQUESTS => answers[1] += 1,
            StatusCode::SERVICE_UNAVAILABLE => answers[2] += 1,
            other => panic!("a guess got {other}"),
        }
    }
    assert_eq!(busy.await.unwrap(), StatusCode::UNAUTHORIZED);
    answers
}

async fn concurrent_guesses_get_only_the_configured_verifications(backend: Backend) {
    // The address limit off: only the account's limits stand between guess and hash.
    // The ceiling at 40, not 100: 90 verifications queued on one hashing thread of a
    // busy test machine could outlast the queue's 10 s (503).
    let (per_address, per_account) = (10, 40);
    let app = spawn_app_with(backend, |c| {
        c.http.trusted_proxy_hops = 1;
        c.limits.login_per_ip = 0;
        c.limits.hash_concurrency = Some(1);
        c.limits.login_failures_per_account = per_account as u32;
    })
    .await;
    app.register("victim", PASSWORD).await;
    app.register("slow", PASSWORD).await;
    set_hash(&app, "slow", &slow_hash(100)).await;
    let app = Arc::new(app);

    // 200 guesses at once from one address: each is counted before its hash is checked.
    let answers = guess_at_once(&app, 200, |_| "203.0.113.1".into()).await;
    let verified = metric(&app, VERIFICATIONS) as usize - 1;
    assert!(
        verified <= per_address,
        "{verified} verifications for {per_address} allowed failures (401, 429, 503: {answers:?})"
    );
    assert_eq!(answers, [verified, 200 - verified, 0]);

    // 200 at once from 200 addresses: the account's ceiling holds.
    let answers = guess_at_once(&app, 200, |i| format!("198.51.100.{}", i % 250)).await;
    let verified = metric(&app, VERIFICATIONS) as usize - 2;
    assert!(
        verified <= per_account,
        "{verified} verifications in all for a ceiling of {per_account} (401, 429, 503: {answers:?})"
    );
    // Up to the ceiling's verifications queue for the one hashing thread; on a very busy
    // machine the last of them can still wait out the queue's 10 s and get 503, which
    // verifies nothing either. Every answer is one of the three, and every verification a 401.
    assert_eq!(answers.iter().sum::<usize>(), 200, "{answers:?}");
    assert!(
        answers[0] <= verified,
        "{answers:?}, {verified} verifications"
    );
}

async fn a_stranger_cannot_lock_the_owner_out(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.http.trusted_proxy_hops = 1).await;
    app.register("owner", PASSWORD).await;
    let stranger = "203.0.113.66";
    for i in 0..10 {
        let r = login_from(&app, stranger, "owner", &format!("guess {i:04}")).await;
        assert_error(r, 401, ErrorCode::InvalidCredentials).await;
    }
    // The owner, from another address, logs in...
    let r = login_from(&app, "192.0.2.20", "owner", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "the owner is not locked out");
    // ...while the stranger waits, even with the right password.
    let r = login_from(&app, stranger, "owner", PASSWORD).await;
    assert_eq!(assert_limited(r).await, 1, "the first wait is short");
    // The stranger's waits grow with every guess made after one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = login_from(&app, stranger, "owner", "guess 0011").await;
    assert_error(r, 401, ErrorCode::InvalidCredentials).await;
    let r = login_from(&app, stranger, "owner", "guess 0012").await;
    assert_eq!(assert_limited(r).await, 2, "the wait doubled");
}

async fn ipv6_addresses_are_limited_by_their_64(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.http.trusted_proxy_hops = 1).await;
    for i in 1..=30 {
        let ip = format!("2001:db8:1:2::{i:x}");
        let r = login_from(&app, &ip, &format!("user{i}"), "some password").await;
        assert_error(r, 401, ErrorCode::InvalidCredentials).await;
    }
    // Another address of the same /64 shares its budget.
    let r = login_from(&app, "2001:db8:1:2:ffff::1", "user31", "some password").await;
    assert!(assert_limited(r).await >= 1);
    // Another /64 has its own.
    let r = login_from(&app, "2001:db8:1:3::1", "user32", "some password").await;
    assert_error(r, 401, ErrorCode::InvalidCredentials).await;
}

async fn password_changes_are_counted_like_logins(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.http.trusted_proxy_hops = 1).await;
    // A thief with a stolen access token guesses the current password.
    let stolen = app.signup("alice").await;
    let thief = "203.0.113.9";
    let change =
        |current: &str| json!({"current_password": current, "new_password": "a new password"});
    let put = |ip: &'static str, body: Value| {
        let request = (app.client.put(app.url("/api/me/password")))
            .header("x-forwarded-for", ip)
            .bearer_auth(&stolen.access_token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    for i in 0..10 {
        let r = put(thief, change(&format!("guess {i:04}"))).await;
        assert_error(r, 403, ErrorCode::InvalidCredentials).await;
    }
    let r = put(thief, change("guess 0010")).await;
    assert!(assert_limited(r).await >= 1);
    assert_limited(put(thief, change(PASSWORD)).await).await;
    // One limit for the account and address, whichever endpoint guesses.
    assert_limited(login_from(&app, thief, "alice", PASSWORD).await).await;
    // The owner, elsewhere, changes the password.
    let r = put("192.0.2.30", change(PASSWORD)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}
