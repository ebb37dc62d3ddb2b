//! Golden tests of the wire protocol: the exact JSON of representative messages.
//!
//! Each case serialises a message and compares it with a JSON literal, then parses the literal and
//! compares it with the message. A failure here means the protocol changed: that needs a new
//! `PROTOCOL_VERSION` (see the compatibility contract in `wire.rs`), not a new literal.

use minim_shared::event::{ActionItem, TopicVotes};
use minim_shared::wire::{ClientMessage, ErrorCode, Identity, PROTOCOL_VERSION, ServerMessage, SessionToken};
use minim_shared::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt::Debug;

/// `message` is exactly `expected` on the wire, and `expected` reads back as `message`.
#[track_caller]
fn golden<T: Serialize + DeserializeOwned + PartialEq + Debug>(message: &T, expected: Value) {
    assert_eq!(serde_json::to_value(message).unwrap(), expected, "wire form of {message:?}");
    let parsed: T =
        serde_json::from_value(expected.clone()).unwrap_or_else(|e| panic!("{expected} does not parse: {e}"));
    assert_eq!(&parsed, message, "{expected} parses to something else");
    // And through text, as it travels.
    let text = serde_json::to_string(message).unwrap();
    assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), message, "{text} does not read back");
}

fn client(v: Value) -> Result<ClientMessage, serde_json::Error> {
    serde_json::from_str(&v.to_string())
}

fn text(s: &str) -> Private {
    Private::new(s)
}

fn event(seq: u64, event: Event) -> ServerMessage {
    ServerMessage::Event(Sequenced { seq: Seq(seq), event })
}

const SECRET_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.s1gnature";
const SECRET_TOPIC: &str = "My boss takes credit for my work";

// ----- Client to server. -----

#[test]
fn protocol_version_is_one() {
    assert_eq!(PROTOCOL_VERSION, 1);
}

#[test]
fn hello() {
    golden(
        &ClientMessage::Hello { protocol: 1, token: SessionToken(SECRET_TOKEN.into()), since: None },
        json!({"type": "hello", "protocol": 1, "token": SECRET_TOKEN}),
    );
    golden(
        &ClientMessage::Hello { protocol: 1, token: SessionToken(SECRET_TOKEN.into()), since: Some(Seq(42)) },
        json!({"type": "hello", "protocol": 1, "token": SECRET_TOKEN, "since": 42}),
    );
}

#[test]
fn commands() {
    let command = |id, command| ClientMessage::Command { id, command };
    golden(
        &command(7, Command::AddTopic { text: text("Hiring") }),
        json!({"type": "command", "id": 7, "command": {"type": "add_topic", "text": "Hiring"}}),
    );
    golden(
        &command(8, Command::PlaceVote { topic: TopicId(3) }),
        json!({"type": "command", "id": 8, "command": {"type": "place_vote", "topic": 3}}),
    );
    golden(
        &command(9, Command::ChangePhase { to: Phase::WrapUp }),
        json!({"type": "command", "id": 9, "command": {"type": "change_phase", "to": "wrap_up"}}),
    );
    golden(
        &command(
            10,
            Command::MergeTopics { from: TopicId(4), into: TopicId(2), text: Some(text("Hiring and firing")) },
        ),
        json!({"type": "command", "id": 10, "command": {"type": "merge_topics", "from": 4, "into": 2, "text": "Hiring and firing"}}),
    );
    golden(
        &command(11, Command::MergeTopics { from: TopicId(4), into: TopicId(2), text: None }),
        json!({"type": "command", "id": 11, "command": {"type": "merge_topics", "from": 4, "into": 2, "text": null}}),
    );
    golden(
        &command(
            12,
            Command::AddActionItem {
                topic: TopicId(2),
                text: text("Draft the rubric"),
                owner: PersonId(3),
                due: Some("2026-03-01".into()),
            },
        ),
        json!({"type": "command", "id": 12, "command": {
            "type": "add_action_item", "topic": 2, "text": "Draft the rubric", "owner": 3, "due": "2026-03-01"
        }}),
    );
    golden(
        &command(13, Command::ChangeSettings { settings: Settings::default() }),
        json!({"type": "command", "id": 13, "command": {"type": "change_settings", "settings": {
            "votes_per_person": 3,
            "max_votes_per_topic": 3,
            "timebox_ms": 300_000,
            "extension_ms": null,
            "hide_topics_until_revealed": false,
            "hide_totals_until_voting_closes": true
        }}}),
    );
    golden(&command(14, Command::StartTimer), json!({"type": "command", "id": 14, "command": {"type": "start_timer"}}));
}

