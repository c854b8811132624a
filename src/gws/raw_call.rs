//! [`RawCallMessage`]: a `CallStateChangeMessage` read in one pass, keeping the call object's
//! exact text and only what the [`super::CallStore`] needs (id, state, notification type and
//! where `userData` is), all borrowed from the input.
//!
//! This is the hot path of `replay` and of [`super::CallStore::changes`]: no typed tree is
//! built, no string is copied. Only the fields the store reads are checked for shape (`id` a
//! non-empty string, `state` and `notificationType` strings or null, `userData` an object or
//! null); the rest is checked for JSON syntax and kept as text.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::call::{CallState, CallStateChangeMessage, NotificationType, Typed};
use super::notification::CALLS_CHANNEL;
use super::raw::Key;
use super::scan;
use crate::bayeux::Message;

/// A call notification read in one pass: the call object's text exactly as received, and the
/// fields the store reads from it. Borrows the input it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct RawCallMessage<'a> {
    notification_type: Option<NotificationType>,
    call: &'a str,
    id: Cow<'a, str>,
    state: Option<CallState>,
    user_data: Option<Range<usize>>,
}

impl<'a> RawCallMessage<'a> {
    /// The call notification a Bayeux message carries: `Ok(None)` unless the message is on
    /// [`CALLS_CHANNEL`] with `messageType` `CallStateChangeMessage` (like
    /// [`CallStateChangeMessage::from_message`]).
    pub fn from_message(msg: &'a Message) -> Result<Option<Self>, serde_json::Error> {
        match (msg.channel == CALLS_CHANNEL, msg.data.as_deref()) {
            (true, Some(data)) => Self::from_data(data.get()),
            _ => Ok(None),
        }
    }

    /// Reads a message's `data` text; `Ok(None)` when it is not a `CallStateChangeMessage`.
    pub fn from_data(data: &'a str) -> Result<Option<Self>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(data);
        let found = DataSeed { base: data }.deserialize(&mut de)?;
        de.end()?;
        Ok(found)
    }

    /// Reads the text of one call object (as [`super::Call`] encodes), with the given
    /// notification type.
    pub(crate) fn from_call_text(
        call: &'a str,
        notification_type: Option<NotificationType>,
    ) -> Result<Self, String> {
        let mut id = None;
        let mut state = None;
        let mut user_data = None;
        for (key, range) in scan::members(call).ok_or("the call is not a JSON object")? {
            let value = call.get(range.clone()).unwrap_or_default();
            match scan::string_value(key).as_deref() {
                Some("id") => id = Some(value),
                Some("state") => state = Some(value),
                Some("userData") => user_data = Some(range),
                _ => {}
            }
        }
        Fields {
            id,
            state,
            user_data,
        }
        .finish(call, notification_type)
    }

    /// The call object, exactly as received.
    pub fn call_text(&self) -> &'a str {
        self.call
    }

    /// The call's `id`.
    pub fn call_id(&self) -> &str {
        &self.id
    }

    /// The call's `state`.
    pub fn state(&self) -> Option<&CallState> {
        self.state.as_ref()
    }

    /// The notification's `notificationType`.
    pub fn notification_type(&self) -> Option<&NotificationType> {
        self.notification_type.as_ref()
    }

    /// The call's `userData` object text, exactly as received; `None` when absent or null.
    pub fn user_data_text(&self) -> Option<&'a str> {
        self.call.get(self.user_data.clone()?)
    }

    /// Where `userData` is in [`RawCallMessage::call_text`].
    pub(crate) fn user_data_range(&self) -> Option<Range<usize>> {
        self.user_data.clone()
    }
}

/// The call fields found while reading, as raw text (`user_data` as a range in the call).
struct Fields<'a> {
    id: Option<&'a str>,
    state: Option<&'a str>,
    user_data: Option<Range<usize>>,
}

impl<'a> Fields<'a> {
    /// Checks the shapes the store relies on and builds the message.
    fn finish(
        self,
        call: &'a str,
        notification_type: Option<NotificationType>,
    ) -> Result<RawCallMessage<'a>, String> {
        let id = match self.id.map(scan::string_value) {
            Some(Some(id)) if !id.is_empty() => id,
            Some(Some(_)) | None => return Err("missing field `id`".into()),
            Some(None) => return Err("call `id` must be a string".into()),
        };
        let state = match self.state {
            None | Some("null") => None,
            Some(s) => Some(CallState::from(
                scan::string_value(s)
                    .ok_or("call `state` must be a string")?
                    .as_ref(),
            )),
        };
        let user_data = match self.user_data {
            Some(r) => match call.get(r.clone()).and_then(|t| t.bytes().next()) {
                Some(b'{') => Some(r),
                Some(b'n') => None,
                _ => return Err("call `userData` must be an object".into()),
            },
            None => None,
        };
        Ok(RawCallMessage {
            notification_type,
            call,
            id,
            state,
            user_data,
        })
    }
}

