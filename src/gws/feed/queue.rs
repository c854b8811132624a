//! What the feed holds for its consumer: events in order, and call changes bounded by the
//! number of calls.
//!
//! A consumer that keeps up, fewer than [`MAX_CHANGES`] changes behind, gets every change as
//! it was made, also the several changes of one call that one reply brought. One that falls
//! further behind costs nothing but memory bounded by the number of calls: a call that
//! changes again joins its last change still waiting, and when that is taken the consumer
//! gets the net change, from the call as the consumer last saw it to the call as it is now.
//! Other events queue up to a bound; beyond it the oldest go, and the consumer is told how
//! many with [`FeedEvent::Lagged`].

use std::collections::{HashMap, VecDeque};

use super::{CallEvent, FeedEvent};
use crate::gws::model::{NotificationType, RawJson};
use crate::gws::store::{change_between, CallChange, ChangeOrigin};

/// Events other than call changes kept at most for a consumer that is behind.
pub(super) const MAX_EVENTS: usize = 1024;

/// Call changes kept apart for a consumer that is behind; beyond, each call's join.
pub(super) const MAX_CHANGES: usize = 1024;

enum Slot {
    Event(Box<FeedEvent>),
    /// The change waiting under this number in `pending`.
    Call(u64),
}

/// A call's change (or changes) not yet taken.
struct Pending {
    call_id: String,
    /// The change, when there is only one.
    first: CallChange,
    /// How many changes are merged here.
    count: usize,
    /// The call as the consumer last saw it (`None`: never).
    base: Option<String>,
    /// The call's last text (kept for a call that left the store too).
    last: Option<String>,
    removed: bool,
    origin: ChangeOrigin,
    notification_type: Option<NotificationType>,
}

/// See the [module docs](self).
pub(super) struct Queue {
    slots: VecDeque<Slot>,
    pending: HashMap<u64, Pending>,
    /// Each call's last change waiting, the one a further change joins.
    last: HashMap<String, u64>,
    next: u64,
    events: usize,
    lagged: u64,
    max_events: usize,
    max_changes: usize,
}

impl Queue {
    pub(super) fn new(max_events: usize, max_changes: usize) -> Self {
        Queue {
            slots: VecDeque::new(),
            pending: HashMap::new(),
            last: HashMap::new(),
            next: 0,
            events: 0,
            lagged: 0,
            max_events,
            max_changes,
        }
    }

    /// Events (not call changes) waiting.
    pub(super) fn events(&self) -> usize {
        self.events
    }

    /// Queues an event; the oldest event goes when more than the bound wait.
    pub(super) fn push_event(&mut self, event: FeedEvent) {
        if self.events >= self.max_events {
            if let Some(i) = self.slots.iter().position(|s| matches!(s, Slot::Event(_))) {
                self.slots.remove(i);
                self.events -= 1;
                self.lagged += 1;
            }
        }
        self.slots.push_back(Slot::Event(Box::new(event)));
        self.events += 1;
    }

    /// Queues the change of one call, whose text was `before` (`None`: new to the store) and
    /// is `after` (its last text, also when it left the store).
    pub(super) fn push_change(&mut self, change: CallChange, before: Option<&str>, after: &str) {
        let joins = self.pending.len() >= self.max_changes;
        match self.last.get(&change.call_id).filter(|_| joins) {
            Some(at) => {
                let Some(p) = self.pending.get_mut(at) else {
                    return;
                };
                p.count += 1;
                p.last = Some(after.to_owned());
                p.removed = change.removed;
                if change.origin == ChangeOrigin::Heal {
                    p.origin = ChangeOrigin::Heal;
                }
                if change.notification_type.is_some() {
                    p.notification_type = change.notification_type;
                }
            }
            None => {
                let at = self.next;
                self.next += 1;
                self.last.insert(change.call_id.clone(), at);
                self.pending.insert(
                    at,
                    Pending {
                        call_id: change.call_id.clone(),
                        count: 1,
                        base: before.map(str::to_owned),
                        last: Some(after.to_owned()),
                        removed: change.removed,
                        origin: change.origin,
                        notification_type: change.notification_type.clone(),
                        first: change,
                    },
                );
                self.slots.push_back(Slot::Call(at));
            }
        }
    }

