//! [`CallFeed`]: one agent's calls on GWS, with a [`CallStore`] kept true to the server.
//!
//! The feed logs in with [`GwsSession`], connects the Bayeux client to
//! `{base}/api/v2/notifications` sharing the session's cookies, pool and CSRF header,
//! subscribes `/v2/me/calls` (and `/v2/me/devices` on request) and applies every call
//! notification to its store, on a task of its own.
//!
//! The API generation is the feed's choice ([`CallFeedBuilder::api`]): on the Workspace API
//! v3 it logs in with OAuth, initializes the workspace, connects to
//! `{base}/workspace/v3/notifications`, subscribes `/workspace/v3/voice` and
//! `/workspace/v3/initialization`, and reads the calls from `current-session`; everything
//! below holds for both.
//!
//! # Keeping the store true
//!
//! - **Start from truth.** Once `/v2/me/calls` is subscribed, the feed reads
//!   `GET /api/v2/me/calls?fields=*` (and the devices when followed) and fills the store;
//!   [`CallFeedBuilder::connect`] returns once it has. Calls already in progress come as
//!   changes marked [`ChangeOrigin::CatchUp`]: they were already so; a later notification
//!   reports only what it changed.
//! - **Heal every gap.** Each moment messages may have been lost
//!   ([`FeedEvent::Gap`]: a re-handshake, a reply lost or cut, a message over the size limit)
//!   leads to one more read of the server's calls (bursts give one read; a failed read is
//!   retried with backoff). What differed comes as changes marked [`ChangeOrigin::Heal`],
//!   then [`FeedEvent::Healed`]. Calls a notification touched while the list was being read
//!   are left as the notification said: it is as new as the list, or newer.
//! - **Staleness is bounded and said.** From the first moment messages may have been
//!   withheld (a connect that failed: with the acknowledged-messages extension the server
//!   sends them again on the next connect) or lost (a gap), until the store is known complete
//!   again, the store may be stale: [`FeedEvent::Stale`] says so with since-when and what
//!   failed, [`FeedEvent::Fresh`] when it is over, one WARN and one INFO line per episode.
//!   Messages withheld for longer than [`CallFeedBuilder::staleness_bound`] (twice the max
//!   network delay by default) are a gap ([`GapCause::RedeliveryOverdue`]): the feed reads
//!   the server's calls, and again each time the bound passes while they stay withheld, so
//!   while the REST API answers the store trails the server by at most about the bound plus
//!   one read. With the extension it also starts a new session then: the server would
//!   otherwise replay the same growing batch after every cut, and a middlebox that always
//!   breaks a large reply would freeze the session for good.
//! - **An expired HTTP session** means logging in again and healing
//!   ([`FeedEvent::LoggedInAgain`]), however the server shows it: CometD answering 401 or
//!   403, a `/meta/disconnect` of the server's own, `402 Unknown client` for a session it
//!   has just handshaken ([`SessionEvent::Forgotten`](crate::bayeux::SessionEvent::Forgotten)
//!   with `unconnected`), or a refused handshake (once: refused again after a fresh login,
//!   the feed ends). Logins that no connect follows are paced by a backoff.
//! - **A slow consumer never costs the session** (with [`Delivery::Changes`], the default):
//!   the feed keeps long polling and holds at most one change per call; a consumer that
//!   catches up gets the net change of each call, from what it last saw to what is now.
//!
//! The feed never sends `EndContactCenterSession` (it would log the agent out), and sends
//! `StartContactCenterSession` only when asked ([`CallFeedBuilder::start_session`]).

mod healing;
mod open;
mod queue;
mod relogin;
mod staleness;
mod task;
mod view;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, oneshot, Notify};

use self::queue::Queue;
use self::task::{Feed, FeedSettings};
pub use self::view::CallView;
use super::model::{Device, DeviceStateChangeMessage, ErrorMessage};
use super::rest::{ContactCenterSession, Credentials, GwsSession, Password};
use super::store::{CallChange, CallStore, ChangeOrigin};
use super::Api;
use crate::bayeux::{GapCause, Message};
use crate::client::{ClientEvent, ReplyTap, DEFAULT_MAX_MESSAGE_BYTES};
use crate::error::{Error, Result};
use crate::transport::HttpOptions;

