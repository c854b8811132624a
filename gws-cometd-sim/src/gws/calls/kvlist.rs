//! User data as the Workspace API v3 writes it: a KVList, `[{"key","type","value"}, ...]`,
//! to and from the pair list the call model keeps (the v2 form: values as exact JSON text).
//!
//! | pair value in the model | KVList entry |
//! |---|---|
//! | a JSON string | `"type":"str"`, the string |
//! | an integer (any size, digits kept exactly) | `"type":"int"`, the number |
//! | an object (its pairs in order, duplicate keys kept) | `"type":"kvlist"`, a nested KVList |
//! | anything else (a fraction, `true`, `null`, an array) | `"type":"json"`, the value as it is |
//!
//! Read back, `str` takes a string, `int` a JSON integer (or a string of digits, written as
//! a number), `kvlist` a nested KVList (stored as an object with its pairs in order). An
//! entry of any other type is kept by its value, whatever it is; the type name itself is
//! not kept (a `binary` string reads back as `str`).

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Pairs, RawPairs};
use crate::json_string::quote;

/// `pairs` as a KVList's JSON text.
pub(in crate::gws) fn to_kvlist(pairs: &RawPairs) -> String {
    let mut out = String::from("[");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (kind, value) = typed(value.get());
        out.push_str(&format!(
            r#"{{"key":{},"type":"{kind}","value":{value}}}"#,
            quote(key)
        ));
    }
    out.push(']');
    out
}

/// The v3 type of a value's JSON text, and the value as the KVList writes it.
fn typed(value: &str) -> (&'static str, String) {
    let v = value.trim();
    if v.starts_with('"') {
        ("str", v.to_owned())
    } else if is_integer(v) {
        ("int", v.to_owned())
    } else if v.starts_with('{') {
        match serde_json::from_str::<Pairs>(v) {
            Ok(Pairs(nested)) => ("kvlist", to_kvlist(&nested)),
            Err(_) => ("json", v.to_owned()),
        }
    } else {
        ("json", v.to_owned())
    }
}

/// Whether `v` is a JSON integer: an optional minus and digits only.
fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[derive(Deserialize)]
struct Entry {
    key: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    value: Box<RawValue>,
}

/// A KVList's JSON value read as pairs in order, duplicates kept; the error says what is
/// wrong.
pub(in crate::gws) fn from_kvlist(list: &RawValue) -> Result<RawPairs, String> {
    let entries: Vec<Entry> =
        serde_json::from_str(list.get()).map_err(|e| format!("userData is not a KVList: {e}"))?;
    let mut pairs = Vec::with_capacity(entries.len());
    for Entry { key, kind, value } in entries {
        let text = value.get().trim();
        let stored = match kind.as_deref() {
            Some("str") if text.starts_with('"') => text.to_owned(),
            Some("str") => return Err(format!("the value of {key:?} is not a string")),
            Some("int") if is_integer(text) => text.to_owned(),
            Some("int") => match serde_json::from_str::<String>(text) {
                Ok(s) if is_integer(&s) => s,
                _ => return Err(format!("the value of {key:?} is not an integer")),
            },
            Some("kvlist") => object_text(&from_kvlist(&value)?),
            _ => text.to_owned(),
        };
        let raw = RawValue::from_string(stored).map_err(|e| format!("{key:?}: {e}"))?;
        pairs.push((key, raw));
    }
    Ok(pairs)
}

/// Pairs as a JSON object's text, in order, duplicate keys kept.
fn object_text(pairs: &RawPairs) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(k));
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn each_value_type_renders_as_documented() {
        let pairs = vec![
            ("A".to_owned(), raw(r#""12345""#)),
            ("P".to_owned(), raw("123456789012345678901234567890")),
            ("J".to_owned(), raw(r#"{"x":"1","x":-2,"y":{"z":"w"}}"#)),
            ("F".to_owned(), raw("1.5")),
            ("B".to_owned(), raw("true")),
            ("A".to_owned(), raw(r#""again""#)),
        ];
        assert_eq!(
            to_kvlist(&pairs),
            concat!(
                r#"[{"key":"A","type":"str","value":"12345"},"#,
                r#"{"key":"P","type":"int","value":123456789012345678901234567890},"#,
                r#"{"key":"J","type":"kvlist","value":[{"key":"x","type":"str","value":"1"},"#,
                r#"{"key":"x","type":"int","value":-2},{"key":"y","type":"kvlist","value":"#,
                r#"[{"key":"z","type":"str","value":"w"}]}]},"#,
                r#"{"key":"F","type":"json","value":1.5},"#,
                r#"{"key":"B","type":"json","value":true},"#,
                r#"{"key":"A","type":"str","value":"again"}]"#
            )
        );
        let back = from_kvlist(&raw(&to_kvlist(&pairs))).unwrap();
        let text = |p: &RawPairs| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| (k.clone(), v.get().to_owned()))
                .collect()
        };
        assert_eq!(text(&back), text(&pairs));
    }

    #[test]
    fn reading_checks_types_and_keeps_unknown_ones() {
        let ok = from_kvlist(&raw(
            r#"[{"key":"N","type":"int","value":"42"},{"key":"X","type":"binary","value":"AQI="}]"#,
        ))
        .unwrap();
        assert_eq!(ok[0].1.get(), "42");
        assert_eq!(ok[1].1.get(), r#""AQI=""#);
        assert!(from_kvlist(&raw(r#"[{"key":"N","type":"int","value":"x"}]"#)).is_err());
        assert!(from_kvlist(&raw(r#"[{"key":"S","type":"str","value":1}]"#)).is_err());
        assert!(from_kvlist(&raw(r#"{"key":"S"}"#)).is_err());
    }
}
