//! The rules of the meeting, one by one: given a board, when someone asks for something, then
//! these events are recorded (or the request is refused, with this code and a sentence a person
//! can act on). Every branch of `decide` has a test here; the permission table is checked cell
//! by cell at the end.
//!
//! The cast: Fran facilitates; Ana, Ben and Cal take part. In the typical meeting each of them
//! brings one topic (T1 is Ana's, T2 Ben's, T3 Cal's); in the vote Ben's topic gets three votes,
//! Cal's one and Ana's none, so T2 is discussed first, then T3, then T1.

use Actor::{Projector, System};
use RejectCode::{Conflict, Forbidden, Invalid, Limit, NotFound, VoteLimit, WrongPhase};
use minim_shared::event::{RevealedTopic, TopicVotes};
use minim_shared::settings::{
    MAX_ACTION_ITEM_CHARS, MAX_ACTION_ITEMS, MAX_NAME_CHARS, MAX_PEOPLE, MAX_TAKEAWAY_CHARS, MAX_TIMEBOX_MS,
    MAX_TITLE_CHARS, MAX_TOPIC_CHARS, MAX_TOPICS, MAX_TOPICS_PER_PERSON, MAX_VOTES_PER_PERSON, MIN_TIMEBOX_MS,
};
use minim_shared::{
    ActionItem, ActionItemId, Actor, Answer, Board, Command, Event, Permission, PersonId, Phase, Private, RejectCode,
    Rejection, Role, Settings, Timer, TopicId, TopicStatus, UnixMillis, decide,
};

// ----- The cast, the topics and the clock -----

/// The facilitator.
const FRAN: PersonId = PersonId(1);
const ANA: PersonId = PersonId(2);
const BEN: PersonId = PersonId(3);
const CAL: PersonId = PersonId(4);
/// Someone with a person id this board never handed out.
const STRANGER: PersonId = PersonId(99);

const T1: TopicId = TopicId(1);
const T2: TopicId = TopicId(2);
const T3: TopicId = TopicId(3);
const ANAS_TOPIC: &str = "Saying no to my own boss";
const BENS_TOPIC: &str = "Hiring my first direct report";
const CALS_TOPIC: &str = "Running one-to-ones remotely";

const NOW: UnixMillis = UnixMillis(1_700_000_000_000);
/// The default timebox: five minutes.
const TIMEBOX: u64 = 5 * 60 * 1000;
/// When a timebox started at `NOW` runs out.
const DEADLINE: UnixMillis = UnixMillis(NOW.0 + TIMEBOX);

/// `ms` milliseconds after `NOW`.
fn at(ms: u64) -> UnixMillis {
    UnixMillis(NOW.0 + ms)
}

fn t(s: &str) -> Private {
    Private::new(s)
}

/// Anyone who can be named as the actor: a person id or an `Actor`.
trait Who {
    fn actor(self) -> Actor;
}

impl Who for PersonId {
    fn actor(self) -> Actor {
        Actor::Person(self)
    }
}

impl Who for Actor {
    fn actor(self) -> Actor {
        self
    }
}

// ----- The harness: given / when / then -----

/// A board in some state, reached by folding events or by running real commands.
#[derive(Clone, Debug)]
struct Given {
    board: Board,
}

/// A board that has not been created yet.
fn nothing() -> Given {
    Given { board: Board::default() }
}

/// The board these events make.
fn given(events: &[Event]) -> Given {
    nothing().and(events)
}

impl Given {
    /// Folds more events in.
    fn and(mut self, events: &[Event]) -> Given {
        for e in self.board.sequence(events.to_vec()) {
            self.board.apply(&e);
        }
        self
    }

    /// Runs a real command at `NOW`; the setup must be accepted.
    #[track_caller]
    fn did(self, who: impl Who, command: Command) -> Given {
        self.did_at(who, command, NOW)
    }

    #[track_caller]
    fn did_at(mut self, who: impl Who, command: Command, now: UnixMillis) -> Given {
        let actor = who.actor();
        if let Err(r) = self.board.execute(actor, &command, now) {
            panic!("setup step {} by {actor:?} was refused: {r}", command.kind());
        }
        self
    }

    fn when(self, who: impl Who, command: Command) -> Outcome {
        self.when_at(who, command, NOW)
    }

    fn when_at(self, who: impl Who, command: Command, now: UnixMillis) -> Outcome {
        let result = decide(&self.board, who.actor(), &command, now);
        Outcome { board: self.board, command, result }
    }

    // Builders for the typical steps of a meeting.

    #[track_caller]
    fn topic(self, author: PersonId, text: &str) -> Given {
        self.did(author, Command::AddTopic { text: t(text) })
    }

    #[track_caller]
    fn to(self, phase: Phase) -> Given {
        self.did(FRAN, Command::ChangePhase { to: phase })
    }

    #[track_caller]
    fn votes(mut self, person: PersonId, topic: TopicId, n: u32) -> Given {
        for _ in 0..n {
            self = self.did(person, Command::PlaceVote { topic });
        }
        self
    }
}

/// What `decide` said, on the board it said it about.
struct Outcome {
    board: Board,
    command: Command,
    result: Result<Vec<Event>, Rejection>,
}

impl Outcome {
    /// The command is accepted with exactly these events; returns the board after them.
    #[track_caller]
    fn then(self, expected: &[Event]) -> Board {
        let kind = self.command.kind();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "{kind} was accepted with other events");
                Given { board: self.board }.and(&events).board
            }
            Err(r) => panic!("{kind} should have been accepted with {expected:?}, but was refused: {r}"),
        }
    }

    /// The command is accepted, whatever its events; returns the board after them.
    #[track_caller]
    fn then_accepted(self) -> Board {
        match self.result {
            Ok(events) => Given { board: self.board }.and(&events).board,
            Err(r) => panic!("{} should have been accepted, but was refused: {r}", self.command.kind()),
        }
    }

    /// The command is refused with this code and a human sentence that quotes nobody.
    #[track_caller]
    fn then_reject(self, code: RejectCode) -> Rejection {
        let kind = self.command.kind();
        match self.result {
            Ok(events) => panic!("{kind} should have been refused with {code:?}, but was accepted with {events:?}"),
            Err(r) => {
                assert_eq!(r.code, code, "{kind} was refused for another reason: {r}");
                assert_human_sentence(&r, &words_people_wrote(&self.board, &self.command));
                r
            }
        }
    }
}

/// Everything people wrote that a rejection could be tempted to quote (short words aside).
fn words_people_wrote(board: &Board, command: &Command) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for topic in board.topics.values() {
        words.extend(topic.text.iter().chain(&topic.takeaway).map(|p| p.as_str().to_owned()));
    }
    words.extend(board.action_items.values().map(|a| a.text.as_str().to_owned()));
    words.push(board.title.as_str().to_owned());
    match command {
        Command::AddTopic { text }
        | Command::EditTopic { text, .. }
        | Command::SetTakeaway { text, .. }
        | Command::AddActionItem { text, .. }
        | Command::MergeTopics { text: Some(text), .. }
        | Command::CreateBoard { title: text, .. } => words.push(text.as_str().to_owned()),
        _ => {}
    }
    words.retain(|w| w.trim().chars().count() >= 6);
    words
}

#[track_caller]
fn assert_human_sentence(r: &Rejection, said: &[String]) {
    let m = r.message.as_str();
    assert!(m.chars().next().is_some_and(char::is_uppercase), "not a sentence: {m:?}");
    assert!(m.ends_with('.'), "not a sentence: {m:?}");
    for machine in ["{", "}", "TopicId", "PersonId", "Some(", "None", "redacted"] {
        assert!(!m.contains(machine), "the message reads like a program, not a person: {m:?}");
    }
    for words in said {
        assert!(!m.contains(words.trim()), "the message quotes what someone wrote: {m:?}");
    }
}

// ----- Typical boards -----

fn join(name: &str, role: Role) -> Command {
    Command::Join { name: t(name), role }
}

fn with(change: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings::default();
    change(&mut s);
    s
}

fn hidden_topics() -> Settings {
    with(|s| s.hide_topics_until_revealed = true)
}

fn public_totals() -> Settings {
    with(|s| s.hide_totals_until_voting_closes = false)
}

/// Created, with Fran facilitating and Ana, Ben and Cal taking part; no topics yet.
fn meeting_with(settings: Settings) -> Given {
    nothing()
        .did(System, Command::CreateBoard { title: t("Mini-M, March"), settings })
        .did(System, join("Fran", Role::Facilitator))
        .did(System, join("Ana", Role::Participant))
        .did(System, join("Ben", Role::Participant))
        .did(System, join("Cal", Role::Participant))
}

fn meeting() -> Given {
    meeting_with(Settings::default())
}

/// Gathering, with one topic from each participant.
fn gathering_with(settings: Settings) -> Given {
    meeting_with(settings).topic(ANA, ANAS_TOPIC).topic(BEN, BENS_TOPIC).topic(CAL, CALS_TOPIC)
}

fn gathering() -> Given {
    gathering_with(Settings::default())
}

fn voting_with(settings: Settings) -> Given {
    gathering_with(settings).to(Phase::Voting)
}

fn voting() -> Given {
    voting_with(Settings::default())
}

/// Ben's topic (three votes) under discussion; Cal's (one vote), then Ana's (none) wait.
fn discussing_with(settings: Settings) -> Given {
    voting_with(settings).votes(ANA, T2, 2).votes(BEN, T2, 1).votes(CAL, T3, 1).to(Phase::Discussing)
}

fn discussing() -> Given {
    discussing_with(Settings::default())
}

/// Discussing Ben's topic, with the timer started at `NOW` (it runs out at `DEADLINE`).
fn timing() -> Given {
    discussing().did(FRAN, Command::StartTimer)
}

/// Timing, paused one minute in (four minutes left).
fn paused() -> Given {
    timing().did_at(FRAN, Command::PauseTimer, at(60_000))
}

/// The timebox on Ben's topic ran out; the check-in is open.
fn checking_in() -> Given {
    timing().did_at(System, Command::EndTimebox, DEADLINE)
}

/// Ben's topic was discussed on the way into wrap-up; Cal's and Ana's were not reached.
fn wrapping_up() -> Given {
    discussing().to(Phase::WrapUp)
}

fn closed() -> Given {
    wrapping_up().to(Phase::Closed)
}

// ----- Event shorthands -----

fn phase_changed(from: Phase, to: Phase) -> Event {
    Event::PhaseChanged { from, to }
}

fn selected(topic: TopicId) -> Event {
    Event::TopicSelected { topic, previous: None }
}

fn discussed(topic: TopicId) -> Event {
    Event::TopicDiscussed { topic }
}

fn revealed(topics: &[(TopicId, &str)]) -> Event {
    Event::TopicsRevealed {
        topics: topics.iter().map(|(topic, text)| RevealedTopic { topic: *topic, text: t(text) }).collect(),
    }
}

fn joined(person: PersonId, name: &str, role: Role) -> Event {
    Event::PersonJoined { person, name: t(name), role }
}

fn added(topic: TopicId, author: PersonId, text: &str) -> Event {
    Event::TopicAdded { topic, author: Some(author), text: Some(t(text)), hidden: false }
}

