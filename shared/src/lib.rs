//! # minim-shared
//!
//! The pure heart of minim: one Lean Coffee board, the rules that change it and the messages that
//! carry it. Server and browser both build on this crate, so the browser folds events with the
//! very same code as the server. No IO, no clock, no randomness: time and ids come in as
//! arguments. It builds for `wasm32-unknown-unknown`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`command`] | [`Command`]s (imperative) and the permission table |
//! | [`decide`](mod@decide) | [`decide()`]: every rule; returns events or a [`Rejection`] |
//! | [`event`] | [`Event`]s (past tense) and [`Event::visible_to`], the confidentiality rule |
//! | [`board`] | [`Board`] state and [`Board::apply`], the fold; [`Board::view_for`] |
//! | [`settings`] | [`Settings`] and the named limits |
//! | [`text`] | [`Private`] text (redacted in `Debug`) and the input normaliser |
//! | [`ids`] | ids, [`Seq`], [`UnixMillis`] |
//! | [`present`] | pure presentation logic for the browser: countdown, clock sync, columns, wrap-up export |
//! | [`wire`] | the WebSocket protocol and its version |
//! | [`api`] | the HTTP API's request and answer bodies |

pub mod api;
pub mod board;
pub mod command;
pub mod decide;
pub mod event;
pub mod ids;
pub mod present;
pub mod settings;
mod tagged;
pub mod text;
pub mod wire;

pub use board::{Board, CheckIn, Person, Topic, TopicStatus};
pub use command::{Actor, Command, Permission};
pub use decide::{RejectCode, Rejection, decide};
pub use event::{ActionItem, Answer, Event, Phase, Role, Sequenced, Timer, Viewer};
pub use ids::{ActionItemId, BoardId, PersonId, Seq, TopicId, UnixMillis};
pub use settings::Settings;
pub use text::Private;

impl Board {
    /// Decides `command` and, if accepted, applies its events; returns them sequenced.
    /// For callers that keep the board in memory only (tests, tools). The server instead stores
    /// the events before applying them.
    pub fn execute(&mut self, actor: Actor, command: &Command, now: UnixMillis) -> Result<Vec<Sequenced>, Rejection> {
        let events = self.sequence(decide(self, actor, command, now)?);
        for e in &events {
            self.apply(e);
        }
        Ok(events)
    }
}
