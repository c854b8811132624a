//! What the decoder, the store and the model read from JSON text, on serde_json: an object's
//! members in order (duplicates kept) as borrowed [`RawValue`]s, where a borrowed piece of a
//! text is in it, and how deep a value that serde_json has accepted nests.
//!
//! serde_json does the reading (its `RawValue` skipping is one loop with a byte per open
//! container, no recursion); what is here only locates the pieces it hands back. Positions
//! between two pieces (where the value after a key starts, where an object closes) are found
//! by stepping over whitespace and punctuation that serde_json has already checked.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Where `part`, a slice borrowed from `text`, starts in it.
#[inline]
pub(crate) fn offset(text: &str, part: &str) -> usize {
    // Both point into one allocation, `part` not before `text`: the difference is the index.
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

/// Where the piece `raw` (borrowed from `text`) is in it.
#[inline]
pub(crate) fn range_of(text: &str, raw: &RawValue) -> Range<usize> {
    let start = offset(text, raw.get());
    start..start + raw.get().len()
}

/// The first byte at or after `at` that is not whitespace, a comma or a colon: where the next
/// value starts, once serde_json has checked the punctuation before it.
#[inline]
pub(crate) fn next_value(text: &str, at: usize) -> usize {
    let b = text.as_bytes();
    let mut i = at;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b':')) {
        i += 1;
    }
    i
}

/// Just after the bracket that closes a container whose last value (or opening bracket)
/// ends at `at`.
#[inline]
pub(crate) fn after_close(text: &str, at: usize) -> usize {
    let b = text.as_bytes();
    let mut i = at;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    (i + 1).min(text.len())
}

/// The decoded text of a string's JSON text (quotes included): borrowed unless it has
/// escapes. The error is serde_json's, without its position (an escape of half a surrogate
/// pair, which serde_json's skipping lets through).
#[inline]
pub(crate) fn string_text(raw: &str) -> Result<Cow<'_, str>, String> {
    match raw.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if memchr::memchr(b'\\', inner.as_bytes()).is_none() => {
            Ok(Cow::Borrowed(inner))
        }
        _ => serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|e| without_position(&e)),
    }
}

/// serde_json's message without the " at line L column C" it appends.
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The line and column of the byte at `at` in `text`, counted as serde_json counts them:
/// lines from 1, columns in bytes from 1 (`at` = the length: the column after the last byte).
pub(crate) fn line_column(text: &[u8], at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let line = 1 + memchr::memchr_iter(b'\n', &before[..line_start]).count();
    (line, before.len() - line_start + 1)
}

/// Whether the JSON value `text` (serde_json has accepted it) opens more than `max`
/// containers one inside the other. One pass, no recursion: brackets are counted outside
/// strings.
pub(crate) fn nests_deeper_than(text: &str, max: usize) -> bool {
    let b = text.as_bytes();
    // The usual case, decided by one vectorized pass: too few brackets to nest that deep.
    if memchr::memchr2_iter(b'{', b'[', b).nth(max).is_none() {
        return false;
    }
    let (mut depth, mut i) = (0usize, 0);
    while let Some(&c) = b.get(i) {
        match c {
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                // To the closing quote: the next quote not escaped by a backslash.
                i += 1;
                while let Some(at) = memchr::memchr2(b'"', b'\\', &b[i..]) {
                    i += at;
                    if b[i] == b'"' {
                        break;
                    }
                    i += 2;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Calls `f` with each member of the JSON object `obj` (the whole text, whitespace around it
/// allowed), key and value as borrowed JSON text, in order, duplicates kept. Fails (after
/// the members before the fault) where serde_json fails, or when `obj` is not an object.
pub(crate) fn raw_members<'a>(
    obj: &'a str,
    f: impl FnMut(&'a RawValue, &'a RawValue),
) -> Result<(), serde_json::Error> {
    struct Members<F>(F);
    impl<'a, F: FnMut(&'a RawValue, &'a RawValue)> Visitor<'a> for Members<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'a>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<&'a RawValue>()? {
                let value = map.next_value::<&'a RawValue>()?;
                (self.0)(key, value);
            }
            Ok(())
        }
    }
    let mut de = serde_json::Deserializer::from_str(obj);
    (&mut de).deserialize_map(Members(f))?;
    de.end()
}

/// Calls `f` with each member of the object `obj`: the key, decoded, and the range of its
/// value, in order, duplicates kept; a key that escapes half a surrogate pair is passed
/// over. `None` when `obj` is not one JSON object; members before the fault have been passed
/// to `f` by then.
pub(crate) fn for_each_member<'a>(
    obj: &'a str,
    mut f: impl FnMut(Cow<'a, str>, Range<usize>),
) -> Option<()> {
    raw_members(obj, |k, v| {
        if let Ok(key) = string_text(k.get()) {
            f(key, range_of(obj, v));
        }
    })
    .ok()
}

/// One member of an object text, by position: its key (quotes included) and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) key: Range<usize>,
    pub(crate) value: Range<usize>,
}

/// The members of the object `obj` (the whole text) by position, in order, duplicates kept;
/// `None` when `obj` is not one JSON object.
pub(crate) fn members(obj: &str) -> Option<Vec<Member>> {
    let mut out = Vec::with_capacity(16);
    raw_members(obj, |k, v| {
        out.push(Member {
            key: range_of(obj, k),
            value: range_of(obj, v),
        })
    })
    .ok()?;
    Some(out)
}

/// A key or value that failed to read inside a visitor, as the visitor's error.
pub(crate) fn stop<E: de::Error>() -> E {
    E::custom("stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_split_an_object_with_nesting_escapes_and_duplicates() {
        let t = r#" { "a" : "x\"}" , "b\"c":[1,{"d":"]"}], "a":-1.5e3,"n":null } "#;
        let mut m = Vec::new();
        for_each_member(t, |k, r| m.push((k, &t[r]))).unwrap();
        assert_eq!(
            m,
            [
                (Cow::Borrowed("a"), r#""x\"}""#),
                (Cow::Owned("b\"c".to_owned()), r#"[1,{"d":"]"}]"#),
                (Cow::Borrowed("a"), "-1.5e3"),
                (Cow::Borrowed("n"), "null"),
            ]
        );
        assert_eq!(members("{ }").unwrap().len(), 0);
        assert!(members("[1]").is_none());
        assert!(members(r#"{"a":1"#).is_none());
        let m = members(r#"{"k" :1}"#).unwrap();
        assert_eq!((m[0].key.clone(), m[0].value.clone()), (1..4, 6..7));
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!nests_deeper_than(r#"{"a":"[[[{{{\"[["}"#, 1));
        assert!(nests_deeper_than(r#"{"a":[1]}"#, 1));
        assert!(!nests_deeper_than(r#"{"a":[1],"b":{"\\":2}}"#, 2));
        assert!(nests_deeper_than(&"[".repeat(100_000), 64));
        assert!(!nests_deeper_than("1", 0));
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        assert_eq!(line_column(b"ab\ncd", 0), (1, 1));
        assert_eq!(line_column(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_column(b"ab\ncd", 5), (2, 3));
    }
}
