//! Refresh-token rotation, reuse detection, the grace window, lifetimes and concurrency.

use std::time::Duration;

use baton_shared::{ErrorCode, TokenPair};
use futures::future::join_all;
use reqwest::StatusCode;

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    refresh_rotates_the_token,
    reuse_after_the_grace_window_revokes_the_whole_session,
    the_predecessor_works_inside_the_grace_window,
    grace_covers_only_the_immediate_predecessor,
    unknown_and_malformed_refresh_tokens,
    idle_lifetime_is_enforced,
    absolute_lifetime_is_never_extended_by_rotation,
    fifty_concurrent_refreshes_one_winner,
    concurrent_refreshes_inside_the_grace_window_all_succeed,
    an_access_token_is_not_a_refresh_token,
    refresh_tokens_are_stored_only_as_hashes,
    fifty_presentations_of_a_just_rotated_token_get_one_successor,
    a_rotation_dated_in_the_future_opens_no_window,
    losing_every_rotation_pass_is_a_retryable_503,
);

fn no_grace(c: &mut baton_server::config::Config) {
    c.tokens.reuse_grace = Duration::ZERO;
}

async fn refresh_rotates_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.signup("alice").await;
    let second = app.refresh_ok(&first.refresh_token).await;
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "a new refresh token every time"
    );
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.session_id, first.session_id, "same session");
    assert_eq!(second.user, first.user);
    // The new access token works; the chain goes on.
    assert_eq!(app.me(&second.access_token).await.status(), StatusCode::OK);
    let third = app.refresh_ok(&second.refresh_token).await;
    assert_eq!(third.session_id, first.session_id);
    assert_eq!(app.refresh_tokens_of(first.session_id).await, 3);
}

async fn reuse_after_the_grace_window_revokes_the_whole_session(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.tokens.reuse_grace = Duration::from_secs(1)).await;
    let stolen = app.signup("alice").await;
    let legit = app.refresh_ok(&stolen.refresh_token).await;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    // The attacker replays the old token: detected, and the whole family dies.
    app.refresh_refused(&stolen.refresh_token, ErrorCode::RefreshTokenReused)
        .await;
    app.refresh_refused(&legit.refresh_token, ErrorCode::SessionRevoked)
        .await;
    app.me_refused(&legit.access_token, ErrorCode::SessionRevoked)
        .await;
    // Other sessions of the user are untouched.
    let other = app.login_ok("alice").await;
    assert_eq!(app.me(&other.access_token).await.status(), StatusCode::OK);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.contains("baton_refresh_token_reuse_detections_total 1"),
        "{metrics}"
    );
}

async fn the_predecessor_works_inside_the_grace_window(backend: Backend) {
    let app = spawn_app(backend).await; // default grace: 10 s
    let first = app.signup("alice").await;
    // The response of this refresh is "lost": the client retries with the old token,
    // and gets the successor it lost.
    let lost = app.refresh_ok(&first.refresh_token).await;
    let retried = app.refresh_ok(&first.refresh_token).await;
    assert_eq!(retried.refresh_token, lost.refresh_token);
    assert_eq!(retried.session_id, first.session_id);
    assert_ne!(
        retried.access_token, lost.access_token,
        "a new access token"
    );
    assert!(retried.refresh_expires_in > 0);
    let next = app.refresh_ok(&retried.refresh_token).await;
    assert_eq!(app.me(&next.access_token).await.status(), StatusCode::OK);
}

async fn grace_covers_only_the_immediate_predecessor(backend: Backend) {
    let app = spawn_app(backend).await;
    let t0 = app.signup("alice").await;
    let t1 = app.refresh_ok(&t0.refresh_token).await;
    let t2 = app.refresh_ok(&t1.refresh_token).await;
    // t0 is two generations old: reuse even inside the window.
    app.refresh_refused(&t0.refresh_token, ErrorCode::RefreshTokenReused)
        .await;
    app.refresh_refused(&t2.refresh_token, ErrorCode::SessionRevoked)
        .await;
}

