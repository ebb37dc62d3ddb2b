//! Events: what happened to a board, in the past tense, in the order the board recorded it.
//!
//! Events are the only thing stored and the only thing sent; a board is the fold of its events
//! ([`crate::Board::apply`]). Each event is self-describing enough that [`Event::visible_to`]
//! can redact it for one recipient without looking at the board: that function is the single
//! place where "who may see what" is decided.

use crate::ids::{ActionItemId, PersonId, Seq, TopicId, UnixMillis};
use crate::settings::Settings;
use crate::text::Private;
use serde::{Deserialize, Serialize};

/// A phase of the meeting. The facilitator moves forward or one phase back.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Gathering,
    Voting,
    Discussing,
    WrapUp,
    Closed,
}

impl Phase {
    pub const ALL: [Phase; 5] = [Phase::Gathering, Phase::Voting, Phase::Discussing, Phase::WrapUp, Phase::Closed];

    pub fn next(self) -> Option<Phase> {
        Phase::ALL.get(self as usize + 1).copied()
    }

    pub fn previous(self) -> Option<Phase> {
        (self as usize).checked_sub(1).map(|i| Phase::ALL[i])
    }

    pub fn label(self) -> &'static str {
        match self {
            Phase::Gathering => "gathering topics",
            Phase::Voting => "voting",
            Phase::Discussing => "discussing",
            Phase::WrapUp => "wrap-up",
            Phase::Closed => "closed",
        }
    }
}

/// What a person is on a board.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Facilitator,
    Participant,
}

/// A check-in answer when a timebox ends.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Keep going.
    Up,
    /// Either way.
    Sideways,
    /// Move on.
    Down,
}

/// The discussion timer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Timer {
    /// Not started for the current topic, or stopped.
    #[default]
    Idle,
    /// Counting down to an absolute deadline.
    Running { deadline: UnixMillis },
    /// Paused with this much time left.
    Paused { remaining_ms: u64 },
    /// The timebox ended; the check-in is open.
    Expired,
}

/// A topic's vote total, as revealed when voting closes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TopicVotes {
    pub topic: TopicId,
    pub votes: u32,
}

/// A topic's text as revealed by the facilitator.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RevealedTopic {
    pub topic: TopicId,
    pub text: Private,
}

/// Something the group will do about a topic.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ActionItem {
    pub id: ActionItemId,
    pub topic: TopicId,
    pub text: Private,
    pub owner: PersonId,
    /// A calendar date, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
}

