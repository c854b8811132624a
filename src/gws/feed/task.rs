//! The feed's task: reads the notification client, applies to the store, reads the server's
//! calls when [`Healing`] says so, and queues what the consumer gets. It never waits for the
//! consumer in [`Delivery::Changes`].
//!
//! A read's answer is not applied at once. A notification the server sent before it
//! answered can still be on its way (on the long poll's connection, or queued for the next
//! connect): applied after the answer, it would take a call back to an older state, or bring
//! back a call the answer no longer lists. So the answer waits as long again as the read
//! took (the round trip it measured; at least [`SETTLE_MIN`], at most [`SETTLE_MAX`]), and
//! every call notified from the read's start to then keeps its notified state. A long poll
//! that lags the read by more than that wait can still take a call a step back, but not
//! for long: notifications on one session arrive in order, so the newer one follows.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::healing::Healing;
use super::queue::MAX_EVENTS;
use super::relogin::{AfterStop, Relogins};
use super::staleness::Staleness;
use super::{lock, Control, Delivery, FeedEvent, Shared, SharedTap};
use crate::bayeux::{GapCause, Message, SessionEvent};
use crate::client::{ClientEvent, EventStream, Subscriber};
use crate::error::{Error, Result};
use crate::fixture;
use crate::gws::model::{Device, DeviceStateChangeMessage, ErrorMessage};
use crate::gws::rest::GwsSession;
use crate::gws::store::{CallStore, ChangeOrigin};
use crate::gws::wire::{self, Notification};
use crate::gws::Api;
use crate::Client;

use super::open::{calls_usable, login_again, open, renewal};

/// Catch-up reads that may fail in a row before [`connect`](super::CallFeedBuilder::connect)
/// gives up.
const CATCH_UP_ATTEMPTS: u32 = 3;

/// The least a read's answer waits for notifications sent before it.
const SETTLE_MIN: Duration = Duration::from_millis(50);
/// The most a read's answer waits for notifications sent before it.
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// What the feed was built with: which channels it follows, how it hands changes out, and
/// how it opens each notification client (it opens a new one after losing a login).
#[derive(Clone)]
pub(super) struct FeedSettings {
    pub(super) api: Api,
    pub(super) devices: bool,
    pub(super) max_network_delay: Duration,
    pub(super) staleness_bound: Duration,
    pub(super) max_message_bytes: usize,
    pub(super) initial_handshake_attempts: Option<u32>,
    pub(super) delivery: Delivery,
    pub(super) tap: Option<SharedTap>,
}

pub(super) struct Connection {
    pub(super) client: Client,
    pub(super) events: EventStream,
    pub(super) messages: Subscriber,
    /// False once the message stream ended (the client stopped; its event says why).
    pub(super) messages_open: bool,
}

/// What one read of the server's state brought.
struct Snapshot {
    calls: Vec<Box<RawValue>>,
    devices: Option<Vec<Box<RawValue>>>,
}

type Read = Pin<Box<dyn Future<Output = Result<Snapshot>> + Send>>;

/// A new notification client starting, with the events it said until its calls channel
/// was subscribed.
pub(super) type Renewal = Pin<Box<dyn Future<Output = Renewed> + Send>>;

/// What a [`Renewal`] brought, or why it did not start.
pub(super) type Renewed = std::result::Result<(Connection, Vec<ClientEvent>), String>;

/// A read's answer, waiting for notifications sent before it (see the [module docs](self)).
struct Settling {
    origin: ChangeOrigin,
    snapshot: Snapshot,
    until: Instant,
}

/// The task's state.
pub(super) struct Feed {
    session: GwsSession,
    settings: FeedSettings,
    store: Arc<Mutex<CallStore>>,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Control>,
    /// Tells `connect` the catch-up is done (or why it failed).
    ready: Option<oneshot::Sender<Result<(), Arc<Error>>>>,
    conn: Option<Connection>,
    healing: Healing,
    /// The read under way, its kind, and when it started.
    read: Option<(ChangeOrigin, Instant, Read)>,
    /// The answer of the last read, not applied yet.
    settling: Option<Settling>,
    /// Calls a notification touched since the read started.
    touched: HashSet<String>,
    staleness: Staleness,
    /// The current session acknowledges messages (cut replies are redelivered).
    acknowledged: bool,
    /// A new session starting, bounded by the staleness bound.
    renewal: Option<Renewal>,
    relogins: Relogins,
}

