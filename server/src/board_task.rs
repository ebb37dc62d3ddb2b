//! One task per live board. It owns the board's state, so no lock guards it: every change, every
//! subscription and every timer expiry is handled in turn by this task, which is what gives each
//! board a single order of events.
//!
//! For each command it runs `decide`, stores the events (compare-and-append), applies them, and
//! fans them out: each subscriber gets the copy it may see
//! ([`minim_shared::Event::visible_to`]), serialised once per class of recipient. Commands that
//! queued up while the board waited for the store are decided one after another and stored in one
//! append (`BoardTask::execute_queued`). Subscribers have bounded queues; one that is full is
//! dropped from the fan-out, and its session resubscribes from the last sequence number it sent, so
//! a slow client is resynced and never stalls the others.
//!
//! With a shared store (Redis), the same board may be live on several nodes, each with a task
//! like this one. The store's compare-and-append gives the board one order: a task whose append
//! finds the log moved on reads what the others wrote, decides again and retries. The fan-out
//! ([`crate::fanout`]) hands each task the other nodes' appends; a task that finds a gap in their
//! sequence numbers, or (once it has heard nothing for [`REPAIR_INTERVAL`] while people are
//! connected) a log longer than its copy, reads what it missed from the log. When the store no
//! longer holds the history its copy came from (an epoch mismatch: Redis lost its data, or another
//! node stored the board again) it stores the board again from its copy, or adopts what the store
//! now holds and resyncs its clients with snapshots.

use crate::auth::key_hash;
use crate::clock;
use crate::metrics::Metrics;
use crate::outbox::{Answers, Queue, Refused};
use crate::store::{BoardMeta, Epoch, EventLog, StoreError, StoredBoard};
use bytestring::ByteString;
use minim_shared::api::{Grant, LinkKey};
use minim_shared::wire::{ErrorCode, Identity, PROTOCOL_VERSION, RequestId, ServerMessage};
use minim_shared::{Actor, Board, BoardId, Command, PersonId, Private, Rejection, Seq, Sequenced, Viewer, decide};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Requests waiting for a board task. Bounded: callers wait (briefly) when a board is busy.
const REQUEST_QUEUE: usize = 256;
/// Messages waiting to be written to one client. A client further behind than this is resynced.
pub const OUTBOUND_QUEUE: usize = 1024;
/// Resuming clients that missed more events than this get a snapshot instead (it is smaller).
const MAX_CATCH_UP_EVENTS: usize = 256;
/// A board with no one connected and no running timer stops its task after this long.
const IDLE_BOARD: Duration = Duration::from_secs(10 * 60);
/// At most this many commands waiting in a board's queue are decided together and stored in one
/// append ([`BoardTask::execute_queued`]).
const BATCH: usize = 64;
/// How often a failed append is retried after reading what another writer appended first.
const CONFLICT_RETRIES: usize = 10;
/// With a shared store, how long after it last heard of new events a board with people connected
/// checks the log for events the fan-out did not bring (the last announcement of a burst may be the
/// one that was lost), and how often while it hears nothing.
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(5);
/// Presence ("who is connected") changes are sent at most this often. A town hall's 2,000 people
/// connecting one after another would otherwise send each of them 2,000 ever longer lists; a
/// newcomer gets the list at once, everyone else the coalesced change.
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(250);
/// How soon a timebox end that could not be recorded (the store unavailable) is tried again.
const TIMEBOX_RETRY: Duration = Duration::from_secs(1);
/// A board within this long of its expiry in the store counts as expired: it is not stored again.
const EXPIRY_MARGIN: Duration = Duration::from_secs(2);

/// A message ready to be written to a client, serialised once and shared by every recipient.
#[derive(Clone, Debug)]
pub struct Outbound {
    /// The sequence number the client has folded up to once it reads this (events, snapshots).
    pub seq: Option<Seq>,
    pub text: ByteString,
    /// When it was made, for the time it waits for each connection's writer.
    pub made: Instant,
}

impl Outbound {
    pub fn message(msg: &ServerMessage) -> Outbound {
        let seq = match msg {
            ServerMessage::Event(e) => Some(e.seq),
            ServerMessage::Snapshot { board } => Some(board.seq),
            _ => None,
        };
        // Server messages are plain data; serialising them cannot fail.
        let text = serde_json::to_string(msg).expect("server messages always serialise");
        Outbound { seq, text: ByteString::from(text), made: Instant::now() }
    }
}

/// A connection's numbers for the board task, handed out in order (never random).
pub type ConnId = u64;

/// A connection following the board.
pub struct Subscriber {
    pub conn: ConnId,
    pub identity: Identity,
    pub tx: Queue,
}

impl Subscriber {
    fn person(&self) -> Option<PersonId> {
        match self.identity {
            Identity::Person { person, .. } => Some(person),
            Identity::Projector => None,
        }
    }

    fn viewer(&self) -> Viewer {
        self.person().map_or(Viewer::Public, Viewer::Person)
    }
}

/// Why a request to a board did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("rejected: {0}")]
    Rejected(Rejection),
    #[error("the board does not exist")]
    NotFound,
    #[error("the board was deleted")]
    Deleted,
    #[error("this link is not valid for this board")]
    BadKey,
    #[error("you are not on this board")]
    NotMember,
    #[error("storage is unavailable")]
    Unavailable,
    /// The task stopped before answering; the hub starts a new one and the caller retries.
    #[error("the board task stopped")]
    Gone,
}

/// The outcome of joining through a link.
pub struct Admitted {
    pub grant: Grant,
    pub person: Option<PersonId>,
}

/// A client's command's way back: its `accepted` or `rejected` goes to the connection's writer,
/// behind the events the board queued for it, without waking its session.
pub struct ClientReply {
    pub id: RequestId,
    pub conn: ConnId,
    pub answers: Answers,
    /// When the command's frame arrived.
    pub arrived: Instant,
}

impl ClientReply {
    fn send(self, kind: &'static str, result: Result<Seq, BoardError>, metrics: &Metrics) {
        metrics.stages.answered.since(self.arrived);
        let answer = match result {
            Ok(seq) => {
                Metrics::add(&metrics.commands_accepted, 1);
                ServerMessage::Accepted { id: self.id, seq }
            }
            Err(e) => {
                let (code, message) = wire_error(&e);
                metrics.rejected(code);
                tracing::debug!(conn = self.conn, command = kind, code = ?code, "command rejected");
                ServerMessage::Rejected { id: self.id, code, message }
            }
        };
        self.answers.send(&answer);
    }
}

/// A client's command waiting for its board.
struct Queued {
    actor: Actor,
    command: Command,
    reply: ClientReply,
}

enum Request {
    Execute {
        actor: Actor,
        command: Command,
        reply: ClientReply,
    },
    Join {
        key: LinkKey,
        name: Option<Private>,
        reply: oneshot::Sender<Result<Admitted, BoardError>>,
    },
    Subscribe {
        sub: Subscriber,
        since: Option<Seq>,
        reply: oneshot::Sender<Result<(), BoardError>>,
    },
    Grant {
        key: LinkKey,
        reply: oneshot::Sender<Result<Grant, BoardError>>,
    },
    RotateParticipantLink {
        actor: Actor,
        reply: oneshot::Sender<Result<LinkKey, BoardError>>,
    },
    Unsubscribe {
        conn: ConnId,
    },
    /// Another node's append, from the fan-out.
    Published {
        epoch: Epoch,
        events: Vec<Sequenced>,
    },
    /// Announcements may have been missed (the fan-out reconnected): check the log.
    Repair,
    /// The board's retention may have ended: delete it if it has not changed for that long.
    Expire {
        retention: Duration,
    },
}

/// A cheap, cloneable way to talk to a board task.
#[derive(Clone)]
pub struct BoardHandle {
    tx: mpsc::Sender<Request>,
    /// Which task of this board this is (a board may be stopped and started again).
    generation: u64,
    /// Where the task is in the board's history.
    position: Arc<Position>,
}

