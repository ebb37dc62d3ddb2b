//! Handing a board's messages to sessions on other worker threads, one wake-up per thread.
//!
//! Each actix-web worker thread runs its own single-threaded scheduler. A board's task lives on
//! one of them; its sessions are spread over all of them. Queuing a message for a session on
//! another worker wakes that session's task there, and every such wake-up writes to the worker's
//! event file descriptor and often wakes the thread itself: at eight recipients an event, that
//! cost more than the delivery. So a board gathers what it sends in one turn per worker ([`Post`])
//! and hands each other worker one batch; that worker's [`Relay`] task queues the messages for its
//! own sessions, which wakes them without leaving the thread. Sessions on the board's own worker
//! are given theirs directly.
//!
//! Order is kept: a subscriber is always reached the same way (directly, or through its worker's
//! relay), and both ways are first in, first out. A relay that finds a session's queue full
//! delivers nothing more to it and tells the board ([`Request::Lagged`]), which drops the
//! subscriber like one it found full itself: the session reads what it has, finds its queue closed
//! and resubscribes from the last event it sent.

use crate::board_task::{Outbound, Request};
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc::{self, error::TrySendError};

/// Batches waiting for one worker's relay. Beyond this the worker is far behind: the subscribers
/// of a batch that does not fit are dropped and resync (see [`Post::flush`]).
const RELAY_QUEUE: usize = 16 * 1024;

thread_local! {
    /// This thread's relay, once something on it subscribed or fanned out.
    static HERE: RefCell<Option<Arc<Relay>>> = const { RefCell::new(None) };
}

/// The way into one worker thread.
pub struct Relay {
    tx: mpsc::Sender<Batch>,
}

impl Relay {
    /// The relay of the worker this is called on, started on first use. `None` where tasks are
    /// not tied to a thread (a multi-threaded runtime, or no runtime): everything there is
    /// delivered directly.
    pub fn here() -> Option<Arc<Relay>> {
        let runtime = Handle::try_current().ok()?;
        if runtime.runtime_flavor() != RuntimeFlavor::CurrentThread {
            return None;
        }
        HERE.with_borrow_mut(|here| {
            // A relay whose task is gone belonged to a runtime that has stopped.
            if let Some(relay) = here.as_ref().filter(|relay| !relay.tx.is_closed()) {
                return Some(relay.clone());
            }
            let (tx, rx) = mpsc::channel(RELAY_QUEUE);
            runtime.spawn(run(rx));
            let relay = Arc::new(Relay { tx });
            *here = Some(relay.clone());
            Some(relay)
        })
    }
}

/// One subscriber's queue, and the worker its session runs on.
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    relay: Option<Arc<Relay>>,
    /// Set by the relay that found the queue full; nothing more is queued after the gap.
    lagged: AtomicBool,
}

impl Outbox {
    /// The queue `tx`, for a session on the worker this is called on.
    pub fn new(tx: mpsc::Sender<Outbound>) -> Arc<Outbox> {
        Arc::new(Outbox { tx, relay: Relay::here(), lagged: AtomicBool::new(false) })
    }

