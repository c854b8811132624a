//! The crate's [`Error`]: each layer's error type, composed.
//!
//! | layer | type |
//! |---|---|
//! | channel names | [`InvalidChannel`] |
//! | protocol (the session ended for good) | [`SessionError`] |
//! | transport (one exchange failed) | [`TransportError`] |
//! | GWS REST | [`RestError`] |
//! | GWS notifications | [`DecodeError`] |
//! | fixtures | [`FixtureError`] |
//! | the program around (a simulator, a listener) | [`std::io::Error`], as [`Error::Io`] |
//!
//! Ask an error what to do next with [`Error::is_retryable`] and [`Error::is_auth`]. Messages
//! never contain passwords, cookies or CSRF tokens.

use crate::bayeux::{InvalidChannel, SessionError};
use crate::fixture::FixtureError;
use crate::gws::rest::RestError;
use crate::gws::DecodeError;
use crate::transport::TransportError;

/// Everything that can go wrong in gws-cometd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fatal: a channel name is not valid.
    #[error(transparent)]
    Channel(#[from] InvalidChannel),
    /// An exchange with the server failed, or a transport could not be set up.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Fatal: the Bayeux session ended for good (the server refused the client, or could
    /// not be reached by the initial handshakes).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A GWS REST request failed or was refused.
    #[error(transparent)]
    Rest(#[from] RestError),
    /// Fatal: a fixture could not be read, parsed or written.
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    /// Fatal for that message (a stream goes on): a GWS notification does not fit the model,
    /// e.g. a `CallStateChangeMessage` without a `call` or with a call without `id`.
    #[error("malformed notification on {channel}: {source}")]
    Notification {
        /// The channel it arrived on.
        channel: String,
        /// What did not fit, and where.
        #[source]
        source: DecodeError,
    },
    /// Fatal for this message: its `data` did not decode as the type asked for.
    #[error("{channel}: cannot decode data: {source}")]
    Decode {
        /// The channel of the message.
        channel: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// Fatal for this call: the server refused a publish.
    #[error("publish to {channel} refused: {error}")]
    PublishRefused {
        /// The channel published to.
        channel: String,
        /// The server's error string.
        error: String,
    },
    /// Fatal: a reply could not be recorded, so the client stopped rather than lose it.
    #[error("cannot record a reply: {source}")]
    Record {
        /// The recorder's error.
        #[source]
        source: std::io::Error,
    },
    /// Fatal: the client was disconnected or its driver stopped.
    #[error("the client is closed")]
    Closed,
    /// Fatal: an I/O operation of the program around the client failed, most often a
    /// listener that could not bind: `gws_cometd_sim::GwsSimServer::start`,
    /// `SimServer::start` and `http_server::bind` return [`std::io::Result`], and this variant (converted from
    /// [`std::io::Error`]) lets `?` use them in a function returning [`Result`]. The crate's
    /// own I/O errors keep their layer's type (a fixture's is [`FixtureError`], a recorder's
    /// [`Error::Record`]).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when a later attempt of the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_retryable(),
            Error::Rest(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// True when the server refused the credentials (check user name, password, roles).
    pub fn is_auth(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_auth(),
            Error::Session(SessionError::Unauthorized { .. }) => true,
            Error::Rest(e) => e.is_auth(),
            _ => false,
        }
    }

    /// True for a request that hit its deadline.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_timeout(),
            Error::Rest(e) => e.is_timeout(),
            _ => false,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
