//! One WebSocket connection: hello and token check, then a single loop over the client's frames,
//! a heartbeat and shutdown. The board's events do not pass through here: the board puts them in
//! the connection's mailbox, which its writer empties ([`crate::outbox`]), and the session only
//! subscribes (again, when the board dropped a client that fell behind). Nor do the answers to
//! commands: the session hands each command to the board and reads on; the board answers through
//! the mailbox too, as the session does its own messages.

use crate::auth::Tokens;
use crate::board_task::{BoardError, BoardHub, ClientReply, ConnId, Outbound, Subscriber, wire_error};
use crate::clock;
use crate::outbox::{Feed, Refused};
use actix_http::ws::Message;
use actix_web::web::Bytes;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError};
use futures_util::StreamExt;
use minim_shared::api::Grant;
use minim_shared::wire::{
    ClientMessage, ErrorCode, Identity, MAX_CLIENT_FRAME_BYTES, MAX_MESSAGES_PER_SECOND, MESSAGE_BURST,
    PROTOCOL_VERSION, ServerMessage, close,
};
use minim_shared::{Actor, BoardId, Seq};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long clients are asked to wait, at least, before reconnecting when the server goes away.
const RECONNECT_AFTER_MS: u64 = 1_000;
/// Over how long after that their returns are spread. Told to come back in the same instant, a
/// node's clients would all arrive together, and every live delivery on the machine would wait
/// behind the herd's handshakes and catch-ups (measured: `BENCHMARKS.md`, the reconnect storm).
const RECONNECT_SPREAD_MS: u64 = 1_000;

/// When connection `conn` is asked to come back. Connection numbers are consecutive, and the seats
/// of one board often are too: a multiplicative hash scatters them over the spread.
fn reconnect_after_ms(conn: ConnId) -> u64 {
    let scattered = conn.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    RECONNECT_AFTER_MS + ((scattered * RECONNECT_SPREAD_MS) >> 32)
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// What a session needs from the server.
pub struct SessionContext {
    pub hub: Arc<BoardHub>,
    pub tokens: Tokens,
    pub board: BoardId,
    pub shutdown: CancellationToken,
    /// A client not heard from (no frame, no pong) for this long is disconnected; the server pings
    /// every third of it, so a live but quiet client always answers in time.
    pub client_timeout: Duration,
    /// This connection's place in the per-address limit, freed when the session ends.
    pub _slot: crate::admission::Slot,
}

/// Why the loop ended, and how to close.
enum End {
    Close(Option<CloseReason>),
    /// The peer closed or the transport failed: nothing left to say.
    Gone,
}

/// A token bucket: [`MESSAGE_BURST`] messages at once, refilled at [`MAX_MESSAGES_PER_SECOND`].
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket { tokens: f64::from(MESSAGE_BURST), refilled: Instant::now() }
    }

    /// Takes one message's token; `false` if there is none left (a flood).
    fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.refilled).as_secs_f64() * f64::from(MAX_MESSAGES_PER_SECOND);
        self.tokens = (self.tokens + earned).min(f64::from(MESSAGE_BURST));
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

fn reason(code: u16, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code: CloseCode::Other(code), description: Some(description.into()) })
}

pub async fn run(stream: actix_ws::MessageStream, feed: Feed, ctx: SessionContext) {
    let conn: ConnId = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let stream = stream
        .max_frame_size(MAX_CLIENT_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_CLIENT_FRAME_BYTES);
    let mut conn_state = Connection { stream, feed, ctx, conn, last_heard: Instant::now(), bucket: Bucket::new() };
    conn_state.ctx.hub.metrics().connections.fetch_add(1, Ordering::Relaxed);
    let end = conn_state.serve().await;
    conn_state.ctx.hub.metrics().connections.fetch_sub(1, Ordering::Relaxed);
    // Leave the board at once, so everyone else's presence is right without waiting for an event.
    conn_state.ctx.hub.unsubscribe(&conn_state.ctx.board, conn);
    if let End::Close(reason) = end {
        conn_state.feed.close(reason);
    }
    tracing::debug!(conn, "connection closed");
}

