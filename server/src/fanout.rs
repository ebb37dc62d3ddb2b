//! How each node hears what the others appended: Redis pub/sub.
//!
//! The append script publishes every accepted batch on its board's channel
//! ([`crate::store::redis`]). Each node keeps one subscription: a pattern over every board's
//! channel, plus a probe channel of its own. Announcements for boards live on this node go to
//! their tasks ([`crate::board_task::BoardHandle::published`]); the others are dropped (a board
//! that is not live here reads the log when it starts). One pattern rather than a channel per live
//! board: at an organisation's scale (hundreds of boards, a few events a second in all) receiving
//! every board's announcements costs nothing measurable, and there is no per-board subscription
//! state to lose and rebuild when the connection drops.
//!
//! Pub/sub is at-most-once, so nothing here is trusted to be complete:
//! - a task that finds a gap in sequence numbers, or finds the log longer than its copy at its
//!   periodic check, reads the log ([`crate::board_task`]);
//! - after every (re)subscription, every live board checks the log: whatever was published while
//!   this node was not listening is read from there;
//! - a liveness probe checks the subscription itself, not just the command connection: every
//!   [`PROBE_INTERVAL`] the node publishes a numbered probe on its own channel through the command
//!   connection and expects it back through the subscription within [`PROBE_TIMEOUT`]. Its round
//!   trip is the fan-out lag in `/metrics`. A probe that nobody received, or that does not come
//!   back, means the subscription is dead even if its socket looks open (a dropped NAT entry, a
//!   restarted Redis): the node reports not ready and subscribes again.

