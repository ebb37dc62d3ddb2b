//! Operational counters, served at `/metrics` in the Prometheus text format.
//!
//! Labels never carry anything from a board: no board ids, names or text, only fixed words such
//! as an error code or a stage. Plain atomics: each counter is independent, and a scrape that sees
//! them a moment apart is fine.
//!
//! The stage timings ([`Stages`]) say where a command's time goes on this node: waiting for its
//! board, being stored, being answered, and waiting for the connection's writer. They are histograms over every
//! command and message of the node, never per board.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Metrics {
    /// Open WebSocket connections.
    pub connections: AtomicI64,
    pub boards_created: AtomicU64,
    /// Events stored and fanned out.
    pub events: AtomicU64,
    /// Appends this node made to the event store; a busy board's queued commands share one.
    pub appends: AtomicU64,
    pub commands_accepted: AtomicU64,
    /// Rejected commands by wire error code (a fixed, small set).
    commands_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Clients dropped from a fan-out for falling behind (they resync).
    pub clients_resynced: AtomicU64,
    /// Failed reads or writes of the event store.
    pub store_errors: AtomicU64,
    /// Failed Redis commands and subscription failures (only with `--redis-url`).
    pub redis_errors: AtomicU64,
    /// Boards a node stored again from its own copy after Redis lost them.
    pub boards_restored: AtomicU64,
    /// Whether this node fans out through Redis; the gauges below are shown only then.
    pub fanout_enabled: AtomicBool,
    /// Whether the fan-out subscription is working (its last liveness probe came back).
    pub fanout_up: AtomicBool,
    /// The last liveness probe's time from publish to receipt through the subscription.
    pub fanout_lag_micros: AtomicU64,
    /// Announcements of other nodes' appends received.
    pub fanout_messages: AtomicU64,
    /// Times a node found events it had not been told about and read them from the log.
    pub fanout_gaps_repaired: AtomicU64,
    /// Where commands and messages spend their time on this node.
    pub stages: Stages,
}

/// The stages a command goes through on its node, each a histogram of how long it took.
#[derive(Default)]
pub struct Stages {
    /// From a command's frame arriving to its board taking it up (the board's queue, and the
    /// board's worker getting to it).
    pub queued: Histogram,
    /// One append to the event store, from handing it over to its answer (on one node the log's
    /// gathering and sync, with two nodes the round trip to Redis).
    pub stored: Histogram,
    /// From a command's frame arriving to its answer and events being queued for the writers.
    pub answered: Histogram,
    /// From a message being made (an event, an answer) to its connection's writer taking it; one
    /// message in [`crate::outbox::WRITTEN_SAMPLE`] per connection.
    pub written: Histogram,
}

/// The histograms' upper bounds, in microseconds (and one for everything above).
const BOUNDS_MICROS: [u64; 18] = [
    100, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];
/// Each thread records into a shard of its own (by the order threads first record), so that the
/// workers and the log's thread do not contend for the same cache lines at every message.
const SHARDS: usize = 8;

/// A Prometheus histogram of durations, recorded without locks or shared cache lines.
#[derive(Default)]
pub struct Histogram {
    shards: [Shard; SHARDS],
}

