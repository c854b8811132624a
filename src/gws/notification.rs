//! Dispatch of a Bayeux message's `data` on its `messageType`.
//!
//! Decoding reads `data` once: when `messageType` is the first key (as GWS sends it) the rest
//! of the object goes straight into the typed record; otherwise the fields are kept as raw
//! text until `messageType` is known, then decoded from that text.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use super::call::{CallStateChangeMessage, DeviceStateChangeMessage, ErrorMessage, Typed};
use super::raw::{Key, RawJson};
use crate::bayeux::Message;

/// The channel GWS publishes call notifications on.
pub const CALLS_CHANNEL: &str = "/v2/me/calls";
/// The channel GWS publishes device notifications on.
pub const DEVICES_CHANNEL: &str = "/v2/me/devices";

/// A GWS notification: the `data` of a Bayeux data message, typed by its `messageType`.
// Boxing the large variant would cost an allocation per notification for no gain: values
// are moved once, not stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum GwsNotification {
    /// `CallStateChangeMessage`.
    CallStateChange(CallStateChangeMessage),
    /// `DeviceStateChangeMessage`.
    DeviceStateChange(DeviceStateChangeMessage),
    /// `ErrorMessage`.
    Error(ErrorMessage),
    /// Any other `data` (other `messageType`s, none, or not an object), as received.
    Other(RawJson),
}

impl GwsNotification {
    /// Decodes a message's `data` text. `data` that is not an object, or has another
    /// `messageType`, becomes [`GwsNotification::Other`] with the exact text. Errors only
    /// when a known `messageType` carries fields of the wrong shape.
    pub fn from_data(data: &RawValue) -> Result<GwsNotification, serde_json::Error> {
        if !data.get().trim_start().starts_with('{') {
            return Ok(GwsNotification::Other(RawJson::from(data)));
        }
        let d: Dispatched = serde_json::from_str(data.get())?;
        Ok(match d {
            Dispatched::Known(n) => n,
            Dispatched::Other => GwsNotification::Other(RawJson::from(data)),
        })
    }

    /// Decodes a message's `data`; `None` when it has none.
    pub fn from_message(msg: &Message) -> Option<Result<GwsNotification, serde_json::Error>> {
        msg.data.as_deref().map(GwsNotification::from_data)
    }

    /// The `messageType`, when known.
    pub fn message_type(&self) -> Option<&'static str> {
        match self {
            GwsNotification::CallStateChange(_) => Some(CallStateChangeMessage::MESSAGE_TYPE),
            GwsNotification::DeviceStateChange(_) => Some(DeviceStateChangeMessage::MESSAGE_TYPE),
            GwsNotification::Error(_) => Some(ErrorMessage::MESSAGE_TYPE),
            GwsNotification::Other(_) => None,
        }
    }
}

impl CallStateChangeMessage {
    /// The call notification a Bayeux message carries: `Ok(None)` unless the message is on
    /// [`CALLS_CHANNEL`] with `messageType` `CallStateChangeMessage`.
    pub fn from_message(
        msg: &Message,
    ) -> Result<Option<CallStateChangeMessage>, serde_json::Error> {
        match (msg.channel == CALLS_CHANNEL, msg.data.as_deref()) {
            (true, Some(data)) => {
                let mut de = serde_json::Deserializer::from_str(data.get());
                let found = CallsSeed.deserialize(&mut de)?;
                de.end()?;
                Ok(found)
            }
            _ => Ok(None),
        }
    }
}

impl Serialize for GwsNotification {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            GwsNotification::CallStateChange(m) => m.serialize(s),
            GwsNotification::DeviceStateChange(m) => m.serialize(s),
            GwsNotification::Error(m) => m.serialize(s),
            GwsNotification::Other(raw) => raw.serialize(s),
        }
    }
}

/// Accepts any JSON value, like [`GwsNotification::from_data`] (through its text, so
/// [`GwsNotification::Other`] keeps it exactly).
impl<'de> Deserialize<'de> for GwsNotification {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        GwsNotification::from_data(&raw).map_err(de::Error::custom)
    }
}

/// What a `data` object turned out to be.
#[allow(clippy::large_enum_variant)]
enum Dispatched {
    Known(GwsNotification),
    /// Another `messageType`, or none.
    Other,
}

impl<'de> Deserialize<'de> for Dispatched {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DispatchVisitor)
    }
}

struct DispatchVisitor;

