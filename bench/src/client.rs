//! One simulated participant: a task that owns one WebSocket, sends what the scenario tells it to,
//! and timestamps every delivery.
//!
//! The task keeps, per delivery, the event's key and the moment it arrived ([`Received`]); the
//! scenario collects these and joins them with the moments the commands were sent
//! ([`BoardLog`]) once the run is over, so recording costs a push per delivery. Clients that lose
//! their connection come back as each stack's app would: after the server's `reconnect` pause or
//! a backoff; minim's resume from the last event they hold (deliveries during that catch-up are
//! kept apart: they are not live latency), socket.io's take the board's snapshot the server sends
//! every joining client, and the bare relay's simply reconnect (it keeps nothing to resume from:
//! what was sent while they were away is missed).

use crate::clock::{Micros, now};
use crate::stack::{self, Inbound, Stack, Ticket};
use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use minim_shared::Command;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a handshake (connect, hello, welcome or namespace ack) may take.
const HANDSHAKE_PATIENCE: Duration = Duration::from_secs(30);
/// Orders queued for one client. The scheduler never blocks on a busy client: a full queue counts
/// as a command the generator could not send.
const OPS_QUEUE: usize = 256;
/// First pause before reconnecting without being told how long to wait, and the longest.
const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One accepted command: its key (the sequence number of its last event, or the bare relay's
/// frame number), the moment it was scheduled, and the node its author is connected to.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub key: u64,
    pub at: Micros,
    pub node: usize,
}

/// What the commands sent to one board turned into.
#[derive(Default)]
pub struct BoardLog {
    pub sent: Mutex<Vec<Sent>>,
    /// The bare relay's frame numbers for this board.
    next_key: AtomicU64,
    pub rejected: AtomicU64,
    /// Rejections by code, for the report (a scenario that means every command to pass says so).
    pub rejection_codes: Mutex<Vec<String>>,
}

impl BoardLog {
    pub fn take_sent(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.sent.lock().expect("not poisoned"))
    }
}

/// What a client received since it was last asked.
#[derive(Default, Debug)]
pub struct Received {
    /// Live deliveries: key and arrival.
    pub live: Vec<(u64, Micros)>,
    /// Keys received while catching up after a reconnect.
    pub caught_up: Vec<u64>,
    /// The highest sequence number a snapshot taken since the last collection holds: the client
    /// has every event up to it, whether or not each arrived on its own.
    pub covered_through: u64,
    /// minim only: deliveries whose sequence number was not the one after the previous one.
    pub out_of_order: u64,
    /// The node the client is connected to (set when collected).
    pub node: usize,
}

/// What the scenario can see of a client at any time.
#[derive(Default)]
pub struct ClientState {
    pub connected: AtomicBool,
    /// The highest key received (minim: the sequence number the client has folded to).
    pub last_key: AtomicU64,
    /// Deliveries since the last collection (live and caught up).
    pub count: AtomicU64,
    pub reconnects: AtomicU32,
    /// Commands sent and not answered yet (minim, socket.io; the bare relay answers nothing). A
    /// stretch is over only once this is 0 everywhere: events of a command still in flight reach
    /// some seats before others, and would count as lost at the others.
    pub unanswered: AtomicU64,
    /// When the client last finished catching up after (re)connecting.
    pub synced_at: AtomicU64,
    /// Why the client stopped, if it did.
    pub failure: Mutex<Option<String>>,
}

/// Where the answer to a command goes: the key of its last event, or the refusal's code.
pub type Reply = oneshot::Sender<Result<u64, String>>;

pub enum Op {
    /// Send a command; `at` is when the scenario scheduled it (latency counts from then).
    Send { command: Command, at: Micros, reply: Option<Reply> },
    /// Hand over what was received so far, and start afresh.
    Collect(oneshot::Sender<Received>),
}

/// A handle to a running client.
pub struct Client {
    pub ops: mpsc::Sender<Op>,
    pub state: Arc<ClientState>,
    /// The node it is connected to (its index in the deployment).
    pub node: usize,
}

