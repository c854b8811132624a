//! User data as the Workspace API v3 takes it: a KVList, `[{"key","type","value"}, ...]`.
//!
//! A [`UserValue::String`] is `"type":"str"`, a [`UserValue::Integer`] `"int"` (its digits
//! exactly as given), and a [`UserValue::Json`] by what it holds: a string `str`, an integer
//! `int`, an object `kvlist` (its pairs in order, duplicate keys kept, nested objects
//! nested the same way). Other JSON values (fractions, booleans, lists, `null`) have no v3
//! type and are refused with [`RestError::InvalidValue`].

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::operations::{is_json_integer, UserValue};
use super::RestError;
use crate::json::quote;

/// Nesting deeper than this is refused (the JSON parser stops at 128 anyway).
const MAX_DEPTH: usize = 64;

/// The KVList text of `pairs`, in order, duplicates kept.
pub(super) fn kvlist_json(pairs: &[(String, UserValue)]) -> Result<String, RestError> {
    let mut out = String::from("[");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match value {
            UserValue::String(s) => entry(&mut out, key, "str", &quote(s)),
            UserValue::Integer(digits) => entry(&mut out, key, "int", digits),
            UserValue::Json(raw) => json_entry(&mut out, key, raw.get(), 0)?,
        }
    }
    out.push(']');
    Ok(out)
}

fn entry(out: &mut String, key: &str, kind: &str, value: &str) {
    out.push_str(r#"{"key":"#);
    out.push_str(&quote(key));
    out.push_str(r#","type":""#);
    out.push_str(kind);
    out.push_str(r#"","value":"#);
    out.push_str(value);
    out.push('}');
}

fn json_entry(out: &mut String, key: &str, text: &str, depth: usize) -> Result<(), RestError> {
    let invalid = |reason: &str| RestError::InvalidValue {
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let text = text.trim();
    if text.starts_with('"') {
        entry(out, key, "str", text);
    } else if is_json_integer(text) {
        entry(out, key, "int", text);
    } else if text.starts_with('{') {
        if depth >= MAX_DEPTH {
            return Err(invalid("nested too deep"));
        }
        let pairs: Pairs =
            serde_json::from_str(text).map_err(|e| invalid(&format!("not a JSON object: {e}")))?;
        let mut nested = String::from("[");
        for (i, (k, v)) in pairs.0.iter().enumerate() {
            if i > 0 {
                nested.push(',');
            }
            json_entry(&mut nested, k, v.get(), depth + 1)?;
        }
        nested.push(']');
        entry(out, key, "kvlist", &nested);
    } else {
        return Err(invalid(
            "v3 user data holds strings, integers and objects (kvlist) only",
        ));
    }
    Ok(())
}

/// An object's members in order, duplicate keys kept, each value's exact text.
struct Pairs(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_gets_its_type_in_order_with_duplicates() {
        let pairs = vec![
            ("A".to_owned(), UserValue::from("12345")),
            (
                "P".to_owned(),
                UserValue::integer("99999999999999999999").unwrap(),
            ),
            (
                "J".to_owned(),
                UserValue::json(r#"{"x":"1","x":2,"n":{"d":"e"}}"#).unwrap(),
            ),
            ("A".to_owned(), UserValue::json(r#""s""#).unwrap()),
        ];
        assert_eq!(
            kvlist_json(&pairs).unwrap(),
            concat!(
                r#"[{"key":"A","type":"str","value":"12345"},"#,
                r#"{"key":"P","type":"int","value":99999999999999999999},"#,
                r#"{"key":"J","type":"kvlist","value":[{"key":"x","type":"str","value":"1"},"#,
                r#"{"key":"x","type":"int","value":2},"#,
                r#"{"key":"n","type":"kvlist","value":[{"key":"d","type":"str","value":"e"}]}]},"#,
                r#"{"key":"A","type":"str","value":"s"}]"#
            )
        );
    }

    #[test]
    fn values_without_a_v3_type_are_refused_with_their_key() {
        for bad in ["2.5", "true", "[1]", "null", r#"{"K":[1]}"#] {
            let pairs = vec![("K".to_owned(), UserValue::json(bad).unwrap())];
            let err = kvlist_json(&pairs).unwrap_err();
            assert!(err.to_string().contains("\"K\""), "{bad}: {err}");
        }
    }
}
