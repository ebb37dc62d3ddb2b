//! The embedded event log: one append-only file per board on local disk.
//!
//! Why files and not an embedded database: a board's history *is* an append-only log, read whole
//! when the board wakes and never updated in place. One file per board means boards never contend
//! for a shared writer lock, deleting a board is deleting its directory, and recovery is a check
//! of the last line. Meeting logs are small (hundreds to a few thousand events), so replaying one
//! at load is cheap.
//!
//! Layout under the data directory:
//! ```text
//! boards/<board id>/meta.json    access metadata (key hashes), written once, atomically
//! boards/<board id>/events.log   one line per event: "<crc32 as 8 hex digits> <json>\n"
//! boards/<board id>.deleted      a deleted board's tombstone: empty, kept so its links say so
//! Deleting writes the tombstone first, then removes the board's directory: a crash in between
//! leaves a tombstone and leftovers, which the next load removes. The last change of a board is
//! its log's modification time, which is what retention counts from.
//! wal/<number>.wal              the write-ahead log shared by every board ([`super::wal`])
//! ```
//! An append is acknowledged once it is in the write-ahead log and that is synced: one sync for
//! every append that arrived meanwhile, across boards ([`super::wal`]), so an accepted event
//! survives a crash of the process or of the machine. The board's own file gets the same lines
//! unsynced; opening the store after a crash completes each board's file from the write-ahead log.
//! A crash in the middle of a write can leave a torn last line; loading drops a torn *last* line
//! (its events were never acknowledged) and refuses a log damaged anywhere else.
//!
//! One process owns the directory, so a board here has one history: its epoch is always
//! [`Epoch::EMBEDDED`].

use super::wal::{self, Committer};
use super::{BoardMeta, Epoch, EventLog, StoreError, StoredBoard};
use anyhow::{Context, anyhow, bail};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use minim_shared::{BoardId, Seq, Sequenced};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The embedded store rooted at a data directory.
pub struct DiskLog {
    root: PathBuf,
    /// Open log files with the head each was last extended to. A std mutex: it is held only to
    /// look up or insert an entry, never across IO or an `.await`.
    open: Mutex<HashMap<BoardId, Arc<tokio::sync::Mutex<OpenLog>>>>,
    committer: Committer,
}

struct OpenLog {
    file: Arc<File>,
    head: Seq,
}

impl DiskLog {
    pub fn open(data_dir: &Path) -> anyhow::Result<DiskLog> {
        DiskLog::open_with(data_dir, wal::SEGMENT_BYTES)
    }

    /// [`DiskLog::open`], with write-ahead log segments checkpointed at `segment_bytes`.
    pub fn open_with(data_dir: &Path, segment_bytes: u64) -> anyhow::Result<DiskLog> {
        let root = data_dir.join("boards");
        std::fs::create_dir_all(&root).with_context(|| format!("while creating {}", root.display()))?;
        let wal_dir = data_dir.join("wal");
        // A board deleted since its events were logged (or while a crash cut its deletion short)
        // stays deleted. Ids come from the log's checked lines; a malformed one names no board.
        let board_log = |board: &BoardId| {
            let live = crate::auth::is_board_id(&board.0)
                && board_dir(&root, board).is_dir()
                && !tombstone_path(&root, board).exists();
            live.then(|| board_dir(&root, board).join("events.log"))
        };
        let next = wal::recover(&wal_dir, board_log, complete_from_wal)
            .context("while recovering from the write-ahead log")?;
        let committer = Committer::start(wal_dir, next, segment_bytes)?;
        Ok(DiskLog { root, open: Mutex::new(HashMap::new()), committer })
    }

    /// How many syncs have acknowledged appends so far (each covers every append it found queued).
    pub fn syncs(&self) -> u64 {
        self.committer.syncs()
    }

    /// How many times the write-ahead log was checkpointed and replaced.
    pub fn checkpoints(&self) -> u64 {
        self.committer.checkpoints()
    }

    fn tombstone(&self, board: &BoardId) -> PathBuf {
        tombstone_path(&self.root, board)
    }

    fn dir(&self, board: &BoardId) -> PathBuf {
        board_dir(&self.root, board)
    }

