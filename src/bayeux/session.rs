//! The Bayeux 1.0 client session state machine (long-polling, CometD 3+ behaviour).
//!
//! # Model
//!
//! [`Session`] holds the whole protocol state and does no I/O. A driver owns it and loops:
//!
//! 1. after every input, call [`Session::poll_request`] until it returns `None`, and send each
//!    [`Request`] (one HTTP POST of its `messages`);
//! 2. hand the session each part of each request's reply as it arrives with
//!    [`Session::reply`] (the head, every element, the end, or a [`Failure`] of
//!    [`FailureKind::Timeout`] once its `deadline` passes: the session never watches
//!    deadlines itself), and do what the returned [`Verdict`] says;
//! 3. drain [`Session::poll_event`] and hand the events to the application;
//! 4. sleep until the earliest of the request deadlines and [`Session::poll_timeout`] (the
//!    interval between connects, a backoff), then go to 1.
//!
//! Application calls ([`Session::subscribe`], [`Session::publish`], [`Session::disconnect`])
//! are inputs too. Time is always passed in; the session never reads a clock.
//!
//! Two slots of one request each ([`Slot`](types::Slot)): the long poll (`/meta/handshake`, then
//! `/meta/connect` again and again) and one batch of everything else. Subscriptions are
//! desired state: the session keeps the set the application asked for and reconciles it with
//! what the current `clientId` has, so a re-handshake restores every one of them.
//!
//! Server advice (`reconnect`, `interval`, `timeout`, `maxInterval`, milliseconds) is merged
//! field by field from every reply and persists until replaced.
//!
//! Where the session is lives in one `Phase` (handshaking, handshaken, disconnecting,
//! terminated) whose variants carry what is true in them: the `clientId`, the
//! acknowledged-messages extension, the long poll due or in flight. [`State`] summarises it.
//!
//! | module | what it is |
//! |---|---|
//! | `phase` | the phase and the long-poll slot |
//! | `long_poll` | handshakes and connects: requests, replies, failures, backoff, expiry |
//! | `batch` | the batch slot: subscribe, unsubscribe, publish, disconnect |
//! | `reply` | replies as they arrive: [`ReplyPart`] in, [`Verdict`] out |
//! | `ack` | the acknowledged-messages extension |
//! | `subscriptions` | the desired subscriptions and where each stands |
//! | `types` | the values that cross the boundary: config, requests, failures, events |

mod ack;
mod batch;
mod long_poll;
mod phase;
mod reply;
mod subscriptions;
mod types;

#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::time::Instant;

use serde_json::value::RawValue;

use self::batch::{BatchFlight, QueuedPublish};
use self::phase::{LongPoll, Phase};
use self::subscriptions::Subscriptions;
use super::channel::ChannelName;
use super::message::{Advice, Message};
use crate::backoff::Backoff;

pub(crate) use reply::{ReplyPart, Verdict};
#[cfg(test)]
use types::Slot;
pub use types::{Cause, Failure, FailureKind, GapCause, Limit, SessionError, SessionEvent};
pub(crate) use types::{Event, Request, RequestId, SessionConfig, State, Termination};

const HANDSHAKE: &str = "/meta/handshake";
const CONNECT: &str = "/meta/connect";
const SUBSCRIBE: &str = "/meta/subscribe";
const UNSUBSCRIBE: &str = "/meta/unsubscribe";
const DISCONNECT: &str = "/meta/disconnect";
const LONG_POLLING: &str = "long-polling";

/// A Bayeux client session; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Session {
    config: SessionConfig,
    phase: Phase,
    backoff: Backoff,
    /// Paces handshakes after sessions the server forgot before any connect succeeded on
    /// them; reset by a successful connect.
    forget_backoff: Backoff,
    /// Merged server advice.
    advice: Advice,
    /// Bumped whenever a `clientId` is given up: a batch sent for an older one no longer
    /// describes the current session.
    generation: u64,
    next_msg_id: u64,
    next_request_id: u64,
    next_publish_id: u64,
    /// The request in flight on the batch slot.
    batch: Option<BatchFlight>,
    /// Long polls given up (a re-handshake or disconnect happened meanwhile) whose replies
    /// may still come: their data is still delivered.
    abandoned: Vec<(RequestId, Vec<Message>)>,
    subs: Subscriptions,
    publishes: VecDeque<QueuedPublish>,
    events: VecDeque<Event>,
    /// Hashes reply elements for the acknowledged-messages extension: the same text always
    /// gives the same hash within a session.
    hasher: RandomState,
}

impl Session {
    /// A session that wants to handshake at `now`.
    pub(crate) fn new(config: SessionConfig, now: Instant) -> Self {
        Session {
            backoff: Backoff::new(&config.backoff),
            forget_backoff: Backoff::new(&config.backoff),
            config,
            phase: Phase::Handshaking {
                long_poll: LongPoll::Due {
                    at: now,
                    retry: false,
                },
                failures: 0,
                again: false,
                outage: false,
            },
            advice: Advice::default(),
            generation: 0,
            next_msg_id: 1,
            next_request_id: 1,
            next_publish_id: 1,
            batch: None,
            abandoned: Vec::new(),
            subs: Subscriptions::default(),
            publishes: VecDeque::new(),
            events: VecDeque::new(),
            hasher: RandomState::new(),
        }
    }

    /// Adds `channel` to the desired subscriptions. Idempotent. A `/meta/subscribe` goes out
    /// (on the batch slot) once handshaken, unless this `clientId` already has or is asking
    /// for it. The outcome arrives as [`SessionEvent::Subscribed`] or
    /// [`SessionEvent::SubscriptionDenied`].
    pub(crate) fn subscribe(&mut self, channel: ChannelName) {
        self.subs.want(channel);
    }

