//! The one decoder of GWS notifications, from the exact JSON text that came over the wire.
//!
//! A validating scanner walks the reply array, each message, its `data` and the
//! call member by member, and checks everything else in one tight loop, as strictly as
//! serde_json does (what it accepts, and where it reports a fault). No typed tree is built
//! and no string is copied: a [`CallNotification`] borrows the call object's text and holds
//! only what the [`CallStore`](crate::gws::CallStore) reads (id, state, notification type and
//! where `userData` is). Of the call, only those fields are checked for shape (`id` a
//! non-empty string, `state` and `notificationType` strings or null, `userData` an object or
//! null); the rest is kept as text.
//!
//! | entry point | reads | yields |
//! |---|---|---|
//! | [`decode`] | one Bayeux message | a [`Notification`] |
//! | [`decode_data`] | a message's `data` text | a [`Notification`] |
//! | [`calls_in_batch`], [`calls_in_text`] | a whole reply body (replay's hot path) | its [`CallNotification`]s |
//!
//! The typed views ([`GwsNotification`](crate::gws::GwsNotification),
//! [`CallStateChangeMessage`], [`DeviceStateChangeMessage`],
//! [`ErrorMessage`]) are read from the same text when asked for,
//! after this decoder has said what the text is.
//!
//! # Limits
//!
//! What a notification costs is in proportion to its size: the scan is one pass, the store
//! keeps the text, and the user-data diff pairs members by hashing and duplicates of a key
//! in order (see [`UserDataDiff`](crate::gws::UserDataDiff)). The one limit beyond `max_message_bytes`
//! (which the client enforces before the decoder sees a message) is how deep a call's
//! `userData` may nest: [`MAX_USER_DATA_DEPTH`] levels, the object itself being level 1.
//! Deeper user data is refused with a [`DecodeError`] whose [`DecodeError::limit`] says
//! [`Limit::UserDataDepth`]; a feed reports it as a gap and heals. The number of pairs is
//! not limited separately: the message size bounds it, and every step over the pairs is
//! linear (or n log n) in their number.
//!
//! `data` is dispatched on its first `messageType`, wherever it appears among the members;
//! of any other member that appears twice, the last one counts. A call notification counts
//! as a call only on [`CALLS_CHANNEL`].

mod error;
pub(crate) mod scan;
mod typed;

use std::borrow::Cow;
use std::ops::Range;

pub use self::error::DecodeError;
use self::scan::{Fault, Result, ScanError, Scanner, Token};
use super::model::record::Typed;
use super::model::MAX_USER_DATA_DEPTH;
use super::model::{
    CallState, CallStateChangeMessage, DeviceStateChangeMessage, ErrorMessage, NotificationType,
};
pub use crate::bayeux::Limit;
use crate::bayeux::Message;

/// The channel GWS publishes call notifications on.
pub const CALLS_CHANNEL: &str = "/v2/me/calls";
/// The channel GWS publishes device notifications on.
pub const DEVICES_CHANNEL: &str = "/v2/me/devices";

/// What a message's `data` is, borrowed from its text.
#[derive(Clone, Debug, PartialEq)]
pub enum Notification<'a> {
    /// A `CallStateChangeMessage` (on [`CALLS_CHANNEL`], when read from a message).
    Call(CallNotification<'a>),
    /// A `DeviceStateChangeMessage`: the `data` object's text.
    Device(&'a str),
    /// A GWS `ErrorMessage`: the `data` object's text.
    Error(&'a str),
    /// Anything else: another `messageType`, none, `data` that is not an object, or a call
    /// notification on another channel.
    Other,
}

/// A call notification read in one pass: the call object's text exactly as received, and the
/// fields the store reads from it. Borrows the input it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct CallNotification<'a> {
    notification_type: Option<NotificationType>,
    call: &'a str,
    id: Cow<'a, str>,
    state: Option<CallState>,
    user_data: Option<Range<usize>>,
    /// The call's `userData` is over a limit and was not read (a call the server listed:
    /// see [`CallNotification::from_listed_call_text`]).
    user_data_unread: bool,
}

/// The value of a limit the decoder enforces.
pub(crate) fn max_of(limit: Limit) -> usize {
    match limit {
        Limit::UserDataDepth => MAX_USER_DATA_DEPTH,
    }
}

/// Runs `read` over `text`, turning its fault into a [`DecodeError`]. `read` checks for
/// trailing characters itself, before it judges shapes: a syntax error anywhere in the text
/// is reported as such.
fn scan_all<'a, T>(
    text: &'a str,
    read: impl FnOnce(&mut Scanner<'a>) -> Result<T>,
) -> std::result::Result<T, DecodeError> {
    let mut s = Scanner::new(text);
    match read(&mut s) {
        Ok(t) => Ok(t),
        Err(Fault) => Err(DecodeError::from_scan(text.as_bytes(), s.take_error())),
    }
}

/// What a Bayeux data message carries. A message without `data` is [`Notification::Other`].
pub fn decode(msg: &Message) -> std::result::Result<Notification<'_>, DecodeError> {
    match msg.data.as_deref() {
        Some(data) => read_data(data.get(), msg.channel == CALLS_CHANNEL),
        None => Ok(Notification::Other),
    }
}