/// How the feed hands out what it learns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// Call changes ([`FeedEvent::Call`]), each as made, joined per call into their net
    /// change once the consumer is far behind (see
    /// [`CallFeedBuilder::max_separate_changes`]; memory bounded by the number of live
    /// calls); the session never waits for the consumer. For services that act on changes.
    #[default]
    Changes,
    /// Every data message ([`FeedEvent::Message`]), in order, with backpressure: a consumer
    /// that stops reading stops the long poll, and past the server's `maxInterval` that
    /// costs the session (a re-handshake and a gap follow). For tools that print or record
    /// what came over the wire.
    Messages,
}

/// One call's change and the call it leaves.
///
/// `call` is the call as GWS last sent it, typed and exact at once (see [`CallView`]): it is
/// the call as of this change, where [`CallFeed::store`] may already be ahead.
///
/// ```
/// use gws_cometd::gws::{CallEvent, CallState, FeedEvent};
///
/// fn on_event(event: &FeedEvent) {
///     if let FeedEvent::Call(CallEvent { change, call: Some(call) }) = event {
///         if call.state == Some(CallState::Established) {
///             if let Some(account) = call.user_data().get("AccountNumber") {
///                 println!("{}: screen pop for account {account}", change.call_id);
///             }
///         }
///     }
/// }
/// # let _ = on_event;
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CallEvent {
    /// What changed.
    pub change: CallChange,
    /// The call as the change leaves it; `None` when it left (`change.removed`).
    pub call: Option<CallView>,
}

/// What the feed yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum FeedEvent {
    /// A call changed ([`Delivery::Changes`]).
    Call(CallEvent),
    /// A data message as received ([`Delivery::Messages`]).
    Message(Message),
    /// A device notification (`/v2/me/devices`).
    Device {
        /// The Bayeux message as received.
        raw: Message,
        /// The notification.
        message: Box<DeviceStateChangeMessage>,
    },
    /// The devices as the server listed them (when devices are followed), after a catch-up
    /// or a heal.
    Devices {
        /// The devices.
        devices: Vec<Device>,
        /// Catch-up or heal.
        origin: ChangeOrigin,
    },
    /// A GWS `ErrorMessage` (a voice operation that failed).
    GwsError {
        /// The Bayeux message as received.
        raw: Message,
        /// The notification.
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
    /// `StartContactCenterSession` answered (see [`CallFeedBuilder::start_session`]).
    SessionStarted(ContactCenterSession),
    /// The catch-up is done: the store holds the server's calls (`calls` of them). Once
    /// after the feed starts.
    Ready {
        /// Calls in the store.
        calls: usize,
    },
    /// Messages may have been lost here; a heal follows.
    Gap {
        /// Why.
        cause: GapCause,
    },
    /// The store was brought in line with the server after gaps; `changes` calls differed
    /// (each came as a [`FeedEvent::Call`] marked [`ChangeOrigin::Heal`]).
    Healed {
        /// How many calls differed.
        changes: usize,
    },
    /// Reading the server's calls failed; it is retried with backoff.
    HealFailed(Arc<Error>),
    /// The store may be stale from `since` on: messages may have been withheld or lost.
    /// Once per episode; [`FeedEvent::Fresh`] ends it. See the [module docs](self).
    Stale {
        /// When the episode began (the wall clock of that moment).
        since: std::time::SystemTime,
        /// What failed first.
        cause: String,
    },
    /// The store is known complete again after a [`FeedEvent::Stale`] episode.
    Fresh {
        /// How long the episode lasted.
        stale_for: Duration,
    },
    /// The HTTP session had expired; the feed logged in again (a heal follows).
    LoggedInAgain,
    /// The consumer was behind and `missed` events other than call changes were dropped
    /// (call changes are never dropped: they are coalesced).
    Lagged {
        /// How many.
        missed: u64,
    },
    /// An event of the underlying Bayeux client. The last event of a feed that ended for
    /// good is `Session(ClientEvent::Terminated { .. })`.
    Session(ClientEvent),
}

