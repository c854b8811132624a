//! [`ClientBuilder`]: how a [`Client`] talks to its server and paces its session.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::driver::{Driver, Limits};
use super::{Client, ReplyTap, Shared, COMMAND_BUFFER, DEFAULT_BUFFER, DEFAULT_MAX_MESSAGE_BYTES};

/// Events an event receiver may fall behind by before it gets [`ClientEvent::Lagged`]
/// (a handshake with its subscriptions is about half a dozen). Every session holds this
/// many slots, so it stays small.
///
/// [`ClientEvent::Lagged`]: super::ClientEvent::Lagged
const EVENT_BUFFER: usize = 32;
use crate::backoff::BackoffConfig;
use crate::bayeux::session::{Session, SessionConfig};
use crate::error::Result;
use crate::transport::{HttpTransport, Transport, TransportError};

/// Configures and starts a [`Client`]. HTTP settings (credentials, headers, cookies, size
/// limits) belong to the transport: see [`HttpTransport::builder`].
pub struct ClientBuilder {
    transport: std::result::Result<Arc<dyn Transport>, TransportError>,
    session: SessionConfig,
    buffer: usize,
    max_message_bytes: usize,
    tap: Option<ReplyTap>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = self.transport.as_ref().map(|t| t.endpoint());
        f.debug_struct("ClientBuilder")
            .field("endpoint", &endpoint.ok())
            .field("session", &self.session)
            .field("buffer", &self.buffer)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("records", &self.tap.is_some())
            .finish()
    }
}

impl ClientBuilder {
    /// A builder for a client that sends through `transport`.
    pub fn new(transport: impl Transport) -> Self {
        Self::with(Ok(Arc::new(transport)))
    }

    /// A builder for the HTTP endpoint `url` with the default HTTP settings; an unusable
    /// URL fails [`build`](Self::build).
    pub(super) fn http(url: &str) -> Self {
        let transport = HttpTransport::builder(url)
            .build()
            .map(|t| Arc::new(t) as Arc<dyn Transport>);
        Self::with(transport)
    }

    fn with(transport: std::result::Result<Arc<dyn Transport>, TransportError>) -> Self {
        ClientBuilder {
            transport,
            session: SessionConfig::default(),
            buffer: DEFAULT_BUFFER,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            tap: None,
        }
    }

    /// The longest the network may add to a request: a reply must start by `advice.timeout`
    /// (connects) + this, and while it arrives the server may be silent at most this long
    /// between two chunks (a large reply on a slow link is read however long it takes).
    /// Default 10 s.
    pub fn max_network_delay(mut self, delay: Duration) -> Self {
        self.session.max_network_delay = delay;
        self
    }

    /// Backoff after failures without advice: exponential from `initial`, capped at `max`,
    /// jittered.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.session.backoff = BackoffConfig {
            initial,
            max,
            ..self.session.backoff
        };
        self
    }

    /// Give up with [`SessionError::Unreachable`](crate::bayeux::SessionError::Unreachable)
    /// after this many failed handshakes when no handshake has ever succeeded. Default:
    /// never give up.
    pub fn initial_handshake_attempts(mut self, attempts: Option<u32>) -> Self {
        self.session.initial_handshake_attempts = attempts;
        self
    }

    /// The `ext` object sent with every handshake (for example authentication data). It is
    /// never logged.
    pub fn handshake_ext(mut self, ext: Box<RawValue>) -> Self {
        self.session.handshake_ext = Some(ext);
        self
    }

    /// Ask the server for the acknowledged-messages extension (default true): when it
    /// agrees, a lost or cut connect reply is redelivered instead of being a gap, and each
    /// message is still handed out once.
    pub fn acknowledged_messages(mut self, ask: bool) -> Self {
        self.session.ack = ask;
        self
    }

    /// The largest message taken, in bytes (default [`DEFAULT_MAX_MESSAGE_BYTES`]). A larger
    /// one is passed over without being held in memory and reported as a
    /// [`GapCause::MessageTooLarge`](crate::bayeux::GapCause::MessageTooLarge); the rest of its
    /// reply is read. Replies themselves have no size limit.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes.max(1);
        self
    }

    /// Capacity of each subscriber's buffer, in messages (default 1024, at least 1).
    pub fn buffer_size(mut self, messages: usize) -> Self {
        self.buffer = messages.max(1);
        self
    }

    /// Sees every reply body once it has arrived, verbatim: the hook for recording fixtures.
    /// A reply that broke off is handed over as the array of the messages that did arrive
    /// (they were delivered). If the tap fails, the client stops with
    /// [`Error::Record`](crate::Error::Record) rather than lose what it could not record.
    ///
    /// With a tap set, each reply body is kept until it has arrived, for the tap; without
    /// one, a large reply is never held in memory at once.
    pub fn on_reply(
        mut self,
        tap: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Self {
        self.tap = Some(Box::new(tap));
        self
    }

    /// Starts the driver task on the current Tokio runtime and returns the handle.
    ///
    /// Fails when the transport could not be built (an unusable URL). Must be called inside
    /// a Tokio runtime.
    pub fn build(self) -> Result<Client> {
        let transport = self.transport?;
        let (commands_tx, commands) = mpsc::channel(COMMAND_BUFFER);
        let (events, first_events) = broadcast::channel(EVENT_BUFFER);
        let endpoint: Arc<str> = transport.endpoint().into();
        let limits = Limits {
            silence: self.session.max_network_delay,
            max_message_bytes: self.max_message_bytes,
        };
        let session = Session::new(self.session, Instant::now().into_std());
        let driver = Driver::new(
            session,
            transport,
            commands,
            events.clone(),
            self.tap,
            limits,
        );
        tokio::spawn(driver.run());
        Ok(Client {
            inner: Arc::new(Shared {
                commands: commands_tx,
                events,
                first_events: std::sync::Mutex::new(Some(first_events)),
                endpoint,
                buffer: self.buffer,
                next_subscriber: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }
}