fn notification_type<E: de::Error>(raw: &str) -> Result<Option<NotificationType>, E> {
    if raw == "null" {
        return Ok(None);
    }
    scan::string_value(raw)
        .map(|s| Some(NotificationType::from(s.as_ref())))
        .ok_or_else(|| E::custom("`notificationType` must be a string"))
}

/// Reads one call object in place. Every member value is taken as a borrowed slice (as cheap
/// as skipping it), so the object's own braces can be found around the first and last one.
struct CallSeed<'a> {
    base: &'a str,
    notification_type: Option<NotificationType>,
}

impl<'de> DeserializeSeed<'de> for CallSeed<'de> {
    type Value = RawCallMessage<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CallSeed<'de> {
    type Value = RawCallMessage<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a call object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let base = self.base;
        let mut first: Option<&'de str> = None;
        let mut last: Option<&'de str> = None;
        let (mut id, mut state, mut user_data) = (None, None, None);
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v = map.next_value::<&'de RawValue>()?.get();
            first.get_or_insert(v);
            last = Some(v);
            match k.as_ref() {
                "id" => id = Some(v),
                "state" => state = Some(v),
                "userData" => user_data = Some(v),
                _ => {}
            }
        }
        let lost = || de::Error::custom("call object text not found in the input");
        let (Some(first), Some(last)) = (first, last) else {
            return Err(de::Error::missing_field("id"));
        };
        let start = scan::offset_in(base, first)
            .and_then(|i| scan::object_start(base, i))
            .ok_or_else(lost)?;
        let end = scan::offset_in(base, last)
            .and_then(|i| scan::object_end(base, i + last.len()))
            .ok_or_else(lost)?;
        let call = base.get(start..end).ok_or_else(lost)?;
        let user_data = match user_data {
            Some(u) => {
                let at = scan::offset_in(call, u).ok_or_else(lost)?;
                Some(at..at + u.len())
            }
            None => None,
        };
        Fields {
            id,
            state,
            user_data,
        }
        .finish(call, self.notification_type)
        .map_err(de::Error::custom)
    }
}

/// Reads a message's `data`: `Some` for a `CallStateChangeMessage`, `None` for anything
/// else (other `messageType`s, none, or not an object), which is only checked for syntax.
struct DataSeed<'a> {
    base: &'a str,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'de> {
    type Value = Option<RawCallMessage<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'de> {
    type Value = Option<RawCallMessage<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(Key(first)) = map.next_key::<Key<'de>>()? else {
            return Ok(None);
        };
        if first != "messageType" {
            return self.visit_rest(first, map);
        }
        let t = map.next_value::<&'de RawValue>()?.get();
        if scan::string_value(t).as_deref() != Some(CallStateChangeMessage::MESSAGE_TYPE) {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(None);
        }
        // GWS sends `messageType` first: read the rest in this one pass. The call may come
        // before `notificationType`, so its type is filled in afterwards.
        let mut nt = None;
        let mut call = None;
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            match k.as_ref() {
                "notificationType" => {
                    nt = notification_type(map.next_value::<&'de RawValue>()?.get())?;
                }
                "call" => {
                    call = Some(map.next_value_seed(CallSeed {
                        base: self.base,
                        notification_type: None,
                    })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let mut call = call.ok_or_else(|| de::Error::missing_field("call"))?;
        call.notification_type = nt;
        Ok(Some(call))
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
}

impl<'de> DataSeed<'de> {
    /// Rare: `messageType` is not the first key. Keep every value as text until the type is
    /// known, then read the call from its text.
    fn visit_rest<A: MapAccess<'de>>(
        self,
        first: Cow<'de, str>,
        mut map: A,
    ) -> Result<Option<RawCallMessage<'de>>, A::Error> {
        let mut message_type = None;
        let mut nt = None;
        let mut call = None;
        let mut key = Some(first);
        while let Some(k) = key {
            let v = map.next_value::<&'de RawValue>()?.get();
            match k.as_ref() {
                "messageType" => {
                    message_type.get_or_insert(v);
                }
                "notificationType" => nt = Some(v),
                "call" => call = Some(v),
                _ => {}
            }
            key = map.next_key::<Key<'de>>()?.map(|Key(k)| k);
        }
        let t = message_type.and_then(scan::string_value);
        if t.as_deref() != Some(CallStateChangeMessage::MESSAGE_TYPE) {
            return Ok(None);
        }
        let nt = match nt {
            Some(raw) => notification_type(raw)?,
            None => None,
        };
        let call = call.ok_or_else(|| de::Error::missing_field("call"))?;
        if !call.starts_with('{') {
            return Err(de::Error::custom("`call` must be an object"));
        }
        RawCallMessage::from_call_text(call, nt)
            .map(Some)
            .map_err(de::Error::custom)
    }
}

/// Reads a Bayeux reply body (an array of messages, or one message object) in one pass,
/// keeping only the call notifications on [`CALLS_CHANNEL`], borrowed from `body`. The same
/// messages count as calls as with [`super::calls_in_batch`]; the calls are not built.
/// A body that is not UTF-8 is an error, even where the bad bytes are in a message that is
/// not a call.
pub fn raw_calls_in_batch(body: &[u8]) -> Result<Vec<RawCallMessage<'_>>, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => raw_calls_in_text(text),
        // The calls are slices of the body, so it must be text: report where it is not
        // (a syntax error first if there is one, as the parser meets it).
        Err(e) => {
            serde_json::from_slice::<IgnoredAny>(body)?;
            serde_json::from_slice::<serde_json::Value>(body)?;
            Err(de::Error::custom(format_args!(
                "invalid UTF-8 at byte {}",
                e.valid_up_to()
            )))
        }
    }
}

