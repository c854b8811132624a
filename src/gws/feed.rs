//! [`CallFeed`]: follow one agent's calls on GWS, with a [`CallStore`] that is never left stale.
//!
//! The feed logs in with [`GwsSession`], connects the Bayeux client to
//! `{base}/api/v2/notifications` sharing the session's cookies and CSRF header, subscribes
//! `/v2/me/calls` (and `/v2/me/devices` on request) and applies every call notification to
//! its store.
//!
//! Recovery: after a re-handshake, notifications published in between are lost. Once
//! `/v2/me/calls` is subscribed again the feed reads `GET /api/v2/me/calls?fields=*`,
//! reconciles the store (a change for each call that differs, calls that vanished are
//! ended) and yields [`FeedEvent::Recovered`]. When the HTTP session itself has expired
//! (the notification client is refused with 401/403), the feed logs in again, reconnects
//! and recovers the same way.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};

use super::model::{DeviceStateChangeMessage, ErrorMessage};
use super::rest::{Credentials, GwsSession};
use super::store::{CallChange, CallStore};
use super::wire::{self, Notification, CALLS_CHANNEL, DEVICES_CHANNEL};
use crate::bayeux::backoff::Backoff;
use crate::bayeux::{BackoffConfig, Message, SessionEvent};
use crate::client::{ClientBuilder, ClientEvent, EventStream, ReplyTap, Subscriber};
use crate::error::{Error, Result};
use crate::transport::HttpTransport;
use crate::Client;

/// What the feed yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum FeedEvent {
    /// A call notification, and what it changed in the store (`None`: nothing). The typed
    /// notification is read from `raw` when asked for:
    /// [`CallStateChangeMessage::from_message`](crate::gws::CallStateChangeMessage::from_message).
    Call {
        /// The Bayeux message as received (its `data` byte for byte).
        raw: Message,
        /// Its effect on the store.
        change: Option<CallChange>,
    },
    /// A device notification (`/v2/me/devices`).
    Device {
        /// The Bayeux message as received.
        raw: Message,
        /// The decoded notification.
        message: Box<DeviceStateChangeMessage>,
    },
    /// A GWS `ErrorMessage` (e.g. a voice operation that failed).
    GwsError {
        /// The Bayeux message as received.
        raw: Message,
        /// The decoded notification.
        message: Box<ErrorMessage>,
    },
    /// A data message of another `messageType`, or one that could not be decoded (`error`
    /// says why; the store is unchanged and the feed goes on).
    Other {
        /// The Bayeux message as received.
        raw: Message,
        /// Why it could not be decoded, when that is the reason it is here.
        error: Option<Arc<Error>>,
    },
    /// The session was lost and restored; the store was reconciled with the server's current
    /// calls. `changes` holds what differed, including calls that ended meanwhile.
    Recovered {
        /// What the reconciliation changed.
        changes: Vec<CallChange>,
    },
    /// Reading the server's calls after a re-handshake failed; the store may be stale until
    /// the next notification of each call. The feed goes on.
    RecoveryFailed(Arc<Error>),
    /// The HTTP session had expired; the feed logged in again and reconciled the store
    /// (`changes` as in [`FeedEvent::Recovered`]).
    LoggedInAgain {
        /// What the reconciliation changed.
        changes: Vec<CallChange>,
    },
    /// A session event of the underlying Bayeux client.
    Session(ClientEvent),
}

