//! The long-poll slot: `/meta/handshake` until one succeeds, then `/meta/connect` again and
//! again, what their replies and failures mean, and when the next one goes out.

use std::time::{Duration, Instant};

use super::ack::{self, Ack};
use super::phase::{Flight, Link, LongPoll, Phase};
use super::types::{
    Cause, Failure, FailureKind, GapCause, Request, RequestId, SessionError, SessionEvent, Slot,
    Termination,
};
use super::{Event, Session, CONNECT, DISCONNECT, HANDSHAKE, LONG_POLLING};
use crate::bayeux::message::{Advice, Message, Reconnect};

/// `advice.timeout` assumed until the server gives one (the CometD server default). Without
/// it a connect's deadline would be shorter than the time the server holds it.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// `advice.maxInterval` assumed until the server gives one (the CometD server default).
const DEFAULT_MAX_INTERVAL_MS: u64 = 10_000;

/// What the long-poll request in flight carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Handshake,
    Connect,
}

impl Session {
    pub(super) fn handshake_request(&mut self, now: Instant) -> Request {
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
        if let Some(long_poll) = self.phase.long_poll_mut() {
            *long_poll = LongPoll::Sent(Flight::new(id, msg_id));
        }
        Request {
            id,
            slot: Slot::LongPoll,
            messages: vec![m],
            deadline: now + self.config.max_network_delay,
            budget: self.config.max_network_delay,
        }
    }

    pub(super) fn connect_request(&mut self, now: Instant) -> Request {
        let msg_id = self.msg_id();
        let id = self.request_id();
        let timeout = self.advice.timeout;
        let mut m = Message::new(CONNECT);
        m.id = Some(msg_id.clone());
        m.connection_type = Some(LONG_POLLING.into());
        let mut hold_ms = 0;
        if let Phase::Handshaken {
            long_poll,
            client_id,
            ack,
            link,
            ..
        } = &mut self.phase
        {
            m.client_id = Some(client_id.clone());
            m.ext = ack.as_ref().map(Ack::connect_ext);
            // Until a connect succeeds, ask the server to answer at once so the session
            // learns quickly that it is connected (the first connect after a handshake or
            // an outage).
            if *link == Link::Up {
                hold_ms = timeout.unwrap_or(DEFAULT_TIMEOUT_MS);
            } else {
                m.advice = Some(Advice {
                    timeout: Some(0),
                    ..Advice::default()
                });
            }
            *long_poll = LongPoll::Sent(Flight::new(id, msg_id));
        }
        let budget = Duration::from_millis(hold_ms) + self.config.max_network_delay;
        Request {
            id,
            slot: Slot::LongPoll,
            messages: vec![m],
            deadline: now + budget,
            budget,
        }
    }

    /// The reply to the connect in flight began: the server answered the session, even if
    /// the body is then cut on the way. The `maxInterval` expiry rule counts from here.
    pub(super) fn connect_reply_started(&mut self, id: RequestId, now: Instant) {
        if let Phase::Handshaken {
            long_poll: LongPoll::Sent(flight),
            last_heard,
            ..
        } = &mut self.phase
        {
            if flight.id == id {
                *last_heard = (*last_heard).max(now);
            }
        }
    }

    /// Takes the long poll in flight if it is `id`. The slot is left due at `now`, a
    /// placeholder: every outcome of the request schedules the next one, gives the
    /// `clientId` up or ends the session.
    fn take_long_poll(&mut self, id: RequestId, now: Instant) -> Option<(Kind, Flight)> {
        let kind = match self.phase {
            Phase::Handshaking { .. } => Kind::Handshake,
            Phase::Handshaken { .. } => Kind::Connect,
            _ => return None,
        };
        self.phase.long_poll_flight(id)?;
        let slot = self.phase.long_poll_mut()?;
        let placeholder = LongPoll::Due {
            at: now,
            retry: false,
        };
        match std::mem::replace(slot, placeholder) {
            LongPoll::Sent(flight) => Some((kind, flight)),
            LongPoll::Due { .. } => None,
        }
    }

