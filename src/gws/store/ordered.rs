//! [`OrderedMap`]: a map from string keys that iterates in insertion order and removes in
//! amortized constant time.
//!
//! The call store needs both: snapshots list calls in the order first seen, and every
//! `Completed` call leaves. An `IndexMap` keeps order on removal only by shifting every later
//! entry, which makes a long replay (thousands of calls coming and going) quadratic. Here a
//! removal leaves a hole, and the holes are squeezed out once they outnumber the entries.

use std::collections::HashMap;

/// A map from string keys in insertion order, with O(1) amortized removal.
#[derive(Debug)]
pub(crate) struct OrderedMap<V> {
    /// Where each key's entry is in `slots`.
    index: HashMap<String, usize>,
    /// The entries in insertion order; `None` where one was removed.
    slots: Vec<Option<(String, V)>>,
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap {
            index: HashMap::new(),
            slots: Vec::new(),
        }
    }
}

impl<V> OrderedMap<V> {
    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        let i = *self.index.get(key)?;
        self.slots.get(i)?.as_ref().map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        self.slots.get_mut(i)?.as_mut().map(|(_, v)| v)
    }

    /// Where the entry under `key` is, for [`at_mut`](Self::at_mut) and
    /// [`remove_at`](Self::remove_at) (valid until the map is next changed).
    pub(crate) fn find(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The entry [`find`](Self::find) returned `i` for.
    pub(crate) fn at_mut(&mut self, i: usize) -> Option<&mut V> {
        self.slots.get_mut(i)?.as_mut().map(|(_, v)| v)
    }

    /// Removes the entry [`find`](Self::find) returned `i` for.
    pub(crate) fn remove_at(&mut self, i: usize) -> Option<V> {
        let key = self.slots.get(i)?.as_ref()?.0.clone();
        self.remove(&key)
    }

    /// Inserts `value` under `key`: in place when the key is present, else last.
    pub(crate) fn insert(&mut self, key: String, value: V) {
        if let Some(slot) = self.get_mut(&key) {
            *slot = value;
            return;
        }
        self.index.insert(key.clone(), self.slots.len());
        self.slots.push(Some((key, value)));
    }

    /// Removes the entry under `key`, keeping the order of the others.
    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let i = self.index.remove(key)?;
        let (_, value) = self.slots.get_mut(i)?.take()?;
        // Squeezing the holes out is linear, so doing it only once they outnumber the
        // entries keeps removal constant on average.
        if self.slots.len() > 2 * self.index.len() + 16 {
            self.compact();
        }
        Some(value)
    }

    /// Keeps the entries for which `keep` says true, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str, &mut V) -> bool) {
        for slot in &mut self.slots {
            if let Some((key, value)) = slot {
                if !keep(key, value) {
                    self.index.remove(key.as_str());
                    *slot = None;
                }
            }
        }
        self.compact();
    }

    /// The entries in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.slots
            .iter()
            .filter_map(|slot| slot.as_ref().map(|(k, v)| (k.as_str(), v)))
    }

    /// Drops the holes and points the index at the entries' new places.
    fn compact(&mut self) {
        self.slots.retain(Option::is_some);
        for (i, (key, _)) in self.slots.iter().flatten().enumerate() {
            if let Some(at) = self.index.get_mut(key.as_str()) {
                *at = i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entries_keep_their_order_through_removals_and_compaction() {
        let mut m = OrderedMap::default();
        for i in 0..100 {
            m.insert(format!("k{i}"), i);
        }
        for i in (0..100).filter(|i| i % 3 != 0) {
            assert_eq!(m.remove(&format!("k{i}")), Some(i));
        }
        assert_eq!(m.remove("k1"), None);
        let left: Vec<i32> = m.iter().map(|(_, v)| *v).collect();
        assert_eq!(left, (0..100).filter(|i| i % 3 == 0).collect::<Vec<_>>());
        assert_eq!(m.len(), left.len());
        // A key removed and inserted again goes last; one present is replaced in place.
        m.insert("k1".into(), -1);
        m.insert("k0".into(), -2);
        assert_eq!(m.iter().next(), Some(("k0", &-2)));
        assert_eq!(m.iter().last(), Some(("k1", &-1)));
        assert_eq!(m.get("k3"), Some(&3));
        *m.get_mut("k3").unwrap() = 33;
        m.retain(|k, v| k != "k6" && *v != 9);
        assert_eq!(m.get("k3"), Some(&33));
        assert_eq!(m.get("k6"), None);
        assert_eq!(m.get("k9"), None);
        assert_eq!(m.iter().count(), m.len());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u32),
        Remove(u8),
        Retain(u8),
    }

    proptest! {
        #[test]
        fn it_behaves_like_a_vector_of_pairs(ops in prop::collection::vec(prop_oneof![
            3 => (0..40u8, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0..40u8).prop_map(Op::Remove),
            1 => (1..7u8).prop_map(Op::Retain),
        ], 0..300)) {
            let mut m = OrderedMap::default();
            let mut model: Vec<(String, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let k = k.to_string();
                        match model.iter_mut().find(|(mk, _)| *mk == k) {
                            Some(pair) => pair.1 = v,
                            None => model.push((k.clone(), v)),
                        }
                        m.insert(k, v);
                    }
                    Op::Remove(k) => {
                        let k = k.to_string();
                        let expected = model.iter().position(|(mk, _)| *mk == k).map(|i| model.remove(i).1);
                        prop_assert_eq!(m.remove(&k), expected);
                    }
                    Op::Retain(n) => {
                        model.retain(|(_, v)| v % u32::from(n) != 0);
                        m.retain(|_, v| *v % u32::from(n) != 0);
                    }
                }
                let seen: Vec<(String, u32)> = m.iter().map(|(k, v)| (k.to_owned(), *v)).collect();
                prop_assert_eq!(&seen, &model);
                prop_assert_eq!(m.len(), model.len());
                for (k, v) in &model {
                    prop_assert_eq!(m.get(k), Some(v));
                }
            }
        }
    }
}
