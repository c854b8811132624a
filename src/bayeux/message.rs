//! Bayeux messages, advice and error strings.
//!
//! A [`Message`] carries every field Bayeux 1.0 defines. `data` and `ext` are kept as the raw
//! JSON text the peer sent ([`RawValue`]), so duplicate keys, number spellings and unknown
//! fields survive a decode → encode round trip; any field this type does not know is kept in
//! [`Message::other`] and written back out unchanged.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// One Bayeux message, as sent or received.
#[derive(Clone, Debug, Default)]
pub struct Message {
    /// `channel`: the channel the message is for (`/meta/connect`, `/v2/me/calls`, ...).
    pub channel: String,
    /// `id`: correlates a request with its reply. Numeric ids from lenient servers are kept
    /// as their decimal text.
    pub id: Option<String>,
    /// `clientId`: the session the server assigned at handshake.
    pub client_id: Option<String>,
    /// `successful`: the outcome of a meta message or publish.
    pub successful: Option<bool>,
    /// `error`: a Bayeux error string such as `402::Unknown client`; see [`BayeuxError`].
    pub error: Option<String>,
    /// `advice`: how to reconnect.
    pub advice: Option<Advice>,
    /// `subscription`: the channel(s) of a `/meta/subscribe` or `/meta/unsubscribe`.
    pub subscription: Option<Subscription>,
    /// `data`: the application payload, exactly as received.
    pub data: Option<Box<RawValue>>,
    /// `ext`: extension data, exactly as received.
    pub ext: Option<Box<RawValue>>,
    /// `version`: protocol version of a handshake (`"1.0"`).
    pub version: Option<String>,
    /// `minimumVersion`: lowest protocol version accepted.
    pub minimum_version: Option<String>,
    /// `supportedConnectionTypes` of a handshake request or reply.
    pub supported_connection_types: Option<Vec<String>>,
    /// `connectionType` of a `/meta/connect`.
    pub connection_type: Option<String>,
    /// `timestamp`, as sent.
    pub timestamp: Option<String>,
    /// Every other field, in the order received, as raw JSON.
    pub other: Vec<(String, Box<RawValue>)>,
}

fn raw_eq(a: &Option<Box<RawValue>>, b: &Option<Box<RawValue>>) -> bool {
    a.as_ref().map(|r| r.get()) == b.as_ref().map(|r| r.get())
}

/// Equality compares raw fields by their exact text.
impl PartialEq for Message {
    fn eq(&self, o: &Self) -> bool {
        self.channel == o.channel
            && self.id == o.id
            && self.client_id == o.client_id
            && self.successful == o.successful
            && self.error == o.error
            && self.advice == o.advice
            && self.subscription == o.subscription
            && raw_eq(&self.data, &o.data)
            && raw_eq(&self.ext, &o.ext)
            && self.version == o.version
            && self.minimum_version == o.minimum_version
            && self.supported_connection_types == o.supported_connection_types
            && self.connection_type == o.connection_type
            && self.timestamp == o.timestamp
            && self.other.len() == o.other.len()
            && self
                .other
                .iter()
                .zip(&o.other)
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

/// The `subscription` field: one channel or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Subscription {
    /// A single channel name.
    One(String),
    /// Several channel names.
    Many(Vec<String>),
}

impl Subscription {
    /// The channel names, whichever form was used.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Subscription::One(c) => std::slice::from_ref(c),
            Subscription::Many(v) => v,
        };
        slice.iter().map(String::as_str)
    }
}

/// `advice.reconnect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reconnect {
    /// `retry`: send `/meta/connect` again after `interval`.
    Retry,
    /// `handshake`: the session is gone; handshake again.
    Handshake,
    /// `none`: stop; do not reconnect.
    None,
    /// Any other value, kept as received (treated like no advice).
    Other(String),
}

impl Reconnect {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Reconnect::Retry => "retry",
            Reconnect::Handshake => "handshake",
            Reconnect::None => "none",
            Reconnect::Other(s) => s,
        }
    }
}

impl From<&str> for Reconnect {
    fn from(s: &str) -> Self {
        match s {
            "retry" => Reconnect::Retry,
            "handshake" => Reconnect::Handshake,
            "none" => Reconnect::None,
            other => Reconnect::Other(other.to_owned()),
        }
    }
}

impl Serialize for Reconnect {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reconnect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Reconnect::from(s.as_ref()))
    }
}

/// Server advice. All durations are milliseconds, as on the wire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Advice {
    /// What to do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<Reconnect>,
    /// Milliseconds to wait between a connect reply and the next connect.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_millis"
    )]
    pub interval: Option<u64>,
    /// Milliseconds the server holds a `/meta/connect` before answering.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_millis"
    )]
    pub timeout: Option<u64>,
    /// Milliseconds the server keeps a session without a connect.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_millis"
    )]
    pub max_interval: Option<u64>,
    /// Set when the server sees several clients behind one browser cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_clients: Option<bool>,
    /// Alternative hosts, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Unknown advice fields, kept.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// Accepts integers, floats (rounded down, negatives as 0) and null.
