//! [`UserData`]: the attached data of a call, an ordered multimap.
//!
//! GWS's `AttachUserData` appends pairs even when the key already exists, so the same key can
//! appear twice in one JSON object text. `serde_json::Map` would keep only the last one;
//! `UserData` keeps every pair, in order, and writes them back the same way. Numbers are
//! kept as their exact text: `9007199254740993` does not become a rounded `f64`.
//!
//! Nested values are built from their text in one pass with an explicit stack (no recursion,
//! no copy of each level's text), and hold at most [`MAX_USER_DATA_DEPTH`] levels: deeper
//! text is refused, so the recursion that compares, writes and drops a [`Value`] is bounded.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::record::Key;
use super::tokens::{Token, Tokens};

/// How deep a call's `userData` may nest, the object itself being level 1: `{"a":{"b":1}}`
/// is 2 levels deep. The wire decoder refuses a call notification whose `userData` nests
/// deeper (a [`DecodeError`](crate::gws::DecodeError) whose
/// [`limit`](crate::gws::DecodeError::limit) is
/// [`Limit::UserDataDepth`](crate::bayeux::Limit::UserDataDepth)); a feed reports it as a
/// gap and heals from the server's calls. A [`Value`] read from JSON holds at most this many
/// levels too.
///
/// 64 is far beyond what GWS user data holds (key-value lists nest a level or two) and well
/// under serde_json's own recursion limit of 128, so every typed view of an accepted call
/// decodes.
pub const MAX_USER_DATA_DEPTH: usize = 64;

/// One user-data value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A string, decoded (escapes resolved).
    String(String),
    /// An integer of any size, as its exact text.
    Integer(Number),
    /// A number with a fraction or exponent, as its exact text.
    Float(Number),
    /// A list of values.
    List(Vec<Value>),
    /// A nested key-value list (duplicates kept, like the top level).
    Object(UserData),
}

/// A value as a person reads it: a string bare (`12345`, not `"12345"`), a number exactly as
/// received (`9007199254740993`, `1.50`), `true`, `false`, `null`, and a list or nested
/// key-value list as its JSON text (duplicate keys kept, in order). Width and alignment
/// (`{:>8}`) apply to the whole text.
///
/// ```
/// use gws_cometd::gws::UserData;
/// let ud: UserData = serde_json::from_str(
///     r#"{"AccountNumber":"12345","Big":9007199254740993,"Tags":["a",1],"Kv":{"k":"v","k":2}}"#,
/// ).unwrap();
/// let shown: Vec<String> = ud.iter().map(|(k, v)| format!("{k}={v}")).collect();
/// assert_eq!(
///     shown,
///     ["AccountNumber=12345", "Big=9007199254740993", r#"Tags=["a",1]"#, r#"Kv={"k":"v","k":2}"#],
/// );
/// ```
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.pad("null"),
            Value::Bool(b) => f.pad(if *b { "true" } else { "false" }),
            Value::String(s) => f.pad(s),
            Value::Integer(n) | Value::Float(n) => f.pad(n.as_str()),
            Value::List(_) | Value::Object(_) => {
                // Every value serializes: strings, exact number texts and nested pairs.
                let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
                f.pad(&text)
            }
        }
    }
}

/// A JSON number kept as its exact text. Equality compares the text.
#[derive(Clone)]
pub struct Number(Box<RawValue>);

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Number {}

