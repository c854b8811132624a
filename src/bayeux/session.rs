//! The Bayeux 1.0 client session state machine (long-polling, CometD 3+ behaviour).
//!
//! # Model
//!
//! [`Session`] holds the whole protocol state and does no I/O. A driver owns it and loops:
//!
//! 1. after every input, call [`Session::poll_request`] until it returns `None`, and send each
//!    [`Request`] (one HTTP POST of its `messages`);
//! 2. report each request's outcome with [`Session::handle_reply`] (the parsed reply batch)
//!    or [`Session::handle_failure`] (including [`Failure::Timeout`] once its `deadline`
//!    passes: the session never watches deadlines itself);
//! 3. drain [`Session::poll_event`] and hand the events to the application;
//! 4. sleep until the earliest of the request deadlines and [`Session::poll_timeout`] (the
//!    interval between connects, a backoff), then go to 1.
//!
//! Application calls ([`Session::subscribe`], [`Session::publish`], [`Session::disconnect`])
//! are inputs too. Time is always passed in; the session never reads a clock.
//!
//! Two slots of one request each ([`Slot`]): the long poll (`/meta/handshake`, then
//! `/meta/connect` again and again) and one batch of everything else. Subscriptions are
//! desired state: the session keeps the set the application asked for and reconciles it with
//! what the current `clientId` has, so a re-handshake restores every one of them.
//!
//! Server advice (`reconnect`, `interval`, `timeout`, `maxInterval`, milliseconds) is merged
//! field by field from every reply and persists until replaced.

mod types;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::value::RawValue;

use super::backoff::Backoff;
use super::channel::ChannelName;
use super::message::{Advice, Message, Reconnect, Subscription};

pub use types::{Event, Failure, Request, RequestId, SessionConfig, Slot, State, Termination};

const HANDSHAKE: &str = "/meta/handshake";
const CONNECT: &str = "/meta/connect";
const SUBSCRIBE: &str = "/meta/subscribe";
const UNSUBSCRIBE: &str = "/meta/unsubscribe";
const DISCONNECT: &str = "/meta/disconnect";
const LONG_POLLING: &str = "long-polling";

/// `advice.timeout` assumed until the server gives one (the CometD server default). Without
/// it a connect's deadline would be shorter than the time the server holds it.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// `advice.maxInterval` assumed until the server gives one (the CometD server default).
const DEFAULT_MAX_INTERVAL_MS: u64 = 10_000;

/// What the long-poll slot carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LongPoll {
    Handshake,
    Connect,
}

/// The request in flight on the long-poll slot.
#[derive(Debug)]
struct LongPollFlight {
    id: RequestId,
    kind: LongPoll,
    msg_id: String,
}

/// One message of the request in flight on the other slot.
#[derive(Debug)]
enum Entry {
    Subscribe(ChannelName),
    Unsubscribe(ChannelName),
    Publish(u64),
    Disconnect,
}

/// The request in flight on the other slot. `generation` says which `clientId` it was sent
/// for: after a re-handshake its meta replies no longer describe the current session.
#[derive(Debug)]
struct OtherFlight {
    id: RequestId,
    generation: u64,
    entries: Vec<(String, Entry)>,
}

/// Where a channel stands with the server under the current `clientId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubStatus {
    NotSent,
    Pending,
    Subscribed,
    Denied,
    Unsubscribing,
}

/// A channel the application wants (`desired`) or that the server may still have.
#[derive(Debug)]
struct SubEntry {
    desired: bool,
    status: SubStatus,
    /// A request for it failed in transport: wait for the next successful connect before
    /// trying again, so a dead network is not hammered from two slots.
    held: bool,
}

#[derive(Debug)]
struct QueuedPublish {
    id: u64,
    channel: ChannelName,
    data: Box<RawValue>,
}

