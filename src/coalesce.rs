//! A per-key coalescing queue: the building block of the feed's consumer queue and of the
//! bridge's per-agent buffer (hidden from the docs: its API follows those two users, not a
//! promise to services).
//!
//! Entries wait in arrival order; an entry with a key (a call's change) can be merged with
//! the later entries of the same key, so that memory stays bounded by the number of keys
//! however long the consumer is away. What a merge means is the entry type's
//! ([`Coalesce::merge`]); when and where merges happen is the queue's [`Overflow`] rule:
//!
//! - [`Overflow::JoinLast`] (the feed): while `bound` keyed entries wait, a new entry joins
//!   the last waiting entry of its key, which then stands for the net change since the
//!   consumer last saw the key;
//! - [`Overflow::MergeTail`] (the bridge): while more than `bound` entries wait, the oldest
//!   key with enough waiting keeps its first entry and has the rest merged into one, because
//!   the merged entry is computed from the entry before it.
//!
//! Entries are taken either in arrival order ([`CoalescingQueue::pop_front`]) or round
//! robin over keys, a key's head at a time, with the head marked as being written until it
//! is [`done`](CoalescingQueue::done) or [`held`](CoalescingQueue::hold)
//! ([`CoalescingQueue::next`]).

use std::borrow::Borrow;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

use indexmap::IndexMap;
use tokio::time::Instant;

/// An entry of a [`CoalescingQueue`].
pub trait Coalesce {
    /// What entries merge under (a call id).
    type Key: Hash + Eq + Clone;

    /// The entry's key; `None`: never merged, only kept in order (the feed's other events).
    fn key(&self) -> Option<&Self::Key>;

    /// Folds `next`, a later entry of the same key, into this one. `before`: the entry of
    /// the key waiting just before this one, if any.
    fn merge(&mut self, before: Option<&Self>, next: Self);
}

/// When and where a [`CoalescingQueue`] merges; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// While `bound` keyed entries wait, a new entry joins its key's last waiting entry.
    JoinLast,
    /// While more than `bound` entries wait, the oldest key with three or more waiting
    /// (besides one being written) has all but its first merged into one.
    MergeTail,
}

/// What [`CoalescingQueue::next`] found.
#[derive(Debug)]
pub enum Next<'a, T> {
    /// This key's head, now being written: call [`CoalescingQueue::done`] or
    /// [`CoalescingQueue::hold`].
    Item(&'a T),
    /// Nothing ready before this instant.
    At(Instant),
    /// Nothing waiting.
    Empty,
}

/// One key's waiting entries.
#[derive(Debug, Default)]
struct Lane {
    /// Their numbers in `entries`, oldest first.
    seqs: VecDeque<u64>,
    /// The head is being written: not handed out again, not merged.
    busy: bool,
    /// The head is not to be handed out before this.
    not_before: Option<Instant>,
}

impl Lane {
    /// Entries before the first that may be merged (the one being written).
    fn fixed(&self) -> usize {
        usize::from(self.busy)
    }
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct CoalescingQueue<T: Coalesce> {
    /// Every waiting entry under its arrival number.
    entries: BTreeMap<u64, T>,
    /// Keys in order of arrival (since their lane last emptied).
    lanes: IndexMap<T::Key, Lane>,
    keyed: usize,
    next_seq: u64,
    bound: usize,
    overflow: Overflow,
    /// Round robin over lanes.
    cursor: usize,
}

impl<T: Coalesce> CoalescingQueue<T> {
    /// An empty queue that merges by `overflow` beyond `bound` (at least 1).
    pub fn new(bound: usize, overflow: Overflow) -> Self {
        CoalescingQueue {
            entries: BTreeMap::new(),
            lanes: IndexMap::new(),
            keyed: 0,
            next_seq: 0,
            bound: bound.max(1),
            overflow,
            cursor: 0,
        }
    }

    /// Entries waiting (one being written included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries without a key waiting.
    pub fn unkeyed_len(&self) -> usize {
        self.entries.len() - self.keyed
    }

    /// Adds an entry; returns how many entries were merged away.
    pub fn push(&mut self, item: T) -> usize {
        let Some(key) = item.key().cloned() else {
            self.append(None, item);
            return 0;
        };
        match self.overflow {
            Overflow::JoinLast => self.join_last(key, item),
            Overflow::MergeTail => {
                self.append(Some(key), item);
                let mut merged = 0;
                while self.entries.len() > self.bound {
                    let Some(n) = self.merge_tail() else { break };
                    merged += n;
                }
                merged
            }
        }
    }

    fn append(&mut self, key: Option<T::Key>, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(seq, item);
        if let Some(key) = key {
            self.lanes.entry(key).or_default().seqs.push_back(seq);
            self.keyed += 1;
        }
    }

