//! The user-data diff of one call between two snapshots, reading each text's members once.
//!
//! The store keeps where each member of a call's `userData` text is (its [`Member`]s) once a
//! diff has read them: the next diff reads only the new text's members, and compares
//! values as text where text equality is value equality (see
//! [`JsonText`]).

use std::borrow::Cow;

use crate::gws::model::diff::{JsonText, KvText, UserDataDiff, ValueText};
use crate::gws::model::kvlist;
use crate::gws::wire::json::{self, Member};

/// The members of a `userData` text, by position.
pub(super) type Members = Vec<Member>;

/// A `userData` text's pairs, values as text, in the form the text has: each form is
/// diffed with its own value type, so v2's pairs cost what they did before v3 (a value is a
/// borrowed slice), and only a diff between the two forms reads both as [`ValueText`].
pub(super) enum Pairs<'t> {
    /// v2's object.
    Object(Vec<(Cow<'t, str>, JsonText<'t>)>),
    /// v3's KVList.
    KvList(Vec<(Cow<'t, str>, KvText<'t>)>),
}

impl<'t> Pairs<'t> {
    /// No pairs (no `userData`).
    pub(super) fn none() -> Self {
        Pairs::Object(Vec::new())
    }

    fn is_empty(&self) -> bool {
        match self {
            Pairs::Object(p) => p.is_empty(),
            Pairs::KvList(p) => p.is_empty(),
        }
    }

    /// The pairs with values of either form.
    fn into_mixed(self) -> Vec<(Cow<'t, str>, ValueText<'t>)> {
        match self {
            Pairs::Object(p) => p
                .into_iter()
                .map(|(k, v)| (k, ValueText::Json(v)))
                .collect(),
            Pairs::KvList(p) => p.into_iter().map(|(k, v)| (k, ValueText::Kv(v))).collect(),
        }
    }
}

/// The diff from `old` to `new`, whatever their forms.
pub(super) fn between(old: Pairs<'_>, new: Pairs<'_>) -> UserDataDiff {
    match (old, new) {
        (Pairs::Object(a), Pairs::Object(b)) => UserDataDiff::between_pairs(&a, &b),
        (Pairs::KvList(a), Pairs::KvList(b)) => UserDataDiff::between_pairs(&a, &b),
        // No user data on one side: the other side's form, nothing to convert.
        (a, Pairs::KvList(b)) if a.is_empty() => UserDataDiff::between_pairs(&[], &b),
        (Pairs::KvList(a), b) if b.is_empty() => UserDataDiff::between_pairs(&a, &[]),
        // One call in both forms (a store fed by both generations): compared as values.
        (a, b) => UserDataDiff::between_pairs(&a.into_mixed(), &b.into_mixed()),
    }
}

/// The pairs of the object `text` at `members`; a key that escapes half a surrogate pair is
/// passed over.
fn object_pairs<'t>(text: &'t str, members: &[Member]) -> Pairs<'t> {
    Pairs::Object(
        members
            .iter()
            .filter_map(|m| {
                let key = json::string_text(text.get(m.key.clone())?).ok()?;
                Some((key, JsonText(text.get(m.value.clone())?)))
            })
            .collect(),
    )
}

/// The pairs of a v3 KVList text (none when it is not one: the decoder has checked it).
fn kvlist_pairs(text: &str) -> Pairs<'_> {
    Pairs::KvList(
        kvlist::entries(text)
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                let value = KvText {
                    ty: e.ty,
                    value: e.value,
                };
                (e.key, value)
            })
            .collect(),
    )
}

/// The pairs of a `userData` text in either form (v2's object, whose members may be known
/// already, or v3's KVList), and the members of an object (for the next diff; a KVList's
/// entries are read again each time, which costs the same one pass).
pub(super) fn pairs_of<'t>(
    text: &'t str,
    members: Option<&[Member]>,
) -> (Pairs<'t>, Option<Members>) {
    if text.trim_start().starts_with('[') {
        return (kvlist_pairs(text), None);
    }
    match members {
        Some(members) => (object_pairs(text, members), None),
        None => {
            let read = json::members(text).unwrap_or_default();
            (object_pairs(text, &read), Some(read))
        }
    }
}

