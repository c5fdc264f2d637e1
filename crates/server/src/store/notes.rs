//! The `notes` table. Every query is scoped to the owner: another user's note is
//! indistinguishable from a missing one.

use super::pool::row;
use baton_shared::{Note, ValidNote};
use uuid::Uuid;

use super::Db;
use crate::clock::{now_ms, to_datetime};
use crate::error::Result;

row! {
    struct NoteRow {
        id: Uuid,
        title: String,
        body: String,
        created_at: i64,
        updated_at: i64,
    }
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
    let rows: Vec<NoteRow> = db
        .read()
        .fetch_all(
            "SELECT id, title, body, created_at, updated_at FROM notes
              WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
            &[user_id.into()],
        )
        .await?;
    Ok(rows.into_iter().map(Note::from).collect())
}

#[tracing::instrument(skip(db, note))]
pub async fn create(db: &Db, user_id: Uuid, note: &ValidNote) -> Result<Note> {
    let row: NoteRow = db
        .write()
        .fetch_one(
            "INSERT INTO notes (id, user_id, title, body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             RETURNING id, title, body, created_at, updated_at",
            &[
                Uuid::now_v7().into(),
                user_id.into(),
                note.title.as_str().into(),
                note.body.as_str().into(),
                now_ms().into(),
            ],
        )
        .await?;
    Ok(row.into())
}

#[tracing::instrument(skip(db))]
pub async fn get(db: &Db, user_id: Uuid, id: Uuid) -> Result<Option<Note>> {
    let row: Option<NoteRow> = db
        .read()
        .fetch_optional(
            "SELECT id, title, body, created_at, updated_at FROM notes WHERE id = $1 AND user_id = $2",
            &[id.into(), user_id.into()],
        )
        .await?;
    Ok(row.map(Note::from))
}

#[tracing::instrument(skip(db, note))]
pub async fn update(db: &Db, user_id: Uuid, id: Uuid, note: &ValidNote) -> Result<Option<Note>> {
    let row: Option<NoteRow> = db
        .write()
        .fetch_optional(
            "UPDATE notes SET title = $1, body = $2, updated_at = $3
              WHERE id = $4 AND user_id = $5
             RETURNING id, title, body, created_at, updated_at",
            &[
                note.title.as_str().into(),
                note.body.as_str().into(),
                now_ms().into(),
                id.into(),
                user_id.into(),
            ],
        )
        .await?;
    Ok(row.map(Note::from))
}

/// True when a note was deleted.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &Db, user_id: Uuid, id: Uuid) -> Result<bool> {
    let deleted = db
        .write()
        .execute(
            "DELETE FROM notes WHERE id = $1 AND user_id = $2",
            &[id.into(), user_id.into()],
        )
        .await?;
    Ok(deleted == 1)
}
