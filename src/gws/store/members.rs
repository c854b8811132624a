//! The user-data diff of one call between two snapshots, scanning only what changed.
//!
//! The store keeps where each member of a call's `userData` text is (its [`Span`]s). For the
//! next snapshot, the members that lie wholly inside the bytes the two texts share at the
//! start, or at the end, are the same members: only the new text's middle is scanned, and
//! only the members there are compared. An `AttachUserData` that appends one pair, or an
//! update of one value, costs about the size of the pair, not of the whole user data.

use std::borrow::Cow;
use std::ops::Range;

use crate::gws::model::diff::{JsonText, UserDataDiff};
use crate::gws::wire::scan::{self, Span};

/// The members of a `userData` text, by position.
pub(super) type Members = Vec<Span>;

/// The pairs of `text` at `members`, values as text.
fn pairs<'t>(text: &'t str, members: &[Span]) -> Vec<(Cow<'t, str>, JsonText<'t>)> {
    members
        .iter()
        .filter_map(|m| {
            let key = if m.escaped {
                Cow::Owned(serde_json::from_str::<String>(text.get(m.key.clone())?).ok()?)
            } else {
                Cow::Borrowed(text.get(m.key.start + 1..m.key.end - 1)?)
            };
            Some((key, JsonText(text.get(m.value.clone())?)))
        })
        .collect()
}

/// Bytes compared at once: two chunks' XOR says where they first differ.
const CHUNK: usize = 16;

fn chunk(bytes: &[u8], at: usize) -> u128 {
    let mut c = [0; CHUNK];
    c.copy_from_slice(&bytes[at..at + CHUNK]);
    u128::from_le_bytes(c)
}

/// How many bytes `a` and `b` share at the start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let room = a.len().min(b.len());
    let mut at = 0;
    while at + CHUNK <= room {
        let x = chunk(a, at) ^ chunk(b, at);
        if x != 0 {
            // Little-endian: the lowest set bit is in the first byte that differs.
            return at + (x.trailing_zeros() / 8) as usize;
        }
        at += CHUNK;
    }
    at + a[at..room]
        .iter()
        .zip(&b[at..room])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at the end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let room = a.len().min(b.len());
    let (a, b) = (&a[a.len() - room..], &b[b.len() - room..]);
    let mut at = room;
    while at >= CHUNK {
        let x = chunk(a, at - CHUNK) ^ chunk(b, at - CHUNK);
        if x != 0 {
            // The highest set bit is in the last byte that differs.
            return room - at + (x.leading_zeros() / 8) as usize;
        }
        at -= CHUNK;
    }
    room - at
        + a[..at]
            .iter()
            .rev()
            .zip(b[..at].iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
}

fn shifted(m: &Span, by: isize) -> Span {
    let at = |r: &Range<usize>| r.start.wrapping_add_signed(by)..r.end.wrapping_add_signed(by);
    Span {
        key: at(&m.key),
        escaped: m.escaped,
        value: at(&m.value),
    }
}

