//! Transports carry one batch of Bayeux messages to the server and bring back the reply body.
//!
//! The client drives at most two requests at a time through a transport (the long poll and
//! one other) and enforces every request's deadline itself, so a transport never needs its
//! own timer to keep the client from hanging.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::bayeux::session::Failure;

pub mod http;

pub use http::{HttpTransport, SharedHeaders};

/// The future a [`Transport`] returns: the raw reply body, or why there is none.
pub type SendFuture = Pin<Box<dyn Future<Output = Result<Bytes, Failure>> + Send + 'static>>;

/// Sends request bodies (JSON arrays of Bayeux messages) and returns reply bodies.
///
/// Implementations must be cancel-safe: the client drops the future when the request's
/// deadline passes.
pub trait Transport: Send + Sync + 'static {
    /// Sends `body` and resolves to the complete reply body of a 2xx answer.
    fn send(&self, body: Vec<u8>) -> SendFuture;

    /// The endpoint, for logs and errors, without credentials.
    fn endpoint(&self) -> &str;
}
