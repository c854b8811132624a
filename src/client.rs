//! The asynchronous client: a cloneable [`Client`] handle talking to one driver task.
//!
//! The driver owns the [`Session`] state machine and the [`Transport`]; it only does I/O and
//! timers. Local subscribers are registered with the driver; the Bayeux subscriptions they need
//! are desired state in the session, restored after every re-handshake.
//!
//! Backpressure: each subscriber has a bounded buffer. When one is full the driver waits for
//! room before it handles anything else, so the next long poll is not sent and memory stays
//! bounded; nothing is dropped.
//!
//! Replies are handled as they arrive: each message of a reply batch is parsed as soon as
//! its bytes are complete and data messages go to subscribers at once, so even a reply of
//! megabytes is never held whole (unless replies are recorded, see
//! [`ClientBuilder::on_reply`]). Time spent waiting for a full subscriber does not count
//! against the request's deadline.

mod reply;

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{Stream, StreamExt};
use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use self::reply::{Progress, ReplyReader};
use crate::bayeux::session::{
    Event, Failure, Request, RequestId, Session, SessionConfig, Termination,
};
use crate::bayeux::{BackoffConfig, ChannelName, Message};
use crate::error::{Error, Result};
use crate::transport::http::HttpTransportConfig;
use crate::transport::{HttpTransport, SharedHeaders, Transport};

/// Called with every reply body that parsed as Bayeux, before its messages are handled.
/// An error stops the client (see [`ClientBuilder::on_reply`]).
pub type ReplyTap = Box<dyn FnMut(&[u8]) -> std::io::Result<()> + Send>;

/// Default capacity of a subscriber's buffer, in messages.
pub const DEFAULT_BUFFER: usize = 1024;
/// Default limit on one reply body: 32 MiB.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 32 * 1024 * 1024;

/// What happens to the session, for services that must know when they may have missed
/// messages.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientEvent {
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
    /// A handshake attempt failed; another follows after `retry_in` unless it is `None`.
    HandshakeFailed {
        /// 1 for the first failure in a row.
        attempt: u32,
        /// What failed.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Option<Duration>,
    },
    /// A `/meta/connect` succeeded after a handshake or after a loss.
    Connected,
    /// The long poll failed; the client retries with backoff.
    ConnectionLost {
        /// What failed.
        reason: String,
    },
    /// The server confirmed a subscription.
    Subscribed {
        /// The channel or pattern.
        channel: ChannelName,
    },
    /// The server refused a subscription. It stays desired and is tried again after the next
    /// re-handshake.
    SubscriptionDenied {
        /// The channel or pattern.
        channel: ChannelName,
        /// The server's error string.
        error: String,
    },
    /// The server confirmed an unsubscription.
    Unsubscribed {
        /// The channel or pattern.
        channel: ChannelName,
    },
    /// This event receiver fell behind and lost `missed` events (events only; messages are
    /// never dropped).
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
    /// The client stopped for good. `error` is [`Error::Closed`] after a requested disconnect.
    Terminated {
        /// Why.
        error: Arc<Error>,
    },
}

