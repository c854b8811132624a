//! The values that cross the [`Session`](super::Session) boundary: configuration, requests,
//! failures, events and states.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use crate::backoff::BackoffConfig;
use crate::bayeux::channel::ChannelName;
use crate::bayeux::message::Message;

/// How a session retries and how long it waits for replies.
#[derive(Clone)]
pub(crate) struct SessionConfig {
    /// Added to every request's deadline for the network round trip (default 10 s). A
    /// `/meta/connect` deadline also includes the `advice.timeout` it asks the server to hold.
    pub(crate) max_network_delay: Duration,
    /// Delays between failed handshakes and connects.
    pub(crate) backoff: BackoffConfig,
    /// `None`: retry the first handshake forever. `Some(n)`: after `n` failed handshakes
    /// with no handshake ever succeeded, stop with [`SessionError::Unreachable`].
    pub(crate) initial_handshake_attempts: Option<u32>,
    /// The `ext` object sent with every handshake (for example authentication data).
    pub(crate) handshake_ext: Option<Box<RawValue>>,
    /// Ask for the acknowledged-messages extension (default true): when the server agrees,
    /// it redelivers what a lost or cut connect reply carried, and the session hands each
    /// message out once.
    pub(crate) ack: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_network_delay: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
            initial_handshake_attempts: None,
            handshake_ext: None,
            ack: true,
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
            .field("ack", &self.ack)
            .finish()
    }
}

/// Which of the two concurrent requests a [`Request`] occupies. At most one request is in
/// flight per slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    /// The long poll: `/meta/handshake`, then `/meta/connect` again and again.
    LongPoll,
    /// Everything else, batched: subscribe, unsubscribe, publish, disconnect.
    Batch,
}

/// Identifies a [`Request`] when its reply is handed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RequestId(pub(super) u64);

/// A batch of messages to send in one HTTP request.
pub(crate) struct Request {
    /// Give this back with each part of the reply to
    /// [`Session::reply`](super::Session::reply).
    pub(crate) id: RequestId,
    /// The slot it occupies.
    pub(crate) slot: Slot,
    /// The messages, in order.
    pub(crate) messages: Vec<Message>,
    /// When this passes without a reply, hand back a [`FailureKind::Timeout`].
    pub(crate) deadline: Instant,
    /// How long the deadline gave the server, as set (for errors: `no reply within 10s`,
    /// not the time left when the reply began to be read).
    pub(crate) budget: Duration,
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

/// How a request failed, as far as the protocol is concerned. A transport sorts its own
/// errors into these kinds; the session acts on the kind only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The request never reached the server (connection refused, DNS, TLS): nothing the
    /// server sent can have been lost.
    NotSent,
    /// The exchange broke after the request was sent: a reset, a closed connection, a body
    /// that stopped short.
    Interrupted,
    /// No reply (or no further part of it) before the deadline.
    Timeout,
    /// The reply is not valid Bayeux JSON.
    Malformed,
    /// The reply is over a size limit.
    TooLarge,
    /// The server refused the credentials (HTTP 401 or 403 that is not about the client id).
    Unauthorized,
    /// The server does not know this client any more (`402::Unknown client` and the like):
    /// only a new handshake helps.
    UnknownClient,
    /// Any other refusal, such as an HTTP error status.
    Rejected,
}

impl FailureKind {
    /// A short lowercase name for logs.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::NotSent => "not sent",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Timeout => "timeout",
            FailureKind::Malformed => "malformed reply",
            FailureKind::TooLarge => "too large",
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::UnknownClient => "unknown client",
            FailureKind::Rejected => "rejected",
        }
    }
}

/// Why a request yielded no reply batch: its [`FailureKind`], which the session acts on, and
/// the error behind it, kept whole for the application (the session never looks inside).
///
/// Two failures are equal when they are of the same kind with the same message.
#[derive(Clone)]
pub struct Failure {
    kind: FailureKind,
    error: Arc<dyn std::error::Error + Send + Sync + 'static>,
}

impl Failure {
    /// A failure of `kind` caused by `error` (a string is accepted too).
    pub fn new(
        kind: FailureKind,
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Failure {
            kind,
            error: Arc::from(error.into()),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// The error behind it, e.g. a [`TransportError`](crate::transport::TransportError)
    /// (downcast it to get at its fields).
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("kind", &self.kind)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl PartialEq for Failure {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.error.to_string() == other.error.to_string()
    }
}

/// Why a handshake or connect did not succeed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Cause {
    /// The request failed: no reply came back.
    Failed(Failure),
    /// The server answered `successful: false`, with its error string if it gave one.
    Unsuccessful {
        /// The server's `error` field.
        error: Option<String>,
    },
    /// A handshake reply without a `clientId`.
    NoClientId,
    /// The reply carried no answer to the request (no `/meta/handshake` or `/meta/connect`
    /// message with its id).
    Unanswered,
    /// The server ended the session: it sent a `/meta/disconnect` of its own.
    EndedByServer,
}

impl Cause {
    /// The failure, when a request failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Cause::Failed(f) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Failed(failure) => fmt::Display::fmt(failure, f),
            Cause::Unsuccessful { error: Some(e) } => write!(f, "the server answered {e:?}"),
            Cause::Unsuccessful { error: None } => f.write_str("the server answered unsuccessful"),
            Cause::NoClientId => f.write_str("the handshake reply has no clientId"),
            Cause::Unanswered => f.write_str("the reply did not answer the request"),
            Cause::EndedByServer => f.write_str("the server ended the session (/meta/disconnect)"),
        }
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Cause::Failed(failure) => Some(failure),
            _ => None,
        }
    }
}