#[derive(Default)]
#[repr(align(128))]
struct Shard {
    /// Counts per bound (not cumulative); the last is above every bound.
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, took: Duration) {
        static THREADS: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static SHARD: usize = THREADS.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        let shard = &self.shards[SHARD.with(|s| *s)];
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Records the time since `since`.
    pub fn since(&self, since: Instant) {
        self.observe(since.elapsed());
    }

    /// Cumulative counts per bound, the last being the total, and the sum in microseconds.
    fn read(&self) -> ([u64; BOUNDS_MICROS.len() + 1], u64) {
        let (mut counts, mut sum) = ([0; BOUNDS_MICROS.len() + 1], 0);
        for shard in &self.shards {
            for (count, bucket) in counts.iter_mut().zip(&shard.buckets) {
                *count += bucket.load(Ordering::Relaxed);
            }
            sum += shard.sum_micros.load(Ordering::Relaxed);
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        (counts, sum)
    }
}

impl Stages {
    fn render(&self, out: &mut String) {
        let name = "minim_stage_seconds";
        let _ = writeln!(out, "# HELP {name} Where commands and messages spend their time on this node, by stage.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let stages = [
            ("queued", &self.queued),
            ("stored", &self.stored),
            ("answered", &self.answered),
            ("written", &self.written),
        ];
        for (stage, histogram) in stages {
            let (counts, sum) = histogram.read();
            for (bound, count) in BOUNDS_MICROS.iter().zip(&counts) {
                let le = *bound as f64 / 1e6;
                let _ = writeln!(out, "{name}_bucket{{stage=\"{stage}\",le=\"{le}\"}} {count}");
            }
            let total = counts[BOUNDS_MICROS.len()];
            let _ = writeln!(out, "{name}_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {total}");
            let _ = writeln!(out, "{name}_sum{{stage=\"{stage}\"}} {:.6}", sum as f64 / 1e6);
            let _ = writeln!(out, "{name}_count{{stage=\"{stage}\"}} {total}");
        }
    }
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn rejected(&self, code: minim_shared::wire::ErrorCode) {
        let code = error_code_name(code);
        *self.commands_rejected.lock().unwrap_or_else(|p| p.into_inner()).entry(code).or_default() += 1;
    }

    /// The text exposition format; `live_boards` is read from the hub at scrape time.
    pub fn render(&self, live_boards: usize) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
        metric(
            "minim_connections",
            "gauge",
            "Open WebSocket connections.",
            self.connections.load(Ordering::Relaxed).to_string(),
        );
        metric("minim_live_boards", "gauge", "Boards with a running task on this node.", live_boards.to_string());
        metric("minim_boards_created_total", "counter", "Boards created on this node.", get(&self.boards_created));
        metric("minim_events_total", "counter", "Events stored and fanned out by this node.", get(&self.events));
        metric(
            "minim_appends_total",
            "counter",
            "Appends to the event store; the commands queued at a busy board share one.",
            get(&self.appends),
        );
        metric("minim_commands_accepted_total", "counter", "Commands accepted.", get(&self.commands_accepted));
        metric(
            "minim_clients_resynced_total",
            "counter",
            "Clients dropped from a fan-out for falling behind.",
            get(&self.clients_resynced),
        );
        metric(
            "minim_store_errors_total",
            "counter",
            "Failed reads or writes of the event store.",
            get(&self.store_errors),
        );
        if self.fanout_enabled.load(Ordering::Relaxed) {
            metric(
                "minim_redis_errors_total",
                "counter",
                "Failed Redis commands and subscription failures.",
                get(&self.redis_errors),
            );
            metric(
                "minim_boards_restored_total",
                "counter",
                "Boards stored again from this node's copy after Redis lost them.",
                get(&self.boards_restored),
            );
            let up = self.fanout_up.load(Ordering::Relaxed);
            metric(
                "minim_fanout_up",
                "gauge",
                "Whether the Redis fan-out subscription works.",
                u8::from(up).to_string(),
            );
            let lag = self.fanout_lag_micros.load(Ordering::Relaxed) as f64 / 1e6;
            metric(
                "minim_fanout_lag_seconds",
                "gauge",
                "Time from publishing the last liveness probe to receiving it through the subscription.",
                format!("{lag:.6}"),
            );
            metric(
                "minim_fanout_messages_total",
                "counter",
                "Announcements of appends received from Redis.",
                get(&self.fanout_messages),
            );
            metric(
                "minim_fanout_gaps_repaired_total",
                "counter",
                "Times events missing from the fan-out were read from the log instead.",
                get(&self.fanout_gaps_repaired),
            );
        }
        let _ = writeln!(out, "# HELP minim_commands_rejected_total Commands rejected, by error code.");
        let _ = writeln!(out, "# TYPE minim_commands_rejected_total counter");
        for (code, n) in self.commands_rejected.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "minim_commands_rejected_total{{code=\"{code}\"}} {n}");
        }
        self.stages.render(&mut out);
        out
    }
}

