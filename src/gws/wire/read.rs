//! The decoder's one pass over a text, as serde_json visitors: the reply array, each message,
//! its `data` and the call are visited member by member; every other value is taken as a
//! borrowed [`RawValue`] (checked by serde_json, not built). A shape the store cannot use
//! stops the pass with a [`Fault`] that says where the offending value starts; a syntax error
//! is serde_json's own, with its position.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{self, after_close, next_value, range_of, stop, string_text};
use super::{
    CallNotification, Calls, Notification, V3_CALL_MESSAGE_TYPE, V3_DN_MESSAGE_TYPE,
    V3_ERROR_MESSAGE_TYPE,
};
use crate::bayeux::Limit;
use crate::gws::model::kvlist;
use crate::gws::model::record::Typed;
use crate::gws::model::{
    CallState, CallStateChangeMessage, DeviceStateChangeMessage, ErrorMessage, NotificationType,
};

/// What is wrong with a text that is JSON (or, for `syntax`, one that is not UTF-8), and
/// where: `at` is the index of the byte the error points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) at: usize,
    pub(crate) what: Cow<'static, str>,
    /// True when the text is not JSON; false when it is, but not of the expected shape.
    pub(crate) syntax: bool,
    /// The limit the text is over, when that is what is wrong.
    pub(crate) limit: Option<Limit>,
}

impl Fault {
    /// The value that starts at `at` is not of the expected shape.
    pub(crate) fn value(at: usize, what: impl Into<Cow<'static, str>>) -> Fault {
        Fault {
            at,
            what: what.into(),
            syntax: false,
            limit: None,
        }
    }

    /// The value that starts at `at` nests deeper than `max`, over `limit`.
    fn over(at: usize, limit: Limit, max: usize) -> Fault {
        Fault {
            limit: Some(limit),
            ..Fault::value(at, format!("nested deeper than {max} levels: over {limit}"))
        }
    }
}

/// The text being read, and the fault that stopped the pass, if one did.
pub(crate) struct Pass<'a> {
    pub(crate) text: &'a str,
    pub(crate) fault: Option<Fault>,
    /// The call notifications found so far (by [`Pass::batch`]).
    pub(crate) calls: Vec<CallNotification<'a>>,
}

type Json<'a> = serde_json::Deserializer<serde_json::de::StrRead<'a>>;

impl<'a> Pass<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Pass {
            text,
            fault: None,
            calls: Vec::new(),
        }
    }

    /// Records `fault` and returns the error that stops serde_json.
    fn fail<E: de::Error>(&mut self, fault: Fault) -> E {
        self.fault = Some(fault);
        stop()
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.text.as_bytes().get(at).copied()
    }

    /// Where the value after `key` starts.
    #[inline]
    fn value_after(&self, key: &RawValue) -> usize {
        next_value(self.text, range_of(self.text, key).end)
    }

    /// The text of `range`.
    pub(crate) fn slice(&self, range: Range<usize>) -> &'a str {
        self.text.get(range).unwrap_or_default()
    }

    /// A reply body: an array of messages, or one message.
    pub(crate) fn batch(&mut self, reader: &mut Json<'a>) -> serde_json::Result<()> {
        let start = next_value(self.text, 0);
        match self.byte(start) {
            Some(b'[') => reader.deserialize_seq(Batch { pass: self, start }),
            Some(b'{') => Message { pass: self, start }.deserialize(reader).map(drop),
            _ => {
                <&RawValue as de::Deserialize>::deserialize(reader)?;
                let fault = Fault::value(start, "expected a Bayeux message or an array of them");
                Err(self.fail(fault))
            }
        }
    }

    /// A message's `data` value: the whole text.
    pub(crate) fn data(&mut self, reader: &mut Json<'a>) -> serde_json::Result<Data<'a>> {
        let start = next_value(self.text, 0);
        DataSeed { pass: self, start }
            .deserialize(reader)
            .map(|(d, _)| d)
    }

    /// A call object, which starts at `start` (a `{`); its `userData` may nest `max_depth`
    /// levels.
    pub(crate) fn call(
        &mut self,
        reader: &mut Json<'a>,
        start: usize,
        max_depth: usize,
    ) -> serde_json::Result<CallFields<'a>> {
        reader.deserialize_map(Call {
            pass: self,
            start,
            max_depth,
        })
    }

    /// The decoded text of a string value; `None` for any other value (or a string that
    /// escapes half a surrogate pair).
    fn string_of(raw: &'a RawValue) -> Option<Cow<'a, str>> {
        let text = raw.get();
        if text.starts_with('"') {
            string_text(text).ok()
        } else {
            None
        }
    }

    /// A key, decoded; the fault says which key when it does not decode.
    #[inline]
    fn key(&self, raw: &'a RawValue) -> Result<Cow<'a, str>, Fault> {
        string_text(raw.get()).map_err(|e| {
            let at = range_of(self.text, raw).start;
            Fault::value(at, format!("key {}: {e}", raw.get()))
        })
    }
}

/// The elements of a reply array.
struct Batch<'p, 'a> {
    pass: &'p mut Pass<'a>,
    start: usize,
}

impl<'a> Visitor<'a> for Batch<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of Bayeux messages")
    }
    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        let pass = self.pass;
        let mut end = self.start + 1;
        loop {
            let start = next_value(pass.text, end);
            let seen = if pass.byte(start) == Some(b'{') {
                seq.next_element_seed(Message {
                    pass: &mut *pass,
                    start,
                })?
            } else {
                match seq.next_element::<&'a RawValue>()? {
                    Some(_) => {
                        let fault = Fault::value(start, "expected a Bayeux message object");
                        return Err(pass.fail(fault));
                    }
                    None => None,
                }
            };
            match seen {
                Some(e) => end = e,
                None => return Ok(()),
            }
        }
    }
}

