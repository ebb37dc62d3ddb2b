//! What one WebSocket connection writes, and in which order.
//!
//! Three parties have something for a connection: its board (events, snapshots, presence), the
//! board again with its answers to the connection's commands (`accepted`, `rejected`), and the
//! connection's session (errors, pongs, heartbeat pings, the close). They all put it in the
//! connection's one [`Mailbox`], in the order they put it there, and [`Outbox`], the response
//! body actix writes, takes everything waiting in one go whenever actix polls it. So an event or
//! an answer goes from the board task to the socket in one hop, the session task is not woken for
//! it, and one lock and at most one wake-up carry a whole burst (the bare broadcast's lesson:
//! batch per connection). A channel per party cost the writer a look into each of them, and a
//! waker registration on each, at every poll (`BENCHMARKS.md`).
//!
//! The order a client relies on: a command's answer comes after the events the board queued
//! before answering, which the mailbox's single order gives by itself.
//!
//! The board's part is bounded, per connection ([`OUTBOUND_QUEUE`]): a board finds the mailbox
//! full when the client fell behind, and drops the connection's subscription ([`Queue`]). The
//! writer writes what was queued before that, records the last sequence number written, and tells
//! the session ([`Feed::dropped`]), which subscribes again from there. What the connection says
//! for itself, the session's messages and the board's answers to its commands, is bounded too
//! ([`SESSION_QUEUE`]): the session lets a client go that keeps sending and reads none of it.

use crate::board_task::{OUTBOUND_QUEUE, Outbound};
use crate::metrics::Metrics;
use actix_codec::Encoder;
use actix_http::ws::{CloseReason, Codec, Message};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use minim_shared::Seq;
use minim_shared::wire::ServerMessage;
use std::cell::Cell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

/// At most this many of the session's own messages and the board's answers wait for the writer.
/// A client that keeps sending and never reads would otherwise grow its mailbox by its pongs,
/// errors and answers, at the rate its allowance lets it send, for as long as it likes. The
/// session asks before it submits a command ([`Feed::room_for_answer`]), so the answers go past
/// this by at most the commands on their way to the board.
pub const SESSION_QUEUE: usize = 128;

/// One connection's messages waiting for its writer, from whichever party, in one order.
pub struct Mailbox {
    state: Mutex<State>,
    /// How many of the board's messages may wait ([`OUTBOUND_QUEUE`] but in tests).
    capacity: usize,
}

struct State {
    items: VecDeque<Item>,
    /// The board's messages among `items`, against the mailbox's capacity.
    from_board: usize,
    /// The session's messages and the board's answers among `items`, against [`SESSION_QUEUE`].
    replies: usize,
    /// The number of the board subscription the mailbox takes messages for; a [`Queue`] with an
    /// older number has been replaced.
    subscription: u64,
    /// The writer's waker, kept while it waits.
    waker: Option<Waker>,
    /// The writer has been woken since it last looked: the next message need not wake it again.
    woken: bool,
    /// The connection's writer has gone (the connection closed): nothing is taken any more.
    closed: bool,
}

enum Item {
    /// From the board: an event, a snapshot, presence, or an answer.
    Out(Outbound),
    /// The board dropped subscription `n`: everything before this is from it, or older.
    Dropped(u64),
    /// From the session: text, a ping or a pong.
    Said(Message),
    /// The session closes the connection, with a close frame.
    Close(Option<CloseReason>),
    /// The session has gone without closing: the body ends, with no frame of its own.
    Gone,
}

/// Why a message was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too much is waiting: the client fell behind.
    Full,
    /// The connection closed, or this subscription was replaced.
    Closed,
}

impl Mailbox {
    fn new(capacity: usize) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            state: Mutex::new(State {
                items: VecDeque::new(),
                from_board: 0,
                replies: 0,
                subscription: 0,
                waker: None,
                woken: false,
                closed: false,
            }),
            capacity,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Queues `item` and wakes the writer, unless it has been woken already.
    fn push(&mut self, item: Item) {
        self.items.push_back(item);
        if !self.woken {
            self.woken = true;
            if let Some(waker) = &self.waker {
                waker.wake_by_ref();
            }
        }
    }