impl FeedEvent {
    /// The Bayeux message behind a notification event.
    pub fn raw(&self) -> Option<&Message> {
        match self {
            FeedEvent::Message(raw)
            | FeedEvent::Device { raw, .. }
            | FeedEvent::GwsError { raw, .. }
            | FeedEvent::Other { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

/// The reply tap, shared by the notification clients the feed opens over its life and by
/// the feed itself (it records what it read from the server's calls).
type SharedTap = Arc<Mutex<ReplyTap>>;

/// Configures a [`CallFeed`].
pub struct CallFeedBuilder {
    base_url: String,
    credentials: Credentials,
    api: Api,
    client: Option<(String, Password)>,
    api_key: Option<Password>,
    code_client_id: Option<String>,
    redirect_uri: Option<String>,
    devices: bool,
    max_network_delay: Duration,
    staleness_bound: Option<Duration>,
    max_message_bytes: usize,
    initial_handshake_attempts: Option<u32>,
    start_session: Vec<String>,
    http: Option<reqwest::Client>,
    options: HttpOptions,
    delivery: Delivery,
    max_separate_changes: usize,
    tap: Option<SharedTap>,
}

impl std::fmt::Debug for CallFeedBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFeedBuilder")
            .field(
                "base_url",
                &crate::transport::endpoint::redact(&self.base_url),
            )
            .field("credentials", &self.credentials)
            .field("api", &self.api)
            .field("client_id", &self.client.as_ref().map(|(id, _)| id))
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("code_client_id", &self.code_client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("devices", &self.devices)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl CallFeedBuilder {
    /// The GWS API generation to speak (default [`Api::V2`]): v2 logs in with HTTP Basic on
    /// `/api/v2/me` and follows `/v2/me/calls`; [`Api::V3`] logs in with OAuth (see
    /// [`client_credentials`](Self::client_credentials)), initializes the workspace and
    /// follows `/workspace/v3/voice` (and `/workspace/v3/initialization`). The store, the
    /// changes and the heals are the same.
    pub fn api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    /// v3: log in by the OAuth password grant with this client id and secret. Without it, a
    /// v3 feed signs in with the user's name (`tenant\user`) and password and takes the
    /// authorization-code flow. The secret is never printed.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<Password>,
    ) -> Self {
        self.client = Some((client_id.into(), secret.into()));
        self
    }

    /// Sends `x-api-key: <key>` on every request, REST and notifications (some Multicloud CX
    /// deployments want it). The key is never printed.
    pub fn api_key(mut self, key: impl Into<Password>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// v3: the OAuth client id of the authorization-code flow (default
    /// [`DEFAULT_CLIENT_ID`](crate::gws::rest::DEFAULT_CLIENT_ID)); see
    /// [`GwsSessionBuilder::client_id`](crate::gws::rest::GwsSessionBuilder::client_id).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.code_client_id = Some(client_id.into());
        self
    }

    /// v3: the redirect URI of the authorization-code flow (default: the base URL); see
    /// [`GwsSessionBuilder::redirect_uri`](crate::gws::rest::GwsSessionBuilder::redirect_uri).
    /// [`connect`](Self::connect) refuses one that is not an absolute URL.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Also subscribe `/v2/me/devices`, and read the devices with the calls (v2 only: v3
    /// reports its devices as `DnStateChanged` on the voice channel, which the feed follows
    /// anyway).
    pub fn devices(mut self, yes: bool) -> Self {
        self.devices = yes;
        self
    }

    /// The longest the network may add to a request, REST included (default 10 s); see
    /// [`ClientBuilder::max_network_delay`](crate::ClientBuilder::max_network_delay).
    pub fn max_network_delay(mut self, delay: Duration) -> Self {
        self.max_network_delay = delay;
        self
    }

    /// See [`ClientBuilder::max_message_bytes`](crate::ClientBuilder::max_message_bytes).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// See
    /// [`ClientBuilder::initial_handshake_attempts`](crate::ClientBuilder::initial_handshake_attempts)
    /// (default 3).
    pub fn initial_handshake_attempts(mut self, attempts: Option<u32>) -> Self {
        self.initial_handshake_attempts = attempts;
        self
    }

    /// Send `StartContactCenterSession` on these channels (e.g. `voice`) after logging in,
    /// as an agent desktop does. Default: none; a passive observer must not. v2 only: a v3
    /// feed ignores it (with a warning).
    pub fn start_session(mut self, channels: Vec<String>) -> Self {
        self.start_session = channels;
        self
    }

    /// Send with this HTTP client, shared with other feeds (one pool, one TLS setup; each
    /// feed keeps its own cookies). See [`new_client`](crate::transport::http::new_client).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Proxy and certificate authorities, for a client of the feed's own.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.options = options;
        self
    }

    /// How the feed hands out what it learns (default [`Delivery::Changes`]).
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// How many call changes wait for a consumer that is behind one by one (default 1024);
    /// past that, a call's further changes join its last one waiting, and the consumer gets
    /// their net change. `0` joins always: a consumer gets only the latest of each call.
    /// Memory stays bounded by this and the number of calls either way.
    pub fn max_separate_changes(mut self, changes: usize) -> Self {
        self.max_separate_changes = changes;
        self
    }

    /// Sees every notification reply body, and what the feed read of the server's calls as
    /// a line `{"channel":"/gws-cometd/catch-up"|"/gws-cometd/heal","data":{...}}`; see
    /// [`ClientBuilder::on_reply`](crate::ClientBuilder::on_reply). Used to record fixtures
    /// that [`replay`](crate::fixture) reproduces, catch-up and heals included.
    pub fn on_reply(
        mut self,
        tap: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    ) -> Self {
        self.tap = Some(Arc::new(Mutex::new(Box::new(tap))));
        self
    }

    /// How long messages withheld by failed connects may take to come again before the feed
    /// treats them as lost: it reads the server's calls then, and again each time this
    /// passes while they stay withheld (see the [module docs](self)). Default: twice the
    /// max network delay (20 s); at least 100 ms.
    pub fn staleness_bound(mut self, bound: Duration) -> Self {
        self.staleness_bound = Some(bound);
        self
    }

    /// Logs in, connects, subscribes and catches up. Fails on a bad URL, wrong credentials,
    /// an unreachable server, or a catch-up that failed three times.
    pub async fn connect(self) -> Result<CallFeed> {
        let mut session = GwsSession::builder(&self.base_url, self.credentials)
            .api(self.api)
            .timeout(self.max_network_delay)
            .http_options(self.options);
        if let Some(http) = self.http {
            session = session.http_client(http);
        }
        if let Some((id, secret)) = self.client {
            session = session.client_credentials(id, secret);
        }
        if let Some(key) = self.api_key {
            session = session.api_key(key);
        }
        if let Some(id) = self.code_client_id {
            session = session.client_id(id);
        }
        if let Some(uri) = self.redirect_uri {
            session = session.redirect_uri(uri);
        }
        let session = session.build()?;
        session.login().await?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(queue::MAX_EVENTS, self.max_separate_changes)),
            ready: Notify::new(),
            space: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        if !self.start_session.is_empty() && self.api == Api::V3 {
            tracing::warn!("start_session is for API v2: the v3 feed does not start one");
        } else if !self.start_session.is_empty() {
            let started = session
                .start_contact_center_session(&self.start_session)
                .await?;
            for c in started.failed() {
                tracing::warn!(channel = %c.channel, code = c.status_code, "the contact-center session did not start on this channel");
            }
            lock(&shared.queue).push_event(FeedEvent::SessionStarted(started));
        }
        let store = Arc::new(Mutex::new(CallStore::new()));
        let (control, commands) = mpsc::channel(4);
        let (ready_tx, ready_rx) = oneshot::channel();
        let settings = FeedSettings {
            api: self.api,
            devices: self.devices && self.api == Api::V2,
            max_network_delay: self.max_network_delay,
            staleness_bound: self
                .staleness_bound
                .unwrap_or(2 * self.max_network_delay)
                .max(Duration::from_millis(100)),
            max_message_bytes: self.max_message_bytes,
            initial_handshake_attempts: self.initial_handshake_attempts,
            delivery: self.delivery,
            tap: self.tap,
        };
        let feed = Feed::start(
            session.clone(),
            settings,
            store.clone(),
            shared.clone(),
            commands,
            ready_tx,
        )
        .await?;
        let task = tokio::spawn(feed.run());
        match ready_rx.await {
            Ok(Ok(())) => Ok(CallFeed {
                session,
                store,
                shared,
                control,
                task: Some(task),
            }),
            Ok(Err(e)) => Err(unshared(e)),
            Err(_) => Err(Error::Closed),
        }
    }
}

/// What the task and the handle share: the consumer's queue.
struct Shared {
    queue: Mutex<Queue>,
    /// Woken when something is queued (or the feed ended).
    ready: Notify,
    /// Woken when the consumer took something (the task may queue more).
    space: Notify,
    closed: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn push(&self, event: FeedEvent) {
        lock(&self.queue).push_event(event);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.ready.notify_one();
    }
}

/// Commands of the handle to the task.
enum Control {
    Disconnect(oneshot::Sender<()>),
}

/// Follows one agent's calls. See the [module docs](self).
pub struct CallFeed {
    session: GwsSession,
    store: Arc<Mutex<CallStore>>,
    shared: Arc<Shared>,
    control: mpsc::Sender<Control>,
    task: Option<tokio::task::JoinHandle<()>>,
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
            api: Api::V2,
            client: None,
            api_key: None,
            code_client_id: None,
            redirect_uri: None,
            devices: false,
            max_network_delay: Duration::from_secs(10),
            staleness_bound: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            initial_handshake_attempts: Some(3),
            start_session: Vec::new(),
            http: None,
            options: HttpOptions::default(),
            delivery: Delivery::default(),
            max_separate_changes: queue::MAX_CHANGES,
            tap: None,
        }
    }

