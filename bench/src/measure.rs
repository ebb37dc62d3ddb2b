//! Turning what the clients recorded into figures: delivery latency percentiles, rates, and the
//! count of events each client lost or received twice.
//!
//! Latency is measured from the moment the scenario scheduled a command to the moment each client
//! had the resulting event, so it includes the command's trip to the server, the server's work
//! (for minim: deciding, storing, fanning out) and the delivery. The moment the server accepted
//! the command is not observable from outside; the trip in is the same for every stack.

use crate::client::{Received, Sent};
use crate::setup::Room;
use crate::stack::Stack;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

/// Which events every client of a board must have received exactly once.
pub enum Expected {
    /// Sequence numbers after `after` up to `through` (minim and socket.io number every event).
    Range { after: u64, through: u64 },
    /// The relay's frame numbers that were sent.
    Keys(Vec<u64>),
}

/// The figures of one measured stretch of a scenario.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Tally {
    /// Commands the servers accepted (each produced at least one event).
    pub accepted: u64,
    pub rejected: u64,
    /// Live deliveries (catch-up after a reconnect excluded).
    pub deliveries: u64,
    /// Deliveries caught up after a reconnect (or covered by a snapshot).
    pub caught_up: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// minim only: deliveries out of sequence order (must be 0).
    pub out_of_order: u64,
    /// First scheduled command to last delivery.
    pub span_seconds: f64,
    pub events_per_second: f64,
    pub deliveries_per_second: f64,
    pub latency: Latency,
    /// Two nodes: the deliveries to clients on the command's author's node, and to those on the
    /// other node (whose events crossed Redis), apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_node: Option<ByNode>,
}

/// Delivery latency split by where the receiving client is connected.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ByNode {
    pub authors_node: Latency,
    pub other_node: Latency,
}

/// Delivery latency, in milliseconds.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut micros: Vec<u64>) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_unstable();
        let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)] as f64 / 1000.0;
        Latency {
            samples: micros.len() as u64,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: *micros.last().expect("not empty") as f64 / 1000.0,
        }
    }
}

/// What one board's clients received, with what was sent to it.
pub struct BoardRecord {
    pub sent: Vec<Sent>,
    pub clients: Vec<Received>,
    /// minim and socket.io: the sequence number the board was at when the stretch began.
    pub start_key: u64,
    pub rejected: u64,
}

/// Collects every client's record and the board's sends, and clears them for the next stretch.
pub async fn collect(rooms: &[Room], start_keys: &[u64]) -> Vec<BoardRecord> {
    let mut records = Vec::with_capacity(rooms.len());
    for (room, &start_key) in rooms.iter().zip(start_keys) {
        let mut clients = Vec::with_capacity(room.seats.len());
        for seat in &room.seats {
            clients.push(seat.collect().await);
            seat.state.count.store(0, Relaxed);
        }
        records.push(BoardRecord {
            sent: room.log.take_sent(),
            clients,
            start_key,
            rejected: room.log.rejected.swap(0, Relaxed),
        });
    }
    records
}

/// The highest key each room's seats agree on now (where a stretch starts).
pub fn heads(rooms: &[Room]) -> Vec<u64> {
    rooms.iter().map(|r| r.seats.iter().map(|c| c.state.last_key.load(Relaxed)).max().unwrap_or(0)).collect()
}

pub fn tally(stack: Stack, records: &[BoardRecord]) -> Tally {
    let mut t = Tally::default();
    // Latencies to clients on the author's node, and on another.
    let (mut same, mut other) = (Vec::new(), Vec::new());
    let (mut first, mut last) = (u64::MAX, 0u64);
    for record in records {
        t.rejected += record.rejected;
        t.accepted += record.sent.len() as u64;
        let sent: HashMap<u64, &Sent> = record.sent.iter().map(|s| (s.key, s)).collect();
        first = first.min(record.sent.iter().map(|s| s.at.0).min().unwrap_or(u64::MAX));
        let expected = if stack.has_rules() {
            let through = record
                .clients
                .iter()
                .flat_map(|c| c.live.iter().map(|(k, _)| *k).chain(c.caught_up.iter().copied()))
                .chain(record.sent.iter().map(|s| s.key))
                .max()
                .unwrap_or(record.start_key)
                .max(record.start_key);
            Expected::Range { after: record.start_key, through }
        } else {
            Expected::Keys(record.sent.iter().map(|s| s.key).collect())
        };
        for client in &record.clients {
            t.deliveries += client.live.len() as u64;
            t.caught_up += client.caught_up.len() as u64;
            t.out_of_order += client.out_of_order;
            for (key, at) in &client.live {
                last = last.max(at.0);
                if let Some(sent) = sent.get(key) {
                    let latency = at.0.saturating_sub(sent.at.0);
                    if sent.node == client.node { same.push(latency) } else { other.push(latency) }
                }
            }
            let (lost, duplicated, covered) = check(&expected, client);
            t.lost += lost;
            t.duplicated += duplicated;
            t.caught_up += covered;
        }
    }
    if first != u64::MAX && last > first {
        t.span_seconds = (last - first) as f64 / 1e6;
        t.events_per_second = t.accepted as f64 / t.span_seconds;
        t.deliveries_per_second = t.deliveries as f64 / t.span_seconds;
    }
    t.latency = Latency::of(same.iter().chain(&other).copied().collect());
    if !other.is_empty() {
        t.by_node = Some(ByNode { authors_node: Latency::of(same), other_node: Latency::of(other) });
    }
    t
}