    fn join_last(&mut self, key: T::Key, item: T) -> usize {
        let target = self
            .lanes
            .get(&key)
            .filter(|lane| self.keyed >= self.bound && lane.seqs.len() > lane.fixed())
            .map(|lane| {
                let n = lane.seqs.len();
                let before = (n >= 2 && n - 2 >= lane.fixed()).then(|| lane.seqs[n - 2]);
                (lane.seqs[n - 1], before)
            });
        let Some((last, before)) = target else {
            self.append(Some(key), item);
            return 0;
        };
        self.fold(last, before, vec![item]);
        1
    }

    /// Merges the waiting entries of the oldest key with enough, after its first, into
    /// one; `None` when no key has enough.
    fn merge_tail(&mut self) -> Option<usize> {
        let lane = self
            .lanes
            .values_mut()
            .find(|lane| lane.seqs.len() >= lane.fixed() + 3)?;
        let keep = lane.fixed() + 1;
        let group: Vec<u64> = lane.seqs.drain(keep + 1..).collect();
        let (into, before) = (lane.seqs[keep], lane.seqs[keep - 1]);
        let rest = group
            .iter()
            .filter_map(|s| self.entries.remove(s))
            .collect();
        let n = group.len();
        self.fold(into, Some(before), rest);
        self.keyed -= n;
        Some(n)
    }

    /// Folds `rest` into the entry `into`, whose key's entry before it is `before`.
    fn fold(&mut self, into: u64, before: Option<u64>, rest: Vec<T>) {
        let Some(mut target) = self.entries.remove(&into) else {
            return;
        };
        let before = before.and_then(|b| self.entries.get(&b));
        for next in rest {
            target.merge(before, next);
        }
        self.entries.insert(into, target);
    }

    /// The oldest entry, whatever its key (for a consumer that takes in arrival order).
    pub fn pop_front(&mut self) -> Option<T> {
        let (seq, item) = self.entries.pop_first()?;
        self.forget(item.key(), seq);
        Some(item)
    }

    /// Takes the oldest entry without a key.
    pub fn remove_oldest_unkeyed(&mut self) -> Option<T> {
        let seq = *self.entries.iter().find(|(_, t)| t.key().is_none())?.0;
        self.entries.remove(&seq)
    }

    /// Drops `seq`, the head of `key`'s lane, from the lane.
    fn forget(&mut self, key: Option<&T::Key>, seq: u64) {
        let Some(key) = key else { return };
        if let Some(lane) = self.lanes.get_mut(key) {
            lane.busy = false;
            if lane.seqs.front() == Some(&seq) {
                lane.seqs.pop_front();
                self.keyed -= 1;
            }
            if lane.seqs.is_empty() {
                self.lanes.shift_remove(key);
            }
        }
    }

