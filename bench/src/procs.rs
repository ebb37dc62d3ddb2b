//! The servers under test, as child processes, and what the kernel says they cost.
//!
//! Every server is started on a free port and announces itself with one line on stdout
//! (`... listening on http://ADDR`); [`Node`] waits for that line. [`Usage`] reads CPU time and
//! resident memory from `/proc`, so a scenario can say what the server (and Redis, when it is part
//! of the topology) spent, measured the same way for every stack. It also reads how long the
//! process's threads were ready to run but waited for a CPU: how crowded the machine, which the
//! load generator shares with the servers, was for each of them.

use anyhow::{Context, bail};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a server may take to start listening.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// How to start one server process (kept so the process can be restarted on the same port).
#[derive(Clone, Debug)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    /// The argument that names the bind address (`--bind`, `--port`), so a restart can reuse the port.
    pub bind: BindArg,
}

#[derive(Clone, Copy, Debug)]
pub enum BindArg {
    /// `--bind 127.0.0.1:PORT` (minim, bare-broadcast).
    Address,
    /// `--port PORT` (the Node server).
    Port,
}

/// A running server process. Killed on drop.
pub struct Node {
    launch: Launch,
    child: Child,
    pub addr: SocketAddr,
}

impl Node {
    /// Starts on a free port.
    pub fn start(launch: Launch) -> anyhow::Result<Node> {
        Node::spawn(launch, 0)
    }

