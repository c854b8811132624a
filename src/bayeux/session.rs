//! The Bayeux 1.0 client session state machine (long-polling, CometD 3+ behaviour).
//!
//! # Model
//!
//! [`Session`] holds the whole protocol state and does no I/O. A driver owns it and loops:
//!
//! 1. after every input, call [`Session::poll_request`] until it returns `None`, and send each
//!    [`Request`] (one HTTP POST of its `messages`);
//! 2. report each request's outcome with [`Session::handle_reply`] (the parsed reply batch)
//!    or [`Session::handle_failure`] (a [`Failure`] of [`FailureKind::Timeout`] once its
//!    `deadline` passes: the session never watches deadlines itself);
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

mod ack;
mod other_slot;
mod subscriptions;
mod types;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use self::ack::{Ack, Verdict};
use self::subscriptions::Subscriptions;
use super::channel::ChannelName;
use super::message::{Advice, Message, Reconnect, Subscription};
use crate::backoff::Backoff;

pub use types::{
    Cause, Event, Failure, FailureKind, GapCause, Limit, Request, RequestId, SessionConfig,
    SessionError, SessionEvent, Slot, State, Termination,
};

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
    /// Elements of its reply seen so far (`/meta/connect` answers aside), for the
    /// acknowledged-messages extension.
    elements: usize,
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
    /// The acknowledged-messages extension, when the server granted it to this `clientId`.
    ack: Option<Ack>,
    /// Bumped whenever the current `clientId` is given up.
    generation: u64,
    ever_handshaken: bool,
    handshake_failures: u32,
    /// A connect succeeded since the last handshake or outage.
    connected: bool,
    /// `ConnectionLost` was emitted and no connect has succeeded since.
    outage: bool,
    /// The last time the server showed it held the session (a handshake or connect answered,
    /// or a connect reply begun), for the `maxInterval` expiry rule.
    last_heard: Instant,
    next_msg_id: u64,
    next_request_id: u64,
    next_publish_id: u64,
    long_poll: Option<LongPollFlight>,
    /// What the long-poll slot sends next, and not before when.
    scheduled: Option<(LongPoll, Instant)>,
    other: Option<OtherFlight>,
    subs: Subscriptions,
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
            ack: None,
            generation: 0,
            ever_handshaken: false,
            handshake_failures: 0,
            connected: false,
            outage: false,
            last_heard: now,
            next_msg_id: 1,
            next_request_id: 1,
            next_publish_id: 1,
            long_poll: None,
            scheduled: Some((LongPoll::Handshake, now)),
            other: None,
            subs: Subscriptions::default(),
            publishes: VecDeque::new(),
            disconnect_requested: false,
            events: VecDeque::new(),
            termination: None,
        }
    }

    /// Adds `channel` to the desired subscriptions. Idempotent. A `/meta/subscribe` goes out
    /// (on the other slot) once handshaken, unless this `clientId` already has or is asking
    /// for it. The outcome arrives as [`SessionEvent::Subscribed`] or
    /// [`SessionEvent::SubscriptionDenied`].
    pub fn subscribe(&mut self, channel: ChannelName) {
        self.subs.want(channel);
    }

    /// Removes `channel` from the desired subscriptions. Sends `/meta/unsubscribe` when the
    /// server has (or is being asked for) the subscription; [`SessionEvent::Unsubscribed`]
    /// follows either way.
    pub fn unsubscribe(&mut self, channel: &ChannelName) {
        self.subs.unwant(channel, &mut self.events);
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
    /// [`Event::Terminated`] with [`Termination::Disconnected`] once the disconnect is
    /// answered, fails or times out (at once when there is no session to disconnect).
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

    /// The reply to request `id` began: a success status arrived. For a connect that is the
    /// server answering the session, even if the body is then cut on the way: the session
    /// was alive there then, which the `maxInterval` expiry rule counts from.
    pub fn reply_started(&mut self, id: RequestId, now: Instant) {
        let connect = self
            .long_poll
            .as_ref()
            .is_some_and(|f| f.id == id && f.kind == LongPoll::Connect);
        if connect && self.client_id.is_some() {
            self.last_heard = self.last_heard.max(now);
        }
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

    /// Says whether one element of the reply to request `id` (as it arrives, before the
    /// whole reply reaches [`handle_reply`](Self::handle_reply)) is to be delivered, given
    /// its `channel` and a hash of its text: false for a message redelivered by the
    /// acknowledged-messages extension after it was already delivered from a cut reply.
    /// Call it for every element of a reply, in order, meta messages included; elements it
    /// refuses are dropped, not passed to `handle_reply`.
    pub fn accept_element(&mut self, id: RequestId, channel: &str, hash: u64) -> bool {
        let Some(flight) = self
            .long_poll
            .as_mut()
            .filter(|f| f.id == id && f.kind == LongPoll::Connect)
        else {
            return true;
        };
        let Some(ack) = self.ack.as_mut() else {
            return true;
        };
        if channel == CONNECT {
            return true;
        }
        let position = flight.elements;
        flight.elements += 1;
        match ack.element(position, hash) {
            Verdict::Deliver => true,
            Verdict::Duplicate => false,
            Verdict::Mismatch => {
                self.emit(SessionEvent::Gap {
                    cause: GapCause::RedeliveryMismatch,
                });
                true
            }
        }
    }

    /// Whether elements are to go through [`accept_element`](Self::accept_element): only
    /// while the acknowledged-messages extension is on (saves hashing otherwise).
    pub fn dedupes(&self) -> bool {
        self.ack.is_some()
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
        self.subs.desired()
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

    fn emit(&mut self, event: SessionEvent) {
        self.events.push_back(Event::Session(event));
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
        m.ext = if self.config.ack {
            Some(ack::handshake_ext(self.config.handshake_ext.as_deref()))
        } else {
            self.config.handshake_ext.clone()
        };
        self.scheduled = None;
        self.long_poll = Some(LongPollFlight {
            id,
            kind: LongPoll::Handshake,
            msg_id,
            elements: 0,
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
        m.ext = self.ack.as_ref().map(Ack::connect_ext);
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
            elements: 0,
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
            match flight.kind {
                LongPoll::Handshake => self.handshake_failed(Cause::Unanswered, now),
                LongPoll::Connect => self.connect_failed(Cause::Unanswered, now),
            }
        }
    }

    fn long_poll_failure(&mut self, flight: LongPollFlight, failure: Failure, now: Instant) {
        if failure.kind() == FailureKind::Unauthorized {
            self.terminate(Termination::Failed(SessionError::Unauthorized { failure }));
            return;
        }
        let unknown_client = failure.kind() == FailureKind::UnknownClient;
        if flight.kind == LongPoll::Connect {
            self.reply_lost(&failure);
        }
        let cause = Cause::Failed(failure);
        match flight.kind {
            LongPoll::Handshake => self.handshake_failed(cause, now),
            LongPoll::Connect if unknown_client => {
                self.connection_lost(cause);
                self.rehandshake(now, now, "unknown client");
            }
            LongPoll::Connect => self.connect_failed(cause, now),
        }
    }

    /// A reply that may have carried messages was lost: a gap, unless the server redelivers
    /// (the acknowledged-messages extension) or the failure says nothing was delivered
    /// (never sent; a session gone, which the new handshake reports; refused credentials).
    fn reply_lost(&mut self, failure: &Failure) {
        let lossy = !matches!(
            failure.kind(),
            FailureKind::NotSent | FailureKind::UnknownClient | FailureKind::Unauthorized
        );
        if lossy && self.ack.is_none() {
            self.emit(SessionEvent::Gap {
                cause: GapCause::ReplyLost(failure.clone()),
            });
        }
    }

    fn handshake_reply(&mut self, m: Message, now: Instant) {
        let client_id = m.client_id.filter(|c| !c.is_empty());
        match client_id {
            Some(client_id) if m.successful == Some(true) => {
                self.client_id = Some(client_id.clone());
                self.ack = if self.config.ack {
                    Ack::granted(m.ext.as_deref())
                } else {
                    None
                };
                self.handshake_failures = 0;
                self.backoff.reset();
                self.last_heard = now;
                self.connected = false;
                // The handshake advice has been followed; keeping it would loop.
                if self.advice.reconnect == Some(Reconnect::Handshake) {
                    self.advice.reconnect = None;
                }
                self.subs.reset(&mut self.events);
                let again = self.ever_handshaken;
                self.emit(if again {
                    SessionEvent::Rehandshaken { client_id }
                } else {
                    SessionEvent::Handshaken { client_id }
                });
                if self.ack.is_some() {
                    self.emit(SessionEvent::AcknowledgedMessages);
                }
                if again {
                    self.emit(SessionEvent::Gap {
                        cause: GapCause::Rehandshake,
                    });
                }
                self.ever_handshaken = true;
                self.scheduled = Some((LongPoll::Connect, now));
                self.set_state(State::Connecting);
            }
            _ => {
                let cause = if m.error.is_none() && m.successful == Some(true) {
                    Cause::NoClientId
                } else {
                    Cause::Unsuccessful {
                        error: m.error.clone(),
                    }
                };
                if self.advice.reconnect == Some(Reconnect::None) {
                    self.handshake_failures += 1;
                    let error = m
                        .error
                        .unwrap_or_else(|| "handshake unsuccessful".to_owned());
                    self.emit(SessionEvent::HandshakeFailed {
                        attempt: self.handshake_failures,
                        cause,
                        retry_in: None,
                    });
                    self.terminate(Termination::Failed(SessionError::HandshakeRefused {
                        error,
                    }));
                } else {
                    self.handshake_failed(cause, now);
                }
            }
        }
    }

    fn handshake_failed(&mut self, cause: Cause, now: Instant) {
        self.handshake_failures += 1;
        let attempts = self.handshake_failures;
        let out_of_attempts = !self.ever_handshaken
            && self
                .config
                .initial_handshake_attempts
                .is_some_and(|n| attempts >= n);
        if out_of_attempts {
            self.emit(SessionEvent::HandshakeFailed {
                attempt: attempts,
                cause: cause.clone(),
                retry_in: None,
            });
            self.terminate(Termination::Failed(SessionError::Unreachable {
                attempts,
                last: cause,
            }));
            return;
        }
        let delay = self.backoff.next_delay().max(self.interval());
        self.emit(SessionEvent::HandshakeFailed {
            attempt: attempts,
            cause,
            retry_in: Some(delay),
        });
        self.scheduled = Some((LongPoll::Handshake, now + delay));
        self.set_state(State::Backoff);
    }

    fn connect_reply(&mut self, m: Message, now: Instant) {
        if m.successful == Some(true) {
            if let Some(ack) = self.ack.as_mut() {
                ack.reply_received(m.ext.as_deref());
            }
            self.backoff.reset();
            self.last_heard = now;
            self.outage = false;
            if !self.connected {
                self.connected = true;
                self.emit(SessionEvent::Connected);
            }
            self.subs.release_holds();
            self.set_state(State::Connected);
            match self.advice.reconnect {
                Some(Reconnect::None) => {
                    self.terminate(Termination::Failed(SessionError::ReconnectNone {
                        error: None,
                    }))
                }
                Some(Reconnect::Handshake) => self.rehandshake(now, now, "advice"),
                _ => self.scheduled = Some((LongPoll::Connect, now + self.interval())),
            }
            return;
        }
        let unknown_client = m.bayeux_error().is_some_and(|e| e.is_unknown_client());
        let cause = Cause::Unsuccessful {
            error: m.error.clone(),
        };
        match self.advice.reconnect {
            Some(Reconnect::None) => {
                self.terminate(Termination::Failed(SessionError::ReconnectNone {
                    error: m.error,
                }))
            }
            Some(Reconnect::Handshake) => {
                self.connection_lost(cause);
                self.rehandshake(now, now, "advice");
            }
            _ if unknown_client => {
                self.connection_lost(cause);
                self.rehandshake(now, now, "unknown client");
            }
            _ => {
                if self.ack.is_none() {
                    self.emit(SessionEvent::Gap {
                        cause: GapCause::ConnectRefused {
                            error: m.error.clone(),
                        },
                    });
                }
                self.connect_failed(cause, now)
            }
        }
    }

    fn connection_lost(&mut self, cause: Cause) {
        self.connected = false;
        if !self.outage {
            self.outage = true;
            self.emit(SessionEvent::ConnectionLost { cause });
        }
    }

    /// A connect failed without advice to follow: back off, or handshake when the server
    /// will have expired the session by the time the retry goes out.
    fn connect_failed(&mut self, cause: Cause, now: Instant) {
        self.connection_lost(cause);
        let delay = self.backoff.next_delay().max(self.interval());
        let at = now + delay;
        let a = &self.advice;
        let expiry = Duration::from_millis(
            a.timeout
                .unwrap_or(DEFAULT_TIMEOUT_MS)
                .saturating_add(a.interval.unwrap_or(0))
                .saturating_add(a.max_interval.unwrap_or(DEFAULT_MAX_INTERVAL_MS)),
        );
        if at.saturating_duration_since(self.last_heard) > expiry {
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
        self.ack = None;
        self.generation += 1;
        self.connected = false;
        // An outstanding connect belongs to the old clientId; its reply, if it comes, only
        // delivers data.
        self.long_poll = None;
        self.scheduled = Some((LongPoll::Handshake, at));
        self.subs.reset(&mut self.events);
        self.set_state(if at <= now {
            State::Handshaking
        } else {
            State::Backoff
        });
    }

    fn finish_disconnect(&mut self) {
        if self.state == State::Terminated {
            return;
        }
        // Publishes that never went out are settled before the end.
        while let Some(p) = self.publishes.pop_front() {
            self.fail_publish(p.id, "the session ended before it was sent");
        }
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
        self.ack = None;
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