/// A board task's epoch and head, mirrored for the fan-out: a node hears its own appends from
/// Redis too, and this lets it drop those its board holds already without waking the task.
/// Only the task writes it, with what it holds, so a reader may find it behind the task (the
/// announcement then goes to the task, which drops what it has), never ahead. One lock for both,
/// so that nobody reads a new epoch with the old history's head.
struct Position(std::sync::Mutex<(Epoch, Seq)>);

impl Default for Position {
    /// A task that has not loaded its board yet holds nothing.
    fn default() -> Position {
        Position(std::sync::Mutex::new((Epoch::EMBEDDED, Seq::ZERO)))
    }
}

impl Position {
    fn get(&self) -> (Epoch, Seq) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, epoch: Epoch, seq: Seq) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (epoch, seq);
    }
}

impl BoardHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, BoardError>>) -> Request,
    ) -> Result<T, BoardError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| BoardError::Gone)?;
        answer.await.map_err(|_| BoardError::Gone)?
    }

    pub async fn join(&self, key: LinkKey, name: Option<Private>) -> Result<Admitted, BoardError> {
        self.ask(|reply| Request::Join { key, name, reply }).await
    }

    /// Replaces the participant link, if `actor` may; the new link's key.
    pub async fn rotate_participant_link(&self, actor: Actor) -> Result<LinkKey, BoardError> {
        self.ask(|reply| Request::RotateParticipantLink { actor, reply }).await
    }

    /// What a link's key grants, without joining.
    pub async fn grant(&self, key: LinkKey) -> Result<Grant, BoardError> {
        self.ask(|reply| Request::Grant { key, reply }).await
    }

    /// Starts following the board: `welcome`, then catch-up (events after `since`, or a
    /// snapshot), then live events, all through `sub.tx`.
    pub async fn subscribe(&self, sub: Subscriber, since: Option<Seq>) -> Result<(), BoardError> {
        self.ask(|reply| Request::Subscribe { sub, since, reply }).await
    }

    /// Stops following; best effort (a stopped task has no subscribers anyway).
    pub fn unsubscribe(&self, conn: ConnId) {
        let _ = self.tx.try_send(Request::Unsubscribe { conn });
    }

    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Whether the task holds the board's history in `epoch` up to `head` already.
    pub fn holds(&self, epoch: Epoch, head: Seq) -> bool {
        let (ours, seq) = self.position.get();
        ours == epoch && head <= seq
    }

    /// Hands another node's append to the task. `false` if it could not be queued; the task then
    /// finds the gap by sequence number or at its next check.
    pub fn published(&self, epoch: Epoch, events: Vec<Sequenced>) -> bool {
        self.tx.try_send(Request::Published { epoch, events }).is_ok()
    }
}

/// The registry of live board tasks.
pub struct BoardHub {
    store: Arc<dyn EventLog>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Live tasks by board. A std mutex: held only to look up, insert or remove, never across IO.
    tasks: std::sync::Mutex<HashMap<BoardId, BoardHandle>>,
    generations: std::sync::atomic::AtomicU64,
    shutdown: CancellationToken,
}

impl BoardHub {
    pub fn new(store: Arc<dyn EventLog>, metrics: Arc<Metrics>, shutdown: CancellationToken) -> Arc<BoardHub> {
        Arc::new(BoardHub { store, metrics, tasks: Default::default(), generations: Default::default(), shutdown })
    }

    pub fn store(&self) -> &Arc<dyn EventLog> {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The board's task, started (and loading) if it was not running.
    pub fn handle(self: &Arc<Self>, board: &BoardId) -> BoardHandle {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = tasks.get(board).filter(|h| h.is_alive()) {
            return h.clone();
        }
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handle = BoardHandle { tx, generation, position: Arc::default() };
        tasks.insert(board.clone(), handle.clone());
        let task = BoardTask::new(board.clone(), generation, handle.position.clone(), self.clone(), rx);
        tokio::spawn(task.run());
        handle
    }

    /// Runs `f` against the board's task, starting a new task if the old one stopped meanwhile.
    pub async fn with_board<T, F, Fut>(self: &Arc<Self>, board: &BoardId, f: F) -> Result<T, BoardError>
    where
        F: Fn(BoardHandle) -> Fut,
        Fut: std::future::Future<Output = Result<T, BoardError>>,
    {
        for _ in 0..3 {
            match f(self.handle(board)).await {
                Err(BoardError::Gone) if !self.shutdown.is_cancelled() => continue,
                other => return other,
            }
        }
        Err(BoardError::Unavailable)
    }

    /// Hands a client's command to the board, which answers through `reply`; waits only while the
    /// board's queue is full. Retries on a task that stopped meanwhile, as [`BoardHub::with_board`].
    pub async fn submit(self: &Arc<Self>, board: &BoardId, actor: Actor, command: Command, reply: ClientReply) {
        let kind = command.kind();
        let mut request = Request::Execute { actor, command, reply };
        for _ in 0..3 {
            match self.handle(board).tx.send(request).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => request = back,
            }
            if self.shutdown.is_cancelled() {
                break;
            }
        }
        if let Request::Execute { reply, .. } = request {
            reply.send(kind, Err(BoardError::Unavailable), &self.metrics);
        }
    }

    /// Tells a live board that a connection left (a stopped board has no subscribers anyway).
    pub fn unsubscribe(&self, board: &BoardId, conn: ConnId) {
        let handle = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).get(board).cloned();
        if let Some(handle) = handle {
            handle.unsubscribe(conn);
        }
    }

    pub fn live_boards(&self) -> usize {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The board's task, if it is live on this node (a board that is not loads the log when it
    /// starts, so announcements for it can be dropped).
    pub fn live(&self, board: &BoardId) -> Option<BoardHandle> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).get(board).filter(|h| h.is_alive()).cloned()
    }

    /// Deletes the boards whose last change is longer ago than `retention`, for a store that does
    /// not delete them by itself; boards live on this node wait until nobody follows them.
    pub async fn delete_expired(&self, retention: Duration) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for board in self.store.expired(retention).await? {
            let live = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).get(&board).cloned();
            if let Some(task) = live.filter(BoardHandle::is_alive) {
                // Its task knows whether it changed meanwhile; it deletes the board if not.
                let _ = task.tx.try_send(Request::Expire { retention });
                continue;
            }
            self.store.delete(&board).await?;
            tracing::info!(board = %board, "board deleted: its retention ended");
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Asks every live board to check the log for what it may have missed.
    pub fn repair_all(&self) {
        let handles: Vec<BoardHandle> =
            self.tasks.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for handle in handles {
            // A full queue means the task is busy; it checks the log at its next interval anyway.
            let _ = handle.tx.try_send(Request::Repair);
        }
    }

    fn forget(&self, board: &BoardId, generation: u64) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.get(board).is_some_and(|h| h.generation == generation) {
            tasks.remove(board);
        }
    }
}

struct BoardTask {
    id: BoardId,
    generation: u64,
    /// The epoch and head, as the handles see them (kept up to date by `publish_position`).
    position: Arc<Position>,
    hub: Arc<BoardHub>,
    rx: mpsc::Receiver<Request>,
    /// Requests taken from `rx` but not handled yet; they come before whatever is still in `rx`.
    pending: VecDeque<Request>,
    /// Filled by `load`.
    meta: Option<BoardMeta>,
    /// The history of the board in the store that `events` came from.
    epoch: Epoch,
    /// When the store will delete the board unless it changes (for a store that expires boards).
    expires_at: Option<tokio::time::Instant>,
    /// Set when the board turned out to be gone from the store for good: the task stops.
    gone: bool,
    /// While a participant link is being replaced: the new key's hash, for the event.
    new_participant_key: Option<String>,
    /// When the board last changed (retention counts from there).
    last_change: tokio::time::Instant,
    board: Board,
    /// Every event so far, for catch-up (index `i` holds `Seq(i + 1)`).
    events: Vec<Sequenced>,
    subscribers: Vec<Subscriber>,
    /// Who was connected when presence was last sent.
    presence: BTreeSet<PersonId>,
    /// When the next presence update is due, if who is connected may have changed since.
    presence_due: Option<tokio::time::Instant>,
}

