//! How steadily this machine's disk makes a small write durable.
//!
//! minim on one node makes every event durable before anyone sees it: its log is written and
//! synced once per round of appends. However quick the disk is on average, a sync that stalls
//! holds up every board on the node for as long, and shows in minim's one-node tail and in no
//! baseline's (they keep nothing on disk). `minim-bench --disk-probe SECONDS` measures that alone,
//! on an otherwise quiet machine, the way the log writes: a small line into zeros laid down ahead,
//! then `fdatasync`, about a thousand times a second.

use serde::Serialize;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// The probe's file: long enough that it never wraps onto blocks written in the same second.
const FILE_BYTES: u64 = 16 << 20;
/// One write: about an event's line in the log.
const LINE_BYTES: usize = 256;
/// The pause between syncs, as under a steady load of rounds.
const PAUSE: Duration = Duration::from_millis(1);

/// What the probe saw.
#[derive(Clone, Debug, Serialize)]
pub struct SyncProbe {
    pub seconds: f64,
    pub syncs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Syncs that took longer than 10, 50 and 100 ms.
    pub over_10ms: usize,
    pub over_50ms: usize,
    pub over_100ms: usize,
}

/// Writes and syncs a small line every millisecond for `duration`, in a temporary directory
/// (where minim's data directory goes in the benchmarks: the same filesystem).
pub fn probe(duration: Duration) -> anyhow::Result<SyncProbe> {
    let dir = tempfile::tempdir()?;
    let mut file = std::fs::File::options().read(true).write(true).create_new(true).open(dir.path().join("probe"))?;
    // Zeros synced ahead, as the log lays them down, so that a sync writes the line and nothing
    // else (no block allocation, no inode).
    file.write_all(&vec![0; FILE_BYTES as usize])?;
    file.sync_all()?;
    let line = [b'x'; LINE_BYTES];
    let mut took = Vec::new();
    let started = Instant::now();
    let mut offset = 0;
    while started.elapsed() < duration {
        let sync = Instant::now();
        file.write_all_at(&line, offset)?;
        file.sync_data()?;
        took.push(sync.elapsed());
        offset = (offset + LINE_BYTES as u64) % FILE_BYTES;
        std::thread::sleep(PAUSE);
    }
    Ok(SyncProbe::of(started.elapsed(), took))
}

impl SyncProbe {
    fn of(elapsed: Duration, mut took: Vec<Duration>) -> SyncProbe {
        took.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let at = |q: f64| took.get(((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1))).copied();
        let over = |limit_ms: u64| took.iter().filter(|d| **d > Duration::from_millis(limit_ms)).count();
        SyncProbe {
            seconds: elapsed.as_secs_f64(),
            syncs: took.len(),
            p50_ms: at(0.5).map_or(0.0, ms),
            p99_ms: at(0.99).map_or(0.0, ms),
            max_ms: took.last().copied().map_or(0.0, ms),
            over_10ms: over(10),
            over_50ms: over(50),
            over_100ms: over(100),
        }
    }
}

impl std::fmt::Display for SyncProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "disk: {} syncs of {LINE_BYTES} bytes in {:.0} s: p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms; \
             over 10 ms: {}, over 50 ms: {}, over 100 ms: {}",
            self.syncs,
            self.seconds,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.over_10ms,
            self.over_50ms,
            self.over_100ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_syncs_for_as_long_as_asked_and_counts_every_sync() {
        let seen = probe(Duration::from_millis(300)).unwrap();
        assert!(seen.seconds >= 0.3 && seen.syncs > 0, "{seen:?}");
        assert!(0.0 < seen.p50_ms && seen.p50_ms <= seen.p99_ms && seen.p99_ms <= seen.max_ms, "{seen:?}");
        assert!(seen.over_100ms <= seen.over_50ms && seen.over_50ms <= seen.over_10ms && seen.over_10ms <= seen.syncs);
    }

    #[test]
    fn slow_syncs_are_counted_against_each_limit() {
        let took = [1, 2, 3, 12, 60, 150].map(Duration::from_millis).to_vec();
        let seen = SyncProbe::of(Duration::from_secs(1), took);
        assert_eq!((seen.syncs, seen.over_10ms, seen.over_50ms, seen.over_100ms), (6, 3, 2, 1));
        assert_eq!((seen.p50_ms, seen.max_ms), (12.0, 150.0));
    }
}
