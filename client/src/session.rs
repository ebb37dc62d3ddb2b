//! The session kept per board in `localStorage` (`minim.session.<board>`), so that a reload keeps
//! who you are (and so your votes and topics).

use crate::api::{Grant, Joined};
use minim_shared::PersonId;
use serde::{Deserialize, Serialize};

/// A joined session.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StoredSession {
    pub token: String,
    pub person: Option<PersonId>,
    pub grant: Grant,
    /// The link key it was joined with: opening another link of the same board joins anew.
    #[serde(default)]
    pub key: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl StoredSession {
    pub fn from_joined(joined: Joined, key: &str) -> StoredSession {
        StoredSession {
            token: joined.token.0,
            person: joined.person,
            grant: joined.grant,
            key: Some(key.to_owned()),
            expires_at: Some(joined.expires_at),
        }
    }
}

fn storage_key(board: &str) -> String {
    format!("minim.session.{board}")
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The stored session for `board`, if there is one that has not expired.
pub fn load(board: &str) -> Option<StoredSession> {
    let raw = storage()?.get_item(&storage_key(board)).ok()??;
    let session: StoredSession = serde_json::from_str(&raw).ok()?;
    let now_secs = crate::browser::now_ms() / 1000;
    if session.expires_at.is_some_and(|exp| exp <= now_secs) {
        clear(board);
        return None;
    }
    Some(session)
}

/// Keeps `session` for `board`. The projector's session is not kept: its link holds all it needs,
/// and keeping it would replace the facilitator's own session when both run in one browser.
pub fn save(board: &str, session: &StoredSession) {
    if session.grant == Grant::Projector {
        return;
    }
    if let (Some(storage), Ok(json)) = (storage(), serde_json::to_string(session)) {
        let _ = storage.set_item(&storage_key(board), &json);
    }
}

pub fn clear(board: &str) {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(&storage_key(board));
    }
}
