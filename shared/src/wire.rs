//! The WebSocket protocol between a browser (or any client) and a minim server: JSON text frames,
//! one message per frame, tagged by `"type"`.
//!
//! # Compatibility contract
//! [`PROTOCOL_VERSION`] names this exact set of messages. A client says which version it speaks
//! in [`ClientMessage::Hello`]; a server that does not speak it answers
//! [`ErrorCode::UnsupportedProtocol`] and closes. Within one version, fields may be added only
//! when old readers can ignore them; renaming or removing anything means a new version.
//! `tests/wire_golden.rs` pins the exact JSON of representative messages.
//!
//! # Flow
//! 1. The client connects and sends `hello` with its session token and, when resuming, the
//!    last sequence number it folded.
//! 2. The server answers `welcome`, then either the events the client missed (each an `event`,
//!    in order, no gaps, no duplicates) or a `snapshot` when that is cheaper or the client is new.
//! 3. Live: the client sends `command`s, each answered by `accepted` (with the sequence number
//!    of the last event it produced) or `rejected`; every change reaches every client as `event`s.
//!    Each recipient gets only what they may see ([`crate::Event::visible_to`]).

use crate::board::Board;
use crate::command::Command;
use crate::decide::{RejectCode, Rejection};
use crate::event::{Role, Sequenced};
use crate::ids::{BoardId, PersonId, Seq, UnixMillis};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The version of this protocol.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame a server accepts from a client, in bytes.
pub const MAX_CLIENT_FRAME_BYTES: usize = 16 * 1024;

/// Messages a client may send per second, on average (a token bucket per connection). A person
/// adding topics and voting sends a few a minute; the app's clock pings, one every few seconds.
pub const MAX_MESSAGES_PER_SECOND: u32 = 10;
/// Messages a client may send at once before the average applies (the bucket's size).
pub const MESSAGE_BURST: u32 = 40;

/// A signed session token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionToken(pub String);

impl AsRef<str> for SessionToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// A client's number for a command, echoed in the answer.
pub type RequestId = u64;

/// From client to server.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Hello {
        protocol: u32,
        token: SessionToken,
        /// The last sequence number this client folded, when resuming.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Seq>,
    },
    Command {
        id: RequestId,
        command: Command,
    },
    /// Asks for the server's clock (clients estimate their offset from it).
    Ping {
        id: u64,
    },
}

/// Who the server knows the client to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "as", rename_all = "snake_case")]
pub enum Identity {
    Person { person: PersonId, role: Role },
    Projector,
}

/// Why something failed outside of a rule: the codes on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not a message of this protocol.
    BadMessage,
    /// The frame was larger than [`MAX_CLIENT_FRAME_BYTES`].
    TooLarge,
    /// The client speaks another protocol version.
    UnsupportedProtocol,
    /// The token is missing, forged, expired or for another board.
    Unauthorized,
    /// The board does not exist.
    BoardNotFound,
    /// The board was deleted (by its facilitator, or when its retention ended).
    BoardDeleted,
    /// The first message must be `hello`, and only once.
    NotHello,
    /// The server cannot accept changes right now (storage trouble); try again shortly.
    Unavailable,
    /// The client fell too far behind; it will get a snapshot.
    Lagging,
    /// The client sent more than [`MAX_MESSAGES_PER_SECOND`] (beyond [`MESSAGE_BURST`]); the
    /// connection is closed with [`close::TOO_MANY`].
    TooMany,
    /// A rule of the meeting refused the command: the [`RejectCode`] itself goes on the wire
    /// (`"vote_limit"`, `"forbidden"`, ...), so there is one flat set of codes.
    #[serde(untagged)]
    Rule(RejectCode),
}

impl From<RejectCode> for ErrorCode {
    fn from(code: RejectCode) -> ErrorCode {
        ErrorCode::Rule(code)
    }
}

/// From server to client.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        protocol: u32,
        board: BoardId,
        you: Identity,
        /// The board's latest sequence number right now.
        head: Seq,
        server_time: UnixMillis,
    },
    /// The whole board as this client may see it, as of `board.seq`.
    Snapshot {
        board: Box<Board>,
    },
    Event(Sequenced),
    Accepted {
        id: RequestId,
        /// The sequence number of the last event the command produced (the head, if none).
        seq: Seq,
    },
    Rejected {
        id: RequestId,
        code: ErrorCode,
        message: String,
    },
    /// An error not tied to a command (a malformed frame, a bad hello).
    Error {
        code: ErrorCode,
        message: String,
    },
    /// Who is connected now.
    Presence {
        connected: Vec<PersonId>,
    },
    Pong {
        id: u64,
        server_time: UnixMillis,
    },
    /// The server is going away: reconnect (with `since`) after a short pause.
    Reconnect {
        after_ms: u64,
    },
}

// On the wire: `{"type": "welcome", ...}` (see `crate::tagged`); a snapshot's board is read as it
// streams by, so its maps' keys (`"1"`) are read back into ids directly.
crate::tagged::tagged_serde!(ServerMessage);

impl ServerMessage {
    pub fn rejected(id: RequestId, r: Rejection) -> ServerMessage {
        ServerMessage::Rejected { id, code: r.code.into(), message: r.message }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error { code, message: message.into() }
    }
}

/// WebSocket close codes the server uses (4000–4999 are the application's).
pub mod close {
    /// The token was refused.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The board does not exist.
    pub const BOARD_NOT_FOUND: u16 = 4404;
    /// The board was deleted.
    pub const BOARD_DELETED: u16 = 4410;
    /// Wrong protocol version.
    pub const UNSUPPORTED_PROTOCOL: u16 = 4426;
    /// No `hello` in time, or not first.
    pub const NOT_HELLO: u16 = 4400;
    /// The client stopped answering heartbeats or was idle too long.
    pub const IDLE: u16 = 4408;
    /// The client sent messages faster than allowed (a flood).
    pub const TOO_MANY: u16 = 4429;
}
