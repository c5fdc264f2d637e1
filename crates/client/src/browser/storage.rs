//! `localStorage`, read and written without ever throwing: a browser that refuses
//! storage (disabled, sandboxed, full) behaves like an empty one.

use crate::stored::StoredSession;

fn local() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

pub(crate) fn get(key: &str) -> Option<String> {
    local()?.get_item(key).ok()?
}

/// Writes `value`; false if the browser refused.
pub(crate) fn set(key: &str, value: &str) -> bool {
    local().is_some_and(|s| s.set_item(key, value).is_ok())
}

pub(crate) fn remove(key: &str) {
    if let Some(s) = local() {
        let _ = s.remove_item(key);
    }
}

pub(crate) fn available() -> bool {
    local().is_some()
}

/// True if `localStorage` takes a write under `<key>.probe` and gives it back.
pub(crate) fn probe(key: &str) -> bool {
    let probe = format!("{key}.probe");
    let ok = set(&probe, "1") && get(&probe).as_deref() == Some("1");
    remove(&probe);
    ok
}

/// The stored session, if there is a valid one. Anything else under the key (corrupt,
/// another layout version) is removed.
pub(crate) fn load_session(key: &str) -> Option<StoredSession> {
    let raw = get(key)?;
    match StoredSession::parse(&raw) {
        Ok(session) => Some(session),
        Err(why) => {
            web_sys::console::warn_1(
                &format!("baton-client: discarding the stored session ({why:?})").into(),
            );
            remove(key);
            None
        }
    }
}

/// False if the browser refused the write.
pub(crate) fn save_session(key: &str, session: &StoredSession) -> bool {
    let saved = set(key, &session.to_json());
    if !saved {
        web_sys::console::warn_1(&"baton-client: could not store the session".into());
    }
    saved
}