/// What a message's `data` text is, whatever channel it came on.
pub fn decode_data(data: &str) -> std::result::Result<Notification<'_>, DecodeError> {
    read_data(data, true)
}

fn read_data(data: &str, calls: bool) -> std::result::Result<Notification<'_>, DecodeError> {
    scan_all(data, |s| {
        let found = data_value(s)?;
        s.end()?;
        found.into_notification(s, calls)
    })
}

impl<'a> CallNotification<'a> {
    /// Reads the text of one call object (as `GET /api/v2/me/calls` lists it, or as a typed
    /// [`Call`](crate::gws::Call) encodes), with the given notification type: how a call
    /// that did not come in a notification enters the store.
    pub fn from_call_text(
        call: &'a str,
        notification_type: Option<NotificationType>,
    ) -> std::result::Result<Self, DecodeError> {
        scan_all(call, |s| {
            if s.peek() != Some(b'{') {
                return Err(s.fail(ScanError::value(s.pos(), "the call is not a JSON object")));
            }
            let fields = call_object(s, MAX_USER_DATA_DEPTH)?;
            s.end()?;
            fields.finish(notification_type, s)
        })
    }

    /// Like [`CallNotification::from_call_text`], for a call the server listed (a catch-up
    /// or a heal): a `userData` over [`MAX_USER_DATA_DEPTH`] does not keep the call out. The
    /// store then holds the call exactly as listed, but its user data is not read: changes
    /// say nothing about it until a notification within the limits arrives (which reports
    /// its pairs as added).
    pub(crate) fn from_listed_call_text(
        call: &'a str,
        notification_type: Option<NotificationType>,
    ) -> std::result::Result<Self, DecodeError> {
        match CallNotification::from_call_text(call, notification_type.clone()) {
            Err(e) if e.limit().is_some() => {
                let mut read = scan_all(call, |s| {
                    if s.peek() != Some(b'{') {
                        return Err(
                            s.fail(ScanError::value(s.pos(), "the call is not a JSON object"))
                        );
                    }
                    let fields = call_object(s, usize::MAX)?;
                    s.end()?;
                    fields.finish(notification_type, s)
                })?;
                read.user_data = None;
                read.user_data_unread = true;
                Ok(read)
            }
            other => other,
        }
    }

    /// True when the call's `userData` is over a limit and was not read (see
    /// [`CallNotification::from_listed_call_text`]).
    pub(crate) fn user_data_unread(&self) -> bool {
        self.user_data_unread
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

    /// Where `userData` is in [`CallNotification::call_text`].
    pub(crate) fn user_data_range(&self) -> Option<Range<usize>> {
        self.user_data.clone()
    }
}

/// Reads a Bayeux reply body (an array of messages, or one message object) in one pass,
/// keeping only the call notifications on [`CALLS_CHANNEL`], borrowed from `body`; other
/// messages are checked for JSON syntax and a `channel` only. A body that is not UTF-8 is an
/// error, even where the bad bytes are in a message that is not a call.
pub fn calls_in_batch(body: &[u8]) -> std::result::Result<Vec<CallNotification<'_>>, DecodeError> {
    match std::str::from_utf8(body) {
        Ok(text) => calls_in_text(text),
        // The calls are slices of the body, so it must be text: report where it is not
        // (a syntax error first if there is one, as the parser meets it).
        Err(e) => {
            let first_fault = serde_json::from_slice::<serde::de::IgnoredAny>(body)
                .and_then(|_| serde_json::from_slice::<serde_json::Value>(body));
            Err(match first_fault {
                Err(e) => DecodeError::from(&e),
                Ok(_) => DecodeError::from_scan(
                    body,
                    ScanError {
                        syntax: true,
                        ..ScanError::value(e.valid_up_to(), "invalid UTF-8")
                    },
                ),
            })
        }
    }
}