    /// Queues `out` now, from any thread; the error says whether the queue was full or closed.
    pub fn try_send(&self, out: Outbound) -> Result<(), TrySendError<Outbound>> {
        self.tx.try_send(out)
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Messages, each with the queue it is for.
type Deliveries = Vec<(Arc<Outbox>, Outbound)>;

/// Messages for another worker's sessions, from one board.
struct Batch {
    /// Where to report a subscriber whose queue was full.
    board: mpsc::WeakSender<Request>,
    deliveries: Deliveries,
}

/// What one turn of a board sends: delivered at once on its own worker, gathered for the others.
pub(crate) struct Post {
    here: Option<Arc<Relay>>,
    batches: Vec<(Arc<Relay>, Deliveries)>,
}

/// Why a subscriber cannot be reached any more.
pub(crate) enum Undeliverable {
    /// Its queue is full: it fell behind.
    Full,
    /// Its session has ended.
    Closed,
}

impl Post {
    /// A turn of a board whose task runs on the worker of `here`.
    pub fn new(here: Option<Arc<Relay>>) -> Post {
        Post { here, batches: Vec::new() }
    }

    /// Queues `out` for `outbox`: directly if its session is on this worker (or on no particular
    /// one), else in the batch for its worker.
    pub fn send(&mut self, outbox: &Arc<Outbox>, out: Outbound) -> Result<(), Undeliverable> {
        let relay = match &outbox.relay {
            Some(relay) if !self.here.as_ref().is_some_and(|here| Arc::ptr_eq(here, relay)) => relay,
            _ => {
                return outbox.try_send(out).map_err(|e| match e {
                    TrySendError::Full(_) => Undeliverable::Full,
                    TrySendError::Closed(_) => Undeliverable::Closed,
                });
            }
        };
        if outbox.is_closed() {
            return Err(Undeliverable::Closed);
        }
        match self.batches.iter_mut().find(|(r, _)| Arc::ptr_eq(r, relay)) {
            Some((_, batch)) => batch.push((outbox.clone(), out)),
            None => self.batches.push((relay.clone(), vec![(outbox.clone(), out)])),
        }
        Ok(())
    }

    /// Hands each worker its batch. Returns the subscribers of batches that did not fit (that
    /// worker is far behind): they are to be dropped, and resync.
    pub(crate) fn flush(self, board: &mpsc::WeakSender<Request>) -> Vec<Arc<Outbox>> {
        let mut dropped = Vec::new();
        for (relay, deliveries) in self.batches {
            if let Err(e) = relay.tx.try_send(Batch { board: board.clone(), deliveries }) {
                let (TrySendError::Full(batch) | TrySendError::Closed(batch)) = e;
                for (outbox, _) in batch.deliveries {
                    outbox.lagged.store(true, Ordering::Relaxed);
                    dropped.push(outbox);
                }
            }
        }
        dropped
    }
}

/// A worker's relay: queues each batch's messages for the sessions on this worker.
async fn run(mut rx: mpsc::Receiver<Batch>) {
    let mut batches = Vec::new();
    while rx.recv_many(&mut batches, 64).await > 0 {
        for Batch { board, deliveries } in batches.drain(..) {
            for (outbox, out) in deliveries {
                if outbox.lagged.load(Ordering::Relaxed) {
                    continue;
                }
                // A closed queue: the session ended, and tells its board itself.
                if let Err(TrySendError::Full(_)) = outbox.try_send(out) {
                    outbox.lagged.store(true, Ordering::Relaxed);
                    if let Some(board) = board.upgrade() {
                        tokio::spawn(async move {
                            let _ = board.send(Request::Lagged { outbox }).await;
                        });
                    }
                }
            }
        }
    }
}

/// Another worker thread for tests: its own single-threaded runtime, on which queues are made.
#[cfg(test)]
pub(crate) mod other_worker {
    use super::*;

    /// A queue and its receiving end.
    type Queue = (Arc<Outbox>, mpsc::Receiver<Outbound>);

    pub struct OtherWorker {
        /// Asks for a queue of a capacity, made on the worker.
        make: std::sync::mpsc::Sender<(usize, std::sync::mpsc::Sender<Queue>)>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl OtherWorker {
        pub fn start() -> OtherWorker {
            let (make, requests) = std::sync::mpsc::channel::<(usize, std::sync::mpsc::Sender<Queue>)>();
            let thread = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    loop {
                        match requests.try_recv() {
                            Ok((capacity, reply)) => {
                                let (tx, rx) = mpsc::channel(capacity);
                                reply.send((Outbox::new(tx), rx)).unwrap();
                            }
                            Err(std::sync::mpsc::TryRecvError::Empty) => {
                                // Keeps the relay running meanwhile.
                                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                            }
                            Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                        }
                    }
                });
            });
            OtherWorker { make, thread: Some(thread) }
        }