    /// The next head ready at `now`, round robin over keys, skipping keys whose head is
    /// being written or held; it is marked as being written.
    pub fn next(&mut self, now: Instant) -> Next<'_, T> {
        let n = self.lanes.len();
        let mut soonest: Option<Instant> = None;
        let mut found = None;
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let Some((_, lane)) = self.lanes.get_index_mut(i) else {
                continue;
            };
            if lane.busy || lane.seqs.is_empty() {
                continue;
            }
            match lane.not_before {
                Some(t) if t > now => soonest = Some(soonest.map_or(t, |s| s.min(t))),
                _ => {
                    lane.busy = true;
                    lane.not_before = None;
                    self.cursor = i + 1;
                    found = lane.seqs.front().copied();
                    break;
                }
            }
        }
        match (found.and_then(|seq| self.entries.get(&seq)), soonest) {
            (Some(item), _) => Next::Item(item),
            (None, Some(t)) => Next::At(t),
            (None, None) => Next::Empty,
        }
    }

    /// Whether a newer entry of `key` waits behind its head.
    pub fn has_newer<Q>(&self, key: &Q) -> bool
    where
        T::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lanes.get(key).is_some_and(|lane| lane.seqs.len() > 1)
    }

    /// The head of `key` was written (or dropped).
    pub fn done<Q>(&mut self, key: &Q)
    where
        T::Key: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(seq) = self.lanes.get(key).and_then(|l| l.seqs.front().copied()) else {
            return;
        };
        if let Some(item) = self.entries.remove(&seq) {
            self.forget(item.key(), seq);
        }
    }

    /// The head of `item`'s key, updated to `item`, is to be handed out again at `until`
    /// (`None`: at once).
    pub fn hold(&mut self, item: T, until: Option<Instant>) {
        let Some(lane) = item.key().and_then(|key| self.lanes.get_mut(key)) else {
            return;
        };
        lane.busy = false;
        lane.not_before = until;
        if let Some(head) = lane.seqs.front().and_then(|s| self.entries.get_mut(s)) {
            *head = item;
        }
    }

    /// Drops every hold (shutting down: hand out what waits now).
    pub fn release_holds(&mut self) {
        for lane in self.lanes.values_mut() {
            lane.not_before = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key and the values merged into it; `before` as the merge saw it.
    #[derive(Clone, Debug, PartialEq)]
    struct E {
        key: Option<&'static str>,
        values: Vec<u32>,
        before: Option<Vec<u32>>,
    }

    fn e(key: &'static str, v: u32) -> E {
        E {
            key: Some(key),
            values: vec![v],
            before: None,
        }
    }

    impl Coalesce for E {
        type Key = &'static str;
        fn key(&self) -> Option<&&'static str> {
            self.key.as_ref()
        }
        fn merge(&mut self, before: Option<&Self>, next: Self) {
            self.values.extend(next.values);
            self.before = before.map(|b| b.values.clone());
        }
    }

    fn drain(q: &mut CoalescingQueue<E>) -> Vec<Vec<u32>> {
        std::iter::from_fn(|| q.pop_front().map(|e| e.values)).collect()
    }

    #[test]
    fn join_last_should_fold_a_new_entry_into_its_keys_last_once_the_bound_is_reached() {
        let mut q = CoalescingQueue::new(2, Overflow::JoinLast);
        assert_eq!(q.push(e("a", 1)), 0);
        assert_eq!(q.push(e("b", 1)), 0);
        assert_eq!(q.push(e("a", 2)), 1);
        assert_eq!(
            q.push(e("c", 1)),
            0,
            "a key with nothing waiting queues anyway"
        );
        assert_eq!(drain(&mut q), vec![vec![1, 2], vec![1], vec![1]]);
        assert!(q.is_empty());
    }

    #[test]
    fn unkeyed_entries_should_keep_their_place_and_never_merge() {
        let mut q = CoalescingQueue::new(1, Overflow::JoinLast);
        q.push(E {
            key: None,
            values: vec![0],
            before: None,
        });
        q.push(e("a", 1));
        q.push(e("a", 2));
        assert_eq!(q.unkeyed_len(), 1);
        assert_eq!(q.remove_oldest_unkeyed().map(|e| e.values), Some(vec![0]));
        assert_eq!(drain(&mut q), vec![vec![1, 2]]);
    }

    #[test]
    fn merge_tail_should_keep_a_keys_first_entry_and_merge_the_rest_after_it() {
        let mut q = CoalescingQueue::new(3, Overflow::MergeTail);
        let merged: usize = (0..6).map(|v| q.push(e("a", v))).sum();
        assert_eq!((merged, q.len()), (4, 2));
        let Next::Item(first) = q.next(Instant::now()) else {
            panic!("a head")
        };
        assert_eq!(first.values, vec![0]);
        q.done(&"a");
        let Next::Item(rest) = q.next(Instant::now()) else {
            panic!("a head")
        };
        assert_eq!(rest.values, vec![1, 2, 3, 4, 5]);
        assert_eq!(rest.before, Some(vec![0]), "merged from the entry before");
    }

    #[test]
    fn a_head_being_written_should_be_neither_handed_out_again_nor_merged() {
        let mut q = CoalescingQueue::new(2, Overflow::MergeTail);
        q.push(e("a", 0));
        assert!(matches!(q.next(Instant::now()), Next::Item(_)));
        assert!(matches!(q.next(Instant::now()), Next::Empty));
        for v in 1..4 {
            q.push(e("a", v));
        }
        assert_eq!(q.len(), 3);
        assert!(q.has_newer(&"a"));
        q.done(&"a");
        assert_eq!(drain(&mut q), vec![vec![1], vec![2, 3]]);
    }

    #[test]
    fn a_held_head_should_wait_while_other_keys_go_on() {
        let mut q = CoalescingQueue::new(10, Overflow::MergeTail);
        q.push(e("a", 0));
        q.push(e("b", 0));
        let a = match q.next(Instant::now()) {
            Next::Item(a) => a.clone(),
            other => panic!("{other:?}"),
        };
        let later = Instant::now() + std::time::Duration::from_secs(5);
        q.hold(a, Some(later));
        assert!(matches!(q.next(Instant::now()), Next::Item(b) if b.key == Some("b")));
        q.done(&"b");
        assert!(matches!(q.next(Instant::now()), Next::At(t) if t == later));
        q.release_holds();
        assert!(matches!(q.next(Instant::now()), Next::Item(a) if a.key == Some("a")));
    }
}