/// One Bayeux message object, which starts at `start`: reads `channel` and `data`, checks
/// the rest for syntax; a call notification on a calls channel (v2's or v3's) joins the
/// pass's calls.
/// Yields where the message ends.
struct Message<'p, 'a> {
    pass: &'p mut Pass<'a>,
    start: usize,
}

impl<'a> DeserializeSeed<'a> for Message<'_, 'a> {
    type Value = usize;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for Message<'_, 'a> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Bayeux message object")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<usize, A::Error> {
        let pass = self.pass;
        let (mut channel, mut data, mut end) = (None, None, self.start + 1);
        while let Some(raw) = map.next_key::<&'a RawValue>()? {
            let key = pass.key(raw).map_err(|f| pass.fail(f))?;
            let at = pass.value_after(raw);
            match key.as_ref() {
                "channel" => {
                    let value = map.next_value::<&'a RawValue>()?;
                    end = range_of(pass.text, value).end;
                    if pass.byte(at) != Some(b'"') {
                        let fault = Fault::value(at, "`channel` must be a string");
                        return Err(pass.fail(fault));
                    }
                    match string_text(value.get()) {
                        Ok(name) => channel = Some(name),
                        Err(e) => {
                            let fault = Fault::value(at, format!("`channel` {}: {e}", value.get()));
                            return Err(pass.fail(fault));
                        }
                    }
                }
                "data" => {
                    let (d, e) = map.next_value_seed(DataSeed {
                        pass: &mut *pass,
                        start: at,
                    })?;
                    data = Some(d);
                    end = e;
                }
                _ => end = range_of(pass.text, map.next_value::<&'a RawValue>()?).end,
            }
        }
        let Some(channel) = channel else {
            return Err(pass.fail(Fault::value(self.start, "missing field `channel`")));
        };
        let calls = Calls::of(&channel);
        if calls != Calls::None {
            if let Some(data) = data {
                match data.into_notification(pass, calls) {
                    Ok(Notification::Call(call)) => pass.calls.push(call),
                    Ok(_) => {}
                    Err(fault) => return Err(pass.fail(fault)),
                }
            }
        }
        Ok(after_close(pass.text, end))
    }
}

/// What a message's `data` holds; judged once the channel is known.
#[derive(Default)]
pub(crate) struct Data<'a> {
    /// Where the `data` object is; `None` when `data` is not an object.
    object: Option<Range<usize>>,
    /// The first `messageType`.
    message_type: Option<&'a RawValue>,
    /// The last `notificationType`.
    notification_type: Option<&'a RawValue>,
    /// The last `call`: its fields, or where a value that is not an object starts.
    call: Option<Result<CallFields<'a>, usize>>,
    /// The first key that does not decode (an error only if this is a call notification).
    bad_key: Option<Fault>,
}