/// The diff from `old` (a `userData` text and its members, when known) to `new`, and the
/// members of `new` (for the next diff).
pub(super) fn diff(
    old: Option<(&str, Option<&[Span]>)>,
    new: Option<&str>,
) -> (UserDataDiff, Option<Members>) {
    let (old_text, known) = match old {
        Some((t, m)) => (Some(t), m),
        None => (None, None),
    };
    let scanned;
    let old_members: &[Span] = match (old_text, known) {
        (_, Some(m)) => m,
        (Some(t), None) => {
            scanned = scan::spans(t).unwrap_or_default();
            &scanned
        }
        (None, _) => &[],
    };
    let Some(new_text) = new else {
        let d = UserDataDiff::between_pairs(&pairs(old_text.unwrap_or(""), old_members), &[]);
        return (d, None);
    };
    let Some(old_text) = old_text else {
        let members = scan::spans(new_text).unwrap_or_default();
        let d = UserDataDiff::between_pairs(&[], &pairs(new_text, &members));
        return (d, Some(members));
    };
    let (o, n) = (old_text.as_bytes(), new_text.as_bytes());
    let p = common_prefix(o, n);
    let q = common_suffix(&o[p..], &n[p..]);
    // Members whose bytes, and the delimiter after (before) them, are common to both.
    let head = old_members.iter().take_while(|m| m.value.end < p).count();
    let tail = old_members[head..]
        .iter()
        .rev()
        .take_while(|m| m.key.start > o.len() - q)
        .count();
    let delta = n.len() as isize - o.len() as isize;
    let mid_start = match head {
        0 => 1,
        _ => old_members[head - 1].value.end,
    };
    let mid_end = match tail {
        0 => n.len() - 1,
        _ => old_members[old_members.len() - tail]
            .key
            .start
            .wrapping_add_signed(delta),
    };
    // The new text's members from there up to the first common trailing member.
    let Some(new_middle) = scan::spans_in(new_text, mid_start, mid_end, head == 0) else {
        // Not expected for validated text; fall back to reading all of it.
        let members = scan::spans(new_text).unwrap_or_default();
        let d =
            UserDataDiff::between_pairs(&pairs(old_text, old_members), &pairs(new_text, &members));
        return (d, Some(members));
    };
    let old_mid = &old_members[head..old_members.len() - tail];
    let d = UserDataDiff::between_pairs(&pairs(old_text, old_mid), &pairs(new_text, &new_middle));
    let mut members = Vec::with_capacity(head + new_middle.len() + tail);
    members.extend_from_slice(&old_members[..head]);
    members.extend(new_middle);
    members.extend(
        old_members[old_members.len() - tail..]
            .iter()
            .map(|m| shifted(m, delta)),
    );
    (d, Some(members))
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
    fn an_appended_pair_or_a_changed_value_is_found_without_reading_the_rest() {
        let old = r#"{"A":"1","B":2,"C":{"x":[1,2]}}"#;
        let new = r#"{"A":"1","B":2,"C":{"x":[1,2]},"A":"9"}"#;
        let (d, members) = diff(Some((old, None)), Some(new));
        assert_eq!(d, plain(Some(old), Some(new)));
        assert_eq!(members.unwrap(), scan::spans(new).unwrap());
        let newer = r#"{"A":"1","B":3,"C":{"x":[1,2]},"A":"9"}"#;
        let known = scan::spans(new).unwrap();
        let (d, members) = diff(Some((new, Some(&known))), Some(newer));
        assert_eq!(d, plain(Some(new), Some(newer)));
        assert_eq!(d.changed.len(), 1);
        assert_eq!(members.unwrap(), scan::spans(newer).unwrap());
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
        fn common_ends_are_the_bytes_shared_at_each_end(
            a in prop::collection::vec(0u8..2, 0..200),
            cut in 0usize..200,
            gone in 0usize..50,
            put in prop::collection::vec(0u8..2, 0..50),
        ) {
            // `b` is `a` with one edit somewhere, so long shared runs are the usual case.
            let cut = cut.min(a.len());
            let mut b = a[..cut].to_vec();
            b.extend(&put);
            b.extend(&a[(cut + gone).min(a.len())..]);
            let p = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            prop_assert_eq!(common_prefix(&a, &b), p);
            let q = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
            prop_assert_eq!(common_suffix(&a, &b), q);
        }

        #[test]
        fn the_diff_is_the_plain_diff_and_the_members_are_the_scanned_ones(
            old in ud_text(),
            new in ud_text(),
            know in prop::bool::ANY,
        ) {
            let known = scan::spans(&old).unwrap();
            let hint = if know { Some(known.as_slice()) } else { None };
            let (d, members) = diff(Some((&old, hint)), Some(&new));
            prop_assert_eq!(d, plain(Some(&old), Some(&new)));
            prop_assert_eq!(members.unwrap(), scan::spans(&new).unwrap());
            let (gone, _) = diff(Some((&old, hint)), None);
            prop_assert_eq!(gone, plain(Some(&old), None));
            let (fresh, _) = diff(None, Some(&new));
            prop_assert_eq!(fresh, plain(None, Some(&new)));
        }
    }
}
