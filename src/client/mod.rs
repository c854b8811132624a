//! The asynchronous client: a cloneable [`Client`] handle talking to one driver task.
//!
//! The driver owns the Bayeux session state machine (crate-private, in `bayeux::session`)
//! and the [`Transport`], and only does I/O and timers: it hands the session each part of
//! each reply and does what the session's verdict says. Local
//! subscribers are registered with the driver; the Bayeux subscriptions they need are
//! desired state in the session, restored after every re-handshake.
//!
//! Backpressure: each subscriber has a bounded buffer. When one is full the driver waits for
//! room before it handles anything else, so the next long poll is not sent and memory stays
//! bounded; nothing is dropped.
//!
//! Replies are handled as they arrive: each message of a reply batch is parsed as soon as
//! its bytes are complete and data messages go to subscribers at once, so even a reply of
//! megabytes is never held whole (unless replies are recorded, see
//! [`ClientBuilder::on_reply`]); memory is bounded per message
//! ([`ClientBuilder::max_message_bytes`]). Time spent waiting for a full subscriber does not
//! count against the request's deadline. A subscriber that stops reading stops the long
//! poll: once that lasts longer than the server's `maxInterval` (10 s on a default CometD
//! server), the server drops the session, and what it published meanwhile is lost (a
//! re-handshake and a gap follow). [`CallFeed`](crate::gws::CallFeed) avoids that by
//! coalescing per call instead.
//!
//! Each moment messages may have been lost is a
//! [`SessionEvent::Gap`]: a re-handshake, a reply lost or
//! cut after its request was sent (unless the server redelivers it: the acknowledged-messages
//! extension, asked for by default), an error reply to a connect, a message over the size
//! limit. What a subscriber already got is never handed to it again.
//!
//! | module | what it is |
//! |---|---|
//! | `builder` | [`ClientBuilder`]: transport, timing, buffers, the reply tap |
//! | `driver` | the task that runs the session: requests, replies, timers, dispatch |
//! | `reply` | one request in flight, read element by element under its deadline |

mod builder;
mod driver;
mod reply;

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use self::builder::ClientBuilder;
use crate::bayeux::{ChannelName, Message, SessionEvent};
use crate::error::{Error, Result};
use crate::transport::Transport;

/// Called with every reply body that parsed as Bayeux, before its messages are handled.
/// An error stops the client (see [`ClientBuilder::on_reply`]).
pub type ReplyTap = Box<dyn FnMut(&[u8]) -> std::io::Result<()> + Send>;

/// Default capacity of a subscriber's buffer, in messages.
pub const DEFAULT_BUFFER: usize = 1024;

/// Default limit on one message: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Commands queued for the driver at most; senders wait for room beyond it.
const COMMAND_BUFFER: usize = 64;

/// What happens to the client, for services that must know when they may have missed
/// messages.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Something happened to the Bayeux session: handshakes, connects, outages,
    /// subscription outcomes.
    Session(SessionEvent),
    /// This event receiver fell behind and lost `missed` events (events only; messages are
    /// never dropped).
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
    /// The client stopped for good. `error` is [`Error::Closed`] after a requested
    /// disconnect.
    Terminated {
        /// Why.
        error: Arc<Error>,
    },
}