#[test]
fn optional_command_fields_may_be_left_out() {
    let merge = client(json!({"type": "command", "id": 1, "command": {"type": "merge_topics", "from": 4, "into": 2}}));
    assert_eq!(
        merge.unwrap(),
        ClientMessage::Command {
            id: 1,
            command: Command::MergeTopics { from: TopicId(4), into: TopicId(2), text: None }
        }
    );
    let item = client(json!({"type": "command", "id": 2, "command": {
        "type": "add_action_item", "topic": 2, "text": "Draft", "owner": 3
    }}));
    assert_eq!(
        item.unwrap(),
        ClientMessage::Command {
            id: 2,
            command: Command::AddActionItem { topic: TopicId(2), text: text("Draft"), owner: PersonId(3), due: None }
        }
    );
    // Settings left out take their defaults.
    let settings = client(
        json!({"type": "command", "id": 3, "command": {"type": "change_settings", "settings": {"votes_per_person": 5}}}),
    );
    assert_eq!(
        settings.unwrap(),
        ClientMessage::Command {
            id: 3,
            command: Command::ChangeSettings { settings: Settings { votes_per_person: 5, ..Settings::default() } }
        }
    );
}

#[test]
fn ping() {
    golden(&ClientMessage::Ping { id: 3 }, json!({"type": "ping", "id": 3}));
}

#[test]
fn client_messages_are_parsed_strictly() {
    let bad = [
        // Unknown message types.
        json!({"type": "subscribe", "id": 1}),
        json!({"type": "Hello", "protocol": 1, "token": "t"}),
        json!({"protocol": 1, "token": "t"}),
        // Unknown fields.
        json!({"type": "hello", "protocol": 1, "token": "t", "admin": true}),
        json!({"type": "ping", "id": 1, "extra": 0}),
        json!({"type": "command", "id": 1, "command": {"type": "start_timer"}, "as": "facilitator"}),
        json!({"type": "command", "id": 1, "command": {"type": "add_topic", "text": "x", "author": 2}}),
        json!({"type": "command", "id": 1, "command": {"type": "change_settings", "settings": {"votes_per_person": 3, "bonus": 1}}}),
        // Unknown commands, and server-only words used as commands.
        json!({"type": "command", "id": 1, "command": {"type": "drop_tables"}}),
        json!({"type": "command", "id": 1, "command": {"type": "topic_added", "topic": 1, "hidden": false}}),
        // Wrong shapes.
        json!({"type": "hello", "protocol": 1}),
        json!({"type": "hello", "protocol": "1", "token": "t"}),
        json!({"type": "ping", "id": -1}),
        json!({"type": "command", "id": 1, "command": {"type": "place_vote", "topic": "3"}}),
        json!({"type": "command", "id": 1, "command": {"type": "change_phase", "to": "Voting"}}),
        json!({"type": "command", "id": 1}),
        json!([]),
        json!("hello"),
    ];
    for v in bad {
        assert!(client(v.clone()).is_err(), "{v} should not parse");
    }
    assert!(serde_json::from_str::<ClientMessage>("{\"type\":\"ping\",\"id\":1").is_err());
}