impl FeedEvent {
    /// The Bayeux message behind a notification event.
    pub fn raw(&self) -> Option<&Message> {
        match self {
            FeedEvent::Call { raw, .. }
            | FeedEvent::Device { raw, .. }
            | FeedEvent::GwsError { raw, .. }
            | FeedEvent::Other { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

/// The reply tap, shared by the notification clients the feed opens over its life.
type SharedTap = Arc<Mutex<ReplyTap>>;

/// Configures a [`CallFeed`].
pub struct CallFeedBuilder {
    base_url: String,
    credentials: Credentials,
    devices: bool,
    max_network_delay: Duration,
    initial_handshake_attempts: Option<u32>,
    tap: Option<SharedTap>,
}

impl std::fmt::Debug for CallFeedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFeedBuilder")
            .field("base_url", &self.base_url)
            .field("credentials", &self.credentials)
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

impl CallFeedBuilder {
    /// Also subscribe `/v2/me/devices`.
    pub fn devices(mut self, yes: bool) -> Self {
        self.devices = yes;
        self
    }

    /// See [`ClientBuilder::max_network_delay`](crate::ClientBuilder::max_network_delay).
    pub fn max_network_delay(mut self, delay: Duration) -> Self {
        self.max_network_delay = delay;
        self
    }

    /// See
    /// [`ClientBuilder::initial_handshake_attempts`](crate::ClientBuilder::initial_handshake_attempts).
    pub fn initial_handshake_attempts(mut self, attempts: Option<u32>) -> Self {
        self.initial_handshake_attempts = attempts;
        self
    }

    /// Sees every notification reply body verbatim; see
    /// [`ClientBuilder::on_reply`](crate::ClientBuilder::on_reply). Used to record fixtures.
    pub fn on_reply(
        mut self,
        tap: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Self {
        self.tap = Some(Arc::new(Mutex::new(Box::new(tap))));
        self
    }

    /// Logs in and connects. Fails on a bad URL, wrong credentials or an unreachable server.
    pub async fn connect(self) -> Result<CallFeed> {
        let session = GwsSession::new(&self.base_url, self.credentials)?;
        session.login().await?;
        let mut feed = CallFeed {
            session,
            store: Arc::new(Mutex::new(CallStore::new())),
            devices: self.devices,
            max_network_delay: self.max_network_delay,
            initial_handshake_attempts: self.initial_handshake_attempts,
            tap: self.tap,
            conn: None,
        };
        feed.conn = Some(feed.open(feed.initial_handshake_attempts).await?);
        Ok(feed)
    }
}

struct Connection {
    client: Client,
    events: EventStream,
    messages: Subscriber,
    /// False once the message stream ended (the client stopped; its event says why).
    messages_open: bool,
}

/// Follows one agent's calls. See the [module docs](self).
pub struct CallFeed {
    session: GwsSession,
    store: Arc<Mutex<CallStore>>,
    devices: bool,
    max_network_delay: Duration,
    initial_handshake_attempts: Option<u32>,
    tap: Option<SharedTap>,
    conn: Option<Connection>,
}

impl std::fmt::Debug for CallFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFeed")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl CallFeed {
    /// A builder for the GWS at `base_url` (e.g. `https://gws.example:8090`).
    pub fn builder(base_url: impl Into<String>, credentials: Credentials) -> CallFeedBuilder {
        CallFeedBuilder {
            base_url: base_url.into(),
            credentials,
            devices: false,
            max_network_delay: Duration::from_secs(10),
            initial_handshake_attempts: Some(3),
            tap: None,
        }
    }

    /// The REST session, for user-data operations.
    pub fn session(&self) -> &GwsSession {
        &self.session
    }

    /// The store. Lock it briefly: the feed applies notifications under the same lock.
    pub fn store(&self) -> MutexGuard<'_, CallStore> {
        lock(&self.store)
    }

    /// A handle on the store that outlives borrows of the feed.
    pub fn store_handle(&self) -> Arc<Mutex<CallStore>> {
        self.store.clone()
    }

    /// A notification client; `handshake_attempts` bounds its first handshake.
    async fn open(&self, handshake_attempts: Option<u32>) -> Result<Connection> {
        let transport = HttpTransport::builder(self.session.notifications_url())
            .http_client(self.session.http_client())
            .cookies(self.session.cookies())
            .shared_headers(self.session.csrf_headers())
            .build()?;
        let mut builder = ClientBuilder::new(transport)
            .max_network_delay(self.max_network_delay)
            .initial_handshake_attempts(handshake_attempts);
        if let Some(tap) = &self.tap {
            let tap = tap.clone();
            builder = builder.on_reply(move |body| {
                let mut tap = tap.lock().unwrap_or_else(|p| p.into_inner());
                (*tap)(body)
            });
        }
        let client = builder.build()?;
        let events = client.events();
        let mut channels = vec![CALLS_CHANNEL];
        if self.devices {
            channels.push(DEVICES_CHANNEL);
        }
        let messages = client.subscribe_all(channels).await?;
        Ok(Connection {
            client,
            events,
            messages,
            messages_open: true,
        })
    }

    /// Disconnects the notification client.
    pub async fn disconnect(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.client.disconnect().await;
        }
    }

    /// The next event. `None` once the feed has ended (after [`disconnect`](Self::disconnect)
    /// or a fatal error, which is yielded first as `Session(Terminated)`).
    pub async fn next(&mut self) -> Option<FeedEvent> {
        loop {
            let conn = self.conn.as_mut()?;
            tokio::select! {
                biased;
                m = conn.messages.next(), if conn.messages_open => {
                    match m {
                        Some(m) => return Some(self.on_message(m)),
                        None => conn.messages_open = false,
                    }
                }
                ev = conn.events.next() => {
                    let Some(ev) = ev else { self.conn = None; return None };
                    match self.on_event(ev).await {
                        Some(ev) => return Some(ev),
                        None => continue,
                    }
                }
            }
        }
    }

    /// This feed as a `Stream`.
    pub fn into_stream(self) -> impl Stream<Item = FeedEvent> {
        futures::stream::unfold(self, |mut feed| async move {
            let ev = feed.next().await?;
            Some((ev, feed))
        })
    }

    fn on_message(&mut self, raw: Message) -> FeedEvent {
        let change = match wire::decode(&raw) {
            Ok(Notification::Call(call)) => lock(&self.store)
                .apply(&call, Instant::now())
                .map(|applied| applied.change()),
            Ok(Notification::Device(text)) => {
                let message = Box::new(DeviceStateChangeMessage::read(text));
                return FeedEvent::Device { raw, message };
            }
            Ok(Notification::Error(text)) => {
                let message = Box::new(ErrorMessage::read(text));
                return FeedEvent::GwsError { raw, message };
            }
            Ok(Notification::Other) => return FeedEvent::Other { raw, error: None },
            Err(source) => {
                let error = Error::Notification {
                    channel: raw.channel.clone(),
                    source,
                };
                tracing::warn!("{error}");
                return FeedEvent::Other {
                    raw,
                    error: Some(Arc::new(error)),
                };
            }
        };
        FeedEvent::Call { raw, change }
    }

    async fn on_event(&mut self, ev: ClientEvent) -> Option<FeedEvent> {
        match ev {
            ClientEvent::Session(SessionEvent::Rehandshaken { .. }) => {
                if let Some(conn) = &mut self.conn {
                    // Recover once the calls channel is subscribed again, so nothing
                    // published after the snapshot is missed.
                    if let Err(error) = wait_subscribed(&mut conn.events).await {
                        return Some(self.on_terminated(error).await);
                    }
                }
                Some(self.recover().await)
            }
            ClientEvent::Terminated { error } => Some(self.on_terminated(error).await),
            ev => Some(FeedEvent::Session(ev)),
        }
    }

    /// The notification client stopped. A refusal (401/403: the HTTP session expired) means
    /// log in again, reconnect and recover; anything else ends the feed.
    async fn on_terminated(&mut self, error: Arc<Error>) -> FeedEvent {
        if !error.is_auth() {
            return self.end(error);
        }
        tracing::warn!("notifications refused ({error}); logging in again");
        if let Err(e) = login_again(&self.session).await {
            return self.end(Arc::new(e));
        }
        // The server was there before: keep trying its handshake like any other outage.
        let mut conn = match self.open(None).await {
            Ok(conn) => conn,
            Err(e) => return self.end(Arc::new(e)),
        };
        // A client refused again right after a fresh login ends the feed rather than
        // looping through logins.
        let subscribed = wait_subscribed(&mut conn.events).await;
        self.conn = Some(conn);
        if let Err(error) = subscribed {
            return self.end(error);
        }
        match self.recover().await {
            FeedEvent::Recovered { changes } => {
                tracing::info!(changed = changes.len(), "logged in again and recovered");
                FeedEvent::LoggedInAgain { changes }
            }
            other => other,
        }
    }

    fn end(&mut self, error: Arc<Error>) -> FeedEvent {
        self.conn = None;
        FeedEvent::Session(ClientEvent::Terminated { error })
    }

    /// Reads the server's current calls and reconciles the store with them.
    async fn recover(&mut self) -> FeedEvent {
        match self.session.calls().await {
            Ok(calls) => {
                let changes = lock(&self.store).reconcile(&calls, Instant::now());
                tracing::info!(
                    changed = changes.len(),
                    "store reconciled after re-handshake"
                );
                FeedEvent::Recovered { changes }
            }
            Err(e) => {
                tracing::warn!("could not read the current calls after a re-handshake: {e}");
                FeedEvent::RecoveryFailed(Arc::new(e.into()))
            }
        }
    }
}

/// Logs in again after the HTTP session expired. A transient failure (network, 5xx,
/// timeout) is retried with backoff for as long as it lasts; refused credentials end the
/// feed.
async fn login_again(session: &GwsSession) -> Result<()> {
    let mut backoff = Backoff::new(&BackoffConfig::default());
    loop {
        match session.login().await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() => {
                let delay = backoff.next_delay();
                tracing::warn!(retry_in = ?delay, "logging in again failed: {e}");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits until `/v2/me/calls` is subscribed. Other events in between are consumed (the
/// caller reports the recovery instead). Errs when the client stopped meanwhile.
async fn wait_subscribed(events: &mut EventStream) -> std::result::Result<(), Arc<Error>> {
    let wait = async {
        while let Some(ev) = events.next().await {
            match ev {
                ClientEvent::Session(SessionEvent::Subscribed { channel })
                    if channel.as_str() == CALLS_CHANNEL =>
                {
                    return Ok(())
                }
                ClientEvent::Terminated { error } => return Err(error),
                _ => {}
            }
        }
        Ok(())
    };
    // Bounded: recovery proceeds even if the confirmation never comes.
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or(Ok(()))
}

fn lock(store: &Mutex<CallStore>) -> MutexGuard<'_, CallStore> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}
