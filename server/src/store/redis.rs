//! A Redis-backed event log, so that several nodes can share live boards; [`crate::fanout`]
//! tells each node what the others appended.
//!
//! Layout, under a prefix chosen at construction ([`PREFIX`] in production, a fresh one per test):
//! ```text
//! <prefix>:{<board id>}:meta     access metadata (JSON of `BoardMeta`)
//! <prefix>:{<board id>}:epoch    the board's epoch in this Redis (see `super::Epoch`)
//! <prefix>:{<board id>}:events   a list of JSON `Sequenced` events; index i holds seq i + 1
//! <prefix>:{<board id>}:deleted  a deleted board's tombstone (no content), for the retention period
//! <prefix>:fanout:<board id>     pub/sub channel: `{"epoch":"…","head":N,"events":[…]}` per append
//! ```
//! The braces are a Redis Cluster hash tag: a board's keys hash to the same slot, so the scripts
//! below (which touch all three) and the `MULTI`s in `load` and `read_after` work on a cluster.
//!
//! Why a Lua compare-and-append over a list, and not `XADD` with explicit stream IDs: the board
//! task appends a *batch* of events that must land after a known sequence number, in a known
//! epoch, all or nothing. A script checks "the epoch is the caller's and the list is exactly
//! `after` long" and `RPUSH`es the whole batch in one atomic step (Redis runs a script without
//! interleaving other commands). `XADD` with explicit IDs refuses only IDs that are not greater
//! than the last one, so it would accept a gap, checks one entry at a time (a batch could land
//! half-way), cannot check an epoch, and stream IDs are `ms-seq` pairs that would have to be mapped
//! onto our sequence numbers. A list whose length *is* the head is also simple to read back
//! (`LRANGE after -1`) and to check (`LLEN`).
//!
//! The same script publishes the batch to the board's channel, so an accepted batch is always
//! announced: no node can crash between storing and announcing. Pub/sub is still at-most-once
//! (a subscriber that is disconnected misses it); readers find such gaps by sequence number.
//!
//! Every change leaves the board's keys set to expire at least the retention period after it, so a
//! board's content is deleted from Redis that long after its last change, and at most a hundredth
//! of it later ([`REFRESH_SLACK`]): an append sets the expiry again only once that much has run
//! down, rather than on every append (three `PEXPIRE`s were a third of the append script's time).
//!
//! The append script does as little as it can, as it runs for every event of every meeting: the
//! node builds the announcement itself (it knows the epoch, and the head the append will reach if
//! it lands), so the script publishes it as it is instead of assembling it in Lua. Together with
//! the expiry above, that halved the script's time in Redis (12.5 against 6.8 µs a call, alone
//! with `redis-benchmark`; BENCHMARKS.md).
//!
//! `create` is a script too: it writes the metadata, epoch and first events only if the board
//! does not exist yet, so two nodes creating (or storing again) the same board cannot both succeed.
//!
//! Durability is whatever the Redis deployment is configured for (AOF with `appendfsync always`
//! matches the embedded log's "fsynced before accepted"); this module does not configure Redis.
//!
//! Errors from Redis become [`StoreError::Unavailable`] with context saying what was being done.
//! Nothing here logs, and no error message carries an event's contents. One caveat the embedded
//! log does not have: if the connection drops after an append was sent, the outcome is unknown
//! (reported as `Unavailable`), though the events may have landed; the board task then finds the
//! log ahead of it (`Conflict`, or the announcement) and reads what it missed.
//!
//! Each worker thread has a connection of its own, a [`ConnectionManager`], which reconnects by
//! itself after a failure; the command that saw the failure still reports it. Every command has a
//! deadline, so a Redis that stops answering turns into a quick "unavailable", not a hung board.

use super::{BoardMeta, Epoch, EventLog, StoreError, StoredBoard};
use crate::metrics::Metrics;
use anyhow::{Context, anyhow, bail};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use minim_shared::{BoardId, Seq, Sequenced};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The key prefix of a production deployment.
pub const PREFIX: &str = "minim";
/// How long a Redis command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long connecting to Redis may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Events pushed per `RPUSH` when a whole board is stored again (Lua's `unpack` has a stack limit).
const PUSH_CHUNK: usize = 1000;
/// An append sets a board's expiry again only once 1/`REFRESH_SLACK` of the retention period has
/// run down since it was last set, and then sets it to the retention plus that much: a board is
/// deleted no sooner than the retention after its last change, and at most a hundredth later.
const REFRESH_SLACK: u32 = 100;

