//! The deployment's reverse proxy, for real: `nginx` as a child process running the repository's own
//! `deploy/nginx.conf` (the file docker-compose.yml mounts), in front of nodes the test started.
//!
//! The file is read and changed as little as possible, line by line, and every change must find
//! what it expects or the start fails, so the test keeps running the real configuration:
//!
//! - `listen 8080;` becomes `listen 127.0.0.1:<free port>;`;
//! - the upstream's `server minimN:8080 ... resolve;` lines become `server <node address> ...;`,
//!   one per node, keeping their parameters (`max_fails`, `fail_timeout`) but dropping `resolve`,
//!   which follows Docker's DNS names (the nodes here are IP addresses, and Debian bookworm's nginx
//!   1.22 predates it);
//! - the paths nginx writes (`/run/nginx.pid`, `/var/log/nginx/`, `/var/cache/nginx/`) move into a
//!   temporary directory, so that nginx runs unprivileged.
//!
//! nginx runs in the foreground (`-g 'daemon off;'`), never as root: when the tests run as root it
//! is started as `nobody` (uid and gid 65534) in a directory given to that user. It is stopped on
//! drop (SIGTERM, which also ends its workers; SIGKILL if it lingers).

use crate::{Api, PATIENCE};
use anyhow::{Context, bail, ensure};
use minim_shared::BoardId;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

/// The repository's proxy configuration.
pub fn config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf")
}

/// The user nginx runs as when the tests run as root.
const NOBODY: u32 = 65534;

/// A running nginx, stopped on drop.
pub struct Nginx {
    child: Child,
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with `deploy/nginx.conf` in front of `nodes` and waits until it answers.
    pub async fn start(nodes: &[SocketAddr]) -> anyhow::Result<Nginx> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let original = std::fs::read_to_string(config_path())
            .with_context(|| format!("while reading {}", config_path().display()))?;
        let config = adapt(&original, port, nodes, dir.path())?;
        for sub in ["log", "cache"] {
            std::fs::create_dir(dir.path().join(sub))?;
        }
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config)?;

        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .unwrap_or(Path::new("nginx"));
        let mut command = Process::new(binary);
        command
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            // Errors before the configuration is read go to stderr; then error_log's file.
            .args(["-e", "stderr", "-g", "daemon off; master_process on;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log"))?);
        if dir.path().metadata()?.uid() == 0 {
            // Root here: nginx gets a directory of its own and runs as nobody.
            for entry in walk(dir.path())? {
                std::os::unix::fs::chown(&entry, Some(NOBODY), Some(NOBODY))?;
            }
            command.uid(NOBODY).gid(NOBODY);
        }
        let child = command.spawn().context(
            "could not start nginx: this test needs it; install it with `apt-get install -y nginx-light` \
             (scripts/test does)",
        )?;
        let mut nginx = Nginx { child, port, url: format!("http://127.0.0.1:{port}"), dir };
        nginx.wait_until_serving().await?;
        Ok(nginx)
    }

    async fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("nginx exited ({status}) at start:\n{}", self.errors());
            }
            if let Ok((200, _)) = self.api().get("/nginx-healthz").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nginx did not answer on {} within {PATIENCE:?}:\n{}", self.url, self.errors());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The HTTP API through the proxy.
    pub fn api(&self) -> Api {
        Api { url: self.url.clone() }
    }

    /// A board's WebSocket through the proxy.
    pub fn ws_url(&self, board: &BoardId) -> String {
        format!("ws://127.0.0.1:{}/api/boards/{}/ws", self.port, board)
    }

    /// The access log so far (`access_log` of the configuration, moved into the temporary directory).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/access.log")).unwrap_or_default()
    }

    /// What nginx said on stderr and in its error log.
    pub fn errors(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("log/error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master ends its workers, which SIGKILL of the master would leave behind.
        let _ = Process::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration with the substitutions of the module's documentation.
pub fn adapt(config: &str, port: u16, nodes: &[SocketAddr], dir: &Path) -> anyhow::Result<String> {
    let dir = dir.to_str().context("a UTF-8 temporary directory")?;
    let paths = [
        ("/run/nginx.pid", format!("{dir}/nginx.pid")),
        ("/var/log/nginx/", format!("{dir}/log/")),
        ("/var/cache/nginx/", format!("{dir}/cache/")),
    ];
    for (from, _) in &paths {
        ensure!(config.contains(from), "deploy/nginx.conf no longer mentions {from}: update tests/src/nginx.rs");
    }
    let mut listens = 0;
    let mut upstream_servers = 0;
    let mut out = String::new();
    for line in config.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let words: Vec<&str> = line.trim().trim_end_matches(';').split_whitespace().collect();
        let mut line = match words.as_slice() {
            ["listen", "8080"] => {
                listens += 1;
                format!("{indent}listen 127.0.0.1:{port};")
            }
            ["server", name, params @ ..] if name.starts_with("minim") && name.ends_with(":8080") => {
                let node = nodes.get(upstream_servers).with_context(|| {
                    format!("deploy/nginx.conf has more upstream servers than the {} nodes given", nodes.len())
                })?;
                upstream_servers += 1;
                let params: Vec<&str> = params.iter().copied().filter(|p| *p != "resolve").collect();
                format!("{indent}server {node} {};", params.join(" "))
            }
            _ => line.to_owned(),
        };
        for (from, to) in &paths {
            line = line.replace(from, to);
        }
        out.push_str(&line);
        out.push('\n');
    }
    ensure!(listens == 1, "deploy/nginx.conf should have exactly one `listen 8080;`, found {listens}");
    ensure!(
        upstream_servers == nodes.len(),
        "deploy/nginx.conf has {upstream_servers} `server minimN:8080 ...;` lines for {} nodes",
        nodes.len()
    );
    Ok(out)
}

/// `dir` and everything under it.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut all = vec![dir.to_owned()];
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() { all.extend(walk(&path)?) } else { all.push(path) }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_configuration_adapts_with_every_substitution_found() {
        let config = std::fs::read_to_string(config_path()).unwrap();
        let nodes: Vec<SocketAddr> = vec!["127.0.0.1:1001".parse().unwrap(), "127.0.0.1:1002".parse().unwrap()];
        let adapted = adapt(&config, 4242, &nodes, Path::new("/tmp/x")).unwrap();
        assert!(adapted.contains("listen 127.0.0.1:4242;"));
        assert!(adapted.contains("server 127.0.0.1:1001 max_fails="), "{adapted}");
        assert!(adapted.contains("server 127.0.0.1:1002 max_fails="));
        for gone in ["server minim", "resolve;", "/var/", "/run/"] {
            assert!(!adapted.contains(gone), "{gone} is still in:\n{adapted}");
        }
        assert!(adapt(&config, 4242, &nodes[..1], Path::new("/tmp/x")).is_err(), "one node for two servers");
    }
}
