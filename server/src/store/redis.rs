//! A Redis-backed event log, so that several nodes can share live boards (first slice: the log
//! itself; fan-out between nodes comes next).
//!
//! Layout, under a prefix chosen at construction (`minim` in production, a fresh one per test):
//! ```text
//! <prefix>:{<board id>}:meta     access metadata (JSON of `BoardMeta`), written once
//! <prefix>:{<board id>}:events   a list of JSON `Sequenced` events; index i holds seq i + 1
//! ```
//! The braces are a Redis Cluster hash tag: both keys of a board hash to the same slot, so the
//! scripts below (which touch both) and the `MULTI` in `load` also work against a cluster.
//!
//! Why a Lua compare-and-append over a list, and not `XADD` with explicit stream IDs: the board
//! task appends a *batch* of events that must land after a known sequence number, all or nothing.
//! A script checks "the list is exactly `after` long and the board exists" and `RPUSH`es the whole
//! batch in one atomic step (Redis runs a script without interleaving other commands). `XADD` with
//! explicit IDs refuses only IDs that are not greater than the last one, so it would accept a gap,
//! checks one entry at a time (a batch could land half-way), and stream IDs are `ms-seq` pairs
//! that would have to be mapped onto our sequence numbers. A list whose length *is* the head is
//! also simple to read back (`LRANGE 0 -1`) and to check (`LLEN`).
//!
//! `create` is a script too: it writes the metadata and the first events only if the metadata
//! does not exist yet, so two nodes creating the same board cannot both succeed.
//!
//! Durability is whatever the Redis deployment is configured for (AOF with `appendfsync always`
//! matches the embedded log's "fsynced before accepted"); this module does not configure Redis.
//!
//! Errors from Redis become [`StoreError::Unavailable`] with context saying what was being done.
//! Nothing here logs, and no error message carries an event's contents. One caveat the embedded
//! log does not have: if the connection drops after an append was sent, the outcome is unknown
//! (reported as `Unavailable`), though the events may have landed; the board task then finds the
//! log ahead of it (`Conflict`) on its next append and reloads.
//!
//! The connection is a [`ConnectionManager`], which reconnects by itself after a failure; the
//! command that saw the failure still reports it.

use super::{BoardMeta, EventLog, StoreError, StoredBoard};
use anyhow::{Context, anyhow, bail};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use minim_shared::{BoardId, Seq, Sequenced};
use redis::Script;
use redis::aio::ConnectionManager;

/// `KEYS`: meta, events. `ARGV`: the metadata's JSON, then each event's JSON.
/// Returns 1 if the board was created, 0 if it already existed.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('a board has events but no metadata')
end
redis.call('SET', KEYS[1], ARGV[1])
if #ARGV > 1 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 2))
end
return 1
"#;

/// `KEYS`: meta, events. `ARGV`: `after`, then each event's JSON.
/// Returns `{1, new head}` if appended, `{0, head}` if the log is not at `after`, `{-1}` if there
/// is no such board.
const APPEND: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {-1}
end
local head = redis.call('LLEN', KEYS[2])
if head ~= tonumber(ARGV[1]) then
  return {0, head}
end
if #ARGV > 1 then
  head = redis.call('RPUSH', KEYS[2], unpack(ARGV, 2))
end
return {1, head}
"#;

/// The Redis store: a self-reconnecting connection and the key prefix.
pub struct RedisLog {
    conn: ConnectionManager,
    prefix: String,
    create: Script,
    append: Script,
}