    fn entry(&self, board: &BoardId) -> Option<Arc<tokio::sync::Mutex<OpenLog>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).get(board).cloned()
    }

    fn remember(&self, board: &BoardId, log: OpenLog) -> Arc<tokio::sync::Mutex<OpenLog>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.entry(board.clone()).or_insert_with(|| Arc::new(tokio::sync::Mutex::new(log))).clone()
    }
}

fn tombstone_path(root: &Path, board: &BoardId) -> PathBuf {
    debug_assert!(crate::auth::is_board_id(&board.0));
    root.join(format!("{}.deleted", board.0))
}

fn board_dir(root: &Path, board: &BoardId) -> PathBuf {
    // Board ids are validated hex before they get here; this guards the path all the same.
    debug_assert!(crate::auth::is_board_id(&board.0));
    root.join(&board.0)
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| anyhow!("storage task failed: {e}"))?
}

fn encode_lines(events: &[Sequenced]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(events.len() * 128);
    for e in events {
        push_line(&mut out, &serde_json::to_vec(e).context("while encoding an event")?);
    }
    Ok(out)
}

/// Appends one line of a board's log: the event's JSON after its checksum.
pub(super) fn push_line(out: &mut Vec<u8>, json: &[u8]) {
    write!(out, "{:08x} ", crc32fast::hash(json)).expect("writing to a Vec cannot fail");
    out.extend_from_slice(json);
    out.push(b'\n');
}

/// Reads a log, dropping a torn last line. Returns the events and the length of the good prefix.
fn read_log(path: &Path) -> anyhow::Result<(Vec<Sequenced>, u64)> {
    let file = File::open(path).with_context(|| format!("while opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut events: Vec<Sequenced> = Vec::new();
    let mut good_len = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let complete = line.ends_with(b"\n");
        match parse_line(&line).filter(|_| complete) {
            Some(e) => {
                let expected = events.last().map_or(Seq(1), |last| last.seq.next());
                if e.seq != expected {
                    bail!("{} is out of order at {} (expected {})", path.display(), e.seq, expected);
                }
                good_len += n as u64;
                events.push(e);
            }
            None => {
                let mut rest = Vec::new();
                std::io::Read::read_to_end(&mut reader, &mut rest)?;
                if !rest.is_empty() {
                    bail!("{} is damaged before its end (after {} good events)", path.display(), events.len());
                }
                tracing::warn!(path = %path.display(), "dropping a torn last line (an append that never completed)");
                break;
            }
        }
    }
    Ok((events, good_len))
}

/// Appends to a board's file the events of the write-ahead log it lacks (after a crash), and
/// syncs it; how many it lacked.
fn complete_from_wal(path: &Path, logged: &[Sequenced]) -> anyhow::Result<usize> {
    let (events, good_len) = read_log(path)?;
    let head = events.last().map_or(Seq::ZERO, |e| e.seq);
    let missing = wal::missing_after(head, logged)?;
    let mut file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.len() != good_len {
        file.set_len(good_len)?;
    }
    if !missing.is_empty() {
        file.seek(std::io::SeekFrom::End(0))?;
        file.write_all(&encode_lines(missing)?)?;
    }
    file.sync_all()?;
    Ok(missing.len())
}

fn parse_line(line: &[u8]) -> Option<Sequenced> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if line.get(8) != Some(&b' ') || crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)?.sync_all().with_context(|| format!("while syncing {}", dir.display()))
}

