//! The simulator's Bayeux protocol state: sessions, subscriptions, per-session queues and held
//! `/meta/connect` requests.
//!
//! Nothing here knows about HTTP: a batch of [`Message`]s and the caller's browser cookie go
//! in, the reply batch comes out. All state sits behind one mutex that is never held across
//! an await; each session has a [`Notify`] that wakes its held connect when a message is
//! queued, the session is dropped, or a newer connect replaces it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::ack::{ack_ext, acknowledged, asks_for_acks, AckQueue};
use super::SimStats;
use gws_cometd::bayeux::{channel_matches, Advice, ChannelName, Message, Reconnect};

/// The error every real server sends for a session it does not know.
pub(crate) const UNKNOWN_CLIENT: &str = "402::Unknown client";

/// Timing and bounds of the engine.
#[derive(Clone, Debug)]
pub(crate) struct EngineConfig {
    pub long_poll_timeout: Duration,
    pub interval: Duration,
    pub max_interval: Duration,
    pub max_queue: usize,
    /// Whether sessions that ask get the acknowledged-messages extension.
    pub ack_extension: bool,
}

/// Per-request switches set by fault injection.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    /// Connect replies say `successful:false` with advice `reconnect:none`.
    pub advice_none: bool,
    /// Subscriptions to these channels are denied.
    pub deny: Vec<String>,
}

/// What the engine answers to one batch.
#[derive(Debug, Default)]
pub(crate) struct BatchReply {
    /// The reply messages, in order.
    pub messages: Vec<Message>,
    /// A new browser cookie value to set (only on a handshake that came without one).
    pub set_browser: Option<String>,
}

struct Session {
    /// The `BAYEUX_BROWSER` cookie this session is bound to.
    browser: String,
    /// The user the session belongs to (the GWS user of the HTTP session that made the
    /// handshake); `None` on the plain, unauthenticated endpoint.
    owner: Option<String>,
    subscriptions: BTreeSet<String>,
    /// Messages not yet in a connect reply.
    queue: VecDeque<Message>,
    /// With the acknowledged-messages extension: what was sent and not yet acknowledged.
    acks: Option<AckQueue>,
    wake: Arc<Notify>,
    /// Incremented by every connect; a held connect with an older number is superseded.
    connect_gen: u64,
    /// Connects currently held (0 or 1, briefly 2 while one replaces another).
    held: u32,
    /// When the last connect arrived or was answered; expiry counts from here.
    last_active: Instant,
    dropped: u64,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    stats: SimStats,
    client_log: VecDeque<(String, String)>,
    ids: u64,
}

/// The Bayeux server state machine of the simulator.
pub(crate) struct Engine {
    cfg: EngineConfig,
    state: Mutex<State>,
    hasher: RandomState,
    /// Woken on every subscription change or client publish (for test helpers).
    changed: Notify,
    shutdown: watch::Receiver<bool>,
}

/// Keeps a session's `held` count right even when a held connect is cancelled (the client
/// went away and the HTTP layer dropped the request).
struct HeldGuard<'a> {
    engine: &'a Engine,
    client_id: String,
    armed: bool,
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let now = Instant::now();
            let mut st = self.engine.lock();
            if let Some(s) = st.sessions.get_mut(&self.client_id) {
                s.held = s.held.saturating_sub(1);
                s.last_active = now;
            }
        }
    }
}

fn reply_to(req: &Message) -> Message {
    let mut m = Message::new(req.channel.clone());
    m.id = req.id.clone();
    m.client_id = req.client_id.clone();
    m
}