async fn unknown_and_malformed_refresh_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("alice").await;
    for token in [
        "brt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
        "' OR '1'='1",
        "🔑🔑🔑",
    ] {
        app.refresh_refused(token, ErrorCode::RefreshTokenInvalid)
            .await;
    }
    assert_error(app.refresh("").await, 400, ErrorCode::InvalidInput).await;
    assert_error(
        app.refresh(&"a".repeat(10_000)).await,
        400,
        ErrorCode::InvalidInput,
    )
    .await;
}

async fn idle_lifetime_is_enforced(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.tokens.refresh_idle_ttl = Duration::from_secs(1)
    })
    .await;
    let pair = app.signup("alice").await;
    assert_eq!(pair.refresh_expires_in, 1);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    app.refresh_refused(&pair.refresh_token, ErrorCode::RefreshTokenExpired)
        .await;
}

async fn absolute_lifetime_is_never_extended_by_rotation(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.tokens.session_ttl = Duration::from_secs(3);
        c.tokens.refresh_idle_ttl = Duration::from_secs(60);
    })
    .await;
    let mut pair = app.signup("alice").await;
    assert!(
        pair.refresh_expires_in <= 3,
        "capped by the session's absolute limit"
    );
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pair = app.refresh_ok(&pair.refresh_token).await;
        assert!(pair.refresh_expires_in <= 3);
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    app.refresh_refused(&pair.refresh_token, ErrorCode::RefreshTokenExpired)
        .await;
}

async fn fifty_concurrent_refreshes_one_winner(backend: Backend) {
    let app = spawn_app_with(backend, no_grace).await;
    let pair = app.signup("alice").await;
    let responses = join_all((0..50).map(|_| app.refresh(&pair.refresh_token))).await;
    let mut ok = 0;
    let mut refused = 0;
    for r in responses {
        match r.status().as_u16() {
            200 => ok += 1,
            401 => {
                let body: baton_shared::ApiError = r.json().await.unwrap();
                assert!(
                    matches!(
                        body.code,
                        ErrorCode::RefreshTokenReused | ErrorCode::SessionRevoked
                    ),
                    "{body:?}"
                );
                refused += 1;
            }
            other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
        }
    }
    assert_eq!((ok, refused), (1, 49));
    assert_eq!(
        app.refresh_tokens_of_generation(pair.session_id, 1).await,
        1,
        "exactly one child token"
    );
}

async fn concurrent_refreshes_inside_the_grace_window_all_succeed(backend: Backend) {
    // Tabs (or retries) racing with the same current token must not log the user out:
    // one rotates it, and every other gets the same successor.
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    let responses = join_all((0..50).map(|_| app.refresh(&pair.refresh_token))).await;
    let mut successors = std::collections::HashSet::new();
    for r in responses {
        assert_eq!(r.status(), StatusCode::OK);
        successors.insert(r.json::<TokenPair>().await.unwrap().refresh_token);
    }
    assert_eq!(successors.len(), 1, "one successor");
    assert_eq!(
        app.refresh_tokens_of_generation(pair.session_id, 1).await,
        1,
        "exactly one child token"
    );
    let successor = successors.into_iter().next().unwrap();
    let next = app.refresh_ok(&successor).await;
    assert_eq!(app.me(&next.access_token).await.status(), StatusCode::OK);
}

async fn an_access_token_is_not_a_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    app.refresh_refused(&pair.access_token, ErrorCode::RefreshTokenInvalid)
        .await;
    app.me_refused(&pair.refresh_token, ErrorCode::TokenInvalid)
        .await;
}

async fn refresh_tokens_are_stored_only_as_hashes(backend: Backend) {
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    let hash = baton_server::refresh_token::hash(&pair.refresh_token);
    let stored = app.stored_refresh_token_hashes().await;
    assert_eq!(stored, vec![hash.to_vec()]);
}