        /// A queue of `capacity` for a session on this worker.
        pub fn outbox(&self, capacity: usize) -> Queue {
            let (reply, made) = std::sync::mpsc::channel();
            self.make.send((capacity, reply)).unwrap();
            made.recv().unwrap()
        }
    }

    impl Drop for OtherWorker {
        fn drop(&mut self) {
            let (make, _) = std::sync::mpsc::channel();
            drop(std::mem::replace(&mut self.make, make));
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::other_worker::OtherWorker;
    use super::*;
    use bytestring::ByteString;
    use minim_shared::Seq;
    use std::time::Duration;

    fn message(n: u64) -> Outbound {
        Outbound { seq: Some(Seq(n)), text: ByteString::from(format!("message {n}")) }
    }

    async fn next(rx: &mut mpsc::Receiver<Outbound>) -> Option<u64> {
        let out = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a message within 5 s");
        out.map(|out| out.seq.unwrap().0)
    }

    #[tokio::test]
    async fn a_session_on_the_same_worker_gets_its_messages_at_once() {
        let here = Relay::here();
        assert!(here.is_some(), "a single-threaded runtime has a relay");
        let (tx, mut rx) = mpsc::channel(8);
        let outbox = Outbox::new(tx);
        let mut post = Post::new(here);
        assert!(post.send(&outbox, message(1)).is_ok());
        assert_eq!(rx.try_recv().ok().and_then(|out| out.seq), Some(Seq(1)), "queued without a flush");
        assert!(post.batches.is_empty());
    }

    #[tokio::test]
    async fn messages_for_another_worker_go_as_one_batch_at_the_flush_and_arrive_in_order() {
        let worker = OtherWorker::start();
        let (first, mut first_rx) = worker.outbox(64);
        let (second, mut second_rx) = worker.outbox(64);
        let mut post = Post::new(Relay::here());
        for n in 0..10 {
            assert!(post.send(&first, message(n)).is_ok());
            assert!(post.send(&second, message(100 + n)).is_ok());
        }
        assert_eq!(post.batches.len(), 1, "one batch for the one other worker");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(first_rx.try_recv().is_err(), "nothing reaches the other worker before the flush");

        let (board, _requests) = mpsc::channel(1);
        assert!(post.flush(&board.downgrade()).is_empty());
        for n in 0..10 {
            assert_eq!(next(&mut first_rx).await, Some(n));
            assert_eq!(next(&mut second_rx).await, Some(100 + n));
        }
    }

    #[tokio::test]
    async fn a_full_queue_on_another_worker_is_reported_to_the_board_and_given_nothing_more() {
        let worker = OtherWorker::start();
        let (slow, mut slow_rx) = worker.outbox(2);
        let (board, mut requests) = mpsc::channel(4);
        let mut post = Post::new(Relay::here());
        for n in 0..5 {
            assert!(post.send(&slow, message(n)).is_ok());
        }
        assert!(post.flush(&board.downgrade()).is_empty());
        let report = tokio::time::timeout(Duration::from_secs(5), requests.recv()).await.unwrap();
        assert!(matches!(report, Some(Request::Lagged { outbox }) if Arc::ptr_eq(&outbox, &slow)));

        // Room again, and more to send: nothing after the gap reaches it.
        assert_eq!(next(&mut slow_rx).await, Some(0));
        assert_eq!(next(&mut slow_rx).await, Some(1));
        let mut post = Post::new(Relay::here());
        assert!(post.send(&slow, message(5)).is_ok());
        assert!(post.flush(&board.downgrade()).is_empty());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(slow_rx.try_recv().is_err(), "delivered past a gap");
        assert!(requests.try_recv().is_err(), "reported once");
    }
}
