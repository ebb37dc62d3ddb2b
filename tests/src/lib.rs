//! # minim-tests
//!
//! What crosses process boundaries, tested with the real parts: the `minim` binary started as a
//! child process on a free port with its own data directory, and real WebSocket clients that
//! speak the protocol and fold what they receive with `minim-shared`'s own `apply`, failing loudly
//! on any gap or duplicate.
//!
//! - [`Server`]: start, kill (SIGKILL), stop (SIGTERM), restart on the same data directory; every
//!   line it logs is kept for inspection.
//! - [`Api`]: the HTTP API (create a board, join through a link).
//! - [`Client`]: one WebSocket connection and the board it has folded.
//! - [`TestBoard`]: the usual start of a test: a server with one fresh board, and joining it.
//! - [`cluster`]: several nodes sharing one real `redis-server`, which a test can stop and wipe.
//! - [`nginx`]: the deployment's reverse proxy (`deploy/nginx.conf`) as a real `nginx` in front of nodes.
//! - [`browser`]: real headless Chromium over WebDriver; [`proxy`]: a network link to cut.

pub mod browser;
pub mod cluster;
pub mod nginx;
pub mod proxy;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use minim_shared::api::{CreateBoard, Join, Links};
pub use minim_shared::api::{Created, Joined};
use minim_shared::wire::{ClientMessage, ErrorCode, Identity, PROTOCOL_VERSION, ServerMessage, SessionToken};
use minim_shared::{Board, BoardId, Command, PersonId, Private, Seq, Settings};
use serde::Deserialize;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one expected message before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The `minim` binary, built once per test process (a no-op when it is up to date).
pub fn minim_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Process::new(cargo)
            // The same build as `scripts/test`'s (feature unification differs with `-p`), so it is a
            // no-op there rather than a second compile of the server.
            .args(["build", "--workspace", "--exclude", "minim-client", "--bins", "--message-format=json"])
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "building minim failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"]["name"] == "minim")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the minim executable")
    })
}

/// The built browser app: `MINIM_WEB_DIR` (scripts/test sets it), else `target/web`.
pub fn web_dir() -> PathBuf {
    std::env::var_os("MINIM_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web"))
}

