//! One task per live board. It owns the board's state, so no lock guards it: every change, every
//! subscription and every timer expiry is handled in turn by this task, which is what gives each
//! board a single order of events.
//!
//! For each command it runs `decide`, stores the events (compare-and-append), applies them, and
//! fans them out: each subscriber gets the copy it may see ([`Event::visible_to`]), serialised once
//! per class of recipient. Subscribers have bounded queues; one that is full is dropped from the
//! fan-out, and its session resubscribes from the last sequence number it sent, so a slow client
//! is resynced and never stalls the others.

use crate::auth::key_hash;
use crate::clock;
use crate::metrics::Metrics;
use crate::store::{BoardMeta, EventLog, StoreError};
use bytestring::ByteString;
use minim_shared::api::{Grant, LinkKey};
use minim_shared::wire::{ErrorCode, Identity, PROTOCOL_VERSION, ServerMessage};
use minim_shared::{Actor, Board, BoardId, Command, PersonId, Private, Rejection, Seq, Sequenced, Viewer, decide};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
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
/// How often a failed append is retried after reloading the log (another writer moved it on).
const CONFLICT_RETRIES: usize = 3;

/// A message ready to be written to a client, serialised once and shared by every recipient.
#[derive(Clone, Debug)]
pub struct Outbound {
    /// The sequence number the client has folded up to once it reads this (events, snapshots).
    pub seq: Option<Seq>,
    pub text: ByteString,
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
        Outbound { seq, text: ByteString::from(text) }
    }
}

/// A connection's numbers for the board task, handed out in order (never random).
pub type ConnId = u64;

/// A connection following the board.
pub struct Subscriber {
    pub conn: ConnId,
    pub identity: Identity,
    pub tx: mpsc::Sender<Outbound>,
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

enum Request {
    Execute { actor: Actor, command: Command, reply: oneshot::Sender<Result<Seq, BoardError>> },
    Join { key: LinkKey, name: Option<Private>, reply: oneshot::Sender<Result<Admitted, BoardError>> },
    Subscribe { sub: Subscriber, since: Option<Seq>, reply: oneshot::Sender<Result<(), BoardError>> },
    Grant { key: LinkKey, reply: oneshot::Sender<Result<Grant, BoardError>> },
    Unsubscribe { conn: ConnId },
}

/// A cheap, cloneable way to talk to a board task.
#[derive(Clone)]
pub struct BoardHandle {
    tx: mpsc::Sender<Request>,
    /// Which task of this board this is (a board may be stopped and started again).
    generation: u64,
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

    pub async fn execute(&self, actor: Actor, command: Command) -> Result<Seq, BoardError> {
        self.ask(|reply| Request::Execute { actor, command, reply }).await
    }

