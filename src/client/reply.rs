//! One request in flight, read as it arrives: the reply head, then each top-level element of
//! the body as soon as it is complete.
//!
//! Deadlines bound the server's silence, never the size of a reply: the reply must *start*
//! (its status and head) by the request's deadline, and after that at most `silence` may
//! pass between two chunks of the body. A large reply that keeps arriving on a slow link is
//! read to its end. The time between handing an element out and being asked for the next one
//! is the client's own (a full subscriber) and does not count.
//!
//! An element over the size limit is passed over without being kept
//! ([`Progress::TooLarge`]); the reply goes on. When replies are recorded, the reader also
//! keeps the body for the recorder: the whole body when it ended well, else the elements
//! that did arrive, as an array.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::bayeux::split::{ArraySplitter, Element};
use crate::transport::{ReplyBody, SendFuture, TransportError};

/// What a [`ReplyReader`] produced.
#[derive(Debug)]
pub(super) enum Progress {
    /// The reply's head arrived, a success status: the server answered the request.
    Head,
    /// The next element of the reply array.
    Element(Bytes),
    /// The next element was over the size limit and was passed over.
    TooLarge {
        /// Its length in bytes.
        size: u64,
    },
    /// The body ended after a complete array.
    End,
    /// No (further) reply: the request failed, timed out, or the body broke off.
    Failed(TransportError),
}

enum Phase {
    Head(SendFuture),
    Body(ReplyBody),
    Done,
}

/// What a recorded reply keeps.
#[derive(Default)]
struct Recording {
    chunks: Vec<Bytes>,
    elements: Vec<Bytes>,
}

/// Reads one reply; poll it with [`ReplyReader::poll_progress`] until `End` or `Failed`.
pub(super) struct ReplyReader {
    phase: Phase,
    splitter: ArraySplitter,
    recording: Option<Recording>,
    /// When the server must have sent something (more) by.
    deadline: Instant,
    /// How long the server may be silent between chunks of the body.
    silence: Duration,
    sleep: Pin<Box<Sleep>>,
    /// When the last element was handed out, if that was the last thing this did.
    handed_out: Option<Instant>,
    /// The endpoint, for errors.
    endpoint: Arc<str>,
    /// What the current deadline gave the server, for errors.
    budget: Duration,
}

impl ReplyReader {
    /// A reader for the reply `send` brings; the reply must start by `deadline` (`budget`
    /// after the request was made, as errors say), then its chunks come at most `silence`
    /// apart; elements over `max_element` bytes are passed over.
    pub(super) fn new(
        send: SendFuture,
        (deadline, budget): (Instant, Duration),
        silence: Duration,
        max_element: usize,
        record: bool,
        endpoint: Arc<str>,
    ) -> Self {
        ReplyReader {
            endpoint,
            budget,
            phase: Phase::Head(send),
            splitter: ArraySplitter::new()
                .allow_single_object(true)
                .max_element(max_element),
            recording: record.then(Recording::default),
            deadline,
            silence,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            handed_out: None,
        }
    }

    fn done(&mut self, p: Progress) -> Poll<Progress> {
        self.phase = Phase::Done;
        Poll::Ready(p)
    }

    fn malformed(&self, message: String) -> TransportError {
        TransportError::Malformed {
            url: self.endpoint.to_string(),
            message,
        }
    }

    /// The server sent something: it has `silence` again for the next part.
    fn heard(&mut self) {
        self.deadline = Instant::now() + self.silence;
        self.budget = self.silence;
    }