/// Like [`raw_calls_in_batch`], for a body already known to be text (as
/// [`crate::fixture::Reader`] lines are): skips checking the UTF-8 again.
pub fn raw_calls_in_text(body: &str) -> Result<Vec<RawCallMessage<'_>>, serde_json::Error> {
    let mut calls = Vec::new();
    let mut de = serde_json::Deserializer::from_str(body);
    de.deserialize_any(BatchVisitor {
        base: body,
        calls: &mut calls,
    })?;
    de.end()?;
    Ok(calls)
}

struct BatchVisitor<'a, 'v> {
    base: &'a str,
    calls: &'v mut Vec<RawCallMessage<'a>>,
}

impl<'de> Visitor<'de> for BatchVisitor<'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Bayeux message or an array of them")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(MessageSeed {
                base: self.base,
                calls: &mut *self.calls,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        MessageSeed {
            base: self.base,
            calls: self.calls,
        }
        .visit_map(map)
    }
}

/// One Bayeux message object: reads `channel` and `data`, skips the rest.
struct MessageSeed<'a, 'v> {
    base: &'a str,
    calls: &'v mut Vec<RawCallMessage<'a>>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'de, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Bayeux message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut channel: Option<Cow<'de, str>> = None;
        let mut call = None;
        // `data` before `channel`: kept as text until the channel says whether it matters.
        let mut early: Option<&'de RawValue> = None;
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            match k.as_ref() {
                "channel" => channel = Some(map.next_value::<Key<'de>>()?.0),
                "data" => match channel.as_deref() {
                    Some(CALLS_CHANNEL) => {
                        call = map.next_value_seed(DataSeed { base: self.base })?;
                    }
                    Some(_) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    None => early = Some(map.next_value()?),
                },
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
            call = RawCallMessage::from_data(raw.get())
                .map_err(|e| de::Error::custom(format_args!("in data: {e}")))?;
        }
        self.calls.extend(call);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_text_is_cut_exactly_from_the_input() {
        let call = r#"{ "x" : [1,{"a":"}"}], "id":"c\u0031","userData" :{"k":1} ,"state":null }"#;
        let body = format!(
            r#"[{{"channel":"/v2/me/calls","data":{{"messageType":"CallStateChangeMessage","call":{call} ,"notificationType":"StatusChange"}}}}]"#
        );
        let calls = raw_calls_in_batch(body.as_bytes()).unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!(c.call_text(), call);
        assert_eq!(c.call_id(), "c1");
        assert_eq!(c.state(), None);
        assert_eq!(c.user_data_text(), Some(r#"{"k":1}"#));
        assert_eq!(c.notification_type(), Some(&NotificationType::StatusChange));
        // The same, read from its text alone (the path for `messageType` not first).
        let again = RawCallMessage::from_call_text(call, c.notification_type.clone()).unwrap();
        assert_eq!(&again, c);
    }

    #[test]
    fn shapes_the_store_relies_on_are_checked() {
        for call in [
            r#"{"state":"Ringing"}"#,
            r#"{"id":7}"#,
            r#"{"id":""}"#,
            r#"{"id":"c","state":3}"#,
            r#"{"id":"c","userData":[1]}"#,
            r#"{}"#,
        ] {
            let data = format!(r#"{{"messageType":"CallStateChangeMessage","call":{call}}}"#);
            assert!(RawCallMessage::from_data(&data).is_err(), "{call}");
            let late = format!(r#"{{"call":{call},"messageType":"CallStateChangeMessage"}}"#);
            assert!(RawCallMessage::from_data(&late).is_err(), "late {call}");
        }
    }

    #[test]
    fn a_body_that_is_not_utf8_is_an_error_even_outside_the_calls() {
        let body = b"[{\"channel\":\"/v2/me/calls\",\"data\":{\"messageType\":\"CallStateChangeMessage\",\"call\":{\"id\":\"c1\"}}},{\"channel\":\"/x\",\"k\":\"\xff\"}]";
        assert_eq!(calls_in_batch_len(body), Some(1));
        let err = raw_calls_in_batch(body).unwrap_err();
        assert!(err.column() > 0, "{err}");
    }

    fn calls_in_batch_len(body: &[u8]) -> Option<usize> {
        crate::gws::calls_in_batch(body).ok().map(|c| c.len())
    }
}
