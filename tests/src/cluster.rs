//! Several `minim` nodes sharing boards through a real `redis-server`, as in production.
//!
//! - [`RedisServer`]: a `redis-server` child process on a free port, with or without append-only
//!   persistence, that a test can stop and start again on the same port (keeping or wiping its
//!   data), and reach directly to look at or tamper with what the nodes stored.
//! - [`Cluster`]: `n` nodes pointed at one Redis, sharing one data directory (so they share the
//!   generated signing secret, as the docker-compose deployment does).

use crate::{Api, Client, Created, Joined, PATIENCE, Server};
use anyhow::{Context, bail};
use minim_shared::{BoardId, Settings};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

/// A real `redis-server` on a free port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    persistent: bool,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Without persistence: a restart comes back empty.
    pub async fn start() -> anyhow::Result<RedisServer> {
        RedisServer::start_with(false).await
    }

    /// With append-only persistence fsynced on every write, as the docker-compose deployment.
    pub async fn start_persistent() -> anyhow::Result<RedisServer> {
        RedisServer::start_with(true).await
    }

    async fn start_with(persistent: bool) -> anyhow::Result<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut redis = RedisServer {
            child: None,
            port,
            url: format!("redis://127.0.0.1:{port}/"),
            persistent,
            dir: tempfile::tempdir()?,
        };
        redis.spawn().await?;
        Ok(redis)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let appendonly = if self.persistent { "yes" } else { "no" };
        let child = Process::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", appendonly, "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "could not start redis-server: these tests need a real Redis; install it with \
                 `apt-get install -y redis-server` (scripts/test does)",
            )?;
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.ping().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("redis-server did not answer on {} within {PATIENCE:?}", self.url);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let mut conn = self.connection().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// The process id, while it runs (to read its CPU time and memory from `/proc`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A fresh connection, to read or change what the nodes stored.
    pub async fn connection(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url.as_str())?;
        Ok(tokio::time::timeout(PATIENCE, client.get_multiplexed_async_connection()).await??)
    }

    /// SIGKILL: Redis goes away at once, as in a crash (with persistence, every accepted write
    /// was already fsynced).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and directory: with persistence it comes back with its data.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn().await
    }

    /// Starts again on the same port with nothing: a Redis that lost its data.
    pub async fn start_empty(&mut self) -> anyhow::Result<()> {
        self.kill();
        for entry in std::fs::read_dir(self.dir.path())? {
            let path = entry?.path();
            if path.is_dir() { std::fs::remove_dir_all(&path)? } else { std::fs::remove_file(&path)? }
        }
        self.spawn().await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `n` `minim` nodes sharing one Redis and one data directory.
pub struct Cluster {
    pub nodes: Vec<Server>,
    redis_url: String,
    extra_args: Vec<String>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(redis: &RedisServer, n: usize) -> anyhow::Result<Cluster> {
        Cluster::start_with(redis, n, &[])
    }

    /// With extra `minim` flags on every node.
    pub fn start_with(redis: &RedisServer, n: usize, extra_args: &[&str]) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster {
            nodes: vec![],
            redis_url: redis.url.clone(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            dir: tempfile::tempdir()?,
        };
        for _ in 0..n {
            let node = cluster.spawn()?;
            cluster.nodes.push(node);
        }
        Ok(cluster)
    }

    fn spawn(&self) -> anyhow::Result<Server> {
        let mut args = vec!["--redis-url", &self.redis_url];
        args.extend(self.extra_args.iter().map(String::as_str));
        Server::start_with(self.dir.path(), &args)
    }

    pub fn node(&self, i: usize) -> &Server {
        &self.nodes[i]
    }

    pub fn api(&self, i: usize) -> Api {
        self.nodes[i].api()
    }

    /// Kills node `i` (SIGKILL) and starts a new one in its place (on a new port).
    pub fn kill_and_restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i].kill();
        self.nodes[i] = self.spawn()?;
        Ok(())
    }

    /// Creates a board through node `i`.
    pub async fn create_board(&self, i: usize, settings: Settings) -> anyhow::Result<Created> {
        self.api(i).create_board("Cluster board", settings).await
    }

    /// Joins `board` through `link` on node `i` and connects there.
    pub async fn enter(&self, i: usize, board: &BoardId, link: &str, name: &str) -> anyhow::Result<(Joined, Client)> {
        let joined = self.api(i).join(board, link, name).await?;
        let client = Client::connect(&self.nodes[i].ws_url(board), &joined.token, None).await?;
        Ok((joined, client))
    }

    /// Waits until every node answers `/readyz` with `status` (200 or 503).
    pub async fn wait_ready(&self, status: u16) -> anyhow::Result<()> {
        for node in &self.nodes {
            wait_for_status(node, "/readyz", status).await?;
        }
        Ok(())
    }
}

/// Polls `path` on `node` until it answers `status`.
pub async fn wait_for_status(node: &Server, path: &str, status: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok((got, _)) = node.api().get(path).await
            && got == status
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} {path} did not answer {status} within {PATIENCE:?}", node.url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
