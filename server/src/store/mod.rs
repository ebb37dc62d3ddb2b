//! Where boards live: each board's event log and its access metadata.
//!
//! [`EventLog`] is the small seam between the board tasks and storage. The embedded
//! [`disk::DiskLog`] is the default; [`redis::RedisLog`] keeps boards in Redis so that several nodes
//! can share live boards (not wired into the server yet; fan-out between nodes comes with it).
//! Appends are compare-and-append: the caller names the sequence number its events follow, and the
//! log refuses if it has moved on, so two writers can never both extend a board.

pub mod disk;
#[cfg(test)]
mod fixtures;
pub mod redis;

use futures_util::future::BoxFuture;
use minim_shared::{BoardId, Seq, Sequenced, UnixMillis};
use serde::{Deserialize, Serialize};

/// What a board needs besides its events: hashes of its link keys.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BoardMeta {
    pub created_at: UnixMillis,
    pub facilitator_key_sha256: String,
    pub participant_key_sha256: String,
    pub projector_key_sha256: String,
}

/// A board as loaded: its metadata and every event, in order.
pub struct StoredBoard {
    pub meta: BoardMeta,
    pub events: Vec<Sequenced>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer extended the board first; its head is now `head`.
    #[error("the board's log has moved on to {head}")]
    Conflict { head: Seq },
    #[error("the board already exists")]
    Exists,
    #[error("the board does not exist")]
    NotFound,
    /// The storage itself failed; nothing was written.
    #[error("storage unavailable: {0:#}")]
    Unavailable(#[from] anyhow::Error),
}

/// Durable, ordered storage of board event logs.
pub trait EventLog: Send + Sync + 'static {
    /// Stores a new board with its first events.
    fn create<'a>(
        &'a self,
        board: &'a BoardId,
        meta: &'a BoardMeta,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Loads a board, or `None` if there is no such board.
    fn load<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<Option<StoredBoard>, StoreError>>;

    /// Appends `events`, which must directly follow `after`, durably. On `Conflict` nothing was
    /// written.
    fn append<'a>(
        &'a self,
        board: &'a BoardId,
        after: Seq,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether the store can take writes right now (for `/readyz`).
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}