use crate::board_task::BoardHub;
use crate::metrics::Metrics;
use crate::store::redis::{CONNECT_TIMEOUT, Published, RedisLog};
use anyhow::{Context, anyhow, bail};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the subscription is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long a probe may take to come back before the subscription counts as dead.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait between attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Starts the node's subscription on a worker thread: the first one that calls
/// [`Starter::start_here`] (each worker does as it starts), and again on the next one that
/// starts if the worker running it stopped.
///
/// Why on a worker and not on the main thread: the subscription hands every announcement to its
/// board's task. From the main thread that woke a worker for every event, and the main thread
/// itself for every message from Redis. On a worker, the boards of that worker take their
/// announcements without waking anyone, and a node with one worker wakes no other thread at all.
pub struct Starter {
    fanout: Fanout,
    running: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl Starter {
    pub fn new(redis: Arc<RedisLog>, hub: Arc<BoardHub>, shutdown: CancellationToken) -> anyhow::Result<Starter> {
        let node = hex::encode(crate::auth::random_bytes::<8>()?);
        hub.metrics().fanout_enabled.store(true, Ordering::Relaxed);
        let fanout = Fanout { probe_channel: redis.probe_channel(&node), redis, hub };
        Ok(Starter { fanout, running: Arc::default(), shutdown })
    }

    /// Starts the subscription on this thread's runtime, unless it runs already. It runs until
    /// shutdown, or until this thread's runtime stops.
    pub fn start_here(&self) {
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let running = Running(self.running.clone());
        let (fanout, shutdown) = (self.fanout.clone(), self.shutdown.clone());
        tokio::spawn(async move {
            let _running = running;
            run(fanout, shutdown).await;
        });
    }
}

/// Marks the subscription as running; dropped with its task, so that the next worker to start
/// starts it again.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[derive(Clone)]
struct Fanout {
    redis: Arc<RedisLog>,
    hub: Arc<BoardHub>,
    probe_channel: String,
}

/// A probe that has been published and not yet received.
struct Probe {
    number: u64,
    sent: Instant,
}

async fn run(fanout: Fanout, shutdown: CancellationToken) {
    let metrics = fanout.hub.metrics();
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = tokio::select! {
            result = fanout.subscribe_and_follow(&mut backoff) => result,
            () = shutdown.cancelled() => return,
        };
        let was_up = metrics.fanout_up.swap(false, Ordering::Relaxed);
        Metrics::add(&metrics.redis_errors, 1);
        // The error says what failed (connecting, a probe); it never carries board content.
        let error = result.err().unwrap_or_else(|| anyhow!("the subscription ended"));
        if was_up {
            tracing::warn!(error = %format!("{error:#}"), "fan-out subscription lost; subscribing again");
        } else {
            tracing::debug!(error = %format!("{error:#}"), "fan-out subscription still down");
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

impl Fanout {
    /// Subscribes, then routes announcements and probes until the subscription fails.
    async fn subscribe_and_follow(&self, backoff: &mut Duration) -> anyhow::Result<()> {
        let metrics = self.hub.metrics();
        let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, self.redis.client().get_async_pubsub())
            .await
            .context("timed out connecting the subscription")?
            .context("while connecting the subscription")?;
        let subscribe = async {
            pubsub.psubscribe(self.redis.fanout_pattern()).await?;
            pubsub.subscribe(&self.probe_channel).await
        };
        tokio::time::timeout(CONNECT_TIMEOUT, subscribe)
            .await
            .context("timed out subscribing")?
            .context("while subscribing")?;
        let mut messages = pubsub.into_on_message();
        // Whatever was published while this node was not listening is in the log.
        self.hub.repair_all();

        let mut probes = tokio::time::interval(PROBE_INTERVAL);
        let mut outstanding: Option<Probe> = None;
        let mut next_number = 0u64;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let message = message.ok_or_else(|| anyhow!("the subscription's connection closed"))?;
                    let channel = message.get_channel_name();
                    if channel == self.probe_channel {
                        let number = std::str::from_utf8(message.get_payload_bytes()).ok().and_then(|t| t.parse().ok());
                        if let Some(probe) = outstanding.take_if(|p| Some(p.number) == number) {
                            let lag = probe.sent.elapsed();
                            metrics.fanout_lag_micros.store(lag.as_micros() as u64, Ordering::Relaxed);
                            if !metrics.fanout_up.swap(true, Ordering::Relaxed) {
                                tracing::info!(lag_ms = lag.as_millis() as u64, "fan-out subscription up");
                            }
                            *backoff = Duration::from_millis(100);
                        }
                    } else if let Some(board) = self.redis.board_of_channel(channel) {
                        self.route(board, message.get_payload_bytes());
                    }
                }
                _ = probes.tick() => {
                    if let Some(probe) = &outstanding {
                        if probe.sent.elapsed() > PROBE_TIMEOUT {
                            bail!("a liveness probe did not come back within {PROBE_TIMEOUT:?}");
                        }
                        continue;
                    }
                    next_number += 1;
                    let sent = Instant::now();
                    match self.publish_probe(next_number).await {
                        Ok(0) => bail!("a liveness probe reached no subscriber: Redis no longer has this subscription"),
                        Ok(_) => outstanding = Some(Probe { number: next_number, sent }),
                        Err(e) => {
                            // The subscription may be fine; it just cannot be checked now.
                            Metrics::add(&metrics.redis_errors, 1);
                            metrics.fanout_up.store(false, Ordering::Relaxed);
                            tracing::debug!(error = %format!("{e:#}"), "could not publish a liveness probe");
                        }
                    }
                }
            }
        }
    }

    /// Publishes probe `number`; returns how many subscribers received it.
    async fn publish_probe(&self, number: u64) -> anyhow::Result<i64> {
        let mut conn = self.redis.connection();
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg(&self.probe_channel)
            .arg(number)
            .query_async(&mut conn)
            .await
            .context("while publishing a liveness probe")?;
        Ok(receivers)
    }

    /// Hands an announcement to the board's task, if the board is live here and does not hold
    /// it yet. Most of a node's own appends come back after its board recorded them; those are
    /// dropped here, unread. One whose answer never came (Redis answered too late) is not, and
    /// the board learns from it what it appended.
    fn route(&self, board: minim_shared::BoardId, payload: &[u8]) {
        let metrics = self.hub.metrics();
        Metrics::add(&metrics.fanout_messages, 1);
        let Some(handle) = self.hub.live(&board) else { return };
        let news = serde_json::from_slice::<Published>(payload).and_then(|announced| {
            if announced.head.is_some_and(|head| handle.holds(announced.epoch, head)) {
                return Ok(None);
            }
            Ok(Some((announced.epoch, announced.events()?)))
        });
        match news {
            Ok(None) => {}
            Ok(Some((epoch, events))) => {
                if !handle.published(epoch, events) {
                    tracing::debug!(board = %board, "board busy; it will find the announcement in the log");
                }
            }
            Err(e) => {
                // Not `e` itself: serde's message can quote the payload, which holds board content.
                Metrics::add(&metrics.redis_errors, 1);
                tracing::warn!(board = %board, kind = ?e.classify(), column = e.column(), "unreadable announcement ignored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn the_subscription_starts_once_and_again_on_the_next_worker_after_its_worker_stopped() {
        // The node's main thread, where the connection is prepared (it spawns a task of its own).
        let main = worker();
        let _main = main.enter();
        let metrics = Arc::new(Metrics::default());
        // Nothing listens there: the subscription only tries to connect, which is all this needs.
        let redis = Arc::new(
            RedisLog::connect("redis://127.0.0.1:1/", "test", Duration::from_secs(60), metrics.clone()).unwrap(),
        );
        let hub = BoardHub::new(redis.clone(), metrics, CancellationToken::new());
        let starter = Starter::new(redis, hub, CancellationToken::new()).unwrap();

        let first = worker();
        let tasks = first.block_on(async {
            starter.start_here();
            let one = tokio::runtime::Handle::current().metrics().num_alive_tasks();
            starter.start_here();
            (one, tokio::runtime::Handle::current().metrics().num_alive_tasks())
        });
        assert_eq!(tasks, (1, 1), "a second worker starting does not start a second subscription");
        assert!(starter.running.load(Ordering::Acquire));

        drop(first);
        assert!(!starter.running.load(Ordering::Acquire), "the subscription stopped with its worker");
        let second = worker();
        let started = second.block_on(async {
            starter.start_here();
            tokio::runtime::Handle::current().metrics().num_alive_tasks()
        });
        assert_eq!(started, 1, "the next worker to start runs it again");
    }
}
