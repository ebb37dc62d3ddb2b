//! The three stacks the load generator drives, and how a simulated participant speaks to each.
//!
//! - [`Stack::Minim`]: the product, speaking its real protocol (`minim_shared::wire`).
//! - [`Stack::Bare`]: `bare-broadcast`, which relays each frame to the frame's room. The generator
//!   sends, for each command, the frame minim would deliver for it ([`shadow_frame`]), so the
//!   deliveries are the same size.
//! - [`Stack::SocketIo`]: `bench/socketio/server.js` (socket.io with the Redis adapter, the same
//!   board rules), spoken to through a thin Engine.IO v4 adapter ([`socketio`]).
//!
//! Each delivery is reduced to an [`Inbound`]: the generator needs the event's key (its sequence
//! number, or for the bare relay the number the generator gave the frame), and the answers to
//! commands. Decoding takes the fast path for events (the servers write `"type"` and `"seq"`
//! first) and reads everything else in full.

use crate::procs::{BindArg, Launch, Node, Programs};
use minim_shared::wire::{ClientMessage, ServerMessage};
use minim_shared::{Answer, Command, Event, Private, Seq, Sequenced, Timer, TopicId, UnixMillis, Viewer};
use minim_tests::cluster::RedisServer;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    Minim,
    Bare,
    SocketIo,
}

impl Stack {
    pub const ALL: [Stack; 3] = [Stack::Minim, Stack::Bare, Stack::SocketIo];

    pub fn label(self) -> &'static str {
        match self {
            Stack::Minim => "minim",
            Stack::Bare => "bare broadcast",
            Stack::SocketIo => "socket.io",
        }
    }

    /// Whether the stack keeps board state and answers commands (the bare relay does neither).
    pub fn has_rules(self) -> bool {
        self != Stack::Bare
    }
}

impl std::str::FromStr for Stack {
    type Err = String;
    fn from_str(s: &str) -> Result<Stack, String> {
        match s {
            "minim" => Ok(Stack::Minim),
            "bare" => Ok(Stack::Bare),
            "socketio" | "socket.io" => Ok(Stack::SocketIo),
            _ => Err(format!("unknown stack {s:?} (minim, bare, socketio)")),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    OneNode,
    /// Two nodes through one Redis (non-persistent, the same for every stack).
    TwoNodesRedis,
}

impl Topology {
    pub const ALL: [Topology; 2] = [Topology::OneNode, Topology::TwoNodesRedis];

    pub fn label(self) -> &'static str {
        match self {
            Topology::OneNode => "1 node",
            Topology::TwoNodesRedis => "2 nodes + Redis",
        }
    }
}

impl std::str::FromStr for Topology {
    type Err = String;

    fn from_str(s: &str) -> Result<Topology, String> {
        match s {
            "one_node" => Ok(Topology::OneNode),
            "two_nodes_redis" => Ok(Topology::TwoNodesRedis),
            _ => Err(format!("unknown topology {s:?} (one_node, two_nodes_redis)")),
        }
    }
}

/// A stack's servers, running.
pub struct Deployment {
    pub stack: Stack,
    pub nodes: Vec<Node>,
    pub redis: Option<RedisServer>,
    /// minim's data directory (shared by its nodes, as in the compose deployment).
    _data: tempfile::TempDir,
}

impl Deployment {
    pub async fn start(stack: Stack, topology: Topology, programs: &Programs) -> anyhow::Result<Deployment> {
        let data = tempfile::tempdir()?;
        let redis = match (stack, topology) {
            // socket.io keeps its boards in Redis even on one node (so the rules are written once).
            (Stack::SocketIo, _) | (_, Topology::TwoNodesRedis) => Some(RedisServer::start().await?),
            _ => None,
        };
        let count = match topology {
            Topology::OneNode => 1,
            Topology::TwoNodesRedis => 2,
        };
        let launch = match stack {
            Stack::Minim => {
                let mut args: Vec<String> =
                    ["--max-connections-per-address", "1000000", "--data-dir"].map(String::from).into();
                args.push(data.path().display().to_string());
                // Nodes on one machine divide its cores between them, as an operator would set
                // them up (`--workers`): two nodes on two cores get one worker each.
                let cores = std::thread::available_parallelism().map_or(1, usize::from);
                args.extend(["--workers".into(), (cores / count).max(1).to_string()]);
                if let (Topology::TwoNodesRedis, Some(redis)) = (topology, &redis) {
                    args.extend(["--redis-url".into(), redis.url.clone()]);
                }
                Launch {
                    program: programs.minim.clone(),
                    args,
                    // Its own notices (it announces its address at info) and everyone else's warnings: the
                    // benchmark measures the service, not its debug logs.
                    envs: vec![("RUST_LOG".into(), "warn,minim_server=info".into())],
                    bind: BindArg::Address,
                }
            }
            Stack::Bare => {
                let mut args = vec![];
                if let (Topology::TwoNodesRedis, Some(redis)) = (topology, &redis) {
                    args.extend(["--redis-url".into(), redis.url.clone()]);
                }
                Launch { program: programs.bare.clone(), args, envs: vec![], bind: BindArg::Address }
            }
            Stack::SocketIo => Launch {
                program: programs.node.clone(),
                args: vec![
                    programs.socketio_dir.join("server.js").display().to_string(),
                    "--redis".into(),
                    redis.as_ref().expect("socket.io always has Redis").url.clone(),
                ],
                envs: vec![("NODE_ENV".into(), "production".into())],
                bind: BindArg::Port,
            },
        };
        let nodes = (0..count).map(|_| Node::start(launch.clone())).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Deployment { stack, nodes, redis, _data: data })
    }