fn lenient_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    Ok(n.map(|n| {
        n.as_u64()
            .or_else(|| n.as_f64().map(|f| if f > 0.0 { f as u64 } else { 0 }))
            .unwrap_or(0)
    }))
}

/// A Bayeux error string, `code:args:text`, e.g. `402::Unknown client` or
/// `401:abc123:Unknown client`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BayeuxError {
    /// The numeric code, when the string has one.
    pub code: Option<u16>,
    /// The comma-separated arguments between the two colons.
    pub args: Vec<String>,
    /// The human-readable text.
    pub text: String,
}

impl BayeuxError {
    /// Parses an error string. Strings not in `code:args:text` form become text only.
    pub fn parse(s: &str) -> Self {
        let mut parts = s.splitn(3, ':');
        let (code, args, text) = (parts.next(), parts.next(), parts.next());
        match (code.and_then(|c| c.trim().parse::<u16>().ok()), args, text) {
            (Some(code), Some(args), Some(text)) => BayeuxError {
                code: Some(code),
                args: if args.is_empty() {
                    Vec::new()
                } else {
                    args.split(',').map(str::to_owned).collect()
                },
                text: text.to_owned(),
            },
            _ => BayeuxError {
                code: None,
                args: Vec::new(),
                text: s.to_owned(),
            },
        }
    }

    /// True when the server says it does not know this client: the session is gone and only
    /// a new handshake helps (`402::Unknown client`, `402::session_unknown`,
    /// `401:<id>:Unknown client`, `403::Unknown client`).
    pub fn is_unknown_client(&self) -> bool {
        match self.code {
            Some(402) => true,
            Some(401) | Some(403) => {
                let t = self.text.to_ascii_lowercase();
                t.contains("unknown") && (t.contains("client") || t.contains("session"))
            }
            _ => false,
        }
    }
}

impl fmt::Display for BayeuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code}:{}:{}", self.args.join(","), self.text),
            None => f.write_str(&self.text),
        }
    }
}

impl Message {
    /// A message for `channel` with every other field empty.
    pub fn new(channel: impl Into<String>) -> Self {
        Message {
            channel: channel.into(),
            ..Message::default()
        }
    }

    /// True for `/meta/...` channels.
    pub fn is_meta(&self) -> bool {
        self.channel.starts_with("/meta/")
    }

    /// The parsed `error` field.
    pub fn bayeux_error(&self) -> Option<BayeuxError> {
        self.error.as_deref().map(BayeuxError::parse)
    }

    /// `successful == Some(true)`.
    pub fn is_successful(&self) -> bool {
        self.successful == Some(true)
    }