/// A Bayeux client session; see the [module docs](self).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    backoff: Backoff,
    /// Merged server advice.
    advice: Advice,
    /// Set while the session is believed valid on the server.
    client_id: Option<String>,
    /// Bumped whenever the current `clientId` is given up.
    generation: u64,
    ever_handshaken: bool,
    handshake_failures: u32,
    /// A connect succeeded since the last handshake or outage.
    connected: bool,
    /// `ConnectionLost` was emitted and no connect has succeeded since.
    outage: bool,
    /// The last successful connect or handshake, for the `maxInterval` expiry rule.
    last_success: Instant,
    next_msg_id: u64,
    next_request_id: u64,
    next_publish_id: u64,
    long_poll: Option<LongPollFlight>,
    /// What the long-poll slot sends next, and not before when.
    scheduled: Option<(LongPoll, Instant)>,
    other: Option<OtherFlight>,
    subs: IndexMap<ChannelName, SubEntry>,
    publishes: VecDeque<QueuedPublish>,
    disconnect_requested: bool,
    events: VecDeque<Event>,
    /// Set by `terminate`; the `Terminated` event is queued at the end of the current input
    /// so that it stays last (data later in the same reply batch is still delivered).
    termination: Option<Termination>,
}

impl Session {
    /// A session that wants to handshake at `now`.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        Session {
            backoff: Backoff::new(&config.backoff),
            config,
            state: State::Unconnected,
            advice: Advice::default(),
            client_id: None,
            generation: 0,
            ever_handshaken: false,
            handshake_failures: 0,
            connected: false,
            outage: false,
            last_success: now,
            next_msg_id: 1,
            next_request_id: 1,
            next_publish_id: 1,
            long_poll: None,
            scheduled: Some((LongPoll::Handshake, now)),
            other: None,
            subs: IndexMap::new(),
            publishes: VecDeque::new(),
            disconnect_requested: false,
            events: VecDeque::new(),
            termination: None,
        }
    }

    /// Adds `channel` to the desired subscriptions. Idempotent. A `/meta/subscribe` goes out
    /// (on the other slot) once handshaken, unless this `clientId` already has or is asking
    /// for it. The outcome arrives as [`Event::Subscribed`] or [`Event::SubscriptionDenied`].
    pub fn subscribe(&mut self, channel: ChannelName) {
        match self.subs.get_mut(&channel) {
            Some(entry) => entry.desired = true,
            None => {
                self.subs.insert(
                    channel,
                    SubEntry {
                        desired: true,
                        status: SubStatus::NotSent,
                        held: false,
                    },
                );
            }
        }
    }

    /// Removes `channel` from the desired subscriptions. Sends `/meta/unsubscribe` when the
    /// server has (or is being asked for) the subscription; [`Event::Unsubscribed`] follows
    /// either way.
    pub fn unsubscribe(&mut self, channel: &ChannelName) {
        let Some(entry) = self.subs.get_mut(channel) else {
            return;
        };
        entry.desired = false;
        if matches!(entry.status, SubStatus::NotSent | SubStatus::Denied) {
            self.subs.shift_remove(channel);
            self.events.push_back(Event::Unsubscribed {
                channel: channel.clone(),
            });
        }
    }

    /// Queues `data` for `channel` and returns the id its [`Event::PublishAck`] will carry.
    /// Publishes wait until handshaken and are not retried: a failed request acks them with
    /// `successful: false`.
    pub fn publish(&mut self, channel: ChannelName, data: Box<RawValue>) -> u64 {
        let id = self.next_publish_id;
        self.next_publish_id += 1;
        if self.state == State::Terminated || self.disconnect_requested {
            self.fail_publish(id, "the session is closed");
        } else {
            self.publishes
                .push_back(QueuedPublish { id, channel, data });
        }
        id
    }

    /// Ends the session: sends `/meta/disconnect` on the other slot when handshaken (queued
    /// publishes go in the same batch), abandons the outstanding connect, then emits
    /// [`Event::Disconnected`] and [`Event::Terminated`] once the disconnect is answered,
    /// fails or times out (at once when there is no session to disconnect).
    pub fn disconnect(&mut self) {
        if self.state == State::Terminated || self.disconnect_requested {
            return;
        }
        self.disconnect_requested = true;
        self.long_poll = None;
        self.scheduled = None;
        if self.client_id.is_some() {
            self.set_state(State::Disconnecting);
        } else {
            self.finish_disconnect();
        }
        self.flush_termination();
    }

    /// The next request to send, if any. Call until `None` after every input.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        if matches!(self.state, State::Terminated) {
            return None;
        }
        if self.long_poll.is_none() {
            if let Some((kind, at)) = self.scheduled {
                if at <= now {
                    match kind {
                        LongPoll::Handshake => return Some(self.handshake_request(now)),
                        LongPoll::Connect if self.client_id.is_some() => {
                            return Some(self.connect_request(now))
                        }
                        LongPoll::Connect => {}
                    }
                }
            }
        }
        if self.other.is_none() && self.client_id.is_some() {
            return self.other_request(now);
        }
        None
    }

    /// The reply batch for request `id`. Data messages become [`Event::Message`] whatever
    /// the request; meta replies count only when they answer what is outstanding. Once the
    /// session is terminated, replies are ignored.
    pub fn handle_reply(&mut self, id: RequestId, messages: Vec<Message>, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        if self.long_poll.as_ref().is_some_and(|f| f.id == id) {
            if let Some(flight) = self.long_poll.take() {
                self.long_poll_reply(flight, messages, now);
            }
        } else if self.other.as_ref().is_some_and(|f| f.id == id) {
            if let Some(flight) = self.other.take() {
                self.other_reply(flight, messages, now);
            }
        } else {
            // Abandoned (a re-handshake or disconnect happened meanwhile): what the server
            // delivered is still delivered; its meta replies describe a session given up.
            for m in messages {
                if !m.is_meta() {
                    self.events.push_back(Event::Message(m));
                }
            }
        }
        self.flush_termination();
    }

    /// Whether data messages of a reply would be delivered now, whatever request it answers
    /// (data of abandoned requests is delivered too): false once terminated, when
    /// [`handle_reply`](Self::handle_reply) ignores replies. A driver that hands data
    /// messages to the application as a reply arrives, before the rest of the batch reaches
    /// `handle_reply`, asks this first.
    pub fn delivers_data(&self) -> bool {
        self.state != State::Terminated
    }

    /// Request `id` did not yield a reply batch.
    pub fn handle_failure(&mut self, id: RequestId, failure: Failure, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        if self.long_poll.as_ref().is_some_and(|f| f.id == id) {
            if let Some(flight) = self.long_poll.take() {
                self.long_poll_failure(flight, failure, now);
            }
        } else if self.other.as_ref().is_some_and(|f| f.id == id) {
            if let Some(flight) = self.other.take() {
                self.other_failure(flight, failure, now);
            }
        }
        self.flush_termination();
    }

    /// The instant at which [`Session::poll_request`] will have something new to send (the
    /// end of an interval or a backoff); may be in the past. `None` when only a reply, a
    /// failure or an application call can move the session on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Terminated || self.long_poll.is_some() {
            return None;
        }
        self.scheduled.map(|(_, at)| at)
    }

    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Where the session is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The current `clientId`, while the session is believed valid on the server.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The channels the application wants, in the order first asked for.
    pub fn desired_subscriptions(&self) -> impl Iterator<Item = &ChannelName> {
        self.subs.iter().filter(|(_, e)| e.desired).map(|(c, _)| c)
    }

    // ---- building requests ----

    fn set_state(&mut self, to: State) {
        if self.state != to {
            tracing::debug!(
                from = self.state.name(),
                to = to.name(),
                "bayeux session state"
            );
            self.state = to;
        }
    }

    fn msg_id(&mut self) -> String {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id.to_string()
    }

    fn request_id(&mut self) -> RequestId {
        let id = RequestId(self.next_request_id);
        self.next_request_id += 1;
        id
    }

    fn handshake_request(&mut self, now: Instant) -> Request {
        let msg_id = self.msg_id();
        let id = self.request_id();
        let mut m = Message::new(HANDSHAKE);
        m.id = Some(msg_id.clone());
        m.version = Some("1.0".into());
        m.supported_connection_types = Some(vec![LONG_POLLING.into()]);
        m.ext = self.config.handshake_ext.clone();
        self.scheduled = None;
        self.long_poll = Some(LongPollFlight {
            id,
            kind: LongPoll::Handshake,
            msg_id,
        });
        self.set_state(State::Handshaking);
        Request {
            id,
            slot: Slot::Connect,
            messages: vec![m],
            deadline: now + self.config.max_network_delay,
        }
    }

    fn connect_request(&mut self, now: Instant) -> Request {
        let msg_id = self.msg_id();
        let id = self.request_id();
        let mut m = Message::new(CONNECT);
        m.id = Some(msg_id.clone());
        m.client_id = self.client_id.clone();
        m.connection_type = Some(LONG_POLLING.into());
        // Until a connect succeeds, ask the server to answer at once so the session learns
        // quickly that it is connected (the first connect after a handshake or an outage).
        let hold_ms = if self.connected {
            self.advice.timeout.unwrap_or(DEFAULT_TIMEOUT_MS)
        } else {
            m.advice = Some(Advice {
                timeout: Some(0),
                ..Advice::default()
            });
            0
        };
        self.scheduled = None;
        self.long_poll = Some(LongPollFlight {
            id,
            kind: LongPoll::Connect,
            msg_id,
        });
        self.set_state(if self.connected {
            State::Connected
        } else {
            State::Connecting
        });
        Request {
            id,
            slot: Slot::Connect,
            messages: vec![m],
            deadline: now + Duration::from_millis(hold_ms) + self.config.max_network_delay,
        }
    }

    /// Batches everything queued for the other slot, or `None` when there is nothing.
    fn other_request(&mut self, now: Instant) -> Option<Request> {
        let client_id = self.client_id.clone()?;
        let mut entries = Vec::new();
        let mut messages = Vec::new();
        if !self.disconnect_requested {
            let mut batch = Vec::new();
            for (channel, e) in self.subs.iter_mut() {
                if e.held {
                    continue;
                }
                match (e.desired, e.status) {
                    (true, SubStatus::NotSent) => {
                        e.status = SubStatus::Pending;
                        batch.push((SUBSCRIBE, channel.clone()));
                    }
                    (false, SubStatus::Subscribed) => {
                        e.status = SubStatus::Unsubscribing;
                        batch.push((UNSUBSCRIBE, channel.clone()));
                    }
                    _ => {}
                }
            }
            for (meta, channel) in batch {
                let msg_id = self.msg_id();
                let mut m = Message::new(meta);
                m.id = Some(msg_id.clone());
                m.client_id = Some(client_id.clone());
                m.subscription = Some(Subscription::One(channel.as_str().to_owned()));
                messages.push(m);
                let entry = if meta == SUBSCRIBE {
                    Entry::Subscribe(channel)
                } else {
                    Entry::Unsubscribe(channel)
                };
                entries.push((msg_id, entry));
            }
        }
        while let Some(p) = self.publishes.pop_front() {
            let msg_id = self.msg_id();
            let mut m = Message::new(p.channel.as_str());
            m.id = Some(msg_id.clone());
            m.client_id = Some(client_id.clone());
            m.data = Some(p.data);
            messages.push(m);
            entries.push((msg_id, Entry::Publish(p.id)));
        }
        if self.disconnect_requested {
            let msg_id = self.msg_id();
            let mut m = Message::new(DISCONNECT);
            m.id = Some(msg_id.clone());
            m.client_id = Some(client_id);
            messages.push(m);
            entries.push((msg_id, Entry::Disconnect));
        }
        if entries.is_empty() {
            return None;
        }
        let id = self.request_id();
        self.other = Some(OtherFlight {
            id,
            generation: self.generation,
            entries,
        });
        Some(Request {
            id,
            slot: Slot::Other,
            messages,
            deadline: now + self.config.max_network_delay,
        })
    }

    // ---- handling outcomes ----

    fn merge_advice(&mut self, advice: Option<&Advice>) {
        let Some(a) = advice else { return };
        if a.reconnect.is_some() {
            self.advice.reconnect = a.reconnect.clone();
        }
        if a.interval.is_some() {
            self.advice.interval = a.interval;
        }
        if a.timeout.is_some() {
            self.advice.timeout = a.timeout;
        }
        if a.max_interval.is_some() {
            self.advice.max_interval = a.max_interval;
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.advice.interval.unwrap_or(0))
    }

    fn long_poll_reply(&mut self, flight: LongPollFlight, messages: Vec<Message>, now: Instant) {
        let expected = match flight.kind {
            LongPoll::Handshake => HANDSHAKE,
            LongPoll::Connect => CONNECT,
        };
        let mut answered = false;
        for m in messages {
            if !m.is_meta() {
                self.events.push_back(Event::Message(m));
                continue;
            }
            // An id-less reply is accepted: lenient servers do not always echo it.
            let ours = m.channel == expected
                && m.id.as_deref().is_none_or(|i| i == flight.msg_id)
                && !answered
                && self.state != State::Terminated;
            if !ours {
                tracing::debug!(channel = %m.channel, id = ?m.id, "dropping stale meta reply");
                continue;
            }
            answered = true;
            self.merge_advice(m.advice.as_ref());
            match flight.kind {
                LongPoll::Handshake => self.handshake_reply(m, now),
                LongPoll::Connect => self.connect_reply(m, now),
            }
        }
        if !answered && self.state != State::Terminated {
            let reason = format!("reply carried no {expected} answer");
            match flight.kind {
                LongPoll::Handshake => self.handshake_failed(reason, now),
                LongPoll::Connect => self.connect_failed(reason, now),
            }
        }
    }

    fn long_poll_failure(&mut self, flight: LongPollFlight, failure: Failure, now: Instant) {
        if let Some(status) = failure.unauthorized_status() {
            self.terminate(Termination::Unauthorized { status });
            return;
        }
        match flight.kind {
            LongPoll::Handshake => self.handshake_failed(failure.to_string(), now),
            LongPoll::Connect if failure.is_unknown_client() => {
                self.connection_lost(failure.to_string());
                self.rehandshake(now, now, "unknown client");
            }
            LongPoll::Connect => self.connect_failed(failure.to_string(), now),
        }
    }

    fn handshake_reply(&mut self, m: Message, now: Instant) {
        let client_id = m.client_id.filter(|c| !c.is_empty());
        match client_id {
            Some(client_id) if m.successful == Some(true) => {
                self.client_id = Some(client_id.clone());
                self.handshake_failures = 0;
                self.backoff.reset();
                self.last_success = now;
                self.connected = false;
                // The handshake advice has been followed; keeping it would loop.
                if self.advice.reconnect == Some(Reconnect::Handshake) {
                    self.advice.reconnect = None;
                }
                self.reset_subscriptions();
                self.events.push_back(if self.ever_handshaken {
                    Event::Rehandshaken { client_id }
                } else {
                    Event::Handshaken { client_id }
                });
                self.ever_handshaken = true;
                self.scheduled = Some((LongPoll::Connect, now));
                self.set_state(State::Connecting);
            }
            _ => {
                let reason = match (&m.error, m.successful) {
                    (Some(e), _) => e.clone(),
                    (None, Some(true)) => "handshake reply has no clientId".to_owned(),
                    (None, _) => "handshake unsuccessful".to_owned(),
                };
                if self.advice.reconnect == Some(Reconnect::None) {
                    self.handshake_failures += 1;
                    self.events.push_back(Event::HandshakeFailed {
                        attempt: self.handshake_failures,
                        reason: reason.clone(),
                        retry_in: None,
                    });
                    self.terminate(Termination::HandshakeRefused { error: reason });
                } else {
                    self.handshake_failed(reason, now);
                }
            }
        }
    }

    fn handshake_failed(&mut self, reason: String, now: Instant) {
        self.handshake_failures += 1;
        let attempts = self.handshake_failures;
        let out_of_attempts = !self.ever_handshaken
            && self
                .config
                .initial_handshake_attempts
                .is_some_and(|n| attempts >= n);
        if out_of_attempts {
            self.events.push_back(Event::HandshakeFailed {
                attempt: attempts,
                reason: reason.clone(),
                retry_in: None,
            });
            self.terminate(Termination::Unreachable {
                attempts,
                last_error: reason,
            });
            return;
        }
        let delay = self.backoff.next_delay().max(self.interval());
        self.events.push_back(Event::HandshakeFailed {
            attempt: attempts,
            reason,
            retry_in: Some(delay),
        });
        self.scheduled = Some((LongPoll::Handshake, now + delay));
        self.set_state(State::Backoff);
    }

    fn connect_reply(&mut self, m: Message, now: Instant) {
        if m.successful == Some(true) {
            self.backoff.reset();
            self.last_success = now;
            self.outage = false;
            if !self.connected {
                self.connected = true;
                self.events.push_back(Event::Connected);
            }
            for e in self.subs.values_mut() {
                e.held = false;
            }
            self.set_state(State::Connected);
            match self.advice.reconnect {
                Some(Reconnect::None) => self.terminate(Termination::ReconnectNone { error: None }),
                Some(Reconnect::Handshake) => self.rehandshake(now, now, "advice"),
                _ => self.scheduled = Some((LongPoll::Connect, now + self.interval())),
            }
            return;
        }
        let error = m.error.clone();
        let reason = error
            .clone()
            .unwrap_or_else(|| "connect unsuccessful".to_owned());
        let unknown_client = m.bayeux_error().is_some_and(|e| e.is_unknown_client());
        match self.advice.reconnect {
            Some(Reconnect::None) => self.terminate(Termination::ReconnectNone { error }),
            Some(Reconnect::Handshake) => {
                self.connection_lost(reason);
                self.rehandshake(now, now, "advice");
            }
            _ if unknown_client => {
                self.connection_lost(reason);
                self.rehandshake(now, now, "unknown client");
            }
            _ => self.connect_failed(reason, now),
        }
    }

    fn connection_lost(&mut self, reason: String) {
        self.connected = false;
        if !self.outage {
            self.outage = true;
            self.events.push_back(Event::ConnectionLost { reason });
        }
    }

    /// A connect failed without advice to follow: back off, or handshake when the server
    /// will have expired the session by the time the retry goes out.
    fn connect_failed(&mut self, reason: String, now: Instant) {
        self.connection_lost(reason);
        let delay = self.backoff.next_delay().max(self.interval());
        let at = now + delay;
        let a = &self.advice;
        let expiry = Duration::from_millis(
            a.timeout
                .unwrap_or(DEFAULT_TIMEOUT_MS)
                .saturating_add(a.interval.unwrap_or(0))
                .saturating_add(a.max_interval.unwrap_or(DEFAULT_MAX_INTERVAL_MS)),
        );
        if at.saturating_duration_since(self.last_success) > expiry {
            self.rehandshake(now, at, "unconnected longer than the server keeps sessions");
        } else {
            self.scheduled = Some((LongPoll::Connect, at));
            self.set_state(State::Backoff);
        }
    }

    /// Gives up the current `clientId` and schedules a handshake at `at`. Does nothing when
    /// there is no session to give up (a handshake is already under way) or the session is
    /// ending, so several triggers in one batch cause one handshake.
    fn rehandshake(&mut self, now: Instant, at: Instant, why: &str) {
        if self.client_id.is_none()
            || matches!(self.state, State::Terminated | State::Disconnecting)
        {
            return;
        }
        tracing::debug!(why, "bayeux re-handshake");
        self.client_id = None;
        self.generation += 1;
        self.connected = false;
        // An outstanding connect belongs to the old clientId; its reply, if it comes, only
        // delivers data.
        self.long_poll = None;
        self.scheduled = Some((LongPoll::Handshake, at));
        self.reset_subscriptions();
        self.set_state(if at <= now {
            State::Handshaking
        } else {
            State::Backoff
        });
    }

    /// A new `clientId` has no subscriptions: every desired channel is to be sent again, and
    /// channels only kept for a pending unsubscribe are gone.
    fn reset_subscriptions(&mut self) {
        let mut gone = Vec::new();
        self.subs.retain(|channel, e| {
            if e.desired {
                e.status = SubStatus::NotSent;
                e.held = false;
                true
            } else {
                gone.push(channel.clone());
                false
            }
        });
        for channel in gone {
            self.events.push_back(Event::Unsubscribed { channel });
        }
    }

    fn other_reply(&mut self, flight: OtherFlight, messages: Vec<Message>, now: Instant) {
        let mut answered = vec![false; flight.entries.len()];
        for m in messages {
            let current = flight.generation == self.generation && self.state != State::Terminated;
            let idx =
                flight.entries.iter().enumerate().position(|(i, (mid, _))| {
                    !answered[i] && m.id.as_deref() == Some(mid.as_str())
                });
            if !m.is_meta() {
                let ack = idx.filter(|&i| {
                    matches!(flight.entries[i].1, Entry::Publish(_)) && m.successful.is_some()
                });
                match ack {
                    Some(i) => {
                        answered[i] = true;
                        if let Entry::Publish(publish_id) = flight.entries[i].1 {
                            self.events.push_back(Event::PublishAck {
                                publish_id,
                                successful: m.successful == Some(true),
                                error: m.error.clone(),
                            });
                        }
                        if current {
                            self.merge_advice(m.advice.as_ref());
                            if m.bayeux_error().is_some_and(|e| e.is_unknown_client()) {
                                self.rehandshake(now, now, "unknown client");
                            }
                        }
                        if m.data.is_some() {
                            self.events.push_back(Event::Message(m));
                        }
                    }
                    None => self.events.push_back(Event::Message(m)),
                }
                continue;
            }
            if !current {
                continue;
            }
            self.merge_advice(m.advice.as_ref());
            let entry = idx.filter(|&i| {
                let (_, e) = &flight.entries[i];
                matches!(
                    (e, m.channel.as_str()),
                    (Entry::Subscribe(_), SUBSCRIBE)
                        | (Entry::Unsubscribe(_), UNSUBSCRIBE)
                        | (Entry::Disconnect, DISCONNECT)
                )
            });
            let unknown_client = m.bayeux_error().is_some_and(|e| e.is_unknown_client());
            match entry {
                Some(i) => {
                    answered[i] = true;
                    match &flight.entries[i].1 {
                        Entry::Subscribe(c) => self.subscribe_reply(c, &m, now),
                        Entry::Unsubscribe(c) => self.unsubscribe_reply(c, &m, now),
                        Entry::Disconnect => self.finish_disconnect(),
                        Entry::Publish(_) => {}
                    }
                }
                None if unknown_client => self.rehandshake(now, now, "unknown client"),
                None => {}
            }
            // Advice on a non-connect reply is followed too (a disconnect reply's
            // `reconnect: none` is moot: the session is already over).
            if self.state != State::Terminated {
                match m.advice.as_ref().and_then(|a| a.reconnect.as_ref()) {
                    Some(Reconnect::Handshake) => self.rehandshake(now, now, "advice"),
                    Some(Reconnect::None) => self.terminate(Termination::ReconnectNone {
                        error: m.error.clone(),
                    }),
                    _ => {}
                }
            }
        }
        // Whatever the server did not answer counts as failed in transport.
        let unanswered = flight
            .entries
            .into_iter()
            .zip(answered)
            .filter(|(_, a)| !a)
            .map(|(e, _)| e.1);
        let current = flight.generation == self.generation;
        self.other_entries_failed(unanswered, current, "no reply to this message");
    }

    fn subscribe_reply(&mut self, channel: &ChannelName, m: &Message, now: Instant) {
        if m.successful == Some(true) {
            if let Some(e) = self.subs.get_mut(channel) {
                e.status = SubStatus::Subscribed;
            }
            self.events.push_back(Event::Subscribed {
                channel: channel.clone(),
            });
            return;
        }
        if m.bayeux_error().is_some_and(|e| e.is_unknown_client()) {
            // Not a denial: the new session will ask again.
            self.rehandshake(now, now, "unknown client");
            return;
        }
        let error = m
            .error
            .clone()
            .unwrap_or_else(|| "subscription refused".to_owned());
        self.events.push_back(Event::SubscriptionDenied {
            channel: channel.clone(),
            error,
        });
        if let Some(e) = self.subs.get_mut(channel) {
            e.status = SubStatus::Denied;
            if !e.desired {
                self.subs.shift_remove(channel);
                self.events.push_back(Event::Unsubscribed {
                    channel: channel.clone(),
                });
            }
        }
    }

    fn unsubscribe_reply(&mut self, channel: &ChannelName, m: &Message, now: Instant) {
        if m.bayeux_error().is_some_and(|e| e.is_unknown_client()) {
            // The new session will not have it either; reset_subscriptions reports it.
            self.rehandshake(now, now, "unknown client");
            return;
        }
        if m.successful != Some(true) {
            tracing::debug!(%channel, error = ?m.error, "unsubscribe refused; treating as gone");
        }
        let Some(e) = self.subs.get_mut(channel) else {
            return;
        };
        if e.desired {
            // Asked for again meanwhile: subscribe anew.
            e.status = SubStatus::NotSent;
        } else {
            self.subs.shift_remove(channel);
        }
        self.events.push_back(Event::Unsubscribed {
            channel: channel.clone(),
        });
    }

    fn other_failure(&mut self, flight: OtherFlight, failure: Failure, now: Instant) {
        let current = flight.generation == self.generation;
        let reason = failure.to_string();
        let unauthorized = failure.unauthorized_status();
        self.other_entries_failed(flight.entries.into_iter().map(|e| e.1), current, &reason);
        if let Some(status) = unauthorized {
            self.terminate(Termination::Unauthorized { status });
        } else if current && failure.is_unknown_client() {
            self.rehandshake(now, now, "unknown client");
        }
    }

    /// Entries of an other-slot request that got no answer. Publishes are acked as failed;
    /// subscription changes wait for the next successful connect; a disconnect completes.
    fn other_entries_failed(
        &mut self,
        entries: impl Iterator<Item = Entry>,
        current: bool,
        reason: &str,
    ) {
        for entry in entries {
            match entry {
                Entry::Publish(id) => self.fail_publish(id, reason),
                Entry::Disconnect => self.finish_disconnect(),
                Entry::Subscribe(c) | Entry::Unsubscribe(c) => {
                    if !current || self.state == State::Terminated {
                        continue;
                    }
                    let Some(e) = self.subs.get_mut(&c) else {
                        continue;
                    };
                    e.held = true;
                    e.status = match e.status {
                        SubStatus::Pending => SubStatus::NotSent,
                        // The server may still have it: try the unsubscribe again.
                        SubStatus::Unsubscribing => SubStatus::Subscribed,
                        s => s,
                    };
                    if !e.desired && e.status == SubStatus::NotSent {
                        self.subs.shift_remove(&c);
                        self.events.push_back(Event::Unsubscribed { channel: c });
                    }
                }
            }
        }
    }

    fn fail_publish(&mut self, publish_id: u64, reason: &str) {
        self.events.push_back(Event::PublishAck {
            publish_id,
            successful: false,
            error: Some(reason.to_owned()),
        });
    }

    fn finish_disconnect(&mut self) {
        if self.state == State::Terminated {
            return;
        }
        // Publishes that never went out are settled before `Disconnected`.
        while let Some(p) = self.publishes.pop_front() {
            self.fail_publish(p.id, "the session ended before it was sent");
        }
        self.events.push_back(Event::Disconnected);
        self.terminate(Termination::Disconnected);
    }

    /// Stops everything. Queued publishes are acked as failed; the `Terminated` event is
    /// queued by `flush_termination` at the end of the current input.
    fn terminate(&mut self, reason: Termination) {
        if self.state == State::Terminated {
            return;
        }
        tracing::debug!(?reason, "bayeux session terminated");
        self.set_state(State::Terminated);
        self.long_poll = None;
        self.scheduled = None;
        self.client_id = None;
        if let Some(flight) = self.other.take() {
            for (_, entry) in flight.entries {
                if let Entry::Publish(id) = entry {
                    self.fail_publish(id, "the session ended before a reply");
                }
            }
        }
        while let Some(p) = self.publishes.pop_front() {
            self.fail_publish(p.id, "the session ended before it was sent");
        }
        self.termination = Some(reason);
    }

    fn flush_termination(&mut self) {
        if let Some(reason) = self.termination.take() {
            self.events.push_back(Event::Terminated { reason });
        }
    }
}