/// The wire name of an error code (`"vote_limit"`, `"unavailable"`, ...).
fn error_code_name(code: minim_shared::wire::ErrorCode) -> &'static str {
    use minim_shared::RejectCode as R;
    use minim_shared::wire::ErrorCode as E;
    match code {
        E::BadMessage => "bad_message",
        E::TooLarge => "too_large",
        E::UnsupportedProtocol => "unsupported_protocol",
        E::Unauthorized => "unauthorized",
        E::BoardNotFound => "board_not_found",
        E::BoardDeleted => "board_deleted",
        E::NotHello => "not_hello",
        E::Unavailable => "unavailable",
        E::Lagging => "lagging",
        E::TooMany => "too_many",
        E::Rule(R::Forbidden) => "forbidden",
        E::Rule(R::WrongPhase) => "wrong_phase",
        E::Rule(R::NotFound) => "not_found",
        E::Rule(R::VoteLimit) => "vote_limit",
        E::Rule(R::Invalid) => "invalid",
        E::Rule(R::Limit) => "limit",
        E::Rule(R::Conflict) => "conflict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_match_the_wire() {
        use minim_shared::wire::ErrorCode;
        for code in
            [ErrorCode::BadMessage, ErrorCode::Rule(minim_shared::RejectCode::VoteLimit), ErrorCode::Unavailable]
        {
            assert_eq!(serde_json::to_value(code).unwrap(), error_code_name(code));
        }
    }

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        Metrics::add(&m.events, 3);
        m.rejected(minim_shared::wire::ErrorCode::Rule(minim_shared::RejectCode::Forbidden));
        let text = m.render(2);
        assert!(text.contains("minim_events_total 3\n"), "{text}");
        assert!(text.contains("minim_live_boards 2\n"));
        assert!(text.contains("minim_commands_rejected_total{code=\"forbidden\"} 1\n"));
        assert!(!text.contains("minim_fanout_up"), "no fan-out gauges on a single node");

        m.fanout_enabled.store(true, Ordering::Relaxed);
        m.fanout_up.store(true, Ordering::Relaxed);
        m.fanout_lag_micros.store(1500, Ordering::Relaxed);
        let text = m.render(2);
        assert!(text.contains("minim_fanout_up 1\n"), "{text}");
        assert!(text.contains("minim_fanout_lag_seconds 0.001500\n"), "{text}");
    }

    #[test]
    fn stage_histograms_count_each_duration_under_every_bound_it_fits() {
        let m = Metrics::default();
        m.stages.stored.observe(Duration::from_micros(100));
        m.stages.stored.observe(Duration::from_micros(700));
        // Another thread records into its own shard; the scrape adds them up.
        std::thread::scope(|s| {
            s.spawn(|| m.stages.stored.observe(Duration::from_secs(3)));
        });
        let text = m.render(0);
        let line = |le: &str| format!("minim_stage_seconds_bucket{{stage=\"stored\",le=\"{le}\"}} ");
        for (le, count) in
            [("0.0001", 1), ("0.00025", 1), ("0.0005", 1), ("0.00075", 2), ("1", 2), ("2.5", 2), ("+Inf", 3)]
        {
            assert!(text.contains(&format!("{}{count}\n", line(le))), "le={le}: {text}");
        }
        assert!(text.contains("minim_stage_seconds_sum{stage=\"stored\"} 3.000800\n"), "{text}");
        assert!(text.contains("minim_stage_seconds_count{stage=\"stored\"} 3\n"), "{text}");
        assert!(text.contains("minim_stage_seconds_count{stage=\"written\"} 0\n"), "{text}");
    }
}