fn vote_placed(person: PersonId, topic: TopicId, totals_public: bool) -> Event {
    Event::VotePlaced { person: Some(person), topic: Some(topic), totals_public }
}

fn action_item(id: u32, topic: TopicId, text: &str, owner: PersonId, due: Option<&str>) -> ActionItem {
    ActionItem { id: ActionItemId(id), topic, text: t(text), owner, due: due.map(str::to_owned) }
}

fn add_action_item(topic: TopicId, text: &str, owner: PersonId, due: Option<&str>) -> Command {
    Command::AddActionItem { topic, text: t(text), owner, due: due.map(str::to_owned) }
}

/// Bad settings, each with what is wrong with it.
fn unusable_settings() -> Vec<(&'static str, Settings)> {
    vec![
        ("no votes", with(|s| s.votes_per_person = 0)),
        ("too many votes", with(|s| s.votes_per_person = MAX_VOTES_PER_PERSON + 1)),
        ("no votes per topic", with(|s| s.max_votes_per_topic = 0)),
        ("more per topic than in all", with(|s| s.max_votes_per_topic = s.votes_per_person + 1)),
        ("timebox too short", with(|s| s.timebox_ms = MIN_TIMEBOX_MS - 1)),
        ("timebox too long", with(|s| s.timebox_ms = MAX_TIMEBOX_MS + 1)),
        ("extension too short", with(|s| s.extension_ms = Some(MIN_TIMEBOX_MS - 1))),
        ("extension too long", with(|s| s.extension_ms = Some(MAX_TIMEBOX_MS + 1))),
    ]
}

/// Settings right at the edges of what is allowed.
fn extreme_settings() -> Vec<Settings> {
    vec![
        with(|s| {
            s.votes_per_person = MAX_VOTES_PER_PERSON;
            s.max_votes_per_topic = MAX_VOTES_PER_PERSON;
            s.timebox_ms = MAX_TIMEBOX_MS;
            s.extension_ms = Some(MAX_TIMEBOX_MS);
        }),
        with(|s| {
            s.votes_per_person = 1;
            s.max_votes_per_topic = 1;
            s.timebox_ms = MIN_TIMEBOX_MS;
            s.extension_ms = Some(MIN_TIMEBOX_MS);
        }),
    ]
}

#[test]
fn the_facilitator_hands_the_role_over_and_becomes_a_participant() {
    let board = gathering()
        .when(FRAN, Command::HandOver { to: ANA })
        .then(&[Event::FacilitatorChanged { from: FRAN, to: ANA }]);
    assert_eq!(board.facilitator(), Some(ANA));
    assert_eq!(board.people[&FRAN].role, Role::Participant);
    let handed = || gathering().did(FRAN, Command::HandOver { to: ANA });
    handed()
        .when(ANA, Command::ChangePhase { to: Phase::Voting })
        .then(&[Event::PhaseChanged { from: Phase::Gathering, to: Phase::Voting }]);
    let r = handed().when(FRAN, Command::ChangePhase { to: Phase::Voting }).then_reject(Forbidden);
    assert_eq!(r.message, "Only the facilitator can do that.");
}

#[test]
fn the_role_goes_only_to_someone_else_on_the_board() {
    let r = gathering().when(FRAN, Command::HandOver { to: FRAN }).then_reject(Invalid);
    assert_eq!(r.message, "You are the facilitator already.");
    gathering().when(FRAN, Command::HandOver { to: STRANGER }).then_reject(NotFound);
}

#[test]
fn the_facilitator_deletes_the_board_at_any_time_and_nothing_of_it_remains() {
    for given in [gathering(), discussing(), wrapping_up(), wrapping_up().to(Phase::Closed)] {
        let board = given.when(FRAN, Command::DeleteBoard).then(&[Event::BoardDeleted]);
        assert_eq!(board, Board { seq: board.seq, ..Board::default() }, "a deleted board holds nothing");
    }
}

#[test]
fn the_facilitator_takes_someone_off_the_board_and_what_they_wrote_and_voted_stays() {
    let before = voting().votes(CAL, T2, 2).board;
    let board = Given { board: before.clone() }
        .when(FRAN, Command::RemovePerson { person: CAL })
        .then(&[Event::PersonRemoved { person: CAL }]);
    assert!(!board.people.contains_key(&CAL));
    assert_eq!(board.topics, before.topics, "their topic and their votes stay");
    assert_eq!(board.ballots, before.ballots);
}

#[test]
fn someone_taken_off_the_board_can_do_nothing_more_on_it() {
    let removed = || voting().did(FRAN, Command::RemovePerson { person: CAL });
    let r = removed().when(CAL, Command::PlaceVote { topic: T2 }).then_reject(Forbidden);
    assert_eq!(r.message, "You are not on this board.");
    removed().when(CAL, Command::AddTopic { text: t("Back again") }).then_reject(Forbidden);
    // Joining again through the link makes a new person, not the old one.
    removed().when(System, join("Cal", Role::Participant)).then(&[Event::PersonJoined {
        person: PersonId(5),
        name: t("Cal"),
        role: Role::Participant,
    }]);
}

#[test]
fn the_facilitator_cannot_be_removed_and_only_people_on_the_board_can() {
    let r = gathering().when(FRAN, Command::RemovePerson { person: FRAN }).then_reject(Invalid);
    assert_eq!(r.message, "The facilitator cannot be removed.");
    let r = gathering().when(FRAN, Command::RemovePerson { person: STRANGER }).then_reject(NotFound);
    assert_eq!(r.message, "That person is not on this board.");
    let twice = gathering().did(FRAN, Command::RemovePerson { person: CAL });
    twice.when(FRAN, Command::RemovePerson { person: CAL }).then_reject(NotFound);
}

// =====================================================================================
// Creating a board
// =====================================================================================

#[test]
fn the_server_creates_a_board_with_a_cleaned_title_and_its_settings() {
    let board = nothing()
        .when(System, Command::CreateBoard { title: t("  Mini-M \t March\u{202e} "), settings: public_totals() })
        .then(&[Event::BoardCreated { title: t("Mini-M March"), settings: public_totals() }]);
    assert!(board.created);
    assert_eq!(board.phase, Phase::Gathering);
}

#[test]
fn a_board_needs_a_title_of_sensible_length() {
    let create = |title: String| Command::CreateBoard { title: t(&title), settings: Settings::default() };
    nothing().when(System, create(" \t ".into())).then_reject(Invalid);
    nothing().when(System, create("x".repeat(MAX_TITLE_CHARS + 1))).then_reject(Invalid);
    nothing().when(System, create("x".repeat(MAX_TITLE_CHARS))).then_accepted();
}

#[test]
fn a_board_cannot_be_created_with_unusable_settings() {
    for (what, settings) in unusable_settings() {
        let r = nothing().when(System, Command::CreateBoard { title: t("Mini-M"), settings }).then_reject(Invalid);
        assert!(r.message.contains("between"), "{what}: the message should say what is allowed: {}", r.message);
    }
    for settings in extreme_settings() {
        nothing().when(System, Command::CreateBoard { title: t("Mini-M"), settings }).then_accepted();
    }
}

#[test]
fn a_board_that_was_never_created_does_not_exist_for_anyone() {
    let create = Command::CreateBoard { title: t("Mini-M"), settings: Settings::default() };
    for who in [Actor::Person(FRAN), Projector] {
        nothing().when(who, create.clone()).then_reject(NotFound);
    }
    nothing().when(System, join("Fran", Role::Facilitator)).then_reject(NotFound);
    nothing().when(System, Command::EndTimebox).then_reject(NotFound);
    nothing().when(FRAN, Command::AddTopic { text: t(ANAS_TOPIC) }).then_reject(NotFound);
    nothing().when(FRAN, Command::ChangePhase { to: Phase::Voting }).then_reject(NotFound);
}

#[test]
fn a_board_is_created_only_once() {
    let r = meeting()
        .when(System, Command::CreateBoard { title: t("Again"), settings: Settings::default() })
        .then_reject(Conflict);
    assert_eq!(r.message, "This board already exists.");
}

// =====================================================================================
// Joining, and the facilitator link
// =====================================================================================

#[test]
fn the_first_to_open_the_facilitator_link_becomes_the_facilitator() {
    let board = given(&[Event::BoardCreated { title: t("Mini-M"), settings: Settings::default() }])
        .when(System, join(" Fran ", Role::Facilitator))
        .then(&[joined(FRAN, "Fran", Role::Facilitator)]);
    assert_eq!(board.facilitator(), Some(FRAN));
}

#[test]
fn participants_join_with_the_next_id_and_a_cleaned_name() {
    let board = meeting().when(System, join("  Dee\u{2066}  Okafor\u{0007} ", Role::Participant)).then(&[joined(
        PersonId(5),
        "Dee Okafor",
        Role::Participant,
    )]);
    assert_eq!(board.people.len(), 5);
}

#[test]
fn two_people_with_the_same_name_are_two_people() {
    meeting().when(System, join("Ana", Role::Participant)).then(&[joined(PersonId(5), "Ana", Role::Participant)]);
}

#[test]
fn the_facilitator_link_opened_again_is_the_same_facilitator() {
    meeting().when(System, join("Fran", Role::Facilitator)).then(&[]);
    meeting().when(System, join("  Fran ", Role::Facilitator)).then(&[]);
}

#[test]
fn the_facilitator_link_opened_with_another_name_renames_the_facilitator() {
    let board = meeting()
        .when(System, join("Francesca", Role::Facilitator))
        .then(&[Event::PersonRenamed { person: FRAN, name: t("Francesca") }]);
    assert_eq!(board.people.len(), 4);
    assert_eq!(board.people[&FRAN].name, t("Francesca"));
    assert_eq!(board.facilitator(), Some(FRAN));
}

#[test]
fn a_name_must_be_given_and_not_too_long() {
    meeting().when(System, join(" \u{202e} ", Role::Participant)).then_reject(Invalid);
    meeting().when(System, join(&"x".repeat(MAX_NAME_CHARS + 1), Role::Participant)).then_reject(Invalid);
    meeting().when(System, join(&"x".repeat(MAX_NAME_CHARS + 1), Role::Facilitator)).then_reject(Invalid);
    meeting().when(System, join(&"é".repeat(MAX_NAME_CHARS), Role::Participant)).then_accepted();
}

#[test]
fn a_full_board_admits_nobody_new_but_still_its_facilitator() {
    let mut events = vec![
        Event::BoardCreated { title: t("All hands"), settings: Settings::default() },
        joined(FRAN, "Fran", Role::Facilitator),
    ];
    events.extend((2..=MAX_PEOPLE as u32).map(|id| joined(PersonId(id), "Someone", Role::Participant)));
    let full = given(&events);
    assert_eq!(full.board.people.len(), MAX_PEOPLE);

    full.clone().when(System, join("One more", Role::Participant)).then_reject(Limit);
    full.clone().when(System, join("Fran", Role::Facilitator)).then(&[]);
    full.when(System, join("Francesca", Role::Facilitator))
        .then(&[Event::PersonRenamed { person: FRAN, name: t("Francesca") }]);
}

// =====================================================================================
// Gathering topics
// =====================================================================================

