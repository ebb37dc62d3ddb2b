//! `decide`: every rule of the meeting. Given the board, who is asking, what they ask and the time,
//! it returns the events that record the change, or a [`Rejection`] that says why not in words a
//! person can act on. It changes nothing itself; the caller sequences, stores and applies the events.

use crate::board::{Board, TopicStatus};
use crate::command::{Actor, Command, Permission};
use crate::event::{ActionItem, Event, Phase, RevealedTopic, Role, Timer, TopicVotes};
use crate::ids::{ActionItemId, PersonId, TopicId, UnixMillis};
use crate::settings::*;
use crate::text::{Lines, Private, TextProblem, normalize};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a command was refused, as a code a program can branch on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The actor's role does not allow this.
    Forbidden,
    /// Not in this phase of the meeting.
    WrongPhase,
    /// The board, topic, person or action item does not exist.
    NotFound,
    /// A vote would exceed the person's budget or the per-topic limit.
    VoteLimit,
    /// The input is malformed (empty, too long, bad date, bad settings).
    Invalid,
    /// A size limit of the board was reached.
    Limit,
    /// The board's state does not allow it right now (e.g. the timer is not running).
    Conflict,
}

/// A refused command: a code and a message for the person. Messages never quote what people wrote.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

fn reject<T>(code: RejectCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection { code, message: message.into() })
}

use RejectCode::*;

/// Checks `command` from `actor` against `board` at time `now`.
pub fn decide(board: &Board, actor: Actor, command: &Command, now: UnixMillis) -> Result<Vec<Event>, Rejection> {
    if !board.created {
        return match command {
            Command::CreateBoard { title, settings } if actor == Actor::System => create_board(title, settings),
            _ => reject(NotFound, "This board does not exist."),
        };
    }
    let person = authorize(board, actor, command)?;
    let allowed_when_closed =
        matches!(command, Command::ChangePhase { .. } | Command::Join { .. } | Command::DeleteBoard);
    if board.phase == Phase::Closed && !allowed_when_closed {
        return reject(WrongPhase, "The meeting is closed.");
    }
    let rules = Rules { board, now };
    match command {
        Command::CreateBoard { .. } => reject(Conflict, "This board already exists."),
        Command::Join { name, role } => rules.join(name, *role),
        Command::EndTimebox => rules.end_timebox(),
        Command::AddTopic { text } => rules.add_topic(person?, text),
        Command::PlaceVote { topic } => rules.place_vote(person?, *topic),
        Command::RemoveVote { topic } => rules.remove_vote(person?, *topic),
        Command::AnswerCheckIn { answer } => rules.answer_check_in(person?, *answer),
        Command::EditTopic { topic, text } => rules.edit_topic(person?, *topic, text),
        Command::RemoveTopic { topic } => rules.remove_topic(person?, *topic),
        Command::ChangeSettings { settings } => rules.change_settings(settings),
        Command::ChangePhase { to } => rules.change_phase(*to),
        Command::RevealTopics => rules.reveal_topics(),
        Command::MergeTopics { from, into, text } => rules.merge_topics(*from, *into, text.as_ref()),
        Command::SelectTopic { topic } => rules.select_topic(*topic),
        Command::StartTimer => rules.start_timer(),
        Command::PauseTimer => rules.pause_timer(),
        Command::ResumeTimer => rules.resume_timer(),
        Command::ExtendTimer => rules.extend_timer(),
        Command::StopTimer => rules.stop_timer(),
        Command::MoveOn => rules.move_on(),
        Command::SetTakeaway { topic, text } => rules.set_takeaway(*topic, text),
        Command::AddActionItem { topic, text, owner, due } => {
            rules.add_action_item(*topic, text, *owner, due.as_deref())
        }
        Command::RemoveActionItem { id } => rules.remove_action_item(*id),
        Command::RemovePerson { person } => rules.remove_person(*person),
        Command::DeleteBoard => Ok(vec![Event::BoardDeleted]),
        Command::HandOver { to } => rules.hand_over(person?, *to),
        // The server fills in the new key's hash (the rules make no keys).
        Command::RotateParticipantLink => Ok(vec![Event::ParticipantLinkRotated { key_sha256: None }]),
    }
}