impl BoardTask {
    fn new(
        id: BoardId,
        generation: u64,
        position: Arc<Position>,
        hub: Arc<BoardHub>,
        rx: mpsc::Receiver<Request>,
    ) -> BoardTask {
        BoardTask {
            id,
            generation,
            position,
            hub,
            rx,
            pending: VecDeque::new(),
            meta: None,
            epoch: Epoch::EMBEDDED,
            expires_at: None,
            gone: false,
            new_participant_key: None,
            last_change: tokio::time::Instant::now(),
            board: Board::default(),
            events: vec![],
            subscribers: vec![],
            presence: BTreeSet::new(),
            presence_due: None,
        }
    }

    async fn run(mut self) {
        match self.load().await {
            Ok(true) => {}
            Ok(false) => return self.stop(|| BoardError::NotFound).await,
            Err(StoreError::Deleted) => return self.stop(|| BoardError::Deleted).await,
            Err(e) => {
                Metrics::add(&self.hub.metrics.store_errors, 1);
                tracing::error!(board = %self.id, error = %e, "could not load a board");
                return self.stop(|| BoardError::Unavailable).await;
            }
        }
        // Polled again on every request, so each is made once: a new timer or cancellation future
        // per request would register with (and leave) the timer wheel and the shutdown token's
        // waiter list, which every task on the node shares, for every command.
        let cancelled = self.hub.shutdown.clone().cancelled_owned();
        tokio::pin!(cancelled);
        let (mut timebox, mut idle, mut presence) = (Alarm::new(), Alarm::new(), Alarm::new());
        // The deadline the timebox alarm was set for (the board's clock is the wall clock).
        let mut timebox_deadline = None;
        let mut idle_since = tokio::time::Instant::now();
        let shared = self.hub.store.shared();
        let mut check = tokio::time::interval(REPAIR_INTERVAL);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        check.reset();
        while !self.gone {
            let deadline = self.board.deadline();
            if deadline != timebox_deadline {
                timebox_deadline = deadline;
                timebox.set(deadline.map(|d| tokio::time::Instant::now() + clock::until(d)));
            }
            // A board stops when nobody has followed it for a while and no timer runs.
            let unfollowed = self.subscribers.is_empty() && deadline.is_none();
            idle.set(unfollowed.then(|| idle_since + IDLE_BOARD));
            presence.set(self.presence_due);
            if let Some(request) = self.pending.pop_front() {
                self.handle(request).await;
            } else {
                tokio::select! {
                    request = self.rx.recv() => match request {
                        Some(request) => {
                            self.taken(&request);
                            self.handle(request).await
                        }
                        None => break,
                    },
                    () = timebox.ring() => {
                        // Recorded once: a second attempt finds the timer no longer running.
                        if let Err(e) = self.execute(Actor::System, Command::EndTimebox).await {
                            tracing::debug!(board = %self.id, error = %e, "timebox end not recorded");
                            // The store may be back shortly; try again then rather than at once.
                            timebox.set(Some(tokio::time::Instant::now() + TIMEBOX_RETRY));
                        }
                    }
                    () = idle.ring() => break,
                    _ = check.tick(), if shared && !self.subscribers.is_empty() => {
                        // Only the last announcement of a burst can go missing unnoticed (a lost
                        // one before it shows as a gap in the next), so the log is read once
                        // nothing has been heard of the board for a whole interval: a busy board
                        // does not ask Redis every few seconds for what it already has.
                        let quiet_since = self.last_change + REPAIR_INTERVAL;
                        if tokio::time::Instant::now() >= quiet_since {
                            self.look_for_missed().await;
                        } else {
                            check.reset_at(quiet_since);
                        }
                    }
                    () = presence.ring() => {
                        self.presence_due = None;
                        self.send_presence();
                    }
                    () = &mut cancelled => break,
                }
            }
            if !self.subscribers.is_empty() {
                idle_since = tokio::time::Instant::now();
            }
            // Whatever changed the epoch or the history (a reload, storing the board again).
            self.publish_position();
        }
        self.stop(|| BoardError::Gone).await;
    }

    /// Leaves the hub, then answers whatever is still queued with `error` (callers retry on `Gone`).
    async fn stop(mut self, error: impl Fn() -> BoardError) {
        self.hub.forget(&self.id, self.generation);
        self.rx.close();
        loop {
            let request = match self.pending.pop_front() {
                Some(request) => request,
                None => match self.rx.recv().await {
                    Some(request) => request,
                    None => break,
                },
            };
            match request {
                // A command goes to the board's next task, as a caller would retry it (a
                // board that was deleted or not found answers that there). A command the same
                // session sent after this queue closed may reach that task first.
                Request::Execute { actor, command, reply }
                    if matches!(error(), BoardError::Gone) && !self.hub.shutdown.is_cancelled() =>
                {
                    self.hub.submit(&self.id, actor, command, reply).await;
                }
                Request::Execute { command, reply, .. } => reply.send(command.kind(), Err(error()), &self.hub.metrics),
                Request::Join { reply, .. } => drop(reply.send(Err(error()))),
                Request::Subscribe { reply, .. } => drop(reply.send(Err(error()))),
                Request::Grant { reply, .. } => drop(reply.send(Err(error()))),
                Request::RotateParticipantLink { reply, .. } => drop(reply.send(Err(error()))),
                Request::Unsubscribe { .. } | Request::Published { .. } | Request::Repair | Request::Expire { .. } => {}
            }
        }
    }

    /// Reads the board from the store. `Ok(false)` if it does not exist.
    async fn load(&mut self) -> Result<bool, StoreError> {
        let Some(stored) = self.hub.store.load(&self.id).await? else { return Ok(false) };
        self.meta = Some(stored.meta);
        self.epoch = stored.epoch;
        self.expires_at = stored.expires_in.map(|d| tokio::time::Instant::now() + d);
        let now = tokio::time::Instant::now();
        self.last_change = now.checked_sub(stored.changed_ago).unwrap_or(now);
        self.board = Board::replay(&stored.events);
        self.events = stored.events;
        self.publish_position();
        Ok(self.board.created)
    }

