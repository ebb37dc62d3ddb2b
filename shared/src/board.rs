//! The board: the state of one meeting, and [`Board::apply`], which folds one event into it.
//!
//! `apply` holds no rules. It trusts the event (the rules ran in [`crate::decide`] before the
//! event existed) and never panics, even on an event that makes no sense for the state, because
//! the browser folds the same events with this same code. The board a recipient folds from its
//! redacted events equals [`Board::view_for`] of the server's board; a property test holds the
//! two together.

use crate::event::{ActionItem, Answer, Event, Phase, Role, Sequenced, Timer, Viewer};
use crate::ids::{ActionItemId, PersonId, Seq, TopicId, UnixMillis};
use crate::settings::Settings;
use crate::text::Private;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Someone on the board.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub name: Private,
    pub role: Role,
}

/// Where a topic is in the meeting.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicStatus {
    /// Waiting to be discussed.
    Queued,
    /// Under discussion now (at most one topic).
    Current,
    /// Done.
    Discussed,
}

/// A topic as its holder may see it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Topic {
    pub id: TopicId,
    /// `None` when the topic is hidden from this holder.
    pub text: Option<Private>,
    /// Known only to the server and to the author.
    pub author: Option<PersonId>,
    /// Not yet revealed by the facilitator.
    pub hidden: bool,
    /// The total while totals are public; while they are hidden, the holder's own votes.
    pub votes: u32,
    pub status: TopicStatus,
    pub takeaway: Option<Private>,
    /// When the discussion of this topic ended: wrap-ups list topics in the order discussed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discussed_at: Option<Seq>,
}

/// Check-in answers once a timebox ended.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct CheckIn {
    pub up: u32,
    pub sideways: u32,
    pub down: u32,
    /// Who answered what: the server knows everyone's, a person only their own.
    pub answers: BTreeMap<PersonId, Answer>,
}

impl CheckIn {
    fn count(&mut self, answer: Answer) -> &mut u32 {
        match answer {
            Answer::Up => &mut self.up,
            Answer::Sideways => &mut self.sideways,
            Answer::Down => &mut self.down,
        }
    }

    pub fn total(&self) -> u32 {
        self.up + self.sideways + self.down
    }
}

/// One meeting's board, as the server holds it or as one recipient sees it.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Board {
    /// The last event folded in.
    pub seq: Seq,
    /// `false` until `BoardCreated`.
    pub created: bool,
    pub title: Private,
    pub settings: Settings,
    pub phase: Phase,
    pub people: BTreeMap<PersonId, Person>,
    pub topics: BTreeMap<TopicId, Topic>,
    /// Votes per person per topic: the server knows all, a person only their own.
    pub ballots: BTreeMap<PersonId, BTreeMap<TopicId, u32>>,
    /// Set once totals were revealed; they stay public after that.
    pub totals_revealed: bool,
    pub timer: Timer,
    /// Open from the end of a timebox until the facilitator extends or moves on.
    pub check_in: Option<CheckIn>,
    pub action_items: BTreeMap<ActionItemId, ActionItem>,
    /// Highest ids handed out so far; ids are never reused.
    pub last_person: u32,
    pub last_topic: u32,
    pub last_action_item: u32,
}

/// A client saw an event that does not directly follow what it has: it must resync.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Gap {
    pub have: Seq,
    pub got: Seq,
}

