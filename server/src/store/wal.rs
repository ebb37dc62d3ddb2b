//! Group commit for the embedded store: one write-ahead log for every board, made durable with
//! one `fdatasync` for all the appends that arrived meanwhile.
//!
//! Syncing each board's own file on every append costs a disk write, an inode write and a cache
//! flush per event: at a few thousand events a second across a thousand boards that, not the work
//! of the meetings, is what limits a single node. So an append goes to the [`Committer`], a thread
//! of its own. It takes every append queued since its last round (under load, rounds start at
//! most every `ROUND_SPACING`), writes each to its board's file (without syncing), writes all of
//! them to the current WAL segment in one `write`, syncs the segment once, and then answers them
//! all. An append is acknowledged only once it is in a synced segment.
//!
//! Board files are synced at a checkpoint: when a segment reaches [`SEGMENT_BYTES`], a new one is
//! started, and a thread of its own syncs every board file written during the old one, then
//! removes it. After a crash, [`recover`] completes each board's file from the segments left
//! (those events may not have reached the board file) and removes them; events a board file
//! already has are skipped.
//!
//! Segments live in `wal/<number>.wal`, one line per event:
//! `"<crc32 of the rest, 8 hex digits> <board id> <event json>\n"`. The last line of a segment may
//! be torn by a crash (it was never acknowledged) and is dropped; damage anywhere else is refused.
//!
//! A segment is written into zeros laid down ahead of its end (`PREALLOCATE` bytes at a time,
//! synced), so that a round's sync writes the round's data and nothing else: appending past a
//! file's end would also make it allocate blocks and write the inode. The log ends at the first
//! zero byte (no line has one: JSON escapes control characters).

use anyhow::{Context, anyhow, bail};
use minim_shared::{BoardId, Seq, Sequenced};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// A segment this long is checkpointed and replaced by a new one.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// A checkpoint syncs this many board files, then pauses for [`CHECKPOINT_PAUSE`]: a thousand
/// syncs at once would hold up the appends' own syncs behind them (the benchmarks saw the p99
/// delivery latency of a step with a checkpoint in it double).
const CHECKPOINT_PACE: usize = 16;
const CHECKPOINT_PAUSE: std::time::Duration = std::time::Duration::from_millis(4);
/// At most this many appends share one sync (bounds the time the first of them waits).
const MAX_BATCH: usize = 1024;
/// Rounds start at most this often. Each sync costs the CPU far more than its bytes (the disk
/// request, its interrupt, and waking the threads that wait for it), and under load a round
/// started as soon as the last one ended holds only a few appends. Spacing them by a millisecond
/// took about a tenth off minim's CPU per event at 6,000 events/s on one node, for 0.6 ms more
/// median latency and the same p99 (BENCHMARKS.md). An append after a quiet spell, or after a
/// round of a single append, is not held.
const ROUND_SPACING: std::time::Duration = std::time::Duration::from_millis(1);
/// Zeros written and synced ahead of the log's end at a time, between rounds. A sync over zeros
/// already synced is shorter and, above all, steadier than one at a file's end: one node's p99
/// delivery latency fell by about a sixth at 6,000 events/s (BENCHMARKS.md). Laying down 256 kB
/// takes about a millisecond, once every thousand or so events.
const PREALLOCATE: u64 = 256 << 10;