/// Configures and starts a [`Client`].
pub struct ClientBuilder {
    url: String,
    basic_auth: Option<(String, String)>,
    headers: Vec<(String, String)>,
    shared_headers: Option<SharedHeaders>,
    cookie_jar: Option<Arc<Jar>>,
    http_client: Option<reqwest::Client>,
    session: SessionConfig,
    buffer: usize,
    max_reply_bytes: usize,
    transport: Option<Arc<dyn Transport>>,
    tap: Option<ReplyTap>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("user", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("buffer", &self.buffer)
            .field("max_reply_bytes", &self.max_reply_bytes)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder for the Bayeux endpoint `url`, e.g. `http://127.0.0.1:8080/cometd` or
    /// `https://gws.example/api/v2/notifications`.
    pub fn new(url: impl Into<String>) -> Self {
        ClientBuilder {
            url: url.into(),
            basic_auth: None,
            headers: Vec::new(),
            shared_headers: None,
            cookie_jar: None,
            http_client: None,
            session: SessionConfig::default(),
            buffer: DEFAULT_BUFFER,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            transport: None,
            tap: None,
        }
    }

    /// HTTP Basic credentials sent on every request.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// An extra header sent on every request. Invalid names or values fail [`build`](Self::build).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Headers read anew for every request (e.g. a CSRF token that another component
    /// refreshes).
    pub fn shared_headers(mut self, headers: SharedHeaders) -> Self {
        self.shared_headers = Some(headers);
        self
    }

    /// The cookie jar to use, e.g. one shared with a REST session. Default: a jar of the
    /// client's own.
    pub fn cookie_jar(mut self, jar: Arc<Jar>) -> Self {
        self.cookie_jar = Some(jar);
        self
    }

    /// The `reqwest` client to send with, e.g. a REST session's
    /// ([`GwsSession::http_client`](crate::gws::api::GwsSession::http_client)): its cookie
    /// store is then the jar, and [`cookie_jar`](Self::cookie_jar) is ignored. Sharing one
    /// saves building TLS state per client. Per-request deadlines still come from this
    /// builder; a client-wide `timeout` set on it would cut long polls short.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http_client = Some(http);
        self
    }

    /// The longest the network may add to a request: deadline = `advice.timeout` (connects)
    /// + this. Default 10 s.
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

    /// Give up with [`Error::Unreachable`] after this many failed handshakes when no handshake
    /// has ever succeeded. Default: never give up.
    pub fn initial_handshake_attempts(mut self, attempts: Option<u32>) -> Self {
        self.session.initial_handshake_attempts = attempts;
        self
    }

    /// Capacity of each subscriber's buffer, in messages (default 1024, at least 1).
    pub fn buffer_size(mut self, messages: usize) -> Self {
        self.buffer = messages.max(1);
        self
    }

    /// Limit on one reply body (default 32 MiB). A larger reply is an error, retried with
    /// backoff.
    pub fn max_reply_bytes(mut self, bytes: usize) -> Self {
        self.max_reply_bytes = bytes;
        self
    }