/// Known gap, pinned so that it is a decision: commands without fields (`start_timer`,
/// `move_on`, ...) ignore extra fields despite `deny_unknown_fields`, because serde does not apply
/// it to unit variants of internally tagged enums (serde-rs/serde#2123, #2294). Harmless, as the
/// extra fields are dropped, not used. If serde fixes this, make the first assertion `is_err`.
#[test]
fn commands_without_fields_ignore_extra_fields() {
    let lax = client(json!({"type": "command", "id": 1, "command": {"type": "start_timer", "deadline": 0}}));
    assert_eq!(lax.unwrap(), ClientMessage::Command { id: 1, command: Command::StartTimer });
    // Every command with fields does refuse them.
    let strict =
        client(json!({"type": "command", "id": 1, "command": {"type": "remove_action_item", "id": 1, "x": 0}}));
    assert!(strict.is_err());
}

#[test]
fn server_messages_are_not_client_messages() {
    assert!(client(json!({"type": "pong", "id": 3, "server_time": 1})).is_err());
    assert!(client(json!({"type": "accepted", "id": 3, "seq": 1})).is_err());
}

// ----- Server to client. -----

#[test]
fn welcome() {
    golden(
        &ServerMessage::Welcome {
            protocol: 1,
            board: BoardId("b-7Hq2".into()),
            you: Identity::Person { person: PersonId(2), role: Role::Participant },
            head: Seq(10),
            server_time: UnixMillis(1_700_000_000_000),
        },
        json!({
            "type": "welcome",
            "protocol": 1,
            "board": "b-7Hq2",
            "you": {"as": "person", "person": 2, "role": "participant"},
            "head": 10,
            "server_time": 1_700_000_000_000u64
        }),
    );
    golden(
        &ServerMessage::Welcome {
            protocol: 1,
            board: BoardId("b-7Hq2".into()),
            you: Identity::Projector,
            head: Seq(0),
            server_time: UnixMillis(1),
        },
        json!({"type": "welcome", "protocol": 1, "board": "b-7Hq2", "you": {"as": "projector"}, "head": 0, "server_time": 1}),
    );
}

#[test]
fn topic_added_full_and_redacted() {
    let stored =
        Event::TopicAdded { topic: TopicId(3), author: Some(PersonId(2)), text: Some(text("Hiring")), hidden: true };
    golden(
        &event(5, stored.clone()),
        json!({"type": "event", "seq": 5, "event": {"type": "topic_added", "topic": 3, "author": 2, "text": "Hiring", "hidden": true}}),
    );
    assert_eq!(stored.visible_to(Viewer::Person(PersonId(2))), stored);
    let redacted = stored.visible_to(Viewer::Person(PersonId(4)));
    assert_eq!(redacted, stored.visible_to(Viewer::Public));
    golden(
        &event(5, redacted),
        json!({"type": "event", "seq": 5, "event": {"type": "topic_added", "topic": 3, "hidden": true}}),
    );
    // A visible topic keeps its text for everyone, but never its author.
    let visible =
        Event::TopicAdded { topic: TopicId(3), author: Some(PersonId(2)), text: Some(text("Hiring")), hidden: false };
    golden(
        &event(5, visible.visible_to(Viewer::Public)),
        json!({"type": "event", "seq": 5, "event": {"type": "topic_added", "topic": 3, "text": "Hiring", "hidden": false}}),
    );
}

#[test]
fn votes() {
    let stored = Event::VotePlaced { person: Some(PersonId(2)), topic: Some(TopicId(3)), totals_public: false };
    golden(
        &event(6, stored.clone()),
        json!({"type": "event", "seq": 6, "event": {"type": "vote_placed", "person": 2, "topic": 3, "totals_public": false}}),
    );
    golden(
        &event(6, stored.visible_to(Viewer::Person(PersonId(4)))),
        json!({"type": "event", "seq": 6, "event": {"type": "vote_placed", "totals_public": false}}),
    );
    let public = Event::VoteRemoved { person: Some(PersonId(2)), topic: Some(TopicId(3)), totals_public: true };
    golden(
        &event(7, public.visible_to(Viewer::Public)),
        json!({"type": "event", "seq": 7, "event": {"type": "vote_removed", "topic": 3, "totals_public": true}}),
    );
    golden(
        &event(8, Event::VoteTotalsRevealed { totals: vec![TopicVotes { topic: TopicId(3), votes: 4 }] }),
        json!({"type": "event", "seq": 8, "event": {"type": "vote_totals_revealed", "totals": [{"topic": 3, "votes": 4}]}}),
    );
}