    /// The Redis server's process id, when the topology has one.
    pub fn redis_pid(&self) -> Option<u32> {
        self.redis.as_ref().and_then(RedisServer::pid)
    }
}

/// What a client needs to connect as one seat on one board.
#[derive(Clone, Debug)]
pub enum Ticket {
    Minim { ws_url: String, token: String },
    Bare { ws_url: String },
    SocketIo { ws_url: String, board: String, person: u32, facilitator: bool },
}

/// One thing a server sent, as far as the generator cares.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// An event (or relayed frame) with its key.
    Event(u64),
    Accepted {
        request: u64,
        seq: u64,
    },
    Rejected {
        request: u64,
        code: String,
    },
    /// minim's answer to `hello`: the board's head now.
    Welcome {
        head: u64,
    },
    /// A snapshot (minim's, to a resuming client that missed too much; socket.io's, to every
    /// joining client): the client now holds the board up to `seq`.
    Snapshot {
        seq: u64,
    },
    /// The server is restarting; come back after this long.
    Reconnect {
        after_ms: u64,
    },
    /// The server wants this frame back (Engine.IO's ping).
    Reply(&'static str),
    /// socket.io accepted the connection to the namespace.
    Connected,
    /// Refused or failed: the text says why.
    Error(String),
    Other,
}

/// The text frame that carries `command` as request `request`.
pub fn command_frame(stack: Stack, request: u64, command: &Command, key: u64) -> String {
    match stack {
        Stack::Minim => serde_json::to_string(&ClientMessage::Command { id: request, command: command.clone() })
            .expect("commands serialise"),
        Stack::SocketIo => {
            format!("42{request}[\"command\",{}]", serde_json::to_string(command).expect("commands serialise"))
        }
        Stack::Bare => shadow_frame(command, key),
    }
}

/// The frame minim delivers to a participant for `command` (its public copy), with `key` as the
/// sequence number: what the bare relay carries, so its deliveries are minim's size.
pub fn shadow_frame(command: &Command, key: u64) -> String {
    let now = UnixMillis(1_763_700_000_000);
    let topic = TopicId(7);
    let event = match command {
        Command::AddTopic { text } => {
            Event::TopicAdded { topic, author: None, text: Some(text.clone()), hidden: false }
        }
        Command::EditTopic { topic, text } => {
            Event::TopicEdited { topic: *topic, author: None, text: Some(text.clone()), hidden: false }
        }
        Command::PlaceVote { topic } => Event::VotePlaced { person: None, topic: Some(*topic), totals_public: false },
        Command::RemoveVote { topic } => Event::VoteRemoved { person: None, topic: Some(*topic), totals_public: false },
        Command::AnswerCheckIn { answer } => Event::CheckInAnswered { person: None, answer: *answer, previous: None },
        Command::StartTimer => Event::TimerStarted { topic, deadline: now },
        Command::PauseTimer => Event::TimerPaused { remaining_ms: 299_123 },
        Command::ResumeTimer => Event::TimerResumed { deadline: now },
        Command::ExtendTimer => Event::TimerExtended { timer: Timer::Running { deadline: now } },
        Command::StopTimer => Event::TimerStopped,
        Command::MoveOn => Event::TopicDiscussed { topic },
        Command::ChangePhase { to } => Event::PhaseChanged { from: *to, to: *to },
        _ => Event::TimerStopped,
    };
    let message = ServerMessage::Event(Sequenced { seq: Seq(key), event: event.visible_to(Viewer::Public) });
    serde_json::to_string(&message).expect("server messages serialise")
}