    pub(super) fn merge_advice(&mut self, advice: Option<&Advice>) {
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

    fn schedule(&mut self, at: Instant, retry: bool) {
        if let Some(long_poll) = self.phase.long_poll_mut() {
            *long_poll = LongPoll::Due { at, retry };
        }
    }

    /// The reply to long poll `id` arrived whole; `held` is what of it the session answers
    /// (meta replies, and messages that carry `successful`), in order. False when `id` is
    /// not the long poll in flight.
    pub(super) fn long_poll_reply(&mut self, id: RequestId, now: Instant) -> bool {
        let Some((kind, flight)) = self.take_long_poll(id, now) else {
            return false;
        };
        let expected = match kind {
            Kind::Handshake => HANDSHAKE,
            Kind::Connect => CONNECT,
        };
        // A `/meta/disconnect` the client did not send: the server ended the session, and
        // what else the reply says of it (a connect answer, `reconnect: none`) is moot.
        let ended = kind == Kind::Connect
            && flight
                .held
                .iter()
                .any(|m| m.channel == DISCONNECT && m.successful != Some(false));
        let mut answered = false;
        for m in flight.held {
            if ended && m.is_meta() {
                continue;
            }
            if !m.is_meta() {
                self.events.push_back(Event::Message(m));
                continue;
            }
            // An id-less reply is accepted: lenient servers do not always echo it.
            let ours = m.channel == expected
                && m.id.as_deref().is_none_or(|i| i == flight.msg_id)
                && !answered
                && !self.phase.is_terminated();
            if !ours {
                tracing::debug!(channel = %m.channel, id = ?m.id, "dropping stale meta reply");
                continue;
            }
            answered = true;
            self.merge_advice(m.advice.as_ref());
            match kind {
                Kind::Handshake => self.handshake_reply(m, now),
                Kind::Connect => self.connect_reply(m, now),
            }
        }
        if ended {
            self.connection_lost(Cause::EndedByServer);
            self.forgotten(Cause::EndedByServer, now);
            return true;
        }
        if !answered && !self.phase.is_terminated() {
            match kind {
                Kind::Handshake => self.handshake_failed(Cause::Unanswered, now),
                Kind::Connect => self.connect_failed(Cause::Unanswered, now),
            }
        }
        true
    }

    /// Long poll `id` yielded no whole reply. False when it is not the long poll in flight.
    pub(super) fn long_poll_failure(
        &mut self,
        id: RequestId,
        failure: Failure,
        now: Instant,
    ) -> bool {
        let Some((kind, _)) = self.take_long_poll(id, now) else {
            return false;
        };
        if failure.kind() == FailureKind::Unauthorized {
            self.terminate(Termination::Failed(SessionError::Unauthorized { failure }));
            return true;
        }
        let unknown_client = failure.kind() == FailureKind::UnknownClient;
        if kind == Kind::Connect {
            self.reply_lost(&failure);
        }
        let cause = Cause::Failed(failure);
        match kind {
            Kind::Handshake => self.handshake_failed(cause, now),
            Kind::Connect if unknown_client => {
                self.connection_lost(cause.clone());
                self.forgotten(cause, now);
            }
            Kind::Connect => self.connect_failed(cause, now),
        }
        true
    }

    /// A reply that may have carried messages was lost: a gap, unless the server redelivers
    /// (the acknowledged-messages extension) or the failure says nothing was delivered
    /// (never sent; a session gone, which the new handshake reports; refused credentials).
    pub(super) fn reply_lost(&mut self, failure: &Failure) {
        let lossy = !matches!(
            failure.kind(),
            FailureKind::NotSent | FailureKind::UnknownClient | FailureKind::Unauthorized
        );
        if lossy && self.phase.ack().is_none() {
            self.emit(SessionEvent::Gap {
                cause: GapCause::ReplyLost(failure.clone()),
            });
        }
    }

    fn handshake_reply(&mut self, m: Message, now: Instant) {
        let Phase::Handshaking {
            failures,
            again,
            outage,
            ..
        } = self.phase
        else {
            return;
        };
        let client_id = m.client_id.filter(|c| !c.is_empty());
        match client_id {
            Some(client_id) if m.successful == Some(true) => {
                let ack = if self.config.ack {
                    Ack::granted(m.ext.as_deref())
                } else {
                    None
                };
                let acknowledges = ack.is_some();
                self.backoff.reset();
                // The handshake advice has been followed; keeping it would loop.
                if self.advice.reconnect == Some(Reconnect::Handshake) {
                    self.advice.reconnect = None;
                }
                self.subs.reset(&mut self.events);
                self.phase = Phase::Handshaken {
                    long_poll: LongPoll::Due {
                        at: now,
                        retry: false,
                    },
                    client_id: client_id.clone(),
                    ack,
                    link: if outage { Link::Lost } else { Link::Opening },
                    connected: false,
                    last_heard: now,
                };
                self.emit(if again {
                    SessionEvent::Rehandshaken { client_id }
                } else {
                    SessionEvent::Handshaken { client_id }
                });
                if acknowledges {
                    self.emit(SessionEvent::AcknowledgedMessages);
                }
                if again {
                    self.emit(SessionEvent::Gap {
                        cause: GapCause::Rehandshake,
                    });
                }
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
                    let error = m
                        .error
                        .unwrap_or_else(|| "handshake unsuccessful".to_owned());
                    self.emit(SessionEvent::HandshakeFailed {
                        attempt: failures + 1,
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
        let Phase::Handshaking {
            failures, again, ..
        } = &mut self.phase
        else {
            return;
        };
        *failures += 1;
        let attempts = *failures;
        let out_of_attempts = !*again
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
        self.schedule(now + delay, true);
    }

    fn connect_reply(&mut self, m: Message, now: Instant) {
        if m.successful == Some(true) {
            let Phase::Handshaken {
                ack,
                link,
                connected,
                last_heard,
                ..
            } = &mut self.phase
            else {
                return;
            };
            if let Some(ack) = ack.as_mut() {
                ack.reply_received(m.ext.as_deref());
            }
            *last_heard = now;
            *connected = true;
            let reconnected = *link != Link::Up;
            *link = Link::Up;
            self.backoff.reset();
            self.forget_backoff.reset();
            if reconnected {
                self.emit(SessionEvent::Connected);
            }
            self.subs.release_holds();
            match self.advice.reconnect {
                Some(Reconnect::None) => {
                    self.terminate(Termination::Failed(SessionError::ReconnectNone {
                        error: None,
                    }))
                }
                Some(Reconnect::Handshake) => self.rehandshake(now, now, "advice"),
                _ => self.schedule(now + self.interval(), false),
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
            _ if unknown_client => {
                self.connection_lost(cause.clone());
                self.forgotten(cause, now);
            }
            Some(Reconnect::Handshake) => {
                self.connection_lost(cause);
                self.rehandshake(now, now, "advice");
            }
            _ => {
                if self.phase.ack().is_none() {
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

    /// A connect failed: `ConnectionLost`, once per outage.
    pub(super) fn connection_lost(&mut self, cause: Cause) {
        if let Phase::Handshaken { link, .. } = &mut self.phase {
            if *link != Link::Lost {
                *link = Link::Lost;
                self.emit(SessionEvent::ConnectionLost { cause });
            }
        }
    }

    /// A connect failed without advice to follow: back off, or handshake when the server
    /// will have expired the session by the time the retry goes out.
    fn connect_failed(&mut self, cause: Cause, now: Instant) {
        self.connection_lost(cause);
        let Phase::Handshaken { last_heard, .. } = self.phase else {
            return;
        };
        let delay = self.backoff.next_delay().max(self.interval());
        let at = now + delay;
        let a = &self.advice;
        let expiry = Duration::from_millis(
            a.timeout
                .unwrap_or(DEFAULT_TIMEOUT_MS)
                .saturating_add(a.interval.unwrap_or(0))
                .saturating_add(a.max_interval.unwrap_or(DEFAULT_MAX_INTERVAL_MS)),
        );
        if at.saturating_duration_since(last_heard) > expiry {
            self.rehandshake(now, at, "unconnected longer than the server keeps sessions");
        } else {
            self.schedule(at, true);
        }
    }

    /// The server no longer holds the session (`cause`): says so, once, and handshakes
    /// again: at once after a session that had connected and was lost (`402`), after a
    /// backoff when no connect had succeeded on it (a server that forgets every new session
    /// would otherwise be asked again and again) or when the server ended it on purpose
    /// (what ended it, an HTTP login say, gets the time to be mended).
    pub(super) fn forgotten(&mut self, cause: Cause, now: Instant) {
        let Phase::Handshaken { connected, .. } = self.phase else {
            return;
        };
        let at = if connected && cause != Cause::EndedByServer {
            now
        } else {
            now + self.forget_backoff.next_delay()
        };
        self.emit(SessionEvent::Forgotten {
            cause,
            unconnected: !connected,
        });
        self.rehandshake(now, at, "the server forgot the session");
    }

    /// Gives up the current `clientId` and schedules a handshake at `at`. Does nothing when
    /// there is no session to give up (a handshake is already under way) or the session is
    /// ending, so several triggers in one batch cause one handshake.
    pub(super) fn rehandshake(&mut self, now: Instant, at: Instant, why: &str) {
        if !matches!(self.phase, Phase::Handshaken { .. }) {
            return;
        }
        tracing::debug!(why, "bayeux re-handshake");
        let handshaking = Phase::Handshaking {
            long_poll: LongPoll::Due {
                at,
                retry: at > now,
            },
            failures: 0,
            again: true,
            outage: false,
        };
        if let Phase::Handshaken {
            long_poll, link, ..
        } = std::mem::replace(&mut self.phase, handshaking)
        {
            if let Phase::Handshaking { outage, .. } = &mut self.phase {
                *outage = link == Link::Lost;
            }
            // An outstanding connect belongs to the old clientId; its reply, if it comes,
            // only delivers data.
            self.abandon(long_poll);
        }
        self.generation += 1;
        self.subs.reset(&mut self.events);
    }
}