#[test]
fn anyone_on_the_board_adds_a_topic_in_cleaned_words() {
    let board = meeting()
        .when(ANA, Command::AddTopic { text: t("  Saying  no\tto my\u{202e} own boss\n") })
        .then(&[added(T1, ANA, ANAS_TOPIC)]);
    assert_eq!(board.topics[&T1].status, TopicStatus::Queued);
    assert_eq!(board.topics[&T1].votes, 0);

    meeting().when(FRAN, Command::AddTopic { text: t("My own topic") }).then(&[added(T1, FRAN, "My own topic")]);
}

#[test]
fn topics_are_hidden_from_the_others_when_the_board_says_so() {
    meeting_with(hidden_topics()).when(BEN, Command::AddTopic { text: t(BENS_TOPIC) }).then(&[Event::TopicAdded {
        topic: T1,
        author: Some(BEN),
        text: Some(t(BENS_TOPIC)),
        hidden: true,
    }]);
}

#[test]
fn topic_ids_are_never_reused() {
    gathering()
        .did(CAL, Command::RemoveTopic { topic: T3 })
        .when(ANA, Command::AddTopic { text: t("Another one") })
        .then(&[added(TopicId(4), ANA, "Another one")]);
}

#[test]
fn topics_are_added_only_while_gathering() {
    let r = voting().when(ANA, Command::AddTopic { text: t("Late idea") }).then_reject(WrongPhase);
    assert_eq!(r.message, "Topics can be added only while gathering topics; the meeting is in voting.");
    discussing().when(ANA, Command::AddTopic { text: t("Late idea") }).then_reject(WrongPhase);
}

#[test]
fn a_topic_must_be_said_in_at_most_280_characters() {
    meeting().when(ANA, Command::AddTopic { text: t("  \t\u{2067} ") }).then_reject(Invalid);
    let r = meeting().when(ANA, Command::AddTopic { text: t(&"x".repeat(MAX_TOPIC_CHARS + 1)) }).then_reject(Invalid);
    assert_eq!(r.message, "The topic is longer than 280 characters.");
    meeting().when(ANA, Command::AddTopic { text: t(&"ö".repeat(MAX_TOPIC_CHARS)) }).then_accepted();
}

#[test]
fn one_person_brings_at_most_ten_topics() {
    let mut g = meeting();
    for i in 0..MAX_TOPICS_PER_PERSON {
        g = g.topic(ANA, &format!("Topic number {i}"));
    }
    g.clone().when(ANA, Command::AddTopic { text: t("One too many") }).then_reject(Limit);
    g.clone().when(BEN, Command::AddTopic { text: t("Mine") }).then_accepted();
    // Withdrawing one makes room again.
    g.did(ANA, Command::RemoveTopic { topic: T1 })
        .when(ANA, Command::AddTopic { text: t("Second thoughts") })
        .then_accepted();
}

#[test]
fn a_board_holds_at_most_two_hundred_topics() {
    let topics: Vec<Event> =
        (1..=MAX_TOPICS as u32).map(|id| added(TopicId(id), PersonId(100 + id / 10), &format!("Topic {id}"))).collect();
    let r = meeting().and(&topics).when(ANA, Command::AddTopic { text: t("Topic 201") }).then_reject(Limit);
    assert_eq!(r.message, "The board holds at most 200 topics.");
}

// =====================================================================================
// Editing and withdrawing topics
// =====================================================================================

#[test]
fn authors_reword_their_topics_while_gathering() {
    gathering().when(BEN, Command::EditTopic { topic: T2, text: t("  Hiring  my first\treport ") }).then(&[
        Event::TopicEdited { topic: T2, author: Some(BEN), text: Some(t("Hiring my first report")), hidden: false },
    ]);
}

#[test]
fn authors_reword_their_topics_while_voting() {
    voting().when(BEN, Command::EditTopic { topic: T2, text: t("Hiring") }).then(&[Event::TopicEdited {
        topic: T2,
        author: Some(BEN),
        text: Some(t("Hiring")),
        hidden: false,
    }]);
}

#[test]
fn authors_keep_their_hidden_topics_hidden_when_rewording_them() {
    gathering_with(hidden_topics())
        .when(BEN, Command::EditTopic { topic: T2, text: t("Hiring") })
        .then(&[Event::TopicEdited { topic: T2, author: Some(BEN), text: Some(t("Hiring")), hidden: true }]);
}

#[test]
fn authors_leave_their_topics_alone_once_the_discussion_starts() {
    discussing().when(CAL, Command::EditTopic { topic: T3, text: t("Changed") }).then_reject(WrongPhase);
    discussing().when(CAL, Command::RemoveTopic { topic: T3 }).then_reject(WrongPhase);
    wrapping_up().when(ANA, Command::RemoveTopic { topic: T1 }).then_reject(WrongPhase);
}

#[test]
fn authors_leave_their_topics_alone_once_discussed_even_if_voting_reopens() {
    // Ben's topic was discussed; Cal's is under discussion when voting reopens.
    let reopened = discussing().did(FRAN, Command::MoveOn).to(Phase::Voting);
    assert_eq!(reopened.board.topics[&T2].status, TopicStatus::Discussed);
    assert_eq!(reopened.board.topics[&T3].status, TopicStatus::Current);
    for (author, topic) in [(BEN, T2), (CAL, T3)] {
        let r = reopened.clone().when(author, Command::EditTopic { topic, text: t("Changed") }).then_reject(Conflict);
        assert_eq!(r.message, "That topic is no longer waiting to be discussed.");
        reopened.clone().when(author, Command::RemoveTopic { topic }).then_reject(Conflict);
    }
    // Ana's topic still waits, so she may still reword it.
    reopened.when(ANA, Command::EditTopic { topic: T1, text: t("Changed") }).then_accepted();
}

#[test]
fn nobody_changes_someone_elses_topic_except_the_facilitator() {
    let r = gathering().when(ANA, Command::EditTopic { topic: T2, text: t("Mine now") }).then_reject(Forbidden);
    assert_eq!(r.message, "You can only change your own topics.");
    gathering().when(CAL, Command::RemoveTopic { topic: T2 }).then_reject(Forbidden);
}

#[test]
fn the_facilitator_rewords_any_visible_topic_in_any_phase() {
    let edit = |topic| Command::EditTopic { topic, text: t("Hiring well") };
    let edited =
        |topic, author| Event::TopicEdited { topic, author: Some(author), text: Some(t("Hiring well")), hidden: false };
    gathering().when(FRAN, edit(T2)).then(&[edited(T2, BEN)]);
    voting().when(FRAN, edit(T2)).then(&[edited(T2, BEN)]);
    discussing().when(FRAN, edit(T2)).then(&[edited(T2, BEN)]);
    discussing().when(FRAN, edit(T1)).then(&[edited(T1, ANA)]);
    wrapping_up().when(FRAN, edit(T2)).then(&[edited(T2, BEN)]);
}

#[test]
fn the_facilitator_cannot_touch_a_topic_still_hidden_from_them() {
    let g = gathering_with(hidden_topics());
    let r = g.clone().when(FRAN, Command::EditTopic { topic: T2, text: t("Peek") }).then_reject(Conflict);
    assert_eq!(r.message, "That topic is hidden until you reveal topics.");
    g.clone().when(FRAN, Command::RemoveTopic { topic: T2 }).then_reject(Conflict);
    // Their own hidden topic is theirs to change.
    g.topic(FRAN, "Facilitating well")
        .when(FRAN, Command::EditTopic { topic: TopicId(4), text: t("Facilitating better") })
        .then(&[Event::TopicEdited {
            topic: TopicId(4),
            author: Some(FRAN),
            text: Some(t("Facilitating better")),
            hidden: true,
        }]);
}

#[test]
fn an_edit_needs_words_and_an_existing_topic() {
    gathering().when(BEN, Command::EditTopic { topic: T2, text: t(" \n ") }).then_reject(Invalid);
    gathering()
        .when(BEN, Command::EditTopic { topic: T2, text: t(&"x".repeat(MAX_TOPIC_CHARS + 1)) })
        .then_reject(Invalid);
    gathering().when(BEN, Command::EditTopic { topic: TopicId(9), text: t("Hiring") }).then_reject(NotFound);
    gathering().when(FRAN, Command::RemoveTopic { topic: TopicId(9) }).then_reject(NotFound);
}

#[test]
fn authors_withdraw_their_topics_while_gathering() {
    let board = gathering().when(BEN, Command::RemoveTopic { topic: T2 }).then(&[Event::TopicRemoved { topic: T2 }]);
    assert!(!board.topics.contains_key(&T2));
}

#[test]
fn a_withdrawn_topic_gives_its_votes_back_to_their_owners() {
    let g = voting().votes(ANA, T2, 2).votes(CAL, T2, 1).votes(CAL, T1, 1);
    assert_eq!(g.board.votes_left(ANA), 1);
    let board = g.when(BEN, Command::RemoveTopic { topic: T2 }).then(&[Event::TopicRemoved { topic: T2 }]);
    assert_eq!(board.votes_left(ANA), 3);
    assert_eq!(board.votes_left(CAL), 2);
    assert!(!board.ballots.contains_key(&ANA), "an empty ballot is dropped");
}

#[test]
fn removing_the_topic_under_discussion_moves_on_to_the_next() {
    let board = timing()
        .when(FRAN, Command::RemoveTopic { topic: T2 })
        .then(&[Event::TopicRemoved { topic: T2 }, selected(T3)]);
    assert_eq!(board.current_topic(), Some(T3));
    assert_eq!(board.timer, Timer::Idle);
}

#[test]
fn removing_the_last_topic_under_discussion_leaves_nothing_selected() {
    let g = discussing().did(FRAN, Command::MoveOn).did(FRAN, Command::MoveOn);
    assert_eq!(g.board.current_topic(), Some(T1));
    let board = g.when(FRAN, Command::RemoveTopic { topic: T1 }).then(&[Event::TopicRemoved { topic: T1 }]);
    assert_eq!(board.current_topic(), None);
}

#[test]
fn removing_the_current_topic_while_voting_reopened_selects_the_next_on_return() {
    let board = discussing()
        .to(Phase::Voting)
        .when(FRAN, Command::RemoveTopic { topic: T2 })
        .then(&[Event::TopicRemoved { topic: T2 }]);
    assert_eq!(board.current_topic(), None);
    Given { board }
        .when(FRAN, Command::ChangePhase { to: Phase::Discussing })
        .then(&[phase_changed(Phase::Voting, Phase::Discussing), selected(T3)]);
}

#[test]
fn removing_a_discussed_topic_takes_its_takeaway_and_action_items_with_it() {
    let g = discussing()
        .did(FRAN, Command::SetTakeaway { topic: T2, text: t("Write the job ad together") })
        .did(FRAN, add_action_item(T2, "Draft the job ad", BEN, None))
        .did(FRAN, Command::MoveOn);
    let board = g.when(FRAN, Command::RemoveTopic { topic: T2 }).then(&[Event::TopicRemoved { topic: T2 }]);
    assert!(board.action_items.is_empty());
    assert_eq!(board.current_topic(), Some(T3), "removing a topic not under discussion selects nothing");
}

// =====================================================================================
// Settings
// =====================================================================================