async fn fifty_presentations_of_a_just_rotated_token_get_one_successor(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.tokens.reuse_grace = Duration::from_secs(2)).await;
    let stolen = app.signup("alice").await;
    let owner = app.refresh_ok(&stolen.refresh_token).await;
    // A thief (or lost answers, racing tabs) presents the just-rotated token 50 times
    // at once inside the window: every one receives the owner's successor.
    let responses = join_all((0..50).map(|_| app.refresh(&stolen.refresh_token))).await;
    for r in responses {
        assert_eq!(r.status(), StatusCode::OK);
        let pair: TokenPair = r.json().await.unwrap();
        assert_eq!(pair.refresh_token, owner.refresh_token, "one successor");
        assert_eq!(pair.session_id, owner.session_id);
    }
    assert_eq!(
        app.refresh_tokens_of(owner.session_id).await,
        2,
        "no token besides the chain's: the login's and its successor"
    );
    // The owner rotates on; the thief's copy of the successor, presented once the
    // window has passed, is reuse and ends the session for both.
    let next = app.refresh_ok(&owner.refresh_token).await;
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    app.refresh_refused(&owner.refresh_token, ErrorCode::RefreshTokenReused)
        .await;
    app.refresh_refused(&next.refresh_token, ErrorCode::SessionRevoked)
        .await;
    app.me_refused(&next.access_token, ErrorCode::SessionRevoked)
        .await;
}

async fn a_rotation_dated_in_the_future_opens_no_window(backend: Backend) {
    // What an instance whose clock is an hour fast would write, on a fleet that took
    // the time of each instance: the rotation an hour ahead.
    let app = spawn_app(backend).await;
    let stolen = app.signup("alice").await;
    let owner = app.refresh_ok(&stolen.refresh_token).await;
    app.state
        .db
        .write()
        .execute(
            "UPDATE sessions SET rotated_at = rotated_at + 3600000 WHERE id = $1",
            &[owner.session_id.into()],
        )
        .await
        .unwrap();
    app.refresh_refused(&stolen.refresh_token, ErrorCode::RefreshTokenReused)
        .await;
    app.refresh_refused(&owner.refresh_token, ErrorCode::SessionRevoked)
        .await;
}

async fn losing_every_rotation_pass_is_a_retryable_503(backend: Backend) {
    // A fault that makes every write of a rotation do nothing while reads still show
    // the token current: each pass loses.
    let app = spawn_app(backend).await;
    let pair = app.signup("alice").await;
    let db = app.state.db.write();
    let (drop_writes, restore) = if app.state.db.is_sqlite() {
        (
            vec![
                "CREATE TRIGGER lose_rotations BEFORE INSERT ON refresh_tokens
                  BEGIN SELECT RAISE(IGNORE); END",
            ],
            "DROP TRIGGER lose_rotations",
        )
    } else {
        (
            vec![
                "CREATE FUNCTION lose_rotation() RETURNS trigger LANGUAGE plpgsql
                  AS $$ BEGIN RETURN NULL; END $$",
                "CREATE TRIGGER lose_rotations BEFORE UPDATE ON sessions
                  FOR EACH ROW EXECUTE FUNCTION lose_rotation()",
            ],
            "DROP TRIGGER lose_rotations ON sessions",
        )
    };
    for sql in drop_writes {
        db.execute(sql, &[]).await.unwrap();
    }
    assert_error(
        app.refresh(&pair.refresh_token).await,
        503,
        ErrorCode::Unavailable,
    )
    .await;
    db.execute(restore, &[]).await.unwrap();
    // Nothing ended: the same token rotates once the fault is gone.
    let next = app.refresh_ok(&pair.refresh_token).await;
    assert_eq!(app.me(&next.access_token).await.status(), StatusCode::OK);
}