    fn spawn(launch: Launch, port: u16) -> anyhow::Result<Node> {
        let mut command = Command::new(&launch.program);
        command.args(&launch.args);
        match launch.bind {
            BindArg::Address => command.args(["--bind", &format!("127.0.0.1:{port}")]),
            BindArg::Port => command.args(["--port", &port.to_string()]),
        };
        for (k, v) in &launch.envs {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("while starting {}", launch.program.display()))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let addr = line[at + "listening on http://".len()..].split_whitespace().next().unwrap_or("");
                    let _ = addr_tx.send(addr.to_owned());
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut lines = sink.lock().expect("not poisoned");
                // Bounded: a server that logs per message must not eat the benchmark's memory.
                if lines.len() < 1000 {
                    lines.push(line);
                }
            }
        });
        let addr = match addr_rx.recv_timeout(START_PATIENCE) {
            Ok(addr) => addr.parse().with_context(|| format!("a listening address: {addr}"))?,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "{} did not start listening; it said:\n{}",
                    launch.program.display(),
                    errors.lock().expect("not poisoned").join("\n")
                )
            }
        };
        Ok(Node { launch, child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM (a graceful restart: minim tells its clients to come back), wait for the exit,
    /// then start the same program again on the same port. It waits without holding up the
    /// calling task, which may be playing a scenario's traffic meanwhile (the reconnect storm):
    /// a command sent late would count the wait as the stack's delivery latency.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let kill = move || Command::new("kill").args(["-TERM", &pid]).status();
        tokio::task::spawn_blocking(kill).await?.context("while running kill")?;
        let deadline = std::time::Instant::now() + START_PATIENCE;
        while self.child.try_wait()?.is_none() {
            if std::time::Instant::now() > deadline {
                bail!("{} did not exit within {START_PATIENCE:?} of SIGTERM", self.launch.program.display());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (launch, port) = (self.launch.clone(), self.addr.port());
        *self = tokio::task::spawn_blocking(move || Node::spawn(launch, port)).await??;
        Ok(())
    }

    pub fn usage(&self) -> Usage {
        Usage::of(self.pid())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time and memory of one process, from `/proc/<pid>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User plus system CPU time since the process started.
    pub cpu: Duration,
    /// Resident memory now, in bytes.
    pub rss: u64,
    /// The highest resident memory so far (`VmHWM`), in bytes.
    pub peak_rss: u64,
    /// How long its threads were ready to run but waited for a CPU, summed over the threads now
    /// alive (`/proc/<pid>/task/*/schedstat`); zero where the kernel does not keep it.
    pub waited: Duration,
}

impl Usage {
    /// Zero when the process is gone (the caller compares figures of live processes only).
    pub fn of(pid: u32) -> Usage {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        let cpu = Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / clock_ticks_per_second());
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        Usage { cpu, rss: kib("VmRSS:"), peak_rss: kib("VmHWM:"), waited: waited(pid) }
    }
}

/// The run-queue wait of every thread of `pid`, summed.
fn waited(pid: u32) -> Duration {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    threads
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|line| schedstat_wait(&line))
        .sum()
}

/// The second of schedstat's three figures: nanoseconds spent on a run queue, waiting.
fn schedstat_wait(line: &str) -> Option<Duration> {
    let mut fields = line.split_whitespace();
    let (_running, waiting, _slices) = (fields.next()?, fields.next()?, fields.next()?);
    waiting.parse().ok().map(Duration::from_nanos)
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on; `getconf` says for sure.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Raises this process's open-file limit to its hard limit: thousands of client sockets.
pub fn raise_fd_limit() -> anyhow::Result<u64> {
    // `ulimit -n` in a child shell cannot change ours, so read the limits and ask prlimit(1) to set them.
    let me = std::process::id().to_string();
    let out =
        Command::new("prlimit").args(["--pid", &me, "--nofile", "--raw", "--noheadings", "--output", "HARD"]).output();
    let hard: u64 = out
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .context("while reading the open-file limit (prlimit, from util-linux)")?;
    let status = Command::new("prlimit").args(["--pid", &me, &format!("--nofile={hard}:{hard}")]).status()?;
    if !status.success() {
        bail!("prlimit could not raise the open-file limit to {hard}");
    }
    Ok(hard)
}

/// Where the benchmark finds the programs it starts.
#[derive(Clone, Debug)]
pub struct Programs {
    pub minim: PathBuf,
    pub bare: PathBuf,
    /// `bench/socketio` with its `node_modules` installed (`npm ci`).
    pub socketio_dir: PathBuf,
    pub node: PathBuf,
}

impl Programs {
    /// Beside this executable (`target/release/`), as `scripts/bench` builds them.
    pub fn beside_me() -> anyhow::Result<Programs> {
        let exe = std::env::current_exe()?;
        let dir = exe.parent().context("the executable has a directory")?;
        Ok(Programs {
            minim: dir.join("minim"),
            bare: dir.join("bare-broadcast"),
            socketio_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("socketio"),
            node: PathBuf::from("node"),
        })
    }

    /// Whether what `stacks` need is there.
    pub fn check(&self, stacks: &[crate::stack::Stack]) -> anyhow::Result<()> {
        use crate::stack::Stack;
        for (stack, program) in [(Stack::Minim, &self.minim), (Stack::Bare, &self.bare)] {
            if stacks.contains(&stack) && !program.exists() {
                bail!("{} is missing: build it first (scripts/bench does)", program.display());
            }
        }
        if stacks.contains(&Stack::SocketIo) && !self.socketio_dir.join("node_modules/socket.io").exists() {
            bail!(
                "{}/node_modules is missing: run `npm ci --omit=dev` there (scripts/bench does)",
                self.socketio_dir.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_gives_the_time_spent_waiting_for_a_cpu() {
        assert_eq!(schedstat_wait("1065503 2500000 3\n"), Some(Duration::from_micros(2500)));
        assert_eq!(schedstat_wait("1065503 2500000"), None, "not the three figures it should be");
        assert_eq!(schedstat_wait(""), None);
    }

    #[test]
    fn threads_that_outnumber_the_cores_are_seen_waiting_for_one() {
        let spin = || {
            let end = std::time::Instant::now() + Duration::from_millis(300);
            let mut x = 0u64;
            while std::time::Instant::now() < end {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads: Vec<_> = (0..cores + 2).map(|_| std::thread::spawn(spin)).collect();
        std::thread::sleep(Duration::from_millis(200));
        let busy = Usage::of(std::process::id());
        threads.into_iter().for_each(|t| t.join().expect("spun"));
        // Two more runnable threads than cores: about 400 ms of waiting in those 200 ms.
        assert!(busy.waited > Duration::from_millis(50), "waited only {:?}", busy.waited);
        assert!(busy.cpu > Duration::from_millis(100), "ran only {:?}", busy.cpu);
    }
}
