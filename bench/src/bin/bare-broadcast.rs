//! `bare-broadcast`: the plainest WebSocket fan-out this machine can do.
//!
//! It exists as the "physical limit" baseline for the minim benchmarks (see `bench/src/lib.rs`
//! and `BENCHMARKS.md`): no protocol, no state, no persistence, no validation.
//! A client connects to `/b/{board}` and joins room `{board}`; every Text frame it sends is
//! delivered verbatim to every connection in that room, the sender included. With `--redis-url`,
//! frames are also PUBLISHed on `bare:{board}` so that a second node delivers them to its own room
//! members: the two-node topology, at the cost of nothing but Redis pub/sub.
//!
//! This is not part of the product and must stay that way: whatever minim costs on top of this
//! is what the benchmark measures.
//!
//! Usage: `bare-broadcast --bind 127.0.0.1:0 [--redis-url redis://127.0.0.1:6379]`. Prints
//! `listening on http://127.0.0.1:PORT` once ready, nothing per message; exits on SIGTERM/SIGINT.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Capacity of each connection's outgoing queue, in messages. A reader that falls this far behind
/// is dropped rather than slowing down the room (messages are shared bytes, so this is cheap).
const QUEUE_CAPACITY: usize = 8192;
/// Capacity of the queue feeding the Redis publisher, in messages. When full, senders wait
/// (back-pressure to the clients that send) rather than losing cross-node frames.
const PUBLISH_QUEUE_CAPACITY: usize = 65_536;
/// Most PUBLISH commands sent in one pipelined round trip, in commands.
const PUBLISH_BATCH_MAX: usize = 4096;
/// Redis channel prefix; a board's channel is `bare:{board}`.
const CHANNEL_PREFIX: &str = "bare:";
/// Pause after a failed `accept` (e.g. out of file descriptors), in milliseconds, so that the
/// accept loop does not spin.
const ACCEPT_RETRY_MS: u64 = 10;

#[derive(Parser)]
#[command(about = "Bare WebSocket broadcast baseline for the minim benchmarks (not part of the product)")]
struct Cli {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Relay frames to other nodes through this Redis (pub/sub on `bare:*`).
    #[arg(long)]
    redis_url: Option<String>,
}

/// One connection as seen by its room.
struct Peer {
    queue: mpsc::Sender<Utf8Bytes>,
    kick: Arc<Notify>,
}

/// The rooms of this node, and its optional link to the other nodes.
pub struct Hub {
    /// Board -> connection id -> peer. A read lock is all a broadcast needs; only joins, leaves
    /// and drops write.
    rooms: RwLock<HashMap<Arc<str>, HashMap<u64, Peer>>>,
    next_id: AtomicU64,
    dropped: AtomicU64,
    /// `{node id:016x}:`, prepended to every payload this node publishes.
    node_prefix: Arc<[u8]>,
    publish: Option<mpsc::Sender<(Arc<str>, Utf8Bytes)>>,
}

/// A connection's membership of its room; leaving is dropping it.
struct Member {
    hub: Arc<Hub>,
    board: Arc<str>,
    id: u64,
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut rooms = self.hub.rooms.write().unwrap();
        if let Some(room) = rooms.get_mut(&self.board) {
            room.remove(&self.id);
            if room.is_empty() {
                rooms.remove(&self.board);
            }
        }
    }
}