struct Connection {
    stream: AggregatedMessageStream,
    /// The connection's writer: where the session says what it has to say, and what it makes the
    /// board's subscriptions from.
    feed: Feed,
    ctx: SessionContext,
    conn: ConnId,
    last_heard: Instant,
    bucket: Bucket,
}

impl Connection {
    /// Queues a message of the session's own for the writer. A client that reads none of them
    /// (the writer is that far behind) is as good as gone.
    fn send(&mut self, msg: &ServerMessage) -> Result<(), End> {
        self.say(Message::Text(Outbound::message(msg).text))
    }

    fn say(&mut self, message: Message) -> Result<(), End> {
        self.feed.say(message).map_err(|refused| self.let_go(refused))
    }

    /// A client whose writer takes no more (it reads nothing, or the connection closed) is gone.
    fn let_go(&self, refused: Refused) -> End {
        tracing::debug!(conn = self.conn, ?refused, "the connection's writer takes no more");
        End::Gone
    }

    /// Counts a frame against the connection's rate; a flood closes the connection.
    fn admit(&mut self) -> Result<(), End> {
        if self.bucket.take(Instant::now()) {
            return Ok(());
        }
        tracing::info!(conn = self.conn, board = %self.ctx.board, "closing a connection that sent too many messages");
        self.ctx.hub.metrics().rejected(ErrorCode::TooMany);
        let message = format!("Too many messages: at most {MAX_MESSAGES_PER_SECOND} a second. Reconnecting shortly.");
        Err(self.fail(ErrorCode::TooMany, &message, close::TOO_MANY))
    }

    fn fail(&mut self, code: ErrorCode, message: &str, close_code: u16) -> End {
        match self.send(&ServerMessage::error(code, message)) {
            Ok(()) => End::Close(reason(close_code, message)),
            Err(end) => end,
        }
    }