    /// Queues `item`, unless nothing is taken any more.
    fn push_unless_closed(&mut self, item: Item) {
        if !self.closed {
            self.push(item);
        }
    }

    /// Whether one more of the session's messages or the board's answers may wait.
    fn room_for_reply(&self) -> Result<(), Refused> {
        if self.closed {
            return Err(Refused::Closed);
        }
        if self.replies >= SESSION_QUEUE {
            return Err(Refused::Full);
        }
        Ok(())
    }
}

/// A board's subscription's way into a connection's mailbox. Dropping it ends the subscription:
/// the writer tells the session once it has written everything queued before.
pub struct Queue {
    mailbox: Arc<Mailbox>,
    subscription: u64,
}

impl Queue {
    /// Queues a message from the board, unless the client is too far behind or gone.
    pub fn try_send(&self, out: Outbound) -> Result<(), Refused> {
        let mut state = self.mailbox.lock();
        if state.closed || state.subscription != self.subscription {
            return Err(Refused::Closed);
        }
        if state.from_board >= self.mailbox.capacity {
            return Err(Refused::Full);
        }
        state.from_board += 1;
        state.push(Item::Out(out));
        Ok(())
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let mut state = self.mailbox.lock();
        if state.subscription == self.subscription {
            state.push_unless_closed(Item::Dropped(self.subscription));
        }
    }
}

/// Where a board sends its answers to one connection's commands (`accepted`, `rejected`).
#[derive(Clone)]
pub struct Answers(Arc<Mailbox>);

impl Answers {
    /// Queues an answer; one for a connection that has closed is dropped. Never refused: the
    /// session asked for room before it submitted the command ([`Feed::room_for_answer`]).
    pub fn send(&self, answer: &ServerMessage) {
        let out = Outbound::message(answer);
        let mut state = self.0.lock();
        if !state.closed {
            state.replies += 1;
            state.push(Item::Out(out));
        }
    }
}

/// The session's handle on its connection's writer.
pub struct Feed {
    mailbox: Arc<Mailbox>,
    shared: Rc<Shared>,
}

/// What the writer tells the session. Both run on the connection's worker thread.
struct Shared {
    /// The sequence number of the last event or snapshot written to the client.
    written: Cell<Option<Seq>>,
    /// The board dropped the subscription the session last made, and everything before is
    /// written. The end of an earlier one (a try that reached a stopping board) is no news.
    dropped: Cell<bool>,
    /// Signalled when `dropped` is set.
    told: Notify,
}

/// The response body of a WebSocket connection: whatever waits in its mailbox, written in order.
pub struct Outbox {
    mailbox: Arc<Mailbox>,
    /// Kept, never read: actix-ws tells the connection's message stream that the connection
    /// closed when this body is dropped. The session writes through the mailbox instead.
    _actix_ws_body: BoxBody,
    shared: Rc<Shared>,
    codec: Codec,
    buf: BytesMut,
    /// The items taken from the mailbox, swapped with its queue so neither allocates each time.
    taken: VecDeque<Item>,
    /// The session has closed: the body has ended.
    ended: bool,
    /// How long messages waited for this writer.
    waited: Waited,
}

/// One message in this many has its wait for the writer recorded: every delivery would cost a
/// clock read and a histogram update each.
pub const WRITTEN_SAMPLE: u32 = 8;

/// Records how long one message in [`WRITTEN_SAMPLE`] waited for the writer.
struct Waited {
    metrics: Arc<Metrics>,
    /// Messages taken so far, to pick the sampled ones.
    taken: u32,
}

impl Waited {
    fn record(&mut self, out: &Outbound) {
        if self.taken.is_multiple_of(WRITTEN_SAMPLE) {
            self.metrics.stages.written.since(out.made);
        }
        self.taken = self.taken.wrapping_add(1);
    }
}