impl<'de> Visitor<'de> for DispatchVisitor {
    type Value = Dispatched;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GWS notification object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dispatched, A::Error> {
        let Some(Key(first)) = map.next_key::<Key<'de>>()? else {
            return Ok(Dispatched::Other);
        };
        if first == "messageType" {
            let t = map.next_value::<MaybeStr<'de>>()?.0;
            return match t.as_deref() {
                Some(CallStateChangeMessage::MESSAGE_TYPE) => Ok(Dispatched::Known(
                    GwsNotification::CallStateChange(super::call::finish_typed(map)?),
                )),
                Some(DeviceStateChangeMessage::MESSAGE_TYPE) => Ok(Dispatched::Known(
                    GwsNotification::DeviceStateChange(super::call::finish_typed(map)?),
                )),
                Some(ErrorMessage::MESSAGE_TYPE) => Ok(Dispatched::Known(GwsNotification::Error(
                    super::call::finish_typed(map)?,
                ))),
                _ => {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(Dispatched::Other)
                }
            };
        }
        // Rare: `messageType` is not first. Keep fields as text, then decode them.
        let mut pairs = vec![(first.into_owned(), map.next_value::<RawJson>()?)];
        collect_rest(&mut map, &mut pairs)?;
        let t = pairs
            .iter()
            .find(|(k, _)| k == "messageType")
            .and_then(|(_, v)| serde_json::from_str::<String>(v.get()).ok());
        let known = match t.as_deref() {
            Some(CallStateChangeMessage::MESSAGE_TYPE) => {
                GwsNotification::CallStateChange(from_pairs(&pairs)?)
            }
            Some(DeviceStateChangeMessage::MESSAGE_TYPE) => {
                GwsNotification::DeviceStateChange(from_pairs(&pairs)?)
            }
            Some(ErrorMessage::MESSAGE_TYPE) => GwsNotification::Error(from_pairs(&pairs)?),
            _ => return Ok(Dispatched::Other),
        };
        Ok(Dispatched::Known(known))
    }
}

fn collect_rest<'de, A: MapAccess<'de>>(
    map: &mut A,
    pairs: &mut Vec<(String, RawJson)>,
) -> Result<(), A::Error> {
    while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
        pairs.push((k.into_owned(), map.next_value::<RawJson>()?));
    }
    Ok(())
}

/// Decodes a typed record from fields kept as text, skipping the first `messageType`.
fn from_pairs<T: Typed, E: de::Error>(pairs: &[(String, RawJson)]) -> Result<T, E> {
    let mut t = T::default();
    let mut skipped = false;
    for (k, v) in pairs {
        if k == "messageType" && !skipped {
            skipped = true;
            continue;
        }
        t.take_field(Cow::Borrowed(k.as_str()), v.as_raw())
            .map_err(|e| E::custom(format_args!("field {k:?}: {e}")))?;
    }
    t.check().map_err(E::missing_field)?;
    Ok(t)
}

/// A string value, or `None` for any other JSON value (which is skipped).
struct MaybeStr<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<MaybeStr<'de>, E> {
                Ok(MaybeStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeStr<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeStr<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Decodes a `data` value in place, keeping only a `CallStateChangeMessage` (anything else,
/// object or not, is skipped without building it). Used where only calls matter.
pub(crate) struct CallsSeed;

impl<'de> DeserializeSeed<'de> for CallsSeed {
    type Value = Option<CallStateChangeMessage>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CallsSeed {
    type Value = Option<CallStateChangeMessage>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match DispatchVisitor.visit_map(map)? {
            Dispatched::Known(GwsNotification::CallStateChange(m)) => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Decodes a Bayeux reply body (an array of messages, or one message object) in one pass,
/// keeping only the call notifications: `data` with `messageType` `CallStateChangeMessage`
/// on [`CALLS_CHANNEL`]. Other messages are checked for JSON syntax and a `channel` but not
/// built. It yields the same calls as [`crate::bayeux::Message::parse_batch`] followed by
/// [`CallStateChangeMessage::from_message`], typed; `replay` itself reads bodies with
/// [`super::raw_calls_in_batch`], which keeps each call's text instead.
pub fn calls_in_batch(body: &[u8]) -> Result<Vec<CallStateChangeMessage>, serde_json::Error> {
    match std::str::from_utf8(body) {
        // Checking UTF-8 once up front spares the parser checking every string.
        Ok(text) => calls_in_text(serde_json::Deserializer::from_str(text)),
        Err(_) => calls_in_text(serde_json::Deserializer::from_slice(body)),
    }
}

fn calls_in_text<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
) -> Result<Vec<CallStateChangeMessage>, serde_json::Error> {
    let mut calls = Vec::new();
    de.deserialize_any(BatchVisitor(&mut calls))?;
    de.end()?;
    Ok(calls)
}

struct BatchVisitor<'a>(&'a mut Vec<CallStateChangeMessage>);

impl<'de> Visitor<'de> for BatchVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Bayeux message or an array of them")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(MessageSeed(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        MessageSeed(self.0).visit_map(map)
    }
}

/// One Bayeux message object: reads `channel` and `data`, skips the rest.
struct MessageSeed<'a>(&'a mut Vec<CallStateChangeMessage>);

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Bayeux message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut channel: Option<Cow<'de, str>> = None;
        let mut call = None;
        // The last `data` counts, as with `Message`. Read on the calls channel it is decoded
        // at once; read before the channel is known (or, oddly, under another `channel` that
        // a later one replaces) it is kept as text until the last channel says it matters.
        let mut early: Option<&'de RawValue> = None;
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            match k.as_ref() {
                "channel" => channel = Some(map.next_value::<Key<'de>>()?.0),
                "data" if channel.as_deref() == Some(CALLS_CHANNEL) => {
                    call = map.next_value_seed(CallsSeed)?;
                    early = None;
                }
                "data" => {
                    early = Some(map.next_value()?);
                    call = None;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let channel = channel.ok_or_else(|| de::Error::missing_field("channel"))?;
        if channel != CALLS_CHANNEL {
            return Ok(());
        }
        if let Some(raw) = early {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            call = CallsSeed
                .deserialize(&mut de)
                .map_err(|e| de::Error::custom(format_args!("in data: {e}")))?;
        }
        if let Some(c) = call {
            self.0.push(c);
        }
        Ok(())
    }
}