/// Applies the permission table. Returns the acting person (an error for system commands, which
/// never need one).
fn authorize(board: &Board, actor: Actor, command: &Command) -> Result<Result<PersonId, Rejection>, Rejection> {
    let no_person = || reject(Forbidden, "Only a person on the board can do that.");
    match (command.permission(), actor) {
        (Permission::System, Actor::System) => Ok(no_person()),
        (Permission::System, _) => reject(Forbidden, "Only the server can do that."),
        (_, Actor::Projector) => reject(Forbidden, "The projector view is read-only."),
        (_, Actor::System) => reject(Forbidden, "Only a person on the board can do that."),
        (permission, Actor::Person(p)) => {
            if !board.people.contains_key(&p) {
                return reject(Forbidden, "You are not on this board.");
            }
            if permission == Permission::Facilitator && !board.is_facilitator(p) {
                return reject(Forbidden, "Only the facilitator can do that.");
            }
            Ok(Ok(p))
        }
    }
}

fn text(raw: &Private, lines: Lines, max_chars: usize, what: &str) -> Result<Private, Rejection> {
    normalize(raw, lines, max_chars).or_else(|problem| match problem {
        TextProblem::Empty => reject(Invalid, format!("The {what} is empty.")),
        TextProblem::TooLong { max_chars } => {
            reject(Invalid, format!("The {what} is longer than {max_chars} characters."))
        }
    })
}

fn create_board(title: &Private, settings: &Settings) -> Result<Vec<Event>, Rejection> {
    let title = text(title, Lines::One, MAX_TITLE_CHARS, "title")?;
    if let Some(problem) = settings.problem() {
        return reject(Invalid, problem);
    }
    Ok(vec![Event::BoardCreated { title, settings: settings.clone() }])
}

struct Rules<'a> {
    board: &'a Board,
    now: UnixMillis,
}

