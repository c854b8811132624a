//! [`RawCallMessage`]: a `CallStateChangeMessage` read in one pass, keeping the call object's
//! exact text and only what the [`super::CallStore`] needs (id, state, notification type and
//! where `userData` is), all borrowed from the input.
//!
//! This is the hot path of `replay` and of [`super::CallStore::changes`]: no typed tree is
//! built and no string is copied. A validating scanner walks the reply array, each message,
//! its `data` and the call member by member, and checks everything else in one tight loop,
//! as strictly as serde_json does (what it accepts, and where it reports a fault). Of the
//! call, only the fields the store reads are checked for shape (`id` a non-empty string,
//! `state` and `notificationType` strings or null, `userData` an object or null); the rest is
//! kept as text.
//!
//! Which messages count as calls is the same as with [`super::calls_in_batch`]: `data` with
//! a first `messageType` of `CallStateChangeMessage`, on [`CALLS_CHANNEL`], whatever the
//! order of the members. Of a member that appears twice, the last one counts.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use super::call::{CallState, CallStateChangeMessage, NotificationType, Typed};
use super::notification::CALLS_CHANNEL;
use super::scan::{self, Fault, Result, ScanError, Scanner, Token};
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

/// Why a reply body (or a message's `data`) could not be read: its JSON is malformed, or a
/// call notification in it lacks what the store needs. Says what and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    line: usize,
    column: usize,
    message: Cow<'static, str>,
    syntax: bool,
}

impl DecodeError {
    /// The 1-based line in the text read.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column in that line, counted in bytes as serde_json counts them (the 1-based
    /// column of the offending byte; the line's length when the text ended too early).
    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True when the text is not JSON (or not UTF-8); false when it is JSON but a call
    /// notification in it is not of the shape the store needs (no `id`, say).
    pub fn is_syntax(&self) -> bool {
        self.syntax
    }

    /// The error a scan of `text` stopped with, placed as serde_json places it.
    fn from_scan(text: &[u8], error: ScanError) -> DecodeError {
        let (line, column) = scan::line_column(text, error.at);
        DecodeError {
            line,
            column,
            message: error.what,
            syntax: error.syntax,
        }
    }
}