    /// Use this transport instead of HTTP (URL, credentials, headers and cookies are then
    /// the transport's business).
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Sees every reply body that parsed as Bayeux, verbatim, before its messages are
    /// delivered: the hook for recording fixtures. If it fails, the client stops with
    /// [`Error::Io`] rather than lose what it could not record.
    ///
    /// With a tap set, each reply body is collected whole before it is handled (so that it
    /// can be recorded verbatim); without one, replies are handled message by message as
    /// they arrive, and a large reply is never held in memory at once.
    pub fn on_reply(
        mut self,
        tap: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Self {
        self.tap = Some(Box::new(tap));
        self
    }

    /// Starts the driver task on the current Tokio runtime and returns the handle.
    ///
    /// Fails on an invalid URL or header. Must be called inside a Tokio runtime.
    pub fn build(self) -> Result<Client> {
        let transport: Arc<dyn Transport> = match self.transport {
            Some(t) => t,
            None => {
                let mut headers = HeaderMap::new();
                for (name, value) in &self.headers {
                    let n = HeaderName::try_from(name.as_str()).map_err(|e| Error::InvalidUrl {
                        url: self.url.clone(),
                        reason: format!("invalid header name {name:?}: {e}"),
                    })?;
                    let mut v =
                        HeaderValue::try_from(value.as_str()).map_err(|_| Error::InvalidUrl {
                            url: self.url.clone(),
                            reason: format!("invalid value for header {name:?}"),
                        })?;
                    v.set_sensitive(true);
                    headers.append(n, v);
                }
                Arc::new(HttpTransport::new(HttpTransportConfig {
                    url: self.url,
                    basic_auth: self.basic_auth,
                    headers,
                    shared_headers: self.shared_headers,
                    cookie_jar: self.cookie_jar,
                    http_client: self.http_client,
                    max_reply_bytes: self.max_reply_bytes,
                })?)
            }
        };
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (events, first_events) = broadcast::channel(64);
        let endpoint: Arc<str> = transport.endpoint().into();
        let driver = Driver {
            session: Session::new(self.session, Instant::now().into_std()),
            transport,
            endpoint: endpoint.clone(),
            commands,
            commands_open: true,
            events: events.clone(),
            subscribers: Vec::new(),
            in_flight: Vec::new(),
            publishes: HashMap::new(),
            disconnect_waiters: Vec::new(),
            next_flight: 0,
            tap: self.tap,
            pending_error: None,
        };
        tokio::spawn(driver.run());
        Ok(Client {
            inner: Arc::new(Shared {
                commands: commands_tx,
                events,
                first_events: std::sync::Mutex::new(Some(first_events)),
                endpoint,
                buffer: self.buffer,
            }),
        })
    }
}

/// A handle on one Bayeux session. Clones share the session; when the last clone is dropped
/// the client disconnects and its driver stops.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<ClientEvent>,
    /// Subscribed at build time, so the first caller of `events()` sees every event.
    first_events: std::sync::Mutex<Option<broadcast::Receiver<ClientEvent>>>,
    endpoint: Arc<str>,
    buffer: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

enum Command {
    Subscribe {
        id: u64,
        patterns: Vec<ChannelName>,
        tx: mpsc::Sender<Message>,
    },
    DropSubscriber {
        id: u64,
    },
    Publish {
        channel: ChannelName,
        data: Box<RawValue>,
        done: oneshot::Sender<Result<()>>,
    },
    Disconnect {
        done: oneshot::Sender<()>,
    },
}

impl Client {
    /// A builder for `url`; see [`ClientBuilder`].
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// The endpoint URL, without credentials.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Session events. The first call sees every event since [`ClientBuilder::build`];
    /// later calls see events from the moment of the call.
    pub fn events(&self) -> EventStream {
        let first = self
            .inner
            .first_events
            .lock()
            .ok()
            .and_then(|mut f| f.take());
        let rx = first.unwrap_or_else(|| self.inner.events.subscribe());
        EventStream {
            inner: tokio_stream_broadcast(rx),
        }
    }

    /// Subscribes to `channel` (`*` and `**` patterns allowed) and returns the stream of its
    /// messages. The subscription is desired state: it is restored after every
    /// re-handshake; its outcomes arrive on [`events`](Self::events). Dropping the stream
    /// unsubscribes.
    pub fn subscribe(&self, channel: &str) -> Result<Subscriber> {
        self.subscribe_all([channel])
    }

