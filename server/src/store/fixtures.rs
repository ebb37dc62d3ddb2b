//! Test fixtures shared by the tests of every [`super::EventLog`]: one board, its metadata, and
//! events that follow each other.

use super::BoardMeta;
use minim_shared::{BoardId, Event, PersonId, Private, Role, Seq, Sequenced, Settings, UnixMillis};

pub fn board() -> BoardId {
    BoardId("00112233445566778899aabbccddeeff".into())
}

pub fn meta() -> BoardMeta {
    BoardMeta {
        created_at: UnixMillis(1),
        facilitator_key_sha256: "f".into(),
        participant_key_sha256: "p".into(),
        projector_key_sha256: "s".into(),
    }
}

/// The event at `seq`: the board's creation first, then people joining.
pub fn event(seq: u64) -> Sequenced {
    let event = if seq == 1 {
        Event::BoardCreated { title: Private::new("t"), settings: Settings::default() }
    } else {
        Event::PersonJoined { person: PersonId(seq as u32), name: Private::new("n"), role: Role::Participant }
    };
    Sequenced { seq: Seq(seq), event }
}
