//! Where boards live: each board's event log and its access metadata.
//!
//! [`EventLog`] is the small seam between the board tasks and storage. The embedded
//! [`disk::DiskLog`] is the default; [`redis::RedisLog`] keeps boards in Redis so that several nodes
//! can share live boards (with [`crate::fanout`] telling each node what the others appended).
//! Appends are compare-and-append: the caller names the sequence number its events follow, and the
//! log refuses if it has moved on, so two writers can never both extend a board.
//!
//! A shared store can also lose a board behind a node's back (a Redis restarted without
//! persistence, or a board's retention ending). So a board's log carries an [`Epoch`], chosen when
//! it is stored; a node names the epoch its copy came from, and the store answers
//! [`StoreError::Lost`] when that history is no longer the one it holds. Sequence numbers alone
//! could not tell: a board stored again from another node's copy counts from 1 again.

pub mod disk;
#[cfg(test)]
mod fixtures;
pub mod redis;
pub mod wal;

use futures_util::future::BoxFuture;
use minim_shared::{BoardId, Seq, Sequenced, UnixMillis};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Which incarnation of a board's log a copy of it came from (see the module documentation).
/// Random for a shared store; the embedded store has only one history, [`Epoch::EMBEDDED`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(pub u64);

impl Epoch {
    pub const EMBEDDED: Epoch = Epoch(0);

    pub fn random() -> anyhow::Result<Epoch> {
        Ok(Epoch(u64::from_le_bytes(crate::auth::random_bytes::<8>()?)))
    }
}

/// Sixteen hex digits: how an epoch is written in Redis and on the fan-out channel.
impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({self})")
    }
}

impl std::str::FromStr for Epoch {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Epoch, Self::Err> {
        u64::from_str_radix(s, 16).map(Epoch)
    }
}

impl Serialize for Epoch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Epoch, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

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
    pub epoch: Epoch,
    /// How long until the store deletes it unless it changes (`None`: it keeps boards).
    pub expires_in: Option<Duration>,
    /// How long ago it last changed, as far as the store can tell.
    pub changed_ago: Duration,
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
    /// The board was deleted (by its facilitator, or when its retention ended); only a tombstone
    /// without content remains, so that its links can say so.
    #[error("the board was deleted")]
    Deleted,
    /// The store no longer holds the history the caller's copy came from: the board is gone, or
    /// was stored again under another epoch. Nothing was written.
    #[error("the store no longer holds this board's history")]
    Lost,
    /// The storage itself failed; nothing was written.
    #[error("storage unavailable: {0:#}")]
    Unavailable(#[from] anyhow::Error),
}

/// Durable, ordered storage of board event logs.
pub trait EventLog: Send + Sync + 'static {
    /// Stores a new board with its first events (or a lost board again, from a node's copy), and
    /// returns the epoch it chose for it. `Exists` if the board is already there.
    fn create<'a>(
        &'a self,
        board: &'a BoardId,
        meta: &'a BoardMeta,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<Epoch, StoreError>>;

    /// Loads a board, or `None` if there is no such board.
    fn load<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<Option<StoredBoard>, StoreError>>;

    /// Appends `events`, which must directly follow `after` in the history `epoch`, durably (and,
    /// for a shared store, announces them to the other nodes). On `Conflict` or `Lost` nothing was
    /// written.
    fn append<'a>(
        &'a self,
        board: &'a BoardId,
        epoch: Epoch,
        after: Seq,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The events after `after` in the history `epoch`, in order (empty if there are none).
    fn read_after<'a>(
        &'a self,
        board: &'a BoardId,
        epoch: Epoch,
        after: Seq,
    ) -> BoxFuture<'a, Result<Vec<Sequenced>, StoreError>>;

    /// Deletes everything of a board and leaves a tombstone (for the retention period, at least),
    /// so that loading it answers `Deleted`, and it is never stored again.
    fn delete<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Boards whose last change is longer ago than `retention`, for a store that does not delete
    /// them by itself.
    fn expired(&self, _retention: Duration) -> BoxFuture<'_, Result<Vec<BoardId>, StoreError>> {
        Box::pin(async { Ok(vec![]) })
    }

    /// Whether the store can take writes right now (for `/readyz`).
    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether other nodes write to this store too, so that a node must look for what it missed.
    fn shared(&self) -> bool {
        false
    }

    /// How long the store keeps a board after its last change, if it deletes boards by itself.
    fn retention(&self) -> Option<Duration> {
        None
    }
}