/// One board's append, on its way to the committer.
struct Append {
    file: Arc<File>,
    /// The lines for the board's own file.
    board_lines: Vec<u8>,
    /// The same events as WAL lines.
    wal_lines: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle through which appends reach the committer thread.
pub struct Committer {
    tx: mpsc::Sender<Append>,
    state: Arc<State>,
}

/// What the committer thread shares with the store.
#[derive(Default)]
struct State {
    /// Set after a write or sync failed: nothing more is accepted until the server restarts and
    /// recovery makes the board files and the WAL agree again.
    failed: AtomicBool,
    /// Syncs of the WAL so far (each acknowledges a whole batch).
    syncs: AtomicU64,
    checkpoints: AtomicU64,
}

/// Encodes events as (board file lines, WAL lines), serialising each event once.
pub fn encode(board: &BoardId, events: &[Sequenced]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut board_lines = Vec::with_capacity(events.len() * 128);
    let mut wal_lines = Vec::with_capacity(events.len() * 160);
    for e in events {
        let json = serde_json::to_vec(e).context("while encoding an event")?;
        super::disk::push_line(&mut board_lines, &json);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(board.0.as_bytes());
        hasher.update(b" ");
        hasher.update(&json);
        write!(wal_lines, "{:08x} {} ", hasher.finalize(), board.0)?;
        wal_lines.extend_from_slice(&json);
        wal_lines.push(b'\n');
    }
    Ok((board_lines, wal_lines))
}

/// Reads one WAL line (without its newline): the board and the event, if the line is whole.
fn parse_line(line: &[u8]) -> Option<(BoardId, Sequenced)> {
    let crc = u32::from_str_radix(std::str::from_utf8(line.get(..8)?).ok()?, 16).ok()?;
    let rest = line.get(9..)?;
    if line.get(8) != Some(&b' ') || crc32fast::hash(rest) != crc {
        return None;
    }
    let space = rest.iter().position(|b| *b == b' ')?;
    let board = std::str::from_utf8(&rest[..space]).ok()?;
    let event = serde_json::from_slice(&rest[space + 1..]).ok()?;
    Some((BoardId(board.to_owned()), event))
}

/// How much of a segment's bytes is log: everything before the first zero byte.
pub(super) fn logged_len(bytes: &[u8]) -> usize {
    bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len())
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.wal"))
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).with_context(|| format!("while listing {}", dir.display()))? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a segment: every event in it by board, in order. A torn last line is dropped; says
/// whether there was one.
fn read_segment(path: &Path, into: &mut BTreeMap<BoardId, Vec<Sequenced>>) -> anyhow::Result<bool> {
    let mut bytes = std::fs::read(path).with_context(|| format!("while reading {}", path.display()))?;
    // The zeros laid down ahead of the log's end are not part of it.
    bytes.truncate(logged_len(&bytes));
    let mut lines = bytes.split_inclusive(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        match line.strip_suffix(b"\n").and_then(parse_line) {
            Some((board, event)) => into.entry(board).or_default().push(event),
            None if last => {
                tracing::warn!(path = %path.display(), "dropping a torn last line of the write-ahead log");
                return Ok(true);
            }
            None => bail!("{} is damaged before its end", path.display()),
        }
    }
    Ok(false)
}

/// After a crash: completes every board's file from the WAL segments in `dir`, syncs them and
/// removes the segments (kept if a board's file could not be completed: it is damaged). `board_log(board)` is the board's file, or `None` if the board was
/// deleted since (its events are not brought back). Returns the next segment number to use.
pub fn recover(
    dir: &Path,
    board_log: impl Fn(&BoardId) -> Option<PathBuf>,
    complete: impl Fn(&Path, &[Sequenced]) -> anyhow::Result<usize>,
) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let found = segments(dir)?;
    let next = found.last().map_or(1, |(n, _)| n + 1);
    let mut events: BTreeMap<BoardId, Vec<Sequenced>> = BTreeMap::new();
    for (_, path) in &found {
        read_segment(path, &mut events)?;
    }
    let (mut restored, mut damaged) = (0, 0);
    for (board, events) in &events {
        let Some(path) = board_log(board) else { continue };
        match complete(&path, events) {
            Ok(n) => restored += n,
            Err(e) => {
                // One damaged board must not keep every other group from meeting: it stays
                // unavailable (loading it refuses the damage too), and the segments stay for it.
                damaged += 1;
                tracing::error!(board = %board, error = %format!("{e:#}"), "could not complete a board's log from the write-ahead log");
            }
        }
    }
    if restored > 0 {
        tracing::warn!(
            events = restored,
            "restored events from the write-ahead log that a crash kept from their boards' files"
        );
    }
    if damaged > 0 {
        tracing::error!(boards = damaged, dir = %dir.display(), "keeping the write-ahead log's old segments until the damaged boards are repaired or deleted");
        return Ok(next);
    }
    for (_, path) in &found {
        std::fs::remove_file(path).with_context(|| format!("while removing {}", path.display()))?;
    }
    File::open(dir)?.sync_all()?;
    Ok(next)
}

/// The events of `wal` that follow `head`, checked to continue it without a gap.
pub fn missing_after(head: Seq, wal: &[Sequenced]) -> anyhow::Result<&[Sequenced]> {
    let start = wal.iter().position(|e| e.seq > head).unwrap_or(wal.len());
    let missing = &wal[start..];
    let mut expected = head.next();
    for e in missing {
        if e.seq != expected {
            bail!("the write-ahead log has {} where {} should follow", e.seq, expected);
        }
        expected = expected.next();
    }
    Ok(missing)
}

impl Committer {
    /// Starts the committer thread, writing segments in `dir` from number `next` on, each
    /// checkpointed once it holds `segment_bytes`.
    pub fn start(dir: PathBuf, next: u64, segment_bytes: u64) -> anyhow::Result<Committer> {
        let segment = Segment::create(&dir, next, segment_bytes)?;
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(State::default());
        let (checkpoint_tx, checkpoint_rx) = mpsc::channel();
        let (thread_state, thread_dir) = (state.clone(), dir.clone());
        std::thread::Builder::new()
            .name("minim-checkpoint".into())
            .spawn(move || checkpoints(thread_dir, checkpoint_rx, thread_state))
            .context("while starting the write-ahead log's checkpoint thread")?;
        let round = Round {
            dir,
            segment,
            segment_bytes,
            dirty: HashMap::new(),
            checkpoints: checkpoint_tx,
            state: state.clone(),
        };
        std::thread::Builder::new()
            .name("minim-wal".into())
            .spawn(move || round.run(rx))
            .context("while starting the write-ahead log's thread")?;
        Ok(Committer { tx, state })
    }