#[test]
fn timer_events() {
    golden(
        &event(9, Event::TimerStarted { topic: TopicId(3), deadline: UnixMillis(1_700_000_300_000) }),
        json!({"type": "event", "seq": 9, "event": {"type": "timer_started", "topic": 3, "deadline": 1_700_000_300_000u64}}),
    );
    golden(
        &event(10, Event::TimerExtended { timer: Timer::Running { deadline: UnixMillis(1_700_000_600_000) } }),
        json!({"type": "event", "seq": 10, "event": {
            "type": "timer_extended", "timer": {"state": "running", "deadline": 1_700_000_600_000u64}
        }}),
    );
    golden(
        &event(11, Event::TimerExtended { timer: Timer::Paused { remaining_ms: 90_000 } }),
        json!({"type": "event", "seq": 11, "event": {"type": "timer_extended", "timer": {"state": "paused", "remaining_ms": 90_000}}}),
    );
    golden(&event(12, Event::TimerStopped), json!({"type": "event", "seq": 12, "event": {"type": "timer_stopped"}}));
    golden(
        &event(13, Event::TimeboxEnded { topic: TopicId(3) }),
        json!({"type": "event", "seq": 13, "event": {"type": "timebox_ended", "topic": 3}}),
    );
}

#[test]
fn check_in_answered() {
    let stored = Event::CheckInAnswered { person: Some(PersonId(2)), answer: Answer::Down, previous: Some(Answer::Up) };
    golden(
        &event(14, stored.clone()),
        json!({"type": "event", "seq": 14, "event": {"type": "check_in_answered", "person": 2, "answer": "down", "previous": "up"}}),
    );
    golden(
        &event(14, stored.visible_to(Viewer::Public)),
        json!({"type": "event", "seq": 14, "event": {"type": "check_in_answered", "answer": "down", "previous": "up"}}),
    );
    golden(
        &event(15, Event::CheckInAnswered { person: None, answer: Answer::Sideways, previous: None }),
        json!({"type": "event", "seq": 15, "event": {"type": "check_in_answered", "answer": "sideways"}}),
    );
}

#[test]
fn removing_someone() {
    golden(
        &ClientMessage::Command { id: 9, command: Command::RemovePerson { person: PersonId(4) } },
        json!({"type": "command", "id": 9, "command": {"type": "remove_person", "person": 4}}),
    );
    let removed = Event::PersonRemoved { person: PersonId(4) };
    assert_eq!(removed.visible_to(Viewer::Public), removed, "everyone sees who left");
    golden(&event(30, removed), json!({"type": "event", "seq": 30, "event": {"type": "person_removed", "person": 4}}));
}

#[test]
fn handing_over() {
    golden(
        &ClientMessage::Command { id: 11, command: Command::HandOver { to: PersonId(2) } },
        json!({"type": "command", "id": 11, "command": {"type": "hand_over", "to": 2}}),
    );
    golden(
        &event(31, Event::FacilitatorChanged { from: PersonId(1), to: PersonId(2) }),
        json!({"type": "event", "seq": 31, "event": {"type": "facilitator_changed", "from": 1, "to": 2}}),
    );
}

#[test]
fn a_new_participant_link() {
    golden(
        &ClientMessage::Command { id: 12, command: Command::RotateParticipantLink },
        json!({"type": "command", "id": 12, "command": {"type": "rotate_participant_link"}}),
    );
    let stored = Event::ParticipantLinkRotated { key_sha256: Some("ab".repeat(32)) };
    // The hash never leaves the server: every recipient's copy only says it happened.
    golden(
        &event(32, stored.visible_to(Viewer::Public)),
        json!({"type": "event", "seq": 32, "event": {"type": "participant_link_rotated"}}),
    );
    assert_eq!(stored.visible_to(Viewer::Person(PersonId(1))), stored.visible_to(Viewer::Public));
}