    async fn serve(&mut self) -> End {
        let (hello_token, since) = match self.await_hello().await {
            Ok(hello) => hello,
            Err(end) => return end,
        };
        let claims = match self.ctx.tokens.verify(&hello_token.0, &self.ctx.board) {
            Ok(claims) => claims,
            Err(refused) => {
                tracing::info!(conn = self.conn, reason = %refused, "token refused");
                return self.fail(
                    ErrorCode::Unauthorized,
                    "Your session is not valid for this board. Join again from the link.",
                    close::UNAUTHORIZED,
                );
            }
        };
        let identity = match (claims.grant.role(), claims.person) {
            (Some(role), Some(person)) => Identity::Person { person, role },
            _ => Identity::Projector,
        };
        let actor = match identity {
            Identity::Person { person, .. } => Actor::Person(person),
            Identity::Projector => Actor::Projector,
        };
        debug_assert_eq!(claims.grant == Grant::Projector, identity == Identity::Projector);
        self.feed.start_from(since);
        if let Err(end) = self.follow(identity).await {
            return end;
        }
        tracing::debug!(conn = self.conn, board = %self.ctx.board, "following");

        // The session ends when its token does, however long the connection has been open.
        let session_end = tokio::time::sleep(clock::until(minim_shared::UnixMillis(claims.exp.saturating_mul(1000))));
        tokio::pin!(session_end);
        let mut heartbeat = tokio::time::interval(self.ctx.client_timeout / 3);
        // Made once: a new one per message would join and leave the waiter list that every
        // connection on the node shares, each time.
        let shutdown = self.ctx.shutdown.clone().cancelled_owned();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    let _ = self.send(&ServerMessage::Reconnect { after_ms: reconnect_after_ms(self.conn) });
                    return End::Close(Some(CloseReason { code: CloseCode::Restart, description: Some("server restarting".into()) }));
                }
                // The board dropped us (we fell behind) or its task stopped: pick up where we were.
                () = self.feed.dropped() => {
                    if let Err(end) = self.follow(identity).await {
                        return end;
                    }
                }
                frame = self.stream.next() => {
                    self.last_heard = Instant::now();
                    if let Err(end) = self.admit() {
                        return end;
                    }
                    let result = match frame {
                        None => return End::Gone,
                        Some(frame) => self.on_frame(frame, actor).await,
                    };
                    if let Err(end) = result {
                        return end;
                    }
                }
                () = &mut session_end => {
                    tracing::info!(conn = self.conn, "session expired");
                    let message = "Your session has ended. Join again from the link.";
                    return self.fail(ErrorCode::Unauthorized, message, close::UNAUTHORIZED);
                }
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > self.ctx.client_timeout {
                        return End::Close(reason(close::IDLE, "no heartbeat"));
                    }
                    if let Err(end) = self.say(Message::Ping(Bytes::new())) {
                        return end;
                    }
                }
            }
        }
    }

    /// Waits for the first message, which must be a `hello` in the protocol this server speaks.
    async fn await_hello(&mut self) -> Result<(minim_shared::wire::SessionToken, Option<Seq>), End> {
        let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => {
                    return Err(self.fail(ErrorCode::NotHello, "Expected a hello message.", close::NOT_HELLO));
                }
                Ok(None) => return Err(End::Gone),
                Ok(Some(frame)) => frame,
            };
            self.admit()?;
            let text = match frame {
                Ok(AggregatedMessage::Text(text)) => text,
                Ok(AggregatedMessage::Ping(bytes)) => {
                    self.say(Message::Pong(bytes))?;
                    continue;
                }
                Ok(AggregatedMessage::Pong(_)) => continue,
                Ok(AggregatedMessage::Close(_)) => return Err(End::Gone),
                Ok(AggregatedMessage::Binary(_)) => {
                    self.send(&ServerMessage::error(ErrorCode::BadMessage, "Messages are JSON text frames."))?;
                    continue;
                }
                Err(e) => return Err(self.protocol_error(e)),
            };
            match serde_json::from_str::<ClientMessage>(&text) {
                Ok(ClientMessage::Hello { protocol, token, since }) => {
                    if protocol != PROTOCOL_VERSION {
                        let message = format!("This server speaks protocol {PROTOCOL_VERSION}; reload the page.");
                        return Err(self.fail(ErrorCode::UnsupportedProtocol, &message, close::UNSUPPORTED_PROTOCOL));
                    }
                    return Ok((token, since));
                }
                Ok(_) => {
                    return Err(self.fail(ErrorCode::NotHello, "The first message must be hello.", close::NOT_HELLO));
                }
                Err(e) => {
                    let message = format!("Not a message of this protocol: {}", describe_json_error(&e));
                    self.send(&ServerMessage::error(ErrorCode::BadMessage, message))?;
                }
            }
        }
    }

    /// (Re)subscribes to the board from the last event this client was sent.
    async fn follow(&mut self, identity: Identity) -> Result<(), End> {
        let (since, conn, feed) = (self.feed.written(), self.conn, &self.feed);
        let result = self
            .ctx
            .hub
            .with_board(&self.ctx.board, |board| {
                // A new subscription for each try: one that reached a stopped task is dropped.
                let sub = Subscriber { conn, identity, tx: feed.subscription() };
                async move { board.subscribe(sub, since).await }
            })
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let (code, message) = wire_error(&e);
                let close_code = match e {
                    BoardError::NotFound => close::BOARD_NOT_FOUND,
                    BoardError::Deleted => close::BOARD_DELETED,
                    BoardError::NotMember | BoardError::BadKey => close::UNAUTHORIZED,
                    _ => 1011,
                };
                Err(self.fail(code, &message, close_code))
            }
        }
    }

    async fn on_frame(&mut self, frame: Result<AggregatedMessage, ProtocolError>, actor: Actor) -> Result<(), End> {
        let arrived = Instant::now();
        let text = match frame {
            Ok(AggregatedMessage::Text(text)) => text,
            Ok(AggregatedMessage::Ping(bytes)) => return self.say(Message::Pong(bytes)),
            Ok(AggregatedMessage::Pong(_)) => return Ok(()),
            Ok(AggregatedMessage::Close(_)) => return Err(End::Gone),
            Ok(AggregatedMessage::Binary(_)) => {
                return self.send(&ServerMessage::error(ErrorCode::BadMessage, "Messages are JSON text frames."));
            }
            Err(e) => return Err(self.protocol_error(e)),
        };
        let message = match serde_json::from_str::<ClientMessage>(&text) {
            Ok(message) => message,
            Err(e) => {
                let message = format!("Not a message of this protocol: {}", describe_json_error(&e));
                return self.send(&ServerMessage::error(ErrorCode::BadMessage, message));
            }
        };
        match message {
            ClientMessage::Hello { .. } => self.send(&ServerMessage::error(ErrorCode::NotHello, "Already said hello.")),
            ClientMessage::Ping { id } => self.send(&ServerMessage::Pong { id, server_time: clock::now() }),
            ClientMessage::Command { id, command } => {
                // A client that reads none of its answers gets no more of them.
                self.feed.room_for_answer().map_err(|refused| self.let_go(refused))?;
                // The board answers the writer directly, behind the command's events (a client has
                // the events when it learns they were accepted); this session is not woken for it.
                let reply = ClientReply { id, conn: self.conn, answers: self.feed.answers(), arrived };
                self.ctx.hub.submit(&self.ctx.board, actor, command, reply).await;
                Ok(())
            }
        }
    }

    fn protocol_error(&mut self, e: ProtocolError) -> End {
        match e {
            ProtocolError::Overflow => {
                let message = format!("Messages may be at most {MAX_CLIENT_FRAME_BYTES} bytes.");
                self.fail(ErrorCode::TooLarge, &message, 1009)
            }
            other => {
                tracing::debug!(conn = self.conn, error = %other, "websocket protocol error");
                self.fail(ErrorCode::BadMessage, "The WebSocket frame was malformed.", 1002)
            }
        }
    }
}