/// The writer of a connection whose response body actix-ws made (`actix_ws_body`), and the
/// session's handle on it.
pub fn outbox(actix_ws_body: BoxBody, metrics: Arc<Metrics>) -> (Outbox, Feed) {
    writer(Mailbox::new(OUTBOUND_QUEUE), actix_ws_body, metrics)
}

fn writer(mailbox: Arc<Mailbox>, actix_ws_body: BoxBody, metrics: Arc<Metrics>) -> (Outbox, Feed) {
    let shared = Rc::new(Shared { written: Cell::new(None), dropped: Cell::new(false), told: Notify::new() });
    let outbox = Outbox {
        mailbox: mailbox.clone(),
        _actix_ws_body: actix_ws_body,
        shared: Rc::clone(&shared),
        codec: Codec::new(),
        buf: BytesMut::new(),
        taken: VecDeque::new(),
        ended: false,
        waited: Waited { metrics, taken: 0 },
    };
    (outbox, Feed { mailbox, shared })
}

impl Feed {
    /// The last sequence number the client was sent, or the one it said it had.
    pub fn written(&self) -> Option<Seq> {
        self.shared.written.get()
    }

    /// Where the board answers this connection's commands.
    pub fn answers(&self) -> Answers {
        Answers(self.mailbox.clone())
    }

    /// Where the client starts: the sequence number its hello said it had folded.
    pub fn start_from(&self, seq: Option<Seq>) {
        self.shared.written.set(seq);
    }

    /// A new subscription's way into the mailbox, for the board. It replaces the previous one:
    /// only take one before the first, once the board dropped the previous ([`Feed::dropped`]),
    /// or when the previous did not reach a board.
    pub fn subscription(&self) -> Queue {
        let mut state = self.mailbox.lock();
        state.subscription += 1;
        self.shared.dropped.set(false);
        Queue { mailbox: self.mailbox.clone(), subscription: state.subscription }
    }

    /// Resolves once the board dropped the subscription last made and the writer has written
    /// everything queued before: [`Feed::written`] is then where to subscribe again from.
    pub async fn dropped(&self) {
        while !self.shared.dropped.replace(false) {
            self.shared.told.notified().await;
        }
    }

    /// Queues one of the session's own messages (not a close).
    pub fn say(&self, message: Message) -> Result<(), Refused> {
        let mut state = self.mailbox.lock();
        state.room_for_reply()?;
        state.replies += 1;
        state.push(Item::Said(message));
        Ok(())
    }

    /// Whether the board may answer one more command: not once [`SESSION_QUEUE`] of the session's
    /// messages and answers wait, nor once the connection has closed.
    pub fn room_for_answer(&self) -> Result<(), Refused> {
        self.mailbox.lock().room_for_reply()
    }

    /// Closes the connection with a close frame, after everything queued before it.
    pub fn close(&self, reason: Option<CloseReason>) {
        self.mailbox.lock().push_unless_closed(Item::Close(reason));
    }
}

impl Drop for Feed {
    /// The session has gone: the body ends after what is queued, with no close frame of its own
    /// if the session did not close.
    fn drop(&mut self) {
        self.mailbox.lock().push_unless_closed(Item::Gone);
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut state = self.mailbox.lock();
        state.closed = true;
        state.items.clear();
        state.waker = None;
    }
}

impl MessageBody for Outbox {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let following = {
            let mut state = this.mailbox.lock();
            state.woken = false;
            if state.items.is_empty() {
                if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    state.waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            std::mem::swap(&mut state.items, &mut this.taken);
            state.from_board = 0;
            state.replies = 0;
            state.subscription
        };
        let mut taken = std::mem::take(&mut this.taken);
        let result = this.write(&mut taken, following);
        taken.clear();
        // A burst's room is kept for the next, unless the burst was unusually large.
        if taken.capacity() <= 64 {
            this.taken = taken;
        }
        result?;
        if this.buf.is_empty() {
            // Only the end of a subscription, told to the session: look again.
            return if this.ended { Poll::Ready(None) } else { Pin::new(this).poll_next(cx) };
        }
        // A fresh buffer each time: one burst's size is not kept for the connection's lifetime.
        Poll::Ready(Some(Ok(std::mem::take(&mut this.buf).freeze())))
    }
}