/// `KEYS`: meta, epoch, events, tombstone. `ARGV`: the metadata's JSON, epoch, retention in ms,
/// channel, then each event's JSON. Returns 1 if the board was created, 0 if it already existed
/// (or was deleted: a deleted board is never stored again). Announces the
/// new epoch (with no events) so that nodes holding an older copy reload at once.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return redis.error_reply('a board has events but no metadata')
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local chunk = tonumber(ARGV[5])
for i = 6, #ARGV, chunk do
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], '{"epoch":"' .. ARGV[2] .. '","events":[]}')
return 1
"#;

/// `KEYS`: meta, epoch, events. `ARGV`: epoch, `after`, the expiry to set in ms, the time to live
/// in ms below which it is set, channel, the announcement, then each event's JSON (at least one).
/// Returns `{1, new head}` if appended, `{0, head}` if the log is not at `after`, `{-1}` if the
/// board's history is not `epoch` (gone, or stored again).
const APPEND: &str = r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local head = redis.call('LLEN', KEYS[3])
if head ~= tonumber(ARGV[2]) then
  return {0, head}
end
head = redis.call('RPUSH', KEYS[3], unpack(ARGV, 7))
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[4]) then
  for i = 1, 3 do
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
  end
end
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {1, head}
"#;

/// `KEYS`: meta, epoch, events, tombstone. `ARGV`: retention in ms, channel. Deletes the board's
/// content, leaves the tombstone, and announces an epoch no board has (all zeros), which sends
/// every node holding the board to the store, where it finds it deleted.
const DELETE: &str = r#"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
redis.call('PUBLISH', ARGV[2], '{"epoch":"0000000000000000","events":[]}')
return 1
"#;

/// What the scripts publish on a board's channel. The events are left unread until a board
/// needs them: a node hears its own appends too, and its boards hold those already.
#[derive(Deserialize)]
pub struct Published<'a> {
    pub epoch: Epoch,
    /// The board's head after an append; absent from the announcements of a new or deleted
    /// board, which carry no events.
    #[serde(default)]
    pub head: Option<Seq>,
    #[serde(borrow)]
    events: &'a serde_json::value::RawValue,
}

impl Published<'_> {
    pub fn events(&self) -> serde_json::Result<Vec<Sequenced>> {
        serde_json::from_str(self.events.get())
    }
}

/// The events unread are board content as raw JSON: only their size is shown.
impl std::fmt::Debug for Published<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("epoch", &self.epoch)
            .field("head", &self.head)
            .field("events_bytes", &self.events.get().len())
            .finish()
    }
}

/// The Redis store: a self-reconnecting connection, the key prefix and the retention period.
pub struct RedisLog {
    metrics: Arc<Metrics>,
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// The connection of the fan-out's liveness probes, and of callers not on a single-threaded
    /// scheduler of their own.
    conn: ConnectionManager,
    /// Each worker thread's own connection (see [`RedisLog::worker_connection`]).
    workers: std::sync::Mutex<Vec<(std::thread::ThreadId, ConnectionManager)>>,
    prefix: String,
    retention: Duration,
    create: Script,
    append: Script,
    delete: Script,
}

impl RedisLog {
    /// Prepares a connection to `url` (e.g. `redis://127.0.0.1:6379/`); keys are put under
    /// `prefix`, and expire `retention` after a board's last change. Connects lazily: a node
    /// starts while Redis is down, and reports not ready until it is up.
    pub fn connect(
        url: &str,
        prefix: impl Into<String>,
        retention: Duration,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<RedisLog> {
        let client = redis::Client::open(url).context("while parsing the Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .context("while preparing the Redis connection")?;
        anyhow::ensure!(retention.as_millis() > 0, "the retention period must be positive");
        Ok(RedisLog {
            metrics,
            client,
            config,
            conn,
            workers: Default::default(),
            prefix: prefix.into(),
            retention,
            create: Script::new(CREATE),
            append: Script::new(APPEND),
            delete: Script::new(DELETE),
        })
    }

    /// The client, for a pub/sub connection of its own.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The command connection (shared, cheap to clone), for publishing probes.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The calling thread's command connection. A thread with a single-threaded scheduler (each
    /// worker, and the main thread) has one of its own, driven on that thread, so that a board's
    /// append neither wakes another thread to send it nor is woken from one with the answer (a
    /// connection is driven by the thread it was made on). Other callers share `conn`.
    fn worker_connection(&self) -> ConnectionManager {
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !on_worker {
            return self.conn.clone();
        }
        let me = std::thread::current().id();
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, conn)) = workers.iter().find(|(thread, _)| *thread == me) {
            return conn.clone();
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(conn) => {
                workers.push((me, conn.clone()));
                conn
            }
            Err(_) => self.conn.clone(),
        }
    }

