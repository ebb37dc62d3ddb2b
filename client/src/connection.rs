//! The live connection to one board over a WebSocket.
//!
//! It says `hello` (resuming with the folded board's `seq` when it has one), folds every event into
//! the board with [`Board::fold`] (a gap or a duplicate means: reconnect without `since` to get a
//! snapshot), answers commands' `accepted`/`rejected`, tracks presence, pings every
//! [`PING_EVERY_MS`] to estimate the server's clock ([`ClockSync`]), and reconnects on its own
//! with backoff ([`present::backoff_ms`]) or after the delay a `reconnect` message asks for.
//! Close code 4401 means the session is no longer valid: the page shows the join form again.
//!
//! The board is never edited locally: the only writer of [`Live::board`] is this module, and only
//! with events and snapshots from the server.

use crate::app::Errors;
use leptos::prelude::*;
use minim_shared::present::{self, ClockSync};
use minim_shared::wire::{ClientMessage, ErrorCode, Identity, PROTOCOL_VERSION, ServerMessage, SessionToken, close};
use minim_shared::{Board, Command, PersonId, Seq};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// How often to ping for clock sync (the server's own heartbeat keeps the socket alive).
pub const PING_EVERY_MS: u64 = 10_000;

/// What the connection indicator shows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnState {
    Connecting,
    Connected,
    Offline,
}

impl ConnState {
    /// The `data-state` value.
    pub fn attr(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Offline => "offline",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ConnState::Connecting => "Connecting…",
            ConnState::Connected => "Connected",
            ConnState::Offline => "Offline, reconnecting…",
        }
    }
}

/// Everything the views read about a live board, plus the way to send commands. `Copy`: signals
/// and a handle to the connection.
#[derive(Clone, Copy)]
pub struct Live {
    /// The board as folded from the server's events.
    pub board: RwSignal<Board>,
    /// Who is connected now.
    pub presence: RwSignal<Vec<PersonId>>,
    pub state: RwSignal<ConnState>,
    /// Server clock minus local clock, in milliseconds.
    pub offset_ms: RwSignal<i64>,
    /// Who the server says we are (set by `welcome`).
    pub identity: RwSignal<Option<Identity>>,
    /// The local clock, ticking every 250 ms while a board is on screen.
    pub now_ms: RwSignal<u64>,
    conn: StoredValue<Option<Rc<Connection>>, LocalStorage>,
}

impl Live {
    /// The person this viewer is, if a person.
    pub fn me(&self) -> Option<PersonId> {
        match self.identity.get() {
            Some(Identity::Person { person, .. }) => Some(person),
            _ => None,
        }
    }

    /// This connection's session token, for the few HTTP calls made as this person.
    pub fn token(&self) -> Option<String> {
        self.conn.with_value(|c| c.as_ref().map(|c| c.token.0.clone()))
    }

    /// From the board, not the welcome: the role can be handed over during the meeting.
    pub fn is_facilitator(&self) -> bool {
        self.me().is_some_and(|me| self.board.with(|b| b.is_facilitator(me)))
    }

    /// Sends a command; its rejection shows in the error place.
    pub fn send(&self, command: Command) {
        self.send_then(command, |_| {});
    }

    /// Sends a command and calls `done(accepted)` when the server answers.
    pub fn send_then(&self, command: Command, done: impl FnOnce(bool) + 'static) {
        match self.conn.get_value() {
            Some(conn) => conn.send(command, Box::new(done)),
            None => done(false),
        }
    }

    /// Closes the connection for good (the view is going away).
    pub fn stop(&self) {
        if let Some(conn) = self.conn.get_value() {
            conn.stop();
        }
        self.conn.set_value(None);
    }
}

type Reply = Box<dyn FnOnce(bool)>;

/// One WebSocket and the handlers that keep it; dropping it detaches them and closes the socket.
struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// The connection's own state (not reactive; the views read [`Live`]).
pub struct Connection {
    url: String,
    token: SessionToken,
    live: Live,
    errors: Errors,
    on_unauthorized: Box<dyn Fn(String)>,
    me: Weak<Connection>,
    socket: RefCell<Option<Socket>>,
    /// Failed attempts in a row (for the backoff).
    attempt: Cell<u32>,
    /// Resume with `since` on the next hello (false after a gap: get a snapshot).
    resume: Cell<bool>,
    welcomed: Cell<bool>,
    stopped: Cell<bool>,
    /// The delay a `reconnect` message asked for.
    retry_after: Cell<Option<u64>>,
    /// The last error message the server sent (explains the close that follows).
    last_error: RefCell<Option<(ErrorCode, String)>>,
    next_id: Cell<u64>,
    replies: RefCell<HashMap<u64, Reply>>,
    pings: RefCell<HashMap<u64, u64>>,
    clock: RefCell<ClockSync>,
    retry_timer: Cell<Option<TimeoutHandle>>,
    heartbeat: Cell<Option<IntervalHandle>>,
}

