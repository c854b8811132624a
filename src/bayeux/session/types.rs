//! The values that cross the [`Session`](super::Session) boundary: configuration, requests,
//! failures, events and states.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::bayeux::backoff::BackoffConfig;
use crate::bayeux::channel::ChannelName;
use crate::bayeux::message::{BayeuxError, Message};

/// How a session retries and how long it waits for replies.
#[derive(Clone)]
pub struct SessionConfig {
    /// Added to every request's deadline for the network round trip (default 10 s). A
    /// `/meta/connect` deadline also includes the `advice.timeout` it asks the server to hold.
    pub max_network_delay: Duration,
    /// Delays between failed handshakes and connects.
    pub backoff: BackoffConfig,
    /// `None`: retry the first handshake forever. `Some(n)`: after `n` failed handshakes
    /// with no handshake ever succeeded, stop with [`Termination::Unreachable`].
    pub initial_handshake_attempts: Option<u32>,
    /// The `ext` object sent with every handshake (for example authentication data).
    pub handshake_ext: Option<Box<RawValue>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_network_delay: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
            initial_handshake_attempts: None,
            handshake_ext: None,
        }
    }
}

/// `handshake_ext` may carry credentials, so it is never printed.
impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("max_network_delay", &self.max_network_delay)
            .field("backoff", &self.backoff)
            .field(
                "initial_handshake_attempts",
                &self.initial_handshake_attempts,
            )
            .field(
                "handshake_ext",
                &self.handshake_ext.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Which of the two concurrent requests a [`Request`] occupies. At most one request is in
/// flight per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The long poll: `/meta/handshake` and `/meta/connect`.
    Connect,
    /// Everything else, batched: subscribe, unsubscribe, publish, disconnect.
    Other,
}

/// Identifies a [`Request`] when its outcome is reported back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(super) u64);

/// A batch of messages to send in one HTTP request.
pub struct Request {
    /// Give this back to [`Session::handle_reply`](super::Session::handle_reply) or
    /// [`Session::handle_failure`](super::Session::handle_failure).
    pub id: RequestId,
    /// The slot it occupies.
    pub slot: Slot,
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// When this passes without a reply, report [`Failure::Timeout`].
    pub deadline: Instant,
}

/// Prints channels only: a handshake's `ext` may carry credentials.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channels: Vec<&str> = self.messages.iter().map(|m| m.channel.as_str()).collect();
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("slot", &self.slot)
            .field("channels", &channels)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Why a request did not yield a reply batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The deadline passed.
    Timeout,
    /// Connection refused, reset, DNS failure and the like.
    Network(String),
    /// A status other than 2xx, with the body as text.
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The response body (may hold a Bayeux error batch).
        body: String,
    },
    /// The body is not valid Bayeux JSON (truncated bodies included).
    Malformed(String),
    /// The body is over the size limit.
    TooLarge,
}

impl Failure {
    /// True when the body of an HTTP error carries a Bayeux "unknown client" error: the
    /// session is gone and a new handshake will help.
    pub fn is_unknown_client(&self) -> bool {
        let Failure::HttpStatus { body, .. } = self else {
            return false;
        };
        match Message::parse_batch(body.as_bytes()) {
            Ok(batch) => batch
                .iter()
                .filter_map(Message::bayeux_error)
                .any(|e| e.is_unknown_client()),
            // Some servers answer with the bare error string.
            Err(_) => BayeuxError::parse(body.trim()).is_unknown_client(),
        }
    }