#[test]
fn deleting_a_board() {
    golden(
        &ClientMessage::Command { id: 10, command: Command::DeleteBoard },
        json!({"type": "command", "id": 10, "command": {"type": "delete_board"}}),
    );
}

#[test]
fn other_events() {
    golden(
        &event(16, Event::PhaseChanged { from: Phase::Voting, to: Phase::Discussing }),
        json!({"type": "event", "seq": 16, "event": {"type": "phase_changed", "from": "voting", "to": "discussing"}}),
    );
    golden(
        &event(
            17,
            Event::TopicsMerged {
                from: TopicId(4),
                into: TopicId(2),
                text: None,
                into_votes: None,
                totals_public: false,
            },
        ),
        json!({"type": "event", "seq": 17, "event": {"type": "topics_merged", "from": 4, "into": 2, "totals_public": false}}),
    );
    golden(
        &event(
            18,
            Event::ActionItemAdded {
                item: ActionItem {
                    id: ActionItemId(1),
                    topic: TopicId(2),
                    text: text("Draft"),
                    owner: PersonId(3),
                    due: None,
                },
            },
        ),
        json!({"type": "event", "seq": 18, "event": {
            "type": "action_item_added", "item": {"id": 1, "topic": 2, "text": "Draft", "owner": 3}
        }}),
    );
}

#[test]
fn accepted_and_rejected() {
    golden(&ServerMessage::Accepted { id: 7, seq: Seq(12) }, json!({"type": "accepted", "id": 7, "seq": 12}));
    let rejection = Rejection { code: RejectCode::VoteLimit, message: "You have used all 3 of your votes.".into() };
    golden(
        &ServerMessage::rejected(8, rejection),
        json!({"type": "rejected", "id": 8, "code": "vote_limit", "message": "You have used all 3 of your votes."}),
    );
    golden(
        &ServerMessage::Rejected { id: 9, code: ErrorCode::Unavailable, message: "Try again shortly.".into() },
        json!({"type": "rejected", "id": 9, "code": "unavailable", "message": "Try again shortly."}),
    );
}

#[test]
fn errors() {
    golden(
        &ServerMessage::error(ErrorCode::BadMessage, "That was not a message."),
        json!({"type": "error", "code": "bad_message", "message": "That was not a message."}),
    );
    golden(
        &ServerMessage::error(ErrorCode::UnsupportedProtocol, "Reload the page."),
        json!({"type": "error", "code": "unsupported_protocol", "message": "Reload the page."}),
    );
}

/// Rule codes and transport codes share one flat namespace on the wire: every code has its own
/// name, and each name reads back as the same code.
#[test]
fn error_codes_are_one_flat_set() {
    let codes = [
        (ErrorCode::BadMessage, "bad_message"),
        (ErrorCode::TooLarge, "too_large"),
        (ErrorCode::UnsupportedProtocol, "unsupported_protocol"),
        (ErrorCode::Unauthorized, "unauthorized"),
        (ErrorCode::BoardNotFound, "board_not_found"),
        (ErrorCode::BoardDeleted, "board_deleted"),
        (ErrorCode::NotHello, "not_hello"),
        (ErrorCode::Unavailable, "unavailable"),
        (ErrorCode::Lagging, "lagging"),
        (ErrorCode::TooMany, "too_many"),
        (RejectCode::Forbidden.into(), "forbidden"),
        (RejectCode::WrongPhase.into(), "wrong_phase"),
        (RejectCode::NotFound.into(), "not_found"),
        (RejectCode::VoteLimit.into(), "vote_limit"),
        (RejectCode::Invalid.into(), "invalid"),
        (RejectCode::Limit.into(), "limit"),
        (RejectCode::Conflict.into(), "conflict"),
    ];
    for (code, name) in codes {
        golden(&code, json!(name));
    }
    let mut names: Vec<&str> = codes.iter().map(|(_, n)| *n).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), codes.len());
    assert!(serde_json::from_value::<ErrorCode>(json!("teapot")).is_err());
}