impl Hub {
    /// Creates the hub; with a Redis URL, connects, subscribes (before returning, so that nothing
    /// published after "listening" is missed) and starts the publisher and subscriber tasks.
    pub async fn connect(redis_url: Option<&str>) -> anyhow::Result<Arc<Hub>> {
        // A random node id, so that a node recognises (and skips) its own publications.
        let node_prefix = format!("{:016x}:", RandomState::new().hash_one(std::process::id())).into_bytes().into();
        let Some(url) = redis_url else {
            return Ok(Hub::new(node_prefix, None));
        };
        let client = redis::Client::open(url)?;
        let connection = client.get_multiplexed_async_connection().await?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.psubscribe(format!("{CHANNEL_PREFIX}*")).await?;
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE_CAPACITY);
        let hub = Hub::new(node_prefix, Some(tx));
        tokio::spawn(publisher(connection, Arc::clone(&hub.node_prefix), rx));
        // The subscriber holds the hub weakly so that dropping the hub ends it.
        let weak = Arc::downgrade(&hub);
        let messages = pubsub.into_on_message();
        tokio::spawn(subscriber(weak, messages));
        Ok(hub)
    }

    fn new(node_prefix: Arc<[u8]>, publish: Option<mpsc::Sender<(Arc<str>, Utf8Bytes)>>) -> Arc<Hub> {
        let rooms = RwLock::new(HashMap::new());
        Arc::new(Hub { rooms, next_id: AtomicU64::new(0), dropped: AtomicU64::new(0), node_prefix, publish })
    }

    fn join(self: &Arc<Self>, board: &str) -> (Member, mpsc::Receiver<Utf8Bytes>, Arc<Notify>) {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let kick = Arc::new(Notify::new());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let board: Arc<str> = board.into();
        let peer = Peer { queue, kick: Arc::clone(&kick) };
        self.rooms.write().unwrap().entry(Arc::clone(&board)).or_default().insert(id, peer);
        (Member { hub: Arc::clone(self), board, id }, rx, kick)
    }

    /// Queues `text` for every connection in `board` on this node; never waits.
    fn deliver(&self, board: &str, text: &Utf8Bytes) {
        let mut full = Vec::new(); // does not allocate unless someone is dropped
        if let Some(room) = self.rooms.read().unwrap().get(board) {
            for (&id, peer) in room {
                // A closed queue means the connection is leaving; its `Member` removes it.
                if let Err(mpsc::error::TrySendError::Full(_)) = peer.queue.try_send(text.clone()) {
                    full.push(id);
                }
            }
        }
        for id in full {
            self.drop_slow(board, id);
        }
    }

    /// A full queue means that reader cannot keep up: drop it instead of blocking the room.
    fn drop_slow(&self, board: &str, id: u64) {
        let peer = self.rooms.write().unwrap().get_mut(board).and_then(|room| room.remove(&id));
        if let Some(peer) = peer {
            peer.kick.notify_one();
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            eprintln!("bare-broadcast: queue full, dropped a connection in room {board} ({dropped} so far)");
        }
    }

    /// A frame from a local client: delivered here at once, then handed to the publisher.
    async fn on_local(&self, board: &Arc<str>, text: Utf8Bytes) {
        self.deliver(board, &text);
        if let Some(publish) = &self.publish {
            // Only waits when the publisher is PUBLISH_QUEUE_CAPACITY messages behind.
            let _ = publish.send((Arc::clone(board), text)).await;
        }
    }
}

/// Sends queued publications, pipelining whatever has accumulated into one round trip, so that
/// no connection awaits Redis and a burst costs one round trip rather than one per message.
async fn publisher(
    mut connection: redis::aio::MultiplexedConnection,
    node_prefix: Arc<[u8]>,
    mut rx: mpsc::Receiver<(Arc<str>, Utf8Bytes)>,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, PUBLISH_BATCH_MAX).await > 0 {
        let mut pipe = redis::pipe();
        for (board, text) in batch.drain(..) {
            let mut payload = Vec::with_capacity(node_prefix.len() + text.len());
            payload.extend_from_slice(&node_prefix);
            payload.extend_from_slice(text.as_bytes());
            pipe.cmd("PUBLISH").arg(format!("{CHANNEL_PREFIX}{board}")).arg(payload).ignore();
        }
        if let Err(error) = pipe.exec_async(&mut connection).await {
            eprintln!("bare-broadcast: redis publish failed: {error}");
        }
    }
}

/// Delivers what other nodes published to this node's room members.
async fn subscriber(hub: Weak<Hub>, mut messages: redis::aio::PubSubStream) {
    while let Some(message) = messages.next().await {
        let Some(hub) = hub.upgrade() else { return };
        let Some(board) = message.get_channel_name().strip_prefix(CHANNEL_PREFIX) else { continue };
        let payload = message.get_payload_bytes();
        let prefix_len = hub.node_prefix.len();
        if payload.len() < prefix_len || payload[..prefix_len] == *hub.node_prefix {
            continue; // malformed, or our own publication (already delivered locally)
        }
        if let Ok(text) = Utf8Bytes::try_from(payload[prefix_len..].to_vec()) {
            hub.deliver(board, &text);
        }
    }
    if hub.strong_count() > 0 {
        eprintln!("bare-broadcast: redis subscription ended; no more frames from other nodes");
    }
}

/// The room of a request path `/b/{board}`, if it is one.
fn board_of(path: &str) -> Option<&str> {
    path.strip_prefix("/b/").filter(|board| !board.is_empty() && !board.contains('/'))
}