#[test]
fn the_facilitator_changes_the_settings_while_gathering() {
    let s = with(|s| {
        s.votes_per_person = 5;
        s.max_votes_per_topic = 2;
        s.timebox_ms = 7 * 60 * 1000;
        s.extension_ms = Some(2 * 60 * 1000);
    });
    let board = gathering()
        .when(FRAN, Command::ChangeSettings { settings: s.clone() })
        .then(&[Event::SettingsChanged { settings: s.clone() }]);
    assert_eq!(board.settings, s);
}

#[test]
fn unusable_settings_are_refused_with_the_reason() {
    for (what, settings) in unusable_settings() {
        let expected = settings.problem().expect(what);
        let r = gathering().when(FRAN, Command::ChangeSettings { settings }).then_reject(Invalid);
        assert_eq!(r.message, expected, "{what}");
    }
    for settings in extreme_settings() {
        gathering().when(FRAN, Command::ChangeSettings { settings }).then_accepted();
    }
}

#[test]
fn settings_change_only_while_gathering() {
    let s = with(|s| s.timebox_ms = 60_000);
    voting().when(FRAN, Command::ChangeSettings { settings: s.clone() }).then_reject(WrongPhase);
    discussing().when(FRAN, Command::ChangeSettings { settings: s.clone() }).then_reject(WrongPhase);
    wrapping_up().when(FRAN, Command::ChangeSettings { settings: s }).then_reject(WrongPhase);
}

#[test]
fn voting_settings_are_fixed_once_votes_exist() {
    // Voting opened, Ana voted, and the facilitator went back to gathering.
    let g = voting().votes(ANA, T1, 1).to(Phase::Gathering);
    for (what, s) in [
        ("votes per person", with(|s| s.votes_per_person = 5)),
        ("votes per topic", with(|s| s.max_votes_per_topic = 1)),
        ("hidden totals", public_totals()),
    ] {
        let r = g.clone().when(FRAN, Command::ChangeSettings { settings: s }).then_reject(Conflict);
        assert_eq!(r.message, "Votes have been placed, so the voting settings can no longer change.", "{what}");
    }
    // The rest may still change.
    let s = with(|s| {
        s.timebox_ms = 60_000;
        s.extension_ms = Some(30_000);
        s.hide_topics_until_revealed = true;
    });
    g.when(FRAN, Command::ChangeSettings { settings: s.clone() }).then(&[Event::SettingsChanged { settings: s }]);
}

#[test]
fn voting_settings_change_freely_once_all_votes_are_taken_back() {
    voting()
        .votes(ANA, T1, 1)
        .did(ANA, Command::RemoveVote { topic: T1 })
        .to(Phase::Gathering)
        .when(FRAN, Command::ChangeSettings { settings: public_totals() })
        .then(&[Event::SettingsChanged { settings: public_totals() }]);
}

#[test]
fn no_longer_hiding_topics_reveals_the_hidden_ones() {
    gathering_with(hidden_topics()).when(FRAN, Command::ChangeSettings { settings: Settings::default() }).then(&[
        Event::SettingsChanged { settings: Settings::default() },
        revealed(&[(T1, ANAS_TOPIC), (T2, BENS_TOPIC), (T3, CALS_TOPIC)]),
    ]);
    meeting_with(hidden_topics())
        .when(FRAN, Command::ChangeSettings { settings: Settings::default() })
        .then(&[Event::SettingsChanged { settings: Settings::default() }]);
}

#[test]
fn starting_to_hide_topics_hides_only_the_ones_added_after() {
    let board = meeting()
        .topic(ANA, ANAS_TOPIC)
        .did(FRAN, Command::ChangeSettings { settings: hidden_topics() })
        .when(BEN, Command::AddTopic { text: t(BENS_TOPIC) })
        .then(&[Event::TopicAdded { topic: T2, author: Some(BEN), text: Some(t(BENS_TOPIC)), hidden: true }]);
    assert!(!board.topics[&T1].hidden);
}

// =====================================================================================
// Hidden topics and revealing them
// =====================================================================================

#[test]
fn the_facilitator_reveals_hidden_topics() {
    let board = gathering_with(hidden_topics()).when(FRAN, Command::RevealTopics).then(&[revealed(&[
        (T1, ANAS_TOPIC),
        (T2, BENS_TOPIC),
        (T3, CALS_TOPIC),
    ])]);
    assert!(board.topics.values().all(|t| !t.hidden));
}

#[test]
fn revealing_reveals_only_what_is_still_hidden() {
    meeting()
        .topic(ANA, ANAS_TOPIC)
        .did(FRAN, Command::ChangeSettings { settings: hidden_topics() })
        .topic(BEN, BENS_TOPIC)
        .when(FRAN, Command::RevealTopics)
        .then(&[revealed(&[(T2, BENS_TOPIC)])]);
}

#[test]
fn there_is_nothing_to_reveal_when_nothing_is_hidden() {
    let r = gathering().when(FRAN, Command::RevealTopics).then_reject(Conflict);
    assert_eq!(r.message, "There are no hidden topics.");
    gathering_with(hidden_topics())
        .did(FRAN, Command::RevealTopics)
        .when(FRAN, Command::RevealTopics)
        .then_reject(Conflict);
}

#[test]
fn voting_opens_by_revealing_the_hidden_topics() {
    let board = gathering_with(hidden_topics()).when(FRAN, Command::ChangePhase { to: Phase::Voting }).then(&[
        revealed(&[(T1, ANAS_TOPIC), (T2, BENS_TOPIC), (T3, CALS_TOPIC)]),
        phase_changed(Phase::Gathering, Phase::Voting),
    ]);
    assert!(board.topics.values().all(|t| !t.hidden));
}

// =====================================================================================
// Voting
// =====================================================================================

#[test]
fn anyone_on_the_board_places_a_vote_while_voting() {
    let board = voting().when(ANA, Command::PlaceVote { topic: T1 }).then(&[vote_placed(ANA, T1, false)]);
    assert_eq!(board.votes_on(ANA, T1), 1);
    assert_eq!(board.votes_left(ANA), 2);
    voting().when(FRAN, Command::PlaceVote { topic: T2 }).then(&[vote_placed(FRAN, T2, false)]);
}

#[test]
fn votes_say_whether_totals_are_public() {
    voting_with(public_totals()).when(ANA, Command::PlaceVote { topic: T1 }).then(&[vote_placed(ANA, T1, true)]);
}

#[test]
fn votes_are_placed_only_while_voting() {
    let r = gathering().when(ANA, Command::PlaceVote { topic: T1 }).then_reject(WrongPhase);
    assert_eq!(r.message, "Votes can be placed only while voting; the meeting is in gathering topics.");
    discussing().when(ANA, Command::PlaceVote { topic: T1 }).then_reject(WrongPhase);
    wrapping_up().when(ANA, Command::PlaceVote { topic: T1 }).then_reject(WrongPhase);
}

#[test]
fn a_vote_goes_on_an_existing_topic() {
    voting().when(ANA, Command::PlaceVote { topic: TopicId(9) }).then_reject(NotFound);
}

#[test]
fn nobody_places_more_votes_than_the_board_gives_them() {
    let spent = voting().votes(ANA, T1, 2).votes(ANA, T2, 1);
    let r = spent.clone().when(ANA, Command::PlaceVote { topic: T3 }).then_reject(VoteLimit);
    assert_eq!(r.message, "You have used all 3 of your votes. Remove one to vote elsewhere.");
    // Taking one back frees it.
    spent
        .clone()
        .did(ANA, Command::RemoveVote { topic: T1 })
        .when(ANA, Command::PlaceVote { topic: T3 })
        .then_accepted();
    // Others have their own budget.
    spent.when(BEN, Command::PlaceVote { topic: T3 }).then_accepted();
}

#[test]
fn nobody_piles_more_votes_on_one_topic_than_the_board_allows() {
    let g = voting_with(with(|s| {
        s.votes_per_person = 5;
        s.max_votes_per_topic = 2;
    }))
    .votes(ANA, T1, 2);
    let r = g.clone().when(ANA, Command::PlaceVote { topic: T1 }).then_reject(VoteLimit);
    assert_eq!(r.message, "At most 2 of your votes can go on one topic.");
    g.when(ANA, Command::PlaceVote { topic: T2 }).then_accepted();
}

#[test]
fn when_voting_reopens_discussed_topics_take_no_more_votes() {
    // Ben's topic was discussed; Cal's is under discussion when voting reopens.
    let reopened = discussing().did(FRAN, Command::MoveOn).to(Phase::Voting);
    let r = reopened.clone().when(CAL, Command::PlaceVote { topic: T2 }).then_reject(Conflict);
    assert_eq!(r.message, "That topic has already been discussed.");
    reopened.clone().when(CAL, Command::PlaceVote { topic: T3 }).then(&[vote_placed(CAL, T3, true)]);
    reopened.clone().when(CAL, Command::PlaceVote { topic: T1 }).then(&[vote_placed(CAL, T1, true)]);
    // A vote on a discussed topic can still be taken back, to spend elsewhere.
    reopened.when(ANA, Command::RemoveVote { topic: T2 }).then(&[Event::VoteRemoved {
        person: Some(ANA),
        topic: Some(T2),
        totals_public: true,
    }]);
}

#[test]
fn people_take_back_their_votes_while_voting() {
    let board = voting().votes(ANA, T1, 2).when(ANA, Command::RemoveVote { topic: T1 }).then(&[Event::VoteRemoved {
        person: Some(ANA),
        topic: Some(T1),
        totals_public: false,
    }]);
    assert_eq!(board.votes_on(ANA, T1), 1);
    assert_eq!(board.votes_left(ANA), 2);
}

#[test]
fn only_a_vote_that_exists_can_be_taken_back() {
    let g = voting().votes(ANA, T1, 1);
    let r = g.clone().when(BEN, Command::RemoveVote { topic: T1 }).then_reject(Conflict);
    assert_eq!(r.message, "You have no vote on that topic.");
    g.clone().when(ANA, Command::RemoveVote { topic: T2 }).then_reject(Conflict);
    g.when(ANA, Command::RemoveVote { topic: TopicId(9) }).then_reject(NotFound);
}

#[test]
fn votes_are_taken_back_only_while_voting() {
    discussing().when(ANA, Command::RemoveVote { topic: T2 }).then_reject(WrongPhase);
    voting()
        .votes(ANA, T1, 1)
        .to(Phase::Gathering)
        .when(ANA, Command::RemoveVote { topic: T1 })
        .then_reject(WrongPhase);
}

// =====================================================================================
// Merging topics
// =====================================================================================

#[test]
fn merging_moves_each_persons_votes_across_up_to_the_per_topic_limit() {
    let g = voting_with(with(|s| {
        s.votes_per_person = 5;
        s.max_votes_per_topic = 3;
    }))
    .votes(ANA, T1, 2)
    .votes(ANA, T2, 2)
    .votes(BEN, T1, 1)
    .votes(CAL, T2, 1);
    // Ana's four votes cap at three; Ben's and Cal's one vote each stay.
    let board = g.when(FRAN, Command::MergeTopics { from: T1, into: T2, text: None }).then(&[Event::TopicsMerged {
        from: T1,
        into: T2,
        text: None,
        into_votes: Some(5),
        totals_public: false,
    }]);
    assert!(!board.topics.contains_key(&T1));
    assert_eq!(board.topics[&T2].votes, 5);
    assert_eq!(board.topics[&T2].text, Some(t(BENS_TOPIC)));
    assert_eq!(board.votes_on(ANA, T2), 3);
    assert_eq!(board.votes_left(ANA), 2, "the vote over the limit went back to Ana");
    assert_eq!(board.votes_on(BEN, T2), 1);
    assert_eq!(board.votes_on(CAL, T2), 1);
}