/// A handle on one Bayeux session. Clones share the session; when the last clone is dropped
/// the client disconnects and its driver stops.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<ClientEvent>,
    /// Subscribed at build time, so the first caller of `events()` sees every event.
    first_events: std::sync::Mutex<Option<broadcast::Receiver<ClientEvent>>>,
    endpoint: Arc<str>,
    buffer: usize,
    next_subscriber: AtomicU64,
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
        tx: mpsc::Sender<Box<Message>>,
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
    /// A builder for the HTTP Bayeux endpoint `url` (e.g. `http://127.0.0.1:8080/cometd`)
    /// with the default HTTP settings. For credentials, headers or a shared cookie jar,
    /// build an [`HttpTransport`](crate::transport::HttpTransport) and use
    /// [`ClientBuilder::new`].
    pub fn builder(url: impl AsRef<str>) -> ClientBuilder {
        ClientBuilder::http(url.as_ref())
    }

    /// A builder for a client sending through `transport`.
    pub fn with_transport(transport: impl Transport) -> ClientBuilder {
        ClientBuilder::new(transport)
    }

    /// The endpoint URL, without credentials.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Client events. The first call sees every event since [`ClientBuilder::build`];
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
            inner: broadcast_stream(rx),
        }
    }

    /// Subscribes to `channel` (`*` and `**` patterns allowed) and returns the stream of its
    /// messages. The subscription is desired state: it is restored after every
    /// re-handshake; its outcomes arrive on [`events`](Self::events). Dropping the stream
    /// unsubscribes.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscriber> {
        self.subscribe_all([channel]).await
    }

    /// Subscribes to several channels with one stream; a message matching several of them
    /// is yielded once.
    pub async fn subscribe_all<I, S>(&self, channels: I) -> Result<Subscriber>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = channels
            .into_iter()
            .map(|c| ChannelName::new(c.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let (tx, rx) = mpsc::channel(self.inner.buffer);
        let id = self.inner.next_subscriber.fetch_add(1, Ordering::Relaxed);
        self.send(Command::Subscribe { id, patterns, tx }).await?;
        Ok(Subscriber {
            id,
            rx,
            commands: self.inner.commands.clone(),
        })
    }

    /// Like [`subscribe`](Self::subscribe), decoding each message's `data` as `T`.
    pub async fn subscribe_typed<T: DeserializeOwned>(
        &self,
        channel: &str,
    ) -> Result<TypedSubscriber<T>> {
        Ok(TypedSubscriber {
            inner: self.subscribe(channel).await?,
            _t: std::marker::PhantomData,
        })
    }

    /// Publishes `data` on `channel` and waits for the server's acknowledgement.
    pub async fn publish<T: Serialize + ?Sized>(&self, channel: &str, data: &T) -> Result<()> {
        let channel = ChannelName::new(channel)?;
        let data = serde_json::value::to_raw_value(data).map_err(|source| Error::Decode {
            channel: channel.to_string(),
            source,
        })?;
        let (done, rx) = oneshot::channel();
        self.send(Command::Publish {
            channel,
            data,
            done,
        })
        .await?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Sends `/meta/disconnect` and waits until the driver has stopped (bounded by the
    /// request deadline). Streams of this client end.
    pub async fn disconnect(&self) {
        let (done, rx) = oneshot::channel();
        if self.send(Command::Disconnect { done }).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| Error::Closed)
    }
}

fn broadcast_stream(
    mut rx: broadcast::Receiver<ClientEvent>,
) -> Pin<Box<dyn Stream<Item = ClientEvent> + Send + Sync>> {
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
    inner: Pin<Box<dyn Stream<Item = ClientEvent> + Send + Sync>>,
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
    /// Boxed: the channel's blocks hold 32 slots each, and a `Message` is large.
    rx: mpsc::Receiver<Box<Message>>,
    commands: mpsc::Sender<Command>,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("id", &self.id).finish()
    }
}

impl Subscriber {
    /// The next message if one is already buffered, without waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.rx.try_recv().ok().map(|m| *m)
    }
}

impl Stream for Subscriber {
    type Item = Message;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.rx.poll_recv(cx).map(|m| m.map(|m| *m))
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Best effort: when the queue is full the driver finds the closed stream itself.
        let _ = self
            .commands
            .try_send(Command::DropSubscriber { id: self.id });
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
fn decode_data<T: DeserializeOwned>(m: Message) -> Result<T> {
    let raw = m.data.as_deref().map_or("null", RawValue::get);
    serde_json::from_str(raw).map_err(|source| Error::Decode {
        channel: m.channel.clone(),
        source,
    })
}
