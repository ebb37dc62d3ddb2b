//! What one WebSocket connection writes, and in which order.
//!
//! Three sources feed a connection: its board's queue ([`Outbound`]: events, snapshots,
//! presence), the board's answers to its commands ([`Answers`]), and its session, which reports
//! errors, pings and closes through actix-ws. [`Outbox`] is the response body that merges them.
//! actix's connection writer polls it and reads the board's queue and answers itself, so an event
//! or an answer goes from the board task to the socket in one hop: the session task is not woken
//! for it, and a command's events and its answer to the author usually leave in one write.
//!
//! The order a client relies on: a command's answer comes after the events the board queued
//! before answering. The board queues them before it answers, so whenever the writer holds an
//! answer, the events before it are already in the board's queue. The writer takes the session's
//! messages and the answers first and the board's queue after, and writes them in the opposite
//! order: the events, then the answers, then the session's messages.
//!
//! A board drops a connection whose queue is full (the client fell behind). The writer writes what
//! was queued, records the last sequence number written, and tells the session through [`Feed`],
//! which subscribes again from there and hands the writer the new queue.

use crate::board_task::Outbound;
use crate::metrics::Metrics;
use actix_codec::Encoder;
use actix_http::ws::{Codec, Message};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use minim_shared::Seq;
use minim_shared::wire::ServerMessage;
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{Notify, mpsc};

/// The session's handle on its connection's writer.
pub struct Feed {
    queues: mpsc::UnboundedSender<mpsc::Receiver<Outbound>>,
    answers: Answers,
    shared: Rc<Shared>,
}

/// Where a board sends its answers to one connection's commands (`accepted`, `rejected`). Not
/// bounded: a connection has at most the commands its rate limit lets in waiting for answers.
/// A `futures` channel, not a tokio one: it allocates per message rather than a block of 32 slots
/// up front, which every idle connection would carry (about 2 kB each, BENCHMARKS.md).
#[derive(Clone)]
pub struct Answers(futures_channel::mpsc::UnboundedSender<Outbound>);

impl Answers {
    /// Queues an answer; one for a connection that has closed is dropped.
    pub fn send(&self, answer: &ServerMessage) {
        let _ = self.0.unbounded_send(Outbound::message(answer));
    }

    /// Answers read from the other end, for tests of the board without a connection.
    #[cfg(test)]
    pub fn channel() -> (Answers, futures_channel::mpsc::UnboundedReceiver<Outbound>) {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        (Answers(tx), rx)
    }
}

/// The response body of a WebSocket connection: the session's messages (actix-ws's body), the
/// board's queue and the board's answers, written as one stream.
pub struct Outbox {
    /// actix-ws's body: what the session sends through its `actix_ws::Session`.
    session: BoxBody,
    /// The board's queue for this connection; `None` before the first subscription and after the
    /// board dropped it, until the session hands over the next.
    events: Option<mpsc::Receiver<Outbound>>,
    queues: mpsc::UnboundedReceiver<mpsc::Receiver<Outbound>>,
    answers: futures_channel::mpsc::UnboundedReceiver<Outbound>,
    shared: Rc<Shared>,
    codec: Codec,
    buf: BytesMut,
    /// The answers taken in one poll, framed, until the events before them are in `buf`.
    answered: BytesMut,
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

/// What the writer tells the session. Both run on the connection's worker thread.
struct Shared {
    /// The sequence number of the last event or snapshot written to the client.
    written: Cell<Option<Seq>>,
    /// Signalled when the board dropped the queue and everything in it has been written.
    dropped: Notify,
}

/// Wraps actix-ws's response body, `session`, into the body that also writes the board's queue.
pub fn outbox(session: BoxBody, metrics: Arc<Metrics>) -> (Outbox, Feed) {
    let (queues_tx, queues) = mpsc::unbounded_channel();
    let (answers_tx, answers) = futures_channel::mpsc::unbounded();
    let shared = Rc::new(Shared { written: Cell::new(None), dropped: Notify::new() });
    let outbox = Outbox {
        session,
        events: None,
        queues,
        answers,
        shared: Rc::clone(&shared),
        codec: Codec::new(),
        buf: BytesMut::new(),
        answered: BytesMut::new(),
        waited: Waited { metrics, taken: 0 },
    };
    (outbox, Feed { queues: queues_tx, answers: Answers(answers_tx), shared })
}

impl Feed {
    /// The last sequence number the client was sent, or the one it said it had.
    pub fn written(&self) -> Option<Seq> {
        self.shared.written.get()
    }