/// The diff from `old` (a `userData` text and its members, when known) to `new`, and the
/// members of `new` (for the next diff; `None` for a KVList).
pub(super) fn diff(
    old: Option<(&str, Option<&[Member]>)>,
    new: Option<&str>,
) -> (UserDataDiff, Option<Members>) {
    let old_pairs = match old {
        Some((text, members)) => pairs_of(text, members).0,
        None => Pairs::none(),
    };
    let Some(new_text) = new else {
        return (between(old_pairs, Pairs::none()), None);
    };
    let (new_pairs, members) = pairs_of(new_text, None);
    (between(old_pairs, new_pairs), members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::UserData;
    use proptest::prelude::*;

    /// The diff read the plain way: every pair of both texts.
    fn plain(old: Option<&str>, new: Option<&str>) -> UserDataDiff {
        let ud = |t: Option<&str>| {
            t.map(|t| serde_json::from_str::<UserData>(t).unwrap())
                .unwrap_or_default()
        };
        UserDataDiff::between(&ud(old), &ud(new))
    }

    #[test]
    fn an_appended_pair_or_a_changed_value_is_found() {
        let old = r#"{"A":"1","B":2,"C":{"x":[1,2]}}"#;
        let new = r#"{"A":"1","B":2,"C":{"x":[1,2]},"A":"9"}"#;
        let (d, members) = diff(Some((old, None)), Some(new));
        assert_eq!(d, plain(Some(old), Some(new)));
        assert_eq!(members.unwrap(), json::members(new).unwrap());
        let newer = r#"{"A":"1","B":3,"C":{"x":[1,2]},"A":"9"}"#;
        let known = json::members(new).unwrap();
        let (d, members) = diff(Some((new, Some(&known))), Some(newer));
        assert_eq!(d, plain(Some(new), Some(newer)));
        assert_eq!(d.changed.len(), 1);
        assert_eq!(members.unwrap(), json::members(newer).unwrap());
    }

    #[test]
    fn either_form_diffs_against_the_other_as_values() {
        let object = r#"{"A":"1","N":9007199254740993,"J":{"k":"v"}}"#;
        let kvlist = r#"[{"key":"A","type":"str","value":"1"},{"key":"N","type":"int","value":9007199254740993},{"key":"J","type":"kvlist","value":[{"key":"k","type":"str","value":"v"}]}]"#;
        assert!(diff(Some((object, None)), Some(kvlist)).0.is_empty());
        assert!(diff(Some((kvlist, None)), Some(object)).0.is_empty());
        let (d, members) = diff(None, Some(kvlist));
        assert_eq!((d, members), (plain(None, Some(object)), None));
        let (d, _) = diff(Some((kvlist, None)), None);
        assert_eq!(d, plain(Some(object), None));
        let changed = r#"[{"key":"A","type":"str","value":"2"}]"#;
        let (d, _) = diff(Some((object, None)), Some(changed));
        assert_eq!(d, plain(Some(object), Some(r#"{"A":"2"}"#)));
    }

    fn ud_text() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just(r#""1""#.to_owned()),
            Just(r#""12""#.to_owned()),
            Just("1".to_owned()),
            Just("12".to_owned()),
            Just(r#"{"k":"1"}"#.to_owned()),
            Just(r#""a\"b""#.to_owned()),
            Just("[1,2]".to_owned()),
        ];
        let key = prop_oneof![
            Just(r#""A""#),
            Just(r#""B""#),
            Just(r#""AB""#),
            Just(r#""\u0041""#),
        ];
        prop::collection::vec((key, value, prop::bool::ANY), 0..7).prop_map(|members| {
            let body: Vec<String> = members
                .iter()
                .map(|(k, v, ws)| {
                    if *ws {
                        format!(" {k} : {v} ")
                    } else {
                        format!("{k}:{v}")
                    }
                })
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    proptest! {
        #[test]
        fn the_diff_is_the_plain_diff_and_the_members_are_the_read_ones(
            old in ud_text(),
            new in ud_text(),
            know in prop::bool::ANY,
        ) {
            let known = json::members(&old).unwrap();
            let hint = if know { Some(known.as_slice()) } else { None };
            let (d, members) = diff(Some((&old, hint)), Some(&new));
            prop_assert_eq!(d, plain(Some(&old), Some(&new)));
            prop_assert_eq!(members.unwrap(), json::members(&new).unwrap());
            let (gone, _) = diff(Some((&old, hint)), None);
            prop_assert_eq!(gone, plain(Some(&old), None));
            let (fresh, _) = diff(None, Some(&new));
            prop_assert_eq!(fresh, plain(None, Some(&new)));
        }
    }
}