/// Something that happened to a board.
///
/// Fields that are `Option` are `None` in the copy a recipient gets when they may not see them
/// (see [`Event::visible_to`]); the stored copy always has them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case")]
pub enum Event {
    BoardCreated {
        title: Private,
        settings: Settings,
    },
    PersonJoined {
        person: PersonId,
        name: Private,
        role: Role,
    },
    PersonRenamed {
        person: PersonId,
        name: Private,
    },
    /// The participant link was replaced. Only the server knows the new key's hash; everyone else
    /// sees that it happened.
    ParticipantLinkRotated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_sha256: Option<String>,
    },
    /// The facilitator handed the role over: `to` facilitates now, `from` participates.
    FacilitatorChanged {
        from: PersonId,
        to: PersonId,
    },
    /// The facilitator deleted the board. The server does not store this: it deletes the log
    /// instead; folding it empties a board.
    BoardDeleted,
    /// The facilitator took someone off the board. What they wrote and their votes stay: they were
    /// part of the meeting.
    PersonRemoved {
        person: PersonId,
    },
    SettingsChanged {
        settings: Settings,
    },
    PhaseChanged {
        from: Phase,
        to: Phase,
    },
    TopicAdded {
        topic: TopicId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        author: Option<PersonId>,
        /// `None` for recipients who may not see a hidden topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<Private>,
        hidden: bool,
    },
    TopicEdited {
        topic: TopicId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        author: Option<PersonId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<Private>,
        hidden: bool,
    },
    /// Withdrawn by its author or removed by the facilitator; its votes return to their owners.
    TopicRemoved {
        topic: TopicId,
    },
    TopicsRevealed {
        topics: Vec<RevealedTopic>,
    },
    /// `from` was folded into `into`; each person's votes move across up to the per-topic limit
    /// and any excess returns to them.
    TopicsMerged {
        from: TopicId,
        into: TopicId,
        /// New wording for `into`, if the facilitator gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<Private>,
        /// `into`'s total after the merge; `None` for recipients while totals are hidden.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into_votes: Option<u32>,
        totals_public: bool,
    },
    VotePlaced {
        /// Only the voter learns it was them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<PersonId>,
        /// Others learn the topic only while totals are public.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<TopicId>,
        totals_public: bool,
    },
    VoteRemoved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<PersonId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<TopicId>,
        totals_public: bool,
    },
    /// Totals become public (voting closed, or the setting was turned off). They stay public.
    VoteTotalsRevealed {
        totals: Vec<TopicVotes>,
    },
    /// `topic` is now under discussion; `previous`, if any, went back to the queue undiscussed.
    TopicSelected {
        topic: TopicId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<TopicId>,
    },
    TimerStarted {
        topic: TopicId,
        deadline: UnixMillis,
    },
    TimerPaused {
        remaining_ms: u64,
    },
    TimerResumed {
        deadline: UnixMillis,
    },
    /// The timer after the extension (running to a later deadline, or paused with more left).
    TimerExtended {
        timer: Timer,
    },
    TimerStopped,
    /// The timebox ran out: the check-in opens.
    TimeboxEnded {
        topic: TopicId,
    },
    CheckInAnswered {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<PersonId>,
        answer: Answer,
        /// The same person's earlier answer, which this one replaces.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<Answer>,
    },
    /// The current topic is done; the next one, if any, is selected by a following event.
    TopicDiscussed {
        topic: TopicId,
    },
    TakeawaySet {
        topic: TopicId,
        text: Private,
    },
    ActionItemAdded {
        item: ActionItem,
    },
    ActionItemRemoved {
        id: ActionItemId,
    },
}

// On the wire: `{"type": "topic_added", ...}` (see `crate::tagged`).
crate::tagged::tagged_serde!(Event);

/// Who is looking: a person on the board, or nobody in particular (the projector in the room).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Viewer {
    Person(PersonId),
    Public,
}

impl Viewer {
    pub(crate) fn is(self, person: Option<PersonId>) -> bool {
        matches!((self, person), (Viewer::Person(me), Some(p)) if me == p)
    }
}

impl Event {
    /// The copy of this event that `viewer` may receive. This is the whole confidentiality rule
    /// for events:
    /// - topic authors reach only the author themselves;
    /// - a hidden topic's text reaches only its author (until a `TopicsRevealed`);
    /// - individual votes and check-in answers reach only their owner; others learn which topic
    ///   gained or lost a vote only while totals are public.
    pub fn visible_to(&self, viewer: Viewer) -> Event {
        let mut e = self.clone();
        match &mut e {
            Event::TopicAdded { author, text, hidden, .. } | Event::TopicEdited { author, text, hidden, .. }
                if !viewer.is(*author) =>
            {
                *author = None;
                if *hidden {
                    *text = None;
                }
            }
            Event::VotePlaced { person, topic, totals_public }
            | Event::VoteRemoved { person, topic, totals_public }
                if !viewer.is(*person) =>
            {
                *person = None;
                if !*totals_public {
                    *topic = None;
                }
            }
            Event::TopicsMerged { into_votes, totals_public: false, .. } => *into_votes = None,
            Event::CheckInAnswered { person, .. } if !viewer.is(*person) => *person = None,
            Event::ParticipantLinkRotated { key_sha256 } => *key_sha256 = None,
            _ => {}
        }
        e
    }

    /// The one person who may see more of this event than everyone else, if any. A fan-out can
    /// serialise the public copy once and a private copy only for this person.
    pub fn privileged(&self) -> Option<PersonId> {
        match self {
            Event::TopicAdded { author, .. } | Event::TopicEdited { author, .. } => *author,
            Event::VotePlaced { person, .. }
            | Event::VoteRemoved { person, .. }
            | Event::CheckInAnswered { person, .. } => *person,
            _ => None,
        }
    }
}

/// An event with its place in the board's history.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Sequenced {
    pub seq: Seq,
    pub event: Event,
}