    /// For the recorder, once the reply is over: the body as received when it ended well,
    /// else the elements that arrived, as an array (`None` when none did).
    pub(super) fn take_recorded(&mut self, complete: bool) -> Option<Bytes> {
        let rec = self.recording.take()?;
        if complete {
            let mut body = BytesMut::with_capacity(rec.chunks.iter().map(Bytes::len).sum());
            rec.chunks.iter().for_each(|c| body.extend_from_slice(c));
            return Some(body.freeze());
        }
        if rec.elements.is_empty() {
            return None;
        }
        let mut body = BytesMut::from(&b"["[..]);
        for (i, e) in rec.elements.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(b",");
            }
            body.extend_from_slice(e);
        }
        body.extend_from_slice(b"]");
        Some(body.freeze())
    }

    pub(super) fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Progress> {
        if let Some(at) = self.handed_out.take() {
            self.deadline += at.elapsed();
        }
        loop {
            match &mut self.phase {
                Phase::Done => return Poll::Ready(Progress::End),
                Phase::Head(send) => match send.poll_unpin(cx) {
                    Poll::Ready(Ok(body)) => {
                        self.phase = Phase::Body(body);
                        self.heard();
                        return Poll::Ready(Progress::Head);
                    }
                    Poll::Ready(Err(f)) => return self.done(Progress::Failed(f)),
                    Poll::Pending => break,
                },
                Phase::Body(body) => {
                    match self.splitter.next_element() {
                        Ok(Some(element)) => {
                            self.handed_out = Some(Instant::now());
                            return Poll::Ready(match element {
                                Element::Complete(bytes) => {
                                    if let Some(rec) = &mut self.recording {
                                        rec.elements.push(bytes.clone());
                                    }
                                    Progress::Element(bytes)
                                }
                                Element::TooLarge { size } => Progress::TooLarge { size },
                            });
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let error = self.malformed(e.to_string());
                            return self.done(Progress::Failed(error));
                        }
                    }
                    match body.poll_next_unpin(cx) {
                        Poll::Ready(Some(Ok(chunk))) => {
                            if let Some(rec) = &mut self.recording {
                                rec.chunks.push(chunk.clone());
                            }
                            self.splitter.feed(chunk);
                            self.heard();
                        }
                        Poll::Ready(Some(Err(f))) => return self.done(Progress::Failed(f)),
                        Poll::Ready(None) => {
                            let end = match self.splitter.finish() {
                                Ok(()) => Progress::End,
                                Err(e) => Progress::Failed(self.malformed(e.to_string())),
                            };
                            return self.done(end);
                        }
                        Poll::Pending => break,
                    }
                }
            }
        }
        // Waiting for the server: that is what the deadline bounds.
        if self.sleep.deadline() != self.deadline {
            self.sleep.as_mut().reset(self.deadline);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            let error = TransportError::Timeout {
                url: self.endpoint.to_string(),
                after: self.budget,
            };
            return self.done(Progress::Failed(error));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply body of one chunk.
    fn body_from_bytes(body: Bytes) -> ReplyBody {
        Box::pin(futures::stream::once(std::future::ready(Ok(body))))
    }

    const SILENCE: Duration = Duration::from_secs(1);
    const NO_LIMIT: usize = usize::MAX;

    fn endpoint() -> Arc<str> {
        Arc::from("http://h/cometd")
    }

    fn reset() -> TransportError {
        TransportError::Interrupted {
            url: "http://h/cometd".into(),
            detail: "reset".into(),
            source: "reset".into(),
        }
    }

    fn reply(chunks: Vec<Result<&'static [u8], TransportError>>, then_stall: bool) -> SendFuture {
        let chunks = chunks
            .into_iter()
            .map(|c| c.map(Bytes::from_static))
            .collect::<Vec<_>>();
        let body = futures::stream::iter(chunks);
        let body: ReplyBody = if then_stall {
            Box::pin(body.chain(futures::stream::pending()))
        } else {
            Box::pin(body)
        };
        Box::pin(std::future::ready(Ok(body)))
    }

    fn reader(send: SendFuture, record: bool) -> ReplyReader {
        let deadline = Instant::now() + Duration::from_secs(1);
        ReplyReader::new(
            send,
            (deadline, Duration::from_secs(1)),
            SILENCE,
            NO_LIMIT,
            record,
            endpoint(),
        )
    }

    /// The next progress after the head (which the tests that want it see with `poll`).
    async fn next(r: &mut ReplyReader) -> Progress {
        match std::future::poll_fn(|cx| r.poll_progress(cx)).await {
            Progress::Head => std::future::poll_fn(|cx| r.poll_progress(cx)).await,
            p => p,
        }
    }

    fn element(p: Progress) -> String {
        match p {
            Progress::Element(e) => String::from_utf8(e.to_vec()).unwrap(),
            other => panic!("expected an element, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn elements_arrive_one_by_one_then_the_end() {
        let send = reply(vec![Ok(b"[{\"a\":1},"), Ok(b"{\"b\":2}]")], false);
        let mut r = reader(send, false);
        assert_eq!(element(next(&mut r).await), r#"{"a":1}"#);
        assert_eq!(element(next(&mut r).await), r#"{"b":2}"#);
        assert!(matches!(next(&mut r).await, Progress::End));
        assert_eq!(r.take_recorded(true), None, "not recording");
    }

    #[tokio::test(start_paused = true)]
    async fn recording_keeps_the_whole_body_or_what_arrived_of_a_cut_one() {
        let send = reply(vec![Ok(b"[{\"a\":1},"), Ok(b"{\"b\":2}]")], false);
        let mut r = reader(send, true);
        element(next(&mut r).await);
        element(next(&mut r).await);
        assert!(matches!(next(&mut r).await, Progress::End));
        assert_eq!(
            r.take_recorded(true).as_deref(),
            Some(&br#"[{"a":1},{"b":2}]"#[..])
        );

        let send = reply(vec![Ok(b"[{\"a\":1}, {\"b\""), Err(reset())], false);
        let mut r = reader(send, true);
        element(next(&mut r).await);
        assert!(matches!(next(&mut r).await, Progress::Failed(_)));
        assert_eq!(
            r.take_recorded(false).as_deref(),
            Some(&br#"[{"a":1}]"#[..])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_element_over_the_limit_is_passed_over_and_the_reply_goes_on() {
        let send = reply(
            vec![Ok(b"[1,\"abcdefghij"), Ok(b"klmnop\",2,"), Ok(b"\"x\"]")],
            false,
        );
        let deadline = Instant::now() + Duration::from_secs(1);
        let budget = (deadline, Duration::from_secs(1));
        let mut r = ReplyReader::new(send, budget, SILENCE, 8, false, endpoint());
        assert_eq!(element(next(&mut r).await), "1");
        assert!(matches!(
            next(&mut r).await,
            Progress::TooLarge { size: 18 }
        ));
        assert_eq!(element(next(&mut r).await), "2");
        assert_eq!(element(next(&mut r).await), r#""x""#);
        assert!(matches!(next(&mut r).await, Progress::End));
    }

    #[tokio::test(start_paused = true)]
    async fn the_clients_own_stall_does_not_count_against_the_deadline() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, TransportError>>();
        let body: ReplyBody = Box::pin(rx);
        let send: SendFuture = Box::pin(std::future::ready(Ok(body)));
        let start = Instant::now();
        let mut r = reader(send, false);
        tx.unbounded_send(Ok(Bytes::from_static(b"[1,"))).unwrap();
        assert_eq!(element(next(&mut r).await), "1");
        // A full subscriber holds the client far beyond the deadline...
        tokio::time::sleep(Duration::from_secs(5)).await;
        // ...then the server takes most of its second, which is still within the deadline.
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(900)).await;
            tx.unbounded_send(Ok(Bytes::from_static(b"2]"))).unwrap();
        });
        assert_eq!(element(next(&mut r).await), "2");
        assert!(matches!(next(&mut r).await, Progress::End));
        assert_eq!(start.elapsed(), Duration::from_millis(5900));
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_that_keeps_arriving_is_read_however_long_it_takes() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, TransportError>>();
        let body: ReplyBody = Box::pin(rx);
        let send: SendFuture = Box::pin(std::future::ready(Ok(body)));
        let start = Instant::now();
        let mut r = reader(send, false);
        // Sixty chunks 900 ms apart: a minute of body, each gap within the silence limit.
        let feeder = tokio::spawn(async move {
            tx.unbounded_send(Ok(Bytes::from_static(b"["))).unwrap();
            for i in 0..60 {
                tokio::time::sleep(Duration::from_millis(900)).await;
                let piece: &'static [u8] = if i == 0 { b"0" } else { b",0" };
                tx.unbounded_send(Ok(Bytes::from_static(piece))).unwrap();
            }
            tx.unbounded_send(Ok(Bytes::from_static(b"]"))).unwrap();
        });
        let mut n = 0;
        loop {
            match next(&mut r).await {
                Progress::Element(_) => n += 1,
                Progress::End => break,
                other => panic!("{other:?} after {n} elements"),
            }
        }
        assert_eq!(n, 60);
        assert!(start.elapsed() >= Duration::from_secs(54));
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_falls_silent_hits_the_silence_limit() {
        let start = Instant::now();
        let send = reply(vec![Ok(b"[1,")], true);
        let mut r = reader(send, false);
        assert_eq!(element(next(&mut r).await), "1");
        tokio::time::sleep(Duration::from_secs(3)).await;
        match next(&mut r).await {
            Progress::Failed(TransportError::Timeout { after, .. }) => assert_eq!(after, SILENCE),
            other => panic!("{other:?}"),
        }
        // One second of silence after the 3 s the client spent on its own.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_hits_the_deadline() {
        let start = Instant::now();
        // The reader is made a little after the request: the error still names the
        // deadline as it was set.
        tokio::time::advance(Duration::from_millis(7)).await;
        let mut r = ReplyReader::new(
            Box::pin(std::future::pending()),
            (start + Duration::from_secs(2), Duration::from_secs(2)),
            SILENCE,
            NO_LIMIT,
            false,
            endpoint(),
        );
        match next(&mut r).await {
            Progress::Failed(e @ TransportError::Timeout { .. }) => {
                assert!(e.to_string().ends_with("no reply within 2s"), "{e}");
            }
            other => panic!("a timeout, not {other:?}"),
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn broken_bodies_fail_after_what_was_complete() {
        let send = reply(vec![Ok(b"[1,"), Err(reset())], false);
        let mut r = reader(send, false);
        assert_eq!(element(next(&mut r).await), "1");
        assert!(matches!(
            next(&mut r).await,
            Progress::Failed(TransportError::Interrupted { .. })
        ));

        let send = reply(vec![Ok(b"[1,{\"a\"")], false);
        let mut r = reader(send, false);
        assert_eq!(element(next(&mut r).await), "1");
        match next(&mut r).await {
            Progress::Failed(TransportError::Malformed { message, .. }) => {
                assert_eq!(message, "body ended inside the array at byte 7")
            }
            other => panic!("{other:?}"),
        }

        let send: SendFuture = Box::pin(std::future::ready(Ok(body_from_bytes(
            Bytes::from_static(b"<html>"),
        ))));
        let mut r = reader(send, false);
        match next(&mut r).await {
            Progress::Failed(TransportError::Malformed { message, .. }) => {
                assert_eq!(message, "not a JSON array at byte 0")
            }
            other => panic!("{other:?}"),
        }
    }
}