impl<'a> Data<'a> {
    /// What the `data` is; a call notification counts as a call only of the generation(s)
    /// `calls` says the channel carries.
    pub(crate) fn into_notification(
        self,
        pass: &Pass<'a>,
        calls: Calls,
    ) -> Result<Notification<'a>, Fault> {
        let Some(object) = self.object else {
            return Ok(Notification::Other);
        };
        let message_type = self.message_type.and_then(Pass::string_of);
        type Known<'a> = Option<fn(&'a str) -> Notification<'a>>;
        let (known, v3): (Known<'a>, bool) = match message_type.as_deref() {
            Some(CallStateChangeMessage::MESSAGE_TYPE) if calls.v2() => (None, false),
            Some(V3_CALL_MESSAGE_TYPE) if calls.v3() => (None, true),
            // v3's own kinds map onto v2's: a line's state, a failed operation.
            Some(DeviceStateChangeMessage::MESSAGE_TYPE | V3_DN_MESSAGE_TYPE) => {
                (Some(Notification::Device), false)
            }
            Some(ErrorMessage::MESSAGE_TYPE | V3_ERROR_MESSAGE_TYPE) => {
                (Some(Notification::Error), false)
            }
            _ => return Ok(Notification::Other),
        };
        if let Some(fault) = self.bad_key {
            return Err(fault);
        }
        if let Some(known) = known {
            return Ok(known(pass.slice(object)));
        }
        let notification_type = match self.notification_type {
            Some(t) if t.get() != "null" => match Pass::string_of(t) {
                Some(t) if v3 => Some(NotificationType::from_v3(t.as_ref())),
                Some(t) => Some(NotificationType::from(t.as_ref())),
                None => {
                    let at = range_of(pass.text, t).start;
                    return Err(Fault::value(at, "`notificationType` must be a string"));
                }
            },
            _ => None,
        };
        match self.call {
            Some(Ok(fields)) => fields
                .check(notification_type, pass)
                .map(Notification::Call),
            Some(Err(at)) => Err(Fault::value(at, "`call` must be an object")),
            None => Err(Fault::value(object.start, "missing field `call`")),
        }
    }
}

/// A `data` value, which starts at `start`; yields it and where it ends.
struct DataSeed<'p, 'a> {
    pass: &'p mut Pass<'a>,
    start: usize,
}

impl<'a> DeserializeSeed<'a> for DataSeed<'_, 'a> {
    type Value = (Data<'a>, usize);
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.pass.byte(self.start) == Some(b'{') {
            d.deserialize_map(self)
        } else {
            let raw = <&'a RawValue as de::Deserialize>::deserialize(d)?;
            Ok((Data::default(), range_of(self.pass.text, raw).end))
        }
    }
}