/// Like [`calls_in_batch`], for a body already known to be text (as
/// [`crate::fixture::Reader`] lines are): skips checking the UTF-8 again.
pub fn calls_in_text(body: &str) -> std::result::Result<Vec<CallNotification<'_>>, DecodeError> {
    let mut calls = Vec::new();
    scan_all(body, |s| {
        batch(s, &mut calls)?;
        s.end()
    })?;
    Ok(calls)
}

/// A reply body: an array of messages, or one message.
fn batch<'a>(s: &mut Scanner<'a>, calls: &mut Vec<CallNotification<'a>>) -> Result<()> {
    match s.peek() {
        Some(b'[') => {
            s.bump();
            let mut first = true;
            while s.next_element(&mut first)? {
                message(s, calls)?;
            }
            Ok(())
        }
        Some(b'{') => message(s, calls),
        _ => {
            let value = s.skip_value()?;
            Err(s.fail(ScanError::value(
                value.start,
                "expected a Bayeux message or an array of them",
            )))
        }
    }
}

/// One Bayeux message object: reads `channel` and `data`, checks the rest for syntax.
fn message<'a>(s: &mut Scanner<'a>, calls: &mut Vec<CallNotification<'a>>) -> Result<()> {
    if s.peek() != Some(b'{') {
        let value = s.skip_value()?;
        let error = ScanError::value(value.start, "expected a Bayeux message object");
        return Err(s.fail(error));
    }
    let start = s.pos();
    s.bump();
    let mut channel = None;
    let mut data = None;
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        let name = s.decoded(key, "key").map_err(|e| s.fail(e))?;
        match name.as_ref() {
            "channel" => {
                if s.peek() != Some(b'"') {
                    let error = ScanError::value(s.pos(), "`channel` must be a string");
                    return Err(s.fail(error));
                }
                let name = s.string()?;
                channel = Some(s.decoded(name, "`channel`").map_err(|e| s.fail(e))?);
            }
            "data" => data = Some(data_value(s)?),
            _ => {
                s.skip_value()?;
            }
        }
    }
    let Some(channel) = channel else {
        return Err(s.fail(ScanError::value(start, "missing field `channel`")));
    };
    if channel == CALLS_CHANNEL {
        if let Some(data) = data {
            if let Notification::Call(call) = data.into_notification(s, true)? {
                calls.push(call);
            }
        }
    }
    Ok(())
}

/// What a message's `data` holds; judged once the channel is known.
#[derive(Default)]
struct Data<'a> {
    /// Where the `data` object is; `None` when `data` is not an object.
    object: Option<Range<usize>>,
    /// The first `messageType`.
    message_type: Option<Token>,
    /// The last `notificationType`.
    notification_type: Option<Token>,
    /// The last `call`: its fields, or where a value that is not an object starts.
    call: Option<std::result::Result<CallFields<'a>, usize>>,
    /// The first key that does not decode (an error only if this is a call notification).
    bad_key: Option<ScanError>,
}