/// The writer connection held by the test, so that rotations queue behind it as they
/// do under load; released after `hold`.
async fn with_writer_held<F: std::future::Future>(
    app: &TestApp,
    hold: Duration,
    f: F,
) -> F::Output {
    let baton_server::store::Db::Sqlite { writer, .. } = &app.state.db else {
        panic!("SQLite only");
    };
    let held = writer.acquire().await.unwrap();
    let release = async move {
        tokio::time::sleep(hold).await;
        drop(held);
    };
    tokio::join!(f, release).0
}

/// A SQLite server with `n` users logged in, every request from one address unlimited.
async fn sqlite_users(n: usize) -> (TestApp, Vec<TokenPair>) {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.limits.login_per_ip = 0;
        c.limits.refresh_per_ip = 0;
    })
    .await;
    let mut pairs = Vec::new();
    for i in 0..n {
        pairs.push(app.signup(&format!("user{i}")).await);
    }
    (app, pairs)
}

fn group_commit(app: &TestApp) -> &baton_server::store::rotation::group::GroupCommit {
    match &app.state.db {
        baton_server::store::Db::Sqlite { rotations, .. } => rotations,
        _ => panic!("SQLite only"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_waiting_for_the_sqlite_writer_commit_together() {
    let (app, pairs) = sqlite_users(24).await;
    let before = group_commit(&app).transactions();
    let refreshes = join_all(pairs.iter().map(|p| app.refresh(&p.refresh_token)));
    let responses = with_writer_held(&app, Duration::from_millis(800), refreshes).await;
    let transactions = group_commit(&app).transactions() - before;
    for (r, pair) in responses.into_iter().zip(&pairs) {
        assert_eq!(r.status(), StatusCode::OK);
        let next: TokenPair = r.json().await.unwrap();
        assert_eq!(next.session_id, pair.session_id, "each its own session");
        assert_eq!(next.user.id, pair.user.id, "and its own user");
        assert_eq!(
            app.refresh_tokens_of_generation(pair.session_id, 1).await,
            1
        );
        assert_eq!(app.me(&next.access_token).await.status(), StatusCode::OK);
        app.refresh_ok(&next.refresh_token).await;
    }
    // The first waits for the writer alone; the others queue behind it and go together.
    assert!(
        transactions <= 3,
        "24 waiting rotations took {transactions} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_fails_in_a_group_fails_alone() {
    use baton_server::refresh_token::hash;
    use baton_server::store::rotation::group::Advance;
    let (app, pairs) = sqlite_users(8).await;
    // A statement that cannot succeed: its successor is a token already stored (the
    // primary key refuses it), while its presented token is a live session's current one.
    let failing = Advance {
        successor_hash: hash(&pairs[1].refresh_token).to_vec(),
        idle: 60_000,
        presented_hash: hash(&pairs[0].refresh_token).to_vec(),
        jkt: None,
        bearer_allowed: true,
    };
    let group = group_commit(&app);
    let work = async {
        tokio::join!(
            join_all(pairs[1..].iter().map(|p| app.refresh(&p.refresh_token))),
            async {
                // Queued behind the others, so that it lands in their group.
                tokio::time::sleep(Duration::from_millis(300)).await;
                group.advance(failing).await
            }
        )
    };
    let (responses, failed) = with_writer_held(&app, Duration::from_millis(800), work).await;
    assert!(failed.is_err(), "the colliding insert fails");
    for (r, pair) in responses.into_iter().zip(&pairs[1..]) {
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "a neighbour's failure is not mine"
        );
        assert_eq!(
            app.refresh_tokens_of_generation(pair.session_id, 1).await,
            1
        );
    }
    assert_eq!(
        app.refresh_tokens_of_generation(pairs[0].session_id, 1)
            .await,
        0,
        "the failed rotation changed nothing"
    );
    app.refresh_ok(&pairs[0].refresh_token).await;
}