    /// The pattern of every board's fan-out channel.
    pub fn fanout_pattern(&self) -> String {
        format!("{}:fanout:*", self.prefix)
    }

    /// The board a fan-out channel is for, if it is one.
    pub fn board_of_channel(&self, channel: &str) -> Option<BoardId> {
        let id = channel.strip_prefix(&self.prefix)?.strip_prefix(":fanout:")?;
        crate::auth::is_board_id(id).then(|| BoardId(id.to_owned()))
    }

    /// A channel that only one node listens to, for its liveness probe.
    pub fn probe_channel(&self, node: &str) -> String {
        format!("{}:probe:{node}", self.prefix)
    }

    fn fanout_channel(&self, board: &BoardId) -> String {
        format!("{}:fanout:{}", self.prefix, board.0)
    }

    /// The board's meta, epoch and events keys.
    fn keys(&self, board: &BoardId) -> [String; 3] {
        let [meta, epoch, events, _] = self.all_keys(board);
        [meta, epoch, events]
    }

    /// The board's meta, epoch, events and tombstone keys.
    fn all_keys(&self, board: &BoardId) -> [String; 4] {
        // Board ids are validated hex before they get here, so they cannot break out of the tag.
        debug_assert!(crate::auth::is_board_id(&board.0));
        let prefix = &self.prefix;
        let id = &board.0;
        ["meta", "epoch", "events", "deleted"].map(|k| format!("{prefix}:{{{id}}}:{k}"))
    }

    /// Counts a failure to reach Redis (not the answers that are part of the protocol).
    fn counted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(_)) = &result {
            Metrics::add(&self.metrics.redis_errors, 1);
        }
        result
    }

    fn retention_ms(&self) -> u64 {
        self.retention.as_millis().try_into().unwrap_or(u64::MAX)
    }

    /// The expiry an append sets when it sets one: the retention and its slack ([`REFRESH_SLACK`]).
    fn refreshed_ms(&self) -> u64 {
        let retention = self.retention_ms();
        retention.saturating_add(retention / u64::from(REFRESH_SLACK))
    }
}

/// What the append script publishes on the board's channel when `lines` land after `after`:
/// `{"epoch":"…","head":N,"events":[…]}`, read back as [`Published`].
fn announcement(epoch: Epoch, after: Seq, lines: &[Vec<u8>]) -> Vec<u8> {
    let head = after.0 + lines.len() as u64;
    let mut text = format!(r#"{{"epoch":"{epoch}","head":{head},"events":["#).into_bytes();
    text.reserve(lines.iter().map(|l| l.len() + 1).sum::<usize>() + 2);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        text.extend_from_slice(line);
    }
    text.extend_from_slice(b"]}");
    text
}

/// What `load` reads: whether there is a tombstone, the metadata, the epoch, the metadata's time
/// to live in ms, the events.
type LoadReply = (bool, Option<Vec<u8>>, Option<String>, i64, Vec<Vec<u8>>);

fn encode_events(events: &[Sequenced]) -> anyhow::Result<Vec<Vec<u8>>> {
    events.iter().map(|e| serde_json::to_vec(e).context("while encoding an event")).collect()
}

/// Decodes events read from a board's list, checking they follow `after` without a gap.
fn decode_events(after: Seq, lines: &[Vec<u8>]) -> anyhow::Result<Vec<Sequenced>> {
    let mut events: Vec<Sequenced> = Vec::with_capacity(lines.len());
    let mut expected = after.next();
    for line in lines {
        let e: Sequenced = serde_json::from_slice(line)
            .with_context(|| format!("while reading event {expected} of a board from Redis"))?;
        if e.seq != expected {
            bail!("a board's log in Redis is out of order at {} (expected {})", e.seq, expected);
        }
        expected = expected.next();
        events.push(e);
    }
    Ok(events)
}

