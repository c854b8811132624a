//! The user-data diff between two snapshots of a call, duplicate-aware.
//!
//! Pairs are compared key by key, keys grouped by hashing. For one key the values equal at
//! the start and at the end of both lists are the same pairs, so a second `AccountNumber`
//! appended after the first is one addition (not a change of the first), and deleting the
//! first of two is one removal. Between them the k-th old value pairs with the k-th new one
//! (a change when they differ); what is left on the longer side is added or removed.
//!
//! Every step is linear in the number of pairs and in the size of their text: there is no
//! table of old × new values (a longest common subsequence is not needed for a change
//! report), no search of one list per pair of the other, and values are compared and built
//! from their text with an explicit stack (see [`Value`]), never by re-reading each level.

use std::borrow::Cow;
use std::collections::HashSet;

use indexmap::IndexMap;
use serde::Serialize;

use super::kvlist;
use super::user_data::{same_json, UserData, Value, MAX_USER_DATA_DEPTH};

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
        // one value changed or one pair appended), so only the middle is paired.
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
        // none twice, so each key has one value on each side and pairing is by position.
        let in_place = old.len() == new.len()
            && old
                .iter()
                .zip(new)
                .all(|(a, b)| a.0.as_ref() == b.0.as_ref())
            && {
                let mut seen = HashSet::with_capacity(old.len());
                old.iter().all(|(k, _)| seen.insert(k.as_ref()))
            };
        if in_place {
            for (a, b) in old.iter().zip(new).filter(|(a, b)| !a.1.same(&b.1)) {
                diff.changed.push(ChangedPair {
                    key: a.0.as_ref().to_owned(),
                    old: a.1.to_value(),
                    new: b.1.to_value(),
                });
            }
            return diff;
        }
        UserDataDiff::paired(old, new)
    }

    /// The diff with every key's values paired: the general case. Keys are grouped by
    /// hashing, in order of first appearance (old first); see [`UserDataDiff::pair_key`] for
    /// how one key's values pair up.
    fn paired<K: AsRef<str>, V: DiffValue>(old: &[(K, V)], new: &[(K, V)]) -> UserDataDiff {
        let mut diff = UserDataDiff::default();
        type Sides<'p, V> = (Vec<&'p V>, Vec<&'p V>);
        let mut keys: IndexMap<&str, Sides<'_, V>> = IndexMap::new();
        for (k, v) in old {
            keys.entry(k.as_ref()).or_default().0.push(v);
        }
        for (k, v) in new {
            keys.entry(k.as_ref()).or_default().1.push(v);
        }
        for (key, (o, n)) in &keys {
            diff.pair_key(key, o, n);
        }
        diff
    }

    /// One key's values, old `o` and new `n`, in order: those equal at the start and at the
    /// end are the same pairs; between them the k-th old value pairs with the k-th new one
    /// (a change when they differ), and the values left over on the longer side are
    /// removals or additions. Linear in the number of values: a second `AccountNumber`
    /// appended after the first is one addition, deleting the first of two is one removal,
    /// and 100 000 duplicates of one key with scattered edits cost one pass. (It is not a
    /// minimal edit script: a value inserted in the middle of a run of duplicates shows as
    /// changes down to the end of the run, then one addition.)
    fn pair_key<V: DiffValue>(&mut self, key: &str, o: &[&V], n: &[&V]) {
        let head = o.iter().zip(n).take_while(|(a, b)| a.same(b)).count();
        let (o, n) = (&o[head..], &n[head..]);
        let tail = o
            .iter()
            .rev()
            .zip(n.iter().rev())
            .take_while(|(a, b)| a.same(b))
            .count();
        let (o, n) = (&o[..o.len() - tail], &n[..n.len() - tail]);
        let common = o.len().min(n.len());
        for (a, b) in o.iter().zip(n).filter(|(a, b)| !a.same(b)) {
            self.changed.push(ChangedPair {
                key: key.to_owned(),
                old: a.to_value(),
                new: b.to_value(),
            });
        }
        for a in &o[common..] {
            self.removed.push(Pair {
                key: key.to_owned(),
                value: a.to_value(),
            });
        }
        for b in &n[common..] {
            self.added.push(Pair {
                key: key.to_owned(),
                value: b.to_value(),
            });
        }
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
/// equality, decoded only where it is not (escaped strings, objects, lists), in one pass
/// each.
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
            (Some(b'"'), Some(b'"')) => self.to_value() == other.to_value(),
            (Some(x @ (b'{' | b'[')), Some(y)) if x == y => {
                same_json(a, b).unwrap_or_else(|| self.to_value() == other.to_value())
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
        // The text was validated as JSON, and its depth checked, when it was read; a string
        // that escapes half a surrogate pair is the one thing left that does not build.
        Value::from_json(self.0, MAX_USER_DATA_DEPTH).unwrap_or(Value::Null)
    }
}