    /// The status when this is an HTTP 401/403 that is not an unknown-client error: the
    /// credentials are refused and retrying will not help.
    pub fn unauthorized_status(&self) -> Option<u16> {
        match self {
            Failure::HttpStatus { status, .. }
                if (*status == 401 || *status == 403) && !self.is_unknown_client() =>
            {
                Some(*status)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Timeout => f.write_str("no reply before the deadline"),
            Failure::Network(e) => write!(f, "network error: {e}"),
            Failure::HttpStatus { status, body } => {
                // Bodies can be whole HTML pages; a prefix is enough to say what happened.
                let short: String = body.chars().take(200).collect();
                let more = if short.len() < body.len() { "..." } else { "" };
                write!(f, "HTTP status {status}: {short}{more}")
            }
            Failure::Malformed(e) => write!(f, "malformed reply: {e}"),
            Failure::TooLarge => f.write_str("reply body over the size limit"),
        }
    }
}

/// Something the application should know about, in the order it happened.
// `Message` dominates the size; it is the common case (every data message), so boxing it
// would add an allocation per message to save space on the rare lifecycle events.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The first handshake succeeded.
    Handshaken {
        /// The session id the server assigned.
        client_id: String,
    },
    /// A later handshake succeeded: messages may have been missed in between.
    Rehandshaken {
        /// The new session id.
        client_id: String,
    },
    /// A handshake failed.
    HandshakeFailed {
        /// Failed attempts in a row, starting at 1.
        attempt: u32,
        /// What went wrong.
        reason: String,
        /// When the next attempt goes out; `None` when there will be none.
        retry_in: Option<Duration>,
    },
    /// The first successful `/meta/connect` after a handshake or after
    /// [`Event::ConnectionLost`].
    Connected,
    /// A `/meta/connect` failed or timed out; emitted once per outage.
    ConnectionLost {
        /// What went wrong.
        reason: String,
    },
    /// The server confirmed a subscription.
    Subscribed {
        /// The channel.
        channel: ChannelName,
    },
    /// The server refused a subscription. The channel stays desired and is tried again
    /// after the next re-handshake.
    SubscriptionDenied {
        /// The channel.
        channel: ChannelName,
        /// The server's error string.
        error: String,
    },
    /// A channel is no longer subscribed.
    Unsubscribed {
        /// The channel.
        channel: ChannelName,
    },
    /// The outcome of a [`Session::publish`](super::Session::publish).
    PublishAck {
        /// The id `publish` returned.
        publish_id: u64,
        /// True when the server accepted the message.
        successful: bool,
        /// Why not.
        error: Option<String>,
    },
    /// A data (non-meta) message, from any reply, in the order received.
    Message(Message),
    /// [`Session::disconnect`](super::Session::disconnect) completed.
    Disconnected,
    /// The session is over; nothing more will be sent. Always the last event.
    Terminated {
        /// Why.
        reason: Termination,
    },
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Termination {
    /// The server advised `reconnect: none`.
    ReconnectNone {
        /// The error that came with the advice, if any.
        error: Option<String>,
    },
    /// A handshake reply advised `reconnect: none`.
    HandshakeRefused {
        /// The server's error string.
        error: String,
    },
    /// No handshake ever succeeded within the configured attempts.
    Unreachable {
        /// How many handshakes were tried.
        attempts: u32,
        /// The last failure.
        last_error: String,
    },
    /// HTTP 401/403 that is not an unknown-client error: the credentials are refused.
    Unauthorized {
        /// The HTTP status.
        status: u16,
    },
    /// The application called [`Session::disconnect`](super::Session::disconnect).
    Disconnected,
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Created; the first handshake has not gone out yet.
    Unconnected,
    /// A handshake is in flight or about to go out.
    Handshaking,
    /// Handshaken; the first `/meta/connect` (after the handshake or after an outage) is
    /// outstanding or about to go out.
    Connecting,
    /// A `/meta/connect` succeeded; long polling.
    Connected,
    /// Waiting to retry a failed handshake or connect.
    Backoff,
    /// `/meta/disconnect` is queued or in flight.
    Disconnecting,
    /// Over; nothing more will be sent.
    Terminated,
}

impl State {
    /// A short lowercase name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            State::Unconnected => "unconnected",
            State::Handshaking => "handshaking",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Backoff => "backoff",
            State::Disconnecting => "disconnecting",
            State::Terminated => "terminated",
        }
    }
}