    /// A request taken from the board's queue: a command's wait for its board ends here.
    fn taken(&self, request: &Request) {
        if let Request::Execute { reply, .. } = request {
            self.hub.metrics.stages.queued.since(reply.arrived);
        }
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Execute { actor, command, reply } => self.execute_queued(Queued { actor, command, reply }).await,
            Request::Join { key, name, reply } => {
                let result = self.join(key, name).await;
                let _ = reply.send(result);
            }
            Request::Subscribe { sub, since, reply } => {
                // This node may not have heard yet of what the client already knows (it joined, or
                // saw events, through another node): read the log before judging.
                let unknown = sub.person().is_some_and(|p| !self.board.people.contains_key(&p));
                if self.hub.store.shared() && (unknown || since.is_some_and(|s| s > self.board.seq)) {
                    let result = self.read_missed().await.map(drop);
                    self.settle(result);
                }
                let _ = reply.send(self.subscribe(sub, since));
            }
            Request::Grant { key, reply } => {
                let _ = reply.send(self.grant(&key));
            }
            Request::RotateParticipantLink { actor, reply } => {
                let _ = reply.send(self.rotate_participant_link(actor).await);
            }
            Request::Unsubscribe { conn } => {
                self.subscribers.retain(|s| s.conn != conn);
                self.presence_changed();
            }
            Request::Published { epoch, events } => self.on_published(epoch, events).await,
            Request::Repair => self.look_for_missed().await,
            Request::Expire { retention } => {
                if self.last_change.elapsed() > retention {
                    tracing::info!(board = %self.id, "board deleted: its retention ended");
                    // On failure the board stays, and the next sweep tries again.
                    let _ = self.delete().await;
                }
            }
        }
    }

    /// Runs a client's command together with the commands queued behind it, so that a busy board
    /// (a town hall's votes) waits for the store once for all of them rather than once each. They
    /// are decided in turn, each on the board as the ones before it leave it, and their events
    /// stored in one append; each is answered as if it had run alone. A command that cannot join
    /// them (refused, changing nothing, deleting the board) ends the batch and runs on its own
    /// after it, and if the log moved on meanwhile they all run on their own.
    async fn execute_queued(&mut self, first: Queued) {
        let mut queue = vec![first];
        while queue.len() < BATCH {
            let next = match self.pending.pop_front() {
                Some(request) => Some(request),
                None => {
                    let request = self.rx.try_recv().ok();
                    if let Some(request) = &request {
                        self.taken(request);
                    }
                    request
                }
            };
            match next {
                Some(Request::Execute { actor, command, reply }) => queue.push(Queued { actor, command, reply }),
                Some(other) => {
                    self.pending.push_front(other);
                    break;
                }
                None => break,
            }
        }
        let waiting = queue.len();
        let mut rest = if waiting > 1 { self.execute_together(queue).await } else { queue };
        if rest.len() == waiting {
            // Nothing was stored together: the first runs on its own.
            let Queued { actor, command, reply } = rest.remove(0);
            let kind = command.kind();
            let result = self.execute(actor, command).await;
            reply.send(kind, result, &self.hub.metrics);
        }
        // The rest go first on the task's next turns (after a deletion, to the board's next task).
        for Queued { actor, command, reply } in rest.into_iter().rev() {
            self.pending.push_front(Request::Execute { actor, command, reply });
        }
    }

    /// Decides the leading commands of `queue` that change the board, stores their events in one
    /// append and answers them; returns the commands it did not store.
    async fn execute_together(&mut self, mut queue: Vec<Queued>) -> Vec<Queued> {
        let after = self.board.seq;
        let mut events = Vec::new();
        // Each stored command's last sequence number, its answer.
        let mut heads = Vec::new();
        for Queued { actor, command, .. } in &queue {
            let decided = match decide(&self.board, *actor, command, clock::now()) {
                Ok(decided) if !decided.is_empty() && decided != [minim_shared::Event::BoardDeleted] => decided,
                _ => break,
            };
            let Ok(decided) = self.with_new_link(decided) else { break };
            // Folded in ahead of the store, so that the next command is decided after this one.
            let decided = self.board.sequence(decided);
            for e in &decided {
                self.board.apply(e);
            }
            events.extend(decided);
            heads.push(self.board.seq);
        }
        if heads.is_empty() {
            return queue;
        }
        match self.append(after, &events).await {
            Ok(()) => {
                Metrics::add(&self.hub.metrics.appends, 1);
                let rest = queue.split_off(heads.len());
                self.recorded(events);
                for (Queued { command, reply, .. }, head) in queue.into_iter().zip(heads) {
                    reply.send(command.kind(), Ok(head), &self.hub.metrics);
                }
                rest
            }
            Err(e) => {
                // Undone: the board is again what its stored events make it.
                self.board = Board::replay(&self.events);
                if matches!(e, StoreError::Conflict { .. } | StoreError::Lost) {
                    // Nothing was stored; each runs on its own, which reads what moved the log on.
                    return queue;
                }
                // As for one command: the outcome is unknown (the events may have landed), so none
                // is tried again here, and each is told the store is unavailable.
                let rest = queue.split_off(heads.len());
                let kind = queue[0].command.kind();
                self.store_failed(kind, &e);
                for Queued { command, reply, .. } in queue {
                    reply.send(command.kind(), Err(BoardError::Unavailable), &self.hub.metrics);
                }
                rest
            }
        }
    }

    async fn execute(&mut self, actor: Actor, command: Command) -> Result<Seq, BoardError> {
        let mut looked = false;
        for _ in 0..CONFLICT_RETRIES {
            let events = match decide(&self.board, actor, &command, clock::now()) {
                Ok(events) => events,
                Err(rejection) => {
                    // This node may be behind the others (an announcement still on its way): refuse
                    // only on the latest state. If the log cannot be read, the refusal stands.
                    if !looked && self.hub.store.shared() {
                        looked = true;
                        match self.read_missed().await {
                            Ok(found) if found > 0 => continue,
                            Err(BoardError::NotFound) => return Err(BoardError::NotFound),
                            _ => {}
                        }
                    }
                    return Err(BoardError::Rejected(rejection));
                }
            };
            if events.is_empty() {
                return Ok(self.board.seq);
            }
            if events == [minim_shared::Event::BoardDeleted] {
                return self.delete().await;
            }
            let events = self.board.sequence(self.with_new_link(events)?);
            match self.append(self.board.seq, &events).await {
                Ok(()) => {
                    Metrics::add(&self.hub.metrics.appends, 1);
                    self.record(events);
                    return Ok(self.board.seq);
                }
                Err(StoreError::Conflict { head }) => {
                    // Another node appended first: fold in what it wrote, then decide again.
                    tracing::debug!(board = %self.id, ours = %self.board.seq, head = %head, "log moved on; catching up");
                    self.read_missed().await?;
                }
                Err(StoreError::Lost) => self.recover().await?,
                Err(e) => return Err(self.store_failed(command.kind(), &e)),
            }
        }
        Err(BoardError::Unavailable)
    }

    /// Stores a command's events after `after`, timing it.
    async fn append(&self, after: Seq, events: &[Sequenced]) -> Result<(), StoreError> {
        let started = Instant::now();
        let result = self.hub.store.append(&self.id, self.epoch, after, events).await;
        self.hub.metrics.stages.stored.since(started);
        result
    }

    /// Another node appended (announced through the fan-out).
    async fn on_published(&mut self, epoch: Epoch, events: Vec<Sequenced>) {
        let result = if epoch != self.epoch {
            // The board was stored again somewhere (or this announcement is from before that).
            self.recover().await
        } else if events.first().is_some_and(|first| first.seq > self.board.seq.next()) {
            Metrics::add(&self.hub.metrics.fanout_gaps_repaired, 1);
            tracing::info!(board = %self.id, ours = %self.board.seq, "missed an announcement; reading the log");
            self.read_missed().await.map(drop)
        } else {
            // Our own appends come back too: keep only what is new.
            let new: Vec<Sequenced> = events.into_iter().filter(|e| e.seq > self.board.seq).collect();
            if !new.is_empty() {
                self.record(new);
            }
            Ok(())
        };
        self.settle(result);
    }

    /// Checks the log for events no announcement brought (the periodic check, or after the
    /// fan-out reconnected).
    async fn look_for_missed(&mut self) {
        let result = self.read_missed().await.map(|found| {
            if found > 0 {
                Metrics::add(&self.hub.metrics.fanout_gaps_repaired, 1);
                tracing::info!(board = %self.id, found, "found events the fan-out had not brought");
            }
        });
        self.settle(result);
    }

    /// What a failed background repair leaves behind: a board gone for good stops the task;
    /// anything else (the store unreachable) waits for the next announcement or check.
    fn settle(&mut self, result: Result<(), BoardError>) {
        if let Err(BoardError::NotFound | BoardError::Deleted) = result {
            self.gone = true;
        }
    }

    /// Deletes the board from the store and lets go of everyone: their sessions try to follow it
    /// again and are told it was deleted. This node forgets its copy when the task stops.
    async fn delete(&mut self) -> Result<Seq, BoardError> {
        if let Err(e) = self.hub.store.delete(&self.id).await {
            return Err(self.store_failed("delete the board", &e));
        }
        tracing::info!(board = %self.id, "board deleted by its facilitator");
        self.gone = true;
        self.subscribers.clear();
        self.board = Board { seq: self.board.seq, ..Board::default() };
        self.events.clear();
        Ok(self.board.seq)
    }

    /// Reads the events after this copy's head from the log and passes them on; how many.
    async fn read_missed(&mut self) -> Result<usize, BoardError> {
        match self.hub.store.read_after(&self.id, self.epoch, self.board.seq).await {
            Ok(events) => {
                let found = events.len();
                if found > 0 {
                    self.record(events);
                }
                Ok(found)
            }
            Err(StoreError::Lost) => self.recover().await.map(|()| 0),
            Err(StoreError::NotFound) => Err(BoardError::NotFound),
            Err(StoreError::Deleted) => Err(BoardError::Deleted),
            Err(e) => Err(self.store_failed("read the log", &e)),
        }
    }

    /// The store no longer holds the history this copy came from: Redis lost its data, the board
    /// expired, or another node stored it again. Adopts what the store holds now, or, if the board
    /// is gone and its retention has not passed, stores it again from this copy.
    async fn recover(&mut self) -> Result<(), BoardError> {
        for _ in 0..CONFLICT_RETRIES {
            let stored = match self.hub.store.load(&self.id).await {
                Ok(stored) => stored,
                Err(StoreError::Deleted) => return Err(BoardError::Deleted),
                Err(e) => return Err(self.store_failed("reload", &e)),
            };
            if let Some(stored) = stored {
                if self.adopt(stored).await? {
                    return Ok(());
                }
                continue;
            }
            if self.expires_at.is_some_and(|at| tokio::time::Instant::now() + EXPIRY_MARGIN >= at) {
                tracing::info!(board = %self.id, "board expired from the store; closing it here too");
                return Err(BoardError::NotFound);
            }
            let meta = self.meta.clone().ok_or(BoardError::NotFound)?;
            match self.hub.store.create(&self.id, &meta, &self.events).await {
                Ok(epoch) => {
                    self.epoch = epoch;
                    self.touch();
                    Metrics::add(&self.hub.metrics.boards_restored, 1);
                    tracing::warn!(board = %self.id, head = %self.board.seq, "the store had lost this board; stored it again from this node's copy");
                    return Ok(());
                }
                // Another node stored it again first: adopt theirs on the next turn.
                Err(StoreError::Exists) => continue,
                Err(e) => return Err(self.store_failed("store again", &e)),
            }
        }
        Err(BoardError::Unavailable)
    }

    /// Takes the store's current history of the board as this node's. `Ok(false)` if the store
    /// moved on meanwhile and this should be tried again.
    async fn adopt(&mut self, stored: StoredBoard) -> Result<bool, BoardError> {
        self.epoch = stored.epoch;
        self.meta = Some(stored.meta);
        self.expires_at = stored.expires_in.map(|d| tokio::time::Instant::now() + d);
        let (ours, theirs) = (self.events.len(), stored.events.len());
        if theirs >= ours && stored.events[..ours] == self.events[..] {
            // It continues our copy: pass on what is new.
            self.record(stored.events[ours..].to_vec());
            return Ok(true);
        }
        if ours > theirs && self.events[..theirs] == stored.events[..] {
            // Stored again from a copy behind ours: give the store what it lacks.
            let tail = self.events[theirs..].to_vec();
            return match self.hub.store.append(&self.id, self.epoch, Seq(theirs as u64), &tail).await {
                Ok(()) => Ok(true),
                Err(StoreError::Conflict { .. } | StoreError::Lost) => Ok(false),
                Err(e) => Err(self.store_failed("complete the log", &e)),
            };
        }
        // The histories differ: the store's wins, and everyone connected here starts again from it.
        tracing::warn!(board = %self.id, ours, theirs, "this node's copy differs from the store's; resyncing its clients");
        self.board = Board::replay(&stored.events);
        self.events = stored.events;
        self.publish_position();
        self.resync_all();
        Ok(true)
    }

    /// Counts and logs a store failure; the caller answers "unavailable".
    fn store_failed(&self, doing: &'static str, e: &StoreError) -> BoardError {
        Metrics::add(&self.hub.metrics.store_errors, 1);
        tracing::error!(board = %self.id, doing, error = %e, "event store unavailable");
        BoardError::Unavailable
    }

    /// The store keeps the board another retention period after a change.
    fn touch(&mut self) {
        self.last_change = tokio::time::Instant::now();
        if let Some(retention) = self.hub.store.retention() {
            self.expires_at = Some(tokio::time::Instant::now() + retention);
        }
    }

    /// Applies stored events and fans them out.
    fn record(&mut self, events: Vec<Sequenced>) {
        for e in &events {
            self.board.apply(e);
        }
        self.recorded(events);
    }

    /// Passes on stored events the board has already applied: fans them out and keeps them.
    fn recorded(&mut self, events: Vec<Sequenced>) {
        Metrics::add(&self.hub.metrics.events, events.len() as u64);
        self.touch();
        self.fan_out(&events);
        // Someone taken off the board stops following it at once: their sessions try to follow
        // again, are refused (no longer a member) and close.
        let removed: Vec<PersonId> = events
            .iter()
            .filter_map(|e| match e.event {
                minim_shared::Event::PersonRemoved { person } => Some(person),
                _ => None,
            })
            .collect();
        if !removed.is_empty() {
            self.subscribers.retain(|sub| sub.person().is_none_or(|p| !removed.contains(&p)));
            self.presence_changed();
        }
        self.events.extend(events);
        // At once, not at the end of the turn: the announcement of an append may arrive while
        // the task is still busy with the command that made it.
        self.publish_position();
    }

    fn publish_position(&self) {
        self.position.set(self.epoch, self.board.seq);
    }

    fn fan_out(&mut self, events: &[Sequenced]) {
        let subscribed = self.subscribers.len();
        for e in events {
            let public = Outbound::message(&ServerMessage::Event(Sequenced {
                seq: e.seq,
                event: e.event.visible_to(Viewer::Public),
            }));
            let privileged = e.event.privileged();
            let private = privileged.map(|p| {
                Outbound::message(&ServerMessage::Event(Sequenced {
                    seq: e.seq,
                    event: e.event.visible_to(Viewer::Person(p)),
                }))
            });
            self.subscribers.retain(|sub| {
                let out = match (&private, sub.person()) {
                    (Some(private), Some(person)) if Some(person) == privileged => private.clone(),
                    _ => public.clone(),
                };
                deliver(&self.id, &self.hub.metrics, sub, out)
            });
        }
        if self.subscribers.len() != subscribed {
            self.presence_changed();
        }
    }

    /// Makes a new participant link for the facilitator (`actor`, checked by the rules).
    async fn rotate_participant_link(&mut self, actor: Actor) -> Result<LinkKey, BoardError> {
        let key = crate::auth::new_link_key().map_err(|_| BoardError::Unavailable)?;
        self.new_participant_key = Some(key_hash(&key));
        let result = self.execute(actor, Command::RotateParticipantLink).await;
        self.new_participant_key = None;
        result.map(|_| key)
    }

    /// The rules say a participant link was replaced; the hash of its new key goes in here. A
    /// rotation asked for without a way to hand out the key (over the WebSocket) gets a key that
    /// nobody knows: the old link stops working all the same.
    fn with_new_link(&self, mut events: Vec<minim_shared::Event>) -> Result<Vec<minim_shared::Event>, BoardError> {
        for e in &mut events {
            if let minim_shared::Event::ParticipantLinkRotated { key_sha256: hash @ None } = e {
                let key = match &self.new_participant_key {
                    Some(hash) => hash.clone(),
                    None => key_hash(&crate::auth::new_link_key().map_err(|_| BoardError::Unavailable)?),
                };
                *hash = Some(key);
            }
        }
        Ok(events)
    }

    /// The participant link's key hash now: the board's first, or the latest rotation's.
    fn participant_key_hash<'a>(&'a self, meta: &'a BoardMeta) -> &'a str {
        self.events
            .iter()
            .rev()
            .find_map(|e| match &e.event {
                minim_shared::Event::ParticipantLinkRotated { key_sha256: Some(hash) } => Some(hash.as_str()),
                _ => None,
            })
            .unwrap_or(&meta.participant_key_sha256)
    }

    /// What a link's key grants on this board.
    fn grant(&self, key: &LinkKey) -> Result<Grant, BoardError> {
        let meta = self.meta.as_ref().ok_or(BoardError::NotFound)?;
        let hash = key_hash(key);
        // Once the role was handed over, the facilitator link means nobody: whoever holds it is
        // no longer the facilitator.
        let handed_over = self.events.iter().any(|e| matches!(e.event, minim_shared::Event::FacilitatorChanged { .. }));
        if handed_over && hash == meta.facilitator_key_sha256 {
            return Err(BoardError::BadKey);
        }
        [
            (meta.facilitator_key_sha256.as_str(), Grant::Facilitator),
            (self.participant_key_hash(meta), Grant::Participant),
            (meta.projector_key_sha256.as_str(), Grant::Projector),
        ]
        .into_iter()
        .find_map(|(stored, grant)| (stored == hash).then_some(grant))
        .ok_or(BoardError::BadKey)
    }

    async fn join(&mut self, key: LinkKey, name: Option<Private>) -> Result<Admitted, BoardError> {
        let grant = self.grant(&key)?;
        let Some(role) = grant.role() else {
            return Ok(Admitted { grant, person: None });
        };
        let name = name.unwrap_or_default();
        let before = self.board.last_person;
        self.execute(Actor::System, Command::Join { name, role }).await?;
        let person = match role {
            minim_shared::Role::Facilitator => self.board.facilitator(),
            minim_shared::Role::Participant => Some(PersonId(self.board.last_person)).filter(|p| p.0 > before),
        };
        Ok(Admitted { grant, person: Some(person.ok_or(BoardError::Unavailable)?) })
    }

    fn subscribe(&mut self, mut sub: Subscriber, since: Option<Seq>) -> Result<(), BoardError> {
        if let Identity::Person { person, role } = &mut sub.identity {
            // The role is the board's, not the token's: the facilitator role may have been handed on.
            *role = self.board.people.get(person).ok_or(BoardError::NotMember)?.role;
        }
        let head = self.board.seq;
        let welcome = ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            board: self.id.clone(),
            you: sub.identity,
            head,
            server_time: clock::now(),
        };
        let mut catch_up = vec![Outbound::message(&welcome)];
        let missed = since.filter(|s| *s <= head).map(|s| (head.0 - s.0) as usize);
        match (since, missed) {
            (Some(since), Some(missed)) if missed <= MAX_CATCH_UP_EVENTS => {
                for e in &self.events[since.0 as usize..] {
                    let event = e.event.visible_to(sub.viewer());
                    catch_up.push(Outbound::message(&ServerMessage::Event(Sequenced { seq: e.seq, event })));
                }
            }
            _ => {
                let board = Box::new(self.board.view_for(sub.viewer()));
                catch_up.push(Outbound::message(&ServerMessage::Snapshot { board }));
            }
        }
        // The queue is fresh and larger than any catch-up, so this cannot fill it.
        for out in catch_up {
            if sub.tx.try_send(out).is_err() {
                return Ok(());
            }
        }
        // The newcomer learns who is here at once; the others hear of the newcomer shortly.
        let mut connected: BTreeSet<PersonId> = self.subscribers.iter().filter_map(Subscriber::person).collect();
        connected.extend(sub.person());
        let presence = ServerMessage::Presence { connected: connected.into_iter().collect() };
        if deliver(&self.id, &self.hub.metrics, &sub, Outbound::message(&presence)) {
            self.subscribers.push(sub);
        }
        self.presence_changed();
        Ok(())
    }

    /// Who is connected may have changed: tell everyone soon (once, however many changes).
    fn presence_changed(&mut self) {
        self.presence_due.get_or_insert_with(|| tokio::time::Instant::now() + PRESENCE_COALESCE);
    }

    /// Tells everyone who is connected, when that changed.
    fn send_presence(&mut self) {
        let now: BTreeSet<PersonId> = self.subscribers.iter().filter_map(Subscriber::person).collect();
        if now == self.presence {
            return;
        }
        self.presence = now;
        let out = Outbound::message(&ServerMessage::Presence { connected: self.presence.iter().copied().collect() });
        let (id, metrics) = (&self.id, &self.hub.metrics);
        let before = self.subscribers.len();
        self.subscribers.retain(|sub| deliver(id, metrics, sub, out.clone()));
        if self.subscribers.len() != before {
            // Someone lagging was dropped just now: that changes presence again.
            self.presence_changed();
        }
    }
}

