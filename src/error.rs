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
    /// Fatal for this request: GWS answered a non-zero `statusCode` (the call is unknown, the
    /// operation does not fit the call's state, a parameter is missing, ...). See
    /// [`GwsStatus`] for what each code means; `message` is the server's `statusMessage`.
    #[error("{operation}{}: GWS statusCode {} ({status}){}",
        .call_id.as_deref().map(|c| format!(" on call {c}")).unwrap_or_default(),
        .status.code(),
        .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Gws {
        /// The operation (`AttachUserData`, `GetCalls`, `Login`, ...).
        operation: String,
        /// The call the operation was for, if any.
        call_id: Option<String>,
        /// The `statusCode` and its meaning.
        status: GwsStatus,
        /// The server's `statusMessage`, if it sent one (truncated).
        message: Option<String>,
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

/// A GWS `statusCode` other than 0 (success), with its documented meaning as `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GwsStatus {
    /// 1: a required parameter is missing or malformed.
    MissingParameter,
    /// 2: the operation is not valid in the call's (or device's) current state.
    InvalidState,
    /// 3: the request is forbidden (GWS also uses it for a missing or invalid CSRF token).
    Forbidden,
    /// 4: the server failed internally.
    InternalError,
    /// 5: the user has no permission for the operation.
    NoPermission,
    /// 6: the resource (call, device) does not exist.
    NotFound,
    /// 7: the operation succeeded only in part.
    PartialSuccess,
    /// 20: the request is not authenticated.
    NotAuthenticated,
    /// Any other code.
    Other(i64),
}

impl GwsStatus {
    /// The status for a numeric `statusCode` (0 is success and has no `GwsStatus`; it maps
    /// to `Other(0)`).
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Self::MissingParameter,
            2 => Self::InvalidState,
            3 => Self::Forbidden,
            4 => Self::InternalError,
            5 => Self::NoPermission,
            6 => Self::NotFound,
            7 => Self::PartialSuccess,
            20 => Self::NotAuthenticated,
            other => Self::Other(other),
        }
    }

    /// The numeric `statusCode`.
    pub fn code(self) -> i64 {
        match self {
            Self::MissingParameter => 1,
            Self::InvalidState => 2,
            Self::Forbidden => 3,
            Self::InternalError => 4,
            Self::NoPermission => 5,
            Self::NotFound => 6,
            Self::PartialSuccess => 7,
            Self::NotAuthenticated => 20,
            Self::Other(code) => code,
        }
    }
}

impl std::fmt::Display for GwsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingParameter => "missing parameter",
            Self::InvalidState => "invalid for the current state",
            Self::Forbidden => "forbidden",
            Self::InternalError => "internal server error",
            Self::NoPermission => "no permission",
            Self::NotFound => "not found",
            Self::PartialSuccess => "partial success",
            Self::NotAuthenticated => "not authenticated",
            Self::Other(_) => "unknown status",
        })
    }
}