/// Describes why a frame did not parse. It goes only to the client that sent the frame and is
/// never logged (a value quoted in it could be someone's topic).
fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_average_rate() {
        let start = Instant::now();
        let mut bucket = Bucket { tokens: f64::from(MESSAGE_BURST), refilled: start };
        for i in 0..MESSAGE_BURST {
            assert!(bucket.take(start), "message {i} of the burst");
        }
        assert!(!bucket.take(start), "the burst is spent");
        // A second later, a second's worth again, and no more.
        let later = start + Duration::from_secs(1);
        for i in 0..MAX_MESSAGES_PER_SECOND {
            assert!(bucket.take(later), "message {i} of the next second");
        }
        assert!(!bucket.take(later));
        // A long pause refills only up to the burst.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!((0..MESSAGE_BURST * 2).filter(|_| bucket.take(much_later)).count(), MESSAGE_BURST as usize);
    }

    #[test]
    fn a_nodes_clients_are_asked_back_spread_over_a_second_not_all_at_once() {
        // 2,500 consecutive connections, as a node holds after a busy hour: every tenth of the
        // spread gets its share, give or take a fifth, and no one is asked back sooner.
        let mut tenths = [0u32; 10];
        for conn in 1..=2_500 {
            let after = reconnect_after_ms(conn);
            assert!((RECONNECT_AFTER_MS..RECONNECT_AFTER_MS + RECONNECT_SPREAD_MS).contains(&after), "{after}");
            tenths[((after - RECONNECT_AFTER_MS) * 10 / RECONNECT_SPREAD_MS) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| (200..=300).contains(n)), "{tenths:?}");
        // The eight seats of one board, joined one after the other, come back at eight moments.
        let mut board: Vec<u64> = (801..=808).map(reconnect_after_ms).collect();
        board.sort_unstable();
        board.dedup();
        assert_eq!(board.len(), 8, "{board:?}");
    }
}