    /// Subscribes to several channels with one stream; a message matching several of them
    /// is yielded once.
    pub fn subscribe_all<I, S>(&self, channels: I) -> Result<Subscriber>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = channels
            .into_iter()
            .map(|c| ChannelName::new(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::channel(self.inner.buffer);
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .commands
            .send(Command::Subscribe { id, patterns, tx })
            .map_err(|_| Error::Closed)?;
        Ok(Subscriber {
            id,
            rx,
            commands: self.inner.commands.clone(),
        })
    }

    /// Like [`subscribe`](Self::subscribe), decoding each message's `data` as `T`.
    pub fn subscribe_typed<T: DeserializeOwned>(
        &self,
        channel: &str,
    ) -> Result<TypedSubscriber<T>> {
        Ok(TypedSubscriber {
            inner: self.subscribe(channel)?,
            _t: std::marker::PhantomData,
        })
    }

    /// Publishes `data` on `channel` and waits for the server's acknowledgement.
    pub async fn publish<T: Serialize + ?Sized>(&self, channel: &str, data: &T) -> Result<()> {
        let channel = ChannelName::new(channel)?;
        let data = serde_json::value::to_raw_value(data).map_err(|e| Error::Decode {
            channel: channel.to_string(),
            message: format!("cannot encode the data to publish: {e}"),
        })?;
        let (done, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Publish {
                channel,
                data,
                done,
            })
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Sends `/meta/disconnect` and waits until the driver has stopped (bounded by the
    /// request deadline). Streams of this client end.
    pub async fn disconnect(&self) {
        let (done, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Disconnect { done })
            .is_ok()
        {
            let _ = rx.await;
        }
    }
}

fn tokio_stream_broadcast(
    mut rx: broadcast::Receiver<ClientEvent>,
) -> Pin<Box<dyn Stream<Item = ClientEvent> + Send>> {
    Box::pin(async_stream::stream! {
        loop {
            match rx.recv().await {
                Ok(ev) => yield ev,
                Err(broadcast::error::RecvError::Lagged(missed)) => yield ClientEvent::Lagged { missed },
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

/// The stream of [`ClientEvent`]s; it ends after [`ClientEvent::Terminated`].
pub struct EventStream {
    inner: Pin<Box<dyn Stream<Item = ClientEvent> + Send>>,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventStream")
    }
}

impl Stream for EventStream {
    type Item = ClientEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The messages of one subscription, in arrival order. Ends when the client stops.
pub struct Subscriber {
    id: u64,
    rx: mpsc::Receiver<Message>,
    commands: mpsc::UnboundedSender<Command>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("id", &self.id).finish()
    }
}

impl Subscriber {
    /// The next message if one is already buffered, without waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_recv().ok()
    }
}

impl Stream for Subscriber {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::DropSubscriber { id: self.id });
    }
}

/// A [`Subscriber`] whose items are decoded as `T`. A message that does not decode is
/// yielded as [`Error::Decode`] naming the channel; the stream goes on.
pub struct TypedSubscriber<T> {
    inner: Subscriber,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for TypedSubscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: DeserializeOwned> Stream for TypedSubscriber<T> {
    type Item = Result<T>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.inner.poll_next_unpin(cx).map(|m| m.map(decode_data))
    }
}

/// Decodes a data message's `data` as `T`.
pub fn decode_data<T: DeserializeOwned>(m: Message) -> Result<T> {
    let raw = m.data.as_deref().map_or("null", RawValue::get);
    serde_json::from_str(raw).map_err(|e| Error::Decode {
        channel: m.channel.clone(),
        message: e.to_string(),
    })
}

struct LocalSubscriber {
    id: u64,
    patterns: Vec<ChannelName>,
    tx: mpsc::Sender<Message>,
}

/// A request in flight and what its reply carried so far.
struct Flight {
    id: RequestId,
    reader: ReplyReader,
    /// Messages for the session (meta replies, publish acknowledgements), handed over when
    /// the body is complete.
    metas: Vec<Message>,
    /// Elements of the reply seen so far.
    elements: usize,
}

/// Most elements handled in a row from one reply before commands get a turn.
const ELEMENT_BUDGET: usize = 256;

/// Polls every flight; the first with progress wins, starting after the last winner.
fn poll_flights(
    flights: &mut [Flight],
    start: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<(usize, Progress)> {
    let n = flights.len();
    for k in (0..n).map(|i| (*start + i) % n) {
        if let Poll::Ready(p) = flights[k].reader.poll_progress(cx) {
            *start = k + 1;
            return Poll::Ready((k, p));
        }
    }
    Poll::Pending
}

/// Data messages go to subscribers as they arrive; everything else (meta replies, and
/// publish acknowledgements, which carry `successful`) is the session's.
fn is_plain_data(m: &Message) -> bool {
    !m.is_meta() && m.successful.is_none()
}

struct Driver {
    session: Session,
    transport: Arc<dyn Transport>,
    endpoint: Arc<str>,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_open: bool,
    events: broadcast::Sender<ClientEvent>,
    subscribers: Vec<LocalSubscriber>,
    in_flight: Vec<Flight>,
    /// Where `poll_flights` starts, for fairness between the two requests.
    next_flight: usize,
    publishes: HashMap<u64, (ChannelName, oneshot::Sender<Result<()>>)>,
    disconnect_waiters: Vec<oneshot::Sender<()>>,
    tap: Option<ReplyTap>,
    /// An error of the client's own (not the session's) that ends it.
    pending_error: Option<Error>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            if let Some(error) = self.drain_events().await {
                self.finish(error);
                return;
            }
            let now = Instant::now();
            while let Some(req) = self.session.poll_request(now.into_std()) {
                self.start(req);
            }
            // Requests may have produced events (e.g. a publish refused before sending).
            if let Some(error) = self.drain_events().await {
                self.finish(error);
                return;
            }
            let wake = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                cmd = self.commands.recv(), if self.commands_open => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => {
                        // Every handle is gone: nobody can read more messages.
                        self.commands_open = false;
                        self.session.disconnect();
                    }
                },
                (k, progress) = std::future::poll_fn(|cx| {
                    poll_flights(&mut self.in_flight, &mut self.next_flight, cx)
                }), if !self.in_flight.is_empty() => {
                    self.progress(k, progress).await;
                }
                _ = sleep_until_opt(wake) => {}
            }
        }
    }

    fn start(&mut self, req: Request) {
        let body = Message::encode_batch(&req.messages);
        tracing::trace!(request = ?req.id, slot = ?req.slot, messages = req.messages.len(), "sending");
        let send = self.transport.send(body);
        let deadline = Instant::from_std(req.deadline);
        self.in_flight.push(Flight {
            id: req.id,
            reader: ReplyReader::new(send, deadline, self.tap.is_some()),
            metas: Vec::new(),
            elements: 0,
        });
    }

    /// Handles progress of flight `k`, then whatever more of the same reply is already
    /// there (up to a budget, so commands are not starved).
    async fn progress(&mut self, k: usize, mut progress: Progress) {
        for _ in 1..ELEMENT_BUDGET {
            if !self.handle_progress(k, progress).await {
                return;
            }
            // Only ask for more when it will be handled: an element taken is never dropped.
            let flight = &mut self.in_flight[k];
            match std::future::poll_fn(|cx| Poll::Ready(flight.reader.poll_progress(cx))).await {
                Poll::Ready(p) => progress = p,
                Poll::Pending => return,
            }
        }
        self.handle_progress(k, progress).await;
    }

    /// Returns whether flight `k` is still in flight.
    async fn handle_progress(&mut self, k: usize, progress: Progress) -> bool {
        let now = Instant::now().into_std();
        match progress {
            Progress::Element(bytes) => {
                let flight = &mut self.in_flight[k];
                flight.elements += 1;
                match serde_json::from_slice::<Message>(&bytes) {
                    Ok(m) if is_plain_data(&m) => {
                        if self.session.delivers_data() {
                            self.dispatch(m).await;
                        }
                    }
                    Ok(m) => flight.metas.push(m),
                    Err(e) => {
                        let n = flight.elements;
                        let flight = self.in_flight.remove(k);
                        let excerpt: String =
                            String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into();
                        let failure = Failure::Malformed(format!(
                            "message {n} of the reply: {e} (it starts {excerpt:?})"
                        ));
                        tracing::debug!(endpoint = %self.endpoint, ?failure, "request failed");
                        self.session.handle_failure(flight.id, failure, now);
                        return false;
                    }
                }
                true
            }
            Progress::End => {
                let flight = self.in_flight.remove(k);
                self.session.handle_reply(flight.id, flight.metas, now);
                false
            }
            Progress::Whole(body) => {
                let flight = self.in_flight.remove(k);
                self.complete_whole(flight.id, body, now);
                false
            }
            Progress::Failed(failure) => {
                let flight = self.in_flight.remove(k);
                tracing::debug!(endpoint = %self.endpoint, ?failure, "request failed");
                self.session.handle_failure(flight.id, failure, now);
                false
            }
        }
    }

    /// A whole reply body (recording mode): parsed, recorded, then handled.
    fn complete_whole(&mut self, id: RequestId, body: bytes::Bytes, now: std::time::Instant) {
        match Message::parse_batch(&body) {
            Ok(messages) => {
                if let Some(tap) = &mut self.tap {
                    if let Err(e) = tap(&body) {
                        self.fail_tap(e);
                        return;
                    }
                }
                self.session.handle_reply(id, messages, now);
            }
            Err(e) => {
                let excerpt: String = String::from_utf8_lossy(&body[..body.len().min(80)]).into();
                self.session.handle_failure(
                    id,
                    Failure::Malformed(format!("{e} (reply starts {excerpt:?})")),
                    now,
                );
            }
        }
    }

    /// A reply that could not be recorded stops the client: recording is asked for
    /// because every message matters.
    fn fail_tap(&mut self, e: std::io::Error) {
        let error = Error::Io {
            context: "recording a reply".into(),
            source: e,
        };
        tracing::error!("{error}");
        self.tap = None;
        self.pending_error = Some(error);
        self.session.disconnect();
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Subscribe { id, patterns, tx } => {
                for p in &patterns {
                    self.session.subscribe(p.clone());
                }
                self.subscribers.push(LocalSubscriber { id, patterns, tx });
            }
            Command::DropSubscriber { id } => self.remove_subscriber(id),
            Command::Publish {
                channel,
                data,
                done,
            } => {
                let pid = self.session.publish(channel.clone(), data);
                self.publishes.insert(pid, (channel, done));
            }
            Command::Disconnect { done } => {
                self.disconnect_waiters.push(done);
                self.session.disconnect();
            }
        }
    }