impl<'a> Visitor<'a> for DataSeed<'_, 'a> {
    type Value = (Data<'a>, usize);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a notification object")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let pass = self.pass;
        let mut data = Data::default();
        let mut end = self.start + 1;
        while let Some(raw) = map.next_key::<&'a RawValue>()? {
            let at = pass.value_after(raw);
            let key = match pass.key(raw) {
                Ok(key) => key,
                Err(fault) => {
                    data.bad_key.get_or_insert(fault);
                    end = range_of(pass.text, map.next_value::<&'a RawValue>()?).end;
                    continue;
                }
            };
            match key.as_ref() {
                "messageType" if data.message_type.is_none() => {
                    let value = map.next_value::<&'a RawValue>()?;
                    end = range_of(pass.text, value).end;
                    data.message_type = Some(value);
                }
                "notificationType" => {
                    let value = map.next_value::<&'a RawValue>()?;
                    end = range_of(pass.text, value).end;
                    data.notification_type = Some(value);
                }
                "call" if pass.byte(at) == Some(b'{') => {
                    let call = map.next_value_seed(CallSeed {
                        pass: &mut *pass,
                        start: at,
                    })?;
                    end = call.end;
                    data.call = Some(Ok(call));
                }
                "call" => {
                    end = range_of(pass.text, map.next_value::<&'a RawValue>()?).end;
                    data.call = Some(Err(at));
                }
                _ => end = range_of(pass.text, map.next_value::<&'a RawValue>()?).end,
            }
        }
        let end = after_close(pass.text, end);
        data.object = Some(self.start..end);
        Ok((data, end))
    }
}

/// The members of a call object the store reads, as raw text.
pub(crate) struct CallFields<'a> {
    /// Where the object starts and ends.
    start: usize,
    end: usize,
    id: Option<&'a RawValue>,
    state: Option<&'a RawValue>,
    user_data: Option<&'a RawValue>,
    bad_key: Option<Fault>,
}

/// A call object (whose `userData` may nest [`MAX_USER_DATA_DEPTH`] levels) that starts at
/// `start`.
///
/// [`MAX_USER_DATA_DEPTH`]: crate::gws::MAX_USER_DATA_DEPTH
struct CallSeed<'p, 'a> {
    pass: &'p mut Pass<'a>,
    start: usize,
}

impl<'a> DeserializeSeed<'a> for CallSeed<'_, 'a> {
    type Value = CallFields<'a>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<CallFields<'a>, D::Error> {
        d.deserialize_map(Call {
            pass: self.pass,
            start: self.start,
            max_depth: crate::gws::MAX_USER_DATA_DEPTH,
        })
    }
}

struct Call<'p, 'a> {
    pass: &'p mut Pass<'a>,
    start: usize,
    max_depth: usize,
}

impl<'a> Visitor<'a> for Call<'_, 'a> {
    type Value = CallFields<'a>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a call object")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<CallFields<'a>, A::Error> {
        let pass = self.pass;
        let mut fields = CallFields {
            start: self.start,
            end: self.start + 1,
            id: None,
            state: None,
            user_data: None,
            bad_key: None,
        };
        // Where the last member's value ends, or its key when the value was only checked
        // (most members: serde_json skips them without handing their text back).
        let mut last_end = Ok(self.start + 1);
        while let Some(raw) = map.next_key::<&'a RawValue>()? {
            let key = pass.key(raw);
            let wanted = matches!(key.as_deref(), Ok("id" | "state" | "userData"));
            if !wanted {
                map.next_value::<de::IgnoredAny>()?;
                last_end = Err(raw);
                if let Err(fault) = key {
                    fields.bad_key.get_or_insert(fault);
                }
                continue;
            }
            let value = map.next_value::<&'a RawValue>()?;
            let range = range_of(pass.text, value);
            last_end = Ok(range.end);
            match key.as_deref() {
                Ok("id") => fields.id = Some(value),
                Ok("state") => fields.state = Some(value),
                _ => {
                    if json::nests_deeper_than(value.get(), self.max_depth) {
                        let limit = Limit::UserDataDepth;
                        let fault = Fault::over(range.start, limit, self.max_depth);
                        return Err(pass.fail(fault));
                    }
                    fields.user_data = Some(value);
                }
            }
        }
        let end = match last_end {
            Ok(end) => end,
            // The last value's end: read once more, that value alone.
            Err(key) => {
                let start = pass.value_after(key);
                let mut reader =
                    serde_json::Deserializer::from_str(pass.slice(start..pass.text.len()));
                match <&RawValue as de::Deserialize>::deserialize(&mut reader) {
                    Ok(value) => range_of(pass.text, value).end,
                    Err(e) => return Err(de::Error::custom(e)),
                }
            }
        };
        fields.end = after_close(pass.text, end);
        Ok(fields)
    }
}

impl<'a> CallFields<'a> {
    /// Checks the shapes the store relies on and builds the message.
    pub(crate) fn check(
        self,
        notification_type: Option<NotificationType>,
        pass: &Pass<'a>,
    ) -> Result<CallNotification<'a>, Fault> {
        if let Some(fault) = self.bad_key {
            return Err(fault);
        }
        let at = |raw: &RawValue| range_of(pass.text, raw).start;
        let id = match self.id {
            Some(raw) => match Pass::string_of(raw) {
                Some(id) if !id.is_empty() => id,
                Some(_) => return Err(Fault::value(self.start, "missing field `id`")),
                None => return Err(Fault::value(at(raw), "call `id` must be a string")),
            },
            None => return Err(Fault::value(self.start, "missing field `id`")),
        };
        let state = match self.state {
            Some(raw) if raw.get() != "null" => match Pass::string_of(raw) {
                Some(state) => Some(CallState::from(state.as_ref())),
                None => return Err(Fault::value(at(raw), "call `state` must be a string")),
            },
            _ => None,
        };
        let user_data = match self.user_data {
            Some(raw) => match raw.get().as_bytes().first() {
                Some(b'{') => {
                    let r = range_of(pass.text, raw);
                    Some(r.start - self.start..r.end - self.start)
                }
                // v3's KVList: its entries are checked here, so the store and the model
                // read them without a fault to report.
                Some(b'[') => {
                    let r = range_of(pass.text, raw);
                    if let Err(f) = kvlist::entries(raw.get()) {
                        return Err(Fault::value(r.start + f.at, f.what));
                    }
                    Some(r.start - self.start..r.end - self.start)
                }
                Some(b'n') => None,
                _ => {
                    let what = "call `userData` must be an object or a KVList";
                    return Err(Fault::value(at(raw), what));
                }
            },
            None => None,
        };
        Ok(CallNotification {
            notification_type,
            call: pass.slice(self.start..self.end),
            id,
            state,
            user_data,
            user_data_unread: false,
        })
    }
}