impl Feed {
    /// Opens the first notification client.
    pub(super) async fn start(
        session: GwsSession,
        settings: FeedSettings,
        store: Arc<Mutex<CallStore>>,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Control>,
        ready: oneshot::Sender<Result<(), Arc<Error>>>,
    ) -> Result<Feed> {
        let bound = settings.staleness_bound;
        let mut feed = Feed {
            session,
            settings,
            store,
            shared,
            commands,
            ready: Some(ready),
            conn: None,
            healing: Healing::new(),
            read: None,
            settling: None,
            touched: HashSet::new(),
            staleness: Staleness::new(bound),
            acknowledged: false,
            renewal: None,
            relogins: Relogins::default(),
        };
        let attempts = feed.settings.initial_handshake_attempts;
        feed.conn = Some(open(&feed.session, &feed.settings, attempts).await?);
        Ok(feed)
    }

    pub(super) async fn run(mut self) {
        loop {
            if self.read.is_none() && self.settling.is_none() {
                if let Some(origin) = self.healing.due(Instant::now().into_std()) {
                    self.start_read(origin);
                }
            }
            let room = self.room();
            let wake = self.healing.wake_at().map(Instant::from_std);
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            let overdue_at = self.staleness.overdue_at().map(Instant::from_std);
            let renewing = self.renewal.is_some();
            let read = self.read.as_mut().map(|(_, _, r)| r);
            let reading = read.is_some();
            let settle_at = self.settling.as_ref().map(|s| s.until);
            tokio::select! {
                m = conn.messages.next(), if conn.messages_open && room => match m {
                    Some(m) => self.on_message(m),
                    None => conn.messages_open = false,
                },
                ev = conn.events.next() => {
                    let go_on = match ev {
                        Some(ev) => self.on_event(ev).await,
                        None => false,
                    };
                    if !go_on {
                        break;
                    }
                }
                out = async { read.expect("guarded by `reading`").await }, if reading => {
                    if !self.finish_read(out) {
                        self.disconnect().await;
                        break;
                    }
                }
                _ = sleep_until_opt(settle_at), if settle_at.is_some() => {
                    if !self.settle() {
                        self.disconnect().await;
                        break;
                    }
                }
                _ = sleep_until_opt(wake) => {}
                _ = sleep_until_opt(overdue_at), if overdue_at.is_some() => self.on_overdue(),
                renewed = async { self.renewal.as_mut().expect("guarded by `renewing`").await }, if renewing => {
                    self.renewal = None;
                    self.renewed(renewed).await;
                }
                _ = self.shared.space.notified(), if !room => {}
                cmd = self.commands.recv() => {
                    self.disconnect().await;
                    if let Some(Control::Disconnect(done)) = cmd {
                        let _ = done.send(());
                    }
                    break;
                }
            }
        }
        self.conn = None;
        self.shared.close();
    }

    /// Whether a message may be taken now: with [`Delivery::Messages`] the consumer sets
    /// the pace.
    fn room(&self) -> bool {
        self.settings.delivery == Delivery::Changes
            || lock(&self.shared.queue).events() < MAX_EVENTS
    }