impl EventLog for DiskLog {
    fn create<'a>(
        &'a self,
        board: &'a BoardId,
        meta: &'a BoardMeta,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<Epoch, StoreError>> {
        async move {
            let dir = self.dir(board);
            let root = self.root.clone();
            if self.tombstone(board).exists() {
                return Err(StoreError::Exists);
            }
            let meta = serde_json::to_vec_pretty(meta).context("while encoding board metadata")?;
            let lines = encode_lines(events)?;
            let head = events.last().map_or(Seq::ZERO, |e| e.seq);
            let file = blocking(move || {
                match std::fs::create_dir(&dir) {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
                    other => other.with_context(|| format!("while creating {}", dir.display()))?,
                }
                let tmp = dir.join("meta.json.tmp");
                std::fs::write(&tmp, &meta)?;
                File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, dir.join("meta.json"))?;
                let mut file = OpenOptions::new().create_new(true).append(true).open(dir.join("events.log"))?;
                file.write_all(&lines)?;
                file.sync_all()?;
                sync_dir(&dir)?;
                sync_dir(&root)?;
                Ok(Some(file))
            })
            .await?;
            let file = file.ok_or(StoreError::Exists)?;
            self.remember(board, OpenLog { file: Arc::new(file), head });
            Ok(Epoch::EMBEDDED)
        }
        .boxed()
    }

    fn load<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<Option<StoredBoard>, StoreError>> {
        async move {
            let dir = self.dir(board);
            let tombstone = self.tombstone(board);
            let loaded = blocking(move || {
                if tombstone.exists() {
                    // Finish a deletion that a crash interrupted.
                    if dir.exists() {
                        std::fs::remove_dir_all(&dir).with_context(|| format!("while removing {}", dir.display()))?;
                    }
                    return Ok(Err(StoreError::Deleted));
                }
                let meta = match std::fs::read(dir.join("meta.json")) {
                    Ok(bytes) => serde_json::from_slice::<BoardMeta>(&bytes).context("while reading board metadata")?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
                    Err(e) => return Err(e).context("while reading board metadata"),
                };
                let path = dir.join("events.log");
                let changed_ago = std::fs::metadata(&path)?.modified()?.elapsed().unwrap_or(std::time::Duration::ZERO);
                let (events, good_len) = read_log(&path)?;
                let mut file = OpenOptions::new().append(true).open(&path)?;
                if file.metadata()?.len() != good_len {
                    file.set_len(good_len)?;
                    file.sync_all()?;
                }
                file.seek(std::io::SeekFrom::End(0))?;
                Ok(Ok(Some((meta, events, file, changed_ago))))
            })
            .await?;
            let Some((meta, events, file, changed_ago)) = loaded? else { return Ok(None) };
            let head = events.last().map_or(Seq::ZERO, |e| e.seq);
            // If this process already has the log open, that entry stays authoritative: a loader
            // that read fewer events than it holds gets a `Conflict` on its first append and reloads.
            self.remember(board, OpenLog { file: Arc::new(file), head });
            Ok(Some(StoredBoard { meta, events, epoch: Epoch::EMBEDDED, expires_in: None, changed_ago }))
        }
        .boxed()
    }

    fn append<'a>(
        &'a self,
        board: &'a BoardId,
        epoch: Epoch,
        after: Seq,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            if epoch != Epoch::EMBEDDED {
                return Err(StoreError::Lost);
            }
            let log = self.entry(board).ok_or(StoreError::NotFound)?;
            // One append at a time per board; this lock is what makes the append compare-and-append.
            let mut log = log.lock().await;
            if log.head != after {
                return Err(StoreError::Conflict { head: log.head });
            }
            let Some(last) = events.last() else { return Ok(()) };
            let (board_lines, wal_lines) = wal::encode(board, events)?;
            self.committer
                .append(log.file.clone(), board_lines, wal_lines)
                .await
                .context("while appending to a board's log")?;
            log.head = last.seq;
            Ok(())
        }
        .boxed()
    }

    fn read_after<'a>(
        &'a self,
        board: &'a BoardId,
        epoch: Epoch,
        after: Seq,
    ) -> BoxFuture<'a, Result<Vec<Sequenced>, StoreError>> {
        async move {
            if epoch != Epoch::EMBEDDED {
                return Err(StoreError::Lost);
            }
            // Only the board's own task writes here, so this is rare (a reload after a conflict):
            // reading the whole file is fine.
            let stored = self.load(board).await?.ok_or(StoreError::NotFound)?;
            Ok(stored.events.into_iter().filter(|e| e.seq > after).collect())
        }
        .boxed()
    }

    fn delete<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let (dir, tombstone, root) = (self.dir(board), self.tombstone(board), self.root.clone());
            // Hold the board's log, if open, so that no append lands in the middle.
            let open = self.entry(board);
            let _guard = match &open {
                Some(log) => Some(log.lock().await),
                None => None,
            };
            blocking(move || {
                File::create(&tombstone)?.sync_all()?;
                sync_dir(&root)?;
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).with_context(|| format!("while removing {}", dir.display()))?;
                    sync_dir(&root)?;
                }
                Ok(())
            })
            .await
            .context("while deleting a board")?;
            self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(board);
            Ok(())
        }
        .boxed()
    }

    fn expired(&self, retention: std::time::Duration) -> BoxFuture<'_, Result<Vec<BoardId>, StoreError>> {
        let root = self.root.clone();
        async move {
            let expired = blocking(move || {
                let mut expired = vec![];
                for entry in std::fs::read_dir(&root)? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !crate::auth::is_board_id(&name) || !entry.file_type()?.is_dir() {
                        continue;
                    }
                    // A board being created has no log yet; it is not expired.
                    let Ok(changed) = std::fs::metadata(entry.path().join("events.log")).and_then(|m| m.modified())
                    else {
                        continue;
                    };
                    if changed.elapsed().is_ok_and(|age| age > retention) {
                        expired.push(BoardId(name));
                    }
                }
                Ok(expired)
            })
            .await
            .context("while looking for expired boards")?;
            Ok(expired)
        }
        .boxed()
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            // A real write, not a look: a full or read-only disk must show as not ready.
            if !self.committer.healthy() {
                return Err(StoreError::Unavailable(anyhow!("the write-ahead log failed; restart the server")));
            }
            let probe = self.root.join(".ready");
            blocking(move || std::fs::write(&probe, b"ok").context("while writing the readiness probe"))
                .await
                .map_err(StoreError::Unavailable)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{board, event, meta};

    #[tokio::test]
    async fn events_survive_reopening_and_appends_are_compare_and_append() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        assert!(matches!(log.create(&board(), &meta(), &[event(1)]).await, Err(StoreError::Exists)));
        log.append(&board(), Epoch::EMBEDDED, Seq(1), &[event(2), event(3)]).await.unwrap();
        assert!(matches!(
            log.append(&board(), Epoch::EMBEDDED, Seq(2), &[event(3)]).await,
            Err(StoreError::Conflict { head: Seq(3) })
        ));

        let reopened = DiskLog::open(dir.path()).unwrap();
        let stored = reopened.load(&board()).await.unwrap().unwrap();
        assert_eq!(stored.meta, meta());
        assert_eq!(stored.events, vec![event(1), event(2), event(3)]);
        reopened.append(&board(), Epoch::EMBEDDED, Seq(3), &[event(4)]).await.unwrap();
        assert_eq!(reopened.load(&board()).await.unwrap().unwrap().events.len(), 4);
        assert!(reopened.load(&BoardId("ff".repeat(16))).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_deleted_board_leaves_only_a_tombstone_and_is_never_stored_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1), event(2)]).await.unwrap();
        log.delete(&board()).await.unwrap();
        let left: Vec<_> =
            std::fs::read_dir(dir.path().join("boards")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from(format!("{}.deleted", board().0))]);
        assert_eq!(std::fs::metadata(log.tombstone(&board())).unwrap().len(), 0, "the tombstone holds nothing");
        assert!(matches!(log.load(&board()).await, Err(StoreError::Deleted)));
        assert!(matches!(log.create(&board(), &meta(), &[event(1)]).await, Err(StoreError::Exists)));
        assert!(matches!(DiskLog::open(dir.path()).unwrap().load(&board()).await, Err(StoreError::Deleted)));
    }

    #[tokio::test]
    async fn a_deletion_cut_short_by_a_crash_is_finished_by_the_next_load() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        File::create(log.tombstone(&board())).unwrap();
        assert!(matches!(log.load(&board()).await, Err(StoreError::Deleted)));
        assert!(!log.dir(&board()).exists());
    }

    #[tokio::test]
    async fn boards_unchanged_for_longer_than_the_retention_are_listed_as_expired() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(log.expired(day).await.unwrap(), vec![]);
        // Its last change, two days ago.
        let log_file = log.dir(&board()).join("events.log");
        let two_days_ago = std::time::SystemTime::now() - 2 * day;
        File::options().append(true).open(&log_file).unwrap().set_modified(two_days_ago).unwrap();
        assert_eq!(log.expired(day).await.unwrap(), vec![board()]);
        assert_eq!(log.expired(3 * day).await.unwrap(), vec![]);
        log.delete(&board()).await.unwrap();
        assert_eq!(log.expired(day).await.unwrap(), vec![], "a deleted board is not listed again");
    }

    #[tokio::test]
    async fn a_torn_last_line_is_dropped_and_the_log_stays_writable() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1), event(2)]).await.unwrap();
        let path = dir.path().join("boards").join(&board().0).join("events.log");
        let mut torn = encode_lines(&[event(3)]).unwrap();
        torn.truncate(torn.len() / 2);
        OpenOptions::new().append(true).open(&path).unwrap().write_all(&torn).unwrap();

        let reopened = DiskLog::open(dir.path()).unwrap();
        assert_eq!(reopened.load(&board()).await.unwrap().unwrap().events.len(), 2);
        reopened.append(&board(), Epoch::EMBEDDED, Seq(2), &[event(3)]).await.unwrap();
        let again = DiskLog::open(dir.path()).unwrap();
        assert_eq!(again.load(&board()).await.unwrap().unwrap().events, vec![event(1), event(2), event(3)]);
    }

    #[tokio::test]
    async fn damage_before_the_end_is_refused_not_papered_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1), event(2), event(3)]).await.unwrap();
        let path = dir.path().join("boards").join(&board().0).join("events.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let second_line = bytes.iter().position(|b| *b == b'\n').unwrap() + 12;
        bytes[second_line] ^= 0x20;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(DiskLog::open(dir.path()).unwrap().load(&board()).await, Err(StoreError::Unavailable(_))));
    }

    fn board_n(n: u32) -> BoardId {
        BoardId(format!("{n:032x}"))
    }

    /// A store in `data` holding `board()` and `other`, each created with `events`.
    async fn two_boards(data: &Path, other: &BoardId, events: &[Sequenced]) -> DiskLog {
        let log = DiskLog::open(data).unwrap();
        for b in [board(), other.clone()] {
            log.create(&b, &meta(), events).await.unwrap();
        }
        log
    }

    fn wal_segments(data: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(data.join("wal")).unwrap().map(|e| e.unwrap().path()).collect();
        found.sort();
        found
    }

    /// A segment's log: its bytes up to the zeros laid down ahead.
    fn logged(segment: &Path) -> Vec<u8> {
        let mut bytes = std::fs::read(segment).unwrap();
        bytes.truncate(wal::logged_len(&bytes));
        bytes
    }

    #[tokio::test]
    async fn the_log_is_written_into_zeros_laid_down_ahead_of_it_and_read_back_up_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open_with(dir.path(), 4 << 20).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        let segment = wal_segments(dir.path()).pop().unwrap();
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert_eq!(size(&segment), 256 << 10, "a new segment starts with 256 kB of zeros");
        assert!(logged(&segment).is_empty(), "creating a board writes its own file, synced");
        // Past half of those zeros, the next 256 kB are laid down behind the log, never over it.
        let mut seq = 1;
        while logged(&segment).len() < 200 << 10 {
            let events: Vec<Sequenced> = (seq + 1..=seq + 100).map(event).collect();
            log.append(&board(), Epoch::EMBEDDED, Seq(seq), &events).await.unwrap();
            seq += 100;
        }
        assert_eq!(size(&segment), 512 << 10);
        let lines = logged(&segment);
        assert_eq!(lines.iter().filter(|b| **b == b'\n').count() as u64, seq - 1, "every append, once, in the log");
        drop(log);
        let reopened = DiskLog::open_with(dir.path(), 4 << 20).unwrap();
        assert_eq!(reopened.load(&board()).await.unwrap().unwrap().events, (1..=seq).map(event).collect::<Vec<_>>());
        // Recovery read the old segment up to its zeros (every line whole), and removed it.
        assert_eq!(wal_segments(dir.path()).len(), 1);
        reopened.append(&board(), Epoch::EMBEDDED, Seq(seq), &[event(seq + 1)]).await.unwrap();
    }

    #[tokio::test]
    async fn an_acknowledged_append_survives_a_crash_that_loses_the_unsynced_board_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        let path = log.dir(&board()).join("events.log");
        let synced_len = std::fs::metadata(&path).unwrap().len();
        log.append(&board(), Epoch::EMBEDDED, Seq(1), &[event(2), event(3)]).await.unwrap();
        log.append(&board(), Epoch::EMBEDDED, Seq(3), &[event(4)]).await.unwrap();
        drop(log);
        // What a power cut may leave of a file that was never synced: the synced part, and half a line.
        let mut torn = encode_lines(&[event(2)]).unwrap();
        torn.truncate(torn.len() / 2);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(synced_len).unwrap();
        (&file).seek(std::io::SeekFrom::End(0)).unwrap();
        (&file).write_all(&torn).unwrap();

        let reopened = DiskLog::open(dir.path()).unwrap();
        assert_eq!(
            reopened.load(&board()).await.unwrap().unwrap().events,
            vec![event(1), event(2), event(3), event(4)]
        );
        assert_eq!(
            wal_segments(dir.path()).len(),
            1,
            "the old segments are gone once their events are in the boards' files"
        );
        reopened.append(&board(), Epoch::EMBEDDED, Seq(4), &[event(5)]).await.unwrap();
        // A restart without a crash finds everything already in place.
        drop(reopened);
        let again = DiskLog::open(dir.path()).unwrap();
        assert_eq!(again.load(&board()).await.unwrap().unwrap().events.len(), 5);
    }

    #[tokio::test]
    async fn a_torn_end_of_the_write_ahead_log_is_dropped_and_damage_before_it_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        log.append(&board(), Epoch::EMBEDDED, Seq(1), &[event(2)]).await.unwrap();
        drop(log);
        let segment = wal_segments(dir.path()).pop().unwrap();
        let (_, mut torn) = wal::encode(&board(), &[event(3)]).unwrap();
        torn.truncate(torn.len() - 3);
        // Where the next round would have written: over the zeros after the log.
        let end = logged(&segment).len() as u64;
        std::os::unix::fs::FileExt::write_all_at(&OpenOptions::new().write(true).open(&segment).unwrap(), &torn, end)
            .unwrap();
        let reopened = DiskLog::open(dir.path()).unwrap();
        assert_eq!(reopened.load(&board()).await.unwrap().unwrap().events, vec![event(1), event(2)]);
        reopened.append(&board(), Epoch::EMBEDDED, Seq(2), &[event(3), event(4)]).await.unwrap();
        drop(reopened);

        // A flipped bit in a line that is not the last.
        let segment = wal_segments(dir.path()).pop().unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[20] ^= 0x01;
        std::fs::write(&segment, bytes).unwrap();
        let refused = DiskLog::open(dir.path()).err().expect("a damaged write-ahead log is refused");
        assert!(format!("{refused:#}").contains("damaged"), "{refused:#}");
    }

    #[tokio::test]
    async fn a_board_deleted_after_its_events_were_logged_stays_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path()).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        log.append(&board(), Epoch::EMBEDDED, Seq(1), &[event(2)]).await.unwrap();
        log.delete(&board()).await.unwrap();
        // A second board whose deletion a crash cut short: its tombstone is written, its directory
        // still there, and its file lacks the unsynced line the log holds.
        let cut_short = board_n(5);
        log.create(&cut_short, &meta(), &[event(1)]).await.unwrap();
        let cut_path = log.dir(&cut_short).join("events.log");
        let synced_len = std::fs::metadata(&cut_path).unwrap().len();
        log.append(&cut_short, Epoch::EMBEDDED, Seq(1), &[event(2)]).await.unwrap();
        File::create(log.tombstone(&cut_short)).unwrap();
        drop(log);
        OpenOptions::new().write(true).open(&cut_path).unwrap().set_len(synced_len).unwrap();

        let reopened = DiskLog::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&cut_path).unwrap().len(), synced_len, "nothing was written back to it");
        assert_eq!(wal_segments(dir.path()).len(), 1, "recovery took both for deleted, not for damaged");
        for b in [board(), cut_short.clone()] {
            assert!(matches!(reopened.load(&b).await, Err(StoreError::Deleted)));
            assert!(!reopened.dir(&b).exists());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_to_many_boards_at_once_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(DiskLog::open(dir.path()).unwrap());
        let boards: Vec<BoardId> = (1..=200).map(board_n).collect();
        for b in &boards {
            log.create(b, &meta(), &[event(1)]).await.unwrap();
        }
        let before = log.syncs();
        let second = [event(2)];
        let appends = boards.iter().map(|b| log.append(b, Epoch::EMBEDDED, Seq(1), &second));
        for result in futures_util::future::join_all(appends).await {
            result.unwrap();
        }
        let syncs = log.syncs() - before;
        assert!((1..=100).contains(&syncs), "200 appends at once took {syncs} syncs");
        drop(log);
        let reopened = DiskLog::open(dir.path()).unwrap();
        for b in &boards {
            assert_eq!(reopened.load(b).await.unwrap().unwrap().events, vec![event(1), event(2)]);
        }
    }

    #[tokio::test]
    async fn a_full_segment_is_checkpointed_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open_with(dir.path(), 1024).unwrap();
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        for n in 2..=40 {
            log.append(&board(), Epoch::EMBEDDED, Seq(n - 1), &[event(n)]).await.unwrap();
        }
        // Checkpoints finish in the background.
        let mut segments = wal_segments(dir.path());
        for _ in 0..500 {
            if segments.len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            segments = wal_segments(dir.path());
        }
        assert!(log.checkpoints() >= 2, "{} checkpoints", log.checkpoints());
        assert_eq!(segments.len(), 1, "only the current segment is kept: {segments:?}");
        assert!(logged(&segments[0]).len() < 1024 + 512);
        assert!(std::fs::metadata(&segments[0]).unwrap().len() < 1024 + 512, "no zeros past the checkpoint");
        drop(log);
        let reopened = DiskLog::open(dir.path()).unwrap();
        assert_eq!(reopened.load(&board()).await.unwrap().unwrap().events, (1..=40).map(event).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn after_a_failed_write_appends_are_refused_and_not_ready_until_a_restart_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let other = board_n(7);
        let log = two_boards(dir.path(), &other, &[event(1)]).await;
        log.append(&board(), Epoch::EMBEDDED, Seq(1), &[event(2)]).await.unwrap();
        // The board's file can no longer be written (as with a disk gone read-only).
        let read_only = File::open(log.dir(&board()).join("events.log")).unwrap();
        log.entry(&board()).unwrap().lock().await.file = Arc::new(read_only);
        assert!(matches!(
            log.append(&board(), Epoch::EMBEDDED, Seq(2), &[event(3)]).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(log.ready().await.is_err(), "the store reports itself unavailable");
        assert!(
            matches!(log.append(&other, Epoch::EMBEDDED, Seq(1), &[event(2)]).await, Err(StoreError::Unavailable(_))),
            "nothing more is accepted, for any board"
        );
        drop(log);
        let restarted = DiskLog::open(dir.path()).unwrap();
        restarted.ready().await.unwrap();
        assert_eq!(restarted.load(&board()).await.unwrap().unwrap().events, vec![event(1), event(2)]);
        restarted.append(&board(), Epoch::EMBEDDED, Seq(2), &[event(3)]).await.unwrap();
        restarted.load(&other).await.unwrap();
        restarted.append(&other, Epoch::EMBEDDED, Seq(1), &[event(2)]).await.unwrap();
    }

    #[tokio::test]
    async fn a_board_damaged_before_recovery_stays_unavailable_and_the_others_recover() {
        let dir = tempfile::tempdir().unwrap();
        let other = board_n(9);
        let log = two_boards(dir.path(), &other, &[event(1), event(2)]).await;
        let other_synced = std::fs::metadata(log.dir(&other).join("events.log")).unwrap().len();
        log.append(&board(), Epoch::EMBEDDED, Seq(2), &[event(3)]).await.unwrap();
        log.append(&other, Epoch::EMBEDDED, Seq(2), &[event(3)]).await.unwrap();
        let damaged_path = log.dir(&board()).join("events.log");
        drop(log);
        // A power cut takes `other`'s unsynced line, and the first board's file is damaged.
        OpenOptions::new().write(true).open(log_path(dir.path(), &other)).unwrap().set_len(other_synced).unwrap();
        let mut bytes = std::fs::read(&damaged_path).unwrap();
        bytes[12] ^= 0x20;
        std::fs::write(&damaged_path, bytes).unwrap();

        let reopened = DiskLog::open(dir.path()).expect("one damaged board does not stop the server");
        assert_eq!(reopened.load(&other).await.unwrap().unwrap().events, vec![event(1), event(2), event(3)]);
        assert!(matches!(reopened.load(&board()).await, Err(StoreError::Unavailable(_))));
        assert!(!wal_segments(dir.path()).is_empty());
        drop(reopened);
        // The kept segments are replayed again at the next start; what was restored stays once.
        let again = DiskLog::open(dir.path()).unwrap();
        assert_eq!(again.load(&other).await.unwrap().unwrap().events.len(), 3);
    }

    fn log_path(data: &Path, board: &BoardId) -> PathBuf {
        data.join("boards").join(&board.0).join("events.log")
    }
}
