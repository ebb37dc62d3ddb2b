//! Opening boards full of connected clients on any stack, and waiting for them to agree.
//!
//! minim boards are created and joined through its HTTP API (each seat gets its own session
//! token), then connected; the socket.io stack takes who a seat is at connection; the bare relay
//! only needs a room name. Seats are spread over the deployment's nodes as the scenario says.

use crate::client::{BoardLog, Client};
use crate::stack::{Deployment, Stack, Ticket, socketio};
use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, stream};
use minim_shared::api::{CreateBoard, Created, Join, Joined, Links};
use minim_shared::{Private, Settings};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Boards opened at once while setting up (each opens its seats one after another).
const SETUP_CONCURRENCY: usize = 32;
/// Seats of one board joining at once.
const SEAT_CONCURRENCY: usize = 16;

/// One board and its connected seats; seat 0 is the facilitator.
pub struct Room {
    pub name: String,
    pub log: Arc<BoardLog>,
    pub seats: Vec<Client>,
}

/// Opens `boards` boards of `seats` seats each. `node_of(board, seat)` picks each seat's node.
/// Returns the rooms and the connection setup rate (connections per second, joins included).
pub async fn open_rooms(
    deployment: &Deployment,
    boards: usize,
    seats: usize,
    settings: &Settings,
    node_of: impl Fn(usize, usize) -> usize + Copy,
) -> anyhow::Result<(Vec<Room>, f64)> {
    let started = Instant::now();
    let rooms: Vec<anyhow::Result<Room>> = stream::iter(0..boards)
        .map(|b| open_room(deployment, b, seats, settings, node_of))
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let rooms = rooms.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let rate = (boards * seats) as f64 / started.elapsed().as_secs_f64();
    Ok((rooms, rate))
}

async fn open_room(
    deployment: &Deployment,
    b: usize,
    seats: usize,
    settings: &Settings,
    node_of: impl Fn(usize, usize) -> usize,
) -> anyhow::Result<Room> {
    let log = Arc::new(BoardLog::default());
    let stack = deployment.stack;
    let index = |seat: usize| node_of(b, seat) % deployment.nodes.len();
    let node = |seat: usize| &deployment.nodes[index(seat)];
    // Seat 0 (the facilitator) first, then the others a few at a time, in seat order.
    let created = match stack {
        Stack::Minim => {
            let request = CreateBoard { title: Private::new(format!("Board {b}")), settings: settings.clone() };
            Some(post_json::<_, Created>(node(0).addr, "/api/boards", &request).await?)
        }
        _ => None,
    };
    let created = created.as_ref();
    let facilitator = Client::start(stack, ticket(stack, node(0), b, 0, created).await?, log.clone(), index(0)).await?;
    if stack == Stack::SocketIo && *settings != Settings::default() {
        facilitator.request(minim_shared::Command::ChangeSettings { settings: settings.clone() }).await?;
    }
    let others: Vec<anyhow::Result<Client>> = stream::iter(1..seats)
        .map(|seat| {
            let log = log.clone();
            let (node, index) = (node(seat), index(seat));
            async move { Client::start(stack, ticket(stack, node, b, seat, created).await?, log, index).await }
        })
        .buffered(SEAT_CONCURRENCY)
        .collect()
        .await;
    let mut clients = vec![facilitator];
    for client in others {
        clients.push(client?);
    }
    Ok(Room { name: format!("board-{b}"), log, seats: clients })
}

/// How one seat connects: for minim, after joining through the board's link.
async fn ticket(
    stack: Stack,
    node: &crate::procs::Node,
    b: usize,
    seat: usize,
    created: Option<&Created>,
) -> anyhow::Result<Ticket> {
    Ok(match (stack, created) {
        (Stack::Minim, Some(created)) => {
            let link = if seat == 0 { &created.links.facilitator } else { &created.links.participant };
            let join = Join { key: Links::key(link).context("links carry a key")?, name: Some(seat_name(seat)) };
            let joined: Joined = post_json(node.addr, &format!("/api/boards/{}/join", created.board), &join).await?;
            let ws_url = format!("ws://{}/api/boards/{}/ws", node.addr, created.board);
            Ticket::Minim { ws_url, token: joined.token.0 }
        }
        (Stack::Minim, None) => bail!("a minim seat needs its board's links"),
        (Stack::Bare, _) => Ticket::Bare { ws_url: format!("ws://{}/b/board-{b}", node.addr) },
        (Stack::SocketIo, _) => Ticket::SocketIo {
            ws_url: socketio::ws_url(&node.http_url()),
            board: format!("board-{b}"),
            person: seat as u32 + 1,
            facilitator: seat == 0,
        },
    })
}

fn seat_name(seat: usize) -> Private {
    Private::new(if seat == 0 { "Facilitator".to_owned() } else { format!("Manager {seat}") })
}

/// Waits until every seat of every room has received up to the room's highest key, then clears
/// what they recorded: the measurement starts from a quiet, agreed state.
pub async fn settle(rooms: &[Room], patience: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    for room in rooms {
        let head = room.seats.iter().map(|c| c.state.last_key.load(Relaxed)).max().unwrap_or(0);
        for (i, seat) in room.seats.iter().enumerate() {
            while seat.state.last_key.load(Relaxed) < head {
                if let Some(why) = seat.state.failure.lock().expect("not poisoned").clone() {
                    bail!("{} seat {i} failed: {why}", room.name);
                }
                if Instant::now() > deadline {
                    bail!("{} seat {i} did not catch up to {head} within {patience:?}", room.name);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    for room in rooms {
        for seat in &room.seats {
            seat.collect().await;
            seat.state.count.store(0, Relaxed);
        }
        room.log.take_sent();
    }
    Ok(())
}

/// A minimal HTTP/1.1 POST of a JSON body (the generator needs a few API calls, not a client library).
async fn post_json<T: serde::Serialize, R: serde::de::DeserializeOwned>(
    addr: std::net::SocketAddr,
    path: &str,
    body: &T,
) -> anyhow::Result<R> {
    let body = http(addr, "POST", path, &serde_json::to_vec(body)?).await?;
    serde_json::from_str(&body).with_context(|| format!("POST {path}: unexpected body {body}"))
}

/// The sum of one counter over the nodes' `/metrics` (minim only), when they answer.
pub async fn counter(deployment: &Deployment, name: &str) -> Option<f64> {
    let mut total = 0.0;
    for node in &deployment.nodes {
        let text = http(node.addr, "GET", "/metrics", b"").await.ok()?;
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(name))?;
        total += line.split_whitespace().nth(1)?.parse::<f64>().ok()?;
    }
    Some(total)
}

async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut stream =
        tokio::net::TcpStream::connect(addr).await.with_context(|| format!("while connecting to {addr}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .with_context(|| format!("{method} {path}: no answer"))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("{method} {path}: no HTTP answer"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') {
        bail!("{method} {path}: {status}: {body}");
    }
    // Chunked bodies would need decoding; actix sends a Content-Length for these small answers.
    Ok(body.to_owned())
}