/// Reads one text frame from `stack`.
pub fn decode(stack: Stack, text: &str) -> Inbound {
    match stack {
        Stack::Minim => decode_minim(text),
        Stack::Bare => number_after(text, "{\"type\":\"event\",\"seq\":").map_or(Inbound::Other, Inbound::Event),
        Stack::SocketIo => socketio::decode(text),
    }
}

fn decode_minim(text: &str) -> Inbound {
    if let Some(seq) = number_after(text, "{\"type\":\"event\",\"seq\":") {
        return Inbound::Event(seq);
    }
    match serde_json::from_str::<ServerMessage>(text) {
        Ok(ServerMessage::Accepted { id, seq }) => Inbound::Accepted { request: id, seq: seq.0 },
        Ok(ServerMessage::Rejected { id, code, .. }) => Inbound::Rejected { request: id, code: format!("{code:?}") },
        Ok(ServerMessage::Welcome { head, .. }) => Inbound::Welcome { head: head.0 },
        Ok(ServerMessage::Snapshot { board }) => Inbound::Snapshot { seq: board.seq.0 },
        Ok(ServerMessage::Reconnect { after_ms }) => Inbound::Reconnect { after_ms },
        Ok(ServerMessage::Error { code, message }) => Inbound::Error(format!("{code:?}: {message}")),
        Ok(ServerMessage::Event(e)) => Inbound::Event(e.seq.0),
        Ok(_) => Inbound::Other,
        Err(e) => Inbound::Error(format!("unreadable frame ({e})")),
    }
}

/// The decimal number right after `prefix` at the start of `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = text.strip_prefix(prefix)?;
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The `hello` that starts a minim session (resuming after `since`, when given).
pub fn minim_hello(token: &str, since: Option<u64>) -> String {
    serde_json::to_string(&ClientMessage::Hello {
        protocol: minim_shared::wire::PROTOCOL_VERSION,
        token: minim_shared::wire::SessionToken(token.into()),
        since: since.map(Seq),
    })
    .expect("hello serialises")
}

/// A topic's text of a realistic length (people write a sentence or two).
pub fn topic_text(author: u32, n: u32) -> Private {
    Private::new(format!(
        "Topic {n} from seat {author}: how do I tell my manager the reorg plan will not survive contact with the team?"
    ))
}

/// The answers a participant cycles through at a check-in (each differs from the one before).
pub const ANSWERS: [Answer; 3] = [Answer::Up, Answer::Sideways, Answer::Down];

/// The thin adapter for Engine.IO v4 / socket.io v5 packets over a plain WebSocket.
pub mod socketio {
    use super::{Inbound, number_after};

    /// The path a WebSocket-only socket.io client connects to.
    pub fn ws_url(http_url: &str) -> String {
        format!("{}/socket.io/?EIO=4&transport=websocket", http_url.replacen("http://", "ws://", 1))
    }

    /// CONNECT to the default namespace, with who this seat is.
    pub fn connect_packet(board: &str, person: u32, facilitator: bool) -> String {
        let role = if facilitator { "facilitator" } else { "participant" };
        format!("40{}", serde_json::json!({"board": board, "person": person, "role": role}))
    }

