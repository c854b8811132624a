//! One request in flight, read as it arrives: the reply head, then each top-level element of
//! the body as soon as it is complete (or the whole body, when replies are recorded).
//!
//! The deadline covers the server's part only: the time between handing an element out and
//! being asked for the next one is the client's own (a full subscriber) and extends it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::bayeux::ArraySplitter;
use crate::transport::{ReplyBody, SendFuture, TransportError};

/// What a [`ReplyReader`] produced.
#[derive(Debug)]
pub(super) enum Progress {
    /// The next element of the reply array.
    Element(Bytes),
    /// The whole body (recording mode).
    Whole(Bytes),
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

/// Reads one reply; poll it with [`ReplyReader::poll_progress`] until `End`, `Whole` or
/// `Failed`.
pub(super) struct ReplyReader {
    phase: Phase,
    splitter: ArraySplitter,
    /// Set when the body is collected whole instead of split.
    whole: Option<BytesMut>,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
    /// When the last element was handed out, if that was the last thing this did.
    handed_out: Option<Instant>,
    /// The endpoint, for errors.
    endpoint: Arc<str>,
    /// The time the server was given, for errors.
    budget: Duration,
}

impl ReplyReader {
    pub(super) fn new(
        send: SendFuture,
        deadline: Instant,
        whole: bool,
        endpoint: Arc<str>,
    ) -> Self {
        ReplyReader {
            endpoint,
            budget: deadline.saturating_duration_since(Instant::now()),
            phase: Phase::Head(send),
            splitter: ArraySplitter::new().allow_single_object(true),
            whole: whole.then(BytesMut::new),
            deadline,
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

    pub(super) fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<Progress> {
        if let Some(at) = self.handed_out.take() {
            self.deadline += at.elapsed();
        }
        loop {
            match &mut self.phase {
                Phase::Done => return Poll::Ready(Progress::End),
                Phase::Head(send) => match send.poll_unpin(cx) {
                    Poll::Ready(Ok(body)) => self.phase = Phase::Body(body),
                    Poll::Ready(Err(f)) => return self.done(Progress::Failed(f)),
                    Poll::Pending => break,
                },
                Phase::Body(body) => {
                    if self.whole.is_none() {
                        match self.splitter.next_element() {
                            Ok(Some(element)) => {
                                self.handed_out = Some(Instant::now());
                                return Poll::Ready(Progress::Element(element));
                            }
                            Ok(None) => {}
                            Err(e) => {
                                let error = self.malformed(e.to_string());
                                return self.done(Progress::Failed(error));
                            }
                        }
                    }
                    match body.poll_next_unpin(cx) {
                        Poll::Ready(Some(Ok(chunk))) => match &mut self.whole {
                            Some(buf) => buf.extend_from_slice(&chunk),
                            None => self.splitter.feed(chunk),
                        },
                        Poll::Ready(Some(Err(f))) => return self.done(Progress::Failed(f)),
                        Poll::Ready(None) => {
                            let end = match self.whole.take() {
                                Some(buf) => Progress::Whole(buf.freeze()),
                                None => match self.splitter.finish() {
                                    Ok(()) => Progress::End,
                                    Err(e) => Progress::Failed(self.malformed(e.to_string())),
                                },
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
    use std::time::Duration;

    use super::*;
    use crate::transport::body_from_bytes;

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

    async fn next(r: &mut ReplyReader) -> Progress {
        std::future::poll_fn(|cx| r.poll_progress(cx)).await
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
        let mut r = ReplyReader::new(
            send,
            Instant::now() + Duration::from_secs(1),
            false,
            endpoint(),
        );
        assert_eq!(element(next(&mut r).await), r#"{"a":1}"#);
        assert_eq!(element(next(&mut r).await), r#"{"b":2}"#);
        assert!(matches!(next(&mut r).await, Progress::End));
    }

    #[tokio::test(start_paused = true)]
    async fn recording_mode_yields_the_whole_body() {
        let send = reply(vec![Ok(b"[{\"a\":1},"), Ok(b"{\"b\":2}]")], false);
        let mut r = ReplyReader::new(
            send,
            Instant::now() + Duration::from_secs(1),
            true,
            endpoint(),
        );
        match next(&mut r).await {
            Progress::Whole(b) => assert_eq!(&b[..], br#"[{"a":1},{"b":2}]"#),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_clients_own_stall_does_not_count_against_the_deadline() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, TransportError>>();
        let body: ReplyBody = Box::pin(rx);
        let send: SendFuture = Box::pin(std::future::ready(Ok(body)));
        let start = Instant::now();
        let mut r = ReplyReader::new(send, start + Duration::from_secs(1), false, endpoint());
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
    async fn a_stalled_body_hits_the_deadline() {
        let start = Instant::now();
        let send = reply(vec![Ok(b"[1,")], true);
        let mut r = ReplyReader::new(send, start + Duration::from_secs(1), false, endpoint());
        assert_eq!(element(next(&mut r).await), "1");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(matches!(
            next(&mut r).await,
            Progress::Failed(TransportError::Timeout { .. })
        ));
        // One second of server time after the 3 s the client spent on its own.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_hits_the_deadline() {
        let start = Instant::now();
        let mut r = ReplyReader::new(
            Box::pin(std::future::pending()),
            start + Duration::from_secs(2),
            false,
            endpoint(),
        );
        assert!(matches!(
            next(&mut r).await,
            Progress::Failed(TransportError::Timeout { .. })
        ));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn broken_bodies_fail_after_what_was_complete() {
        let send = reply(vec![Ok(b"[1,"), Err(reset())], false);
        let mut r = ReplyReader::new(
            send,
            Instant::now() + Duration::from_secs(1),
            false,
            endpoint(),
        );
        assert_eq!(element(next(&mut r).await), "1");
        assert!(matches!(
            next(&mut r).await,
            Progress::Failed(TransportError::Interrupted { .. })
        ));

        let send = reply(vec![Ok(b"[1,{\"a\"")], false);
        let mut r = ReplyReader::new(
            send,
            Instant::now() + Duration::from_secs(1),
            false,
            endpoint(),
        );
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
        let mut r = ReplyReader::new(
            send,
            Instant::now() + Duration::from_secs(1),
            false,
            endpoint(),
        );
        match next(&mut r).await {
            Progress::Failed(TransportError::Malformed { message, .. }) => {
                assert_eq!(message, "not a JSON array at byte 0")
            }
            other => panic!("{other:?}"),
        }
    }
}
