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

/// A user-data text's pairs, values as text.
pub(super) type Pairs<'t> = Vec<(Cow<'t, str>, ValueText<'t>)>;

/// The pairs of the object `text` at `members`; a key that escapes half a surrogate pair is
/// passed over.
fn object_pairs<'t>(text: &'t str, members: &[Member]) -> Pairs<'t> {
    members
        .iter()
        .filter_map(|m| {
            let key = json::string_text(text.get(m.key.clone())?).ok()?;
            let value = ValueText::Json(JsonText(text.get(m.value.clone())?));
            Some((key, value))
        })
        .collect()
}

/// The pairs of a v3 KVList text (none when it is not one: the decoder has checked it).
fn kvlist_pairs(text: &str) -> Pairs<'_> {
    kvlist::entries(text)
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let value = ValueText::Kv(KvText {
                ty: e.ty,
                value: e.value,
            });
            (e.key, value)
        })
        .collect()
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
        None => Vec::new(),
    };
    let Some(new_text) = new else {
        return (UserDataDiff::between_pairs(&old_pairs, &[]), None);
    };
    let (new_pairs, members) = pairs_of(new_text, None);
    (UserDataDiff::between_pairs(&old_pairs, &new_pairs), members)
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