impl BoardTask {
    /// Sends every subscriber a snapshot of the board as it now is (after adopting a history
    /// that differs from the one they folded). People no longer on the board are dropped; their
    /// sessions resubscribe and are told.
    fn resync_all(&mut self) {
        let (id, metrics, board) = (&self.id, &self.hub.metrics, &self.board);
        self.subscribers.retain(|sub| {
            if sub.person().is_some_and(|p| !board.people.contains_key(&p)) {
                return false;
            }
            Metrics::add(&metrics.clients_resynced, 1);
            let snapshot = ServerMessage::Snapshot { board: Box::new(board.view_for(sub.viewer())) };
            deliver(id, metrics, sub, Outbound::message(&snapshot))
        });
        self.presence.clear();
        self.presence_changed();
    }
}

/// A timer that is set again only when its instant changes.
struct Alarm {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    at: Option<tokio::time::Instant>,
}

impl Alarm {
    fn new() -> Alarm {
        Alarm { sleep: Box::pin(tokio::time::sleep(Duration::ZERO)), at: None }
    }

    /// Rings at `at`, or never.
    fn set(&mut self, at: Option<tokio::time::Instant>) {
        if at != self.at {
            if let Some(at) = at {
                self.sleep.as_mut().reset(at);
            }
            self.at = at;
        }
    }