    fn remove_subscriber(&mut self, id: u64) {
        let Some(pos) = self.subscribers.iter().position(|s| s.id == id) else {
            return;
        };
        let gone = self.subscribers.swap_remove(pos);
        for p in gone.patterns {
            if !self.subscribers.iter().any(|s| s.patterns.contains(&p)) {
                self.session.unsubscribe(&p);
            }
        }
    }

    /// Handles every pending session event. Returns the termination error, if the session
    /// ended.
    async fn drain_events(&mut self) -> Option<Error> {
        while let Some(event) = self.session.poll_event() {
            let client_event = match event {
                Event::Message(m) => {
                    self.dispatch(m).await;
                    continue;
                }
                Event::PublishAck {
                    publish_id,
                    successful,
                    error,
                } => {
                    if let Some((channel, done)) = self.publishes.remove(&publish_id) {
                        let _ = done.send(if successful {
                            Ok(())
                        } else {
                            Err(Error::PublishRefused {
                                channel: channel.to_string(),
                                error: error.unwrap_or_else(|| "no reason given".into()),
                            })
                        });
                    }
                    continue;
                }
                Event::Disconnected => {
                    tracing::info!("disconnected");
                    continue;
                }
                Event::Terminated { reason } => {
                    return Some(
                        self.pending_error
                            .take()
                            .unwrap_or_else(|| self.termination_error(reason)),
                    );
                }
                Event::Handshaken { client_id } => {
                    tracing::info!("handshaken");
                    ClientEvent::Handshaken { client_id }
                }
                Event::Rehandshaken { client_id } => {
                    tracing::warn!(
                        "re-handshaken: messages published meanwhile may have been missed"
                    );
                    ClientEvent::Rehandshaken { client_id }
                }
                Event::HandshakeFailed {
                    attempt,
                    reason,
                    retry_in,
                } => {
                    tracing::warn!(attempt, ?retry_in, "handshake failed: {reason}");
                    ClientEvent::HandshakeFailed {
                        attempt,
                        reason,
                        retry_in,
                    }
                }
                Event::Connected => {
                    tracing::info!("connected");
                    ClientEvent::Connected
                }
                Event::ConnectionLost { reason } => {
                    tracing::warn!("connection lost: {reason}");
                    ClientEvent::ConnectionLost { reason }
                }
                Event::Subscribed { channel } => {
                    tracing::info!(%channel, "subscribed");
                    ClientEvent::Subscribed { channel }
                }
                Event::SubscriptionDenied { channel, error } => {
                    tracing::warn!(%channel, "subscription denied: {error}");
                    ClientEvent::SubscriptionDenied { channel, error }
                }
                Event::Unsubscribed { channel } => {
                    tracing::debug!(%channel, "unsubscribed");
                    ClientEvent::Unsubscribed { channel }
                }
            };
            let _ = self.events.send(client_event);
        }
        None
    }