    async fn disconnect(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.client.disconnect().await;
        }
    }

    fn push(&self, event: FeedEvent) {
        self.shared.push(event);
    }

    fn on_message(&mut self, raw: Message) {
        let decoded = wire::decode(&raw);
        if let Ok(Notification::Call(call)) = &decoded {
            if self.read.is_some() || self.settling.is_some() {
                self.touched.insert(call.call_id().to_owned());
            }
            let mut store = lock(&self.store);
            if let Some(mut applied) = store.apply(call, std::time::Instant::now()) {
                if self.settings.delivery == Delivery::Changes {
                    let change = applied.change();
                    lock(&self.shared.queue).push_change(
                        change,
                        applied.previous_text(),
                        applied.text(),
                    );
                    self.shared.ready.notify_one();
                }
            }
        }
        if let Err(e) = &decoded {
            if let Some(limit) = e.limit() {
                // Whole and well-formed, but over a documented limit: what it said is lost,
                // like a message over `max_message_bytes`. A gap, so a heal; the consumer
                // (the CLI, the bridge) logs the gap, once.
                let cause = GapCause::MessageOverLimit {
                    channel: raw.channel.to_string(),
                    limit,
                    max: wire::max_of(limit),
                };
                tracing::debug!("{e}");
                self.gap(cause);
                if self.settings.delivery == Delivery::Changes {
                    return;
                }
            }
        }
        if self.settings.delivery == Delivery::Messages {
            self.push(FeedEvent::Message(raw));
            return;
        }
        let event = match decoded {
            Ok(Notification::Call(_)) => return,
            Ok(Notification::Device(text)) => FeedEvent::Device {
                message: Box::new(DeviceStateChangeMessage::read(text)),
                raw,
            },
            Ok(Notification::Error(text)) => {
                let message = Box::new(ErrorMessage::read(text));
                tracing::warn!(
                    error_code = message.error_code.as_ref().map_or("", |c| c.get()),
                    "GWS reports an error: {}",
                    message.error_message.as_deref().unwrap_or("(no message)")
                );
                FeedEvent::GwsError { raw, message }
            }
            Ok(Notification::Other) => FeedEvent::Other { raw, error: None },
            Err(source) => {
                let error = Error::Notification {
                    channel: raw.channel.clone(),
                    source,
                };
                tracing::warn!("{error}");
                FeedEvent::Other {
                    raw,
                    error: Some(Arc::new(error)),
                }
            }
        };
        self.push(event);
    }

    /// Returns whether the feed goes on.
    async fn on_event(&mut self, ev: ClientEvent) -> bool {
        match ev {
            ClientEvent::Session(SessionEvent::Gap { cause }) => {
                self.gap(cause);
                true
            }
            ClientEvent::Session(event) => {
                let now = std::time::Instant::now();
                match &event {
                    SessionEvent::ConnectionLost { cause } => {
                        let cause = || format!("connection lost: {cause}");
                        if self.staleness.withheld(now, cause) {
                            self.stale_started();
                        }
                    }
                    SessionEvent::HandshakeFailed { cause, .. } => {
                        let cause = || format!("handshake failed: {cause}");
                        if self.staleness.withheld(now, cause) {
                            self.stale_started();
                        }
                    }
                    SessionEvent::Connected => {
                        self.staleness.delivered();
                        self.relogins.connected();
                        self.try_fresh();
                    }
                    SessionEvent::AcknowledgedMessages => self.acknowledged = true,
                    _ => {}
                }
                let calls = self.settings.api.calls_channel();
                match &event {
                    ev if calls_usable(self.settings.api, ev) => self.healing.subscribed(true),
                    SessionEvent::Unsubscribed { channel } if channel.as_str() == calls => {
                        self.healing.subscribed(false)
                    }
                    SessionEvent::Rehandshaken { .. } => {
                        self.healing.subscribed(false);
                        self.acknowledged = false;
                    }
                    _ => {}
                }
                let relogin = match &event {
                    SessionEvent::Forgotten { cause, unconnected } => {
                        Relogins::wanted_after_forgotten(cause, *unconnected)
                    }
                    _ => false,
                };
                self.push(FeedEvent::Session(ClientEvent::Session(event)));
                // The client handshakes again by itself (after a backoff in these cases);
                // the login it needs is the feed's to make.
                if relogin && self.ready.is_none() {
                    tracing::warn!(
                        "the server dropped the notification session as it does when the \
                         HTTP session is gone; logging in again"
                    );
                    return self.log_in_again().await;
                }
                true
            }
            ClientEvent::Terminated { error } => self.on_terminated(error).await,
            ev => {
                self.push(FeedEvent::Session(ev));
                true
            }
        }
    }

    /// Logs in again (paced when logins follow each other without a connect); returns
    /// whether the feed goes on.
    async fn log_in_again(&mut self) -> bool {
        if let Some(delay) = self.relogins.delay() {
            tokio::time::sleep(delay).await;
        }
        if let Err(e) = login_again(&self.session).await {
            return self.end(Arc::new(e));
        }
        self.relogins.logged_in();
        self.push(FeedEvent::LoggedInAgain);
        true
    }

    /// The notification client stopped. A refusal (401/403: the HTTP session expired; a
    /// refused handshake, once) means log in again, reconnect and heal; anything else ends
    /// the feed.
    async fn on_terminated(&mut self, error: Arc<Error>) -> bool {
        if self.ready.is_some() || self.relogins.after_stop(&error) == AfterStop::End {
            return self.end(error);
        }
        tracing::warn!(
            "the HTTP session expired (notifications answer: {error}); logging in again"
        );
        if !self.log_in_again().await {
            return false;
        }
        // The server was there before: keep trying its handshake like any other outage.
        match open(&self.session, &self.settings, None).await {
            Ok(conn) => self.conn = Some(conn),
            Err(e) => return self.end(Arc::new(e)),
        }
        tracing::info!("logged in again; reading the server's calls");
        self.healing.subscribed(false);
        self.acknowledged = false;
        self.healing.gap();
        if self.staleness.lost(std::time::Instant::now(), || {
            "the HTTP session expired".into()
        }) {
            self.stale_started();
        }
        self.read = None;
        self.settling = None;
        true
    }

    /// The feed ends with `error`.
    fn end(&mut self, error: Arc<Error>) -> bool {
        match self.ready.take() {
            // `connect` is still waiting: it returns the error.
            Some(ready) => {
                let _ = ready.send(Err(error));
            }
            None => {
                // The consumer gets the error with `Terminated`; saying it here too would
                // say it twice.
                tracing::debug!("the feed stopped: {error}");
                self.push(FeedEvent::Session(ClientEvent::Terminated { error }));
            }
        }
        self.conn = None;
        false
    }

    /// Messages may have been lost: a read is owed, and the store may be stale until then.
    fn gap(&mut self, cause: GapCause) {
        self.healing.gap();
        if self
            .staleness
            .lost(std::time::Instant::now(), || cause.to_string())
        {
            self.stale_started();
        }
        self.push(FeedEvent::Gap { cause });
    }

    /// An episode began: said once, at WARN, with what failed.
    fn stale_started(&mut self) {
        let Some(since) = self.staleness.since() else {
            return;
        };
        let ago = since.elapsed();
        let since = std::time::SystemTime::now()
            .checked_sub(ago)
            .unwrap_or_else(std::time::SystemTime::now);
        let cause = self.staleness_cause();
        tracing::warn!(
            "the store may be stale: {cause}; reading the server's calls if nothing comes \
             within {:.1?}",
            self.staleness.bound()
        );
        self.push(FeedEvent::Stale { since, cause });
    }

    fn staleness_cause(&self) -> String {
        self.staleness.cause().unwrap_or_default().to_owned()
    }

    /// Ends the episode if nothing is withheld and no read is owed.
    fn try_fresh(&mut self) {
        let owed = self.healing.owed();
        if let Some((stale_for, cause)) = self.staleness.end(std::time::Instant::now(), owed) {
            tracing::info!(
                "the store is known complete again after {stale_for:.1?} of possible \
                 staleness (it began with: {cause})"
            );
            self.push(FeedEvent::Fresh { stale_for });
        }
    }

    /// Withheld messages did not come within the bound: a gap, so a read; with the
    /// acknowledged-messages extension also a new session, so the server stops replaying a
    /// batch that cannot get through.
    fn on_overdue(&mut self) {
        let now = std::time::Instant::now();
        if !self.staleness.overdue(now) {
            return;
        }
        let waited = self
            .staleness
            .withheld_for(now)
            .unwrap_or(self.staleness.bound());
        self.staleness.overdue_handled(now);
        self.gap(GapCause::RedeliveryOverdue { waited });
        if self.acknowledged && self.renewal.is_none() {
            self.renewal = Some(renewal(
                self.session.clone(),
                self.settings.clone(),
                self.staleness.bound(),
            ));
        }
    }

    /// A new session started (its calls channel subscribed): the old one is dropped and
    /// the new one's events are taken as the feed's own. One that did not start in time
    /// (the server unreachable too, say) is dropped; the old one goes on, and the next
    /// overdue tries again.
    async fn renewed(&mut self, renewed: Renewed) {
        match renewed {
            Ok((conn, seen)) => {
                tracing::info!("started a new session: the server's replays did not get through");
                self.disconnect().await;
                self.conn = Some(conn);
                self.healing.subscribed(false);
                self.acknowledged = false;
                for ev in seen {
                    self.on_event(ev).await;
                }
            }
            Err(e) => tracing::debug!("a new session did not start: {e}"),
        }
    }

    fn start_read(&mut self, origin: ChangeOrigin) {
        self.healing.started();
        self.touched.clear();
        let session = self.session.clone();
        let devices = self.settings.devices;
        let read: Read = Box::pin(async move {
            let calls = session.calls().await?;
            let devices = match devices {
                true => Some(session.devices().await?),
                false => None,
            };
            Ok(Snapshot { calls, devices })
        });
        self.read = Some((origin, Instant::now(), read));
    }

    /// The read under way answered: a failure is counted, an answer waits (see the
    /// [module docs](self)). Returns whether the feed goes on.
    fn finish_read(&mut self, out: Result<Snapshot>) -> bool {
        let Some((origin, started, _)) = self.read.take() else {
            return true;
        };
        let now = std::time::Instant::now();
        match out {
            Ok(snapshot) => {
                let wait = started.elapsed().clamp(SETTLE_MIN, SETTLE_MAX);
                self.settling = Some(Settling {
                    origin,
                    snapshot,
                    until: Instant::now() + wait,
                });
                true
            }
            Err(e) => {
                let failures = self.healing.failed(now);
                tracing::warn!(failures, "reading the server's calls failed: {e}");
                if self.ready.is_some() && failures >= CATCH_UP_ATTEMPTS {
                    return self.end(Arc::new(e));
                }
                self.push(FeedEvent::HealFailed(Arc::new(e)));
                true
            }
        }
    }

    /// Applies the answer that waited, after the notifications already here. Returns
    /// whether the feed goes on.
    fn settle(&mut self) -> bool {
        let Some(Settling {
            origin, snapshot, ..
        }) = self.settling.take()
        else {
            return true;
        };
        loop {
            let room = self.room();
            let Some(conn) = self.conn.as_mut().filter(|c| c.messages_open && room) else {
                break;
            };
            match conn.messages.next().now_or_never() {
                Some(Some(m)) => self.on_message(m),
                Some(None) => conn.messages_open = false,
                None => break,
            }
        }
        let now = std::time::Instant::now();
        let kept: Vec<String> = self.touched.drain().collect();
        let reconciled = {
            let keep = |id: &str| kept.iter().any(|k| k == id);
            lock(&self.store).reconcile(&snapshot.calls, now, origin, keep)
        };
        if let Some(tap) = self.settings.tap.clone() {
            let line = fixture::snapshot_line(origin, &snapshot.calls, &kept);
            let recorded = (*lock(&tap))(line.as_bytes());
            if let Err(source) = recorded {
                return self.end(Arc::new(Error::Record { source }));
            }
        }
        let changes = reconciled.len();
        if self.settings.delivery == Delivery::Changes {
            let mut queue = lock(&self.shared.queue);
            for r in reconciled {
                let after = r.call.as_deref().or(r.previous.as_deref()).unwrap_or("{}");
                queue.push_change(r.change, r.previous.as_deref(), after);
            }
        }
        if let Some(devices) = snapshot.devices {
            let devices = devices
                .iter()
                .filter_map(|d| serde_json::from_str::<Device>(d.get()).ok())
                .collect();
            self.push(FeedEvent::Devices { devices, origin });
        }
        self.healing.succeeded();
        self.try_fresh();
        match self.ready.take() {
            Some(ready) => {
                let calls = lock(&self.store).len();
                tracing::info!(calls, "caught up with the server's calls");
                self.push(FeedEvent::Ready { calls });
                let _ = ready.send(Ok(()));
            }
            None => {
                tracing::info!(changes, "healed from the server's calls");
                self.push(FeedEvent::Healed { changes });
            }
        }
        true
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
