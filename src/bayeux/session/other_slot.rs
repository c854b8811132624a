//! The second request slot: subscribe, unsubscribe, publish and disconnect messages batched
//! into one request at a time, beside the long poll, and what their replies mean.

use std::time::Instant;

use super::subscriptions::Change;
use super::{
    Entry, Event, Failure, FailureKind, OtherFlight, Reconnect, Request, Session, SessionError,
    Slot, State, Subscription, Termination, DISCONNECT, SUBSCRIBE, UNSUBSCRIBE,
};
use crate::bayeux::message::Message;

impl Session {
    /// Batches everything queued for the other slot, or `None` when there is nothing.
    pub(super) fn other_request(&mut self, now: Instant) -> Option<Request> {
        let client_id = self.client_id.clone()?;
        let mut entries = Vec::new();
        let mut messages = Vec::new();
        if !self.disconnect_requested {
            for (change, channel) in self.subs.take_requests() {
                let msg_id = self.msg_id();
                let (meta, entry) = match change {
                    Change::Subscribe => (SUBSCRIBE, Entry::Subscribe(channel.clone())),
                    Change::Unsubscribe => (UNSUBSCRIBE, Entry::Unsubscribe(channel.clone())),
                };
                let mut m = Message::new(meta);
                m.id = Some(msg_id.clone());
                m.client_id = Some(client_id.clone());
                m.subscription = Some(Subscription::One(channel.as_str().to_owned()));
                messages.push(m);
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

    pub(super) fn other_reply(
        &mut self,
        flight: OtherFlight,
        messages: Vec<Message>,
        now: Instant,
    ) {
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
                // Not a denial nor a removal: the new session asks again (or, for an
                // unsubscribe, will not have it either; the reset reports it).
                Some(i) if unknown_client && !matches!(flight.entries[i].1, Entry::Disconnect) => {
                    answered[i] = true;
                    self.rehandshake(now, now, "unknown client");
                }
                Some(i) => {
                    answered[i] = true;
                    match &flight.entries[i].1 {
                        Entry::Subscribe(c) => {
                            self.subs.subscribe_answered(c, &m, &mut self.events)
                        }
                        Entry::Unsubscribe(c) => {
                            self.subs.unsubscribe_answered(c, &m, &mut self.events)
                        }
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
                    Some(Reconnect::None) => {
                        self.terminate(Termination::Failed(SessionError::ReconnectNone {
                            error: m.error.clone(),
                        }))
                    }
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

    pub(super) fn other_failure(&mut self, flight: OtherFlight, failure: Failure, now: Instant) {
        let current = flight.generation == self.generation;
        let reason = failure.to_string();
        let entries = flight.entries.into_iter().map(|e| e.1);
        self.other_entries_failed(entries, current, &reason);
        // Without the extension, data can ride any reply of a subscribed session.
        if current && self.subs.any_subscribed() {
            self.reply_lost(&failure);
        }
        match failure.kind() {
            FailureKind::Unauthorized => {
                self.terminate(Termination::Failed(SessionError::Unauthorized { failure }))
            }
            FailureKind::UnknownClient if current => self.rehandshake(now, now, "unknown client"),
            _ => {}
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
                    if current && self.state != State::Terminated {
                        self.subs.unanswered(c, &mut self.events);
                    }
                }
            }
        }
    }

    pub(super) fn fail_publish(&mut self, publish_id: u64, reason: &str) {
        self.events.push_back(Event::PublishAck {
            publish_id,
            successful: false,
            error: Some(reason.to_owned()),
        });
    }
}
