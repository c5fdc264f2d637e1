//! Unsaved note text, kept in `localStorage` while the user types, so that nothing is
//! lost to a failed save, a forced re-login or a closed tab. One draft per user and
//! note (`new` for a note not created yet); removed once the note is saved.

use baton_client::local_storage;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const PREFIX: &str = "baton.draft.v1.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub title: String,
    pub body: String,
    /// When it was last written (ms since the epoch).
    pub saved_at: i64,
}

fn key(user: Uuid, note: &str) -> String {
    format!("{PREFIX}{user}.{note}")
}

/// Reads stored draft text; anything unreadable counts as no draft.
pub fn parse(raw: &str) -> Option<Draft> {
    serde_json::from_str(raw).ok()
}

pub fn load(user: Uuid, note: &str) -> Option<Draft> {
    let key = key(user, note);
    let raw = local_storage::get(&key)?;
    let draft = parse(&raw);
    if draft.is_none() {
        local_storage::remove(&key);
    }
    draft
}

pub fn save(user: Uuid, note: &str, draft: &Draft) {
    if let Ok(json) = serde_json::to_string(draft) {
        local_storage::set(&key(user, note), &json);
    }
}

pub fn discard(user: Uuid, note: &str) {
    local_storage::remove(&key(user, note));
}

/// Removes every draft of `user` (on an explicit logout).
pub fn discard_all(user: Uuid) {
    for key in local_storage::keys_with_prefix(&format!("{PREFIX}{user}.")) {
        local_storage::remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_users_and_notes() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert_ne!(key(a, "new"), key(b, "new"));
        assert_ne!(key(a, "new"), key(a, &Uuid::from_u128(3).to_string()));
        assert!(key(a, "new").starts_with(PREFIX));
    }

    #[test]
    fn drafts_round_trip_and_garbage_is_no_draft() {
        let d = Draft {
            title: "<b>t</b>".into(),
            body: "line\nline".into(),
            saved_at: 5,
        };
        assert_eq!(parse(&serde_json::to_string(&d).unwrap()), Some(d));
        assert_eq!(parse("{"), None);
        assert_eq!(parse("{\"title\":1}"), None);
    }
}
