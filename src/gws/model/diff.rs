//! The user-data diff between two snapshots of a call, duplicate-aware.
//!
//! Pairs are compared key by key. For one key the old and new values are aligned by their
//! longest common subsequence, so a second `AccountNumber` appended after the first is one
//! addition (not a change of the first), and deleting the first of two is one removal.
//! Unaligned values between two aligned ones pair up as changes; the rest are additions or
//! removals.

use serde::Serialize;

use super::user_data::{UserData, Value};

/// One key-value pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pair {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
}

/// A value that changed under the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangedPair {
    /// The key.
    pub key: String,
    /// The value before.
    pub old: Value,
    /// The value after.
    pub new: Value,
}

/// How the user data of a call changed between two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserDataDiff {
    /// Pairs that are new (including a further pair under an existing key).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<Pair>,
    /// Pairs whose value changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<ChangedPair>,
    /// Pairs that are gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<Pair>,
}

impl UserDataDiff {
    /// True when nothing was added, changed or removed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Computes the diff from `old` to `new`.
    pub fn between(old: &UserData, new: &UserData) -> UserDataDiff {
        UserDataDiff::between_pairs(old.pairs(), new.pairs())
    }

    /// Computes the diff between two pair lists whose values are compared and copied
    /// through [`DiffValue`].
    pub(crate) fn between_pairs<K: AsRef<str>, V: DiffValue>(
        mut old: &[(K, V)],
        mut new: &[(K, V)],
    ) -> UserDataDiff {
        let mut diff = UserDataDiff::default();
        let same = |a: &(K, V), b: &(K, V)| a.0.as_ref() == b.0.as_ref() && a.1.same(&b.1);
        // Identical leading and trailing pairs cannot be part of the diff (the usual case:
        // one value changed or one pair appended), so only the middle is aligned.
        let prefix = old.iter().zip(new).take_while(|(a, b)| same(a, b)).count();
        old = &old[prefix..];
        new = &new[prefix..];
        let suffix = old
            .iter()
            .rev()
            .zip(new.iter().rev())
            .take_while(|(a, b)| same(a, b))
            .count();
        old = &old[..old.len() - suffix];
        new = &new[..new.len() - suffix];
        if old.is_empty() && new.is_empty() {
            return diff;
        }
        // The other usual case, values updated in place: the same keys in the same order,
        // none twice, so each key has one value on each side and alignment is pairing.
        let key = |p: &(K, V)| p.0.as_ref().to_owned();
        let in_place = old.len() == new.len()
            && old
                .iter()
                .zip(new)
                .all(|(a, b)| a.0.as_ref() == b.0.as_ref())
            && old
                .iter()
                .enumerate()
                .all(|(i, a)| old[..i].iter().all(|b| a.0.as_ref() != b.0.as_ref()));
        if in_place {
            for (a, b) in old.iter().zip(new).filter(|(a, b)| !a.1.same(&b.1)) {
                diff.changed.push(ChangedPair {
                    key: key(a),
                    old: a.1.to_value(),
                    new: b.1.to_value(),
                });
            }
            return diff;
        }
        UserDataDiff::aligned(old, new)
    }