    /// Appends `board_lines` to `file` and `wal_lines` to the WAL; returns once they are durable.
    pub async fn append(&self, file: Arc<File>, board_lines: Vec<u8>, wal_lines: Vec<u8>) -> anyhow::Result<()> {
        if self.state.failed.load(Ordering::Acquire) {
            bail!("the write-ahead log failed earlier; restart the server to recover");
        }
        let (done, answer) = oneshot::channel();
        let append = Append { file, board_lines, wal_lines, done };
        self.tx.send(append).map_err(|_| anyhow!("the write-ahead log's thread stopped"))?;
        answer.await.map_err(|_| anyhow!("the write-ahead log's thread stopped"))?.map_err(|e| anyhow!(e))
    }

    /// Whether appends are accepted (false after a write or sync failed).
    pub fn healthy(&self) -> bool {
        !self.state.failed.load(Ordering::Acquire)
    }

    /// How many syncs of the WAL have acknowledged appends so far.
    pub fn syncs(&self) -> u64 {
        self.state.syncs.load(Ordering::Relaxed)
    }

    pub fn checkpoints(&self) -> u64 {
        self.state.checkpoints.load(Ordering::Relaxed)
    }
}

/// The segment being written.
struct Segment {
    number: u64,
    file: File,
    /// The log's length: where the next round writes.
    len: u64,
    /// Where the zeros laid down (and synced) end; past it, a round appends to the file's end.
    prepared: u64,
    /// How far zeros are laid down: up to where the segment is checkpointed.
    capacity: u64,
}

impl Segment {
    /// Creates segment `number`, its first zeros laid down, for a log checkpointed at `capacity`.
    fn create(dir: &Path, number: u64, capacity: u64) -> anyhow::Result<Segment> {
        let path = segment_path(dir, number);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("while creating {}", path.display()))?;
        let mut segment = Segment { number, file, len: 0, prepared: 0, capacity };
        segment.prepare().with_context(|| format!("while preparing {}", path.display()))?;
        File::open(dir)?.sync_all().with_context(|| format!("while syncing {}", dir.display()))?;
        Ok(segment)
    }

    /// Lays down the next [`PREALLOCATE`] bytes of zeros once the log is within half of that of
    /// the prepared end (never past `capacity`), and syncs them. The log itself is only written
    /// at `len`, so a failure here loses nothing: the rounds then append past the prepared end.
    fn prepare(&mut self) -> std::io::Result<()> {
        let start = self.prepared.max(self.len);
        if start >= self.capacity || start - self.len > PREALLOCATE / 2 {
            return Ok(());
        }
        let end = (start + PREALLOCATE).min(self.capacity);
        let zeros = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        std::os::unix::fs::FileExt::write_all_at(&self.file, &zeros, start)?;
        self.file.sync_data()?;
        self.prepared = end;
        Ok(())
    }

    fn write(&mut self, lines: &[u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, lines, self.len)?;
        self.file.sync_data()?;
        self.len += lines.len() as u64;
        Ok(())
    }
}

/// The committer thread's state.
struct Round {
    dir: PathBuf,
    segment: Segment,
    segment_bytes: u64,
    /// Board files written since the current segment began, by address (synced at checkpoint).
    dirty: HashMap<usize, Arc<File>>,
    checkpoints: mpsc::Sender<Checkpoint>,
    state: Arc<State>,
}