#[test]
fn merging_may_give_the_merged_topic_new_cleaned_words() {
    let board = gathering()
        .when(FRAN, Command::MergeTopics { from: T3, into: T2, text: Some(t("  Hiring and  onboarding ")) })
        .then(&[Event::TopicsMerged {
            from: T3,
            into: T2,
            text: Some(t("Hiring and onboarding")),
            into_votes: Some(0),
            totals_public: false,
        }]);
    assert_eq!(board.topics[&T2].text, Some(t("Hiring and onboarding")));
    gathering().when(FRAN, Command::MergeTopics { from: T3, into: T2, text: Some(t("  ")) }).then_reject(Invalid);
}

#[test]
fn a_waiting_topic_merges_into_the_one_under_discussion() {
    discussing().when(FRAN, Command::MergeTopics { from: T3, into: T2, text: None }).then(&[Event::TopicsMerged {
        from: T3,
        into: T2,
        text: None,
        into_votes: Some(4),
        totals_public: true,
    }]);
}

#[test]
fn merging_needs_two_existing_visible_topics() {
    let r = gathering().when(FRAN, Command::MergeTopics { from: T2, into: T2, text: None }).then_reject(Invalid);
    assert_eq!(r.message, "A topic cannot be merged into itself.");
    gathering().when(FRAN, Command::MergeTopics { from: TopicId(9), into: T2, text: None }).then_reject(NotFound);
    gathering().when(FRAN, Command::MergeTopics { from: T2, into: TopicId(9), text: None }).then_reject(NotFound);
    let r = gathering_with(hidden_topics())
        .when(FRAN, Command::MergeTopics { from: T3, into: T2, text: None })
        .then_reject(Conflict);
    assert_eq!(r.message, "Reveal topics before merging them.");
}

#[test]
fn only_a_waiting_topic_is_merged_away_and_never_into_a_discussed_one() {
    let g = discussing().did(FRAN, Command::MoveOn); // T2 discussed, T3 current, T1 waiting
    for (from, into) in [(T3, T1), (T2, T1), (T1, T2)] {
        g.clone().when(FRAN, Command::MergeTopics { from, into, text: None }).then_reject(Conflict);
    }
    g.when(FRAN, Command::MergeTopics { from: T1, into: T3, text: None }).then_accepted();
}

#[test]
fn topics_are_not_merged_after_the_discussion() {
    wrapping_up().when(FRAN, Command::MergeTopics { from: T1, into: T3, text: None }).then_reject(WrongPhase);
}

// =====================================================================================
// Moving through the phases
// =====================================================================================

#[test]
fn voting_opens_once_there_is_a_topic() {
    let r = meeting().when(FRAN, Command::ChangePhase { to: Phase::Voting }).then_reject(Conflict);
    assert_eq!(r.message, "Add at least one topic before voting.");
    gathering()
        .when(FRAN, Command::ChangePhase { to: Phase::Voting })
        .then(&[phase_changed(Phase::Gathering, Phase::Voting)]);
}

#[test]
fn entering_the_discussion_reveals_the_totals_and_selects_the_top_topic() {
    let board = voting()
        .votes(ANA, T2, 2)
        .votes(BEN, T2, 1)
        .votes(CAL, T3, 1)
        .when(FRAN, Command::ChangePhase { to: Phase::Discussing })
        .then(&[
            phase_changed(Phase::Voting, Phase::Discussing),
            Event::VoteTotalsRevealed {
                totals: vec![
                    TopicVotes { topic: T1, votes: 0 },
                    TopicVotes { topic: T2, votes: 3 },
                    TopicVotes { topic: T3, votes: 1 },
                ],
            },
            selected(T2),
        ]);
    assert!(board.totals_public());
    assert_eq!(board.current_topic(), Some(T2));
    assert_eq!(board.queue().iter().map(|t| t.id).collect::<Vec<_>>(), [T3, T1]);
}

#[test]
fn on_a_tie_the_older_topic_is_discussed_first() {
    voting().votes(ANA, T3, 1).votes(BEN, T2, 1).when(FRAN, Command::ChangePhase { to: Phase::Discussing }).then(&[
        phase_changed(Phase::Voting, Phase::Discussing),
        Event::VoteTotalsRevealed {
            totals: vec![
                TopicVotes { topic: T1, votes: 0 },
                TopicVotes { topic: T2, votes: 1 },
                TopicVotes { topic: T3, votes: 1 },
            ],
        },
        selected(T2),
    ]);
}

#[test]
fn totals_already_public_are_not_revealed_again() {
    voting_with(public_totals())
        .votes(ANA, T3, 1)
        .when(FRAN, Command::ChangePhase { to: Phase::Discussing })
        .then(&[phase_changed(Phase::Voting, Phase::Discussing), selected(T3)]);
}

#[test]
fn entering_the_discussion_with_no_topics_left_selects_nothing() {
    voting_with(public_totals())
        .did(ANA, Command::RemoveTopic { topic: T1 })
        .did(BEN, Command::RemoveTopic { topic: T2 })
        .did(CAL, Command::RemoveTopic { topic: T3 })
        .when(FRAN, Command::ChangePhase { to: Phase::Discussing })
        .then(&[phase_changed(Phase::Voting, Phase::Discussing)]);
}

#[test]
fn wrapping_up_ends_the_discussion_of_the_current_topic() {
    let board = discussing()
        .when(FRAN, Command::ChangePhase { to: Phase::WrapUp })
        .then(&[discussed(T2), phase_changed(Phase::Discussing, Phase::WrapUp)]);
    assert_eq!(board.topics[&T2].status, TopicStatus::Discussed);
    assert_eq!(board.current_topic(), None);
    // With everything discussed there is no current topic to end.
    discussing()
        .did(FRAN, Command::MoveOn)
        .did(FRAN, Command::MoveOn)
        .did(FRAN, Command::MoveOn)
        .when(FRAN, Command::ChangePhase { to: Phase::WrapUp })
        .then(&[phase_changed(Phase::Discussing, Phase::WrapUp)]);
}

#[test]
fn wrapping_up_while_the_timer_runs_stops_it() {
    let board = timing().when(FRAN, Command::ChangePhase { to: Phase::WrapUp }).then_accepted();
    assert_eq!(board.timer, Timer::Idle);
    let board = checking_in().when(FRAN, Command::ChangePhase { to: Phase::WrapUp }).then_accepted();
    assert_eq!(board.check_in, None);
}

#[test]
fn the_meeting_closes_after_wrap_up() {
    wrapping_up()
        .when(FRAN, Command::ChangePhase { to: Phase::Closed })
        .then(&[phase_changed(Phase::WrapUp, Phase::Closed)]);
}

#[test]
fn the_meeting_moves_one_phase_at_a_time() {
    for (g, to) in [
        (gathering(), Phase::Discussing),
        (gathering(), Phase::Closed),
        (voting(), Phase::WrapUp),
        (discussing(), Phase::Gathering),
        (wrapping_up(), Phase::Voting),
        (closed(), Phase::Discussing),
    ] {
        let r = g.when(FRAN, Command::ChangePhase { to }).then_reject(Invalid);
        assert_eq!(r.message, "The meeting moves one phase at a time.");
    }
}

#[test]
fn moving_to_the_phase_the_meeting_is_in_is_refused() {
    let r = voting().when(FRAN, Command::ChangePhase { to: Phase::Voting }).then_reject(Conflict);
    assert_eq!(r.message, "The meeting is already in voting.");
    gathering().when(FRAN, Command::ChangePhase { to: Phase::Gathering }).then_reject(Conflict);
    closed().when(FRAN, Command::ChangePhase { to: Phase::Closed }).then_reject(Conflict);
}

#[test]
fn stepping_back_from_voting_to_gathering() {
    voting()
        .votes(ANA, T1, 1)
        .when(FRAN, Command::ChangePhase { to: Phase::Gathering })
        .then(&[phase_changed(Phase::Voting, Phase::Gathering)]);
}

#[test]
fn reopening_voting_pauses_a_running_timer_and_loses_nothing() {
    let board = timing().when_at(FRAN, Command::ChangePhase { to: Phase::Voting }, at(60_000)).then(&[
        Event::TimerPaused { remaining_ms: TIMEBOX - 60_000 },
        phase_changed(Phase::Discussing, Phase::Voting),
    ]);
    assert_eq!(board.timer, Timer::Paused { remaining_ms: 240_000 });
    assert_eq!(board.current_topic(), Some(T2));
    // Back in the discussion: the same topic, still paused, totals not revealed a second time.
    let board = Given { board }
        .when_at(FRAN, Command::ChangePhase { to: Phase::Discussing }, at(120_000))
        .then(&[phase_changed(Phase::Voting, Phase::Discussing)]);
    assert_eq!(board.current_topic(), Some(T2));
    assert_eq!(board.timer, Timer::Paused { remaining_ms: 240_000 });
}

#[test]
fn reopening_voting_with_the_timer_not_running_changes_only_the_phase() {
    discussing()
        .when(FRAN, Command::ChangePhase { to: Phase::Voting })
        .then(&[phase_changed(Phase::Discussing, Phase::Voting)]);
    paused()
        .when(FRAN, Command::ChangePhase { to: Phase::Voting })
        .then(&[phase_changed(Phase::Discussing, Phase::Voting)]);
    checking_in()
        .when(FRAN, Command::ChangePhase { to: Phase::Voting })
        .then(&[phase_changed(Phase::Discussing, Phase::Voting)]);
}

#[test]
fn back_from_wrap_up_the_discussion_resumes_with_the_top_waiting_topic() {
    let board = wrapping_up()
        .when(FRAN, Command::ChangePhase { to: Phase::Discussing })
        .then(&[phase_changed(Phase::WrapUp, Phase::Discussing), selected(T3)]);
    assert_eq!(board.topics[&T2].status, TopicStatus::Discussed);
}

#[test]
fn a_closed_meeting_can_be_reopened_into_wrap_up() {
    closed()
        .when(FRAN, Command::ChangePhase { to: Phase::WrapUp })
        .then(&[phase_changed(Phase::Closed, Phase::WrapUp)]);
}

// =====================================================================================
// Picking topics during the discussion
// =====================================================================================

#[test]
fn the_facilitator_picks_a_waiting_topic_and_the_current_one_goes_back_to_the_queue() {
    let board = timing()
        .when(FRAN, Command::SelectTopic { topic: T1 })
        .then(&[Event::TopicSelected { topic: T1, previous: Some(T2) }]);
    assert_eq!(board.current_topic(), Some(T1));
    assert_eq!(board.topics[&T2].status, TopicStatus::Queued);
    assert_eq!(board.timer, Timer::Idle, "the new topic gets a fresh timer");
}

