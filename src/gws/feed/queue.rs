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

use super::{CallEvent, CallView, FeedEvent};
use crate::coalesce::{Coalesce, CoalescingQueue, Overflow};
use crate::gws::model::{NotificationType, RawJson};
use crate::gws::store::{change_between, CallChange, ChangeOrigin};

/// Events other than call changes kept at most for a consumer that is behind.
pub(super) const MAX_EVENTS: usize = 1024;

/// Call changes kept apart for a consumer that is behind; beyond, each call's join.
pub(super) const MAX_CHANGES: usize = 1024;

/// What waits for the consumer: an event, in its place, or a call's change (or changes,
/// joined) not yet taken.
enum Waiting {
    Event(Box<FeedEvent>),
    Change(Box<PendingChange>),
}

/// A call's change (or changes) not yet taken.
struct PendingChange {
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

impl Coalesce for Waiting {
    type Key = String;

    fn key(&self) -> Option<&String> {
        match self {
            Waiting::Event(_) => None,
            Waiting::Change(p) => Some(&p.call_id),
        }
    }

    /// A later change of the call joins: the net change is computed when it is taken, from
    /// the call as the consumer last saw it (`base`) to its last text.
    fn merge(&mut self, _before: Option<&Self>, next: Self) {
        let (Waiting::Change(p), Waiting::Change(next)) = (self, next) else {
            return;
        };
        p.count += next.count;
        p.last = next.last;
        p.removed = next.removed;
        if next.origin == ChangeOrigin::Heal {
            p.origin = ChangeOrigin::Heal;
        }
        if next.notification_type.is_some() {
            p.notification_type = next.notification_type;
        }
    }
}

impl PendingChange {
    fn into_event(self) -> CallEvent {
        let change = if self.count == 1 {
            self.first
        } else {
            let mut net = change_between(
                &self.call_id,
                self.base.as_deref(),
                self.last.as_deref(),
                self.origin,
                self.notification_type,
            );
            net.removed = self.removed;
            net
        };
        let call = if self.removed {
            None
        } else {
            self.last
                .and_then(|t| RawJson::from_text(t).ok().map(CallView::from))
        };
        CallEvent { change, call }
    }
}

/// See the [module docs](self).
pub(super) struct Queue {
    waiting: CoalescingQueue<Waiting>,
    lagged: u64,
    max_events: usize,
}

impl Queue {
    pub(super) fn new(max_events: usize, max_changes: usize) -> Self {
        Queue {
            waiting: CoalescingQueue::new(max_changes, Overflow::JoinLast),
            lagged: 0,
            max_events,
        }
    }

    /// Events (not call changes) waiting.
    pub(super) fn events(&self) -> usize {
        self.waiting.unkeyed_len()
    }

    /// Queues an event; the oldest event goes when more than the bound wait.
    pub(super) fn push_event(&mut self, event: FeedEvent) {
        if self.events() >= self.max_events && self.waiting.remove_oldest_unkeyed().is_some() {
            self.lagged += 1;
        }
        self.waiting.push(Waiting::Event(Box::new(event)));
    }

    /// Queues the change of one call, whose text was `before` (`None`: new to the store) and
    /// is `after` (its last text, also when it left the store).
    pub(super) fn push_change(&mut self, change: CallChange, before: Option<&str>, after: &str) {
        self.waiting.push(Waiting::Change(Box::new(PendingChange {
            call_id: change.call_id.clone(),
            count: 1,
            base: before.map(str::to_owned),
            last: Some(after.to_owned()),
            removed: change.removed,
            origin: change.origin,
            notification_type: change.notification_type.clone(),
            first: change,
        })));
    }

    /// The next event for the consumer.
    pub(super) fn pop(&mut self) -> Option<FeedEvent> {
        if self.lagged > 0 {
            let missed = std::mem::take(&mut self.lagged);
            return Some(FeedEvent::Lagged { missed });
        }
        match self.waiting.pop_front()? {
            Waiting::Event(event) => Some(*event),
            Waiting::Change(p) => Some(FeedEvent::Call(p.into_event())),
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
        assert_eq!(got.call.unwrap().text(), a);
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
        assert_eq!((got.change, got.call.unwrap().text()), (first, a.as_str()));
        let got = take_call(&mut q);
        assert_eq!((got.change, got.call.unwrap().text()), (second, b.as_str()));
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
        assert_eq!(got.call.unwrap().text(), c);
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
        assert_eq!(joined.call.unwrap().text(), c);
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
