//! Transports carry one batch of Bayeux messages to the server and bring back the reply body
//! as a stream of chunks, so that a large reply never has to be held whole.
//!
//! The client drives at most two requests at a time through a transport (the long poll and
//! one other) and enforces every request's deadline itself, so a transport never needs its
//! own timer to keep the client from hanging.
//!
//! | module | what it is |
//! |---|---|
//! | [`http`] | [`HttpTransport`]: long polling over HTTP/1.1 with `reqwest`, and its builder; [`HttpOptions`] |
//! | [`cookies`] | [`Cookies`]: one session's cookie jar |
//! | [`endpoint`] | checking and redacting HTTP URLs |
//! | [`error`] | [`TransportError`] and how it maps to the protocol's [`FailureKind`](crate::bayeux::FailureKind) |

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

pub mod cookies;
pub mod endpoint;
pub mod error;
pub mod http;

pub use cookies::Cookies;
pub use error::{BoxError, TransportError};
pub use http::{HttpOptions, HttpTransport, HttpTransportBuilder, SharedHeaders};

/// The body of a 2xx reply, chunk by chunk. It ends after the last chunk, or after the first
/// `Err` (an interrupted body, or one over the size limit).
pub type ReplyBody = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send + 'static>>;

/// The future a [`Transport`] returns: the reply body once a 2xx status arrived, or why there
/// is none.
pub type SendFuture =
    Pin<Box<dyn Future<Output = Result<ReplyBody, TransportError>> + Send + 'static>>;

/// Sends request bodies (JSON arrays of Bayeux messages) and returns reply bodies.
///
/// Implementations must be cancel-safe: the client drops the future (or the body stream)
/// when the request's deadline passes.
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` and resolves, once the status of a 2xx answer arrived, to its body.
    /// Other statuses resolve to [`TransportError::Status`].
    fn send(&self, body: Vec<u8>) -> SendFuture;

    /// The endpoint, for logs and errors, without credentials.
    fn endpoint(&self) -> &str;
}
