//! The registry of subscriptions: the channels the application wants (desired state), and
//! where each stands with the server under the current `clientId`.
//!
//! A re-handshake gives a new `clientId` that has no subscriptions, so the registry is reset
//! and every desired channel is asked for again; a channel only kept for a pending
//! unsubscribe is dropped. Every outcome is an event, never silent.

use std::collections::VecDeque;

use indexmap::IndexMap;

use super::types::{Event, SessionEvent};
use crate::bayeux::channel::ChannelName;
use crate::bayeux::message::Message;

/// Where a channel stands with the server under the current `clientId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    NotSent,
    Pending,
    Subscribed,
    Denied,
    Unsubscribing,
}

/// A channel the application wants (`desired`) or that the server may still have.
#[derive(Debug)]
struct Entry {
    desired: bool,
    status: Status,
    /// A request for it failed in transport: wait for the next successful connect before
    /// trying again, so a dead network is not hammered from two slots.
    held: bool,
}

/// What a subscription request asks the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    Subscribe,
    Unsubscribe,
}

/// The registry; see the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    entries: IndexMap<ChannelName, Entry>,
}

fn unsubscribed(events: &mut VecDeque<Event>, channel: ChannelName) {
    events.push_back(Event::Session(SessionEvent::Unsubscribed { channel }));
}

impl Subscriptions {
    /// Adds `channel` to the desired set. Idempotent.
    pub(super) fn want(&mut self, channel: ChannelName) {
        self.entries
            .entry(channel)
            .and_modify(|e| e.desired = true)
            .or_insert(Entry {
                desired: true,
                status: Status::NotSent,
                held: false,
            });
    }

    /// Removes `channel` from the desired set; reports it unsubscribed at once when the
    /// server never had it.
    pub(super) fn unwant(&mut self, channel: &ChannelName, events: &mut VecDeque<Event>) {
        let Some(entry) = self.entries.get_mut(channel) else {
            return;
        };
        entry.desired = false;
        if matches!(entry.status, Status::NotSent | Status::Denied) {
            self.entries.shift_remove(channel);
            unsubscribed(events, channel.clone());
        }
    }

    /// Whether the server has (or is being asked for) any subscription.
    pub(super) fn any_subscribed(&self) -> bool {
        self.entries
            .values()
            .any(|e| matches!(e.status, Status::Subscribed | Status::Pending))
    }

    /// The channels the application wants, in the order first asked for.
    #[cfg(test)]
    pub(super) fn desired(&self) -> impl Iterator<Item = &ChannelName> {
        self.entries
            .iter()
            .filter(|(_, e)| e.desired)
            .map(|(c, _)| c)
    }

    /// A new `clientId` has no subscriptions: every desired channel is to be sent again, and
    /// channels only kept for a pending unsubscribe are gone.
    pub(super) fn reset(&mut self, events: &mut VecDeque<Event>) {
        let mut gone = Vec::new();
        self.entries.retain(|channel, e| {
            if e.desired {
                e.status = Status::NotSent;
                e.held = false;
                true
            } else {
                gone.push(channel.clone());
                false
            }
        });
        for channel in gone {
            unsubscribed(events, channel);
        }
    }

    /// A connect succeeded: requests held after a transport failure may go out again.
    pub(super) fn release_holds(&mut self) {
        for e in self.entries.values_mut() {
            e.held = false;
        }
    }

    /// The subscribe and unsubscribe requests to send now, marked as in flight.
    pub(super) fn take_requests(&mut self) -> Vec<(Change, ChannelName)> {
        let mut batch = Vec::new();
        for (channel, e) in self.entries.iter_mut() {
            if e.held {
                continue;
            }
            match (e.desired, e.status) {
                (true, Status::NotSent) => {
                    e.status = Status::Pending;
                    batch.push((Change::Subscribe, channel.clone()));
                }
                (false, Status::Subscribed) => {
                    e.status = Status::Unsubscribing;
                    batch.push((Change::Unsubscribe, channel.clone()));
                }
                _ => {}
            }
        }
        batch
    }

    /// The server's answer to a `/meta/subscribe` (not an unknown-client error, which the
    /// session handles by handshaking again).
    pub(super) fn subscribe_answered(
        &mut self,
        channel: &ChannelName,
        reply: &Message,
        events: &mut VecDeque<Event>,
    ) {
        if reply.successful == Some(true) {
            if let Some(e) = self.entries.get_mut(channel) {
                e.status = Status::Subscribed;
            }
            events.push_back(Event::Session(SessionEvent::Subscribed {
                channel: channel.clone(),
            }));
            return;
        }
        let error = reply
            .error
            .clone()
            .unwrap_or_else(|| "subscription refused".to_owned());
        events.push_back(Event::Session(SessionEvent::SubscriptionDenied {
            channel: channel.clone(),
            error,
        }));
        if let Some(e) = self.entries.get_mut(channel) {
            e.status = Status::Denied;
            if !e.desired {
                self.entries.shift_remove(channel);
                unsubscribed(events, channel.clone());
            }
        }
    }

    /// The server's answer to a `/meta/unsubscribe` (not an unknown-client error). A refusal
    /// is treated as gone: the server will not deliver what it does not think we have.
    pub(super) fn unsubscribe_answered(
        &mut self,
        channel: &ChannelName,
        reply: &Message,
        events: &mut VecDeque<Event>,
    ) {
        if reply.successful != Some(true) {
            tracing::debug!(%channel, error = ?reply.error, "unsubscribe refused; treating as gone");
        }
        let Some(e) = self.entries.get_mut(channel) else {
            return;
        };
        if e.desired {
            // Asked for again meanwhile: subscribe anew.
            e.status = Status::NotSent;
        } else {
            self.entries.shift_remove(channel);
        }
        unsubscribed(events, channel.clone());
    }

    /// A subscription request got no answer (the request failed, or the reply left it
    /// out): try again after the next successful connect.
    pub(super) fn unanswered(&mut self, channel: ChannelName, events: &mut VecDeque<Event>) {
        let Some(e) = self.entries.get_mut(&channel) else {
            return;
        };
        e.held = true;
        e.status = match e.status {
            Status::Pending => Status::NotSent,
            // The server may still have it: try the unsubscribe again.
            Status::Unsubscribing => Status::Subscribed,
            s => s,
        };
        if !e.desired && e.status == Status::NotSent {
            self.entries.shift_remove(&channel);
            unsubscribed(events, channel);
        }
    }
}