impl Outbox {
    /// Frames `items` into the buffer, in order, up to and including a close. `following` is the
    /// subscription the session made last, when they were taken.
    fn write(&mut self, items: &mut VecDeque<Item>, following: u64) -> Result<(), Box<dyn std::error::Error>> {
        for item in items.drain(..) {
            match item {
                Item::Out(out) => {
                    self.waited.record(&out);
                    if let Some(seq) = out.seq {
                        self.shared.written.set(Some(seq));
                    }
                    self.codec.encode(Message::Text(out.text), &mut self.buf)?;
                }
                Item::Dropped(subscription) => {
                    if subscription == following {
                        self.shared.dropped.set(true);
                        self.shared.told.notify_one();
                    }
                }
                Item::Said(message) => self.codec.encode(message, &mut self.buf)?,
                Item::Close(reason) => {
                    self.codec.encode(Message::Close(reason), &mut self.buf)?;
                    self.ended = true;
                    break;
                }
                Item::Gone => {
                    self.ended = true;
                    break;
                }
            }
        }
        Ok(())
    }
}

/// A connection's mailbox read the way a board's tests need: what the board queued, without a
/// writer or a socket.
#[cfg(test)]
pub mod testing {
    use super::*;

    /// Reads what a board put in a mailbox.
    pub struct Received {
        mailbox: Arc<Mailbox>,
        /// The subscription was dropped: nothing more comes.
        dropped: bool,
    }

    /// A subscription with room for `capacity` of the board's messages, and its reader.
    pub fn queue(capacity: usize) -> (Queue, Received) {
        let mailbox = Mailbox::new(capacity);
        let queue = Queue { mailbox: mailbox.clone(), subscription: 0 };
        (queue, Received { mailbox, dropped: false })
    }

    /// Where a board answers, and its reader.
    pub fn answers() -> (Answers, Received) {
        let mailbox = Mailbox::new(OUTBOUND_QUEUE);
        (Answers(mailbox.clone()), Received { mailbox, dropped: false })
    }

    impl Received {
        /// The next message queued, if there is one now; `None` too once the subscription ended.
        pub fn try_recv(&mut self) -> Option<Outbound> {
            match self.poll_recv(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(out) => out,
                Poll::Pending => None,
            }
        }

        /// The next message, once there is one; `None` once the subscription ended.
        pub async fn recv(&mut self) -> Option<Outbound> {
            std::future::poll_fn(|cx| self.poll_recv(cx)).await
        }

        fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
            if self.dropped {
                return Poll::Ready(None);
            }
            let mut state = self.mailbox.lock();
            state.woken = false;
            match state.items.pop_front() {
                Some(Item::Out(out)) => {
                    state.from_board = state.from_board.saturating_sub(1);
                    Poll::Ready(Some(out))
                }
                Some(Item::Dropped(_)) => {
                    self.dropped = true;
                    Poll::Ready(None)
                }
                Some(Item::Said(_) | Item::Close(_) | Item::Gone) => unreachable!("no session here"),
                None => {
                    state.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytestring::ByteString;
    use std::future::poll_fn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A writer following its first subscription: the session's handle, the writer, the board's queue.
    fn following() -> (Feed, Outbox, Queue) {
        let (outbox, feed) = outbox(BoxBody::new(()), Arc::default());
        let queue = feed.subscription();
        (feed, outbox, queue)
    }

    fn text_frame(text: &str) -> Bytes {
        let mut buf = BytesMut::new();
        Codec::new().encode(Message::Text(text.into()), &mut buf).unwrap();
        buf.freeze()
    }

    fn event(seq: u64) -> Outbound {
        Outbound { seq: Some(Seq(seq)), text: format!("event {seq}").into(), made: std::time::Instant::now() }
    }

    fn text(msg: &ServerMessage) -> String {
        Outbound::message(msg).text.to_string()
    }

    fn say(feed: &Feed, text: &str) {
        feed.say(Message::Text(ByteString::from(text))).unwrap();
    }

    /// Everything the outbox writes now (empty at the body's end), or `None` if it waits.
    async fn written_now(outbox: &mut Outbox) -> Option<Bytes> {
        poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *outbox).poll_next(cx) {
                Poll::Ready(Some(bytes)) => Some(bytes.unwrap()),
                Poll::Ready(None) => Some(Bytes::new()),
                Poll::Pending => None,
            })
        })
        .await
    }

    fn frames(texts: &[&str]) -> Bytes {
        texts.iter().flat_map(|t| text_frame(t).to_vec()).collect::<Vec<u8>>().into()
    }

    #[tokio::test]
    async fn everything_is_written_in_the_order_it_was_queued_and_a_burst_in_one_write() {
        let (feed, mut outbox, board) = following();
        let answers = feed.answers();
        let accepted = |id| ServerMessage::Accepted { id, seq: Seq(id) };
        assert_eq!(written_now(&mut outbox).await, None, "nothing to write yet");
        // The board queues a command's events, then answers it; the session reports an error meanwhile.
        board.try_send(event(1)).unwrap();
        board.try_send(event(2)).unwrap();
        answers.send(&accepted(2));
        say(&feed, "error");
        board.try_send(event(3)).unwrap();
        assert_eq!(
            written_now(&mut outbox).await.unwrap(),
            frames(&["event 1", "event 2", &text(&accepted(2)), "error", "event 3"])
        );
        assert_eq!(feed.written(), Some(Seq(3)));
        assert_eq!(written_now(&mut outbox).await, None, "nothing left");
        // Messages without a sequence number (presence) leave it as it is.
        board.try_send(Outbound::message(&ServerMessage::Presence { connected: vec![] })).unwrap();
        assert!(written_now(&mut outbox).await.is_some());
        assert_eq!(feed.written(), Some(Seq(3)));
    }

    /// Counts how often it is woken.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_waiting_writer_is_woken_once_for_a_burst() {
        let (feed, mut outbox, board) = following();
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut outbox).poll_next(&mut cx).is_pending());
        for seq in 1..=10 {
            board.try_send(event(seq)).unwrap();
        }
        feed.answers().send(&ServerMessage::Accepted { id: 1, seq: Seq(10) });
        assert_eq!(counter.0.load(Ordering::Relaxed), 1, "one wake-up for the burst");
        assert!(matches!(Pin::new(&mut outbox).poll_next(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(Pin::new(&mut outbox).poll_next(&mut cx).is_pending());
        board.try_send(event(11)).unwrap();
        assert_eq!(counter.0.load(Ordering::Relaxed), 2, "and one for the next, once the writer looked again");
    }

    #[tokio::test]
    async fn a_dropped_subscription_is_written_out_then_the_session_is_told_and_the_next_followed() {
        let (feed, mut outbox, board) = following();
        feed.start_from(Some(Seq(4)));
        board.try_send(event(5)).unwrap();
        board.try_send(event(6)).unwrap();
        drop(board); // the board drops a client that fell behind
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 5", "event 6"]));
        // The session hears of it, knows where to resume, and follows the new subscription.
        tokio::time::timeout(std::time::Duration::from_secs(1), feed.dropped()).await.expect("the session is told");
        assert_eq!(feed.written(), Some(Seq(6)));
        let board = feed.subscription();
        board.try_send(event(7)).unwrap();
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 7"]));
    }

    #[tokio::test]
    async fn a_replaced_subscription_is_refused_and_its_end_does_not_reach_the_session() {
        let (feed, mut outbox, old) = following();
        // The first attempt never reached a board; the session subscribes again.
        let new = feed.subscription();
        assert_eq!(old.try_send(event(1)), Err(Refused::Closed));
        drop(old);
        new.try_send(event(1)).unwrap();
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 1"]));
        let told = tokio::time::timeout(std::time::Duration::from_millis(50), feed.dropped()).await;
        assert!(told.is_err(), "the session is not told of the replaced subscription's end");
        // Nor when the first try's end was written before the session tried again.
        let (feed, mut outbox, first) = following();
        drop(first);
        assert_eq!(written_now(&mut outbox).await, None, "nothing to write");
        let second = feed.subscription();
        let told = tokio::time::timeout(std::time::Duration::from_millis(50), feed.dropped()).await;
        assert!(told.is_err(), "the first try's end is no news once the session tried again");
        drop(second);
        assert_eq!(written_now(&mut outbox).await, None);
        tokio::time::timeout(std::time::Duration::from_secs(1), feed.dropped()).await.expect("the second's end is");
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_fills_the_board_s_part_but_still_gets_answers_up_to_a_cap() {
        let (outbox, feed) = writer(Mailbox::new(2), BoxBody::new(()), Arc::default());
        let mut outbox = outbox;
        let board = feed.subscription();
        board.try_send(event(1)).unwrap();
        board.try_send(event(2)).unwrap();
        assert_eq!(board.try_send(event(3)), Err(Refused::Full));
        // The answers and the session's own messages share one cap, apart from the board's.
        for id in 0..SESSION_QUEUE / 2 {
            assert_eq!(feed.room_for_answer(), Ok(()), "answer {id}");
            feed.answers().send(&ServerMessage::Accepted { id: id as u64, seq: Seq(2) });
        }
        for i in SESSION_QUEUE / 2..SESSION_QUEUE {
            assert_eq!(feed.say(Message::Ping(Bytes::new())), Ok(()), "session message {i}");
        }
        assert_eq!(feed.say(Message::Ping(Bytes::new())), Err(Refused::Full));
        assert_eq!(feed.room_for_answer(), Err(Refused::Full));
        // Once the writer has taken them, there is room again.
        assert!(written_now(&mut outbox).await.is_some());
        board.try_send(event(3)).unwrap();
        assert_eq!(feed.room_for_answer(), Ok(()));
        assert_eq!(feed.say(Message::Ping(Bytes::new())), Ok(()));
    }

    #[tokio::test]
    async fn the_body_ends_at_the_session_s_close_and_nothing_follows_it() {
        let (feed, mut outbox, board) = following();
        say(&feed, "closing");
        let reason = CloseReason { code: actix_http::ws::CloseCode::Restart, description: None };
        feed.close(Some(reason.clone()));
        board.try_send(event(1)).unwrap();
        let mut close = BytesMut::new();
        Codec::new().encode(Message::Close(Some(reason)), &mut close).unwrap();
        let expected: Vec<u8> = text_frame("closing").iter().chain(close.iter()).copied().collect();
        assert_eq!(written_now(&mut outbox).await.unwrap(), Bytes::from(expected));
        assert_eq!(written_now(&mut outbox).await.unwrap(), Bytes::new(), "the end of the body, no event");
    }

    #[tokio::test]
    async fn a_session_that_has_gone_ends_the_body_after_what_was_queued_without_a_close_frame() {
        let (feed, mut outbox, board) = following();
        board.try_send(event(1)).unwrap();
        drop(feed);
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 1"]));
        assert_eq!(written_now(&mut outbox).await.unwrap(), Bytes::new());
    }

    #[test]
    fn once_the_connection_closed_nothing_is_taken() {
        let (feed, outbox, board) = following();
        board.try_send(event(1)).unwrap();
        drop(outbox);
        assert_eq!(board.try_send(event(2)), Err(Refused::Closed));
        assert_eq!(feed.say(Message::Ping(Bytes::new())), Err(Refused::Closed));
        assert_eq!(feed.room_for_answer(), Err(Refused::Closed));
        feed.answers().send(&ServerMessage::Accepted { id: 1, seq: Seq(1) });
        assert!(feed.mailbox.lock().items.is_empty(), "what was queued is dropped with the connection");
    }
}