impl Client {
    /// Connects to `node` (waiting for the handshake and catch-up) and starts the client's task.
    pub async fn start(stack: Stack, ticket: Ticket, log: Arc<BoardLog>, node: usize) -> anyhow::Result<Client> {
        let state = Arc::new(ClientState::default());
        let mut task = Task {
            stack,
            ticket,
            node,
            log,
            state: state.clone(),
            received: Received::default(),
            pending: VecDeque::new(),
            next_request: 1,
            catching_up_to: None,
            awaiting_snapshot: false,
            snapshot_seq: 0,
        };
        let socket = task.connect(None).await?;
        let (tx, rx) = mpsc::channel(OPS_QUEUE);
        tokio::spawn(task.run(socket, rx));
        Ok(Client { ops: tx, state, node })
    }

    /// Sends a command and waits for its answer: the key of its last event, or the refusal.
    pub async fn request(&self, command: Command) -> anyhow::Result<u64> {
        let (tx, rx) = oneshot::channel();
        let kind = command.kind();
        self.ops
            .send(Op::Send { command, at: now(), reply: Some(tx) })
            .await
            .map_err(|_| anyhow!("the client stopped"))?;
        tokio::time::timeout(HANDSHAKE_PATIENCE, rx)
            .await
            .with_context(|| format!("no answer to {kind}"))?
            .map_err(|_| anyhow!("the client stopped before {kind} was answered"))?
            .map_err(|code| anyhow!("{kind} was refused: {code}"))
    }

    /// Queues a command without waiting; `false` if the client's queue is full or it stopped.
    pub fn send(&self, command: Command, at: Micros) -> bool {
        self.ops.try_send(Op::Send { command, at, reply: None }).is_ok()
    }

    pub async fn collect(&self) -> Received {
        let (tx, rx) = oneshot::channel();
        let received = match self.ops.send(Op::Collect(tx)).await {
            Ok(()) => rx.await.unwrap_or_default(),
            Err(_) => Received::default(),
        };
        Received { node: self.node, ..received }
    }
}

/// A command sent and not yet answered: request number, scheduled moment, who waits.
type Pending = (u64, Micros, Option<Reply>);

struct Task {
    stack: Stack,
    ticket: Ticket,
    node: usize,
    log: Arc<BoardLog>,
    state: Arc<ClientState>,
    received: Received,
    /// Commands sent and not yet answered, in order: request number, scheduled moment, reply.
    pending: VecDeque<Pending>,
    next_request: u64,
    /// minim, while resuming: the head the server announced, up to which deliveries are catch-up.
    catching_up_to: Option<u64>,
    /// socket.io, after (re)connecting: the board's snapshot has not arrived yet.
    awaiting_snapshot: bool,
    /// socket.io: the latest snapshot's sequence number. Events at or below it are already in the
    /// board the client holds, and are dropped (they can arrive after it: the server joins the
    /// client to the board's room before reading the snapshot, so that nothing falls between).
    snapshot_seq: u64,
}

/// How a connection ended.
enum End {
    /// The scenario is over (its handle was dropped).
    Done,
    /// The server closed or asked us to come back after this long.
    Lost(Option<Duration>),
}

impl Task {
    fn ws_url(&self) -> &str {
        match &self.ticket {
            Ticket::Minim { ws_url, .. } | Ticket::Bare { ws_url } | Ticket::SocketIo { ws_url, .. } => ws_url,
        }
    }