impl Round {
    fn run(mut self, rx: mpsc::Receiver<Append>) {
        let mut wal = Vec::new();
        let mut round_started = std::time::Instant::now();
        let mut last_batch = 0;
        while let Ok(first) = rx.recv() {
            // Under load, gather for what is left of the spacing; after a quiet spell, go at once.
            // A round of one append gathers nothing by waiting: it is one busy board (a town hall,
            // whose next command waits for this one) or a light load.
            let gather = ROUND_SPACING.saturating_sub(round_started.elapsed());
            if last_batch > 1 && !gather.is_zero() {
                std::thread::sleep(gather);
            }
            round_started = std::time::Instant::now();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(append) => batch.push(append),
                    Err(_) => break,
                }
            }
            let result = if self.state.failed.load(Ordering::Acquire) {
                Err(anyhow!("the write-ahead log failed earlier; restart the server to recover"))
            } else {
                wal.clear();
                self.commit(&batch, &mut wal)
            };
            let result = result.map_err(|e| {
                self.state.failed.store(true, Ordering::Release);
                // Paths and OS errors only: no board content reaches this message.
                tracing::error!(error = %format!("{e:#}"), "the write-ahead log failed; appends are refused until a restart");
                format!("{e:#}")
            });
            last_batch = batch.len();
            let ok = result.is_ok();
            for append in batch {
                let _ = append.done.send(result.clone());
            }
            // Between rounds, off the appends' path: under load, the next round's gathering pause
            // counts from `round_started`, so this takes its time rather than adding to it.
            if ok && let Err(e) = self.segment.prepare() {
                // Only slower syncs follow; a full disk fails the next append anyway.
                tracing::warn!(error = %e, "could not lay down zeros ahead of the write-ahead log");
                self.segment.capacity = self.segment.prepared;
            }
        }
    }

    /// Writes a batch to the board files and the WAL, then syncs the WAL once.
    fn commit(&mut self, batch: &[Append], wal: &mut Vec<u8>) -> anyhow::Result<()> {
        for append in batch {
            (&*append.file).write_all(&append.board_lines).context("while writing a board's log")?;
            self.dirty.entry(Arc::as_ptr(&append.file) as usize).or_insert_with(|| append.file.clone());
            wal.extend_from_slice(&append.wal_lines);
        }
        self.segment.write(wal).context("while writing and syncing the write-ahead log")?;
        self.state.syncs.fetch_add(1, Ordering::Relaxed);
        if self.segment.len >= self.segment_bytes {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Starts a new segment, and hands the full one to the checkpoint thread, which syncs every
    /// board file written during it and then removes it. Appends go on meanwhile: syncing a
    /// hundred board files takes a while, and no meeting should wait for it.
    fn checkpoint(&mut self) -> anyhow::Result<()> {
        let full = segment_path(&self.dir, self.segment.number);
        self.segment = Segment::create(&self.dir, self.segment.number + 1, self.segment_bytes)?;
        let files = std::mem::take(&mut self.dirty).into_values().collect();
        self.checkpoints
            .send(Checkpoint { segment: full, files })
            .map_err(|_| anyhow!("the write-ahead log's checkpoint thread stopped"))
    }
}

/// A full segment whose board files are still to be synced before it can go.
struct Checkpoint {
    segment: PathBuf,
    files: Vec<Arc<File>>,
}

/// The checkpoint thread: one full segment after the other, in order.
fn checkpoints(dir: PathBuf, rx: mpsc::Receiver<Checkpoint>, state: Arc<State>) {
    while let Ok(Checkpoint { segment, files }) = rx.recv() {
        let result = (|| -> anyhow::Result<()> {
            for (i, file) in files.iter().enumerate() {
                file.sync_data().context("while syncing a board's log at a checkpoint")?;
                if i % CHECKPOINT_PACE == CHECKPOINT_PACE - 1 {
                    std::thread::sleep(CHECKPOINT_PAUSE);
                }
            }
            std::fs::remove_file(&segment).with_context(|| format!("while removing {}", segment.display()))?;
            File::open(&dir)?.sync_all().with_context(|| format!("while syncing {}", dir.display()))?;
            Ok(())
        })();
        match result {
            Ok(()) => drop(state.checkpoints.fetch_add(1, Ordering::Relaxed)),
            Err(e) => {
                // The segment stays; recovery at the next start replays it.
                state.failed.store(true, Ordering::Release);
                tracing::error!(error = %format!("{e:#}"), "a write-ahead log checkpoint failed; appends are refused until a restart");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{board, event};

    #[test]
    fn a_segment_ends_at_the_zeros_laid_down_ahead_and_a_torn_line_before_them_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.wal");
        let (_, mut lines) = encode(&board(), &[event(1), event(2)]).unwrap();
        let whole = lines.len();
        lines.extend_from_slice(&[0; 4096]);
        std::fs::write(&path, &lines).unwrap();
        let mut read = BTreeMap::new();
        assert!(!read_segment(&path, &mut read).unwrap(), "the zeros are not a torn line");
        assert_eq!(read[&board()], vec![event(1), event(2)]);
        // A round cut short by a crash: half a line written over the zeros.
        let (_, torn) = encode(&board(), &[event(3)]).unwrap();
        lines[whole..whole + torn.len() / 2].copy_from_slice(&torn[..torn.len() / 2]);
        std::fs::write(&path, &lines).unwrap();
        let mut read = BTreeMap::new();
        assert!(read_segment(&path, &mut read).unwrap(), "the torn line is seen, and dropped");
        assert_eq!(read[&board()], vec![event(1), event(2)]);
        assert_eq!(logged_len(&lines), whole + torn.len() / 2);
    }
}