impl<'a> Data<'a> {
    /// What the `data` is; a call notification counts as a call only when `calls` says the
    /// channel is the calls channel.
    fn into_notification(self, s: &mut Scanner<'a>, calls: bool) -> Result<Notification<'a>> {
        let Some(object) = self.object else {
            return Ok(Notification::Other);
        };
        let message_type = self.message_type.and_then(|t| s.string_of(&t));
        let known: Option<fn(&'a str) -> Notification<'a>> = match message_type.as_deref() {
            Some(CallStateChangeMessage::MESSAGE_TYPE) if calls => None,
            Some(DeviceStateChangeMessage::MESSAGE_TYPE) => Some(Notification::Device),
            Some(ErrorMessage::MESSAGE_TYPE) => Some(Notification::Error),
            _ => return Ok(Notification::Other),
        };
        if let Some(error) = self.bad_key {
            return Err(s.fail(error));
        }
        if let Some(known) = known {
            return Ok(known(s.slice(object)));
        }
        let notification_type = match self.notification_type {
            Some(t) if !s.is_null(&t) => match s.string_of(&t) {
                Some(t) => Some(NotificationType::from(t.as_ref())),
                None => {
                    let error = ScanError::value(t.start(), "`notificationType` must be a string");
                    return Err(s.fail(error));
                }
            },
            _ => None,
        };
        match self.call {
            Some(Ok(fields)) => fields.finish(notification_type, s).map(Notification::Call),
            Some(Err(at)) => Err(s.fail(ScanError::value(at, "`call` must be an object"))),
            None => Err(s.fail(ScanError::value(object.start, "missing field `call`"))),
        }
    }
}

/// A message's `data` value.
fn data_value<'a>(s: &mut Scanner<'a>) -> Result<Data<'a>> {
    if s.peek() != Some(b'{') {
        s.skip_value()?;
        return Ok(Data::default());
    }
    let start = s.pos();
    let mut data = Data::default();
    s.bump();
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        let name = match s.decoded(key, "key") {
            Ok(name) => name,
            Err(e) => {
                data.bad_key.get_or_insert(e);
                s.skip_value()?;
                continue;
            }
        };
        match name.as_ref() {
            "messageType" if data.message_type.is_none() => {
                data.message_type = Some(s.token()?);
            }
            "notificationType" => data.notification_type = Some(s.token()?),
            "call" => {
                data.call = Some(if s.peek() == Some(b'{') {
                    Ok(call_object(s, MAX_USER_DATA_DEPTH)?)
                } else {
                    Err(s.skip_value()?.start)
                });
            }
            _ => {
                s.skip_value()?;
            }
        }
    }
    data.object = Some(start..s.pos());
    Ok(data)
}

/// The members of a call object the store reads, as raw text.
struct CallFields<'a> {
    /// The whole object.
    text: &'a str,
    /// Where it starts in the scanned text.
    start: usize,
    id: Option<Token>,
    state: Option<Token>,
    /// Where `userData`'s value is, in the scanned text.
    user_data: Option<Range<usize>>,
    bad_key: Option<ScanError>,
}

/// A call object, whose `{` is the next byte; its `userData` may nest `max_depth` levels.
fn call_object<'a>(s: &mut Scanner<'a>, max_depth: usize) -> Result<CallFields<'a>> {
    let start = s.pos();
    s.bump();
    let (mut id, mut state, mut user_data, mut bad_key) = (None, None, None, None);
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        match s.decoded(key, "key") {
            Ok(name) => match name.as_ref() {
                "id" => id = Some(s.token()?),
                "state" => state = Some(s.token()?),
                "userData" => {
                    user_data = Some(s.skip_value_within(max_depth, Limit::UserDataDepth)?)
                }
                _ => {
                    s.skip_value()?;
                }
            },
            Err(e) => {
                bad_key.get_or_insert(e);
                s.skip_value()?;
            }
        }
    }
    Ok(CallFields {
        text: s.slice(start..s.pos()),
        start,
        id,
        state,
        user_data,
        bad_key,
    })
}