#[test]
fn presence_pong_reconnect() {
    golden(
        &ServerMessage::Presence { connected: vec![PersonId(1), PersonId(2)] },
        json!({"type": "presence", "connected": [1, 2]}),
    );
    golden(
        &ServerMessage::Pong { id: 3, server_time: UnixMillis(1_700_000_000_123) },
        json!({"type": "pong", "id": 3, "server_time": 1_700_000_000_123u64}),
    );
    golden(&ServerMessage::Reconnect { after_ms: 500 }, json!({"type": "reconnect", "after_ms": 500}));
}

/// A board with a facilitator, a participant, a hidden topic each and a vote, as participant 2
/// sees it.
fn small_board() -> Board {
    let mut b = Board::default();
    let now = UnixMillis(1_700_000_000_000);
    let settings = Settings { hide_topics_until_revealed: true, ..Settings::default() };
    let mut run = |actor, command| b.execute(actor, &command, now).unwrap();
    run(Actor::System, Command::CreateBoard { title: text("Mini-M"), settings });
    run(Actor::System, Command::Join { name: text("Fran"), role: Role::Facilitator });
    run(Actor::System, Command::Join { name: text("Sam"), role: Role::Participant });
    run(Actor::Person(PersonId(1)), Command::AddTopic { text: text("Budget") });
    run(Actor::Person(PersonId(2)), Command::AddTopic { text: text(SECRET_TOPIC) });
    b
}

#[test]
fn snapshot() {
    let view = small_board().view_for(Viewer::Person(PersonId(2)));
    golden(
        &ServerMessage::Snapshot { board: Box::new(view) },
        json!({"type": "snapshot", "board": {
            "seq": 5,
            "created": true,
            "title": "Mini-M",
            "settings": {
                "votes_per_person": 3,
                "max_votes_per_topic": 3,
                "timebox_ms": 300_000,
                "extension_ms": null,
                "hide_topics_until_revealed": true,
                "hide_totals_until_voting_closes": true
            },
            "phase": "gathering",
            "people": {
                "1": {"id": 1, "name": "Fran", "role": "facilitator"},
                "2": {"id": 2, "name": "Sam", "role": "participant"}
            },
            "topics": {
                "1": {"id": 1, "text": null, "author": null, "hidden": true, "votes": 0, "status": "queued", "takeaway": null},
                "2": {"id": 2, "text": SECRET_TOPIC, "author": 2, "hidden": true, "votes": 0, "status": "queued", "takeaway": null}
            },
            "ballots": {},
            "totals_revealed": false,
            "timer": {"state": "idle"},
            "check_in": null,
            "action_items": {},
            "last_person": 2,
            "last_topic": 2,
            "last_action_item": 0
        }}),
    );
}

/// Regression: a snapshot whose board had people or topics could be written but not read back
/// ("invalid type: string \"1\", expected u32"): serde buffers the fields of an internally tagged
/// message, and the buffer could not turn the map keys back into ids.
#[test]
fn a_snapshot_with_people_topics_ballots_and_a_check_in_reads_back() {
    let mut b = small_board();
    let now = UnixMillis(1_700_000_000_000);
    let f = Actor::Person(PersonId(1));
    let mut run = |actor, command, at| b.execute(actor, &command, at).unwrap();
    run(f, Command::ChangePhase { to: Phase::Voting }, now);
    run(Actor::Person(PersonId(2)), Command::PlaceVote { topic: TopicId(1) }, now);
    run(f, Command::ChangePhase { to: Phase::Discussing }, now);
    run(f, Command::StartTimer, now);
    run(Actor::System, Command::EndTimebox, now.plus_ms(300_000));
    run(Actor::Person(PersonId(2)), Command::AnswerCheckIn { answer: Answer::Up }, now.plus_ms(300_000));
    run(
        f,
        Command::AddActionItem { topic: TopicId(1), text: text("Draft"), owner: PersonId(2), due: None },
        now.plus_ms(300_000),
    );
    for board in [b.clone(), b.view_for(Viewer::Person(PersonId(2))), b.view_for(Viewer::Public)] {
        let message = ServerMessage::Snapshot { board: Box::new(board) };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), message);
    }
}