    /// The REST session, for call operations.
    pub fn session(&self) -> &GwsSession {
        &self.session
    }

    /// The user the feed follows.
    pub fn user(&self) -> &str {
        self.session.user()
    }

    /// The store: the server's calls as the feed knows them, which may be ahead of what
    /// [`next`](Self::next) has handed out (each [`CallEvent`] carries its call as of its
    /// change). Lock it briefly: the feed applies notifications
    /// under the same lock.
    pub fn store(&self) -> MutexGuard<'_, CallStore> {
        lock(&self.store)
    }

    /// A handle on the store that outlives borrows of the feed.
    pub fn store_handle(&self) -> Arc<Mutex<CallStore>> {
        self.store.clone()
    }

    /// Sends `/meta/disconnect` and stops the feed (never `EndContactCenterSession`).
    /// Events already queued can still be read.
    pub async fn disconnect(&mut self) {
        let (done, rx) = oneshot::channel();
        if self.control.send(Control::Disconnect(done)).await.is_ok() {
            let _ = rx.await;
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The next event. `None` once the feed has ended (after [`disconnect`](Self::disconnect)
    /// or a fatal error, which is yielded first as `Session(Terminated)`) and everything
    /// queued was taken.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        loop {
            let ready = self.shared.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(event) = lock(&self.shared.queue).pop() {
                self.shared.space.notify_one();
                return Some(event);
            }
            if self
                .shared
                .closed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return None;
            }
            ready.await;
        }
    }

    /// This feed as a `Stream`.
    pub fn into_stream(self) -> impl Stream<Item = FeedEvent> {
        futures::stream::unfold(self, |mut feed| async move {
            let ev = feed.next().await?;
            Some((ev, feed))
        })
    }
}

impl Drop for CallFeed {
    fn drop(&mut self) {
        // Nobody reads any more: the task disconnects and stops.
        if let Some(task) = &self.task {
            if !task.is_finished() {
                let (done, _) = oneshot::channel();
                let _ = self.control.try_send(Control::Disconnect(done));
            }
        }
    }
}

/// The error a notification client ended with, out of its `Arc` (the client keeps no other
/// reference once the feed has its event; a session error is cloned otherwise).
fn unshared(e: Arc<Error>) -> Error {
    Arc::try_unwrap(e).unwrap_or_else(|e| match &*e {
        Error::Session(s) => Error::Session(s.clone()),
        _ => Error::Closed,
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