/// A running `minim` process.
pub struct Server {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `minim` on a free port with `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path) -> anyhow::Result<Server> {
        Server::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra_args: &[&str]) -> anyhow::Result<Server> {
        let mut child = Process::new(minim_binary())
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--web-dir")
            .arg(web_dir())
            .args(extra_args)
            .env("RUST_LOG", "debug")
            .env_remove("MINIM_SECRET")
            .env_remove("MINIM_PUBLIC_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("while starting minim")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        for (stream, tx) in [
            (Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>, Some(url_tx)),
            (Box::new(child.stderr.take().expect("piped")), None),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines().map_while(Result::ok) {
                    if let (Some(tx), Some(at)) = (&tx, line.find("listening on http://")) {
                        let url = line[at + "listening on ".len()..].split_whitespace().next().unwrap_or("").to_owned();
                        let _ = tx.send(url);
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        match url_rx.recv_timeout(PATIENCE) {
            Ok(url) => Ok(Server { child, url, data_dir: data_dir.to_owned(), logs }),
            Err(_) => {
                let _ = child.kill();
                bail!("minim did not start; it said:\n{}", logs.lock().unwrap().join("\n"))
            }
        }
    }

    /// Every line the process has written so far (stdout and stderr).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill minim");
        self.child.wait().expect("reap minim");
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Process::new("kill").args(["-TERM", &pid]).status()?;
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("minim did not exit within 5 s of SIGTERM")
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url.trim_start_matches("http://").parse().expect("the server's URL is http://ip:port")
    }

    pub fn api(&self) -> Api {
        Api { url: self.url.clone() }
    }

    pub fn ws_url(&self, board: &BoardId) -> String {
        format!("{}/api/boards/{}/ws", self.url.replacen("http://", "ws://", 1), board)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP error answer: status and the `{code, message}` body.
#[derive(Debug, Deserialize)]
pub struct HttpError {
    #[serde(skip)]
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
}

/// The HTTP API of one server.
pub struct Api {
    url: String,
}

impl Api {
    async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<Result<serde_json::Value, HttpError>> {
        let mut response = awc::Client::new()
            .post(format!("{}{}", self.url, path))
            .timeout(PATIENCE)
            .send_json(&body)
            .await
            .map_err(|e| anyhow!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.map_err(|e| anyhow!("POST {path}: body: {e}"))?;
        if (200..300).contains(&status) {
            Ok(Ok(body))
        } else {
            let mut error: HttpError = serde_json::from_value(body)?;
            error.status = status;
            Ok(Err(error))
        }
    }

    /// A GET: the status and the body as text.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut response = awc::Client::new()
            .get(format!("{}{}", self.url, path))
            .timeout(PATIENCE)
            .send()
            .await
            .map_err(|e| anyhow!("GET {path}: {e}"))?;
        let body = response.body().await.map_err(|e| anyhow!("GET {path}: body: {e}"))?;
        Ok((response.status().as_u16(), String::from_utf8_lossy(&body).into_owned()))
    }

    /// One value from the node's `/metrics` (a line `name value`, without labels); `None` if the
    /// node does not report it.
    pub async fn metric(&self, name: &str) -> anyhow::Result<Option<f64>> {
        let (status, body) = self.get("/metrics").await?;
        anyhow::ensure!(status == 200, "GET /metrics: {status}");
        Ok(body.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
            let (n, value) = line.rsplit_once(' ')?;
            (n == name).then(|| value.parse().ok()).flatten()
        }))
    }

    pub async fn create_board(&self, title: &str, settings: Settings) -> anyhow::Result<Created> {
        let request = CreateBoard { title: Private::new(title), settings };
        let body = self.post("/api/boards", serde_json::to_value(request)?).await?;
        Ok(serde_json::from_value(body.map_err(|e| anyhow!("create failed: {e:?}"))?)?)
    }

    pub async fn try_join(&self, board: &BoardId, link: &str, name: &str) -> anyhow::Result<Result<Joined, HttpError>> {
        let join = Join { key: Links::key(link).expect("links carry a key"), name: Some(Private::new(name)) };
        let body = serde_json::to_value(join)?;
        Ok(self
            .post(&format!("/api/boards/{board}/join"), body)
            .await?
            .map(|v| serde_json::from_value(v).expect("join answer")))
    }

    /// Asks for a new participant link with a session token: the new link, or the refusal.
    pub async fn new_participant_link(
        &self,
        board: &BoardId,
        token: &str,
    ) -> anyhow::Result<Result<String, HttpError>> {
        let body = serde_json::to_value(minim_shared::api::NewParticipantLink { token: SessionToken(token.into()) })?;
        Ok(self
            .post(&format!("/api/boards/{board}/participant-link"), body)
            .await?
            .map(|v| serde_json::from_value::<minim_shared::api::ParticipantLink>(v).expect("a link").participant))
    }

    pub async fn join(&self, board: &BoardId, link: &str, name: &str) -> anyhow::Result<Joined> {
        self.try_join(board, link, name).await?.map_err(|e| anyhow!("join failed: {e:?}"))
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One client connection and the board it folded from what it received.
pub struct Client {
    socket: Socket,
    pub token: String,
    pub identity: Identity,
    pub board: Board,
    pub connected: Vec<PersonId>,
    /// Every message received, in order, for tests that look at the stream itself.
    pub received: Vec<ServerMessage>,
    next_request: u64,
}

/// A rejected command: the code and the human message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Client {
    /// Connects, says hello and folds the catch-up until it is at the head the server announced.
    pub async fn connect(ws_url: &str, token: impl AsRef<str>, since: Option<&Board>) -> anyhow::Result<Client> {
        let (socket, _) = tokio_tungstenite::connect_async(ws_url).await.context("while connecting")?;
        Client::hello(socket, token.as_ref(), since).await
    }

    /// [`Client::connect`] over a TCP connection the test set up itself (say, with small buffers).
    pub async fn connect_over(
        tcp: TcpStream,
        ws_url: &str,
        token: impl AsRef<str>,
        since: Option<&Board>,
    ) -> anyhow::Result<Client> {
        let (socket, _) =
            tokio_tungstenite::client_async(ws_url, MaybeTlsStream::Plain(tcp)).await.context("while connecting")?;
        Client::hello(socket, token.as_ref(), since).await
    }

    async fn hello(mut socket: Socket, token: &str, since: Option<&Board>) -> anyhow::Result<Client> {
        let hello = ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
            token: SessionToken(token.into()),
            since: since.map(|b| b.seq),
        };
        socket.send(Message::text(serde_json::to_string(&hello)?)).await?;
        let mut client = Client {
            socket,
            token: token.into(),
            identity: Identity::Projector,
            board: since.cloned().unwrap_or_default(),
            connected: vec![],
            received: vec![],
            next_request: 1,
        };
        let head = match client.next().await? {
            ServerMessage::Welcome { head, you, protocol, .. } => {
                assert_eq!(protocol, PROTOCOL_VERSION);
                client.identity = you;
                head
            }
            ServerMessage::Error { code, message } => bail!("refused: {code:?}: {message}"),
            other => bail!("expected welcome, got {other:?}"),
        };
        // Not `sync_to`: a client that claims to be ahead of the server must still get its snapshot.
        while client.board.seq != head {
            client.next().await?;
        }
        Ok(client)
    }

    /// Sends raw text, for malformed-input tests.
    pub async fn send_raw(&mut self, text: impl Into<String>) -> anyhow::Result<()> {
        self.socket.send(Message::text(text.into())).await?;
        Ok(())
    }

    pub async fn send_message(&mut self, message: Message) -> anyhow::Result<()> {
        self.socket.send(message).await?;
        Ok(())
    }

    /// The next protocol message (folding events and snapshots into `board` as they come).
    pub async fn next(&mut self) -> anyhow::Result<ServerMessage> {
        self.next_or_end().await?.ok_or_else(|| anyhow!("connection closed"))
    }

    /// [`Client::next`], or `None` once the connection ends without a close frame.
    pub async fn next_or_end(&mut self) -> anyhow::Result<Option<ServerMessage>> {
        // One deadline for the whole wait: pings and other control frames do not extend it.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| anyhow!("no message within {PATIENCE:?}"))?;
            // tungstenite names the end of the stream without a close frame a protocol error.
            let frame = match frame {
                None | Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => return Ok(None),
                Some(frame) => frame?,
            };
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(reason) => bail!("closed by server: {reason:?}"),
                _ => continue,
            };
            let message: ServerMessage = serde_json::from_str(&text).with_context(|| format!("unparseable: {text}"))?;
            match &message {
                ServerMessage::Event(e) => {
                    self.board.fold(e).map_err(|gap| anyhow!("gap or duplicate: had {} got {}", gap.have, gap.got))?
                }
                ServerMessage::Snapshot { board } => self.board = (**board).clone(),
                ServerMessage::Presence { connected } => self.connected = connected.clone(),
                _ => {}
            }
            self.received.push(message.clone());
            return Ok(Some(message));
        }
    }

    /// Reads until the connection closes; returns the close code and reason.
    pub async fn closed(&mut self) -> anyhow::Result<(u16, String)> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| anyhow!("not closed in time"))?
            {
                Some(Ok(Message::Close(Some(frame)))) => return Ok((frame.code.into(), frame.reason.to_string())),
                Some(Ok(Message::Close(None))) | None => return Ok((1005, String::new())),
                Some(Ok(Message::Text(text))) => self.received.push(serde_json::from_str(&text)?),
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("socket error before close: {e}"),
            }
        }
    }

    /// Folds messages until the board reaches `seq`.
    pub async fn sync_to(&mut self, seq: Seq) -> anyhow::Result<()> {
        while self.board.seq < seq {
            self.next().await?;
        }
        Ok(())
    }

    /// Sends a command and waits for its answer, folding events meanwhile.
    pub async fn send(&mut self, command: Command) -> anyhow::Result<Result<Seq, Refusal>> {
        let id = self.next_request;
        self.next_request += 1;
        self.send_raw(serde_json::to_string(&ClientMessage::Command { id, command })?).await?;
        loop {
            match self.next().await? {
                ServerMessage::Accepted { id: answered, seq } if answered == id => {
                    assert!(self.board.seq >= seq, "events arrive before their acceptance");
                    return Ok(Ok(seq));
                }
                ServerMessage::Rejected { id: answered, code, message } if answered == id => {
                    return Ok(Err(Refusal { code, message }));
                }
                _ => {}
            }
        }
    }

    /// Sends a command that must be accepted.
    pub async fn ok(&mut self, command: Command) -> anyhow::Result<Seq> {
        let kind = command.kind();
        self.send(command).await?.map_err(|r| anyhow!("{kind} was rejected: {r:?}"))
    }

    /// Sends a command that must be rejected.
    pub async fn refused(&mut self, command: Command) -> anyhow::Result<Refusal> {
        let kind = command.kind();
        match self.send(command).await? {
            Ok(seq) => bail!("{kind} was accepted (seq {seq}) but should have been refused"),
            Err(refusal) => Ok(refusal),
        }
    }

    /// Waits for the next message that satisfies `f`.
    pub async fn wait_for(&mut self, mut f: impl FnMut(&ServerMessage) -> bool) -> anyhow::Result<ServerMessage> {
        loop {
            let m = self.next().await?;
            if f(&m) {
                return Ok(m);
            }
        }
    }

    /// The next `error` message (skipping events and presence that may arrive meanwhile).
    pub async fn next_error(&mut self) -> anyhow::Result<ServerMessage> {
        self.wait_for(|m| matches!(m, ServerMessage::Error { .. })).await
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// A server of its own with one fresh board: how most end-to-end tests begin.
pub struct TestBoard {
    pub server: Server,
    pub created: Created,
    /// The server's data directory, removed when the test ends.
    pub dir: tempfile::TempDir,
}

impl TestBoard {
    pub async fn open(settings: Settings) -> anyhow::Result<TestBoard> {
        TestBoard::open_with(&[], "Test board", settings).await
    }

    /// With extra `minim` flags and a title.
    pub async fn open_with(args: &[&str], title: &str, settings: Settings) -> anyhow::Result<TestBoard> {
        let dir = tempfile::tempdir()?;
        let server = Server::start_with(dir.path(), args)?;
        let created = server.api().create_board(title, settings).await?;
        Ok(TestBoard { server, created, dir })
    }

    pub fn ws(&self) -> String {
        self.server.ws_url(&self.created.board)
    }

    /// Joins through `link` and connects; returns the join answer (with the token) and the client.
    pub async fn enter(&self, link: &str, name: &str) -> anyhow::Result<(Joined, Client)> {
        let joined = self.server.api().join(&self.created.board, link, name).await?;
        let client = Client::connect(&self.ws(), &joined.token, None).await?;
        Ok((joined, client))
    }

    pub async fn facilitator(&self, name: &str) -> anyhow::Result<(Joined, Client)> {
        self.enter(&self.created.links.facilitator.clone(), name).await
    }

    pub async fn participant(&self, name: &str) -> anyhow::Result<(Joined, Client)> {
        self.enter(&self.created.links.participant.clone(), name).await
    }

    /// Kills the server (SIGKILL) and starts a new one on the same data directory.
    pub fn kill_and_restart(&mut self) -> anyhow::Result<()> {
        self.server.kill();
        self.server = Server::start(self.dir.path())?;
        Ok(())
    }
}
