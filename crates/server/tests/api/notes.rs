//! The notes API: CRUD, ownership, validation.

use baton_shared::{ErrorCode, Note};
use reqwest::StatusCode;
use serde_json::json;

use crate::db_tests;
use crate::helpers::*;

db_tests!(
    notes_crud,
    notes_list_newest_first,
    another_users_note_is_not_found,
    notes_need_a_token,
    note_validation,
);

async fn notes_crud(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.signup("alice").await.access_token;
    let r = app
        .post(
            "/api/notes",
            &json!({"title": "Groceries", "body": "milk\neggs"}),
            Some(&t),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Note = r.json().await.unwrap();
    assert_eq!(
        (created.title.as_str(), created.body.as_str()),
        ("Groceries", "milk\neggs")
    );
    assert_eq!(created.created_at, created.updated_at);

    let got: Note = app
        .get(&format!("/api/notes/{}", created.id), Some(&t))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);

    let r = app
        .put(
            &format!("/api/notes/{}", created.id),
            &json!({"title": "Shopping", "body": ""}),
            Some(&t),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Note = r.json().await.unwrap();
    assert_eq!(
        (updated.title.as_str(), updated.body.as_str()),
        ("Shopping", "")
    );
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at >= created.updated_at);

    let r = app
        .delete(&format!("/api/notes/{}", created.id), Some(&t))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get(&format!("/api/notes/{}", created.id), Some(&t))
            .await,
        404,
        ErrorCode::NotFound,
    )
    .await;
    assert_error(
        app.delete(&format!("/api/notes/{}", created.id), Some(&t))
            .await,
        404,
        ErrorCode::NotFound,
    )
    .await;
    let list: Vec<Note> = app.get("/api/notes", Some(&t)).await.json().await.unwrap();
    assert!(list.is_empty());
}

async fn notes_list_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.signup("alice").await.access_token;
    for i in 0..5 {
        let r = app
            .post(
                "/api/notes",
                &json!({"title": format!("note {i}"), "body": ""}),
                Some(&t),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let list: Vec<Note> = app.get("/api/notes", Some(&t)).await.json().await.unwrap();
    let titles: Vec<&str> = list.iter().map(|n| n.title.as_str()).collect();
    assert_eq!(titles, ["note 4", "note 3", "note 2", "note 1", "note 0"]);
}

async fn another_users_note_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signup("alice").await.access_token;
    let bob = app.signup("bob").await.access_token;
    let note: Note = app
        .post(
            "/api/notes",
            &json!({"title": "private", "body": "secret"}),
            Some(&alice),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/notes/{}", note.id);
    assert_error(app.get(&path, Some(&bob)).await, 404, ErrorCode::NotFound).await;
    assert_error(
        app.put(&path, &json!({"title": "mine now", "body": ""}), Some(&bob))
            .await,
        404,
        ErrorCode::NotFound,
    )
    .await;
    assert_error(
        app.delete(&path, Some(&bob)).await,
        404,
        ErrorCode::NotFound,
    )
    .await;
    let bobs: Vec<Note> = app
        .get("/api/notes", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert!(bobs.is_empty());
    // Untouched for its owner.
    let still: Note = app.get(&path, Some(&alice)).await.json().await.unwrap();
    assert_eq!(still, note);
    // A malformed id names no note.
    assert_error(
        app.get("/api/notes/not-a-uuid", Some(&alice)).await,
        404,
        ErrorCode::NotFound,
    )
    .await;
    assert_error(
        app.get("/api/notes/1' OR '1'='1", Some(&alice)).await,
        404,
        ErrorCode::NotFound,
    )
    .await;
}

async fn notes_need_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = uuid::Uuid::new_v4();
    let responses = vec![
        app.get("/api/notes", None).await,
        app.post("/api/notes", &json!({"title": "t", "body": "b"}), None)
            .await,
        app.get(&format!("/api/notes/{id}"), None).await,
        app.put(
            &format!("/api/notes/{id}"),
            &json!({"title": "t", "body": "b"}),
            None,
        )
        .await,
        app.delete(&format!("/api/notes/{id}"), None).await,
        app.get("/api/me", None).await,
        app.get("/api/sessions", None).await,
        app.delete(&format!("/api/sessions/{id}"), None).await,
        app.post("/api/auth/logout-all", &json!({}), None).await,
        app.put(
            "/api/me/password",
            &json!({"current_password": PASSWORD, "new_password": "another password"}),
            None,
        )
        .await,
    ];
    for r in responses {
        assert_error(r, 401, ErrorCode::Unauthenticated).await;
    }
}

async fn note_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.signup("alice").await.access_token;
    let cases = vec![
        (json!({"title": "", "body": ""}), "title"),
        (json!({"title": "   ", "body": ""}), "title"),
        (json!({"title": "x".repeat(201), "body": ""}), "title"),
        (json!({"title": "ok", "body": "x".repeat(16_001)}), "body"),
        (json!({"title": "tab\tin title", "body": ""}), "title"),
    ];
    for (body, field) in cases {
        let e = assert_error(
            app.post("/api/notes", &body, Some(&t)).await,
            400,
            ErrorCode::InvalidInput,
        )
        .await;
        assert!(
            e.fields.as_ref().is_some_and(|f| f.contains_key(field)),
            "{field}: {e:?}"
        );
    }
    // Limits are characters, not bytes: 200 four-byte characters are a valid title,
    // and the largest valid note fits the 64 KiB body limit.
    let r = app
        .post(
            "/api/notes",
            &json!({"title": "🗒".repeat(200), "body": "é".repeat(16_000)}),
            Some(&t),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Markup is stored as text, exactly.
    let xss = "<img src=x onerror=alert(1)>";
    let note: Note = app
        .post(
            "/api/notes",
            &json!({"title": xss, "body": "<script>alert(2)</script>"}),
            Some(&t),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(note.title, xss);
}