fn failure(req: &Message, error: impl Into<String>) -> Message {
    let mut m = reply_to(req);
    m.successful = Some(false);
    m.error = Some(error.into());
    m
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Engine {
    pub(crate) fn new(cfg: EngineConfig, shutdown: watch::Receiver<bool>) -> Self {
        Engine {
            cfg,
            state: Mutex::new(State::default()),
            hasher: RandomState::new(),
            changed: Notify::new(),
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the simulator down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random_hex(&self, st: &mut State) -> String {
        st.ids += 1;
        let a = self.hasher.hash_one(st.ids);
        let b = self.hasher.hash_one(a ^ st.ids.rotate_left(32));
        format!("{a:016x}{b:08x}").chars().take(24).collect()
    }

    fn advice(&self, reconnect: Reconnect) -> Advice {
        Advice {
            reconnect: Some(reconnect),
            interval: Some(millis(self.cfg.interval)),
            timeout: Some(millis(self.cfg.long_poll_timeout)),
            max_interval: Some(millis(self.cfg.max_interval)),
            ..Advice::default()
        }
    }

    fn unknown_client(req: &Message, with_advice: bool) -> Message {
        let mut m = failure(req, UNKNOWN_CLIENT);
        if with_advice {
            m.advice = Some(Advice {
                reconnect: Some(Reconnect::Handshake),
                interval: Some(0),
                ..Advice::default()
            });
        }
        m
    }

    /// The session of `req` if it exists, is bound to `browser` and belongs to `owner`.
    fn session_ok(st: &State, req: &Message, browser: Option<&str>, owner: Option<&str>) -> bool {
        match req.client_id.as_deref().and_then(|id| st.sessions.get(id)) {
            Some(s) => browser == Some(s.browser.as_str()) && s.owner.as_deref() == owner,
            None => false,
        }
    }

    /// Handles one request batch from `owner` (recorded on sessions it handshakes; other
    /// messages must come from their session's owner). Non-connect messages are answered in
    /// order; a `/meta/connect` is answered last, after the data messages it delivers.
    pub(crate) async fn handle_batch(
        &self,
        batch: Vec<Message>,
        browser: Option<&str>,
        owner: Option<&str>,
        policy: &Policy,
    ) -> BatchReply {
        self.expire_idle();
        let mut reply = BatchReply::default();
        let mut connect = None;
        let mut browser = browser.map(str::to_owned);
        for msg in batch {
            match msg.channel.as_str() {
                "/meta/connect" => {
                    // Only the last connect of a batch is held; earlier ones are answered.
                    if let Some(prev) = connect.replace(msg) {
                        let mut m = reply_to(&prev);
                        m.successful = Some(true);
                        reply.messages.push(m);
                    }
                }
                "/meta/handshake" => {
                    let (m, new_browser) = self.handshake(&msg, browser.as_deref(), owner);
                    if let Some(b) = new_browser {
                        browser = Some(b.clone());
                        reply.set_browser = Some(b);
                    }
                    reply.messages.push(m);
                }
                "/meta/subscribe" => {
                    reply
                        .messages
                        .push(self.subscribe(&msg, browser.as_deref(), owner, policy))
                }
                "/meta/unsubscribe" => {
                    reply
                        .messages
                        .push(self.unsubscribe(&msg, browser.as_deref(), owner))
                }
                "/meta/disconnect" => {
                    reply
                        .messages
                        .push(self.disconnect(&msg, browser.as_deref(), owner))
                }
                ch if ch.starts_with("/meta/") => reply
                    .messages
                    .push(failure(&msg, "400::Unknown meta channel")),
                _ => reply
                    .messages
                    .push(self.client_publish(msg, browser.as_deref(), owner)),
            }
        }
        if let Some(msg) = connect {
            let mut msgs = self.connect(&msg, browser.as_deref(), owner, policy).await;
            reply.messages.append(&mut msgs);
        }
        reply
    }

    fn handshake(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
    ) -> (Message, Option<String>) {
        let mut st = self.lock();
        let new_browser = match browser {
            Some(_) => None,
            None => Some(self.random_hex(&mut st)),
        };
        let bound = browser
            .map(str::to_owned)
            .or_else(|| new_browser.clone())
            .unwrap_or_default();
        let id = self.random_hex(&mut st);
        let with_acks = self.cfg.ack_extension && asks_for_acks(req.ext.as_deref());
        st.sessions.insert(
            id.clone(),
            Session {
                browser: bound,
                owner: owner.map(str::to_owned),
                subscriptions: BTreeSet::new(),
                queue: VecDeque::new(),
                acks: with_acks.then(AckQueue::new),
                wake: Arc::new(Notify::new()),
                connect_gen: 0,
                held: 0,
                last_active: Instant::now(),
                dropped: 0,
            },
        );
        st.stats.handshakes += 1;
        drop(st);
        self.changed.notify_waiters();
        let mut m = reply_to(req);
        m.client_id = Some(id);
        m.successful = Some(true);
        m.version = Some("1.0".into());
        m.supported_connection_types = Some(vec!["long-polling".into()]);
        m.advice = Some(self.advice(Reconnect::Retry));
        if with_acks {
            m.ext = ack_ext(true);
        }
        (m, new_browser)
    }

    fn subscribe(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
        policy: &Policy,
    ) -> Message {
        let mut st = self.lock();
        if !Self::session_ok(&st, req, browser, owner) {
            return Self::unknown_client(req, false);
        }
        let mut reply = reply_to(req);
        reply.subscription = req.subscription.clone();
        let channels: Vec<String> = req
            .subscription
            .as_ref()
            .map(|s| s.channels().map(str::to_owned).collect())
            .unwrap_or_default();
        for ch in &channels {
            *st.stats.subscribe_requests.entry(ch.clone()).or_default() += 1;
        }
        if channels.is_empty() {
            reply.successful = Some(false);
            reply.error = Some("403::Missing subscription".into());
            return reply;
        }
        let invalid: Vec<&str> = channels
            .iter()
            .filter(|c| ChannelName::new(c.as_str()).is_err() || c.starts_with("/meta/"))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            reply.successful = Some(false);
            reply.error = Some(format!("403:{}:Invalid channel", invalid.join(",")));
            return reply;
        }
        let denied: Vec<&str> = channels
            .iter()
            .filter(|c| policy.deny.iter().any(|d| d == *c))
            .map(String::as_str)
            .collect();
        if !denied.is_empty() {
            reply.successful = Some(false);
            reply.error = Some(format!("403:{}:Subscription denied", denied.join(",")));
            return reply;
        }
        if let Some(s) = req
            .client_id
            .as_deref()
            .and_then(|id| st.sessions.get_mut(id))
        {
            s.subscriptions.extend(channels);
        }
        drop(st);
        self.changed.notify_waiters();
        reply.successful = Some(true);
        reply
    }

    fn unsubscribe(&self, req: &Message, browser: Option<&str>, owner: Option<&str>) -> Message {
        let mut st = self.lock();
        if !Self::session_ok(&st, req, browser, owner) {
            return Self::unknown_client(req, false);
        }
        if let (Some(s), Some(sub)) = (
            req.client_id
                .as_deref()
                .and_then(|id| st.sessions.get_mut(id)),
            req.subscription.as_ref(),
        ) {
            for ch in sub.channels() {
                s.subscriptions.remove(ch);
            }
        }
        drop(st);
        self.changed.notify_waiters();
        let mut reply = reply_to(req);
        reply.subscription = req.subscription.clone();
        reply.successful = Some(true);
        reply
    }

    fn disconnect(&self, req: &Message, browser: Option<&str>, owner: Option<&str>) -> Message {
        let mut st = self.lock();
        if !Self::session_ok(&st, req, browser, owner) {
            return Self::unknown_client(req, false);
        }
        if let Some(s) = req
            .client_id
            .as_deref()
            .and_then(|id| st.sessions.remove(id))
        {
            s.wake.notify_waiters();
        }
        st.stats.disconnects += 1;
        drop(st);
        self.changed.notify_waiters();
        let mut reply = reply_to(req);
        reply.successful = Some(true);
        reply
    }

    fn client_publish(&self, msg: Message, browser: Option<&str>, owner: Option<&str>) -> Message {
        {
            let st = self.lock();
            if !Self::session_ok(&st, &msg, browser, owner) {
                return Self::unknown_client(&msg, false);
            }
        }
        let Some(data) = msg.data.as_deref() else {
            return failure(&msg, format!("400:{}:Missing data", msg.channel));
        };
        if ChannelName::new(msg.channel.as_str()).map_or(true, |c| c.is_wildcard()) {
            return failure(&msg, format!("405:{}:Invalid channel", msg.channel));
        }
        {
            let mut st = self.lock();
            st.stats.client_publishes += 1;
            if st.client_log.len() >= self.cfg.max_queue.max(1) {
                st.client_log.pop_front();
            }
            st.client_log
                .push_back((msg.channel.clone(), data.get().to_owned()));
        }
        // Service channels reach the server only; everything else is broadcast.
        if !msg.channel.starts_with("/service/") {
            self.publish(&msg.channel, data);
        }
        self.changed.notify_waiters();
        let mut reply = reply_to(&msg);
        reply.client_id = None;
        reply.successful = Some(true);
        reply
    }

    async fn connect(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
        policy: &Policy,
    ) -> Vec<Message> {
        let client_id = req.client_id.clone().unwrap_or_default();
        let (wake, my_gen, prompt) = {
            let mut st = self.lock();
            st.stats.connects += 1;
            if !Self::session_ok(&st, req, browser, owner) {
                return vec![Self::unknown_client(req, true)];
            }
            if policy.advice_none {
                let mut m = failure(req, "403::Reconnect refused");
                m.advice = Some(Advice {
                    reconnect: Some(Reconnect::None),
                    interval: Some(0),
                    ..Advice::default()
                });
                return vec![m];
            }
            let Some(s) = st.sessions.get_mut(&client_id) else {
                return vec![Self::unknown_client(req, true)];
            };
            s.connect_gen += 1;
            s.held += 1;
            s.last_active = Instant::now();
            // A connect that acknowledges a batch while older messages are still
            // unacknowledged gets them again at once (a reply went missing).
            let mut prompt = false;
            if let Some(acks) = s.acks.as_mut() {
                if let Some(n) = acknowledged(req.ext.as_deref()) {
                    acks.acknowledge(n);
                    prompt = acks.has_unacked();
                }
            }
            // Release any connect this session already has held.
            s.wake.notify_waiters();
            (s.wake.clone(), s.connect_gen, prompt)
        };
        let mut guard = HeldGuard {
            engine: self,
            client_id: client_id.clone(),
            armed: true,
        };
        let hold = req
            .advice
            .as_ref()
            .and_then(|a| a.timeout)
            .map_or(self.cfg.long_poll_timeout, |t| {
                Duration::from_millis(t).min(self.cfg.long_poll_timeout)
            });
        let deadline = Instant::now() + hold;
        let mut shutdown = self.shutdown.clone();
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let now = Instant::now();
                let stopping = *shutdown.borrow();
                let mut st = self.lock();
                let Some(s) = st.sessions.get_mut(&client_id) else {
                    guard.armed = false;
                    return vec![Self::unknown_client(req, true)];
                };
                let superseded = s.connect_gen != my_gen;
                if superseded || prompt || !s.queue.is_empty() || now >= deadline || stopping {
                    guard.armed = false;
                    s.held = s.held.saturating_sub(1);
                    s.last_active = now;
                    let mut m = reply_to(req);
                    m.successful = Some(true);
                    m.advice = Some(self.advice(Reconnect::Retry));
                    // A superseded connect closes no batch and takes nothing with it.
                    let (mut out, redelivered, dropped) = match s.acks.as_mut() {
                        _ if superseded => (Vec::new(), 0, 0),
                        None => (s.queue.drain(..).collect(), 0, 0),
                        Some(acks) => {
                            let batch = acks.close_batch(s.queue.drain(..), self.cfg.max_queue);
                            m.ext = ack_ext(batch.number);
                            (batch.messages, batch.redelivered, batch.dropped)
                        }
                    };
                    st.stats.delivered += out.len() as u64;
                    st.stats.redelivered += redelivered as u64;
                    st.stats.dropped += dropped as u64;
                    drop(st);
                    out.push(m);
                    return out;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
                r = shutdown.changed() => {
                    if r.is_err() {
                        // The server handle is gone: answer now rather than spin.
                        tokio::time::sleep_until(deadline).await;
                    }
                }
            }
        }
    }

    /// Queues `data` on `channel` for every session with a matching subscription; returns
    /// how many sessions got it.
    pub(crate) fn publish(&self, channel: &str, data: &RawValue) -> usize {
        self.publish_where(channel, data, |_| true)
    }

    /// Like [`publish`](Self::publish), but only to the sessions `owner` owns.
    pub(crate) fn publish_to(&self, owner: &str, channel: &str, data: &RawValue) -> usize {
        self.publish_where(channel, data, |s| s.owner.as_deref() == Some(owner))
    }

    fn publish_where(
        &self,
        channel: &str,
        data: &RawValue,
        to: impl Fn(&Session) -> bool,
    ) -> usize {
        let mut st = self.lock();
        st.stats.published += 1;
        let max = self.cfg.max_queue.max(1);
        let mut count = 0;
        let mut dropped = 0;
        for (id, s) in st.sessions.iter_mut() {
            if !to(s) || !s.subscriptions.iter().any(|p| channel_matches(p, channel)) {
                continue;
            }
            if s.queue.len() >= max {
                s.queue.pop_front();
                s.dropped += 1;
                dropped += 1;
                if s.dropped == 1 || s.dropped % 1000 == 0 {
                    tracing::warn!(
                        client_id = %id,
                        dropped = s.dropped,
                        max_queue = max,
                        "session queue full: dropping the oldest message"
                    );
                }
            }
            let mut m = Message::new(channel);
            m.data = Some(data.to_owned());
            s.queue.push_back(m);
            s.wake.notify_waiters();
            count += 1;
        }
        st.stats.dropped += dropped;
        count
    }

    /// Drops every session; held connects answer `402::Unknown client`.
    pub(crate) fn forget_sessions(&self) {
        let mut st = self.lock();
        for (_, s) in st.sessions.drain() {
            s.wake.notify_waiters();
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Removes sessions that have had no connect held or received for `max_interval`.
    pub(crate) fn expire_idle(&self) {
        let now = Instant::now();
        let max = self.cfg.max_interval;
        let mut st = self.lock();
        let before = st.sessions.len();
        st.sessions.retain(|id, s| {
            let keep = s.held > 0 || now.saturating_duration_since(s.last_active) <= max;
            if !keep {
                tracing::debug!(client_id = %id, "session expired");
                s.wake.notify_waiters();
            }
            keep
        });
        let expired = before - st.sessions.len();
        st.stats.expired += expired as u64;
        drop(st);
        if expired > 0 {
            self.changed.notify_waiters();
        }
    }

    /// Counters and a snapshot of sessions and subscriptions; `requests` (an HTTP count) is
    /// left for the server to fill in.
    pub(crate) fn stats(&self) -> SimStats {
        let st = self.lock();
        let mut stats = st.stats.clone();
        stats.sessions = st.sessions.len();
        stats.subscriptions = BTreeMap::new();
        for s in st.sessions.values() {
            for ch in &s.subscriptions {
                *stats.subscriptions.entry(ch.clone()).or_default() += 1;
            }
        }
        stats
    }

    pub(crate) fn client_log(&self) -> Vec<(String, String)> {
        self.lock().client_log.iter().cloned().collect()
    }

    /// The owners with at least one session whose subscriptions match `channel`.
    pub(crate) fn owners_receiving(&self, channel: &str) -> BTreeSet<String> {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.subscriptions.iter().any(|p| channel_matches(p, channel)))
            .filter_map(|s| s.owner.clone())
            .collect()
    }

    fn subscriber_count(&self, channel: &str) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.subscriptions.contains(channel))
            .count()
    }

    /// Waits until `cond` holds, re-checking on every state change, for at most `timeout`.
    pub(crate) async fn wait_until(
        &self,
        timeout: Duration,
        cond: impl Fn(&Engine) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(self) {
                return true;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return cond(self),
            }
        }
    }

    pub(crate) async fn wait_for_subscribers(
        &self,
        channel: &str,
        n: usize,
        timeout: Duration,
    ) -> bool {
        self.wait_until(timeout, |e| e.subscriber_count(channel) >= n)
            .await
    }

    pub(crate) async fn wait_for_sessions(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |e| e.lock().sessions.len() == n)
            .await
    }

    pub(crate) async fn wait_for_client_publishes(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |e| e.lock().stats.client_publishes >= n as u64)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gws_cometd::bayeux::Subscription;

    static P: Policy = Policy {
        advice_none: false,
        deny: Vec::new(),
    };

    fn one(ch: &str) -> Option<Subscription> {
        Some(Subscription::One(ch.to_owned()))
    }

    fn engine(max_queue: usize) -> (Engine, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        let cfg = EngineConfig {
            long_poll_timeout: Duration::from_secs(30),
            interval: Duration::ZERO,
            max_interval: Duration::from_secs(10),
            max_queue,
            ack_extension: true,
        };
        (Engine::new(cfg, rx), tx)
    }

    fn msg(channel: &str, client_id: Option<&str>) -> Message {
        let mut m = Message::new(channel);
        m.id = Some("1".into());
        m.client_id = client_id.map(str::to_owned);
        m
    }

    async fn handshake(e: &Engine) -> (String, String) {
        let r = e
            .handle_batch(vec![msg("/meta/handshake", None)], None, None, &P)
            .await;
        let browser = r.set_browser.expect("a new browser cookie");
        let id = r.messages[0].client_id.clone().expect("a clientId");
        (id, browser)
    }

    fn connect(id: &str, timeout_ms: Option<u64>) -> Message {
        let mut m = msg("/meta/connect", Some(id));
        m.connection_type = Some("long-polling".into());
        m.advice = timeout_ms.map(|t| Advice {
            timeout: Some(t),
            ..Advice::default()
        });
        m
    }

    fn subscribe(id: &str, ch: &str) -> Message {
        let mut m = msg("/meta/subscribe", Some(id));
        m.subscription = one(ch);
        m
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn connect_holds_for_the_long_poll_timeout_when_nothing_is_queued() {
        let (e, _tx) = engine(10);
        let (id, b) = handshake(&e).await;
        let start = Instant::now();
        let r = e
            .handle_batch(vec![connect(&id, None)], Some(&b), None, &P)
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        assert_eq!(r.messages.len(), 1);
        assert!(r.messages[0].is_successful());
    }

    #[tokio::test(start_paused = true)]
    async fn first_connect_with_timeout_zero_answers_at_once() {
        let (e, _tx) = engine(10);
        let (id, b) = handshake(&e).await;
        let start = Instant::now();
        e.handle_batch(vec![connect(&id, Some(0))], Some(&b), None, &P)
            .await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_publish_releases_the_held_connect_with_data_before_the_reply() {
        let (e, _tx) = engine(10);
        let (id, b) = handshake(&e).await;
        e.handle_batch(vec![subscribe(&id, "/v2/**")], Some(&b), None, &P)
            .await;
        let held = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
        let publish = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(e.publish("/v2/me/calls", &raw(r#"{"a":1,"a":2}"#)), 1);
        };
        let start = Instant::now();
        let (r, ()) = tokio::join!(held, publish);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(r.messages.len(), 2);
        assert_eq!(r.messages[0].channel, "/v2/me/calls");
        assert_eq!(
            r.messages[0].data.as_ref().unwrap().get(),
            r#"{"a":1,"a":2}"#
        );
        assert_eq!(r.messages[1].channel, "/meta/connect");
        assert_eq!(e.stats().delivered, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_connect_releases_the_first() {
        let (e, _tx) = engine(10);
        let (id, b) = handshake(&e).await;
        let first = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
        let second = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let start = Instant::now();
            e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P)
                .await;
            start.elapsed()
        };
        let start = Instant::now();
        let first = async {
            let r = first.await;
            (r, start.elapsed())
        };
        let ((r, first_took), second_took) = tokio::join!(first, second);
        assert_eq!(first_took, Duration::from_secs(2));
        assert!(r.messages[0].is_successful());
        assert_eq!(second_took, Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_expire_after_max_interval_without_a_connect() {
        let (e, _tx) = engine(10);
        let (id, b) = handshake(&e).await;
        tokio::time::advance(Duration::from_secs(9)).await;
        e.expire_idle();
        assert_eq!(e.stats().sessions, 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        e.expire_idle();
        assert_eq!(e.stats().sessions, 0);
        assert_eq!(e.stats().expired, 1);
        let r = e
            .handle_batch(vec![connect(&id, Some(0))], Some(&b), None, &P)
            .await;
        assert_eq!(r.messages[0].error.as_deref(), Some(UNKNOWN_CLIENT));
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_connect_keeps_its_session_alive() {
        let (e, _tx) = engine(10);
        let (id, b) = handshake(&e).await;
        let held = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
        let check = async {
            tokio::time::sleep(Duration::from_secs(25)).await;
            e.expire_idle();
            e.stats().sessions
        };
        let (_, sessions) = tokio::join!(held, check);
        assert_eq!(sessions, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_the_oldest_message() {
        let (e, _tx) = engine(2);
        let (id, b) = handshake(&e).await;
        e.handle_batch(vec![subscribe(&id, "/a")], Some(&b), None, &P)
            .await;
        for i in 0..3 {
            e.publish("/a", &raw(&i.to_string()));
        }
        let r = e
            .handle_batch(vec![connect(&id, None)], Some(&b), None, &P)
            .await;
        let data: Vec<_> = r.messages[..2]
            .iter()
            .map(|m| m.data.as_ref().unwrap().get().to_owned())
            .collect();
        assert_eq!(data, ["1", "2"]);
        assert_eq!(e.stats().dropped, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_with_another_browser_cookie_is_an_unknown_client() {
        let (e, _tx) = engine(10);
        let (id, _b) = handshake(&e).await;
        let r = e
            .handle_batch(vec![subscribe(&id, "/a")], Some("other"), None, &P)
            .await;
        assert_eq!(r.messages[0].error.as_deref(), Some(UNKNOWN_CLIENT));
        assert!(r.messages[0].advice.is_none());
        assert!(e.stats().subscriptions.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_connect_lets_the_session_expire() {
        let (e, _tx) = engine(10);
        let (id, b) = handshake(&e).await;
        let held = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
        assert!(tokio::time::timeout(Duration::from_secs(1), held)
            .await
            .is_err());
        tokio::time::advance(Duration::from_secs(11)).await;
        e.expire_idle();
        assert_eq!(e.stats().sessions, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn publish_to_reaches_only_the_owners_sessions_and_owners_cannot_share_sessions() {
        let (e, _tx) = engine(10);
        let mut ids = Vec::new();
        for owner in [Some("alice"), Some("bob"), None] {
            let r = e
                .handle_batch(vec![msg("/meta/handshake", None)], None, owner, &P)
                .await;
            let b = r.set_browser.unwrap();
            let id = r.messages[0].client_id.clone().unwrap();
            let r = e
                .handle_batch(vec![subscribe(&id, "/v2/me/*")], Some(&b), owner, &P)
                .await;
            assert!(r.messages[0].is_successful());
            ids.push((id, b));
        }
        assert_eq!(
            e.owners_receiving("/v2/me/calls"),
            BTreeSet::from(["alice".to_owned(), "bob".to_owned()])
        );
        assert_eq!(e.publish_to("alice", "/v2/me/calls", &raw("1")), 1);
        assert_eq!(e.publish("/v2/me/calls", &raw("2")), 3);

        let (alice, alice_b) = &ids[0];
        let r = e
            .handle_batch(
                vec![connect(alice, Some(0))],
                Some(alice_b),
                Some("alice"),
                &P,
            )
            .await;
        let data: Vec<_> = r.messages[..2]
            .iter()
            .map(|m| m.data.as_ref().unwrap().get().to_owned())
            .collect();
        assert_eq!(data, ["1", "2"]);
        let (bob, bob_b) = &ids[1];
        let r = e
            .handle_batch(vec![connect(bob, Some(0))], Some(bob_b), Some("bob"), &P)
            .await;
        assert_eq!(r.messages.len(), 2, "bob gets the broadcast only");

        // Alice's session used with Bob's login is unknown.
        let r = e
            .handle_batch(
                vec![connect(alice, Some(0))],
                Some(alice_b),
                Some("bob"),
                &P,
            )
            .await;
        assert_eq!(r.messages[0].error.as_deref(), Some(UNKNOWN_CLIENT));
    }
}