/// Why messages may have been lost: what a [`SessionEvent::Gap`] says.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum GapCause {
    /// A new handshake: whatever was published to the old session meanwhile is gone.
    Rehandshake,
    /// A reply that may have carried messages was lost or cut after its request was sent
    /// (and the server does not redeliver: no acknowledged-messages extension).
    ReplyLost(Failure),
    /// The server answered a connect unsuccessfully, with its error string if any.
    ConnectRefused {
        /// The server's `error` field.
        error: Option<String>,
    },
    /// A message was over the size limit and was skipped (the rest of its reply was read).
    MessageTooLarge {
        /// Its size so far, in bytes (at least `limit + 1`).
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A redelivered reply did not start with the messages delivered before the cut: the
    /// server's queue changed, so what was skipped as already delivered cannot be trusted.
    RedeliveryMismatch,
    /// A message arrived whole but its content is over a documented limit (a call's
    /// `userData` nested too deep, say), so it was not applied: what it said is lost, like a
    /// message over [`MessageTooLarge`](GapCause::MessageTooLarge)'s limit.
    MessageOverLimit {
        /// The channel it came on.
        channel: String,
        /// Which limit.
        limit: Limit,
        /// The limit's value.
        max: usize,
    },
    /// Connect replies kept failing and what they held was not redelivered within the
    /// feed's staleness bound (a middlebox that breaks every reply carrying a notification,
    /// say): the feed treats it as lost, reads the server's state and starts a new session.
    RedeliveryOverdue {
        /// How long it had been withheld.
        waited: Duration,
    },
}

/// A documented limit on what one message may hold, beyond its size in bytes: what a
/// [`GapCause::MessageOverLimit`] (and the decoder's error) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// How deep a call's `userData` may nest (the object itself is level 1):
    /// `gws_cometd::gws::MAX_USER_DATA_DEPTH`.
    UserDataDepth,
}

impl Limit {
    /// The constant that sets it, as the documentation names it.
    pub fn name(&self) -> &'static str {
        match self {
            Limit::UserDataDepth => "MAX_USER_DATA_DEPTH",
        }
    }

    /// What it limits, in words.
    pub fn what(&self) -> &'static str {
        match self {
            Limit::UserDataDepth => "`userData` nesting depth",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} limit ({})", self.what(), self.name())
    }
}

impl fmt::Display for GapCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GapCause::Rehandshake => f.write_str("a new session replaced the old one"),
            GapCause::ReplyLost(failure) => write!(f, "a reply was lost: {failure}"),
            GapCause::ConnectRefused { error: Some(e) } => {
                write!(f, "the server refused a connect: {e}")
            }
            GapCause::ConnectRefused { error: None } => f.write_str("the server refused a connect"),
            GapCause::MessageTooLarge { size, limit } => write!(
                f,
                "a message of {size}+ bytes was over the {limit}-byte limit and was skipped"
            ),
            GapCause::RedeliveryMismatch => {
                f.write_str("a redelivered reply did not match what was delivered before")
            }
            GapCause::MessageOverLimit {
                channel,
                limit,
                max,
            } => write!(
                f,
                "a message on {channel} was over the {} limit of {max} ({}) and was not applied",
                limit.what(),
                limit.name()
            ),
            GapCause::RedeliveryOverdue { waited } => write!(
                f,
                "what failed connects held was not redelivered within {waited:.1?}"
            ),
        }
    }
}

/// Why a session stopped for good, other than a requested disconnect. Each says what to
/// check: retrying the same thing fails the same way.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server advised `reconnect: none`: it will not accept this client again.
    #[error("the server advised reconnect \"none\"{}", .error.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    ReconnectNone {
        /// The error that came with the advice, if any.
        error: Option<String>,
    },
    /// A handshake was refused with advice not to retry.
    #[error("handshake refused: {error}")]
    HandshakeRefused {
        /// The server's error string.
        error: String,
    },
    /// No handshake ever succeeded within the configured attempts.
    #[error("no handshake succeeded in {attempts} attempts: {last}")]
    Unreachable {
        /// How many handshakes were tried.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Cause,
    },
    /// The server refused the credentials.
    #[error("the server refused the credentials: {failure}")]
    Unauthorized {
        /// The refusal.
        #[source]
        failure: Failure,
    },
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Termination {
    /// [`Session::disconnect`](super::Session::disconnect) completed.
    Disconnected,
    /// The session failed for good.
    Failed(SessionError),
}