impl Board {
    /// Rebuilds a board from its whole history.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Sequenced>) -> Board {
        let mut board = Board::default();
        for e in events {
            board.apply(e);
        }
        board
    }

    /// Numbers freshly decided events so that they follow this board.
    pub fn sequence(&self, events: Vec<Event>) -> Vec<Sequenced> {
        let mut seq = self.seq;
        events
            .into_iter()
            .map(|event| {
                seq = seq.next();
                Sequenced { seq, event }
            })
            .collect()
    }

    /// Folds an event in only if it is the very next one; a client uses this to notice gaps.
    pub fn fold(&mut self, e: &Sequenced) -> Result<(), Gap> {
        if e.seq != self.seq.next() {
            return Err(Gap { have: self.seq, got: e.seq });
        }
        self.apply(e);
        Ok(())
    }

    /// Folds one event into the board. No rules, no panics.
    pub fn apply(&mut self, e: &Sequenced) {
        self.seq = e.seq;
        match &e.event {
            Event::BoardCreated { title, settings } => {
                self.created = true;
                self.title = title.clone();
                self.settings = settings.clone();
                self.phase = Phase::Gathering;
            }
            Event::PersonJoined { person, name, role } => {
                self.last_person = self.last_person.max(person.0);
                self.people.insert(*person, Person { id: *person, name: name.clone(), role: *role });
            }
            Event::FacilitatorChanged { from, to } => {
                for (person, role) in [(from, Role::Participant), (to, Role::Facilitator)] {
                    if let Some(p) = self.people.get_mut(person) {
                        p.role = role;
                    }
                }
            }
            // Links are the server's business: nothing on the board changes.
            Event::ParticipantLinkRotated { .. } => {}
            Event::BoardDeleted => {
                *self = Board { seq: self.seq, ..Board::default() };
            }
            Event::PersonRemoved { person } => {
                self.people.remove(person);
            }
            Event::PersonRenamed { person, name } => {
                if let Some(p) = self.people.get_mut(person) {
                    p.name = name.clone();
                }
            }
            Event::SettingsChanged { settings } => self.settings = settings.clone(),
            Event::PhaseChanged { to, .. } => self.phase = *to,
            Event::TopicAdded { topic, author, text, hidden } => {
                self.last_topic = self.last_topic.max(topic.0);
                self.topics.insert(
                    *topic,
                    Topic {
                        id: *topic,
                        text: text.clone(),
                        author: *author,
                        hidden: *hidden,
                        votes: 0,
                        status: TopicStatus::Queued,
                        takeaway: None,
                        discussed_at: None,
                    },
                );
            }
            Event::TopicEdited { topic, text, .. } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    t.text = text.clone();
                }
            }
            Event::TopicRemoved { topic } => self.remove_topic(*topic),
            Event::TopicsRevealed { topics } => {
                for r in topics {
                    if let Some(t) = self.topics.get_mut(&r.topic) {
                        t.text = Some(r.text.clone());
                        t.hidden = false;
                    }
                }
            }
            Event::TopicsMerged { from, into, text, into_votes, .. } => {
                let cap = self.settings.max_votes_per_topic;
                for ballot in self.ballots.values_mut() {
                    if let Some(moved) = ballot.remove(from) {
                        let n = ballot.entry(*into).or_insert(0);
                        *n = n.saturating_add(moved).min(cap);
                    }
                }
                self.remove_topic(*from);
                let known = self.known_votes(*into);
                if let Some(t) = self.topics.get_mut(into) {
                    if let Some(text) = text {
                        t.text = Some(text.clone());
                    }
                    t.votes = into_votes.unwrap_or(known);
                }
            }
            Event::VotePlaced { person, topic, .. } => {
                if let Some(topic) = topic {
                    if let Some(t) = self.topics.get_mut(topic) {
                        t.votes = t.votes.saturating_add(1);
                    }
                    if let Some(person) = person {
                        *self.ballots.entry(*person).or_default().entry(*topic).or_insert(0) += 1;
                    }
                }
            }
            Event::VoteRemoved { person, topic, .. } => {
                if let Some(topic) = topic {
                    if let Some(t) = self.topics.get_mut(topic) {
                        t.votes = t.votes.saturating_sub(1);
                    }
                    if let Some(ballot) = person.and_then(|p| self.ballots.get_mut(&p))
                        && let Some(n) = ballot.get_mut(topic)
                    {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            ballot.remove(topic);
                        }
                    }
                    self.ballots.retain(|_, b| !b.is_empty());
                }
            }
            Event::VoteTotalsRevealed { totals } => {
                self.totals_revealed = true;
                for tv in totals {
                    if let Some(t) = self.topics.get_mut(&tv.topic) {
                        t.votes = tv.votes;
                    }
                }
            }
            Event::TopicSelected { topic, previous } => {
                if let Some(p) = previous.and_then(|p| self.topics.get_mut(&p)) {
                    p.status = TopicStatus::Queued;
                }
                if let Some(t) = self.topics.get_mut(topic) {
                    t.status = TopicStatus::Current;
                }
                self.reset_timer();
            }
            Event::TimerStarted { deadline, .. } => {
                self.timer = Timer::Running { deadline: *deadline };
                self.check_in = None;
            }
            Event::TimerPaused { remaining_ms } => self.timer = Timer::Paused { remaining_ms: *remaining_ms },
            Event::TimerResumed { deadline } => self.timer = Timer::Running { deadline: *deadline },
            Event::TimerExtended { timer } => {
                self.timer = *timer;
                self.check_in = None;
            }
            Event::TimerStopped => self.reset_timer(),
            Event::TimeboxEnded { .. } => {
                self.timer = Timer::Expired;
                self.check_in = Some(CheckIn::default());
            }
            Event::CheckInAnswered { person, answer, previous } => {
                if let Some(c) = &mut self.check_in {
                    if let Some(prev) = previous {
                        let n = c.count(*prev);
                        *n = n.saturating_sub(1);
                    }
                    *c.count(*answer) += 1;
                    if let Some(p) = person {
                        c.answers.insert(*p, *answer);
                    }
                }
            }
            Event::TopicDiscussed { topic } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    t.status = TopicStatus::Discussed;
                    t.discussed_at = Some(e.seq);
                }
                self.reset_timer();
            }
            Event::TakeawaySet { topic, text } => {
                if let Some(t) = self.topics.get_mut(topic) {
                    t.takeaway = Some(text.clone());
                }
            }
            Event::ActionItemAdded { item } => {
                self.last_action_item = self.last_action_item.max(item.id.0);
                self.action_items.insert(item.id, item.clone());
            }
            Event::ActionItemRemoved { id } => {
                self.action_items.remove(id);
            }
        }
    }

    fn reset_timer(&mut self) {
        self.timer = Timer::Idle;
        self.check_in = None;
    }

    fn remove_topic(&mut self, topic: TopicId) {
        if let Some(t) = self.topics.remove(&topic)
            && t.status == TopicStatus::Current
        {
            self.reset_timer();
        }
        for ballot in self.ballots.values_mut() {
            ballot.remove(&topic);
        }
        self.ballots.retain(|_, b| !b.is_empty());
        self.action_items.retain(|_, a| a.topic != topic);
    }

    /// The sum of the votes on `topic` in the ballots this holder knows.
    fn known_votes(&self, topic: TopicId) -> u32 {
        self.ballots.values().filter_map(|b| b.get(&topic)).sum()
    }

    /// What `viewer` may see of this board: the snapshot counterpart of [`Event::visible_to`].
    pub fn view_for(&self, viewer: Viewer) -> Board {
        let mut b = self.clone();
        let me = match viewer {
            Viewer::Person(p) => Some(p),
            Viewer::Public => None,
        };
        for t in b.topics.values_mut() {
            if t.author != me || me.is_none() {
                t.author = None;
                if t.hidden {
                    t.text = None;
                }
            }
        }
        b.ballots.retain(|p, _| Some(*p) == me);
        if !b.totals_public() {
            for t in b.topics.values_mut() {
                t.votes = me.and_then(|p| self.ballots.get(&p)).and_then(|bal| bal.get(&t.id)).copied().unwrap_or(0);
            }
        }
        if let Some(c) = &mut b.check_in {
            c.answers.retain(|p, _| Some(*p) == me);
        }
        b
    }

    // ----- Derived facts, used by the rules and by the views. -----

    /// Vote totals reach everyone: the setting allows it, or they were revealed.
    pub fn totals_public(&self) -> bool {
        !self.settings.hide_totals_until_voting_closes || self.totals_revealed
    }

    pub fn facilitator(&self) -> Option<PersonId> {
        self.people.values().find(|p| p.role == Role::Facilitator).map(|p| p.id)
    }

    pub fn is_facilitator(&self, person: PersonId) -> bool {
        self.people.get(&person).is_some_and(|p| p.role == Role::Facilitator)
    }

    pub fn current_topic(&self) -> Option<TopicId> {
        self.topics.values().find(|t| t.status == TopicStatus::Current).map(|t| t.id)
    }

    /// Topics waiting to be discussed, in discussion order: most votes first, older first on ties.
    pub fn queue(&self) -> Vec<&Topic> {
        let mut q: Vec<&Topic> = self.topics.values().filter(|t| t.status == TopicStatus::Queued).collect();
        q.sort_by(|a, b| b.votes.cmp(&a.votes).then(a.id.cmp(&b.id)));
        q
    }

    /// Discussed topics, in the order their discussions ended.
    pub fn discussed(&self) -> Vec<&Topic> {
        let mut done: Vec<&Topic> = self.topics.values().filter(|t| t.status == TopicStatus::Discussed).collect();
        done.sort_by_key(|t| (t.discussed_at, t.id));
        done
    }

    /// Votes `person` has placed in all.
    pub fn votes_used(&self, person: PersonId) -> u32 {
        self.ballots.get(&person).map_or(0, |b| b.values().sum())
    }

    /// Votes `person` has placed on `topic`.
    pub fn votes_on(&self, person: PersonId, topic: TopicId) -> u32 {
        self.ballots.get(&person).and_then(|b| b.get(&topic)).copied().unwrap_or(0)
    }

    /// Votes `person` may still place.
    pub fn votes_left(&self, person: PersonId) -> u32 {
        self.settings.votes_per_person.saturating_sub(self.votes_used(person))
    }

    /// When the running timer runs out, if it is running.
    pub fn deadline(&self) -> Option<UnixMillis> {
        match self.timer {
            Timer::Running { deadline } => Some(deadline),
            _ => None,
        }
    }

    pub fn action_items_for(&self, topic: TopicId) -> impl Iterator<Item = &ActionItem> {
        self.action_items.values().filter(move |a| a.topic == topic)
    }
}