impl<'a> CallFields<'a> {
    /// Checks the shapes the store relies on and builds the message.
    fn finish(
        self,
        notification_type: Option<NotificationType>,
        s: &mut Scanner<'a>,
    ) -> Result<CallNotification<'a>> {
        self.check(notification_type, s).map_err(|e| s.fail(e))
    }

    fn check(
        self,
        notification_type: Option<NotificationType>,
        s: &Scanner<'a>,
    ) -> std::result::Result<CallNotification<'a>, ScanError> {
        if let Some(error) = self.bad_key {
            return Err(error);
        }
        let id = match self.id {
            Some(t) => match s.string_of(&t) {
                Some(id) if !id.is_empty() => id,
                Some(_) => return Err(ScanError::value(self.start, "missing field `id`")),
                None => return Err(ScanError::value(t.start(), "call `id` must be a string")),
            },
            None => return Err(ScanError::value(self.start, "missing field `id`")),
        };
        let state = match self.state {
            Some(t) if !s.is_null(&t) => match s.string_of(&t) {
                Some(state) => Some(CallState::from(state.as_ref())),
                None => return Err(ScanError::value(t.start(), "call `state` must be a string")),
            },
            _ => None,
        };
        let user_data = match self.user_data {
            Some(r) => match self.text.as_bytes().get(r.start - self.start) {
                Some(b'{') => Some(r.start - self.start..r.end - self.start),
                Some(b'n') => None,
                _ => {
                    return Err(ScanError::value(
                        r.start,
                        "call `userData` must be an object",
                    ))
                }
            },
            None => None,
        };
        Ok(CallNotification {
            notification_type,
            call: self.text,
            id,
            state,
            user_data,
            user_data_unread: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(data: &str) -> String {
        format!(r#"[{{"channel":"/v2/me/calls","data":{data}}}]"#)
    }

    #[test]
    fn the_call_text_is_cut_exactly_from_the_input() {
        let call = r#"{ "x" : [1,{"a":"}"}], "id":"c\u0031","userData" :{"k":1} ,"state":null }"#;
        let body = body(&format!(
            r#"{{"messageType":"CallStateChangeMessage","call":{call} ,"notificationType":"StatusChange"}}"#
        ));
        let calls = calls_in_batch(body.as_bytes()).unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!(c.call_text(), call);
        assert_eq!(c.call_id(), "c1");
        assert_eq!(c.state(), None);
        assert_eq!(c.user_data_text(), Some(r#"{"k":1}"#));
        assert_eq!(c.notification_type(), Some(&NotificationType::StatusChange));
        // The same, read from its text alone.
        let again = CallNotification::from_call_text(call, c.notification_type.clone()).unwrap();
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
            r#"{"id":"c","\ud800":1}"#,
            r#"{}"#,
            "7",
        ] {
            let data = format!(r#"{{"messageType":"CallStateChangeMessage","call":{call}}}"#);
            assert!(decode_data(&data).is_err(), "{call}");
            let late = format!(r#"{{"call":{call},"messageType":"CallStateChangeMessage"}}"#);
            assert!(decode_data(&late).is_err(), "late {call}");
        }
        let no_call = r#"{"messageType":"CallStateChangeMessage"}"#;
        let err = decode_data(no_call).unwrap_err();
        assert_eq!((err.message(), err.column()), ("missing field `call`", 1));
        let bad_nt =
            r#"{"messageType":"CallStateChangeMessage","notificationType":5,"call":{"id":"c"}}"#;
        let err = decode_data(bad_nt).unwrap_err();
        assert_eq!(err.column(), bad_nt.find('5').unwrap() + 1);
    }

    #[test]
    fn only_call_notifications_on_the_calls_channel_count_whatever_the_member_order() {
        let call = r#"{"id":"c1","state":"Ringing"}"#;
        let data = format!(
            r#"{{"notificationType":"StatusChange","call":{call},"messageType":"CallStateChangeMessage"}}"#
        );
        let text = format!(
            r#"[{{"data":{data},"channel":"/v2/me/calls"}},{{"channel":"/v2/me/devices","data":{data}}},{{"channel":"/meta/connect","successful":true}},{{"channel":"\/v2\/me\/calls","data":{data}}}]"#
        );
        let calls = calls_in_text(&text).unwrap();
        assert_eq!(calls.len(), 2);
        assert!(calls.iter().all(|c| c.call_text() == call));
        // Other message types, data that is no object, or a later `messageType`: no call.
        for data in [
            format!(r#"{{"messageType":"DeviceStateChangeMessage","call":{call}}}"#),
            format!(r#"{{"messageType":5,"call":{call}}}"#),
            format!(
                r#"{{"messageType":"Other","messageType":"CallStateChangeMessage","call":{call}}}"#
            ),
            r#"[1,{"id":"c"}]"#.to_owned(),
            r#""CallStateChangeMessage""#.to_owned(),
        ] {
            assert!(calls_in_text(&body(&data)).unwrap().is_empty(), "{data}");
        }
        // What a message that is not a call holds is checked for syntax only.
        let odd = r#"{"messageType":"Other","call":{"\ud800":1,"id":5}}"#;
        assert!(calls_in_text(&body(odd)).unwrap().is_empty());
        // Of a repeated member the last one counts.
        let twice = format!(
            r#"[{{"channel":"/x","data":{data},"channel":"/v2/me/calls"}},{{"channel":"/v2/me/calls","data":{data},"data":5}}]"#
        );
        assert_eq!(calls_in_text(&twice).unwrap().len(), 1);
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = calls_in_text(r#"[{"channel":"/v2/me/calls",}]"#).unwrap_err();
        assert_eq!(err.to_string(), "key must be a string at line 1 column 28");
        assert!(err.is_syntax());
        let err = calls_in_text(r#"[{"id":"1"}]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing field `channel` at line 1 column 2"
        );
        assert!(!err.is_syntax());
        let err = calls_in_text("[{\"channel\":5}]").unwrap_err();
        assert_eq!(
            (err.message(), err.column()),
            ("`channel` must be a string", 13)
        );
        let err = calls_in_text("[1]").unwrap_err();
        assert_eq!(err.message(), "expected a Bayeux message object");
        let err = calls_in_text("\"x\"").unwrap_err();
        assert_eq!(err.column(), 1);
        let err = calls_in_text("[{\"channel\":\"/a\"}\n,\n{]").unwrap_err();
        assert_eq!((err.line(), err.column()), (3, 2));
        let err = calls_in_text(r#"{"\ud800":1,"channel":"/a"}"#).unwrap_err();
        assert!(err.message().starts_with(r#"key "\ud800": "#), "{err}");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_an_error_even_outside_the_calls() {
        let body = b"[{\"channel\":\"/v2/me/calls\",\"data\":{\"messageType\":\"CallStateChangeMessage\",\"call\":{\"id\":\"c1\"}}},{\"channel\":\"/x\",\"k\":\"\xff\"}]";
        // serde_json passes over strings it does not decode without checking them...
        assert!(serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok());
        // ...but the calls are slices of the body, so all of it must be text.
        let err = calls_in_batch(body).unwrap_err();
        assert!(err.column() > 0, "{err}");
        // A syntax error before the bad byte is reported first.
        let err = calls_in_batch(b"[{\"channel\" 1, \"\xff\"}]").unwrap_err();
        assert_eq!(err.message(), "expected `:`");
    }

    #[test]
    fn user_data_nested_deeper_than_the_limit_is_refused_naming_the_limit() {
        let nested = |n: usize| format!("{}1{}", r#"{"k":"#.repeat(n - 1), "}".repeat(n - 1));
        let call = |ud: &str| {
            body(&format!(
                r#"{{"messageType":"CallStateChangeMessage","call":{{"id":"c1","userData":{{"a":{ud}}}}}}}"#
            ))
        };
        // `userData` is level 1, its value level 2, and so on.
        let ok = call(&nested(MAX_USER_DATA_DEPTH - 1 + 1));
        assert_eq!(calls_in_text(&ok).unwrap().len(), 1);
        let lists = call(&format!(
            "{}1{}",
            "[".repeat(MAX_USER_DATA_DEPTH - 1),
            "]".repeat(MAX_USER_DATA_DEPTH - 1)
        ));
        assert_eq!(calls_in_text(&lists).unwrap().len(), 1);
        for over in [
            call(&nested(MAX_USER_DATA_DEPTH + 1)),
            call(&format!(
                "{}{}",
                "[".repeat(MAX_USER_DATA_DEPTH),
                "]".repeat(MAX_USER_DATA_DEPTH)
            )),
            call(&nested(200_000)),
        ] {
            let err = calls_in_text(&over).unwrap_err();
            assert_eq!(err.limit(), Some(Limit::UserDataDepth), "{err}");
            assert!(!err.is_syntax());
            assert!(err.message().contains("MAX_USER_DATA_DEPTH"), "{err}");
            assert_eq!(err.column(), over.find(r#"{"a""#).unwrap() + 1);
        }
        // Deep values elsewhere in the call are not user data: kept as text.
        let elsewhere = body(&format!(
            r#"{{"messageType":"CallStateChangeMessage","call":{{"id":"c1","x":{}}}}}"#,
            nested(1000)
        ));
        assert_eq!(calls_in_text(&elsewhere).unwrap().len(), 1);
        // A syntax error inside over-deep user data is still a limit error (found first).
        assert!(calls_in_text("[1,").unwrap_err().limit().is_none());
    }
}