    /// Removes `channel` from the desired subscriptions. Sends `/meta/unsubscribe` when the
    /// server has (or is being asked for) the subscription; [`SessionEvent::Unsubscribed`]
    /// follows either way.
    pub(crate) fn unsubscribe(&mut self, channel: &ChannelName) {
        self.subs.unwant(channel, &mut self.events);
    }

    /// Queues `data` for `channel` and returns the id its [`Event::PublishAck`] will carry.
    /// Publishes wait until handshaken and are not retried: a failed request acks them with
    /// `successful: false`.
    pub(crate) fn publish(&mut self, channel: ChannelName, data: Box<RawValue>) -> u64 {
        let id = self.next_publish_id;
        self.next_publish_id += 1;
        if self.phase.is_closing() {
            self.fail_publish(id, "the session is closed");
        } else {
            self.publishes
                .push_back(QueuedPublish { id, channel, data });
        }
        id
    }

    /// Ends the session: sends `/meta/disconnect` on the batch slot when handshaken (queued
    /// publishes go in the same batch), abandons the outstanding connect, then emits
    /// [`Event::Terminated`] with [`Termination::Disconnected`] once the disconnect is
    /// answered, fails or times out (at once when there is no session to disconnect).
    pub(crate) fn disconnect(&mut self) {
        let before = self.state();
        match self.phase {
            Phase::Handshaken { .. } => {
                // Swapped out whole to move its parts into the next phase.
                let over = Phase::Terminated { unannounced: None };
                if let Phase::Handshaken {
                    long_poll,
                    client_id,
                    ack,
                    ..
                } = std::mem::replace(&mut self.phase, over)
                {
                    self.abandon(long_poll);
                    self.phase = Phase::Disconnecting { client_id, ack };
                }
            }
            // No session to disconnect: over at once (the handshake in flight, if any, is
            // ignored with every other reply).
            Phase::Handshaking { .. } => self.finish_disconnect(),
            Phase::Disconnecting { .. } | Phase::Terminated { .. } => {}
        }
        self.settle(before);
    }

    /// The next request to send, if any. Call until `None` after every input.
    pub(crate) fn poll_request(&mut self, now: Instant) -> Option<Request> {
        let before = self.state();
        let due = matches!(self.phase.long_poll(), Some(LongPoll::Due { at, .. }) if *at <= now);
        let request = match &self.phase {
            Phase::Terminated { .. } => None,
            Phase::Handshaking { .. } if due => Some(self.handshake_request(now)),
            Phase::Handshaken { .. } if due => Some(self.connect_request(now)),
            _ if self.batch.is_none() => self.batch_request(now),
            _ => None,
        };
        self.settle(before);
        request
    }

    /// The instant at which [`Session::poll_request`] will have something new to send (the
    /// end of an interval or a backoff); may be in the past. `None` when only a reply, a
    /// failure or an application call can move the session on.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.phase.long_poll()? {
            LongPoll::Due { at, .. } => Some(*at),
            LongPoll::Sent(_) => None,
        }
    }

    /// The next event, in the order they happened.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Where the session is.
    pub(crate) fn state(&self) -> State {
        self.phase.state()
    }

    /// The current `clientId`, while the session is believed valid on the server.
    pub(crate) fn client_id(&self) -> Option<&str> {
        self.phase.client_id()
    }

    /// The channels the application wants, in the order first asked for.
    #[cfg(test)]
    pub(crate) fn desired_subscriptions(&self) -> impl Iterator<Item = &ChannelName> {
        self.subs.desired()
    }

    // ---- helpers ----

    /// Ends an input: queues the `Terminated` event, if the session ended (so that it stays
    /// last), and logs the change of state.
    fn settle(&mut self, before: State) {
        if let Phase::Terminated { unannounced } = &mut self.phase {
            if let Some(reason) = unannounced.take() {
                self.events.push_back(Event::Terminated { reason });
            }
        }
        let after = self.state();
        if after != before {
            tracing::debug!(
                from = before.name(),
                to = after.name(),
                "bayeux session state"
            );
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

    /// Gives up the long poll in flight, if any: its reply, if it comes, only delivers data.
    fn abandon(&mut self, long_poll: LongPoll) {
        if let LongPoll::Sent(flight) = long_poll {
            self.abandoned.push((flight.id, flight.held));
        }
    }

    fn finish_disconnect(&mut self) {
        if self.phase.is_terminated() {
            return;
        }
        // Publishes that never went out are settled before the end.
        while let Some(p) = self.publishes.pop_front() {
            self.fail_publish(p.id, "the session ended before it was sent");
        }
        self.terminate(Termination::Disconnected);
    }

    /// Stops everything. Queued publishes are acked as failed; the `Terminated` event is
    /// queued by `settle` at the end of the current input.
    fn terminate(&mut self, reason: Termination) {
        if self.phase.is_terminated() {
            return;
        }
        tracing::debug!(?reason, "bayeux session terminated");
        self.phase = Phase::Terminated {
            unannounced: Some(reason),
        };
        // Replies are ignored from now on.
        self.abandoned.clear();
        if let Some(flight) = self.batch.take() {
            for id in flight.publishes() {
                self.fail_publish(id, "the session ended before a reply");
            }
        }
        while let Some(p) = self.publishes.pop_front() {
            self.fail_publish(p.id, "the session ended before it was sent");
        }
    }
}