    /// Opens the connection and does the stack's handshake. For minim, also reads the catch-up.
    async fn connect(&mut self, since: Option<u64>) -> anyhow::Result<Socket> {
        // Small buffers: an idle client needs little, and there are thousands of them.
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let (mut socket, _) = tokio::time::timeout(
            HANDSHAKE_PATIENCE,
            tokio_tungstenite::connect_async_with_config(self.ws_url(), Some(config), true),
        )
        .await
        .context("connecting took too long")?
        .context("while connecting")?;
        match self.ticket.clone() {
            Ticket::Bare { .. } => {}
            Ticket::Minim { token, .. } => {
                socket.send(Message::text(stack::minim_hello(&token, since))).await?;
                let head = loop {
                    match self.next_handshake_frame(&mut socket).await? {
                        Inbound::Welcome { head } => break head,
                        Inbound::Error(e) => bail!("minim refused the session: {e}"),
                        _ => {}
                    }
                };
                if since.is_none() {
                    // A new client: its first delivery is a snapshot, which sets where it starts.
                    loop {
                        if let Inbound::Snapshot { seq } = self.next_handshake_frame(&mut socket).await? {
                            self.state.last_key.store(seq, Relaxed);
                            break;
                        }
                    }
                }
                if self.state.last_key.load(Relaxed) < head {
                    self.catching_up_to = Some(head);
                }
            }
            Ticket::SocketIo { board, person, facilitator, .. } => {
                socket.send(Message::text(stack::socketio::connect_packet(&board, person, facilitator))).await?;
                loop {
                    match self.next_handshake_frame(&mut socket).await? {
                        Inbound::Connected => break,
                        Inbound::Reply(r) => socket.send(Message::text(r)).await?,
                        Inbound::Error(e) => bail!("{e}"),
                        _ => {}
                    }
                }
                // The snapshot follows, among the live events (read in `serve`).
                self.awaiting_snapshot = true;
            }
        }
        if self.catching_up_to.is_none() && !self.awaiting_snapshot {
            self.state.synced_at.store(now().0, Relaxed);
        }
        self.state.connected.store(true, Relaxed);
        Ok(socket)
    }

    async fn next_handshake_frame(&mut self, socket: &mut Socket) -> anyhow::Result<Inbound> {
        loop {
            let frame = tokio::time::timeout(HANDSHAKE_PATIENCE, socket.next())
                .await
                .context("no answer to the handshake")?
                .ok_or_else(|| anyhow!("closed during the handshake"))??;
            match frame {
                Message::Text(text) => return Ok(stack::decode(self.stack, &text)),
                Message::Close(reason) => bail!("closed during the handshake: {reason:?}"),
                _ => {}
            }
        }
    }

    async fn run(mut self, socket: Socket, mut ops: mpsc::Receiver<Op>) {
        let mut socket = Some(socket);
        let mut backoff = BACKOFF_START;
        loop {
            let end = match socket.take() {
                Some(s) => self.serve(s, &mut ops).await,
                None => End::Lost(None),
            };
            self.state.connected.store(false, Relaxed);
            // Unanswered commands will not be answered now.
            for (_, _, reply) in self.pending.drain(..) {
                if let Some(reply) = reply {
                    let _ = reply.send(Err("connection lost".into()));
                }
            }
            self.state.unanswered.store(0, Relaxed);
            let pause = match end {
                End::Done => return,
                End::Lost(after) => after.unwrap_or(backoff),
            };
            if !self.wait_answering(&mut ops, pause).await {
                return;
            }
            // Only minim resumes from where it was; socket.io's server sends every joining
            // client a snapshot, and the bare relay has nothing to resume from.
            let since = (self.stack == Stack::Minim).then(|| self.state.last_key.load(Relaxed));
            match self.connect(since).await {
                Ok(s) => {
                    self.state.reconnects.fetch_add(1, Relaxed);
                    backoff = BACKOFF_START;
                    socket = Some(s);
                }
                Err(_) => backoff = (backoff * 2).min(BACKOFF_MAX),
            }
        }
    }

    fn fail(&self, why: String) {
        *self.state.failure.lock().expect("not poisoned") = Some(why);
    }