    /// Hands `m` to every local subscriber with a matching pattern, waiting for buffer room
    /// (backpressure). Subscribers whose stream was dropped are removed.
    async fn dispatch(&mut self, m: Message) {
        let mut matching = self
            .subscribers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.patterns.iter().any(|p| p.matches(&m.channel)))
            .map(|(i, _)| i);
        // One subscriber is the common case: no list of targets to build.
        let (first, second) = (matching.next(), matching.next());
        let targets: Vec<usize> = match (first, second) {
            (None, _) => {
                tracing::debug!(channel = %m.channel, "message for no local subscriber");
                return;
            }
            (Some(i), None) => {
                if !send(&self.subscribers[i].tx, m).await {
                    let id = self.subscribers[i].id;
                    self.remove_subscriber(id);
                }
                return;
            }
            (Some(a), Some(b)) => [a, b].into_iter().chain(matching).collect(),
        };
        let mut closed = Vec::new();
        let mut m = Some(m);
        for (n, &i) in targets.iter().enumerate() {
            let msg = if n + 1 == targets.len() {
                m.take()
            } else {
                m.clone()
            };
            let Some(msg) = msg else { break };
            if !send(&self.subscribers[i].tx, msg).await {
                closed.push(self.subscribers[i].id);
            }
        }
        for id in closed {
            self.remove_subscriber(id);
        }
    }