/// A serde_json error as a [`DecodeError`]: its position, and its message without the
/// position serde_json appends.
impl From<&serde_json::Error> for DecodeError {
    fn from(e: &serde_json::Error) -> DecodeError {
        DecodeError {
            line: e.line(),
            column: e.column(),
            message: Cow::Owned(scan::without_position(e)),
            syntax: e.is_syntax() || e.is_eof(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for DecodeError {}

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

impl<'a> RawCallMessage<'a> {
    /// The call notification a Bayeux message carries: `Ok(None)` unless the message is on
    /// [`CALLS_CHANNEL`] with `messageType` `CallStateChangeMessage` (like
    /// [`CallStateChangeMessage::from_message`]).
    pub fn from_message(msg: &'a Message) -> std::result::Result<Option<Self>, DecodeError> {
        match (msg.channel == CALLS_CHANNEL, msg.data.as_deref()) {
            (true, Some(data)) => Self::from_data(data.get()),
            _ => Ok(None),
        }
    }

    /// Reads a message's `data` text; `Ok(None)` when it is not a `CallStateChangeMessage`.
    pub fn from_data(data: &'a str) -> std::result::Result<Option<Self>, DecodeError> {
        scan_all(data, |s| {
            let found = data_value(s)?;
            s.end()?;
            found.into_call(s)
        })
    }

    /// Reads the text of one call object (as [`super::Call`] encodes, or as
    /// `GET /api/v2/me/calls` lists it), with the given notification type.
    pub(crate) fn from_call_text(
        call: &'a str,
        notification_type: Option<NotificationType>,
    ) -> std::result::Result<Self, DecodeError> {
        scan_all(call, |s| {
            if s.peek() != Some(b'{') {
                return Err(s.fail(ScanError::value(s.pos(), "the call is not a JSON object")));
            }
            let fields = call_object(s)?;
            s.end()?;
            fields.finish(notification_type, s)
        })
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

/// Reads a Bayeux reply body (an array of messages, or one message object) in one pass,
/// keeping only the call notifications on [`CALLS_CHANNEL`], borrowed from `body`. The same
/// messages count as calls as with [`super::calls_in_batch`]; the calls are not built.
/// A body that is not UTF-8 is an error, even where the bad bytes are in a message that is
/// not a call.
pub fn raw_calls_in_batch(
    body: &[u8],
) -> std::result::Result<Vec<RawCallMessage<'_>>, DecodeError> {
    match std::str::from_utf8(body) {
        Ok(text) => raw_calls_in_text(text),
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

/// Like [`raw_calls_in_batch`], for a body already known to be text (as
/// [`crate::fixture::Reader`] lines are): skips checking the UTF-8 again.
pub fn raw_calls_in_text(body: &str) -> std::result::Result<Vec<RawCallMessage<'_>>, DecodeError> {
    let mut calls = Vec::new();
    scan_all(body, |s| {
        batch(s, &mut calls)?;
        s.end()
    })?;
    Ok(calls)
}

/// A reply body: an array of messages, or one message.
fn batch<'a>(s: &mut Scanner<'a>, calls: &mut Vec<RawCallMessage<'a>>) -> Result<()> {
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
fn message<'a>(s: &mut Scanner<'a>, calls: &mut Vec<RawCallMessage<'a>>) -> Result<()> {
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
            calls.extend(data.into_call(s)?);
        }
    }
    Ok(())
}

/// What a message's `data` holds, as far as calls go; judged once the channel is known.
#[derive(Default)]
struct Data<'a> {
    /// Where the `data` object starts; `None` when `data` is not an object.
    object: Option<usize>,
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
    fn into_call(self, s: &mut Scanner<'a>) -> Result<Option<RawCallMessage<'a>>> {
        let Some(start) = self.object else {
            return Ok(None);
        };
        let message_type = self.message_type.and_then(|t| s.string_of(&t));
        if message_type.as_deref() != Some(CallStateChangeMessage::MESSAGE_TYPE) {
            return Ok(None);
        }
        if let Some(error) = self.bad_key {
            return Err(s.fail(error));
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
            Some(Ok(fields)) => fields.finish(notification_type, s).map(Some),
            Some(Err(at)) => Err(s.fail(ScanError::value(at, "`call` must be an object"))),
            None => Err(s.fail(ScanError::value(start, "missing field `call`"))),
        }
    }
}

/// A message's `data` value.
fn data_value<'a>(s: &mut Scanner<'a>) -> Result<Data<'a>> {
    if s.peek() != Some(b'{') {
        s.skip_value()?;
        return Ok(Data::default());
    }
    let mut data = Data {
        object: Some(s.pos()),
        ..Data::default()
    };
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
                    Ok(call_object(s)?)
                } else {
                    Err(s.skip_value()?.start)
                });
            }
            _ => {
                s.skip_value()?;
            }
        }
    }
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