#[test]
fn only_a_waiting_topic_can_be_picked() {
    let g = discussing().did(FRAN, Command::MoveOn); // T2 discussed, T3 current
    let r = g.clone().when(FRAN, Command::SelectTopic { topic: T3 }).then_reject(Conflict);
    assert_eq!(r.message, "That topic is not waiting to be discussed.");
    g.clone().when(FRAN, Command::SelectTopic { topic: T2 }).then_reject(Conflict);
    g.when(FRAN, Command::SelectTopic { topic: TopicId(9) }).then_reject(NotFound);
}

#[test]
fn moving_on_marks_the_topic_discussed_and_selects_the_next() {
    let board = timing().when(FRAN, Command::MoveOn).then(&[discussed(T2), selected(T3)]);
    assert_eq!(board.timer, Timer::Idle);
    let board = Given { board }.when(FRAN, Command::MoveOn).then(&[discussed(T3), selected(T1)]);
    let board = Given { board }.when(FRAN, Command::MoveOn).then(&[discussed(T1)]);
    assert_eq!(board.current_topic(), None);
    assert_eq!(board.discussed().len(), 3);
    let r = Given { board }.when(FRAN, Command::MoveOn).then_reject(Conflict);
    assert_eq!(r.message, "No topic is under discussion.");
}

#[test]
fn moving_on_closes_the_check_in() {
    let board = checking_in().when(FRAN, Command::MoveOn).then(&[discussed(T2), selected(T3)]);
    assert_eq!(board.check_in, None);
    assert_eq!(board.timer, Timer::Idle);
}

#[test]
fn topics_are_picked_and_moved_on_only_during_the_discussion() {
    for g in [voting(), wrapping_up()] {
        g.clone().when(FRAN, Command::SelectTopic { topic: T1 }).then_reject(WrongPhase);
        g.when(FRAN, Command::MoveOn).then_reject(WrongPhase);
    }
}

// =====================================================================================
// The timer
// =====================================================================================

#[test]
fn starting_the_timer_sets_an_absolute_deadline_one_timebox_from_now() {
    let board =
        discussing().when(FRAN, Command::StartTimer).then(&[Event::TimerStarted { topic: T2, deadline: DEADLINE }]);
    assert_eq!(board.deadline(), Some(DEADLINE));
    discussing()
        .when_at(FRAN, Command::StartTimer, at(7_000))
        .then(&[Event::TimerStarted { topic: T2, deadline: at(7_000 + TIMEBOX) }]);
    discussing_with(with(|s| s.timebox_ms = 8 * 60 * 1000))
        .when(FRAN, Command::StartTimer)
        .then(&[Event::TimerStarted { topic: T2, deadline: at(8 * 60 * 1000) }]);
}

#[test]
fn the_timer_starts_only_for_a_topic_under_discussion() {
    let r = discussing()
        .did(FRAN, Command::MoveOn)
        .did(FRAN, Command::MoveOn)
        .did(FRAN, Command::MoveOn)
        .when(FRAN, Command::StartTimer)
        .then_reject(Conflict);
    assert_eq!(r.message, "No topic is under discussion.");
}

#[test]
fn a_timer_that_is_not_idle_does_not_start_again() {
    let r = paused().when(FRAN, Command::StartTimer).then_reject(Conflict);
    assert_eq!(r.message, "The timer is paused; resume it instead.");
    timing().when(FRAN, Command::StartTimer).then_reject(Conflict);
    checking_in().when(FRAN, Command::StartTimer).then_reject(Conflict);
}

#[test]
fn pausing_keeps_the_time_that_was_left() {
    let board = timing()
        .when_at(FRAN, Command::PauseTimer, at(60_000))
        .then(&[Event::TimerPaused { remaining_ms: TIMEBOX - 60_000 }]);
    assert_eq!(board.deadline(), None);
}

#[test]
fn a_timebox_that_ran_out_cannot_be_paused() {
    let r = timing().when_at(FRAN, Command::PauseTimer, DEADLINE).then_reject(Conflict);
    assert_eq!(r.message, "The timebox has already ended.");
    checking_in().when(FRAN, Command::PauseTimer).then_reject(Conflict);
}

#[test]
fn only_a_running_timer_is_paused() {
    let r = discussing().when(FRAN, Command::PauseTimer).then_reject(Conflict);
    assert_eq!(r.message, "The timer is not running.");
    paused().when(FRAN, Command::PauseTimer).then_reject(Conflict);
}

#[test]
fn resuming_counts_the_time_left_from_now() {
    // Paused one minute in, resumed ten minutes in: four minutes from then.
    let board = paused()
        .when_at(FRAN, Command::ResumeTimer, at(600_000))
        .then(&[Event::TimerResumed { deadline: at(600_000 + 240_000) }]);
    assert_eq!(board.deadline(), Some(at(840_000)));
}

#[test]
fn only_a_paused_timer_is_resumed() {
    for g in [discussing(), timing(), checking_in()] {
        let r = g.when(FRAN, Command::ResumeTimer).then_reject(Conflict);
        assert_eq!(r.message, "The timer is not paused.");
    }
}

#[test]
fn extending_a_running_timer_pushes_its_deadline_by_one_timebox() {
    timing()
        .when_at(FRAN, Command::ExtendTimer, at(60_000))
        .then(&[Event::TimerExtended { timer: Timer::Running { deadline: at(TIMEBOX + TIMEBOX) } }]);
}

#[test]
fn extending_uses_the_extension_length_when_the_board_sets_one() {
    discussing_with(with(|s| s.extension_ms = Some(120_000)))
        .did(FRAN, Command::StartTimer)
        .when_at(FRAN, Command::ExtendTimer, at(60_000))
        .then(&[Event::TimerExtended { timer: Timer::Running { deadline: at(TIMEBOX + 120_000) } }]);
}

#[test]
fn extending_a_timer_past_its_deadline_counts_from_now() {
    // The deadline passed but the server has not ended the timebox yet.
    timing()
        .when_at(FRAN, Command::ExtendTimer, at(TIMEBOX + 30_000))
        .then(&[Event::TimerExtended { timer: Timer::Running { deadline: at(TIMEBOX + 30_000 + TIMEBOX) } }]);
}

#[test]
fn extending_a_paused_timer_adds_to_the_time_left() {
    paused()
        .when_at(FRAN, Command::ExtendTimer, at(90_000))
        .then(&[Event::TimerExtended { timer: Timer::Paused { remaining_ms: 240_000 + TIMEBOX } }]);
}

#[test]
fn extending_after_the_timebox_ended_restarts_it_and_closes_the_check_in() {
    let board = checking_in()
        .did(ANA, Command::AnswerCheckIn { answer: Answer::Up })
        .when_at(FRAN, Command::ExtendTimer, at(TIMEBOX + 20_000))
        .then(&[Event::TimerExtended { timer: Timer::Running { deadline: at(TIMEBOX + 20_000 + TIMEBOX) } }]);
    assert_eq!(board.check_in, None);
}

#[test]
fn an_idle_timer_is_not_extended() {
    let r = discussing().when(FRAN, Command::ExtendTimer).then_reject(Conflict);
    assert_eq!(r.message, "The timer is not running.");
}

#[test]
fn stopping_the_timer_makes_it_idle_whatever_its_state() {
    for g in [timing(), paused(), checking_in()] {
        let board = g.when_at(FRAN, Command::StopTimer, at(TIMEBOX + 1)).then(&[Event::TimerStopped]);
        assert_eq!(board.timer, Timer::Idle);
        assert_eq!(board.check_in, None);
        assert_eq!(board.current_topic(), Some(T2), "stopping the timer keeps the topic");
    }
    let r = discussing().when(FRAN, Command::StopTimer).then_reject(Conflict);
    assert_eq!(r.message, "The timer is not running.");
}

#[test]
fn the_timer_runs_only_during_the_discussion() {
    for command in
        [Command::StartTimer, Command::PauseTimer, Command::ResumeTimer, Command::ExtendTimer, Command::StopTimer]
    {
        let r = voting().when(FRAN, command.clone()).then_reject(WrongPhase);
        assert_eq!(r.message, "The timer runs only while discussing; the meeting is in voting.");
        // Even with a paused timer carried into reopened voting.
        paused().to(Phase::Voting).when(FRAN, command.clone()).then_reject(WrongPhase);
        wrapping_up().when(FRAN, command).then_reject(WrongPhase);
    }
}

// =====================================================================================
// The end of a timebox and the check-in
// =====================================================================================

#[test]
fn the_server_ends_the_timebox_at_its_deadline_and_the_check_in_opens() {
    let board = timing().when_at(System, Command::EndTimebox, DEADLINE).then(&[Event::TimeboxEnded { topic: T2 }]);
    assert_eq!(board.timer, Timer::Expired);
    assert_eq!(board.check_in.as_ref().map(|c| c.total()), Some(0));
    // Late is fine too: the server may wake up after the deadline.
    timing().when_at(System, Command::EndTimebox, at(TIMEBOX + 2_500)).then(&[Event::TimeboxEnded { topic: T2 }]);
}

#[test]
fn a_timebox_does_not_end_early() {
    let r = timing().when_at(System, Command::EndTimebox, UnixMillis(DEADLINE.0 - 1)).then_reject(Conflict);
    assert_eq!(r.message, "The timebox has not ended yet.");
    // A resumed timer ends at its new deadline, not the old one.
    paused()
        .did_at(FRAN, Command::ResumeTimer, at(120_000))
        .when_at(System, Command::EndTimebox, DEADLINE)
        .then_reject(Conflict);
}

#[test]
fn only_a_running_timebox_ends() {
    for g in [discussing(), paused(), checking_in()] {
        let r = g.when_at(System, Command::EndTimebox, at(10 * TIMEBOX)).then_reject(Conflict);
        assert_eq!(r.message, "The timer is not running.");
    }
}

#[test]
fn everyone_answers_the_check_in() {
    let board = checking_in()
        .when(ANA, Command::AnswerCheckIn { answer: Answer::Up })
        .then(&[Event::CheckInAnswered { person: Some(ANA), answer: Answer::Up, previous: None }]);
    let board = Given { board }
        .when(FRAN, Command::AnswerCheckIn { answer: Answer::Sideways })
        .then(&[Event::CheckInAnswered { person: Some(FRAN), answer: Answer::Sideways, previous: None }]);
    let check_in = board.check_in.expect("open");
    assert_eq!((check_in.up, check_in.sideways, check_in.down), (1, 1, 0));
}

#[test]
fn a_changed_answer_replaces_the_earlier_one() {
    let board = checking_in()
        .did(ANA, Command::AnswerCheckIn { answer: Answer::Up })
        .when(ANA, Command::AnswerCheckIn { answer: Answer::Down })
        .then(&[Event::CheckInAnswered { person: Some(ANA), answer: Answer::Down, previous: Some(Answer::Up) }]);
    let check_in = board.check_in.expect("open");
    assert_eq!((check_in.up, check_in.sideways, check_in.down), (0, 0, 1));
    assert_eq!(check_in.answers[&ANA], Answer::Down);
}

#[test]
fn the_same_answer_again_changes_nothing() {
    checking_in()
        .did(ANA, Command::AnswerCheckIn { answer: Answer::Down })
        .when(ANA, Command::AnswerCheckIn { answer: Answer::Down })
        .then(&[]);
}

