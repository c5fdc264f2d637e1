//! The operator commands of the server binary, against the database of a running
//! server: what they change, the running server honours.

use std::process::Command;
use std::time::{Duration, Instant};

use baton_shared::ErrorCode;
use reqwest::StatusCode;

use crate::db_tests;
use crate::helpers::*;

db_tests!(operator_commands_drive_a_running_server);

async fn operator_commands_drive_a_running_server(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.background.sync_interval = Duration::from_millis(500)
    })
    .await;

    // user create: the password comes from stdin, never from the command line.
    let out = stdout(&baton(
        &app,
        &["user", "create", "--username", "Dora"],
        Some("a strong password\n"),
    ));
    assert!(out.contains("created user Dora"), "{out}");
    let dora = app.login("dora", "a strong password").await;
    assert_eq!(dora.status(), StatusCode::OK);
    let dora: baton_shared::TokenPair = dora.json().await.unwrap();
    let failed = baton(
        &app,
        &["user", "create", "--username", "dora"],
        Some("another password\n"),
    );
    assert!(!failed.status.success(), "a taken username is refused");
    let weak = baton(
        &app,
        &["user", "create", "--username", "eve"],
        Some("short\n"),
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password must be 8-1024 characters"));

    // sessions list shows the login, with its id.
    let out = stdout(&baton(
        &app,
        &["sessions", "list", "--username", "dora"],
        None,
    ));
    assert!(out.contains(&dora.session_id.to_string()), "{out}");
    assert!(out.contains("1 live session(s)"), "{out}");

    // sessions revoke: the running server refuses the access token within 2 s.
    let out = stdout(&baton(
        &app,
        &["sessions", "revoke", "--username", "dora"],
        None,
    ));
    assert!(out.contains("ended 1 session(s)"), "{out}");
    let start = Instant::now();
    while app.me(&dora.access_token).await.status() == StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "still accepted after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.refresh_refused(&dora.refresh_token, ErrorCode::SessionRevoked)
        .await;

    // keys rotate / list: the running server signs with the new key.
    let out = stdout(&baton(&app, &["keys", "rotate"], None));
    let kid = out.split_whitespace().nth(3).unwrap().to_owned();
    let listing = stdout(&baton(&app, &["keys", "list"], None));
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with(&kid) && l.contains("signing")),
        "{listing}"
    );
    assert_eq!(listing.lines().count(), 2, "{listing}");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let pair: baton_shared::TokenPair = app
            .login("dora", "a strong password")
            .await
            .json()
            .await
            .unwrap();
        if jwt_parts(&pair.access_token).0["kid"] == kid.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server never signed with {kid}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // purge and generate-master run and say what they did.
    assert!(stdout(&baton(&app, &["purge"], None)).starts_with("purged "));
    let master = stdout(&baton(&app, &["keys", "generate-master"], None));
    assert!(baton_server::keys::MasterKey::from_base64(master.trim()).is_ok());

    // A wrong master key cannot open the stored keys: refused loudly.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_baton-server"));
    let out = cmd
        .args(["keys", "list"])
        .env_clear()
        .env("BATON_DATA_DIR", app.data_dir.path())
        .env("BATON_MASTER_KEY", master.trim())
        .envs(match &app.backend {
            Backend::Postgres(url) => vec![("DATABASE_URL", url.clone())],
            Backend::Sqlite => vec![],
        })
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key does not match"));
}
