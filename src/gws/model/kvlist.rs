//! Workspace API v3's user data: a KVList, `[{"key":"K","type":"str","value":"V"}, ...]`,
//! read into the same pairs v2's `userData` object gives, so one diff and one change format
//! serve both generations.
//!
//! A pair's value by the entry's `type`:
//!
//! | `type` | `value` | [`Value`] |
//! |---|---|---|
//! | `str` | a string | [`Value::String`] |
//! | `int` | an integer, or a string of one | [`Value::Integer`], exact at any size |
//! | `kvlist` | a KVList | [`Value::Object`]: nested pairs, as v2's nested objects read |
//! | anything else, or a `value` of another shape | any | the value as received, built as v2 builds it |
//!
//! Unknown types are kept, never dropped (Genesys's own Java client drops them): their value
//! is read as it is, and the KVList text itself, types included, stays with the call (the
//! store keeps it byte for byte; [`UserData::kvlist_text`] keeps it for the typed view).
//! Entries are read in order, duplicates of a key as separate pairs; of a member that appears
//! twice in one entry the last one counts, as everywhere in the decoder.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::user_data::{is_integer_text, Number, UserData, Value};
use crate::gws::wire::json::{offset, raw_members, string_text};

/// One KVList entry, borrowed from the text: its key (decoded), its `type` (decoded; `None`
/// when absent or not a string) and its `value`'s JSON text (`null` when absent).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct KvEntry<'a> {
    pub(crate) key: Cow<'a, str>,
    pub(crate) ty: Option<Cow<'a, str>>,
    pub(crate) value: &'a str,
}

/// Why a text is not a KVList, and where (the index of the offending value in the text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KvFault {
    pub(crate) at: usize,
    pub(crate) what: &'static str,
}

/// The entries of the KVList `text` (JSON that serde_json accepts), in order, duplicates kept.
/// One pass over the array and one over each entry: linear in the text.
pub(crate) fn entries(text: &str) -> Result<Vec<KvEntry<'_>>, KvFault> {
    let not_a_list = KvFault {
        at: 0,
        what: "a KVList must be an array of entries",
    };
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|_| not_a_list)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let at = offset(text, item.get());
        let fault = |what| KvFault { at, what };
        if !item.get().starts_with('{') {
            return Err(fault("a KVList entry must be an object"));
        }
        let (mut key, mut ty, mut value) = (None, None, None);
        let mut bad_key = false;
        raw_members(item.get(), |k, v| match string_text(k.get()).as_deref() {
            Ok("key") => key = Some(v),
            Ok("type") => ty = Some(v),
            Ok("value") => value = Some(v),
            Ok(_) => {}
            Err(_) => bad_key = true,
        })
        .map_err(|_| fault("a KVList entry must be an object"))?;
        if bad_key {
            return Err(fault("a KVList entry has a key that does not decode"));
        }
        let Some(key) = key else {
            return Err(fault("missing field `key` in a KVList entry"));
        };
        let key = match key.get().starts_with('"').then(|| string_text(key.get())) {
            Some(Ok(k)) => k,
            _ => {
                return Err(KvFault {
                    at: offset(text, key.get()),
                    what: "a KVList entry's `key` must be a string",
                })
            }
        };
        let ty = ty.and_then(|t| {
            t.get()
                .starts_with('"')
                .then(|| string_text(t.get()).ok())
                .flatten()
        });
        out.push(KvEntry {
            key,
            ty,
            value: value.map_or("null", RawValue::get),
        });
    }
    Ok(out)
}

/// The [`Value`] of one entry (see the module's table); `depth` is how many more levels of
/// nesting may be built.
pub(crate) fn value_of(ty: Option<&str>, value: &str, depth: usize) -> Value {
    let as_received = || Value::from_json(value, depth).unwrap_or(Value::Null);
    match ty {
        Some("str") if value.starts_with('"') => match string_text(value) {
            Ok(s) => Value::String(s.into_owned()),
            Err(_) => Value::Null,
        },
        Some("int") => {
            let digits = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                // Some servers quote numbers; the type says what the text is.
                Some(inner) => inner,
                None => value,
            };
            match Number::from_text(digits).filter(|_| is_integer_text(digits)) {
                Some(n) => Value::Integer(n),
                None => as_received(),
            }
        }
        Some("kvlist") if value.starts_with('[') => match user_data(value, depth) {
            Some(nested) => Value::Object(nested),
            None => as_received(),
        },
        _ => as_received(),
    }
}