async fn connection(hub: Arc<Hub>, stream: TcpStream) {
    // Nagle's algorithm would hold small frames back waiting for ACKs; batching is done below.
    let _ = stream.set_nodelay(true);
    // Join inside the handshake callback, i.e. before the 101 goes out: once a client sees its
    // connection open, it is in the room and cannot miss frames sent after that.
    let mut joined = None;
    // The refusal type is fixed by tungstenite's `Callback` trait; its size is not ours to choose.
    #[allow(clippy::result_large_err, reason = "tungstenite's Callback signature")]
    let callback = |request: &Request, response: Response| match board_of(request.uri().path()) {
        Some(board) => {
            joined = Some(hub.join(board));
            Ok(response)
        }
        None => {
            let mut refusal = ErrorResponse::new(Some("expected /b/{board}".into()));
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    // tungstenite reads through a 128 KiB buffer by default, allocated per connection up front;
    // frames here are small, and idle connections should cost what the protocol needs.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await else {
        return;
    };
    let Some((member, mut queue, kick)) = joined else { return };
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            () = kick.notified() => break,
            received = queue.recv_many(&mut batch, QUEUE_CAPACITY) => {
                if received == 0 {
                    break;
                }
                // Feed everything queued, then flush once: far fewer syscalls than one send each.
                let mut failed = false;
                for text in batch.drain(..) {
                    if ws.feed(Message::Text(text)).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || ws.flush().await.is_err() {
                    break;
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => hub.on_local(&member.board, text).await,
                // Pings are answered by tungstenite while it is polled; after a Close it sends the
                // reply and the stream ends. Anything else is not part of this baseline.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
}

/// Accepts WebSocket connections until `shutdown` completes; then drops them all.
pub async fn serve(listener: TcpListener, hub: Arc<Hub>, shutdown: impl Future<Output = ()>) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(Arc::clone(&hub), stream));
                }
                Err(error) => {
                    eprintln!("bare-broadcast: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                }
            },
            // Reap finished connections so that the set does not grow without bound.
            Some(_) = connections.join_next() => {}
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let listener = TcpListener::bind(cli.bind).await?;
    let hub = Hub::connect(cli.redis_url.as_deref()).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
    stdout.flush()?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    serve(listener, hub, shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

    async fn start_node(redis_url: Option<&str>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub = Hub::connect(redis_url).await.unwrap();
        tokio::spawn(serve(listener, hub, std::future::pending()));
        addr
    }

    async fn join(addr: SocketAddr, board: &str) -> Client {
        tokio_tungstenite::connect_async(format!("ws://{addr}/b/{board}")).await.unwrap().0
    }

    async fn send(client: &mut Client, text: &str) {
        client.send(Message::Text(text.into())).await.unwrap();
    }

    async fn receive(client: &mut Client) -> String {
        let frame = tokio::time::timeout(Duration::from_secs(5), client.next()).await.expect("no frame within 5 s");
        match frame {
            Some(Ok(Message::Text(text))) => text.to_string(),
            other => panic!("expected a Text frame, got {other:?}"),
        }
    }

    async fn assert_silent(client: &mut Client) {
        let frame = tokio::time::timeout(Duration::from_millis(300), client.next()).await;
        assert!(frame.is_err(), "unexpected frame: {frame:?}");
    }

    #[tokio::test]
    async fn room_members_get_every_frame_and_other_rooms_nothing() {
        let addr = start_node(None).await;
        let (mut a1, mut a2, mut b) = (join(addr, "alpha").await, join(addr, "alpha").await, join(addr, "beta").await);
        send(&mut a1, "one").await;
        send(&mut a2, "two").await;
        for client in [&mut a1, &mut a2] {
            let mut got = [receive(client).await, receive(client).await];
            got.sort();
            assert_eq!(got, ["one", "two"]);
        }
        assert_silent(&mut b).await;
        assert!(tokio_tungstenite::connect_async(format!("ws://{addr}/elsewhere")).await.is_err());
    }

    #[tokio::test]
    async fn two_nodes_relay_through_redis_exactly_once() {
        // The project's harness: a real redis-server on a free port, killed on drop; it fails with
        // how to install Redis when there is none (scripts/test installs it).
        let redis = minim_tests::cluster::RedisServer::start().await.expect("a redis-server");
        let url = redis.url.clone();
        let (node1, node2) = (start_node(Some(&url)).await, start_node(Some(&url)).await);
        let mut sender = join(node1, "r").await;
        let mut remote = join(node2, "r").await;
        let mut elsewhere = join(node2, "other").await;
        send(&mut sender, "hello").await;
        assert_eq!(receive(&mut sender).await, "hello");
        assert_eq!(receive(&mut remote).await, "hello");
        send(&mut remote, "back").await;
        assert_eq!(receive(&mut remote).await, "back");
        assert_eq!(receive(&mut sender).await, "back");
        // Exactly once: no echo of a node's own publication, no duplicate from the relay.
        assert_silent(&mut sender).await;
        assert_silent(&mut remote).await;
        assert_silent(&mut elsewhere).await;
    }
}