impl Connection {
    /// Opens the connection to `board` with `token`; `on_unauthorized` runs (with the server's
    /// message) if the server refuses the session.
    pub fn open(board: &str, token: String, errors: Errors, on_unauthorized: impl Fn(String) + 'static) -> Live {
        let live = Live {
            board: RwSignal::new(Board::default()),
            presence: RwSignal::new(Vec::new()),
            state: RwSignal::new(ConnState::Connecting),
            offset_ms: RwSignal::new(0),
            identity: RwSignal::new(None),
            now_ms: RwSignal::new(crate::browser::now_ms()),
            conn: StoredValue::new_local(None),
        };
        let url = present::websocket_url(&crate::browser::protocol(), &crate::browser::host(), board);
        let conn = Rc::new_cyclic(|me| Connection {
            url,
            token: SessionToken(token),
            live,
            errors,
            on_unauthorized: Box::new(on_unauthorized),
            me: me.clone(),
            socket: RefCell::new(None),
            attempt: Cell::new(0),
            resume: Cell::new(true),
            welcomed: Cell::new(false),
            stopped: Cell::new(false),
            retry_after: Cell::new(None),
            last_error: RefCell::new(None),
            next_id: Cell::new(1),
            replies: RefCell::new(HashMap::new()),
            pings: RefCell::new(HashMap::new()),
            clock: RefCell::new(ClockSync::new()),
            retry_timer: Cell::new(None),
            heartbeat: Cell::new(None),
        });
        let weak = conn.me.clone();
        let heartbeat = set_interval_with_handle(
            move || {
                if let Some(conn) = weak.upgrade() {
                    conn.ping();
                }
            },
            Duration::from_millis(PING_EVERY_MS),
        );
        conn.heartbeat.set(heartbeat.ok());
        conn.connect();
        live.conn.set_value(Some(conn));
        live
    }