    fn termination_error(&self, reason: Termination) -> Error {
        let url = self.endpoint.to_string();
        match reason {
            Termination::ReconnectNone { error } => Error::ReconnectNone { reason: error },
            Termination::HandshakeRefused { error } => Error::HandshakeRefused(error),
            Termination::Unreachable {
                attempts,
                last_error,
            } => Error::Unreachable {
                url,
                attempts,
                last_error,
            },
            Termination::Unauthorized { status } => Error::Unauthorized {
                url,
                status,
                hint: "the server refused the credentials: check the user name and password".into(),
            },
            Termination::Disconnected => Error::Closed,
        }
    }

    fn finish(mut self, error: Error) {
        match &error {
            Error::Closed => tracing::debug!("client stopped"),
            e => tracing::error!("client stopped: {e}"),
        }
        let error = Arc::new(error);
        for (_, (_, done)) in self.publishes.drain() {
            let _ = done.send(Err(Error::Closed));
        }
        let _ = self.events.send(ClientEvent::Terminated { error });
        for w in self.disconnect_waiters.drain(..) {
            let _ = w.send(());
        }
        // Dropping the senders ends every subscriber stream.
        self.subscribers.clear();
    }
}

/// Hands `m` to a subscriber, waiting for room when its buffer is full. False when the
/// subscriber is gone.
async fn send(tx: &mpsc::Sender<Message>, m: Message) -> bool {
    match tx.try_send(m) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(m)) => tx.send(m).await.is_ok(),
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
