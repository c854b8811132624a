//! The batch slot, beside the long poll: subscribe, unsubscribe, publish and disconnect
//! messages batched into one request at a time, and what their replies mean.

use std::time::Instant;

use serde_json::value::RawValue;

use super::phase::Phase;
use super::subscriptions::Change;
use super::types::{
    Cause, Failure, FailureKind, Request, RequestId, SessionError, Slot, Termination,
};
use super::{Event, Session, DISCONNECT, SUBSCRIBE, UNSUBSCRIBE};
use crate::bayeux::channel::ChannelName;
use crate::bayeux::message::{Message, Reconnect, Subscription};

/// One message of the batch in flight.
#[derive(Debug)]
enum Entry {
    Subscribe(ChannelName),
    Unsubscribe(ChannelName),
    Publish(u64),
    Disconnect,
}

/// The batch in flight. `generation` says which `clientId` it was sent for: after a
/// re-handshake its meta replies no longer describe the current session.
#[derive(Debug)]
pub(super) struct BatchFlight {
    pub(super) id: RequestId,
    generation: u64,
    /// Each message's id and what it asked.
    entries: Vec<(String, Entry)>,
    /// What of its reply is answered once the reply is whole (meta replies, publish
    /// acknowledgements).
    pub(super) held: Vec<Message>,
}

impl BatchFlight {
    /// The publishes it carries.
    pub(super) fn publishes(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().filter_map(|(_, e)| match e {
            Entry::Publish(id) => Some(*id),
            _ => None,
        })
    }
}

/// A publish waiting for the next batch.
#[derive(Debug)]
pub(super) struct QueuedPublish {
    pub(super) id: u64,
    pub(super) channel: ChannelName,
    pub(super) data: Box<RawValue>,
}

impl Session {
    /// Batches everything queued for the batch slot, or `None` when there is nothing.
    pub(super) fn batch_request(&mut self, now: Instant) -> Option<Request> {
        let client_id = self.client_id()?.to_owned();
        let disconnecting = matches!(self.phase, Phase::Disconnecting { .. });
        let mut entries = Vec::new();
        let mut messages = Vec::new();
        if !disconnecting {
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
        if disconnecting {
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
        self.batch = Some(BatchFlight {
            id,
            generation: self.generation,
            entries,
            held: Vec::new(),
        });
        Some(Request {
            id,
            slot: Slot::Batch,
            messages,
            deadline: now + self.config.max_network_delay,
            budget: self.config.max_network_delay,
        })
    }

    /// The reply to batch `id` arrived whole. False when `id` is not the batch in flight.
    pub(super) fn batch_reply(&mut self, id: RequestId, now: Instant) -> bool {
        let Some(flight) = self.batch.take_if(|b| b.id == id) else {
            return false;
        };
        let mut answered = vec![false; flight.entries.len()];
        for m in flight.held {
            let current = flight.generation == self.generation && !self.phase.is_terminated();
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
                                let cause = Cause::Unsuccessful {
                                    error: m.error.clone(),
                                };
                                self.forgotten(cause, now);
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
                    let cause = Cause::Unsuccessful {
                        error: m.error.clone(),
                    };
                    self.forgotten(cause, now);
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
                None if unknown_client => {
                    let cause = Cause::Unsuccessful {
                        error: m.error.clone(),
                    };
                    self.forgotten(cause, now);
                }
                // The server ended the session on its own.
                None if m.channel == DISCONNECT && m.successful != Some(false) => {
                    self.connection_lost(Cause::EndedByServer);
                    self.forgotten(Cause::EndedByServer, now);
                    continue;
                }
                None => {}
            }
            // Advice on a non-connect reply is followed too (a disconnect reply's
            // `reconnect: none` is moot: the session is already over).
            if !self.phase.is_terminated() {
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
        self.entries_failed(unanswered, current, "no reply to this message");
        true
    }

    /// Batch `id` yielded no whole reply (nothing, if it is not the batch in flight).
    pub(super) fn batch_failure(&mut self, id: RequestId, failure: Failure, now: Instant) {
        let Some(flight) = self.batch.take_if(|b| b.id == id) else {
            return;
        };
        let current = flight.generation == self.generation;
        let reason = failure.to_string();
        let entries = flight.entries.into_iter().map(|e| e.1);
        self.entries_failed(entries, current, &reason);
        // Without the extension, data can ride any reply of a subscribed session.
        if current && self.subs.any_subscribed() {
            self.reply_lost(&failure);
        }
        match failure.kind() {
            FailureKind::Unauthorized => {
                self.terminate(Termination::Failed(SessionError::Unauthorized { failure }))
            }
            FailureKind::UnknownClient if current => self.forgotten(Cause::Failed(failure), now),
            _ => {}
        }
    }

    /// Entries of a batch that got no answer. Publishes are acked as failed;
    /// subscription changes wait for the next successful connect; a disconnect completes.
    fn entries_failed(
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
                    if current && !self.phase.is_terminated() {
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