    pub fn decode(text: &str) -> Inbound {
        match text.as_bytes() {
            // Engine.IO ping: answer pong.
            [b'2', ..] => Inbound::Reply("3"),
            [b'0', ..] => Inbound::Other,
            [b'4', b'0', ..] => Inbound::Connected,
            [b'4', b'4', ..] => Inbound::Error(format!("connection refused: {text}")),
            // The server writes {seq, board}: the number comes first.
            [b'4', b'2', ..] if text[2..].starts_with("[\"snapshot\",") => text[2..]
                .strip_prefix("[\"snapshot\",{")
                .and_then(|rest| number_after(rest, "\"seq\":"))
                .map_or_else(|| Inbound::Error(format!("odd snapshot: {text}")), |seq| Inbound::Snapshot { seq }),
            [b'4', b'2', ..] => match text.find("\"seq\":") {
                Some(at) => number_after(&text[at..], "\"seq\":").map_or(Inbound::Other, Inbound::Event),
                None => Inbound::Other,
            },
            [b'4', b'3', ..] => decode_ack(&text[2..]),
            _ => Inbound::Other,
        }
    }

    /// `<id>[{"ok":true,"seq":N}]` or `<id>[{"ok":false,"code":"...",...}]`.
    fn decode_ack(rest: &str) -> Inbound {
        let split = rest.find('[').unwrap_or(rest.len());
        let Ok(request) = rest[..split].parse::<u64>() else { return Inbound::Error(format!("odd ack: {rest}")) };
        #[derive(serde::Deserialize)]
        struct Ack {
            ok: bool,
            #[serde(default)]
            seq: Option<u64>,
            #[serde(default)]
            code: Option<String>,
        }
        match serde_json::from_str::<(Ack,)>(&rest[split..]) {
            Ok((Ack { ok: true, seq: Some(seq), .. },)) => Inbound::Accepted { request, seq },
            Ok((Ack { code, .. },)) => Inbound::Rejected { request, code: code.unwrap_or_default() },
            Err(e) => Inbound::Error(format!("odd ack ({e}): {rest}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_on_the_fast_path_and_everything_else_in_full() {
        let event = shadow_frame(&Command::PlaceVote { topic: TopicId(3) }, 41);
        assert_eq!(decode(Stack::Minim, &event), Inbound::Event(41));
        assert_eq!(decode(Stack::Bare, &event), Inbound::Event(41));
        let accepted = serde_json::to_string(&ServerMessage::Accepted { id: 9, seq: Seq(12) }).unwrap();
        assert_eq!(decode(Stack::Minim, &accepted), Inbound::Accepted { request: 9, seq: 12 });
        assert!(matches!(decode(Stack::Minim, "{\"type\":\"nonsense\"}"), Inbound::Error(_)));
    }

    #[test]
    fn socketio_packets() {
        assert_eq!(socketio::decode("2"), Inbound::Reply("3"));
        assert_eq!(socketio::decode("40{\"sid\":\"x\"}"), Inbound::Connected);
        assert_eq!(socketio::decode("42[\"event\",{\"seq\":17,\"event\":{\"type\":\"x\"}}]"), Inbound::Event(17));
        let snapshot = "42[\"snapshot\",{\"seq\":23,\"board\":{\"phase\":\"voting\",\"topics\":[]}}]";
        assert_eq!(socketio::decode(snapshot), Inbound::Snapshot { seq: 23 });
        assert!(matches!(socketio::decode("42[\"snapshot\",{\"board\":{}}]"), Inbound::Error(_)));
        assert_eq!(socketio::decode("4312[{\"ok\":true,\"seq\":5}]"), Inbound::Accepted { request: 12, seq: 5 });
        assert_eq!(
            socketio::decode("433[{\"ok\":false,\"code\":\"vote_limit\",\"message\":\"no\"}]"),
            Inbound::Rejected { request: 3, code: "vote_limit".into() }
        );
        let frame = command_frame(Stack::SocketIo, 4, &Command::StartTimer, 0);
        assert_eq!(frame, "424[\"command\",{\"type\":\"start_timer\"}]");
    }

    #[test]
    fn the_bare_relay_carries_frames_of_minims_size() {
        let command = Command::AddTopic { text: topic_text(3, 1) };
        let frame = shadow_frame(&command, 1234);
        assert!(frame.starts_with("{\"type\":\"event\",\"seq\":1234,\"event\":{\"type\":\"topic_added\""), "{frame}");
        assert!(frame.len() > 100, "{frame}");
    }
}