#[test]
fn the_check_in_is_answered_only_while_it_is_open() {
    let r = timing().when(ANA, Command::AnswerCheckIn { answer: Answer::Up }).then_reject(Conflict);
    assert_eq!(r.message, "There is no check-in open.");
    discussing().when(ANA, Command::AnswerCheckIn { answer: Answer::Up }).then_reject(Conflict);
    checking_in()
        .did(FRAN, Command::ExtendTimer)
        .when(ANA, Command::AnswerCheckIn { answer: Answer::Up })
        .then_reject(Conflict);
    // An open check-in carried into reopened voting waits for the discussion.
    checking_in().to(Phase::Voting).when(ANA, Command::AnswerCheckIn { answer: Answer::Up }).then_reject(WrongPhase);
}

// =====================================================================================
// Takeaways
// =====================================================================================

#[test]
fn the_facilitator_writes_a_takeaway_on_several_lines() {
    let board = discussing()
        .when(FRAN, Command::SetTakeaway { topic: T2, text: t("  Ask for the  budget \r\n\n\n\n first  ") })
        .then(&[Event::TakeawaySet { topic: T2, text: t("Ask for the budget\n\nfirst") }]);
    assert_eq!(board.topics[&T2].takeaway, Some(t("Ask for the budget\n\nfirst")));
    // A second takeaway replaces the first.
    Given { board }
        .when(FRAN, Command::SetTakeaway { topic: T2, text: t("Ask first") })
        .then(&[Event::TakeawaySet { topic: T2, text: t("Ask first") }]);
}

#[test]
fn takeaways_are_written_for_discussed_topics_during_wrap_up() {
    wrapping_up()
        .when(FRAN, Command::SetTakeaway { topic: T2, text: t("Write it down") })
        .then(&[Event::TakeawaySet { topic: T2, text: t("Write it down") }]);
}

#[test]
fn a_takeaway_is_for_a_topic_that_was_discussed() {
    let r = discussing().when(FRAN, Command::SetTakeaway { topic: T3, text: t("Too early") }).then_reject(Conflict);
    assert_eq!(r.message, "That topic has not been discussed yet.");
    wrapping_up().when(FRAN, Command::SetTakeaway { topic: T1, text: t("Never reached") }).then_reject(Conflict);
    discussing().when(FRAN, Command::SetTakeaway { topic: TopicId(9), text: t("Nowhere") }).then_reject(NotFound);
}

#[test]
fn a_takeaway_has_words_and_at_most_a_thousand_characters() {
    discussing().when(FRAN, Command::SetTakeaway { topic: T2, text: t(" \n\n ") }).then_reject(Invalid);
    let r = discussing()
        .when(FRAN, Command::SetTakeaway { topic: T2, text: t(&"x".repeat(MAX_TAKEAWAY_CHARS + 1)) })
        .then_reject(Invalid);
    assert_eq!(r.message, "The takeaway is longer than 1000 characters.");
    discussing()
        .when(FRAN, Command::SetTakeaway { topic: T2, text: t(&"x".repeat(MAX_TAKEAWAY_CHARS)) })
        .then_accepted();
}

#[test]
fn takeaways_are_written_only_during_the_discussion_and_wrap_up() {
    // Ben's topic is still under discussion when voting reopens.
    discussing()
        .to(Phase::Voting)
        .when(FRAN, Command::SetTakeaway { topic: T2, text: t("Later") })
        .then_reject(WrongPhase);
}

// =====================================================================================
// Action items
// =====================================================================================

#[test]
fn the_facilitator_records_an_action_item_with_an_owner_and_a_due_date() {
    let board = discussing()
        .when(FRAN, add_action_item(T2, "  Draft the  job ad ", BEN, Some("2024-03-01")))
        .then(&[Event::ActionItemAdded { item: action_item(1, T2, "Draft the job ad", BEN, Some("2024-03-01")) }]);
    assert_eq!(board.action_items_for(T2).count(), 1);
    Given { board }
        .when(FRAN, add_action_item(T2, "Ask HR about the budget", FRAN, None))
        .then(&[Event::ActionItemAdded { item: action_item(2, T2, "Ask HR about the budget", FRAN, None) }]);
}

#[test]
fn action_items_are_recorded_for_discussed_topics_during_wrap_up() {
    wrapping_up()
        .when(FRAN, add_action_item(T2, "Send the notes", ANA, None))
        .then(&[Event::ActionItemAdded { item: action_item(1, T2, "Send the notes", ANA, None) }]);
}

#[test]
fn an_action_item_belongs_to_a_discussed_topic() {
    let r = discussing().when(FRAN, add_action_item(T3, "Too early", ANA, None)).then_reject(Conflict);
    assert_eq!(r.message, "That topic has not been discussed yet.");
    discussing().when(FRAN, add_action_item(TopicId(9), "Nowhere", ANA, None)).then_reject(NotFound);
}

#[test]
fn an_action_item_has_words_of_sensible_length() {
    discussing().when(FRAN, add_action_item(T2, "\t", ANA, None)).then_reject(Invalid);
    discussing()
        .when(FRAN, add_action_item(T2, &"x".repeat(MAX_ACTION_ITEM_CHARS + 1), ANA, None))
        .then_reject(Invalid);
    discussing().when(FRAN, add_action_item(T2, &"x".repeat(MAX_ACTION_ITEM_CHARS), ANA, None)).then_accepted();
}

#[test]
fn an_action_item_is_owned_by_someone_on_the_board() {
    let r = discussing().when(FRAN, add_action_item(T2, "Somebody else's job", STRANGER, None)).then_reject(NotFound);
    assert_eq!(r.message, "The owner is not on this board.");
}

#[test]
fn a_due_date_is_a_real_calendar_day_written_yyyy_mm_dd() {
    for due in [
        "2024-02-30",
        "2023-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-1-01",
        "24-01-01",
        "2024/01/01",
        "2024-01-01T09:00",
        "+024-01-01",
        "2024-01-1a",
        "２０２４-01-01",
        "tomorrow",
        "",
    ] {
        let r = discussing().when(FRAN, add_action_item(T2, "Follow up", ANA, Some(due))).then_reject(Invalid);
        assert_eq!(r.message, "The due date must be a date written YYYY-MM-DD.", "{due:?}");
    }
    for due in ["2024-02-29", "2000-02-29", "2024-12-31", "2025-01-01", "2025-06-30"] {
        discussing().when(FRAN, add_action_item(T2, "Follow up", ANA, Some(due))).then_accepted();
    }
}

#[test]
fn a_board_holds_at_most_two_hundred_action_items() {
    let items: Vec<Event> = (1..=MAX_ACTION_ITEMS as u32)
        .map(|id| Event::ActionItemAdded { item: action_item(id, T2, &format!("Item {id}"), ANA, None) })
        .collect();
    let r = discussing().and(&items).when(FRAN, add_action_item(T2, "One more", ANA, None)).then_reject(Limit);
    assert_eq!(r.message, "The board holds at most 200 action items.");
}

#[test]
fn action_items_are_recorded_only_during_the_discussion_and_wrap_up() {
    discussing().to(Phase::Voting).when(FRAN, add_action_item(T2, "Later", ANA, None)).then_reject(WrongPhase);
}

#[test]
fn the_facilitator_removes_an_action_item_and_its_id_is_not_reused() {
    let board = discussing()
        .did(FRAN, add_action_item(T2, "Draft the job ad", BEN, None))
        .when(FRAN, Command::RemoveActionItem { id: ActionItemId(1) })
        .then(&[Event::ActionItemRemoved { id: ActionItemId(1) }]);
    assert!(board.action_items.is_empty());
    Given { board }
        .when(FRAN, add_action_item(T2, "Draft it again", BEN, None))
        .then(&[Event::ActionItemAdded { item: action_item(2, T2, "Draft it again", BEN, None) }]);
}

#[test]
fn only_an_existing_action_item_is_removed() {
    let r = wrapping_up().when(FRAN, Command::RemoveActionItem { id: ActionItemId(7) }).then_reject(NotFound);
    assert_eq!(r.message, "That action item does not exist.");
}

// =====================================================================================
// A closed meeting
// =====================================================================================

#[test]
fn a_closed_meeting_refuses_every_change() {
    let g = closed().and(&[Event::ActionItemAdded { item: action_item(1, T2, "Draft the job ad", BEN, None) }]);
    let changes: Vec<(Actor, Command)> = vec![
        (System, Command::CreateBoard { title: t("Again"), settings: Settings::default() }),
        (System, Command::EndTimebox),
        (Actor::Person(ANA), Command::AddTopic { text: t("Late idea") }),
        (Actor::Person(ANA), Command::PlaceVote { topic: T1 }),
        (Actor::Person(ANA), Command::RemoveVote { topic: T2 }),
        (Actor::Person(ANA), Command::AnswerCheckIn { answer: Answer::Up }),
        (Actor::Person(ANA), Command::EditTopic { topic: T1, text: t("Reworded") }),
        (Actor::Person(ANA), Command::RemoveTopic { topic: T1 }),
        (Actor::Person(FRAN), Command::EditTopic { topic: T1, text: t("Reworded") }),
        (Actor::Person(FRAN), Command::RemoveTopic { topic: T1 }),
        (Actor::Person(FRAN), Command::ChangeSettings { settings: Settings::default() }),
        (Actor::Person(FRAN), Command::RevealTopics),
        (Actor::Person(FRAN), Command::MergeTopics { from: T1, into: T3, text: None }),
        (Actor::Person(FRAN), Command::SelectTopic { topic: T1 }),
        (Actor::Person(FRAN), Command::StartTimer),
        (Actor::Person(FRAN), Command::PauseTimer),
        (Actor::Person(FRAN), Command::ResumeTimer),
        (Actor::Person(FRAN), Command::ExtendTimer),
        (Actor::Person(FRAN), Command::StopTimer),
        (Actor::Person(FRAN), Command::MoveOn),
        (Actor::Person(FRAN), Command::SetTakeaway { topic: T2, text: t("Afterthought") }),
        (Actor::Person(FRAN), add_action_item(T2, "Afterthought", ANA, None)),
        (Actor::Person(FRAN), Command::RemoveActionItem { id: ActionItemId(1) }),
    ];
    for (who, command) in changes {
        let r = g.clone().when(who, command).then_reject(WrongPhase);
        assert_eq!(r.message, "The meeting is closed.");
    }
}

#[test]
fn a_closed_meeting_still_admits_people_to_read_it() {
    closed().when(System, join("Dee", Role::Participant)).then(&[joined(PersonId(5), "Dee", Role::Participant)]);
    closed().when(System, join("Fran", Role::Facilitator)).then(&[]);
}

#[test]
fn in_a_closed_meeting_permissions_still_come_first() {
    closed().when(ANA, Command::ChangePhase { to: Phase::WrapUp }).then_reject(Forbidden);
    closed().when(Projector, Command::AddTopic { text: t("Late idea") }).then_reject(Forbidden);
}

// =====================================================================================
// What rejections say
// =====================================================================================

