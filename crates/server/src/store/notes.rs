//! The `notes` table. Every query is scoped to the owner: another user's note is
//! indistinguishable from a missing one.

use baton_shared::{Note, ValidNote};
use uuid::Uuid;

use super::{with_db, Db};
use crate::clock::{now_ms, to_datetime};
use crate::error::Result;

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: Uuid,
    title: String,
    body: String,
    created_at: i64,
    updated_at: i64,
}

impl From<NoteRow> for Note {
    fn from(r: NoteRow) -> Self {
        Note {
            id: r.id,
            title: r.title,
            body: r.body,
            created_at: to_datetime(r.created_at),
            updated_at: to_datetime(r.updated_at),
        }
    }
}

/// The user's notes, newest first.
#[tracing::instrument(skip(db))]
pub async fn list(db: &Db, user_id: Uuid) -> Result<Vec<Note>> {
    let rows: Vec<NoteRow> = with_db!(db, read, |pool| {
        sqlx::query_as(
            "SELECT id, title, body, created_at, updated_at FROM notes
              WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Note::from).collect())
}

#[tracing::instrument(skip(db, note))]
pub async fn create(db: &Db, user_id: Uuid, note: &ValidNote) -> Result<Note> {
    let row: NoteRow = with_db!(db, write, |pool| {
        sqlx::query_as(
            "INSERT INTO notes (id, user_id, title, body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             RETURNING id, title, body, created_at, updated_at",
        )
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(note.title.as_str())
        .bind(note.body.as_str())
        .bind(now_ms())
        .fetch_one(pool)
        .await?
    });
    Ok(row.into())
}

#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, user_id: Uuid, id: Uuid) -> Result<Option<Note>> {
    let row: Option<NoteRow> = with_db!(db, read, |pool| {
        sqlx::query_as(
            "SELECT id, title, body, created_at, updated_at FROM notes WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(Note::from))
}

#[tracing::instrument(skip(db, note))]
pub async fn update(db: &Db, user_id: Uuid, id: Uuid, note: &ValidNote) -> Result<Option<Note>> {
    let row: Option<NoteRow> = with_db!(db, write, |pool| {
        sqlx::query_as(
            "UPDATE notes SET title = $1, body = $2, updated_at = $3
              WHERE id = $4 AND user_id = $5
             RETURNING id, title, body, created_at, updated_at",
        )
        .bind(note.title.as_str())
        .bind(note.body.as_str())
        .bind(now_ms())
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(Note::from))
}

/// True when a note was deleted.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, user_id: Uuid, id: Uuid) -> Result<bool> {
    let n = with_db!(db, write, |pool| {
        sqlx::query("DELETE FROM notes WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}