    fn connect(&self) {
        if self.stopped.get() {
            return;
        }
        self.welcomed.set(false);
        self.live.state.set(ConnState::Connecting);
        let ws = match WebSocket::new(&self.url) {
            Ok(ws) => ws,
            Err(_) => return self.schedule_reconnect(),
        };
        let weak = self.me.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || {
            if let Some(conn) = weak.upgrade() {
                conn.hello();
            }
        });
        let weak = self.me.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let (Some(conn), Some(text)) = (weak.upgrade(), e.data().as_string()) else { return };
            match serde_json::from_str::<ServerMessage>(&text) {
                Ok(message) => conn.on_message(message),
                Err(_) => conn.errors.show("The server sent a message this page does not understand. Reload the page."),
            }
        });
        let weak = self.me.clone();
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            if let Some(conn) = weak.upgrade() {
                conn.on_close(e.code());
            }
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.replace_socket(Some(Socket { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close }));
    }

    /// Swaps the socket. The old one is dropped later, never inside one of its own handlers.
    fn replace_socket(&self, socket: Option<Socket>) {
        if let Some(old) = self.socket.replace(socket) {
            set_timeout(move || drop(old), Duration::ZERO);
        }
    }

    fn send_message(&self, message: &ClientMessage) -> bool {
        let socket = self.socket.borrow();
        let Some(socket) = socket.as_ref() else { return false };
        if socket.ws.ready_state() != WebSocket::OPEN {
            return false;
        }
        match serde_json::to_string(message) {
            Ok(text) => socket.ws.send_with_str(&text).is_ok(),
            Err(_) => false,
        }
    }

    fn hello(&self) {
        let seq = self.live.board.with_untracked(|b| b.seq);
        let since = (self.resume.get() && seq > Seq::ZERO).then_some(seq);
        let hello = ClientMessage::Hello { protocol: PROTOCOL_VERSION, token: self.token.clone(), since };
        if self.send_message(&hello) {
            self.ping();
        }
    }

    fn ping(&self) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let sent = crate::browser::now_ms();
        if self.send_message(&ClientMessage::Ping { id }) {
            let mut pings = self.pings.borrow_mut();
            // Unanswered pings of a dropped socket are forgotten.
            pings.retain(|_, at| sent.saturating_sub(*at) < 60_000);
            pings.insert(id, sent);
        }
    }

    fn send(&self, command: Command, done: Reply) {
        if !self.welcomed.get() {
            self.errors.show("You are offline, so that was not sent. It will work again once reconnected.");
            return done(false);
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        if self.send_message(&ClientMessage::Command { id, command }) {
            self.replies.borrow_mut().insert(id, done);
        } else {
            self.errors.show("That could not be sent. Try again in a moment.");
            done(false);
        }
    }

    fn reply(&self, id: u64, accepted: bool) {
        let done = self.replies.borrow_mut().remove(&id);
        if let Some(done) = done {
            done(accepted);
        }
    }

    fn on_message(&self, message: ServerMessage) {
        match message {
            ServerMessage::Welcome { you, head, .. } => {
                self.welcomed.set(true);
                self.attempt.set(0);
                self.identity_and_state(you);
                if self.live.board.with_untracked(|b| b.seq > head) {
                    // The server knows less than we folded: start over from its snapshot.
                    self.resync();
                }
            }
            ServerMessage::Snapshot { board } => {
                self.resume.set(true);
                self.live.board.set(*board);
            }
            ServerMessage::Event(event) => {
                let next = self.live.board.with_untracked(|b| b.seq.next());
                if event.seq == next {
                    // A new phase makes an earlier refusal moot.
                    if matches!(event.event, minim_shared::Event::PhaseChanged { .. }) {
                        self.errors.clear();
                    }
                    self.live.board.update(|b| {
                        let _ = b.fold(&event);
                    });
                } else {
                    // A gap or a duplicate: this copy cannot be trusted; get a snapshot.
                    self.resync();
                }
            }
            ServerMessage::Accepted { id, .. } => {
                self.errors.clear();
                self.reply(id, true);
            }
            ServerMessage::Rejected { id, message, .. } => {
                self.errors.show(message);
                self.reply(id, false);
            }
            ServerMessage::Error { code, message } => {
                // A lagging client gets a snapshot by itself; nothing for the person to do.
                if code != ErrorCode::Lagging {
                    self.errors.show(message.clone());
                }
                *self.last_error.borrow_mut() = Some((code, message));
            }
            ServerMessage::Presence { connected } => self.live.presence.set(connected),
            ServerMessage::Pong { id, server_time } => {
                if let Some(sent) = self.pings.borrow_mut().remove(&id) {
                    let mut clock = self.clock.borrow_mut();
                    clock.add(sent, crate::browser::now_ms(), server_time);
                    self.live.offset_ms.set(clock.offset_ms());
                }
            }
            ServerMessage::Reconnect { after_ms } => self.retry_after.set(Some(after_ms)),
        }
    }

    fn identity_and_state(&self, you: Identity) {
        self.live.identity.set(Some(you));
        self.live.state.set(ConnState::Connected);
    }

    /// Drops this copy of the board and reconnects at once without `since`.
    fn resync(&self) {
        self.resume.set(false);
        self.replace_socket(None);
        self.welcomed.set(false);
        self.live.state.set(ConnState::Connecting);
        self.reconnect_after(0);
    }

    fn on_close(&self, code: u16) {
        self.welcomed.set(false);
        // Commands without an answer may or may not have happened; their forms stop waiting.
        let unanswered: Vec<Reply> = self.replies.borrow_mut().drain().map(|(_, r)| r).collect();
        for done in unanswered {
            done(false);
        }
        self.replace_socket(None);
        if self.stopped.get() {
            return;
        }
        let message = self.last_error.borrow_mut().take().map(|(_, m)| m);
        match code {
            close::UNAUTHORIZED => {
                self.stop();
                let message =
                    message.unwrap_or_else(|| "Your session is no longer valid. Join again from the link.".into());
                (self.on_unauthorized)(message);
            }
            close::BOARD_NOT_FOUND => {
                self.stop();
                self.errors.show(message.unwrap_or_else(|| "This board does not exist.".into()));
            }
            close::BOARD_DELETED => {
                self.stop();
                self.errors.show(message.unwrap_or_else(|| "This board was deleted.".into()));
            }
            close::UNSUPPORTED_PROTOCOL => {
                self.stop();
                self.errors.show("minim was updated while this page was open. Reload the page.");
            }
            _ => self.schedule_reconnect(),
        }
    }

    fn schedule_reconnect(&self) {
        self.live.state.set(ConnState::Offline);
        let delay = self.retry_after.take().unwrap_or_else(|| {
            let attempt = self.attempt.get();
            self.attempt.set(attempt.saturating_add(1));
            present::backoff_ms(attempt, crate::browser::random())
        });
        self.reconnect_after(delay);
    }

    fn reconnect_after(&self, delay_ms: u64) {
        if let Some(old) = self.retry_timer.take() {
            old.clear();
        }
        let weak = self.me.clone();
        let handle = set_timeout_with_handle(
            move || {
                if let Some(conn) = weak.upgrade() {
                    conn.retry_timer.set(None);
                    conn.connect();
                }
            },
            Duration::from_millis(delay_ms),
        );
        self.retry_timer.set(handle.ok());
    }

    fn stop(&self) {
        self.stopped.set(true);
        self.live.state.set(ConnState::Offline);
        if let Some(t) = self.retry_timer.take() {
            t.clear();
        }
        if let Some(h) = self.heartbeat.take() {
            h.clear();
        }
        self.replace_socket(None);
    }
}
