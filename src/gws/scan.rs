//! Byte-level walking of JSON text that serde_json has already validated.
//!
//! The one-pass reader keeps slices of the input instead of building values; these helpers
//! find the edges of those slices (an object's braces around its first and last value, the
//! members of an object) without parsing again. They assume valid JSON, but never panic on
//! anything else: every step is checked and a surprise gives `None`.

use std::borrow::Cow;
use std::ops::Range;

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

fn skip_ws_back(b: &[u8], mut i: usize) -> usize {
    while i > 0 && is_ws(b[i - 1]) {
        i -= 1;
    }
    i
}

/// The index just past the string whose opening quote is at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    None
}

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !is_ws(b[j]) {
                j += 1;
            }
            Some(j)
        }
    }
}

/// The members of the object `obj`: each key's raw text (quotes included) and the range of
/// its value in `obj`, in order, duplicates kept.
pub(crate) fn members(obj: &str) -> Option<Vec<(&str, Range<usize>)>> {
    let mut out = Vec::with_capacity(16);
    for_each_member(obj, |k, r| out.push((k, r)))?;
    Some(out)
}

/// Calls `f` with each member of the object `obj`, as [`members`] lists them.
pub(crate) fn for_each_member<'a>(
    obj: &'a str,
    mut f: impl FnMut(&'a str, Range<usize>),
) -> Option<()> {
    let b = obj.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(());
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = obj.get(i..key_end)?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let end = value_end(b, i)?;
        f(key, i..end);
        i = skip_ws(b, end);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(()),
            _ => return None,
        }
    }
}

/// The text of a JSON string token, decoded; borrowed when it has no escapes.
pub(crate) fn string_value(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Where the object starts whose first member's value starts at `value_start` in `text`:
/// the index of its `{`, found by walking back over `{ "key" :`.
pub(crate) fn object_start(text: &str, value_start: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = skip_ws_back(b, value_start);
    if i == 0 || b[i - 1] != b':' {
        return None;
    }
    i = skip_ws_back(b, i - 1);
    if i == 0 || b[i - 1] != b'"' {
        return None;
    }
    // The opening quote is the first `"` before the closing one that is not escaped, i.e.
    // not preceded by an odd run of backslashes.
    let mut q = i - 1;
    loop {
        q = b[..q].iter().rposition(|&c| c == b'"')?;
        let backslashes = b[..q].iter().rev().take_while(|&&c| c == b'\\').count();
        if backslashes % 2 == 0 {
            break;
        }
    }
    let i = skip_ws_back(b, q);
    (i > 0 && b[i - 1] == b'{').then(|| i - 1)
}

/// Where the object ends whose last member's value ends at `value_end` in `text`: the index
/// just past its `}`.
pub(crate) fn object_end(text: &str, value_end: usize) -> Option<usize> {
    let b = text.as_bytes();
    let i = skip_ws(b, value_end);
    (b.get(i) == Some(&b'}')).then_some(i + 1)
}

/// The byte offset of `part` in `whole`, when `part` is a slice of it.
pub(crate) fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    (p >= w && p + part.len() <= w + whole.len()).then(|| p - w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_split_an_object_with_nesting_escapes_and_duplicates() {
        let t = r#" { "a" : "x\"}" , "b\"c":[1,{"d":"]"}], "a":-1.5e3,"n":null } "#;
        let m: Vec<_> = members(t)
            .unwrap()
            .into_iter()
            .map(|(k, r)| (k, &t[r]))
            .collect();
        assert_eq!(
            m,
            [
                (r#""a""#, r#""x\"}""#),
                (r#""b\"c""#, r#"[1,{"d":"]"}]"#),
                (r#""a""#, "-1.5e3"),
                (r#""n""#, "null"),
            ]
        );
        assert_eq!(members("{ }").unwrap().len(), 0);
        assert!(members("[1]").is_none());
    }

    #[test]
    fn object_edges_are_found_around_the_first_and_last_value() {
        let t = r#"{"x": { "k\\" : 1, "z\"" :"v" } }"#;
        let one = t.find('1').unwrap();
        assert_eq!(object_start(t, one), Some(6));
        let v_end = t.find(r#""v""#).unwrap() + 3;
        assert_eq!(object_end(t, v_end), Some(t.len() - 2));
        assert_eq!(object_start("1", 0), None);
    }

    #[test]
    fn strings_decode_only_when_escaped() {
        assert!(matches!(
            string_value(r#""abc""#),
            Some(Cow::Borrowed("abc"))
        ));
        assert_eq!(string_value(r#""\u00e9""#).unwrap(), "é");
        assert_eq!(string_value("12"), None);
    }
}