/// Something that happened to the session itself, in the order it happened: what a service
/// watches to know it is connected and when it may have missed messages.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The first handshake succeeded.
    Handshaken {
        /// The session id the server assigned.
        client_id: String,
    },
    /// A later handshake succeeded: the old session was lost and **messages published in
    /// between may have been missed**. Subscriptions are being restored.
    Rehandshaken {
        /// The new session id.
        client_id: String,
    },
    /// A handshake failed; another follows after `retry_in` unless it is `None`.
    HandshakeFailed {
        /// Failed attempts in a row, starting at 1.
        attempt: u32,
        /// What went wrong.
        cause: Cause,
        /// When the next attempt goes out; `None` when there will be none.
        retry_in: Option<Duration>,
    },
    /// The first successful `/meta/connect` after a handshake or after
    /// [`SessionEvent::ConnectionLost`].
    Connected,
    /// A `/meta/connect` failed or timed out; emitted once per outage.
    ConnectionLost {
        /// What went wrong.
        cause: Cause,
    },
    /// The server no longer holds the session: it answered `Unknown client` (`402`), or
    /// ended the session with a `/meta/disconnect` of its own. A new handshake follows
    /// ([`SessionEvent::Rehandshaken`], then a [`SessionEvent::Gap`]).
    Forgotten {
        /// What the server said.
        cause: Cause,
        /// True when no connect had succeeded on the forgotten session: a server that
        /// forgets each new session at once has usually lost what the HTTP session carried
        /// (a GWS server that restarted), which a new login fixes. The next handshake is
        /// then backed off, so such a server is not asked again and again at once.
        unconnected: bool,
    },
    /// The server confirmed a subscription.
    Subscribed {
        /// The channel or pattern.
        channel: ChannelName,
    },
    /// The server refused a subscription. The channel stays desired and is tried again
    /// after the next re-handshake.
    SubscriptionDenied {
        /// The channel or pattern.
        channel: ChannelName,
        /// The server's error string.
        error: String,
    },
    /// A channel is no longer subscribed.
    Unsubscribed {
        /// The channel or pattern.
        channel: ChannelName,
    },
    /// **Messages may have been lost here**: a service that keeps state should read it anew
    /// from the server. Emitted once per such moment; what subscribers already got is never
    /// handed to them again.
    Gap {
        /// Why.
        cause: GapCause,
    },
    /// The server agreed to the acknowledged-messages extension on this session: lost or
    /// cut connect replies are redelivered, so they are no longer gaps.
    AcknowledgedMessages,
}

impl SessionEvent {
    /// Logs the event at the level it deserves: lost sessions and failures warn, the rest is
    /// informational (`Unsubscribed` is debug).
    pub fn log(&self) {
        match self {
            SessionEvent::Handshaken { .. } => tracing::info!("handshaken"),
            // Its consequence is the Gap that follows.
            SessionEvent::Rehandshaken { .. } => {
                tracing::info!("re-handshaken: restoring the subscriptions")
            }
            SessionEvent::HandshakeFailed {
                attempt,
                cause,
                retry_in,
            } => tracing::warn!(attempt, ?retry_in, "handshake failed: {cause}"),
            SessionEvent::Connected => tracing::info!("connected"),
            SessionEvent::ConnectionLost { cause } => tracing::warn!("connection lost: {cause}"),
            SessionEvent::Forgotten { cause, unconnected } => {
                tracing::info!(unconnected, "the server forgot the session: {cause}")
            }
            SessionEvent::Subscribed { channel } => tracing::info!(%channel, "subscribed"),
            SessionEvent::SubscriptionDenied { channel, error } => {
                tracing::warn!(%channel, "subscription denied: {error}")
            }
            SessionEvent::Unsubscribed { channel } => tracing::debug!(%channel, "unsubscribed"),
            SessionEvent::Gap { cause } => tracing::warn!("messages may have been lost: {cause}"),
            SessionEvent::AcknowledgedMessages => {
                tracing::debug!("the server acknowledges messages: cut replies are redelivered")
            }
        }
    }
}

/// What the session has for its driver, in the order it happened.
// `Message` dominates the size; it is the common case (every data message), so boxing it
// would add an allocation per message to save space on the rare lifecycle events.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Event {
    /// A data (non-meta) message, from any reply, in the order received.
    Message(Message),
    /// Something happened to the session; hand it to the application.
    Session(SessionEvent),
    /// The outcome of a [`Session::publish`](super::Session::publish).
    PublishAck {
        /// The id `publish` returned.
        publish_id: u64,
        /// True when the server accepted the message.
        successful: bool,
        /// Why not.
        error: Option<String>,
    },
    /// The session is over; nothing more will be sent. Always the last event.
    Terminated {
        /// Why.
        reason: Termination,
    },
}

/// Where a session is in its life: the summary of its phase, for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum State {
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
    pub(crate) fn name(&self) -> &'static str {
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