    pub async fn join(&self, key: LinkKey, name: Option<Private>) -> Result<Admitted, BoardError> {
        self.ask(|reply| Request::Join { key, name, reply }).await
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
    pub fn new(store: Arc<dyn EventLog>, shutdown: CancellationToken) -> Arc<BoardHub> {
        Arc::new(BoardHub {
            store,
            metrics: Default::default(),
            tasks: Default::default(),
            generations: Default::default(),
            shutdown,
        })
    }

    pub fn store(&self) -> &Arc<dyn EventLog> {
        &self.store
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
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
        let handle = BoardHandle { tx, generation };
        tasks.insert(board.clone(), handle.clone());
        let task = BoardTask::new(board.clone(), generation, self.clone(), rx);
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
    hub: Arc<BoardHub>,
    rx: mpsc::Receiver<Request>,
    /// Filled by `load`.
    meta: Option<BoardMeta>,
    board: Board,
    /// Every event so far, for catch-up (index `i` holds `Seq(i + 1)`).
    events: Vec<Sequenced>,
    subscribers: Vec<Subscriber>,
    /// Who was connected when presence was last sent.
    presence: BTreeSet<PersonId>,
}

impl BoardTask {
    fn new(id: BoardId, generation: u64, hub: Arc<BoardHub>, rx: mpsc::Receiver<Request>) -> BoardTask {
        BoardTask {
            id,
            generation,
            hub,
            rx,
            meta: None,
            board: Board::default(),
            events: vec![],
            subscribers: vec![],
            presence: BTreeSet::new(),
        }
    }

    async fn run(mut self) {
        match self.load().await {
            Ok(true) => {}
            Ok(false) => return self.stop(|| BoardError::NotFound).await,
            Err(e) => {
                Metrics::add(&self.hub.metrics.store_errors, 1);
                tracing::error!(board = %self.id, error = %e, "could not load a board");
                return self.stop(|| BoardError::Unavailable).await;
            }
        }
        let shutdown = self.hub.shutdown.clone();
        let mut idle_since = tokio::time::Instant::now();
        loop {
            let deadline = self.board.deadline();
            let expiry = tokio::time::sleep(deadline.map_or(IDLE_BOARD, clock::until));
            tokio::select! {
                request = self.rx.recv() => match request {
                    Some(request) => self.handle(request).await,
                    None => break,
                },
                () = expiry, if deadline.is_some() => {
                    // Recorded once: a second attempt finds the timer no longer running.
                    if let Err(e) = self.execute(Actor::System, Command::EndTimebox).await {
                        tracing::debug!(board = %self.id, error = %e, "timebox end not recorded");
                    }
                }
                () = tokio::time::sleep_until(idle_since + IDLE_BOARD), if deadline.is_none() => {
                    if self.subscribers.is_empty() {
                        break;
                    }
                }
                () = shutdown.cancelled() => break,
            }
            if !self.subscribers.is_empty() {
                idle_since = tokio::time::Instant::now();
            }
        }
        self.stop(|| BoardError::Gone).await;
    }

    /// Leaves the hub, then answers whatever is still queued with `error` (callers retry on `Gone`).
    async fn stop(mut self, error: impl Fn() -> BoardError) {
        self.hub.forget(&self.id, self.generation);
        self.rx.close();
        while let Some(request) = self.rx.recv().await {
            match request {
                Request::Execute { reply, .. } => drop(reply.send(Err(error()))),
                Request::Join { reply, .. } => drop(reply.send(Err(error()))),
                Request::Subscribe { reply, .. } => drop(reply.send(Err(error()))),
                Request::Grant { reply, .. } => drop(reply.send(Err(error()))),
                Request::Unsubscribe { .. } => {}
            }
        }
    }

    /// Reads the board from the store. `Ok(false)` if it does not exist.
    async fn load(&mut self) -> Result<bool, StoreError> {
        let Some(stored) = self.hub.store.load(&self.id).await? else { return Ok(false) };
        self.meta = Some(stored.meta);
        self.board = Board::replay(&stored.events);
        self.events = stored.events;
        Ok(self.board.created)
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Execute { actor, command, reply } => {
                let result = self.execute(actor, command).await;
                let _ = reply.send(result);
            }
            Request::Join { key, name, reply } => {
                let result = self.join(key, name).await;
                let _ = reply.send(result);
            }
            Request::Subscribe { sub, since, reply } => {
                let _ = reply.send(self.subscribe(sub, since));
            }
            Request::Grant { key, reply } => {
                let _ = reply.send(self.grant(&key));
            }
            Request::Unsubscribe { conn } => {
                self.subscribers.retain(|s| s.conn != conn);
                self.send_presence();
            }
        }
    }

    async fn execute(&mut self, actor: Actor, command: Command) -> Result<Seq, BoardError> {
        for _ in 0..CONFLICT_RETRIES {
            let events = decide(&self.board, actor, &command, clock::now()).map_err(BoardError::Rejected)?;
            if events.is_empty() {
                return Ok(self.board.seq);
            }
            let events = self.board.sequence(events);
            match self.hub.store.append(&self.id, self.board.seq, &events).await {
                Ok(()) => {
                    self.record(events);
                    return Ok(self.board.seq);
                }
                Err(StoreError::Conflict { head }) => {
                    tracing::warn!(board = %self.id, ours = %self.board.seq, head = %head, "log moved on; catching up");
                    self.catch_up_from_store().await?;
                }
                Err(e) => {
                    Metrics::add(&self.hub.metrics.store_errors, 1);
                    tracing::error!(board = %self.id, command = command.kind(), error = %e, "could not store events");
                    return Err(BoardError::Unavailable);
                }
            }
        }
        Err(BoardError::Unavailable)
    }

    /// Another writer extended the log: fold in what it wrote and pass it on to subscribers.
    async fn catch_up_from_store(&mut self) -> Result<(), BoardError> {
        let stored =
            self.hub.store.load(&self.id).await.map_err(|_| BoardError::Unavailable)?.ok_or(BoardError::NotFound)?;
        let new: Vec<Sequenced> = stored.events.into_iter().filter(|e| e.seq > self.board.seq).collect();
        self.record(new);
        Ok(())
    }

    /// Applies stored events and fans them out.
    fn record(&mut self, events: Vec<Sequenced>) {
        Metrics::add(&self.hub.metrics.events, events.len() as u64);
        for e in &events {
            self.board.apply(e);
        }
        self.fan_out(&events);
        self.events.extend(events);
    }

    fn fan_out(&mut self, events: &[Sequenced]) {
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
        self.send_presence();
    }

    /// What a link's key grants on this board.
    fn grant(&self, key: &LinkKey) -> Result<Grant, BoardError> {
        let meta = self.meta.as_ref().ok_or(BoardError::NotFound)?;
        let hash = key_hash(key);
        [
            (&meta.facilitator_key_sha256, Grant::Facilitator),
            (&meta.participant_key_sha256, Grant::Participant),
            (&meta.projector_key_sha256, Grant::Projector),
        ]
        .into_iter()
        .find_map(|(stored, grant)| (*stored == hash).then_some(grant))
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

    fn subscribe(&mut self, sub: Subscriber, since: Option<Seq>) -> Result<(), BoardError> {
        if sub.person().is_some_and(|person| !self.board.people.contains_key(&person)) {
            return Err(BoardError::NotMember);
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
        self.subscribers.push(sub);
        self.send_presence();
        Ok(())
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
        self.subscribers.retain(|sub| deliver(id, metrics, sub, out.clone()));
        // Dropping a lagging subscriber above may change presence again; the next change sends it.
    }
}

/// Queues `out` for one subscriber; `false` drops the subscriber (gone, or too far behind: its
/// session notices the closed queue and resubscribes from its last sequence number).
fn deliver(board: &BoardId, metrics: &Metrics, sub: &Subscriber, out: Outbound) -> bool {
    match sub.tx.try_send(out) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            Metrics::add(&metrics.clients_resynced, 1);
            tracing::info!(board = %board, conn = sub.conn, "client fell behind; it will resync");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// The error a client sees for a board failure.
pub fn wire_error(e: &BoardError) -> (ErrorCode, String) {
    match e {
        BoardError::Rejected(r) => (r.code.into(), r.message.clone()),
        BoardError::NotFound => (ErrorCode::BoardNotFound, "This board does not exist.".into()),
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
    use crate::store::disk::DiskLog;
    use minim_shared::{Role, Settings};

    /// A hub over a real disk log in a temporary directory, with one board and its facilitator.
    async fn board_with_facilitator() -> (tempfile::TempDir, Arc<BoardHub>, BoardId, PersonId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DiskLog::open(dir.path()).unwrap());
        let id = BoardId("0123456789abcdef0123456789abcdef".into());
        let create = Command::CreateBoard { title: Private::new("t"), settings: Settings::default() };
        let events =
            Board::default().sequence(decide(&Board::default(), Actor::System, &create, clock::now()).unwrap());
        let meta = BoardMeta {
            created_at: clock::now(),
            facilitator_key_sha256: key_hash(&LinkKey("f".into())),
            participant_key_sha256: key_hash(&LinkKey("p".into())),
            projector_key_sha256: key_hash(&LinkKey("s".into())),
        };
        store.create(&id, &meta, &events).await.unwrap();
        let hub = BoardHub::new(store, CancellationToken::new());
        let admitted = hub.handle(&id).join(LinkKey("f".into()), Some(Private::new("F"))).await.unwrap();
        (dir, hub, id, admitted.person.unwrap())
    }

    /// Folds everything queued for a subscriber into `board`, as a client would.
    fn fold_queued(board: &mut Board, rx: &mut mpsc::Receiver<Outbound>) {
        while let Ok(out) = rx.try_recv() {
            match serde_json::from_str(&out.text).unwrap() {
                ServerMessage::Snapshot { board: snapshot } => *board = *snapshot,
                ServerMessage::Event(e) => board.fold(&e).unwrap(),
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_dropped_without_stalling_others_and_resumes_exactly() {
        let (_dir, hub, id, facilitator) = board_with_facilitator().await;
        let handle = hub.handle(&id);
        let identity = Identity::Person { person: facilitator, role: Role::Facilitator };
        // A slow client: room for four messages, and it does not read.
        let (slow_tx, mut slow_rx) = mpsc::channel(4);
        handle.subscribe(Subscriber { conn: 1, identity, tx: slow_tx }, None).await.unwrap();
        // A healthy client with plenty of room.
        let (fast_tx, mut fast_rx) = mpsc::channel(OUTBOUND_QUEUE);
        handle.subscribe(Subscriber { conn: 2, identity, tx: fast_tx }, None).await.unwrap();

        for i in 0..8 {
            let add = Command::AddTopic { text: Private::new(format!("topic {i}")) };
            handle.execute(Actor::Person(facilitator), add).await.unwrap();
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
        let (tx, mut rx) = mpsc::channel(OUTBOUND_QUEUE);
        handle.subscribe(Subscriber { conn: 3, identity, tx }, Some(slow.seq)).await.unwrap();
        fold_queued(&mut slow, &mut rx);
        assert_eq!(slow, fast);
    }

    #[tokio::test]
    async fn a_board_that_does_not_exist_answers_not_found_and_leaves_the_registry() {
        let (_dir, hub, _, _) = board_with_facilitator().await;
        let missing = BoardId("ffffffffffffffffffffffffffffffff".into());
        let result =
            hub.with_board(&missing, |h| async move { h.execute(Actor::System, Command::EndTimebox).await }).await;
        assert!(matches!(result, Err(BoardError::NotFound)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(hub.live_boards(), 1, "only the real board stays live");
    }
}