    /// The diff with every key's values aligned: the general case.
    fn aligned<K: AsRef<str>, V: DiffValue>(old: &[(K, V)], new: &[(K, V)]) -> UserDataDiff {
        let mut diff = UserDataDiff::default();
        // Keys in order of first appearance, old first; lists are short, so linear search.
        let mut keys: Vec<&str> = Vec::new();
        for (k, _) in old.iter().chain(new) {
            if !keys.contains(&k.as_ref()) {
                keys.push(k.as_ref());
            }
        }
        fn values<'p, K: AsRef<str>, V>(pairs: &'p [(K, V)], key: &str) -> Vec<&'p V> {
            pairs
                .iter()
                .filter(|(k, _)| k.as_ref() == key)
                .map(|(_, v)| v)
                .collect()
        }
        for key in keys {
            let o = values(old, key);
            let n = values(new, key);
            if o.len() != n.len() || o.iter().zip(&n).any(|(a, b)| !a.same(b)) {
                diff.align(key, &o, &n);
            }
        }
        diff
    }

    fn align<V: DiffValue>(&mut self, key: &str, o: &[&V], n: &[&V]) {
        // lcs[i][j]: length of the longest common subsequence of o[i..] and n[j..].
        let w = n.len() + 1;
        let mut lcs = vec![0usize; (o.len() + 1) * w];
        for i in (0..o.len()).rev() {
            for j in (0..n.len()).rev() {
                lcs[i * w + j] = if o[i].same(n[j]) {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        let (mut gap_o, mut gap_n) = (Vec::new(), Vec::new());
        while i < o.len() || j < n.len() {
            if i < o.len() && j < n.len() && o[i].same(n[j]) {
                self.flush(key, &mut gap_o, &mut gap_n);
                i += 1;
                j += 1;
            } else if j < n.len() && (i == o.len() || lcs[i * w + j + 1] >= lcs[(i + 1) * w + j]) {
                gap_n.push(n[j]);
                j += 1;
            } else {
                gap_o.push(o[i]);
                i += 1;
            }
        }
        self.flush(key, &mut gap_o, &mut gap_n);
    }

    /// Emits one gap between aligned values: pairwise changes, then removals or additions.
    fn flush<V: DiffValue>(&mut self, key: &str, gap_o: &mut Vec<&V>, gap_n: &mut Vec<&V>) {
        let common = gap_o.len().min(gap_n.len());
        for (a, b) in gap_o.iter().zip(gap_n.iter()) {
            self.changed.push(ChangedPair {
                key: key.to_owned(),
                old: a.to_value(),
                new: b.to_value(),
            });
        }
        for a in &gap_o[common..] {
            self.removed.push(Pair {
                key: key.to_owned(),
                value: a.to_value(),
            });
        }
        for b in &gap_n[common..] {
            self.added.push(Pair {
                key: key.to_owned(),
                value: b.to_value(),
            });
        }
        gap_o.clear();
        gap_n.clear();
    }
}

/// A user-data value as the diff sees it: compared with [`Value`]'s equality, and turned
/// into a [`Value`] when it is part of the diff.
pub(crate) trait DiffValue {
    /// Equal as [`Value`]s.
    fn same(&self, other: &Self) -> bool;
    /// The value, for the diff.
    fn to_value(&self) -> Value;
}

impl DiffValue for Value {
    fn same(&self, other: &Self) -> bool {
        self == other
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// A value's JSON text, already validated: compared as text where text equality is value
/// equality, decoded only where it is not (escaped strings, objects, lists).
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonText<'a>(pub(crate) &'a str);

impl DiffValue for JsonText<'_> {
    fn same(&self, other: &Self) -> bool {
        let (a, b) = (self.0, other.0);
        if a == b {
            return true;
        }
        match (a.as_bytes().first(), b.as_bytes().first()) {
            (Some(b'"'), Some(b'"')) if !a.contains('\\') && !b.contains('\\') => false,
            (Some(x @ (b'"' | b'{' | b'[')), Some(y)) if x == y => {
                self.to_value() == other.to_value()
            }
            // Numbers compare by their text (as [`Value`] does); literals differ when their
            // texts do.
            _ => false,
        }
    }

    fn to_value(&self) -> Value {
        if let Some(s) = self.0.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            if !s.contains('\\') {
                return Value::String(s.to_owned());
            }
        }
        // The text was validated as JSON when it was read, so this cannot fail.
        serde_json::from_str(self.0).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ud(text: &str) -> UserData {
        serde_json::from_str(text).unwrap()
    }

    fn json(d: &UserDataDiff) -> String {
        serde_json::to_string(d).unwrap()
    }

    proptest::proptest! {
        /// Skipping the common ends, and pairing values updated in place, give what
        /// aligning the rest gives.
        #[test]
        fn the_shortcuts_give_the_aligned_diff(
            old in proptest::collection::vec((0u8..3, 0i64..3), 0..7),
            new in proptest::collection::vec((0u8..3, 0i64..3), 0..7),
        ) {
            let pairs = |v: &[(u8, i64)]| -> Vec<(String, Value)> {
                v.iter().map(|(k, n)| (format!("K{k}"), Value::from(*n))).collect()
            };
            let (old, new) = (pairs(&old), pairs(&new));
            let same = |a: &(String, Value), b: &(String, Value)| a == b;
            let prefix = old.iter().zip(&new).take_while(|(a, b)| same(a, b)).count();
            let (o, n) = (&old[prefix..], &new[prefix..]);
            let suffix = o.iter().rev().zip(n.iter().rev()).take_while(|(a, b)| same(a, b)).count();
            let (o, n) = (&o[..o.len() - suffix], &n[..n.len() - suffix]);
            proptest::prop_assert_eq!(
                UserDataDiff::between_pairs(&old, &new),
                UserDataDiff::aligned(o, n)
            );
        }
    }

    #[test]
    fn a_second_pair_under_an_existing_key_is_an_addition() {
        let d = UserDataDiff::between(
            &ud(r#"{"AccountNumber":"12345"}"#),
            &ud(r#"{"AccountNumber":"12345","AccountNumber":"67890"}"#),
        );
        assert_eq!(
            json(&d),
            r#"{"added":[{"key":"AccountNumber","value":"67890"}]}"#
        );
    }

    #[test]
    fn deleting_the_first_of_two_duplicates_is_one_removal() {
        let d = UserDataDiff::between(&ud(r#"{"A":"1","A":"2"}"#), &ud(r#"{"A":"2"}"#));
        assert_eq!(json(&d), r#"{"removed":[{"key":"A","value":"1"}]}"#);
    }

    #[test]
    fn a_replaced_value_is_a_change_and_other_keys_are_untouched() {
        let d = UserDataDiff::between(
            &ud(r#"{"A":"1","B":2,"C":"x"}"#),
            &ud(r#"{"A":"1","B":3,"D":"y"}"#),
        );
        assert_eq!(
            json(&d),
            r#"{"added":[{"key":"D","value":"y"}],"changed":[{"key":"B","old":2,"new":3}],"removed":[{"key":"C","value":"x"}]}"#
        );
    }

    #[test]
    fn identical_data_gives_an_empty_diff() {
        let a = ud(r#"{"A":"1","A":"1","N":{"x":[1,2]}}"#);
        assert!(UserDataDiff::between(&a, &a.clone()).is_empty());
    }
}