/// Refuses a batch that does not directly follow `after`: written, it would corrupt the log for
/// every node, not just this one.
fn check_follows(after: Seq, events: &[Sequenced]) -> anyhow::Result<()> {
    let mut expected = after.next();
    for e in events {
        if e.seq != expected {
            bail!("refusing to append {} where {} was expected", e.seq, expected);
        }
        expected = expected.next();
    }
    Ok(())
}

fn parse_epoch(text: Option<String>) -> anyhow::Result<Option<Epoch>> {
    text.map(|t| t.parse().map_err(|_| anyhow!("a board's epoch in Redis is not an epoch"))).transpose()
}

impl EventLog for RedisLog {
    fn create<'a>(
        &'a self,
        board: &'a BoardId,
        meta: &'a BoardMeta,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<Epoch, StoreError>> {
        async move {
            check_follows(Seq::ZERO, events)?;
            let epoch = Epoch::random()?;
            let [meta_key, epoch_key, events_key, tombstone] = self.all_keys(board);
            let meta = serde_json::to_vec(meta).context("while encoding board metadata")?;
            let mut invocation = self.create.key(meta_key);
            invocation.key(epoch_key).key(events_key).key(tombstone);
            invocation.arg(meta).arg(epoch.to_string()).arg(self.retention_ms()).arg(self.fanout_channel(board));
            invocation.arg(PUSH_CHUNK);
            for e in encode_events(events)? {
                invocation.arg(e);
            }
            let mut conn = self.worker_connection();
            let created: i64 = invocation.invoke_async(&mut conn).await.context("while creating a board in Redis")?;
            match created {
                1 => Ok(epoch),
                0 => Err(StoreError::Exists),
                other => Err(anyhow!("unexpected answer {other} from the create script").into()),
            }
        }
        .map(|r| self.counted(r))
        .boxed()
    }

    fn load<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<Option<StoredBoard>, StoreError>> {
        async move {
            let [meta_key, epoch_key, events_key, tombstone] = self.all_keys(board);
            let mut conn = self.worker_connection();
            // MULTI/EXEC: everything is read at one instant.
            let (deleted, meta, epoch, ttl_ms, lines): LoadReply = redis::pipe()
                .atomic()
                .exists(&tombstone)
                .get(&meta_key)
                .get(&epoch_key)
                .pttl(&meta_key)
                .lrange(&events_key, 0, -1)
                .query_async(&mut conn)
                .await
                .context("while loading a board from Redis")?;
            if deleted {
                return Err(StoreError::Deleted);
            }
            let Some(meta) = meta else { return Ok(None) };
            let meta: BoardMeta = serde_json::from_slice(&meta).context("while reading board metadata from Redis")?;
            let epoch = parse_epoch(epoch)?.ok_or_else(|| anyhow!("a board in Redis has no epoch"))?;
            let events = decode_events(Seq::ZERO, &lines)?;
            // PTTL is -1 for a key without expiry (-2 would be a missing key, excluded above).
            let expires_in = u64::try_from(ttl_ms).ok().map(Duration::from_millis);
            // Every change sets the expiry to the whole retention period.
            let changed_ago = expires_in.map_or(Duration::ZERO, |left| self.retention.saturating_sub(left));
            Ok(Some(StoredBoard { meta, events, epoch, expires_in, changed_ago }))
        }
        .map(|r| self.counted(r))
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
            if events.is_empty() {
                return Ok(());
            }
            check_follows(after, events)?;
            let [meta_key, epoch_key, events_key] = self.keys(board);
            let lines = encode_events(events)?;
            let mut invocation = self.append.key(meta_key);
            invocation.key(epoch_key).key(events_key);
            invocation.arg(epoch.to_string()).arg(after.0).arg(self.refreshed_ms()).arg(self.retention_ms());
            invocation.arg(self.fanout_channel(board)).arg(announcement(epoch, after, &lines));
            for line in lines {
                invocation.arg(line);
            }
            let mut conn = self.worker_connection();
            let answer: Vec<i64> =
                invocation.invoke_async(&mut conn).await.context("while appending to a board's log in Redis")?;
            match answer[..] {
                [1, _] => Ok(()),
                [0, head] => Err(StoreError::Conflict { head: Seq(head as u64) }),
                [-1] => Err(StoreError::Lost),
                _ => Err(anyhow!("unexpected answer {answer:?} from the append script").into()),
            }
        }
        .map(|r| self.counted(r))
        .boxed()
    }

    fn read_after<'a>(
        &'a self,
        board: &'a BoardId,
        epoch: Epoch,
        after: Seq,
    ) -> BoxFuture<'a, Result<Vec<Sequenced>, StoreError>> {
        async move {
            let [_, epoch_key, events_key] = self.keys(board);
            let mut conn = self.worker_connection();
            let start = isize::try_from(after.0).context("a sequence number beyond this machine's lists")?;
            let (stored, lines): (Option<String>, Vec<Vec<u8>>) = redis::pipe()
                .atomic()
                .get(&epoch_key)
                .lrange(&events_key, start, -1)
                .query_async(&mut conn)
                .await
                .context("while reading a board's log from Redis")?;
            if parse_epoch(stored)? != Some(epoch) {
                return Err(StoreError::Lost);
            }
            Ok(decode_events(after, &lines)?)
        }
        .map(|r| self.counted(r))
        .boxed()
    }

    fn delete<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let [meta_key, epoch_key, events_key, tombstone] = self.all_keys(board);
            let mut invocation = self.delete.key(meta_key);
            invocation.key(epoch_key).key(events_key).key(tombstone);
            invocation.arg(self.retention_ms()).arg(self.fanout_channel(board));
            let mut conn = self.worker_connection();
            let _: i64 = invocation.invoke_async(&mut conn).await.context("while deleting a board in Redis")?;
            Ok(())
        }
        .map(|r| self.counted(r))
        .boxed()
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut conn = self.worker_connection();
            let _: String = redis::cmd("PING").query_async(&mut conn).await.context("while pinging Redis")?;
            Ok(())
        }
        .map(|r| self.counted(r))
        .boxed()
    }

    fn shared(&self) -> bool {
        true
    }

    fn retention(&self) -> Option<Duration> {
        Some(self.retention)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{board, event, meta};
    use futures_util::StreamExt;
    use minim_shared::{Event, PersonId, Private, Role};
    use minim_tests::cluster::RedisServer;

    const RETENTION: Duration = Duration::from_secs(3600);

    fn log(redis: &RedisServer, prefix: &str) -> RedisLog {
        log_with(redis, prefix, RETENTION)
    }

    fn log_with(redis: &RedisServer, prefix: &str, retention: Duration) -> RedisLog {
        RedisLog::connect(&redis.url, prefix, retention, Default::default()).unwrap()
    }

    async fn ttl_ms(redis: &RedisServer, key: &str) -> i64 {
        let mut conn = redis.connection().await.unwrap();
        redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap()
    }

    #[tokio::test]
    async fn each_worker_thread_appends_through_a_connection_of_its_own() {
        let redis = RedisServer::start().await.unwrap();
        let log = Arc::new(log(&redis, "tw"));
        let epoch = log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        // Two more worker threads, each with its own single-threaded scheduler, append in turn.
        for head in [1, 2] {
            let log = log.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(log.append(&board(), epoch, Seq(head), &[event(head + 1)])).unwrap();
            })
            .join()
            .unwrap();
        }
        let stored = log.load(&board()).await.unwrap().unwrap();
        assert_eq!(stored.events, vec![event(1), event(2), event(3)]);
        // This test's thread and the two others: one connection each.
        assert_eq!(log.workers.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn events_round_trip_and_appends_are_compare_and_append() {
        let redis = RedisServer::start().await.unwrap();
        let log = log(&redis, "t1");
        let epoch = log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        assert!(matches!(log.create(&board(), &meta(), &[event(1)]).await, Err(StoreError::Exists)));
        let stored = log.load(&board()).await.unwrap().unwrap();
        assert_eq!((stored.meta, stored.epoch), (meta(), epoch));
        assert_eq!(stored.events, vec![event(1)]);

        log.append(&board(), epoch, Seq(1), &[event(2), event(3)]).await.unwrap();
        let refused = log.append(&board(), epoch, Seq(2), &[event(3)]).await;
        assert!(matches!(refused, Err(StoreError::Conflict { head: Seq(3) })), "{refused:?}");
        let refused = log.append(&board(), epoch, Seq(4), &[event(5)]).await;
        assert!(matches!(refused, Err(StoreError::Conflict { head: Seq(3) })), "{refused:?}");
        assert_eq!(log.read_after(&board(), epoch, Seq(1)).await.unwrap(), vec![event(2), event(3)]);
        assert_eq!(log.read_after(&board(), epoch, Seq(3)).await.unwrap(), vec![]);

        // Another node (its own connection) sees the same log and continues it.
        let other = super::tests::log(&redis, "t1");
        let stored = other.load(&board()).await.unwrap().unwrap();
        assert_eq!(stored.events, vec![event(1), event(2), event(3)]);
        other.append(&board(), stored.epoch, Seq(3), &[event(4)]).await.unwrap();
        assert_eq!(log.load(&board()).await.unwrap().unwrap().events.len(), 4);

        // Prefixes isolate: the same board under another prefix does not exist.
        assert!(super::tests::log(&redis, "t2").load(&board()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_board_the_store_does_not_hold_is_lost_to_writers_and_readers() {
        let redis = RedisServer::start().await.unwrap();
        let log = log(&redis, "t");
        let unknown = BoardId("ff".repeat(16));
        assert!(log.load(&unknown).await.unwrap().is_none());
        assert!(matches!(log.append(&unknown, Epoch(7), Seq(0), &[event(1)]).await, Err(StoreError::Lost)));
        assert!(matches!(log.read_after(&unknown, Epoch(7), Seq(0)).await, Err(StoreError::Lost)));
        // A refused append wrote nothing.
        assert!(log.load(&unknown).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_redis_that_lost_its_data_is_told_apart_from_a_board_stored_again() {
        let redis = RedisServer::start().await.unwrap();
        let log = log(&redis, "t");
        let old = log.create(&board(), &meta(), &[event(1), event(2)]).await.unwrap();

        // Redis loses everything (a restart without persistence): the old history is gone.
        let mut conn = redis.connection().await.unwrap();
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        assert!(matches!(log.append(&board(), old, Seq(2), &[event(3)]).await, Err(StoreError::Lost)));
        assert!(matches!(log.read_after(&board(), old, Seq(2)).await, Err(StoreError::Lost)));
        assert!(log.load(&board()).await.unwrap().is_none(), "a refused append wrote nothing");

        // A node stores it again from its copy, under a new epoch, even if it is shorter...
        let new = log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        assert_ne!(new, old);
        // ...and a writer still on the old history is refused even where the heads line up.
        assert!(matches!(log.append(&board(), old, Seq(1), &[event(2)]).await, Err(StoreError::Lost)));
        assert!(matches!(log.read_after(&board(), old, Seq(0)).await, Err(StoreError::Lost)));
        log.append(&board(), new, Seq(1), &[event(2)]).await.unwrap();
        assert_eq!(log.load(&board()).await.unwrap().unwrap().events, vec![event(1), event(2)]);
    }

    #[tokio::test]
    async fn every_append_and_every_storing_again_is_announced_on_the_boards_channel() {
        let redis = RedisServer::start().await.unwrap();
        let log = log(&redis, "t");
        let mut pubsub = redis::Client::open(redis.url.as_str()).unwrap().get_async_pubsub().await.unwrap();
        pubsub.psubscribe(log.fanout_pattern()).await.unwrap();
        let mut messages = pubsub.into_on_message();
        // What was announced: on which board, in which epoch, the head after it, and the events.
        let mut next = async || {
            let message = tokio::time::timeout(Duration::from_secs(5), messages.next()).await.unwrap().unwrap();
            let board = log.board_of_channel(message.get_channel_name()).expect("a board's channel");
            let published: Published = serde_json::from_slice(message.get_payload_bytes()).unwrap();
            (board, published.epoch, published.head, published.events().unwrap())
        };

        let epoch = log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        assert_eq!(next().await, (board(), epoch, None, vec![]));

        log.append(&board(), epoch, Seq(1), &[event(2), event(3)]).await.unwrap();
        assert_eq!(next().await, (board(), epoch, Some(Seq(3)), vec![event(2), event(3)]));

        // A refused append announces nothing: the next announcement is the next accepted one.
        assert!(log.append(&board(), epoch, Seq(1), &[event(2)]).await.is_err());
        log.append(&board(), epoch, Seq(3), &[event(4)]).await.unwrap();
        assert_eq!(next().await, (board(), epoch, Some(Seq(4)), vec![event(4)]));
    }

    #[test]
    fn an_announcement_shows_no_content_in_debug() {
        let payload = r#"{"epoch":"00000000000000ab","head":3,"events":[{"seq":3,"event":{"type":"topic_added","text":"My boss"}}]}"#;
        let announced: Published = serde_json::from_str(payload).unwrap();
        let shown = format!("{announced:?}");
        assert!(!shown.contains("My boss"), "{shown}");
        for part in ["Epoch(00000000000000ab)", "Some(Seq(3))", "events_bytes"] {
            assert!(shown.contains(part), "{shown}");
        }
    }

    #[tokio::test]
    async fn a_boards_keys_expire_a_retention_period_after_its_last_change() {
        let redis = RedisServer::start().await.unwrap();
        let log = log_with(&redis, "t", Duration::from_secs(60));
        let epoch = log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        for key in log.keys(&board()) {
            assert!((55_000..=60_000).contains(&ttl_ms(&redis, &key).await), "{key}");
        }
        // Time passes (shortened by hand), then a change: every key gets the whole period again,
        // and its hundredth of slack.
        let mut conn = redis.connection().await.unwrap();
        let mut expire_in = async |ms: i64| {
            for key in log.keys(&board()) {
                let _: i64 = redis::cmd("PEXPIRE").arg(&key).arg(ms).query_async(&mut conn).await.unwrap();
            }
        };
        expire_in(1000).await;
        log.append(&board(), epoch, Seq(1), &[event(2)]).await.unwrap();
        for key in log.keys(&board()) {
            assert!((60_000..=60_600).contains(&ttl_ms(&redis, &key).await), "{key}");
        }
        // A change while the keys still live longer than the retention leaves their expiry be:
        // the board is deleted no sooner than the retention after it either way.
        expire_in(60_300).await;
        log.append(&board(), epoch, Seq(2), &[event(3)]).await.unwrap();
        for key in log.keys(&board()) {
            assert!((60_000..=60_300).contains(&ttl_ms(&redis, &key).await), "{key} was left as it was");
        }
        // Once they live less than the retention, the next change sets them again.
        expire_in(59_900).await;
        log.append(&board(), epoch, Seq(3), &[event(4)]).await.unwrap();
        for key in log.keys(&board()) {
            assert!((60_300..=60_600).contains(&ttl_ms(&redis, &key).await), "{key} was set again");
        }
        let loaded = log.load(&board()).await.unwrap().unwrap();
        assert!(loaded.expires_in.is_some_and(|d| d > Duration::from_secs(55)));

        // With a short retention, the board really goes.
        let brief = log_with(&redis, "brief", Duration::from_millis(300));
        brief.create(&board(), &meta(), &[event(1)]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(brief.load(&board()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_deleted_board_leaves_only_a_tombstone_announces_it_and_is_never_stored_again() {
        let redis = RedisServer::start().await.unwrap();
        let log = log(&redis, "t");
        let epoch = log.create(&board(), &meta(), &[event(1), event(2)]).await.unwrap();
        let mut pubsub = redis::Client::open(redis.url.as_str()).unwrap().get_async_pubsub().await.unwrap();
        pubsub.psubscribe(log.fanout_pattern()).await.unwrap();
        let mut messages = pubsub.into_on_message();

        log.delete(&board()).await.unwrap();
        let mut conn = redis.connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("t:*").query_async(&mut conn).await.unwrap();
        let [.., tombstone] = log.all_keys(&board());
        assert_eq!(keys, vec![tombstone.clone()], "only the tombstone is left");
        let value: String = redis::cmd("GET").arg(&tombstone).query_async(&mut conn).await.unwrap();
        assert_eq!(value, "1", "the tombstone holds nothing of the board");
        assert!((3_500_000..=3_600_000).contains(&ttl_ms(&redis, &tombstone).await), "kept for the retention period");

        // Nodes holding the board hear an epoch no board has, and find it deleted in the store.
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next()).await.unwrap().unwrap();
        let announced: Published = serde_json::from_slice(message.get_payload_bytes()).unwrap();
        assert_ne!(announced.epoch, epoch);
        assert!(matches!(log.append(&board(), epoch, Seq(2), &[event(3)]).await, Err(StoreError::Lost)));
        assert!(matches!(log.load(&board()).await, Err(StoreError::Deleted)));
        assert!(matches!(log.create(&board(), &meta(), &[event(1)]).await, Err(StoreError::Exists)));
    }

    #[tokio::test]
    async fn a_large_board_is_stored_again_whole() {
        let redis = RedisServer::start().await.unwrap();
        let log = log(&redis, "t");
        let events: Vec<Sequenced> = (1..=2500).map(event).collect();
        let epoch = log.create(&board(), &meta(), &events).await.unwrap();
        let stored = log.load(&board()).await.unwrap().unwrap();
        assert_eq!((stored.epoch, stored.events), (epoch, events));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_two_appenders_racing_on_the_same_head_exactly_one_wins() {
        let redis = RedisServer::start().await.unwrap();
        // Two logs with their own connections: two nodes.
        let (a, b) = (Arc::new(log(&redis, "t")), Arc::new(log(&redis, "t")));
        let epoch = a.create(&board(), &meta(), &[event(1)]).await.unwrap();
        for head in 1..=50u64 {
            let joined = |person| Sequenced {
                seq: Seq(head + 1),
                event: Event::PersonJoined {
                    person: PersonId(person),
                    name: Private::new("n"),
                    role: Role::Participant,
                },
            };
            let (mine, theirs) = (joined(1), joined(2));
            let (a, b) = (a.clone(), b.clone());
            let (ra, rb) = tokio::join!(
                tokio::spawn(async move { a.append(&board(), epoch, Seq(head), &[mine]).await }),
                tokio::spawn(async move { b.append(&board(), epoch, Seq(head), &[theirs]).await }),
            );
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            let winner = match (&ra, &rb) {
                (Ok(()), Err(StoreError::Conflict { head: h })) | (Err(StoreError::Conflict { head: h }), Ok(())) => {
                    assert_eq!(*h, Seq(head + 1));
                    if ra.is_ok() { PersonId(1) } else { PersonId(2) }
                }
                other => panic!("expected exactly one winner, got {other:?}"),
            };
            let events = log(&redis, "t").load(&board()).await.unwrap().unwrap().events;
            assert_eq!(events.len() as u64, head + 1);
            assert!(matches!(events.last().unwrap().event, Event::PersonJoined { person, .. } if person == winner));
        }
    }

    #[tokio::test]
    async fn a_log_out_of_order_is_refused_and_bad_batches_are_never_written() {
        let redis = RedisServer::start().await.unwrap();
        let log = log(&redis, "t");
        let epoch = log.create(&board(), &meta(), &[event(1), event(2)]).await.unwrap();
        // A batch that does not follow `after` is refused before it reaches Redis.
        assert!(matches!(log.append(&board(), epoch, Seq(2), &[event(4)]).await, Err(StoreError::Unavailable(_))));
        assert_eq!(log.load(&board()).await.unwrap().unwrap().events.len(), 2);

        // Damage written behind the log's back is reported, not papered over.
        let [_, _, events_key] = log.keys(&board());
        let mut conn = redis.connection().await.unwrap();
        let seven = serde_json::to_vec(&event(7)).unwrap();
        let _: i64 = redis::cmd("RPUSH").arg(&events_key).arg(seven).query_async(&mut conn).await.unwrap();
        assert!(matches!(log.load(&board()).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(log.read_after(&board(), epoch, Seq(1)).await, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn failures_to_reach_redis_are_counted_and_reported_unavailable() {
        let mut redis = RedisServer::start().await.unwrap();
        let metrics = Arc::new(Metrics::default());
        let log = RedisLog::connect(&redis.url, "t", RETENTION, metrics.clone()).unwrap();
        let epoch = log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        redis.kill();
        assert!(matches!(log.append(&board(), epoch, Seq(1), &[event(2)]).await, Err(StoreError::Unavailable(_))));
        assert!(matches!(log.ready().await, Err(StoreError::Unavailable(_))));
        assert!(metrics.redis_errors.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    }
}