#[test]
fn rejections_never_quote_what_people_wrote() {
    let secret = "My manager shouts at me in meetings";
    let g = meeting_with(hidden_topics()).topic(ANA, secret).topic(BEN, BENS_TOPIC);
    let refusals = [
        g.clone().when(FRAN, Command::EditTopic { topic: T1, text: t(secret) }).then_reject(Conflict),
        g.clone().when(FRAN, Command::MergeTopics { from: T1, into: T2, text: Some(t(secret)) }).then_reject(Conflict),
        g.clone().when(BEN, Command::RemoveTopic { topic: T1 }).then_reject(Forbidden),
        g.clone()
            .when(ANA, Command::AddTopic { text: t(&format!("{secret} {}", "and more ".repeat(40))) })
            .then_reject(Invalid),
        g.clone().when(ANA, Command::PlaceVote { topic: T1 }).then_reject(WrongPhase),
        g.clone().when(STRANGER, Command::AddTopic { text: t(secret) }).then_reject(Forbidden),
    ];
    for r in refusals {
        assert!(!r.message.contains("manager") && !r.message.contains("shouts"), "{}", r.message);
        assert!(r.message.len() > 10, "a sentence, not a code: {}", r.message);
    }
}

#[test]
fn a_rejection_reads_as_its_code_and_sentence() {
    let r = meeting().when(ANA, Command::StartTimer).then_reject(Forbidden);
    assert_eq!(r.to_string(), "Forbidden: Only the facilitator can do that.");
}

// =====================================================================================
// The permission table, cell by cell
// =====================================================================================

/// What one actor gets for one command on a board where the command would otherwise be valid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cell {
    Accepted,
    Rejected(RejectCode),
}

const OK: Cell = Cell::Accepted;
const NO: Cell = Cell::Rejected(Forbidden);

/// The columns of the table.
const ACTORS: [(&str, Actor); 6] = [
    ("system", System),
    ("projector", Projector),
    ("facilitator", Actor::Person(FRAN)),
    ("participant", Actor::Person(ANA)),
    ("author of the topic", Actor::Person(BEN)),
    ("stranger", Actor::Person(STRANGER)),
];

struct Row {
    given: Given,
    at: UnixMillis,
    command: Command,
    cells: [Cell; 6],
}

fn row(given: Given, command: Command, cells: [Cell; 6]) -> Row {
    Row { given, at: NOW, command, cells }
}

fn row_at(given: Given, at: UnixMillis, command: Command, cells: [Cell; 6]) -> Row {
    Row { given, at, command, cells }
}

/// One row per command. Topic commands name T2, Ben's topic, so Ben is "the author" and Ana,
/// who wrote another topic, is just "a participant".
fn permission_table() -> Vec<Row> {
    let with_item = || discussing().did(FRAN, add_action_item(T2, "Draft the job ad", BEN, None));
    let everyone_voted = || voting().votes(FRAN, T2, 1).votes(ANA, T2, 1).votes(BEN, T2, 1);
    #[rustfmt::skip]
    let table = vec![
        // The cells, in order: system, projector, facilitator, participant, author, stranger.
        row(meeting(), Command::CreateBoard { title: t("Again"), settings: Settings::default() }, [Cell::Rejected(Conflict), NO, NO, NO, NO, NO]),
        row(meeting(), join("Dee", Role::Participant),                                       [OK, NO, NO, NO, NO, NO]),
        row_at(timing(), DEADLINE, Command::EndTimebox,                                       [OK, NO, NO, NO, NO, NO]),
        row(meeting(), Command::AddTopic { text: t("Delegating") },                          [NO, NO, OK, OK, OK, NO]),
        row(voting(), Command::PlaceVote { topic: T2 },                                      [NO, NO, OK, OK, OK, NO]),
        row(everyone_voted(), Command::RemoveVote { topic: T2 },                             [NO, NO, OK, OK, OK, NO]),
        row(checking_in(), Command::AnswerCheckIn { answer: Answer::Sideways },              [NO, NO, OK, OK, OK, NO]),
        row(gathering(), Command::EditTopic { topic: T2, text: t("Hiring well") },           [NO, NO, OK, NO, OK, NO]),
        row(gathering(), Command::RemoveTopic { topic: T2 },                                 [NO, NO, OK, NO, OK, NO]),
        row(gathering(), Command::ChangeSettings { settings: with(|s| s.timebox_ms = 60_000) }, [NO, NO, OK, NO, NO, NO]),
        row(gathering(), Command::ChangePhase { to: Phase::Voting },                         [NO, NO, OK, NO, NO, NO]),
        row(gathering_with(hidden_topics()), Command::RevealTopics,                          [NO, NO, OK, NO, NO, NO]),
        row(voting(), Command::MergeTopics { from: T3, into: T2, text: None },               [NO, NO, OK, NO, NO, NO]),
        row(discussing(), Command::SelectTopic { topic: T3 },                                [NO, NO, OK, NO, NO, NO]),
        row(discussing(), Command::StartTimer,                                               [NO, NO, OK, NO, NO, NO]),
        row_at(timing(), at(60_000), Command::PauseTimer,                                     [NO, NO, OK, NO, NO, NO]),
        row_at(paused(), at(120_000), Command::ResumeTimer,                                   [NO, NO, OK, NO, NO, NO]),
        row_at(timing(), at(60_000), Command::ExtendTimer,                                    [NO, NO, OK, NO, NO, NO]),
        row(timing(), Command::StopTimer,                                                    [NO, NO, OK, NO, NO, NO]),
        row(discussing(), Command::MoveOn,                                                   [NO, NO, OK, NO, NO, NO]),
        row(discussing(), Command::SetTakeaway { topic: T2, text: t("Hire slowly") },        [NO, NO, OK, NO, NO, NO]),
        row(discussing(), add_action_item(T2, "Draft the job ad", BEN, Some("2024-03-01")), [NO, NO, OK, NO, NO, NO]),
        row(with_item(), Command::RemoveActionItem { id: ActionItemId(1) },                  [NO, NO, OK, NO, NO, NO]),
        row(gathering(), Command::RemovePerson { person: CAL },                              [NO, NO, OK, NO, NO, NO]),
        row(gathering(), Command::DeleteBoard,                                               [NO, NO, OK, NO, NO, NO]),
        row(gathering(), Command::HandOver { to: CAL },                                      [NO, NO, OK, NO, NO, NO]),
        row(gathering(), Command::RotateParticipantLink,                                     [NO, NO, OK, NO, NO, NO]),
    ];
    table
}

/// The table as the rules describe it, spelled out again so that a new command cannot be added
/// without deciding who may send it (this match has no wildcard).
fn who_may(command: &Command) -> Permission {
    use Command::*;
    match command {
        CreateBoard { .. } | Join { .. } | EndTimebox => Permission::System,
        AddTopic { .. } | PlaceVote { .. } | RemoveVote { .. } | AnswerCheckIn { .. } => Permission::Member,
        EditTopic { .. } | RemoveTopic { .. } => Permission::AuthorOrFacilitator,
        ChangeSettings { .. } | ChangePhase { .. } | RevealTopics | MergeTopics { .. } | SelectTopic { .. } => {
            Permission::Facilitator
        }
        StartTimer | PauseTimer | ResumeTimer | ExtendTimer | StopTimer | MoveOn => Permission::Facilitator,
        SetTakeaway { .. } | AddActionItem { .. } | RemoveActionItem { .. } => Permission::Facilitator,
        RemovePerson { .. } | DeleteBoard | HandOver { .. } | RotateParticipantLink => Permission::Facilitator,
    }
}

#[test]
fn the_permission_table_has_one_row_per_command() {
    let table = permission_table();
    let mut kinds: Vec<&str> = table.iter().map(|r| r.command.kind()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), table.len(), "a command has two rows");
    assert_eq!(kinds.len(), 27, "every command has a row");
    for r in &table {
        assert_eq!(r.command.permission(), who_may(&r.command), "{}", r.command.kind());
    }
}

#[test]
fn the_permission_table_cell_by_cell() {
    let mut wrong = Vec::new();
    for r in permission_table() {
        for ((name, actor), expected) in ACTORS.iter().zip(r.cells) {
            let got = match decide(&r.given.board, *actor, &r.command, r.at) {
                Ok(events) => {
                    // An accepted command folds without trouble.
                    Given { board: r.given.board.clone() }.and(&events);
                    Cell::Accepted
                }
                Err(rejection) => {
                    assert_human_sentence(&rejection, &words_people_wrote(&r.given.board, &r.command));
                    Cell::Rejected(rejection.code)
                }
            };
            if got != expected {
                wrong.push(format!("{} by the {name}: expected {expected:?}, got {got:?}", r.command.kind()));
            }
        }
    }
    assert!(wrong.is_empty(), "permission table mismatches:\n{}", wrong.join("\n"));
}

#[test]
fn the_permission_table_matches_the_permission_kinds() {
    // Cross-check each row against its permission kind: who is let through follows from it.
    for r in permission_table() {
        let expected: [bool; 6] = match r.command.permission() {
            Permission::System => [true, false, false, false, false, false],
            Permission::Member => [false, false, true, true, true, false],
            Permission::AuthorOrFacilitator => [false, false, true, false, true, false],
            Permission::Facilitator => [false, false, true, false, false, false],
        };
        let let_through: Vec<bool> = r.cells.iter().map(|c| *c != NO).collect();
        assert_eq!(let_through, expected, "{}", r.command.kind());
    }
}

#[test]
fn permission_is_checked_before_any_other_rule() {
    // Each of these is also wrong in some other way; the actor hears only that it is not theirs.
    let cases: Vec<(Given, Actor, Command)> = vec![
        (meeting(), Actor::Person(ANA), Command::ChangePhase { to: Phase::Gathering }),
        (meeting(), Actor::Person(ANA), join("", Role::Facilitator)),
        (meeting(), Projector, Command::AddTopic { text: t("") }),
        (meeting(), System, Command::AddTopic { text: t(ANAS_TOPIC) }),
        (meeting(), Actor::Person(STRANGER), Command::PlaceVote { topic: TopicId(9) }),
        (gathering(), Actor::Person(ANA), Command::EditTopic { topic: T2, text: t("") }),
        (voting(), Actor::Person(BEN), Command::SelectTopic { topic: T2 }),
        (discussing(), Actor::Person(STRANGER), Command::RemoveActionItem { id: ActionItemId(7) }),
        (discussing(), Projector, Command::EndTimebox),
    ];
    for (g, who, command) in cases {
        g.when(who, command).then_reject(Forbidden);
    }
}

#[test]
fn forbidden_messages_say_who_may() {
    assert_eq!(meeting().when(ANA, Command::EndTimebox).then_reject(Forbidden).message, "Only the server can do that.");
    assert_eq!(
        meeting().when(Projector, Command::AddTopic { text: t("Hi there") }).then_reject(Forbidden).message,
        "The projector view is read-only."
    );
    assert_eq!(
        meeting().when(System, Command::AddTopic { text: t("Hi there") }).then_reject(Forbidden).message,
        "Only a person on the board can do that."
    );
    assert_eq!(
        meeting().when(STRANGER, Command::AddTopic { text: t("Hi there") }).then_reject(Forbidden).message,
        "You are not on this board."
    );
    assert_eq!(
        meeting().when(ANA, Command::StartTimer).then_reject(Forbidden).message,
        "Only the facilitator can do that."
    );
}