/// A call object, whose `{` is the next byte.
fn call_object<'a>(s: &mut Scanner<'a>) -> Result<CallFields<'a>> {
    let start = s.pos();
    s.bump();
    let (mut id, mut state, mut user_data, mut bad_key) = (None, None, None, None);
    let mut first = true;
    while let Some(key) = s.next_key(&mut first)? {
        match s.decoded(key, "key") {
            Ok(name) => match name.as_ref() {
                "id" => id = Some(s.token()?),
                "state" => state = Some(s.token()?),
                "userData" => user_data = Some(s.skip_value()?),
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
    ) -> Result<RawCallMessage<'a>> {
        self.check(notification_type, s).map_err(|e| s.fail(e))
    }

    fn check(
        self,
        notification_type: Option<NotificationType>,
        s: &Scanner<'a>,
    ) -> std::result::Result<RawCallMessage<'a>, ScanError> {
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
        Ok(RawCallMessage {
            notification_type,
            call: self.text,
            id,
            state,
            user_data,
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
        let calls = raw_calls_in_batch(body.as_bytes()).unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!(c.call_text(), call);
        assert_eq!(c.call_id(), "c1");
        assert_eq!(c.state(), None);
        assert_eq!(c.user_data_text(), Some(r#"{"k":1}"#));
        assert_eq!(c.notification_type(), Some(&NotificationType::StatusChange));
        // The same, read from its text alone.
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
            r#"{"id":"c","\ud800":1}"#,
            r#"{}"#,
            "7",
        ] {
            let data = format!(r#"{{"messageType":"CallStateChangeMessage","call":{call}}}"#);
            assert!(RawCallMessage::from_data(&data).is_err(), "{call}");
            let late = format!(r#"{{"call":{call},"messageType":"CallStateChangeMessage"}}"#);
            assert!(RawCallMessage::from_data(&late).is_err(), "late {call}");
        }
        let no_call = r#"{"messageType":"CallStateChangeMessage"}"#;
        let err = RawCallMessage::from_data(no_call).unwrap_err();
        assert_eq!((err.message(), err.column()), ("missing field `call`", 1));
        let bad_nt =
            r#"{"messageType":"CallStateChangeMessage","notificationType":5,"call":{"id":"c"}}"#;
        let err = RawCallMessage::from_data(bad_nt).unwrap_err();
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
        let calls = raw_calls_in_text(&text).unwrap();
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
            assert!(
                raw_calls_in_text(&body(&data)).unwrap().is_empty(),
                "{data}"
            );
        }
        // What a message that is not a call holds is checked for syntax only.
        let odd = r#"{"messageType":"Other","call":{"\ud800":1,"id":5}}"#;
        assert!(raw_calls_in_text(&body(odd)).unwrap().is_empty());
        // Of a repeated member the last one counts.
        let twice = format!(
            r#"[{{"channel":"/x","data":{data},"channel":"/v2/me/calls"}},{{"channel":"/v2/me/calls","data":{data},"data":5}}]"#
        );
        assert_eq!(raw_calls_in_text(&twice).unwrap().len(), 1);
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = raw_calls_in_text(r#"[{"channel":"/v2/me/calls",}]"#).unwrap_err();
        assert_eq!(err.to_string(), "key must be a string at line 1 column 28");
        assert!(err.is_syntax());
        let err = raw_calls_in_text(r#"[{"id":"1"}]"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing field `channel` at line 1 column 2"
        );
        assert!(!err.is_syntax());
        let err = raw_calls_in_text("[{\"channel\":5}]").unwrap_err();
        assert_eq!(
            (err.message(), err.column()),
            ("`channel` must be a string", 13)
        );
        let err = raw_calls_in_text("[1]").unwrap_err();
        assert_eq!(err.message(), "expected a Bayeux message object");
        let err = raw_calls_in_text("\"x\"").unwrap_err();
        assert_eq!(err.column(), 1);
        let err = raw_calls_in_text("[{\"channel\":\"/a\"}\n,\n{]").unwrap_err();
        assert_eq!((err.line(), err.column()), (3, 2));
        let err = raw_calls_in_text(r#"{"\ud800":1,"channel":"/a"}"#).unwrap_err();
        assert!(err.message().starts_with(r#"key "\ud800": "#), "{err}");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_an_error_even_outside_the_calls() {
        let body = b"[{\"channel\":\"/v2/me/calls\",\"data\":{\"messageType\":\"CallStateChangeMessage\",\"call\":{\"id\":\"c1\"}}},{\"channel\":\"/x\",\"k\":\"\xff\"}]";
        assert_eq!(
            crate::gws::calls_in_batch(body).map(|c| c.len()).ok(),
            Some(1)
        );
        let err = raw_calls_in_batch(body).unwrap_err();
        assert!(err.column() > 0, "{err}");
        // A syntax error before the bad byte is reported first.
        let err = raw_calls_in_batch(b"[{\"channel\" 1, \"\xff\"}]").unwrap_err();
        assert_eq!(err.message(), "expected `:`");
    }
}