    /// Parses a reply body: a JSON array of messages, or a single message object.
    pub fn parse_batch(body: &[u8]) -> Result<Vec<Message>, serde_json::Error> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            Ok(vec![serde_json::from_slice(body)?])
        } else {
            serde_json::from_slice(body)
        }
    }

    /// Serializes a batch as the JSON array Bayeux sends.
    pub fn encode_batch(messages: &[Message]) -> Vec<u8> {
        // Serializing these types cannot fail: every field is a string, number, bool or
        // already-valid raw JSON.
        serde_json::to_vec(messages).unwrap_or_else(|_| b"[]".to_vec())
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("channel", &self.channel)?;
        if let Some(v) = &self.id {
            m.serialize_entry("id", v)?;
        }
        if let Some(v) = &self.client_id {
            m.serialize_entry("clientId", v)?;
        }
        if let Some(v) = &self.successful {
            m.serialize_entry("successful", v)?;
        }
        if let Some(v) = &self.error {
            m.serialize_entry("error", v)?;
        }
        if let Some(v) = &self.advice {
            m.serialize_entry("advice", v)?;
        }
        if let Some(v) = &self.subscription {
            m.serialize_entry("subscription", v)?;
        }
        if let Some(v) = &self.version {
            m.serialize_entry("version", v)?;
        }
        if let Some(v) = &self.minimum_version {
            m.serialize_entry("minimumVersion", v)?;
        }
        if let Some(v) = &self.supported_connection_types {
            m.serialize_entry("supportedConnectionTypes", v)?;
        }
        if let Some(v) = &self.connection_type {
            m.serialize_entry("connectionType", v)?;
        }
        if let Some(v) = &self.timestamp {
            m.serialize_entry("timestamp", v)?;
        }
        if let Some(v) = &self.data {
            m.serialize_entry("data", v)?;
        }
        if let Some(v) = &self.ext {
            m.serialize_entry("ext", v)?;
        }
        for (k, v) in &self.other {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A message id may be a string or, from lenient servers, a number.
struct IdText(String);

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or number id")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdText, E> {
                Ok(IdText(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdText, E> {
                Ok(IdText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdText, E> {
                Ok(IdText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IdText, E> {
                Ok(IdText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Message;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Bayeux message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
                let mut m = Message::default();
                let mut channel = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "channel" => channel = Some(map.next_value::<String>()?),
                        "id" => m.id = map.next_value::<Option<IdText>>()?.map(|i| i.0),
                        "clientId" => m.client_id = map.next_value()?,
                        "successful" => m.successful = map.next_value()?,
                        "error" => m.error = map.next_value()?,
                        "advice" => m.advice = map.next_value()?,
                        "subscription" => m.subscription = map.next_value()?,
                        "data" => m.data = Some(map.next_value()?),
                        "ext" => m.ext = Some(map.next_value()?),
                        "version" => m.version = map.next_value()?,
                        "minimumVersion" => m.minimum_version = map.next_value()?,
                        "supportedConnectionTypes" => {
                            m.supported_connection_types = map.next_value()?
                        }
                        "connectionType" => m.connection_type = map.next_value()?,
                        "timestamp" => m.timestamp = map.next_value()?,
                        _ => {
                            let v: Box<RawValue> = map.next_value()?;
                            m.other.push((key.into_owned(), v));
                        }
                    }
                }
                m.channel = channel.ok_or_else(|| de::Error::missing_field("channel"))?;
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_strings_parse_into_code_args_and_text() {
        let e = BayeuxError::parse("402::Unknown client");
        assert_eq!(e.code, Some(402));
        assert!(e.args.is_empty());
        assert_eq!(e.text, "Unknown client");
        assert!(e.is_unknown_client());

        let e = BayeuxError::parse("401:abc123:Unknown client");
        assert_eq!(e.code, Some(401));
        assert_eq!(e.args, vec!["abc123".to_string()]);
        assert!(e.is_unknown_client());

        assert!(BayeuxError::parse("402::session_unknown").is_unknown_client());
        assert!(BayeuxError::parse("403::Unknown client").is_unknown_client());
        assert!(!BayeuxError::parse("403::Forbidden").is_unknown_client());
        assert!(!BayeuxError::parse("403:/a,/b:Subscription denied").is_unknown_client());
        assert_eq!(
            BayeuxError::parse("403:/a,/b:Subscription denied").args,
            vec!["/a".to_string(), "/b".to_string()]
        );
        let plain = BayeuxError::parse("something odd");
        assert_eq!(plain.code, None);
        assert_eq!(plain.text, "something odd");
        assert_eq!(plain.to_string(), "something odd");
        assert_eq!(
            BayeuxError::parse("401:abc123:Unknown client").to_string(),
            "401:abc123:Unknown client"
        );
    }

    #[test]
    fn data_and_unknown_fields_round_trip_exactly() {
        let text = r#"{"channel":"/v2/me/calls","id":"7","data":{"a":1,"a":2,"big":9007199254740993,"f":1.50},"x-vendor":{"k":[1,2]},"ext":{"ack":true}}"#;
        let m: Message = serde_json::from_str(text).unwrap();
        assert_eq!(m.channel, "/v2/me/calls");
        assert_eq!(m.id.as_deref(), Some("7"));
        assert_eq!(
            m.data.as_ref().unwrap().get(),
            r#"{"a":1,"a":2,"big":9007199254740993,"f":1.50}"#
        );
        assert_eq!(m.other.len(), 1);
        let back = serde_json::to_string(&m).unwrap();
        let again: Message = serde_json::from_str(&back).unwrap();
        assert_eq!(again, m);
        assert!(back.contains(r#""x-vendor":{"k":[1,2]}"#));
    }

    #[test]
    fn advice_parses_units_and_unknown_reconnect_values() {
        let m: Message = serde_json::from_str(
            r#"{"channel":"/meta/connect","successful":true,"advice":{"reconnect":"retry","interval":0,"timeout":30000.0,"maxInterval":10000,"x":1}}"#,
        )
        .unwrap();
        let a = m.advice.unwrap();
        assert_eq!(a.reconnect, Some(Reconnect::Retry));
        assert_eq!(a.timeout, Some(30000));
        assert_eq!(a.max_interval, Some(10000));
        assert_eq!(a.other.get("x"), Some(&serde_json::json!(1)));
        let a: Advice = serde_json::from_str(r#"{"reconnect":"sideways"}"#).unwrap();
        assert_eq!(a.reconnect, Some(Reconnect::Other("sideways".into())));
    }

    #[test]
    fn batches_may_be_an_array_or_a_single_object() {
        assert_eq!(
            Message::parse_batch(br#" {"channel":"/a"}"#).unwrap().len(),
            1
        );
        assert_eq!(
            Message::parse_batch(br#"[{"channel":"/a"},{"channel":"/b","id":3}]"#)
                .unwrap()
                .len(),
            2
        );
        assert!(Message::parse_batch(b"[{\"channel\":").is_err());
        assert!(Message::parse_batch(br#"[{"id":"1"}]"#).is_err());
    }

    #[test]
    fn subscription_accepts_one_or_many_channels() {
        let m: Message =
            serde_json::from_str(r#"{"channel":"/meta/subscribe","subscription":["/a","/b"]}"#)
                .unwrap();
        let chans: Vec<_> = m.subscription.as_ref().unwrap().channels().collect();
        assert_eq!(chans, ["/a", "/b"]);
    }
}
