//! One agent's changes waiting for JetStream: in order per call, bounded, coalesced per call
//! beyond the bound.
//!
//! Up to `bound` changes wait as they came, so an outage shorter than the bound loses
//! nothing. Past it, the oldest call with more than two waiting changes has all but its
//! first merged into one net change (`"coalesced": n`), so memory stays bounded by the
//! number of live calls (at most two changes each) whatever the outage lasts; every merge
//! is counted and logged by the caller. A call's first waiting change is never merged: the
//! merged one is computed from its call text.

use gws_cometd::coalesce::{self, Coalesce, CoalescingQueue, Overflow};
use tokio::time::Instant;

use super::writer::ChangeItem;

impl Coalesce for ChangeItem {
    type Key = String;

    fn key(&self) -> Option<&String> {
        Some(&self.change.call_id)
    }

    /// The net change from the call before the merged ones (the waiting change before
    /// them) to the call after `next`.
    fn merge(&mut self, before: Option<&Self>, next: Self) {
        let before = before.and_then(|b| b.call.as_deref());
        ChangeItem::merge(self, before, next);
    }
}

/// See the [module docs](self): the library's per-key queue, merging a call's tail.
#[derive(Debug)]
pub(crate) struct AgentQueue(CoalescingQueue<ChangeItem>);

/// What [`AgentQueue::next`] found.
#[derive(Debug)]
pub(crate) enum Next {
    /// Write this one (the head of its call), then call [`AgentQueue::done`] or
    /// [`AgentQueue::hold`].
    Item(Box<ChangeItem>),
    /// Nothing ready before this instant.
    At(Instant),
    /// Nothing waiting.
    Empty,
}

impl AgentQueue {
    pub(crate) fn new(bound: usize) -> Self {
        AgentQueue(CoalescingQueue::new(bound, Overflow::MergeTail))
    }

    /// Changes waiting (the one being written included).
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Adds a change; returns how many changes were merged away to stay in the bound.
    pub(crate) fn push(&mut self, item: ChangeItem) -> usize {
        self.0.push(item)
    }

    /// The next change ready at `now`, round robin over calls, skipping calls whose head is
    /// being written or held.
    pub(crate) fn next(&mut self, now: Instant) -> Next {
        match self.0.next(now) {
            coalesce::Next::Item(item) => Next::Item(Box::new(item.clone())),
            coalesce::Next::At(t) => Next::At(t),
            coalesce::Next::Empty => Next::Empty,
        }
    }

    /// Whether a newer change of `call_id` waits behind its head.
    pub(crate) fn has_newer(&self, call_id: &str) -> bool {
        self.0.has_newer(call_id)
    }

    /// The head of `call_id` was written (or dropped).
    pub(crate) fn done(&mut self, call_id: &str) {
        self.0.done(call_id);
    }

    /// The head of `call_id` (updated: `item`) is to be tried again at `until`.
    pub(crate) fn hold(&mut self, item: ChangeItem, until: Option<Instant>) {
        self.0.hold(item, until);
    }

    /// Drops every hold (shutting down: write what waits now).
    pub(crate) fn release_holds(&mut self) {
        self.0.release_holds();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gws_cometd::gws::store::{change_between, ChangeOrigin};
    use std::sync::Arc;

    fn item(call: &str, n: u32) -> ChangeItem {
        let text = format!(r#"{{"id":"{call}","state":"Established","userData":{{"N":{n}}}}}"#);
        let change = change_between(call, None, Some(&text), ChangeOrigin::Notification, None);
        ChangeItem::new(change, Some(Arc::from(text.as_str())))
    }

    fn take(q: &mut AgentQueue) -> ChangeItem {
        match q.next(Instant::now()) {
            Next::Item(i) => {
                q.done(i.call_id());
                *i
            }
            other => panic!("expected an item, got {other:?}"),
        }
    }

    #[test]
    fn within_the_bound_every_change_should_come_out_in_order_per_call() {
        let mut q = AgentQueue::new(10);
        for n in 0..4 {
            assert_eq!(q.push(item("a", n)), 0);
            assert_eq!(q.push(item("b", n)), 0);
        }
        assert_eq!(q.len(), 8);
        let mut seen_a = Vec::new();
        for _ in 0..8 {
            let i = take(&mut q);
            if i.call_id() == "a" {
                seen_a.push(i.call.unwrap().to_string());
            }
        }
        assert_eq!(seen_a.len(), 4);
        assert!(seen_a[3].contains(r#""N":3"#));
        assert!(matches!(q.next(Instant::now()), Next::Empty));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn beyond_the_bound_a_call_should_keep_its_first_change_and_a_net_one() {
        let mut q = AgentQueue::new(3);
        let mut merged = 0;
        for n in 0..10 {
            merged += q.push(item("a", n));
            assert!(q.len() <= 3);
        }
        assert_eq!(q.len(), 2);
        assert_eq!(merged, 8);
        let first = take(&mut q);
        assert!(first.call.unwrap().contains(r#""N":0"#));
        let last = take(&mut q);
        assert!(last.call.as_deref().unwrap().contains(r#""N":9"#));
        assert_eq!(last.coalesced, 9);
        // The net change from N=0 to N=9.
        assert_eq!(last.change.user_data.changed.len(), 1);
        assert!(!last.change.new);
    }

    #[test]
    fn a_busy_head_should_not_be_handed_out_or_merged() {
        let mut q = AgentQueue::new(2);
        q.push(item("a", 0));
        let Next::Item(head) = q.next(Instant::now()) else {
            panic!()
        };
        assert!(matches!(q.next(Instant::now()), Next::Empty));
        for n in 1..6 {
            q.push(item("a", n));
        }
        // Busy head, the first waiting change, and one merged.
        assert_eq!(q.len(), 3);
        assert!(q.has_newer("a"));
        q.done(head.call_id());
        assert!(take(&mut q).call.unwrap().contains(r#""N":1"#));
        let last = take(&mut q);
        assert!(last.call.unwrap().contains(r#""N":5"#));
        assert_eq!(last.coalesced, 4);
    }

    #[test]
    fn a_held_head_should_wait_while_other_calls_go_on() {
        let mut q = AgentQueue::new(10);
        q.push(item("a", 0));
        q.push(item("b", 0));
        let Next::Item(a) = q.next(Instant::now()) else {
            panic!()
        };
        let later = Instant::now() + std::time::Duration::from_secs(5);
        q.hold(*a, Some(later));
        let b = take(&mut q);
        assert_eq!(b.call_id(), "b");
        assert!(matches!(q.next(Instant::now()), Next::At(t) if t == later));
        assert!(matches!(q.next(later), Next::Item(_)));
    }
}