impl Rules<'_> {
    fn need_phase(&self, phases: &[Phase], doing: &str) -> Result<(), Rejection> {
        if phases.contains(&self.board.phase) {
            return Ok(());
        }
        let names: Vec<&str> = phases.iter().map(|p| p.label()).collect();
        reject(
            WrongPhase,
            format!("{doing} only while {}; the meeting is in {}.", names.join(" or "), self.board.phase.label()),
        )
    }

    fn topic(&self, topic: TopicId) -> Result<&crate::board::Topic, Rejection> {
        self.board.topics.get(&topic).map_or_else(|| reject(NotFound, "That topic does not exist."), Ok)
    }

    fn current(&self) -> Result<TopicId, Rejection> {
        self.board.current_topic().map_or_else(|| reject(Conflict, "No topic is under discussion."), Ok)
    }

    /// The first topic in the queue becomes current, if there is one (skipping `except`).
    fn select_next(&self, except: Option<TopicId>) -> Option<Event> {
        let next = self.board.queue().into_iter().map(|t| t.id).find(|t| Some(*t) != except)?;
        Some(Event::TopicSelected { topic: next, previous: None })
    }

    fn join(&self, name: &Private, role: Role) -> Result<Vec<Event>, Rejection> {
        let name = text(name, Lines::One, MAX_NAME_CHARS, "name")?;
        // The facilitator link always means the same person, on any device.
        if role == Role::Facilitator
            && let Some(f) = self.board.facilitator()
        {
            let same = self.board.people.get(&f).is_some_and(|p| p.name == name);
            return Ok(if same { vec![] } else { vec![Event::PersonRenamed { person: f, name }] });
        }
        if self.board.people.len() >= MAX_PEOPLE {
            return reject(Limit, format!("This board is full ({MAX_PEOPLE} people)."));
        }
        Ok(vec![Event::PersonJoined { person: PersonId(self.board.last_person + 1), name, role }])
    }

    fn end_timebox(&self) -> Result<Vec<Event>, Rejection> {
        match self.board.timer {
            Timer::Running { deadline } if self.now >= deadline => {
                Ok(vec![Event::TimeboxEnded { topic: self.current()? }])
            }
            Timer::Running { .. } => reject(Conflict, "The timebox has not ended yet."),
            _ => reject(Conflict, "The timer is not running."),
        }
    }

    fn add_topic(&self, author: PersonId, raw: &Private) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Gathering], "Topics can be added")?;
        let text = text(raw, Lines::One, MAX_TOPIC_CHARS, "topic")?;
        let mine = self.board.topics.values().filter(|t| t.author == Some(author)).count();
        if mine >= MAX_TOPICS_PER_PERSON {
            return reject(Limit, format!("You can bring at most {MAX_TOPICS_PER_PERSON} topics."));
        }
        if self.board.topics.len() >= MAX_TOPICS {
            return reject(Limit, format!("The board holds at most {MAX_TOPICS} topics."));
        }
        Ok(vec![Event::TopicAdded {
            topic: TopicId(self.board.last_topic + 1),
            author: Some(author),
            text: Some(text),
            hidden: self.board.settings.hide_topics_until_revealed,
        }])
    }

    fn place_vote(&self, person: PersonId, topic: TopicId) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Voting], "Votes can be placed")?;
        if self.topic(topic)?.status == TopicStatus::Discussed {
            return reject(Conflict, "That topic has already been discussed.");
        }
        let s = &self.board.settings;
        if self.board.votes_used(person) >= s.votes_per_person {
            return reject(
                VoteLimit,
                format!("You have used all {} of your votes. Remove one to vote elsewhere.", s.votes_per_person),
            );
        }
        if self.board.votes_on(person, topic) >= s.max_votes_per_topic {
            return reject(VoteLimit, format!("At most {} of your votes can go on one topic.", s.max_votes_per_topic));
        }
        let totals_public = self.board.totals_public();
        Ok(vec![Event::VotePlaced { person: Some(person), topic: Some(topic), totals_public }])
    }

    fn remove_vote(&self, person: PersonId, topic: TopicId) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Voting], "Votes can be removed")?;
        self.topic(topic)?;
        if self.board.votes_on(person, topic) == 0 {
            return reject(Conflict, "You have no vote on that topic.");
        }
        let totals_public = self.board.totals_public();
        Ok(vec![Event::VoteRemoved { person: Some(person), topic: Some(topic), totals_public }])
    }

    fn answer_check_in(&self, person: PersonId, answer: crate::event::Answer) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "Check-ins are answered")?;
        let Some(check_in) = &self.board.check_in else {
            return reject(Conflict, "There is no check-in open.");
        };
        let previous = check_in.answers.get(&person).copied();
        if previous == Some(answer) {
            return Ok(vec![]);
        }
        Ok(vec![Event::CheckInAnswered { person: Some(person), answer, previous }])
    }

    /// Authors may change their own topics while they wait (gathering or voting); the facilitator
    /// may change any topic they can see, in any phase.
    fn may_change_topic(&self, person: PersonId, topic: TopicId) -> Result<&crate::board::Topic, Rejection> {
        let t = self.topic(topic)?;
        if self.board.is_facilitator(person) {
            if t.hidden && t.author != Some(person) {
                return reject(Conflict, "That topic is hidden until you reveal topics.");
            }
            return Ok(t);
        }
        if t.author != Some(person) {
            return reject(Forbidden, "You can only change your own topics.");
        }
        self.need_phase(&[Phase::Gathering, Phase::Voting], "You can change your topics")?;
        if t.status != TopicStatus::Queued {
            return reject(Conflict, "That topic is no longer waiting to be discussed.");
        }
        Ok(t)
    }

    fn edit_topic(&self, person: PersonId, topic: TopicId, raw: &Private) -> Result<Vec<Event>, Rejection> {
        let t = self.may_change_topic(person, topic)?;
        let text = text(raw, Lines::One, MAX_TOPIC_CHARS, "topic")?;
        Ok(vec![Event::TopicEdited { topic, author: t.author, text: Some(text), hidden: t.hidden }])
    }

    fn remove_topic(&self, person: PersonId, topic: TopicId) -> Result<Vec<Event>, Rejection> {
        let t = self.may_change_topic(person, topic)?;
        let mut events = vec![Event::TopicRemoved { topic }];
        if t.status == TopicStatus::Current && self.board.phase == Phase::Discussing {
            events.extend(self.select_next(Some(topic)));
        }
        Ok(events)
    }

    fn change_settings(&self, settings: &Settings) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Gathering], "Settings can be changed")?;
        if let Some(problem) = settings.problem() {
            return reject(Invalid, problem);
        }
        let old = &self.board.settings;
        let votes_changed = (old.votes_per_person, old.max_votes_per_topic, old.hide_totals_until_voting_closes)
            != (settings.votes_per_person, settings.max_votes_per_topic, settings.hide_totals_until_voting_closes);
        if votes_changed && !self.board.ballots.is_empty() {
            return reject(Conflict, "Votes have been placed, so the voting settings can no longer change.");
        }
        let mut events = vec![Event::SettingsChanged { settings: settings.clone() }];
        if old.hide_topics_until_revealed && !settings.hide_topics_until_revealed {
            events.extend(self.reveal_hidden());
        }
        Ok(events)
    }

    fn reveal_hidden(&self) -> Option<Event> {
        let topics: Vec<RevealedTopic> = self
            .board
            .topics
            .values()
            .filter(|t| t.hidden)
            .filter_map(|t| Some(RevealedTopic { topic: t.id, text: t.text.clone()? }))
            .collect();
        (!topics.is_empty()).then_some(Event::TopicsRevealed { topics })
    }

    fn reveal_topics(&self) -> Result<Vec<Event>, Rejection> {
        self.reveal_hidden().map(|e| vec![e]).map_or_else(|| reject(Conflict, "There are no hidden topics."), Ok)
    }

    fn change_phase(&self, to: Phase) -> Result<Vec<Event>, Rejection> {
        let from = self.board.phase;
        if to == from {
            return reject(Conflict, format!("The meeting is already in {}.", to.label()));
        }
        let changed = Event::PhaseChanged { from, to };
        if from.next() == Some(to) {
            return Ok(match to {
                Phase::Voting => {
                    if self.board.topics.is_empty() {
                        return reject(Conflict, "Add at least one topic before voting.");
                    }
                    self.reveal_hidden().into_iter().chain([changed]).collect()
                }
                Phase::Discussing => {
                    let mut events = vec![changed];
                    if !self.board.totals_public() {
                        let totals =
                            self.board.topics.values().map(|t| TopicVotes { topic: t.id, votes: t.votes }).collect();
                        events.push(Event::VoteTotalsRevealed { totals });
                    }
                    if self.board.current_topic().is_none() {
                        events.extend(self.select_next(None));
                    }
                    events
                }
                // Leaving the discussion ends the current topic's discussion.
                Phase::WrapUp => self
                    .board
                    .current_topic()
                    .map(|topic| Event::TopicDiscussed { topic })
                    .into_iter()
                    .chain([changed])
                    .collect(),
                _ => vec![changed],
            });
        }
        if from.previous() == Some(to) {
            return Ok(match (from, self.board.timer) {
                // Reopening voting freezes the clock; nothing else is lost.
                (Phase::Discussing, Timer::Running { deadline }) => {
                    vec![Event::TimerPaused { remaining_ms: self.now.until(deadline) }, changed]
                }
                (Phase::WrapUp, _) => [changed].into_iter().chain(self.select_next(None)).collect(),
                _ => vec![changed],
            });
        }
        reject(Invalid, "The meeting moves one phase at a time.")
    }

    fn merge_topics(&self, from: TopicId, into: TopicId, raw: Option<&Private>) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Gathering, Phase::Voting, Phase::Discussing], "Topics can be merged")?;
        if from == into {
            return reject(Invalid, "A topic cannot be merged into itself.");
        }
        let (f, i) = (self.topic(from)?, self.topic(into)?);
        if f.hidden || i.hidden {
            return reject(Conflict, "Reveal topics before merging them.");
        }
        if f.status != TopicStatus::Queued || i.status == TopicStatus::Discussed {
            return reject(Conflict, "Only topics still waiting can be merged away, and not into a discussed one.");
        }
        let text = raw.map(|raw| text(raw, Lines::One, MAX_TOPIC_CHARS, "topic")).transpose()?;
        let cap = self.board.settings.max_votes_per_topic;
        let into_votes = self.board.ballots.values().map(|b| {
            let (a, b) = (b.get(&into).copied().unwrap_or(0), b.get(&from).copied().unwrap_or(0));
            (a + b).min(cap)
        });
        Ok(vec![Event::TopicsMerged {
            from,
            into,
            text,
            into_votes: Some(into_votes.sum()),
            totals_public: self.board.totals_public(),
        }])
    }

    fn select_topic(&self, topic: TopicId) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "Topics can be picked for discussion")?;
        if self.topic(topic)?.status != TopicStatus::Queued {
            return reject(Conflict, "That topic is not waiting to be discussed.");
        }
        Ok(vec![Event::TopicSelected { topic, previous: self.board.current_topic() }])
    }

    fn start_timer(&self) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "The timer runs")?;
        let topic = self.current()?;
        match self.board.timer {
            Timer::Idle => {
                Ok(vec![Event::TimerStarted { topic, deadline: self.now.plus_ms(self.board.settings.timebox_ms) }])
            }
            Timer::Paused { .. } => reject(Conflict, "The timer is paused; resume it instead."),
            Timer::Expired => reject(Conflict, "The timebox has ended; extend it or move on."),
            Timer::Running { .. } => reject(Conflict, "The timer is already running."),
        }
    }

    fn pause_timer(&self) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "The timer runs")?;
        match self.board.timer {
            Timer::Running { deadline } if self.now < deadline => {
                Ok(vec![Event::TimerPaused { remaining_ms: self.now.until(deadline) }])
            }
            Timer::Running { .. } | Timer::Expired => reject(Conflict, "The timebox has already ended."),
            _ => reject(Conflict, "The timer is not running."),
        }
    }

    fn resume_timer(&self) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "The timer runs")?;
        match self.board.timer {
            Timer::Paused { remaining_ms } => {
                Ok(vec![Event::TimerResumed { deadline: self.now.plus_ms(remaining_ms) }])
            }
            _ => reject(Conflict, "The timer is not paused."),
        }
    }

    fn extend_timer(&self) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "The timer runs")?;
        let by = self.board.settings.extension_ms();
        let timer = match self.board.timer {
            Timer::Running { deadline } => Timer::Running { deadline: deadline.max(self.now).plus_ms(by) },
            Timer::Paused { remaining_ms } => Timer::Paused { remaining_ms: remaining_ms.saturating_add(by) },
            Timer::Expired => Timer::Running { deadline: self.now.plus_ms(by) },
            Timer::Idle => return reject(Conflict, "The timer is not running."),
        };
        Ok(vec![Event::TimerExtended { timer }])
    }

    fn stop_timer(&self) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "The timer runs")?;
        if self.board.timer == Timer::Idle {
            return reject(Conflict, "The timer is not running.");
        }
        Ok(vec![Event::TimerStopped])
    }

    fn move_on(&self) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing], "Moving on happens")?;
        let topic = self.current()?;
        Ok([Event::TopicDiscussed { topic }].into_iter().chain(self.select_next(Some(topic))).collect())
    }

    fn discussed_or_current(&self, topic: TopicId) -> Result<(), Rejection> {
        if self.topic(topic)?.status == TopicStatus::Queued {
            return reject(Conflict, "That topic has not been discussed yet.");
        }
        Ok(())
    }

    fn set_takeaway(&self, topic: TopicId, raw: &Private) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing, Phase::WrapUp], "Takeaways are written")?;
        self.discussed_or_current(topic)?;
        let text = text(raw, Lines::Many, MAX_TAKEAWAY_CHARS, "takeaway")?;
        Ok(vec![Event::TakeawaySet { topic, text }])
    }

    fn add_action_item(
        &self,
        topic: TopicId,
        raw: &Private,
        owner: PersonId,
        due: Option<&str>,
    ) -> Result<Vec<Event>, Rejection> {
        self.need_phase(&[Phase::Discussing, Phase::WrapUp], "Action items are added")?;
        self.discussed_or_current(topic)?;
        let text = text(raw, Lines::One, MAX_ACTION_ITEM_CHARS, "action item")?;
        if !self.board.people.contains_key(&owner) {
            return reject(NotFound, "The owner is not on this board.");
        }
        if due.is_some_and(|due| !is_calendar_date(due)) {
            return reject(Invalid, "The due date must be a date written YYYY-MM-DD.");
        }
        if self.board.action_items.len() >= MAX_ACTION_ITEMS {
            return reject(Limit, format!("The board holds at most {MAX_ACTION_ITEMS} action items."));
        }
        let item = ActionItem {
            id: ActionItemId(self.board.last_action_item + 1),
            topic,
            text,
            owner,
            due: due.map(str::to_owned),
        };
        Ok(vec![Event::ActionItemAdded { item }])
    }

    fn hand_over(&self, from: PersonId, to: PersonId) -> Result<Vec<Event>, Rejection> {
        match self.board.people.get(&to) {
            None => reject(NotFound, "That person is not on this board."),
            Some(_) if to == from => reject(Invalid, "You are the facilitator already."),
            Some(_) => Ok(vec![Event::FacilitatorChanged { from, to }]),
        }
    }

    fn remove_person(&self, person: PersonId) -> Result<Vec<Event>, Rejection> {
        match self.board.people.get(&person) {
            None => reject(NotFound, "That person is not on this board."),
            Some(p) if p.role == Role::Facilitator => reject(Invalid, "The facilitator cannot be removed."),
            Some(_) => Ok(vec![Event::PersonRemoved { person }]),
        }
    }

    fn remove_action_item(&self, id: ActionItemId) -> Result<Vec<Event>, Rejection> {
        if !self.board.action_items.contains_key(&id) {
            return reject(NotFound, "That action item does not exist.");
        }
        Ok(vec![Event::ActionItemRemoved { id }])
    }
}

/// `YYYY-MM-DD` naming a real day of the Gregorian calendar.
pub fn is_calendar_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit()))?.parse::<u32>().ok();
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}