impl Number {
    /// The number exactly as received, e.g. `"9007199254740993"` or `"1.50"`.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The value as `i64`, when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_str().parse().ok()
    }

    /// The value as `u64`, when it is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        self.as_str().parse().ok()
    }

    /// The value as the nearest `f64` (may round).
    pub fn as_f64(&self) -> Option<f64> {
        self.as_str().parse().ok()
    }

    /// Parses `text` as a JSON number; `None` if it is not one.
    pub fn from_text(text: &str) -> Option<Number> {
        let raw = RawValue::from_string(text.to_owned()).ok()?;
        is_number_text(raw.get()).then_some(Number(raw))
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_number_text(t: &str) -> bool {
    matches!(t.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

pub(super) fn is_integer_text(t: &str) -> bool {
    !t.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

impl Value {
    /// The string, when this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer as `i64`, when this is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The integer as `u64`, when this is a non-negative integer in range.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Integer(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The nested key-value list, when this is one.
    pub fn as_object(&self) -> Option<&UserData> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Builds a value from the exact text of one JSON value.
    fn from_raw(raw: Box<RawValue>) -> Result<Value, serde_json::Error> {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => {
                if text.contains('\\') {
                    serde_json::from_str(text).map(Value::String)
                } else {
                    // No escapes: reuse the text's allocation and drop the quotes.
                    let mut s = String::from(Box::<str>::from(raw));
                    s.pop();
                    s.remove(0);
                    Ok(Value::String(s))
                }
            }
            Some(b'{' | b'[') => Value::from_json(text, MAX_USER_DATA_DEPTH).ok_or_else(|| {
                de::Error::custom(format!(
                    "a user-data value that is not JSON, or nests deeper than {MAX_USER_DATA_DEPTH} levels"
                ))
            }),
            Some(b't') => Ok(Value::Bool(true)),
            Some(b'f') => Ok(Value::Bool(false)),
            Some(b'n') => Ok(Value::Null),
            _ if is_integer_text(text) => Ok(Value::Integer(Number(raw))),
            _ => Ok(Value::Float(Number(raw))),
        }
    }
}

/// A container being built by [`Value::from_json`]: a list's items, or an object's pairs
/// and the key of the value that comes next.
enum Building {
    List(Vec<Value>),
    Object(Vec<(String, Value)>, String),
}

impl Value {
    /// The value of JSON `text` (whitespace around it allowed), built in one pass with an
    /// explicit stack; `None` when it is not one JSON value, nests deeper than `max_depth`
    /// containers, or has a string or key that escapes half a surrogate pair.
    pub(crate) fn from_json(text: &str, max_depth: usize) -> Option<Value> {
        let mut tokens = Tokens::new(text);
        let mut open: Vec<Building> = Vec::new();
        let mut whole = None;
        while let Some(token) = tokens.next()? {
            let done = match token {
                Token::Open { .. } if open.len() >= max_depth => return None,
                // Started with room for one (a chain of one-member containers then
                // allocates once a level) and without the room a grown vector keeps.
                Token::Open { object: true } => {
                    open.push(Building::Object(Vec::with_capacity(1), String::new()));
                    continue;
                }
                Token::Open { object: false } => {
                    open.push(Building::List(Vec::with_capacity(1)));
                    continue;
                }
                Token::Key(k) => {
                    if let Some(Building::Object(_, key)) = open.last_mut() {
                        *key = k.into_owned();
                    }
                    continue;
                }
                Token::Str(s) => Value::String(s.into_owned()),
                Token::Scalar(t) => Value::scalar(t)?,
                Token::Close => match open.pop()? {
                    Building::Object(mut pairs, _) => {
                        pairs.shrink_to_fit();
                        Value::Object(UserData {
                            pairs,
                            kvlist: None,
                        })
                    }
                    Building::List(mut items) => {
                        items.shrink_to_fit();
                        Value::List(items)
                    }
                },
            };
            match open.last_mut() {
                Some(Building::Object(pairs, key)) => pairs.push((std::mem::take(key), done)),
                Some(Building::List(items)) => items.push(done),
                None => whole = Some(done),
            }
        }
        whole
    }

    /// A number or literal from its (validated) text.
    fn scalar(text: &str) -> Option<Value> {
        match text.as_bytes().first()? {
            b't' => Some(Value::Bool(true)),
            b'f' => Some(Value::Bool(false)),
            b'n' => Some(Value::Null),
            _ => {
                let n = Number::from_text(text)?;
                Some(if is_integer_text(text) {
                    Value::Integer(n)
                } else {
                    Value::Float(n)
                })
            }
        }
    }
}

/// Whether two JSON value texts are equal as [`Value`]s (strings and keys decoded, numbers
/// and literals by their text, members in order), without building either: their
/// [`Tokens`] are compared in step, in one pass. `None` when either is not JSON.
pub(crate) fn same_json(a: &str, b: &str) -> Option<bool> {
    let (mut a, mut b) = (Tokens::new(a), Tokens::new(b));
    loop {
        let (x, y) = (a.next()?, b.next()?);
        if x != y {
            return Some(false);
        }
        if x.is_none() {
            return Some(true);
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        // Decimal digits of an i64 are always a valid JSON number.
        Value::Integer(Number::from_text(&n.to_string()).unwrap_or_else(zero))
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Integer(Number::from_text(&n.to_string()).unwrap_or_else(zero))
    }
}

fn zero() -> Number {
    Number(RawValue::from_string("0".to_owned()).unwrap_or_default())
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::String(v) => s.serialize_str(v),
            Value::Integer(n) | Value::Float(n) => n.0.serialize(s),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Value::Object(o) => o.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through the exact text: the only way to keep integers beyond 64 bits exact.
        let raw = Box::<RawValue>::deserialize(d)?;
        Value::from_raw(raw).map_err(de::Error::custom)
    }
}

/// The attached data of a call: key-value pairs in the order received, duplicate keys kept.
///
/// ```
/// use gws_cometd::gws::UserData;
/// let ud: UserData = serde_json::from_str(
///     r#"{"AccountNumber":"12345","AccountNumber":"67890","Big":9007199254740993}"#,
/// ).unwrap();
/// assert_eq!(ud.get("AccountNumber").and_then(|v| v.as_str()), Some("12345"));
/// assert_eq!(ud.get_all("AccountNumber").count(), 2);
/// assert_eq!(ud.get("Big").unwrap().as_u64(), Some(9007199254740993));
/// assert_eq!(
///     serde_json::to_string(&ud).unwrap(),
///     r#"{"AccountNumber":"12345","AccountNumber":"67890","Big":9007199254740993}"#,
/// );
/// ```
///
/// Workspace API v3 sends user data as a KVList (`[{"key":..,"type":..,"value":..}]`): it
/// reads into the same pairs (see the `kvlist` module's table: `str` a string, `int` an exact
/// number, `kvlist` nested pairs, unknown types as received), and the KVList text is kept,
/// types and all, and written back unchanged ([`UserData::kvlist_text`]).
///
/// ```
/// use gws_cometd::gws::UserData;
/// let kv = r#"[{"key":"A","type":"str","value":"1"},{"key":"P","type":"int","value":8}]"#;
/// let v3: UserData = serde_json::from_str(kv).unwrap();
/// let v2: UserData = serde_json::from_str(r#"{"A":"1","P":8}"#).unwrap();
/// assert_eq!(v3, v2);
/// assert_eq!(serde_json::to_string(&v3).unwrap(), kv);
/// ```
#[derive(Clone, Debug, Default)]
pub struct UserData {
    pairs: Vec<(String, Value)>,
    /// The v3 KVList these pairs were read from, exactly as received; `None` for v2's object
    /// form and for pairs built or changed in code.
    kvlist: Option<super::RawJson>,
}

/// Equal when the pairs are, in order: the form they were read in (a v2 object or a v3
/// KVList) is not part of it.
impl PartialEq for UserData {
    fn eq(&self, other: &Self) -> bool {
        self.pairs == other.pairs
    }
}

impl Eq for UserData {}

impl UserData {
    /// The empty list, as a constant.
    pub const EMPTY: UserData = UserData {
        pairs: Vec::new(),
        kvlist: None,
    };

    /// The v3 KVList text these pairs were read from, exactly as received (entry types
    /// included); `None` for v2's object form.
    pub fn kvlist_text(&self) -> Option<&str> {
        self.kvlist.as_ref().map(|k| k.get())
    }

    /// An empty list.
    pub fn new() -> Self {
        UserData::default()
    }

    /// The value of the first pair with `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The values of every pair with `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Appends a pair (even when the key exists, like `AttachUserData`).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        // The received KVList no longer says what the pairs are.
        self.kvlist = None;
        self.pairs.push((key.into(), value.into()));
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs as a slice.
    pub fn pairs(&self) -> &[(String, Value)] {
        &self.pairs
    }
}

impl FromIterator<(String, Value)> for UserData {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        UserData {
            pairs: iter.into_iter().collect(),
            kvlist: None,
        }
    }
}

impl<'a> IntoIterator for &'a UserData {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a str, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl Serialize for UserData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some(kvlist) = &self.kvlist {
            return kvlist.serialize(s);
        }
        let mut m = s.serialize_map(Some(self.pairs.len()))?;
        for (k, v) in &self.pairs {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for UserData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through the text: a v3 KVList is kept as received, and which form it is shows in
        // its first byte.
        let raw = Box::<RawValue>::deserialize(d)?;
        if raw.get().starts_with('[') {
            let mut ud = super::kvlist::user_data(raw.get(), MAX_USER_DATA_DEPTH).ok_or_else(|| {
                de::Error::custom(format!(
                    "a user-data KVList that is not one, or nests deeper than {MAX_USER_DATA_DEPTH} levels"
                ))
            })?;
            ud.kvlist = Some(super::RawJson::from(raw));
            return Ok(ud);
        }
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let ud = (&mut de)
            .deserialize_map(Object)
            .map_err(de::Error::custom)?;
        de.end().map_err(de::Error::custom)?;
        Ok(ud)
    }
}

/// v2's form: a JSON object, duplicate keys kept.
struct Object;

impl<'de> Visitor<'de> for Object {
    type Value = UserData;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a user-data object or KVList")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserData, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v: Value = map.next_value()?;
            pairs.push((k.into_owned(), v));
        }
        Ok(UserData {
            pairs,
            kvlist: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn display_shows_a_string_bare_with_its_escapes_resolved() {
        assert_eq!(value(r#""12345""#).to_string(), "12345");
        assert_eq!(value(r#""a \"q\" \u00e9""#).to_string(), "a \"q\" é");
    }

    #[test]
    fn display_shows_a_number_exactly_as_received() {
        assert_eq!(value("9007199254740993").to_string(), "9007199254740993");
        assert_eq!(
            value("123456789012345678901234567890").to_string(),
            "123456789012345678901234567890"
        );
        assert_eq!(value("1.50").to_string(), "1.50");
        assert_eq!(value("-2E+3").to_string(), "-2E+3");
        assert_eq!(Value::from(7u64).to_string(), "7");
    }

    #[test]
    fn display_shows_literals_and_containers_as_json_text() {
        assert_eq!(value("null").to_string(), "null");
        assert_eq!(value("true").to_string(), "true");
        assert_eq!(
            value(r#"[ "a" , 1.0, {"k":"v","k":"w"} ]"#).to_string(),
            r#"["a",1.0,{"k":"v","k":"w"}]"#
        );
        assert_eq!(value(r#"{"s":"x\ny"}"#).to_string(), r#"{"s":"x\ny"}"#);
    }

    #[test]
    fn display_honours_width_and_alignment() {
        assert_eq!(format!("[{:>6}]", value(r#""ab""#)), "[    ab]");
        assert_eq!(format!("[{:<4}]", value("12")), "[12  ]");
    }
}