/// The pairs of the KVList `text`, nested KVLists as nested pairs at most `depth` levels
/// deep; `None` when it is not a KVList or nests deeper. (Recursive, one frame per kvlist
/// level, bounded by `depth`: the decoder has already refused user data deeper than
/// [`MAX_USER_DATA_DEPTH`](super::MAX_USER_DATA_DEPTH) containers, and a kvlist level is two.)
pub(crate) fn user_data(text: &str, depth: usize) -> Option<UserData> {
    let depth = depth.checked_sub(1)?;
    let entries = entries(text).ok()?;
    Some(
        entries
            .into_iter()
            .map(|e| {
                let value = value_of(e.ty.as_deref(), e.value, depth);
                (e.key.into_owned(), value)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::MAX_USER_DATA_DEPTH;

    fn ud(text: &str) -> UserData {
        user_data(text, MAX_USER_DATA_DEPTH).unwrap()
    }

    #[test]
    fn each_type_reads_as_v2_reads_the_same_value() {
        let v3 = ud(r#"[{"key":"A","type":"str","value":"12345"},
            {"key":"P","type":"int","value":8},{"key":"Big","type":"int","value":9007199254740993},
            {"key":"Q","type":"int","value":"12"},
            {"key":"J","type":"kvlist","value":[{"key":"n","type":"str","value":"x"},{"key":"n","type":"int","value":2}]},
            {"key":"A","type":"str","value":"67890"}]"#);
        let v2: UserData = serde_json::from_str(
            r#"{"A":"12345","P":8,"Big":9007199254740993,"Q":12,"J":{"n":"x","n":2},"A":"67890"}"#,
        )
        .unwrap();
        assert_eq!(v3, v2);
        assert_eq!(
            serde_json::to_string(&Value::Object(v3)).unwrap(),
            serde_json::to_string(&v2).unwrap()
        );
    }

    #[test]
    fn unknown_types_and_odd_values_are_kept_as_received() {
        let v3 = ud(
            r#"[{"key":"B","type":"binary","value":"AAEC"},{"key":"F","type":"float","value":1.50},
            {"key":"S","type":"str","value":7},{"key":"I","type":"int","value":"x"},
            {"key":"K","type":"kvlist","value":{"a":1}},{"key":"N"},{"key":"T","type":5,"value":[1]}]"#,
        );
        let shown: Vec<String> = v3.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            shown,
            [
                "B=AAEC",
                "F=1.50",
                "S=7",
                "I=x",
                r#"K={"a":1}"#,
                "N=null",
                "T=[1]"
            ]
        );
    }

    #[test]
    fn shapes_that_are_no_kvlist_are_faults_that_say_where() {
        let text = r#"[{"key":"a","value":1}, 7]"#;
        assert_eq!(
            entries(text).unwrap_err(),
            KvFault {
                at: text.find('7').unwrap(),
                what: "a KVList entry must be an object"
            }
        );
        let text = r#"[{"value":1,"key":5}]"#;
        assert_eq!(entries(text).unwrap_err().at, text.find('5').unwrap());
        assert_eq!(entries(r#"[{"type":"str"}]"#).unwrap_err().at, 1);
        assert!(entries(r#"{"a":1}"#).is_err());
        // Of a member given twice, the last counts.
        let e = entries(r#"[{"key":"a","key":"b","value":1,"value":2}]"#).unwrap();
        assert_eq!((e[0].key.as_ref(), e[0].value), ("b", "2"));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| {
            let mut t = r#"[{"key":"k","type":"str","value":"v"}]"#.to_owned();
            for _ in 1..n {
                t = format!(r#"[{{"key":"k","type":"kvlist","value":{t}}}]"#);
            }
            t
        };
        assert!(user_data(&nested(10), 10).is_some());
        // Too deep for the budget: the innermost level is kept as received, not nested pairs.
        let shallow = user_data(&nested(10), 9).unwrap();
        let mut v = shallow.get("k").unwrap();
        let mut levels = 1;
        while let Value::Object(o) = v {
            v = o.get("k").unwrap();
            levels += 1;
        }
        assert!(
            levels < 10 && !matches!(v, Value::Object(_)),
            "{levels} {v:?}"
        );
    }
}