#[test]
fn server_messages_tolerate_added_fields() {
    // Within a version, fields may be added when old readers can ignore them.
    let m: ServerMessage =
        serde_json::from_value(json!({"type": "reconnect", "after_ms": 500, "reason": "deploy"})).unwrap();
    assert_eq!(m, ServerMessage::Reconnect { after_ms: 500 });
    let m: ServerMessage = serde_json::from_value(json!({
        "type": "event", "seq": 3, "event": {"type": "timer_stopped", "by": 1}
    }))
    .unwrap();
    assert_eq!(m, event(3, Event::TimerStopped));
    assert!(serde_json::from_value::<ServerMessage>(json!({"type": "gossip"})).is_err());
}

// ----- What must never reach a log. -----

#[test]
fn debug_hides_tokens_and_what_people_wrote() {
    for since in [None, Some(Seq(4))] {
        let hello = ClientMessage::Hello { protocol: 1, token: SessionToken(SECRET_TOKEN.into()), since };
        let debug = format!("{hello:?} {hello:#?}");
        assert!(!debug.contains(SECRET_TOKEN) && !debug.contains("s1gnature"), "{debug}");
    }

    let added = Event::TopicAdded {
        topic: TopicId(3),
        author: Some(PersonId(2)),
        text: Some(text(SECRET_TOPIC)),
        hidden: false,
    };
    let edited = Event::TopicEdited {
        topic: TopicId(3),
        author: Some(PersonId(2)),
        text: Some(text(SECRET_TOPIC)),
        hidden: true,
    };
    let command = ClientMessage::Command { id: 1, command: Command::AddTopic { text: text(SECRET_TOPIC) } };
    let snapshot = ServerMessage::Snapshot { board: Box::new(small_board()) };
    let debugs = [
        format!("{added:?}"),
        format!("{added:#?}"),
        format!("{edited:?}"),
        format!("{:?}", event(1, added.clone())),
        format!("{command:?}"),
        format!("{snapshot:?}"),
        format!("{:?}", small_board()),
    ];
    for debug in debugs {
        assert!(!debug.contains(SECRET_TOPIC) && !debug.contains("credit"), "{debug}");
    }
    // The text is still there for the wire.
    assert!(serde_json::to_string(&added).unwrap().contains(SECRET_TOPIC));
}

#[test]
fn every_tagged_object_is_written_with_its_type_first() {
    // The browser reads server messages and events as they stream by, and needs "type" first.
    let messages = [
        event(5, Event::TopicAdded { topic: TopicId(1), author: None, text: Some(text(SECRET_TOPIC)), hidden: false }),
        event(6, Event::TimerStopped),
        ServerMessage::Snapshot { board: Box::default() },
        ServerMessage::Pong { id: 3, server_time: UnixMillis(9) },
    ];
    for message in messages {
        let wire = serde_json::to_string(&message).unwrap();
        assert!(wire.starts_with(r#"{"type":""#), "{wire}");
        if let Some(at) = wire.find(r#""event":{"#) {
            assert!(wire[at..].starts_with(r#""event":{"type":""#), "{wire}");
        }
    }
}

#[test]
fn a_tagged_object_needs_a_type_and_may_carry_fields_added_later() {
    let no_type = serde_json::from_str::<ServerMessage>(r#"{"after_ms": 5}"#).unwrap_err().to_string();
    assert!(no_type.contains("missing field `type`"), "{no_type}");
    let unknown = serde_json::from_str::<ServerMessage>(r#"{"type": "gossip"}"#).unwrap_err().to_string();
    assert!(unknown.contains("unknown variant `gossip`"), "{unknown}");
    // Natively, "type" may come anywhere (the server's own tests write JSON by hand).
    let late: ServerMessage = serde_json::from_str(r#"{"after_ms": 5, "type": "reconnect"}"#).unwrap();
    assert_eq!(late, ServerMessage::Reconnect { after_ms: 5 });
    let added: Event = serde_json::from_str(r#"{"type": "board_deleted", "by": "someone"}"#).unwrap();
    assert_eq!(added, Event::BoardDeleted);
}