    /// The next event for the consumer.
    pub(super) fn pop(&mut self) -> Option<FeedEvent> {
        if self.lagged > 0 {
            let missed = std::mem::take(&mut self.lagged);
            return Some(FeedEvent::Lagged { missed });
        }
        match self.slots.pop_front()? {
            Slot::Event(event) => {
                self.events -= 1;
                Some(*event)
            }
            Slot::Call(at) => {
                let p = self.pending.remove(&at)?;
                if self.last.get(&p.call_id) == Some(&at) {
                    self.last.remove(&p.call_id);
                }
                let change = if p.count == 1 {
                    p.first
                } else {
                    let mut net = change_between(
                        &p.call_id,
                        p.base.as_deref(),
                        p.last.as_deref(),
                        p.origin,
                        p.notification_type,
                    );
                    net.removed = p.removed;
                    net
                };
                let call = if p.removed {
                    None
                } else {
                    p.last.and_then(|t| RawJson::from_text(t).ok())
                };
                Some(FeedEvent::Call(CallEvent { change, call }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::store::StateTransition;
    use crate::gws::CallState;

    fn call(state: &str, ud: &str) -> String {
        format!(r#"{{"id":"c1","state":"{state}","userData":{ud}}}"#)
    }

    fn change(before: Option<&str>, after: &str, origin: ChangeOrigin) -> CallChange {
        change_between("c1", before, Some(after), origin, None)
    }

    fn take_call(q: &mut Queue) -> CallEvent {
        match q.pop() {
            Some(FeedEvent::Call(c)) => c,
            other => panic!("expected a call change, got {other:?}"),
        }
    }

    #[test]
    fn a_consumer_that_keeps_up_gets_every_change_as_made() {
        let mut q = Queue::new(MAX_EVENTS, MAX_CHANGES);
        let a = call("Ringing", "{}");
        let first = change(None, &a, ChangeOrigin::Notification);
        q.push_change(first.clone(), None, &a);
        let got = take_call(&mut q);
        assert_eq!(got.change, first);
        assert_eq!(got.call.unwrap().get(), a);
        assert!(q.pop().is_none());
    }

    #[test]
    fn changes_within_the_bound_come_one_by_one() {
        let mut q = Queue::new(MAX_EVENTS, MAX_CHANGES);
        let a = call("Ringing", r#"{"A":"1"}"#);
        let b = call("Established", r#"{"A":"1","B":"2"}"#);
        let first = change(None, &a, ChangeOrigin::Notification);
        let second = change(Some(&a), &b, ChangeOrigin::Notification);
        q.push_change(first.clone(), None, &a);
        q.push_change(second.clone(), Some(&a), &b);
        let got = take_call(&mut q);
        assert_eq!((got.change, got.call.unwrap().get()), (first, a.as_str()));
        let got = take_call(&mut q);
        assert_eq!((got.change, got.call.unwrap().get()), (second, b.as_str()));
        assert!(q.pop().is_none());
    }

    #[test]
    fn changes_of_one_call_made_while_the_consumer_is_behind_come_as_the_net_change() {
        // One change kept apart: the second of the call joins the first.
        let mut q = Queue::new(MAX_EVENTS, 1);
        let a = call("Ringing", r#"{"A":"1"}"#);
        let b = call("Established", r#"{"A":"1","B":"2"}"#);
        let c = call("Established", r#"{"A":"3","B":"2"}"#);
        q.push_event(FeedEvent::Ready { calls: 0 });
        q.push_change(change(None, &a, ChangeOrigin::CatchUp), None, &a);
        q.push_change(
            change(Some(&a), &b, ChangeOrigin::Notification),
            Some(&a),
            &b,
        );
        q.push_change(
            change(Some(&b), &c, ChangeOrigin::Notification),
            Some(&b),
            &c,
        );
        assert!(matches!(q.pop(), Some(FeedEvent::Ready { .. })));
        let got = take_call(&mut q);
        // From nothing (the consumer never saw it) to `c`, as one new call.
        assert!(got.change.new);
        assert_eq!(got.change.origin, ChangeOrigin::CatchUp);
        assert_eq!(
            got.change.state,
            Some(StateTransition {
                from: None,
                to: Some(CallState::Established)
            })
        );
        assert_eq!(got.change.user_data.added.len(), 2);
        assert_eq!(got.call.unwrap().get(), c);
        assert!(q.pop().is_none());
    }

    #[test]
    fn a_call_that_came_and_went_unseen_is_still_told_once() {
        let mut q = Queue::new(MAX_EVENTS, 1);
        let a = call("Ringing", "{}");
        let done = call("Completed", "{}");
        q.push_change(change(None, &a, ChangeOrigin::Notification), None, &a);
        let mut gone = change(Some(&a), &done, ChangeOrigin::Heal);
        gone.removed = true;
        q.push_change(gone, Some(&a), &done);
        let got = take_call(&mut q);
        assert!(got.change.new && got.change.removed);
        assert_eq!(got.change.origin, ChangeOrigin::Heal, "a heal took part");
        assert!(got.call.is_none());
    }

    #[test]
    fn past_the_bound_each_call_joins_its_last_change_and_other_calls_still_queue() {
        let mut q = Queue::new(MAX_EVENTS, 2);
        let other = |id: &str| format!(r#"{{"id":"{id}","state":"Ringing","userData":{{}}}}"#);
        let a = call("Ringing", "{}");
        let b = call("Established", "{}");
        let c = call("Held", "{}");
        q.push_change(change(None, &a, ChangeOrigin::Notification), None, &a);
        q.push_change(
            change(Some(&a), &b, ChangeOrigin::Notification),
            Some(&a),
            &b,
        );
        // Two waiting: c1's third change joins its second; c2 gets a place of its own.
        q.push_change(
            change(Some(&b), &c, ChangeOrigin::Notification),
            Some(&b),
            &c,
        );
        let c2 = other("c2");
        q.push_change(
            change_between("c2", None, Some(&c2), ChangeOrigin::Notification, None),
            None,
            &c2,
        );
        assert!(take_call(&mut q).change.new);
        let joined = take_call(&mut q);
        assert_eq!(
            joined.change.state,
            Some(StateTransition {
                from: Some(CallState::Ringing),
                to: Some(CallState::Held)
            }),
            "from the call as last taken to the call as it is"
        );
        assert_eq!(joined.call.unwrap().get(), c);
        assert_eq!(take_call(&mut q).change.call_id, "c2");
        assert!(q.pop().is_none());
    }

    #[test]
    fn events_beyond_the_bound_are_dropped_oldest_first_and_counted() {
        let mut q = Queue::new(2, MAX_CHANGES);
        for calls in 0..5 {
            q.push_event(FeedEvent::Ready { calls });
        }
        let a = call("Ringing", "{}");
        q.push_change(change(None, &a, ChangeOrigin::Notification), None, &a);
        assert!(matches!(q.pop(), Some(FeedEvent::Lagged { missed: 3 })));
        assert!(matches!(q.pop(), Some(FeedEvent::Ready { calls: 3 })));
        assert!(matches!(q.pop(), Some(FeedEvent::Ready { calls: 4 })));
        take_call(&mut q);
        assert!(q.pop().is_none());
    }
}