    /// Sleeps, still answering the scenario (commands are refused while disconnected).
    async fn wait_answering(&mut self, ops: &mut mpsc::Receiver<Op>, pause: Duration) -> bool {
        let wake = tokio::time::sleep(pause);
        tokio::pin!(wake);
        loop {
            tokio::select! {
                () = &mut wake => return true,
                op = ops.recv() => match op {
                    None => return false,
                    Some(Op::Collect(tx)) => drop(tx.send(std::mem::take(&mut self.received))),
                    Some(Op::Send { reply, .. }) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err("not connected".into()));
                        }
                    }
                },
            }
        }
    }

    async fn serve(&mut self, mut socket: Socket, ops: &mut mpsc::Receiver<Op>) -> End {
        loop {
            tokio::select! {
                frame = socket.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Lost(None),
                        Some(Ok(_)) => continue,
                    };
                    match self.on_inbound(stack::decode(self.stack, &text)) {
                        Ok(Some(reply)) => {
                            if socket.send(Message::text(reply)).await.is_err() {
                                return End::Lost(None);
                            }
                        }
                        Ok(None) => {}
                        Err(end) => return end,
                    }
                }
                op = ops.recv() => match op {
                    None => {
                        let _ = socket.close(None).await;
                        return End::Done;
                    }
                    Some(Op::Collect(tx)) => drop(tx.send(std::mem::take(&mut self.received))),
                    Some(Op::Send { command, at, reply }) => {
                        let request = self.next_request;
                        self.next_request += 1;
                        let key = if self.stack.has_rules() { 0 } else { self.log.next_key.fetch_add(1, Relaxed) + 1 };
                        let frame = stack::command_frame(self.stack, request, &command, key);
                        if self.stack.has_rules() {
                            self.pending.push_back((request, at, reply));
                            self.state.unanswered.fetch_add(1, Relaxed);
                        } else {
                            // The relay answers nothing: the frame's number is its key from the start.
                            self.log.sent.lock().expect("not poisoned").push(Sent { key, at, node: self.node });
                            if let Some(reply) = reply {
                                let _ = reply.send(Ok(key));
                            }
                        }
                        if socket.send(Message::text(frame)).await.is_err() {
                            return End::Lost(None);
                        }
                    }
                },
            }
        }
    }

    /// Records one inbound message; returns a frame to send back, if the protocol wants one.
    fn on_inbound(&mut self, inbound: Inbound) -> Result<Option<&'static str>, End> {
        match inbound {
            Inbound::Event(key) => {
                if self.stack == Stack::SocketIo && key <= self.snapshot_seq {
                    return Ok(None);
                }
                let state = &self.state;
                state.count.fetch_add(1, Relaxed);
                let last = state.last_key.load(Relaxed);
                if self.stack == Stack::Minim && key != last + 1 {
                    self.received.out_of_order += 1;
                }
                state.last_key.store(last.max(key), Relaxed);
                match self.catching_up_to {
                    Some(head) => {
                        self.received.caught_up.push(key);
                        if key >= head {
                            self.catching_up_to = None;
                            state.synced_at.store(now().0, Relaxed);
                        }
                    }
                    None => self.received.live.push((key, now())),
                }
            }
            Inbound::Snapshot { seq } => {
                // The board up to `seq`: a resuming minim client that missed too much gets it
                // instead of the events, and socket.io sends it to every joining client.
                let state = &self.state;
                self.received.covered_through = self.received.covered_through.max(seq);
                self.snapshot_seq = self.snapshot_seq.max(seq);
                state.last_key.store(seq.max(state.last_key.load(Relaxed)), Relaxed);
                let caught_up = self.catching_up_to.is_some_and(|head| seq >= head);
                if caught_up || self.awaiting_snapshot {
                    self.catching_up_to = None;
                    self.awaiting_snapshot = false;
                    state.synced_at.store(now().0, Relaxed);
                }
            }
            Inbound::Accepted { request, seq } => {
                if let Some((_, at, reply)) = self.answered(request) {
                    self.log.sent.lock().expect("not poisoned").push(Sent { key: seq, at, node: self.node });
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(seq));
                    }
                }
            }
            Inbound::Rejected { request, code } => {
                if let Some((_, _, reply)) = self.answered(request) {
                    self.log.rejected.fetch_add(1, Relaxed);
                    let mut codes = self.log.rejection_codes.lock().expect("not poisoned");
                    if codes.len() < 100 {
                        codes.push(code.clone());
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(code));
                    }
                }
            }
            Inbound::Reconnect { after_ms } => return Err(End::Lost(Some(Duration::from_millis(after_ms)))),
            Inbound::Reply(frame) => return Ok(Some(frame)),
            Inbound::Error(e) => self.fail(e),
            Inbound::Welcome { .. } | Inbound::Connected | Inbound::Other => {}
        }
        Ok(None)
    }

    fn answered(&mut self, request: u64) -> Option<Pending> {
        // Answers come in the order the commands were sent.
        let at = self.pending.iter().position(|(r, _, _)| *r == request)?;
        self.state.unanswered.fetch_sub(1, Relaxed);
        self.pending.remove(at)
    }
}
