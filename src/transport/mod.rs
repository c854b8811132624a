//! Transports carry one batch of Bayeux messages to the server and bring back the reply body
//! as a stream of chunks, so that a large reply never has to be held whole.
//!
//! The client drives at most two requests at a time through a transport (the long poll and
//! one other) and enforces every request's deadline itself, so a transport never needs its
//! own timer to keep the client from hanging.

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use crate::bayeux::session::Failure;

pub mod http;

pub use http::{HttpTransport, SharedHeaders};

/// The body of a 2xx reply, chunk by chunk. It ends after the last chunk, or after the first
/// `Err` (an interrupted body, or one over the size limit: [`Failure::TooLarge`]).
pub type ReplyBody = Pin<Box<dyn Stream<Item = Result<Bytes, Failure>> + Send + 'static>>;

/// The future a [`Transport`] returns: the reply body once a 2xx status arrived, or why there
/// is none.
pub type SendFuture = Pin<Box<dyn Future<Output = Result<ReplyBody, Failure>> + Send + 'static>>;

/// A [`ReplyBody`] of one chunk, for transports that have the whole body at once.
pub fn body_from_bytes(body: Bytes) -> ReplyBody {
    Box::pin(futures::stream::once(std::future::ready(Ok(body))))
}

/// Collects a whole reply body (the first chunk is kept without copying when it is the only
/// one).
pub async fn collect_body(mut body: ReplyBody) -> Result<Bytes, Failure> {
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            None => buf.extend_from_slice(&chunk),
            Some(f) => {
                buf.reserve(f.len() + chunk.len());
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// Sends request bodies (JSON arrays of Bayeux messages) and returns reply bodies.
///
/// Implementations must be cancel-safe: the client drops the future (or the body stream)
/// when the request's deadline passes.
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` and resolves, once the status of a 2xx answer arrived, to its body.
    /// Other statuses resolve to [`Failure::HttpStatus`]. The body stream enforces the
    /// transport's size limit on the running total.
    fn send(&self, body: Vec<u8>) -> SendFuture;

    /// The endpoint, for logs and errors, without credentials.
    fn endpoint(&self) -> &str;
}