impl RedisLog {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`); keys are put under `prefix`.
    pub async fn connect(url: &str, prefix: impl Into<String>) -> anyhow::Result<RedisLog> {
        let client = redis::Client::open(url).context("while parsing the Redis URL")?;
        let conn = ConnectionManager::new(client).await.context("while connecting to Redis")?;
        Ok(RedisLog::new(conn, prefix))
    }

    /// Uses an existing connection; keys are put under `prefix`.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> RedisLog {
        RedisLog { conn, prefix: prefix.into(), create: Script::new(CREATE), append: Script::new(APPEND) }
    }

    fn keys(&self, board: &BoardId) -> (String, String) {
        // Board ids are validated hex before they get here, so they cannot break out of the tag.
        debug_assert!(crate::auth::is_board_id(&board.0));
        let prefix = &self.prefix;
        let id = &board.0;
        (format!("{prefix}:{{{id}}}:meta"), format!("{prefix}:{{{id}}}:events"))
    }
}

fn encode_events(events: &[Sequenced]) -> anyhow::Result<Vec<Vec<u8>>> {
    events.iter().map(|e| serde_json::to_vec(e).context("while encoding an event")).collect()
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

impl EventLog for RedisLog {
    fn create<'a>(
        &'a self,
        board: &'a BoardId,
        meta: &'a BoardMeta,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            check_follows(Seq::ZERO, events)?;
            let (meta_key, events_key) = self.keys(board);
            let meta = serde_json::to_vec(meta).context("while encoding board metadata")?;
            let mut invocation = self.create.key(meta_key);
            invocation.key(events_key).arg(meta);
            for e in encode_events(events)? {
                invocation.arg(e);
            }
            let mut conn = self.conn.clone();
            let created: i64 = invocation.invoke_async(&mut conn).await.context("while creating a board in Redis")?;
            match created {
                1 => Ok(()),
                0 => Err(StoreError::Exists),
                other => Err(anyhow!("unexpected answer {other} from the create script").into()),
            }
        }
        .boxed()
    }

    fn load<'a>(&'a self, board: &'a BoardId) -> BoxFuture<'a, Result<Option<StoredBoard>, StoreError>> {
        async move {
            let (meta_key, events_key) = self.keys(board);
            let mut conn = self.conn.clone();
            // MULTI/EXEC: the metadata and the events are read at one instant.
            let (meta, lines): (Option<Vec<u8>>, Vec<Vec<u8>>) = redis::pipe()
                .atomic()
                .get(&meta_key)
                .lrange(&events_key, 0, -1)
                .query_async(&mut conn)
                .await
                .context("while loading a board from Redis")?;
            let Some(meta) = meta else { return Ok(None) };
            let meta: BoardMeta = serde_json::from_slice(&meta).context("while reading board metadata from Redis")?;
            let mut events: Vec<Sequenced> = Vec::with_capacity(lines.len());
            for (i, line) in lines.iter().enumerate() {
                let e: Sequenced = serde_json::from_slice(line)
                    .with_context(|| format!("while reading event {} of a board from Redis", i + 1))?;
                let expected = Seq(i as u64 + 1);
                if e.seq != expected {
                    return Err(
                        anyhow!("a board's log in Redis is out of order at {} (expected {})", e.seq, expected).into()
                    );
                }
                events.push(e);
            }
            Ok(Some(StoredBoard { meta, events }))
        }
        .boxed()
    }

    fn append<'a>(
        &'a self,
        board: &'a BoardId,
        after: Seq,
        events: &'a [Sequenced],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            check_follows(after, events)?;
            let (meta_key, events_key) = self.keys(board);
            let mut invocation = self.append.key(meta_key);
            invocation.key(events_key).arg(after.0);
            for e in encode_events(events)? {
                invocation.arg(e);
            }
            let mut conn = self.conn.clone();
            let answer: Vec<i64> =
                invocation.invoke_async(&mut conn).await.context("while appending to a board's log in Redis")?;
            match answer[..] {
                [1, _] => Ok(()),
                [0, head] => Err(StoreError::Conflict { head: Seq(head as u64) }),
                [-1] => Err(StoreError::NotFound),
                _ => Err(anyhow!("unexpected answer {answer:?} from the append script").into()),
            }
        }
        .boxed()
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut conn = self.conn.clone();
            let _: String = redis::cmd("PING").query_async(&mut conn).await.context("while pinging Redis")?;
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{board, event, meta};
    use minim_shared::{Event, PersonId, Private, Role};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A real `redis-server` on a free port, without persistence, killed on drop.
    struct RedisServer {
        child: Child,
        url: String,
        _dir: tempfile::TempDir,
    }

    impl RedisServer {
        async fn start() -> RedisServer {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "could not start redis-server ({e}): these tests need a real Redis; install it with \
                         `apt-get install -y redis-server` (scripts/test does)"
                    )
                });
            let server = RedisServer { child, url: format!("redis://127.0.0.1:{port}/"), _dir: dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            let client = redis::Client::open(server.url.as_str()).unwrap();
            loop {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                    && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
                {
                    return server;
                }
                assert!(Instant::now() < deadline, "redis-server did not answer on {} within 10 s", server.url);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        async fn log(&self, prefix: &str) -> RedisLog {
            RedisLog::connect(&self.url, prefix).await.unwrap()
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn events_round_trip_and_appends_are_compare_and_append() {
        let redis = RedisServer::start().await;
        let log = redis.log("t1").await;
        log.create(&board(), &meta(), &[event(1)]).await.unwrap();
        assert!(matches!(log.create(&board(), &meta(), &[event(1)]).await, Err(StoreError::Exists)));
        let stored = log.load(&board()).await.unwrap().unwrap();
        assert_eq!(stored.meta, meta());
        assert_eq!(stored.events, vec![event(1)]);

        log.append(&board(), Seq(1), &[event(2), event(3)]).await.unwrap();
        assert!(matches!(log.append(&board(), Seq(2), &[event(3)]).await, Err(StoreError::Conflict { head: Seq(3) })));
        assert!(matches!(log.append(&board(), Seq(4), &[event(5)]).await, Err(StoreError::Conflict { head: Seq(3) })));

        // Another node (its own connection) sees the same log and continues it.
        let other = redis.log("t1").await;
        let stored = other.load(&board()).await.unwrap().unwrap();
        assert_eq!(stored.meta, meta());
        assert_eq!(stored.events, vec![event(1), event(2), event(3)]);
        other.append(&board(), Seq(3), &[event(4)]).await.unwrap();
        assert_eq!(log.load(&board()).await.unwrap().unwrap().events.len(), 4);

        // Prefixes isolate: the same board under another prefix does not exist.
        assert!(redis.log("t2").await.load(&board()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_unknown_board_is_not_found() {
        let redis = RedisServer::start().await;
        let log = redis.log("t").await;
        let unknown = BoardId("ff".repeat(16));
        assert!(log.load(&unknown).await.unwrap().is_none());
        assert!(matches!(log.append(&unknown, Seq(0), &[event(1)]).await, Err(StoreError::NotFound)));
        assert!(matches!(log.append(&unknown, Seq(1), &[event(2)]).await, Err(StoreError::NotFound)));
        // A refused append wrote nothing.
        assert!(log.load(&unknown).await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_two_appenders_racing_on_the_same_head_exactly_one_wins() {
        let redis = RedisServer::start().await;
        // Two logs with their own connections: two nodes.
        let (a, b) = (Arc::new(redis.log("t").await), Arc::new(redis.log("t").await));
        a.create(&board(), &meta(), &[event(1)]).await.unwrap();
        for head in 1..=50u64 {
            let mine = Sequenced {
                seq: Seq(head + 1),
                event: Event::PersonJoined { person: PersonId(1), name: Private::new("a"), role: Role::Participant },
            };
            let theirs = Sequenced {
                seq: Seq(head + 1),
                event: Event::PersonJoined { person: PersonId(2), name: Private::new("b"), role: Role::Participant },
            };
            let (a, b) = (a.clone(), b.clone());
            let (ra, rb) = tokio::join!(
                tokio::spawn(async move { a.append(&board(), Seq(head), &[mine]).await }),
                tokio::spawn(async move { b.append(&board(), Seq(head), &[theirs]).await }),
            );
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            let winner = match (&ra, &rb) {
                (Ok(()), Err(StoreError::Conflict { head: h })) | (Err(StoreError::Conflict { head: h }), Ok(())) => {
                    assert_eq!(*h, Seq(head + 1));
                    if ra.is_ok() { PersonId(1) } else { PersonId(2) }
                }
                other => panic!("expected exactly one winner, got {other:?}"),
            };
            let events = redis.log("t").await.load(&board()).await.unwrap().unwrap().events;
            assert_eq!(events.len() as u64, head + 1);
            assert!(matches!(events.last().unwrap().event, Event::PersonJoined { person, .. } if person == winner));
        }
    }

    #[tokio::test]
    async fn a_log_out_of_order_is_refused_and_bad_batches_are_never_written() {
        let redis = RedisServer::start().await;
        let log = redis.log("t").await;
        log.create(&board(), &meta(), &[event(1), event(2)]).await.unwrap();
        // A batch that does not follow `after` is refused before it reaches Redis.
        assert!(matches!(log.append(&board(), Seq(2), &[event(4)]).await, Err(StoreError::Unavailable(_))));
        assert_eq!(log.load(&board()).await.unwrap().unwrap().events.len(), 2);

        // Damage written behind the log's back is reported, not papered over.
        let (_, events_key) = log.keys(&board());
        let mut conn = log.conn.clone();
        let _: i64 = redis::cmd("RPUSH")
            .arg(&events_key)
            .arg(serde_json::to_vec(&event(7)).unwrap())
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(matches!(log.load(&board()).await, Err(StoreError::Unavailable(_))));
    }
}
