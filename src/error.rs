//! The one error type of the crate.
//!
//! Each variant's documentation says whether it is *fatal* (retrying the same call will fail
//! the same way: fix configuration or input) or *retryable* (a later attempt may succeed).
//! Messages never contain passwords, cookies or CSRF tokens.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in gws-cometd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fatal: the URL cannot be used as an endpoint.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (credentials stripped).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fatal: the channel name is not valid.
    #[error(transparent)]
    InvalidChannel(#[from] crate::bayeux::InvalidChannel),
    /// Fatal: the server refused the credentials (HTTP 401/403). Check user name and password.
    #[error("{url}: HTTP {status}: {hint}")]
    Unauthorized {
        /// The request URL (credentials stripped).
        url: String,
        /// 401 or 403.
        status: u16,
        /// What to check.
        hint: String,
    },
    /// Retryable: the server answered with an unexpected HTTP status.
    #[error("{url}: HTTP {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    HttpStatus {
        /// The request URL (credentials stripped).
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's message, if it sent one (truncated).
        message: String,
    },
    /// Retryable: the request could not be sent or its reply not read (connection refused,
    /// reset, DNS).
    #[error("{url}: {message}")]
    Network {
        /// The request URL (credentials stripped).
        url: String,
        /// What failed.
        message: String,
    },
    /// Retryable: no complete reply within the request deadline.
    #[error("{url}: no reply within {after:?}")]
    Timeout {
        /// The request URL (credentials stripped).
        url: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// Retryable: the reply body was larger than the configured limit.
    #[error("{url}: reply larger than the {limit}-byte limit (raise it with ClientBuilder::max_reply_bytes)")]
    ReplyTooLarge {
        /// The request URL (credentials stripped).
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// Retryable: the reply was not valid Bayeux JSON.
    #[error("{url}: malformed reply: {message}")]
    MalformedReply {
        /// The request URL (credentials stripped).
        url: String,
        /// The parser's message and a short excerpt.
        message: String,
    },
    /// Fatal: the server advised `reconnect: none`; it will not accept this client again.
    #[error("the server advised reconnect \"none\"{}", .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    ReconnectNone {
        /// The error the server gave with the advice, if any.
        reason: Option<String>,
    },
    /// Fatal: the server refused the handshake and advised not to retry.
    #[error("handshake refused: {0}")]
    HandshakeRefused(String),
    /// Fatal: the server could not be reached by the initial handshake attempts.
    #[error("could not reach {url} after {attempts} handshake attempts: {last_error}")]
    Unreachable {
        /// The endpoint URL.
        url: String,
        /// How many handshakes were tried.
        attempts: u32,
        /// The last failure.
        last_error: String,
    },
    /// Fatal: the client was disconnected or its driver stopped.
    #[error("the client is closed")]
    Closed,
    /// Fatal for this call: a publish was refused by the server.
    #[error("publish to {channel} refused: {error}")]
    PublishRefused {
        /// The channel published to.
        channel: String,
        /// The server's error string.
        error: String,
    },
    /// Fatal for this message: a message's `data` did not decode as the expected type (or a
    /// value could not be encoded).
    #[error("{channel}: cannot decode data: {message}")]
    Decode {
        /// The channel of the message.
        channel: String,
        /// The decoder's message.
        message: String,
    },
    /// Fatal: a fixture file could not be read or parsed.
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Fixture {
        /// The fixture file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// Fatal for that message (a stream goes on): a GWS notification's `data` did not fit
    /// the model, e.g. a `CallStateChangeMessage` without a `call` or with a call without `id`.
    #[error("malformed notification on {channel}: {message}")]
    MalformedNotification {
        /// The channel it arrived on.
        channel: String,
        /// What did not fit.
        message: String,
    },
    /// Depends on the source: an I/O error outside HTTP (files, sockets of the simulator).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when a later attempt of the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::HttpStatus { .. }
                | Error::Network { .. }
                | Error::Timeout { .. }
                | Error::ReplyTooLarge { .. }
                | Error::MalformedReply { .. }
        )
    }

    /// True for HTTP 401/403 refusals of the credentials.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized { .. })
    }

    /// True for a request that hit its deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