    /// Resolves when the alarm rings, and disarms it; pending forever while it is not set.
    async fn ring(&mut self) {
        if self.at.is_none() {
            return std::future::pending().await;
        }
        self.sleep.as_mut().await;
        self.at = None;
    }
}

/// Queues `out` for one subscriber; `false` drops the subscriber (gone, or too far behind: its
/// session notices the closed queue and resubscribes from its last sequence number).
fn deliver(board: &BoardId, metrics: &Metrics, sub: &Subscriber, out: Outbound) -> bool {
    match sub.tx.try_send(out) {
        Ok(()) => true,
        Err(Refused::Full) => {
            Metrics::add(&metrics.clients_resynced, 1);
            tracing::info!(board = %board, conn = sub.conn, "client fell behind; it will resync");
            false
        }
        Err(Refused::Closed) => false,
    }
}

/// The error a client sees for a board failure.
pub fn wire_error(e: &BoardError) -> (ErrorCode, String) {
    match e {
        BoardError::Rejected(r) => (r.code.into(), r.message.clone()),
        BoardError::NotFound => (ErrorCode::BoardNotFound, "This board does not exist.".into()),
        BoardError::Deleted => (ErrorCode::BoardDeleted, "This board was deleted.".into()),
        BoardError::BadKey => (ErrorCode::Unauthorized, "This link is not valid for this board.".into()),
        BoardError::NotMember => (ErrorCode::Unauthorized, "You are no longer on this board.".into()),
        BoardError::Unavailable | BoardError::Gone => (
            ErrorCode::Unavailable,
            "The board is temporarily unavailable. Nothing was changed; try again shortly.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::testing::{self, Received};
    use crate::store::disk::DiskLog;
    use minim_shared::{Role, Settings};

    #[tokio::test]
    async fn an_alarm_rings_once_at_its_instant_and_never_while_unset() {
        let quiet = Duration::from_millis(150);
        let mut alarm = Alarm::new();
        assert!(tokio::time::timeout(quiet, alarm.ring()).await.is_err(), "an alarm never set rang");

        let start = tokio::time::Instant::now();
        alarm.set(Some(start + Duration::from_millis(50)));
        alarm.ring().await;
        assert!(start.elapsed() >= Duration::from_millis(50), "rang early");
        assert!(tokio::time::timeout(quiet, alarm.ring()).await.is_err(), "rang twice for one setting");

        // Set again, then moved later, then taken back: it follows the last setting.
        let start = tokio::time::Instant::now();
        alarm.set(Some(start + Duration::from_millis(20)));
        alarm.set(Some(start + Duration::from_millis(80)));
        alarm.ring().await;
        assert!(start.elapsed() >= Duration::from_millis(80), "rang at a setting that was replaced");
        alarm.set(Some(tokio::time::Instant::now() + Duration::from_millis(20)));
        alarm.set(None);
        assert!(tokio::time::timeout(quiet, alarm.ring()).await.is_err(), "rang after it was unset");
    }

    /// A hub over a real disk log in a temporary directory, with one board and its facilitator.
    async fn board_with_facilitator() -> (tempfile::TempDir, Arc<BoardHub>, BoardId, PersonId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DiskLog::open(dir.path()).unwrap());
        let id = BoardId("0123456789abcdef0123456789abcdef".into());
        create_board(&*store, &id).await;
        let hub = BoardHub::new(store, Default::default(), CancellationToken::new());
        let admitted = hub.handle(&id).join(LinkKey("f".into()), Some(Private::new("F"))).await.unwrap();
        (dir, hub, id, admitted.person.unwrap())
    }

    /// Stores a new board whose facilitator link's key is "f".
    async fn create_board(store: &dyn EventLog, id: &BoardId) {
        let create = Command::CreateBoard { title: Private::new("t"), settings: Settings::default() };
        let events =
            Board::default().sequence(decide(&Board::default(), Actor::System, &create, clock::now()).unwrap());
        let meta = BoardMeta {
            created_at: clock::now(),
            facilitator_key_sha256: key_hash(&LinkKey("f".into())),
            participant_key_sha256: key_hash(&LinkKey("p".into())),
            projector_key_sha256: key_hash(&LinkKey("s".into())),
        };
        store.create(id, &meta, &events).await.unwrap();
    }

    /// Queues `commands` at the board all at once (the board task does not run in between: the
    /// test runs on one thread and does not wait), then waits for every answer, in order.
    async fn queued_together(
        hub: &Arc<BoardHub>,
        board: &BoardId,
        actor: Actor,
        commands: Vec<Command>,
    ) -> Vec<ServerMessage> {
        let (answers, mut answered) = testing::answers();
        let count = commands.len();
        for (id, command) in (1..).zip(commands) {
            hub.submit(
                board,
                actor,
                command,
                ClientReply { id, conn: 1, answers: answers.clone(), arrived: Instant::now() },
            )
            .await;
        }
        let mut got = Vec::new();
        for _ in 0..count {
            let answer = answered.recv().await.expect("every command is answered");
            got.push(serde_json::from_str(&answer.text).unwrap());
        }
        got
    }

    /// Runs a command as a client's, and waits for its answer (`accepted` or `rejected`).
    async fn command(hub: &Arc<BoardHub>, board: &BoardId, actor: Actor, command: Command) -> ServerMessage {
        queued_together(hub, board, actor, vec![command]).await.remove(0)
    }

    /// Folds everything queued for a subscriber into `board`, as a client would.
    fn fold_queued(board: &mut Board, rx: &mut Received) {
        while let Some(out) = rx.try_recv() {
            match serde_json::from_str(&out.text).unwrap() {
                ServerMessage::Snapshot { board: snapshot } => *board = *snapshot,
                ServerMessage::Event(e) => board.fold(&e).unwrap(),
                _ => {}
            }
        }
    }

    /// The `connected` lists of the presence messages queued for a subscriber.
    fn presences(rx: &mut Received) -> Vec<Vec<PersonId>> {
        std::iter::from_fn(|| rx.try_recv())
            .filter_map(|out| match serde_json::from_str(&out.text).unwrap() {
                ServerMessage::Presence { connected } => Some(connected),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_burst_of_connections_reaches_everyone_as_one_presence_update() {
        let (_dir, hub, id, facilitator) = board_with_facilitator().await;
        let handle = hub.handle(&id);
        let me = Identity::Person { person: facilitator, role: Role::Facilitator };
        let (tx, mut rx) = testing::queue(OUTBOUND_QUEUE);
        handle.subscribe(Subscriber { conn: 1, identity: me, tx }, None).await.unwrap();
        // The newcomer is told at once who is here.
        assert_eq!(presences(&mut rx), [vec![facilitator]]);

        let mut people = vec![];
        for i in 0..20 {
            let admitted = handle.join(LinkKey("p".into()), Some(Private::new(format!("P{i}")))).await.unwrap();
            people.push(admitted.person.unwrap());
        }
        // Whatever the facilitator's own arrival still owed the others has gone out by now.
        tokio::time::sleep(PRESENCE_COALESCE * 2).await;
        presences(&mut rx);
        // Everyone who joined connects at once (no disk work in between, so well within the pause).
        let mut others = vec![];
        for (i, person) in people.into_iter().enumerate() {
            let (tx, rx) = testing::queue(OUTBOUND_QUEUE);
            let identity = Identity::Person { person, role: Role::Participant };
            handle.subscribe(Subscriber { conn: 2 + i as u64, identity, tx }, None).await.unwrap();
            others.push((person, rx));
        }
        // Twenty arrivals, and no list yet for those already here...
        assert_eq!(presences(&mut rx), Vec::<Vec<PersonId>>::new());
        // ...then one, with everyone.
        tokio::time::sleep(PRESENCE_COALESCE * 2).await;
        let everyone: Vec<PersonId> = std::iter::once(facilitator).chain(others.iter().map(|(p, _)| *p)).collect();
        assert_eq!(presences(&mut rx), std::slice::from_ref(&everyone));
        // The last to arrive had the whole list on arrival, and the same list once more at most.
        let (_, last) = others.last_mut().unwrap();
        assert!(presences(last).iter().all(|list| *list == everyone));

        // A departure is coalesced the same way.
        handle.unsubscribe(2);
        tokio::time::sleep(PRESENCE_COALESCE * 2).await;
        assert_eq!(presences(&mut rx), [everyone[..1].iter().chain(&everyone[2..]).copied().collect::<Vec<_>>()]);
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_dropped_without_stalling_others_and_resumes_exactly() {
        let (_dir, hub, id, facilitator) = board_with_facilitator().await;
        let handle = hub.handle(&id);
        let identity = Identity::Person { person: facilitator, role: Role::Facilitator };
        // A slow client: room for four messages, and it does not read.
        let (slow_tx, mut slow_rx) = testing::queue(4);
        handle.subscribe(Subscriber { conn: 1, identity, tx: slow_tx }, None).await.unwrap();
        // A healthy client with plenty of room.
        let (fast_tx, mut fast_rx) = testing::queue(OUTBOUND_QUEUE);
        handle.subscribe(Subscriber { conn: 2, identity, tx: fast_tx }, None).await.unwrap();

        for i in 0..8 {
            let add = Command::AddTopic { text: Private::new(format!("topic {i}")) };
            let answer = command(&hub, &id, Actor::Person(facilitator), add).await;
            assert!(matches!(answer, ServerMessage::Accepted { .. }), "{answer:?}");
        }

        // The healthy client got every event; the board never waited for the slow one.
        let mut fast = Board::default();
        fold_queued(&mut fast, &mut fast_rx);
        assert_eq!(fast.topics.len(), 8);

        // The slow client's queue was closed after what fit: it knows where it stopped.
        let mut slow = Board::default();
        fold_queued(&mut slow, &mut slow_rx);
        assert!(slow_rx.recv().await.is_none(), "dropped from the fan-out");
        assert!(slow.seq < fast.seq);

        // Resubscribing from there fills exactly the gap.
        let (tx, mut rx) = testing::queue(OUTBOUND_QUEUE);
        handle.subscribe(Subscriber { conn: 3, identity, tx }, Some(slow.seq)).await.unwrap();
        fold_queued(&mut slow, &mut rx);
        assert_eq!(slow, fast);
    }

    #[tokio::test]
    async fn a_client_command_is_answered_after_its_events_and_one_queued_at_a_stopping_task_by_the_next() {
        let (_dir, hub, id, facilitator) = board_with_facilitator().await;
        let me = Identity::Person { person: facilitator, role: Role::Facilitator };
        let (tx, mut events) = testing::queue(OUTBOUND_QUEUE);
        hub.handle(&id).subscribe(Subscriber { conn: 1, identity: me, tx }, None).await.unwrap();
        while events.try_recv().is_some() {}
        let (answers, mut answered) = testing::answers();
        let submit = |request: RequestId, command: Command| {
            let reply = ClientReply { id: request, conn: 1, answers: answers.clone(), arrived: Instant::now() };
            hub.submit(&id, Actor::Person(facilitator), command, reply)
        };
        let answer = |out: Outbound| serde_json::from_str::<ServerMessage>(&out.text).unwrap();

        // Accepted, once its event is queued for the client.
        submit(1, Command::AddTopic { text: Private::new("a topic") }).await;
        let ServerMessage::Accepted { id: 1, seq } = answer(answered.recv().await.unwrap()) else { panic!() };
        assert!(matches!(answer(events.try_recv().unwrap()), ServerMessage::Event(e) if e.seq == seq));
        // Refused by the rules: a vote for a topic that does not exist.
        submit(2, Command::PlaceVote { topic: minim_shared::TopicId(999) }).await;
        assert!(matches!(answer(answered.recv().await.unwrap()), ServerMessage::Rejected { id: 2, .. }));

        // Two commands queued behind the one that deletes the board: its task stops after the
        // delete, and they are answered by the next task, which finds the board deleted (not
        // "unavailable", and not lost).
        submit(3, Command::DeleteBoard).await;
        submit(4, Command::AddTopic { text: Private::new("too late") }).await;
        submit(5, Command::AddTopic { text: Private::new("later still") }).await;
        assert!(matches!(answer(answered.recv().await.unwrap()), ServerMessage::Accepted { id: 3, .. }));
        for expected in [4, 5] {
            match answer(answered.recv().await.unwrap()) {
                ServerMessage::Rejected { id, code, .. } => assert_eq!((id, code), (expected, ErrorCode::BoardDeleted)),
                other => panic!("command {expected} answered {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn commands_queued_together_are_decided_in_turn_and_stored_in_one_append() {
        use minim_shared::{Phase, RejectCode, TopicId};
        let (_dir, hub, id, facilitator) = board_with_facilitator().await;
        let me = Actor::Person(facilitator);
        let (tx, mut events) = testing::queue(OUTBOUND_QUEUE);
        let identity = Identity::Person { person: facilitator, role: Role::Facilitator };
        hub.handle(&id).subscribe(Subscriber { conn: 1, identity, tx }, None).await.unwrap();
        let mut seen = Board::default();
        fold_queued(&mut seen, &mut events);
        let topic = |text: &str| Command::AddTopic { text: Private::new(text) };
        let appends = || hub.metrics().appends.load(std::sync::atomic::Ordering::Relaxed);

        let before = appends();
        let answers = queued_together(&hub, &id, me, vec![topic("a"), topic("b"), topic("c")]).await;
        let heads: Vec<Seq> = answers
            .iter()
            .map(|a| match a {
                ServerMessage::Accepted { seq, .. } => *seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(heads, [Seq(3), Seq(4), Seq(5)], "each is answered with its own event's number");
        assert_eq!(appends() - before, 1, "three commands, one append");

        // Each is decided on the board as the ones before it leave it: the fourth vote is over
        // the budget of three, even though none of the first three was stored when it was decided.
        // A command refused ends the batch; the one after it is stored on its own.
        let answer = command(&hub, &id, me, Command::ChangePhase { to: Phase::Voting }).await;
        assert!(matches!(answer, ServerMessage::Accepted { .. }), "{answer:?}");
        let before = appends();
        let vote = Command::PlaceVote { topic: TopicId(1) };
        let queued = vec![vote.clone(), vote.clone(), vote.clone(), vote, Command::RemoveVote { topic: TopicId(1) }];
        let answers = queued_together(&hub, &id, me, queued).await;
        for (i, answer) in answers.iter().enumerate() {
            match (i, answer) {
                (3, ServerMessage::Rejected { code, .. }) => assert_eq!(*code, ErrorCode::Rule(RejectCode::VoteLimit)),
                (3, other) => panic!("the fourth vote was answered {other:?}"),
                (_, ServerMessage::Accepted { .. }) => {}
                (_, other) => panic!("command {} answered {other:?}", i + 1),
            }
        }
        assert_eq!(appends() - before, 2, "the three votes together, taking one back on its own");

        // The client saw every event once and in order (folding checks the sequence numbers).
        fold_queued(&mut seen, &mut events);
        assert_eq!(seen.topics.len(), 3);
        assert_eq!(seen.votes_used(facilitator), 2);
    }

    #[tokio::test]
    async fn two_nodes_storing_queued_commands_on_one_board_at_once_lose_nothing_and_double_nothing() {
        use crate::store::redis::RedisLog;
        let redis = minim_tests::cluster::RedisServer::start().await.unwrap();
        let node = || {
            let store = RedisLog::connect(&redis.url, "batch", Duration::from_secs(3600), Default::default()).unwrap();
            BoardHub::new(Arc::new(store), Default::default(), CancellationToken::new())
        };
        let (a, b) = (node(), node());
        let id = BoardId("0123456789abcdef0123456789abcdef".into());
        create_board(&**a.store(), &id).await;
        // Someone on each node (a person brings at most ten topics).
        let mut people = vec![];
        for (hub, key) in [(&a, "f"), (&b, "p")] {
            let admitted = hub.handle(&id).join(LinkKey(key.into()), Some(Private::new(key))).await.unwrap();
            people.push(Actor::Person(admitted.person.unwrap()));
        }
        let (on_a, on_b) = (people[0], people[1]);
        let topics = |node: &'static str| -> Vec<Command> {
            (0..10).map(|i| Command::AddTopic { text: Private::new(format!("{node}{i}")) }).collect()
        };
        let appends = |hub: &Arc<BoardHub>| hub.metrics().appends.load(std::sync::atomic::Ordering::Relaxed);
        let before = appends(&a) + appends(&b);

        // Both nodes' board tasks take their ten commands at once and append at the same head:
        // one of the two appends finds the log moved on, and that node's commands are decided
        // again after what the other stored.
        let (answered_a, answered_b) =
            tokio::join!(queued_together(&a, &id, on_a, topics("a")), queued_together(&b, &id, on_b, topics("b")));
        let mut heads = BTreeSet::new();
        for answer in answered_a.iter().chain(&answered_b) {
            let ServerMessage::Accepted { seq, .. } = answer else { panic!("{answer:?}") };
            assert!(heads.insert(*seq), "two commands answered with {seq}");
        }
        let stored = a.store().read_after(&id, a.handle(&id).position.get().0, Seq(0)).await.unwrap();
        let mut texts: Vec<&str> = stored
            .iter()
            .filter_map(|e| match &e.event {
                minim_shared::Event::TopicAdded { text: Some(text), .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.sort();
        let mut expected: Vec<String> =
            ["a", "b"].iter().flat_map(|n| (0..10).map(move |i| format!("{n}{i}"))).collect();
        expected.sort();
        assert_eq!(texts, expected, "every topic stored exactly once");
        assert!(heads.iter().all(|h| stored.iter().any(|e| e.seq == *h)), "every answer names a stored event");
        let used = appends(&a) + appends(&b) - before;
        assert!(used < 20, "twenty commands took {used} appends: none were stored together");
    }

    #[tokio::test]
    async fn a_board_that_does_not_exist_answers_not_found_and_leaves_the_registry() {
        let (_dir, hub, _, _) = board_with_facilitator().await;
        let missing = BoardId("ffffffffffffffffffffffffffffffff".into());
        let answer = command(&hub, &missing, Actor::System, Command::EndTimebox).await;
        assert!(matches!(answer, ServerMessage::Rejected { code: ErrorCode::BoardNotFound, .. }), "{answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(hub.live_boards(), 1, "only the real board stays live");
    }
}