/// A v3 KVList entry's `type` and `value` text: compared as text where the same type and
/// text are the same value, built (see `kvlist`) where they may not be.
#[derive(Clone, Debug)]
pub(crate) struct KvText<'a> {
    pub(crate) ty: Option<Cow<'a, str>>,
    pub(crate) value: &'a str,
}

impl DiffValue for KvText<'_> {
    fn same(&self, other: &Self) -> bool {
        if self.ty == other.ty {
            if self.value == other.value {
                return true;
            }
            // Two strings without escapes, or two numbers, differ when their texts do (as
            // `Value`s compare them); anything else is compared as the values it reads to.
            let plain = |v: &str| v.starts_with('"') && !v.contains('\\');
            let number = |v: &str| v.starts_with(|c: char| c == '-' || c.is_ascii_digit());
            match self.ty.as_deref() {
                Some("str") if plain(self.value) && plain(other.value) => return false,
                Some("int") if number(self.value) && number(other.value) => return false,
                _ => {}
            }
        }
        self.to_value() == other.to_value()
    }

    fn to_value(&self) -> Value {
        kvlist::value_of(self.ty.as_deref(), self.value, MAX_USER_DATA_DEPTH)
    }
}

/// A user-data value's text in either generation's form; values of the two forms compare
/// as the [`Value`]s they read to.
#[derive(Clone, Debug)]
pub(crate) enum ValueText<'a> {
    /// v2: the value of a `userData` object's member.
    Json(JsonText<'a>),
    /// v3: a KVList entry.
    Kv(KvText<'a>),
}

impl DiffValue for ValueText<'_> {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (ValueText::Json(a), ValueText::Json(b)) => a.same(b),
            (ValueText::Kv(a), ValueText::Kv(b)) => a.same(b),
            _ => self.to_value() == other.to_value(),
        }
    }

    fn to_value(&self) -> Value {
        match self {
            ValueText::Json(j) => j.to_value(),
            ValueText::Kv(k) => k.to_value(),
        }
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
        /// pairing the rest key by key gives.
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
                UserDataDiff::paired(o, n)
            );
        }
    }

    #[test]
    fn kvlist_values_compare_as_the_values_they_read_to() {
        let texts = [
            ("str", r#""a""#),
            ("str", r#""\u0061""#),
            ("str", "1"),
            ("int", "1"),
            ("int", r#""1""#),
            ("int", "-0"),
            ("int", "0"),
            ("int", r#"{"a":1}"#),
            ("int", r#"{ "a" : 1 }"#),
            ("kvlist", r#"[{"key":"k","type":"str","value":"v"}]"#),
            ("kvlist", r#"[ {"value":"v","type":"str","key":"k"} ]"#),
            ("kvlist", r#"{"k":"v"}"#),
            ("binary", r#""a""#),
        ];
        let kv = |(ty, value): (&'static str, &'static str)| KvText {
            ty: Some(Cow::Borrowed(ty)),
            value,
        };
        for a in texts {
            for b in texts {
                let (x, y) = (kv(a), kv(b));
                assert_eq!(x.same(&y), x.to_value() == y.to_value(), "{a:?} {b:?}");
            }
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

    #[test]
    fn duplicates_of_one_key_pair_in_order_after_their_common_ends() {
        // Half of 1 000 duplicates changed: one change each, nothing added or removed.
        let old: Vec<(String, Value)> = (0..1000)
            .map(|i| ("K".into(), Value::from(i as i64)))
            .collect();
        let mut new = old.clone();
        for (i, p) in new.iter_mut().enumerate().filter(|(i, _)| i % 2 == 1) {
            p.1 = Value::from(-(i as i64));
        }
        let d = UserDataDiff::between_pairs(&old, &new);
        assert_eq!(
            (d.changed.len(), d.added.len(), d.removed.len()),
            (500, 0, 0)
        );
        assert_eq!(d.changed[0].old, Value::from(1i64));
        assert_eq!(d.changed[0].new, Value::from(-1i64));
        // One more at the end, one fewer at the start: one addition, one removal.
        let d = UserDataDiff::between(
            &ud(r#"{"A":"1","A":"2","A":"3"}"#),
            &ud(r#"{"A":"2","A":"3","A":"4"}"#),
        );
        assert_eq!(
            json(&d),
            r#"{"changed":[{"key":"A","old":"1","new":"2"},{"key":"A","old":"2","new":"3"},{"key":"A","old":"3","new":"4"}]}"#
        );
        let d = UserDataDiff::between(
            &ud(r#"{"A":"1","B":"x","A":"2"}"#),
            &ud(r#"{"B":"x","A":"2"}"#),
        );
        assert_eq!(json(&d), r#"{"removed":[{"key":"A","value":"1"}]}"#);
    }

    #[test]
    fn permuted_distinct_keys_are_no_change() {
        let old: Vec<(String, Value)> = (0..2000)
            .map(|i| (format!("k{i}"), Value::from(i as i64)))
            .collect();
        let mut new = old.clone();
        new.reverse();
        assert!(UserDataDiff::between_pairs(&old, &new).is_empty());
        new[7].1 = Value::from("x");
        let d = UserDataDiff::between_pairs(&old, &new);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].key, new[7].0);
    }

    #[test]
    fn nested_values_compare_and_build_from_their_text() {
        let pairs = |t: &'static str| vec![("K", JsonText(t))];
        let d = UserDataDiff::between_pairs(
            &pairs(r#"{"a":[1,"\u0041"]}"#),
            &pairs(r#"{ "a" : [1,"A"] }"#),
        );
        assert!(d.is_empty(), "{d:?}");
        let d = UserDataDiff::between_pairs(
            &pairs(r#"{"a":[1,{"b":null}]}"#),
            &pairs(r#"{"a":[1,{"b":true}]}"#),
        );
        assert_eq!(
            json(&d),
            r#"{"changed":[{"key":"K","old":{"a":[1,{"b":null}]},"new":{"a":[1,{"b":true}]}}]}"#
        );
        // Comparing without building agrees with comparing what is built.
        let texts = [
            r#"{"a":[1,"A"]}"#,
            r#"{ "a" : [ 1 , "\u0041" ] }"#,
            r#"{"\u0061":[1,"A"]}"#,
            r#"{"a":[1,"A"],"a":null}"#,
            r#"{"a":[1.0,"A"]}"#,
            r#"{"a":[[1],"A"]}"#,
            r#"{"a":{"b":[]}}"#,
            r#"{"a":{"b":{}}}"#,
            r#"[{"a":true},false]"#,
            r#"[{"a":true}]"#,
            "[]",
            "{}",
        ];
        for a in texts {
            for b in texts {
                let built = Value::from_json(a, 64) == Value::from_json(b, 64);
                assert_eq!(same_json(a, b), Some(built), "{a} vs {b}");
            }
        }
        // Deep text builds up to the limit, not beyond (and never recursively).
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(Value::from_json(&deep(MAX_USER_DATA_DEPTH), MAX_USER_DATA_DEPTH).is_some());
        assert!(Value::from_json(&deep(MAX_USER_DATA_DEPTH + 1), MAX_USER_DATA_DEPTH).is_none());
        assert!(Value::from_json(&deep(100_000), MAX_USER_DATA_DEPTH).is_none());
        assert!(
            serde_json::from_str::<UserData>(&format!(r#"{{"k":{}}}"#, deep(100_000))).is_err()
        );
    }
}
