//! Commands: what someone asks a board to do, in the imperative. [`crate::decide`] accepts a
//! command (producing events) or rejects it with a reason.

use crate::event::{Answer, Phase, Role};
use crate::ids::{ActionItemId, PersonId, TopicId};
use crate::settings::Settings;
use crate::text::Private;
use serde::{Deserialize, Serialize};

/// Who is asking. Permissions come from the board's own record of people, not from the caller.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// A person on the board (the facilitator or a participant).
    Person(PersonId),
    /// The read-only projector view: it may change nothing.
    Projector,
    /// The server itself: creating boards, admitting people, ending timeboxes.
    System,
}

/// A request to change a board. Text fields arrive raw (but already unloggable) and are
/// normalised by `decide`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    // System
    CreateBoard {
        title: Private,
        settings: Settings,
    },
    Join {
        name: Private,
        role: Role,
    },
    EndTimebox,

    // Anyone on the board
    AddTopic {
        text: Private,
    },
    PlaceVote {
        topic: TopicId,
    },
    RemoveVote {
        topic: TopicId,
    },
    AnswerCheckIn {
        answer: Answer,
    },

    // The author (while the topic waits) or the facilitator
    EditTopic {
        topic: TopicId,
        text: Private,
    },
    RemoveTopic {
        topic: TopicId,
    },

    // The facilitator
    ChangeSettings {
        settings: Settings,
    },
    ChangePhase {
        to: Phase,
    },
    RevealTopics,
    MergeTopics {
        from: TopicId,
        into: TopicId,
        #[serde(default)]
        text: Option<Private>,
    },
    SelectTopic {
        topic: TopicId,
    },
    StartTimer,
    PauseTimer,
    ResumeTimer,
    ExtendTimer,
    StopTimer,
    MoveOn,
    SetTakeaway {
        topic: TopicId,
        text: Private,
    },
    AddActionItem {
        topic: TopicId,
        text: Private,
        owner: PersonId,
        #[serde(default)]
        due: Option<String>,
    },
    RemoveActionItem {
        id: ActionItemId,
    },
    /// Takes someone off the board: their connections close and their session stops working.
    RemovePerson {
        person: PersonId,
    },
    /// Deletes the board and everything on it, now: every connection closes and every link
    /// answers "deleted".
    DeleteBoard,
    /// Makes a participant the facilitator; the facilitator becomes a participant, and the
    /// facilitator link stops working (whoever holds it is no longer the facilitator).
    HandOver {
        to: PersonId,
    },
    /// Replaces the participant link with a new one; the old one stops working (people already
    /// on the board stay). The server makes the new key and gives it to the facilitator.
    RotateParticipantLink,
}

/// Who may issue a command: the permission table. `decide` consults it before any other rule, and
/// it is tested cell by cell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Permission {
    /// Only the server.
    System,
    /// Any person on the board.
    Member,
    /// The topic's author, or the facilitator.
    AuthorOrFacilitator,
    /// Only the facilitator.
    Facilitator,
}

impl Command {
    pub fn permission(&self) -> Permission {
        use Command::*;
        match self {
            CreateBoard { .. } | Join { .. } | EndTimebox => Permission::System,
            AddTopic { .. } | PlaceVote { .. } | RemoveVote { .. } | AnswerCheckIn { .. } => Permission::Member,
            EditTopic { .. } | RemoveTopic { .. } => Permission::AuthorOrFacilitator,
            ChangeSettings { .. }
            | ChangePhase { .. }
            | RevealTopics
            | MergeTopics { .. }
            | SelectTopic { .. }
            | StartTimer
            | PauseTimer
            | ResumeTimer
            | ExtendTimer
            | StopTimer
            | MoveOn
            | SetTakeaway { .. }
            | AddActionItem { .. }
            | RemoveActionItem { .. }
            | RemovePerson { .. }
            | DeleteBoard
            | HandOver { .. }
            | RotateParticipantLink => Permission::Facilitator,
        }
    }

    /// A short, content-free name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        use Command::*;
        match self {
            CreateBoard { .. } => "create_board",
            Join { .. } => "join",
            EndTimebox => "end_timebox",
            AddTopic { .. } => "add_topic",
            PlaceVote { .. } => "place_vote",
            RemoveVote { .. } => "remove_vote",
            AnswerCheckIn { .. } => "answer_check_in",
            EditTopic { .. } => "edit_topic",
            RemoveTopic { .. } => "remove_topic",
            ChangeSettings { .. } => "change_settings",
            ChangePhase { .. } => "change_phase",
            RevealTopics => "reveal_topics",
            MergeTopics { .. } => "merge_topics",
            SelectTopic { .. } => "select_topic",
            StartTimer => "start_timer",
            PauseTimer => "pause_timer",
            ResumeTimer => "resume_timer",
            ExtendTimer => "extend_timer",
            StopTimer => "stop_timer",
            MoveOn => "move_on",
            SetTakeaway { .. } => "set_takeaway",
            AddActionItem { .. } => "add_action_item",
            RemoveActionItem { .. } => "remove_action_item",
            RemovePerson { .. } => "remove_person",
            DeleteBoard => "delete_board",
            HandOver { .. } => "hand_over",
            RotateParticipantLink => "rotate_participant_link",
        }
    }
}