/// How many expected events this client lacks, how many it received more than once, and how many
/// it has only through a snapshot.
fn check(expected: &Expected, client: &Received) -> (u64, u64, u64) {
    let mut keys: Vec<u64> = client.live.iter().map(|(k, _)| *k).chain(client.caught_up.iter().copied()).collect();
    keys.sort_unstable();
    let total = keys.len() as u64;
    keys.dedup();
    let duplicated = total - keys.len() as u64;
    match expected {
        Expected::Range { after, through } => {
            let have = keys.iter().filter(|k| (after + 1..=*through).contains(k)).count() as u64;
            // What a snapshot holds is had, whether or not it also arrived on its own.
            let upto = client.covered_through.min(*through);
            let arrived = keys.iter().filter(|k| (after + 1..=upto).contains(k)).count() as u64;
            let covered = upto.saturating_sub(*after) - arrived;
            ((through - after) - have - covered, duplicated, covered)
        }
        Expected::Keys(sent) => (sent.iter().filter(|k| keys.binary_search(k).is_err()).count() as u64, duplicated, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Micros;

    fn sent(key: u64, at: u64, node: usize) -> Sent {
        Sent { key, at: Micros(at), node }
    }

    fn received(keys: &[u64]) -> Received {
        Received { live: keys.iter().map(|&k| (k, Micros(k * 1000 + 500))).collect(), ..Received::default() }
    }

    #[test]
    fn losses_and_duplicates_are_counted_per_client() {
        let record = BoardRecord {
            sent: vec![sent(11, 11_000, 0), sent(12, 12_000, 0), sent(13, 13_000, 0)],
            clients: vec![received(&[11, 12, 13]), received(&[11, 13, 13]), received(&[11, 12, 13, 14])],
            start_key: 10,
            rejected: 0,
        };
        let t = tally(Stack::Minim, &[record]);
        // The third client saw 14 (a system event), so every client must have it: the first two lack it.
        assert_eq!((t.lost, t.duplicated), (3, 1));
        assert_eq!(t.latency.samples, 9);
        assert_eq!(t.latency.p50_ms, 0.5);
    }

    #[test]
    fn a_snapshot_holds_every_event_up_to_its_sequence_number() {
        // Out of order across two nodes: 13 arrived before the client lost its connection, 12 had
        // not; the snapshot after it came back holds everything up to 15, and 16 arrived live.
        let mut client = received(&[11, 13, 16]);
        client.covered_through = 15;
        let record = BoardRecord {
            sent: (11..=16).map(|k| sent(k, k * 1000, 0)).collect(),
            clients: vec![client, received(&[11, 12, 13, 14, 15])],
            start_key: 10,
            rejected: 0,
        };
        let t = tally(Stack::SocketIo, &[record]);
        // 12, 14 and 15 came with the snapshot; the second client never got 16.
        assert_eq!((t.lost, t.duplicated, t.caught_up, t.deliveries), (1, 0, 3, 8));
    }

    #[test]
    fn the_relay_must_deliver_every_frame_sent() {
        let record = BoardRecord {
            sent: vec![sent(1, 1000, 0), sent(2, 2000, 0)],
            clients: vec![received(&[2, 1]), received(&[1])],
            start_key: 0,
            rejected: 0,
        };
        let t = tally(Stack::Bare, &[record]);
        assert_eq!((t.lost, t.duplicated, t.deliveries), (1, 0, 3));
    }

    #[test]
    fn on_two_nodes_the_latency_is_also_split_by_the_receivers_node() {
        // Event 1 is authored on node 0, event 2 on node 1; one client on each node.
        let on = |node, arrivals: &[(u64, u64)]| Received {
            live: arrivals.iter().map(|&(k, at)| (k, Micros(at))).collect(),
            node,
            ..Received::default()
        };
        let record = BoardRecord {
            sent: vec![sent(1, 1000, 0), sent(2, 2000, 1)],
            clients: vec![on(0, &[(1, 2000), (2, 7000)]), on(1, &[(1, 4000), (2, 3000)])],
            start_key: 0,
            rejected: 0,
        };
        let t = tally(Stack::Minim, &[record]);
        assert_eq!(t.latency.samples, 4);
        assert_eq!(t.latency.max_ms, 5.0);
        let by_node = t.by_node.expect("two nodes");
        // The author's node: 1 ms (event 1 on node 0) and 1 ms (event 2 on node 1).
        assert_eq!((by_node.authors_node.samples, by_node.authors_node.max_ms), (2, 1.0));
        // The other node: 3 ms (event 1 on node 1) and 5 ms (event 2 on node 0).
        assert_eq!((by_node.other_node.samples, by_node.other_node.p50_ms, by_node.other_node.max_ms), (2, 5.0, 5.0));
        // One node: no split.
        let one =
            BoardRecord { sent: vec![sent(1, 1000, 0)], clients: vec![on(0, &[(1, 2000)])], start_key: 0, rejected: 0 };
        assert!(tally(Stack::Minim, &[one]).by_node.is_none());
    }
}