    /// Where the board answers this connection's commands.
    pub fn answers(&self) -> Answers {
        self.answers.clone()
    }

    /// Where the client starts: the sequence number its hello said it had folded.
    pub fn start_from(&self, seq: Option<Seq>) {
        self.shared.written.set(seq);
    }

    /// Hands the writer the queue of a new subscription. Only call it once the board dropped the
    /// previous queue ([`Feed::dropped`]) or before the first.
    pub fn follow(&self, queue: mpsc::Receiver<Outbound>) {
        // Fails only when the connection is gone, which the session learns from its stream.
        let _ = self.queues.send(queue);
    }

    /// Resolves once the board dropped the queue and the writer has written everything in it:
    /// [`Feed::written`] is then where to subscribe again from.
    pub async fn dropped(&self) {
        self.shared.dropped.notified().await;
    }
}

impl MessageBody for Outbox {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        // The session's messages and the answers are taken first and written last (see the
        // module's comment).
        let said = match this.session.as_pin_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => Some(bytes),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            // The session closed the connection (its close frame is written) or is gone.
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => None,
        };
        while let Poll::Ready(Some(answer)) = futures_util::Stream::poll_next(Pin::new(&mut this.answers), cx) {
            this.waited.record(&answer);
            this.codec.encode(Message::Text(answer.text), &mut this.answered)?;
        }
        while let Poll::Ready(Some(queue)) = this.queues.poll_recv(cx) {
            this.events = Some(queue);
        }
        if let Some(events) = &mut this.events {
            loop {
                match events.poll_recv(cx) {
                    Poll::Ready(Some(out)) => {
                        this.waited.record(&out);
                        if let Some(seq) = out.seq {
                            this.shared.written.set(Some(seq));
                        }
                        this.codec.encode(Message::Text(out.text), &mut this.buf)?;
                    }
                    Poll::Ready(None) => {
                        this.events = None;
                        this.shared.dropped.notify_one();
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        if !this.answered.is_empty() {
            this.buf.extend_from_slice(&this.answered);
            this.answered.clear();
        }
        match said {
            Some(said) if this.buf.is_empty() => return Poll::Ready(Some(Ok(said))),
            Some(said) => this.buf.extend_from_slice(&said),
            None => {}
        }
        if this.buf.is_empty() {
            return Poll::Pending;
        }
        // A fresh buffer each time: one burst's size is not kept for the connection's lifetime.
        Poll::Ready(Some(Ok(std::mem::take(&mut this.buf).freeze())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board_task::OUTBOUND_QUEUE;
    use std::future::poll_fn;

    /// A session's side as actix-ws gives it: a channel of already framed bytes.
    fn session_body() -> (mpsc::UnboundedSender<Bytes>, BoxBody) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let stream = futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|bytes| bytes.map(Ok::<_, std::convert::Infallible>))
        });
        (tx, BoxBody::new(actix_web::body::BodyStream::new(stream)))
    }

    /// An outbox following a board's queue: the session's sender, the outbox, its feed, the
    /// board's sender.
    fn following() -> (mpsc::UnboundedSender<Bytes>, Outbox, Feed, mpsc::Sender<Outbound>) {
        let (session, body) = session_body();
        let (outbox, feed) = outbox(body, Arc::default());
        let (board, queue) = mpsc::channel(OUTBOUND_QUEUE);
        feed.follow(queue);
        (session, outbox, feed, board)
    }

    fn text_frame(text: &str) -> Bytes {
        let mut buf = BytesMut::new();
        Codec::new().encode(Message::Text(text.into()), &mut buf).unwrap();
        buf.freeze()
    }

    fn event(seq: u64) -> Outbound {
        Outbound { seq: Some(Seq(seq)), text: format!("event {seq}").into(), made: std::time::Instant::now() }
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
    async fn the_events_queued_before_an_answer_are_written_before_it() {
        let (session, mut outbox, feed, board) = following();
        assert_eq!(written_now(&mut outbox).await, None, "nothing to write yet");
        // The board queues two events, then the session answers.
        board.try_send(event(1)).unwrap();
        board.try_send(event(2)).unwrap();
        session.send(text_frame("accepted 2")).unwrap();
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 1", "event 2", "accepted 2"]));
        assert_eq!(feed.written(), Some(Seq(2)));
        // Messages without a sequence number (presence) leave it as it is.
        board.try_send(Outbound::message(&ServerMessage::Presence { connected: vec![] })).unwrap();
        assert!(written_now(&mut outbox).await.is_some());
        assert_eq!(feed.written(), Some(Seq(2)));
    }

    #[tokio::test]
    async fn an_answer_is_written_after_the_events_queued_before_it_and_in_the_same_write() {
        let (session, mut outbox, feed, board) = following();
        let answers = feed.answers();
        let accepted = |id| ServerMessage::Accepted { id, seq: Seq(id) };
        let text = |msg: &ServerMessage| Outbound::message(msg).text.to_string();
        // The board queues a command's event, then answers it; the session reports an error meanwhile.
        board.try_send(event(1)).unwrap();
        answers.send(&accepted(1));
        session.send(text_frame("error")).unwrap();
        let first = written_now(&mut outbox).await.unwrap();
        assert_eq!(first, frames(&["event 1", &text(&accepted(1)), "error"]));
        // Answers alone are written too, in the order they were given.
        answers.send(&accepted(2));
        answers.send(&accepted(3));
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&[&text(&accepted(2)), &text(&accepted(3))]));
        assert_eq!(written_now(&mut outbox).await, None, "nothing left");
        // An event queued after an answer, but before the writer woke, goes out with the events
        // ahead of it: the promise is only that the events before an answer are written first.
        answers.send(&accepted(4));
        board.try_send(event(5)).unwrap();
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 5", &text(&accepted(4))]));
    }

    #[tokio::test]
    async fn a_dropped_queue_is_written_out_then_the_session_is_told_and_the_next_queue_followed() {
        let (_session, mut outbox, feed, board) = following();
        feed.start_from(Some(Seq(4)));
        board.try_send(event(5)).unwrap();
        board.try_send(event(6)).unwrap();
        drop(board); // the board drops a client that fell behind
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 5", "event 6"]));
        // The session hears of it, knows where to resume, and follows the new queue.
        tokio::time::timeout(std::time::Duration::from_secs(1), feed.dropped()).await.expect("the session is told");
        assert_eq!(feed.written(), Some(Seq(6)));
        let (board, queue) = mpsc::channel(OUTBOUND_QUEUE);
        board.try_send(event(7)).unwrap();
        feed.follow(queue);
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["event 7"]));
    }

    #[tokio::test]
    async fn the_body_ends_when_the_session_has_closed_and_nothing_follows_its_close() {
        let (session, mut outbox, _feed, board) = following();
        session.send(text_frame("closing")).unwrap();
        drop(session);
        assert_eq!(written_now(&mut outbox).await.unwrap(), frames(&["closing"]));
        board.try_send(event(1)).unwrap();
        assert_eq!(written_now(&mut outbox).await.unwrap(), Bytes::new(), "the end of the body, no event");
    }
}
