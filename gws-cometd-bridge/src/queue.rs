//! One agent's changes waiting for JetStream: in order per call, bounded, coalesced per call
//! beyond the bound.
//!
//! Up to `bound` changes wait as they came, so an outage shorter than the bound loses
//! nothing. Past it, the oldest call with more than two waiting changes has all but its
//! first merged into one net change (`"coalesced": n`), so memory stays bounded by the
//! number of live calls (at most two changes each) whatever the outage lasts; every merge
//! is counted and logged by the caller. A call's first waiting change is never merged: the
//! merged one is computed from its call text.

use std::collections::VecDeque;

use indexmap::IndexMap;
use tokio::time::Instant;

use super::writer::ChangeItem;

/// A call's waiting changes.
#[derive(Debug, Default)]
struct Pending {
    items: VecDeque<ChangeItem>,
    /// The head is not to be tried before this.
    not_before: Option<Instant>,
    /// The head is being written: not handed out again.
    busy: bool,
}

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct AgentQueue {
    calls: IndexMap<String, Pending>,
    len: usize,
    bound: usize,
    /// Round robin over calls.
    cursor: usize,
}

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
        AgentQueue {
            calls: IndexMap::new(),
            len: 0,
            bound: bound.max(1),
            cursor: 0,
        }
    }

    /// Changes waiting (the one being written included).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds a change; returns how many changes were merged away to stay in the bound.
    pub(crate) fn push(&mut self, item: ChangeItem) -> usize {
        self.calls
            .entry(item.call_id().to_owned())
            .or_default()
            .items
            .push_back(item);
        self.len += 1;
        let mut merged = 0;
        while self.len > self.bound {
            let Some(n) = self.coalesce_one() else { break };
            merged += n;
        }
        merged
    }

    /// Merges the waiting changes of one call (after its first, which stays, and not the
    /// one being written) into one. `None` when no call has enough to merge.
    fn coalesce_one(&mut self) -> Option<usize> {
        let pending = self.calls.values_mut().find(|p| {
            let skip = 1 + usize::from(p.busy);
            p.items.len() >= skip + 2
        })?;
        let keep = 1 + usize::from(pending.busy);
        let mut rest: Vec<ChangeItem> = pending.items.drain(keep..).collect();
        let before = pending.items.back().and_then(|i| i.call.clone());
        let mut merged = rest.remove(0);
        let n = rest.len();
        for next in rest {
            merged.merge(before.as_deref(), next);
        }
        pending.items.push_back(merged);
        self.len -= n;
        Some(n)
    }

    /// The next change ready at `now`, round robin over calls, skipping calls whose head is
    /// being written or held.
    pub(crate) fn next(&mut self, now: Instant) -> Next {
        if self.calls.is_empty() {
            return Next::Empty;
        }
        let n = self.calls.len();
        let mut soonest: Option<Instant> = None;
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let Some((_, p)) = self.calls.get_index_mut(i) else {
                continue;
            };
            if p.busy || p.items.is_empty() {
                continue;
            }
            match p.not_before {
                Some(t) if t > now => {
                    soonest = Some(soonest.map_or(t, |s| s.min(t)));
                }
                _ => {
                    p.busy = true;
                    p.not_before = None;
                    self.cursor = i + 1;
                    if let Some(item) = p.items.front() {
                        return Next::Item(Box::new(item.clone()));
                    }
                }
            }
        }
        match soonest {
            Some(t) => Next::At(t),
            None => Next::Empty,
        }
    }

    /// Whether a newer change of `call_id` waits behind its head.
    pub(crate) fn has_newer(&self, call_id: &str) -> bool {
        self.calls.get(call_id).is_some_and(|p| p.items.len() > 1)
    }

    /// The head of `call_id` was written (or dropped).
    pub(crate) fn done(&mut self, call_id: &str) {
        if let Some(p) = self.calls.get_mut(call_id) {
            p.busy = false;
            if p.items.pop_front().is_some() {
                self.len -= 1;
            }
            if p.items.is_empty() {
                self.calls.shift_remove(call_id);
            }
        }
    }

    /// The head of `call_id` (updated: `item`) is to be tried again at `until`.
    pub(crate) fn hold(&mut self, item: ChangeItem, until: Option<Instant>) {
        if let Some(p) = self.calls.get_mut(item.call_id()) {
            p.busy = false;
            p.not_before = until;
            if let Some(head) = p.items.front_mut() {
                *head = item;
            }
        }
    }

    /// Drops every hold (shutting down: write what waits now).
    pub(crate) fn release_holds(&mut self) {
        for p in self.calls.values_mut() {
            p.not_before = None;
        }
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
