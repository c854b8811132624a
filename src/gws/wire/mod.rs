//! The one decoder of GWS notifications, from the exact JSON text that came over the wire.
//!
//! serde_json reads the text once: the reply array, each message, its `data` and the call
//! are visited member by member, and every other value is taken as a borrowed `RawValue`
//! (checked, not built), so what is accepted is exactly what serde_json accepts, and a
//! syntax error is serde_json's, with its line and column. No typed tree is built and no
//! string is copied: a [`CallNotification`] borrows the call object's text and holds only
//! what the [`CallStore`](crate::gws::CallStore) reads (id, state, notification type and
//! where `userData` is). Of the call, only those fields are checked for shape (`id` a
//! non-empty string, `state` and `notificationType` strings or null, `userData` an object, a
//! v3 KVList or null); the rest is kept as text.
//!
//! | entry point | reads | yields |
//! |---|---|---|
//! | [`decode`] | one Bayeux message | a [`Notification`] |
//! | [`decode_data`] | a message's `data` text | a [`Notification`] |
//! | [`calls_in_batch`], [`calls_in_text`] | a whole reply body (replay's hot path) | its [`CallNotification`]s |
//!
//! The typed views ([`GwsNotification`](crate::gws::GwsNotification),
//! [`CallStateChangeMessage`](crate::gws::CallStateChangeMessage),
//! [`DeviceStateChangeMessage`](crate::gws::DeviceStateChangeMessage),
//! [`ErrorMessage`](crate::gws::ErrorMessage)) are read from the same text when asked for,
//! after this decoder has said what the text is.
//!
//! # Limits
//!
//! What a notification costs is in proportion to its size: the read is one pass (serde_json
//! skips a value in one loop, keeping a byte per open container, never recursing), the store
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
//! as a call only on its generation's channel: v2's `CallStateChangeMessage` on
//! [`CALLS_CHANNEL`], v3's `CallStateChanged` on
//! [`V3_VOICE_CHANNEL`] (wherever it is subscribed or
//! not: servers deliver there unasked). [`decode_data`], which has no channel, takes both.
//!
//! # Workspace API v3
//!
//! One decoder for both generations. A v3 `CallStateChanged` is a [`Notification::Call`]
//! exactly as v2's is: the call's text kept byte for byte, its `id` the store's key,
//! `notificationType` named as v2 names it ([`NotificationType::from_v3`]: `StateChange` is
//! `StatusChange`), and its `userData` a KVList (`[{"key","type","value"}]`) whose entries
//! are checked here (each an object with a string `key`) and read by the store and the model
//! into the same pairs v2's object gives. The depth limit counts the KVList's containers as
//! it counts an object's: a kvlist level is two (its array and the entry), so v3 user data
//! nests half as many kvlist levels within [`MAX_USER_DATA_DEPTH`].
//!
//! v3's other voice notifications map onto v2's where they mean the same thing, so a feed
//! surfaces them the same way: `DnStateChanged` (the agent's line and state) is a
//! [`Notification::Device`], `EventError` (an operation that failed) a
//! [`Notification::Error`]; each carries its `data` text as received, and
//! [`DeviceStateChangeMessage::read`](crate::gws::DeviceStateChangeMessage::read) and
//! [`ErrorMessage::read`](crate::gws::ErrorMessage::read) read either shape. Everything else
//! (`EventUserEvent`, `MonitoringStateChanged`, the `/workspace/v3/initialization` messages:
//! see [`initialization`]) is [`Notification::Other`].

#[cfg(test)]
mod accepts;
mod error;
pub(crate) mod json;
mod read;
mod typed;

use std::borrow::Cow;
use std::ops::Range;

pub use self::error::DecodeError;
use self::read::{Fault, Pass};
pub use self::typed::initialization;
use super::api::V3_VOICE_CHANNEL;
use super::model::MAX_USER_DATA_DEPTH;
use super::model::{CallState, NotificationType};
pub use crate::bayeux::Limit;
use crate::bayeux::Message;

/// The channel GWS publishes call notifications on.
pub const CALLS_CHANNEL: &str = "/v2/me/calls";
/// The channel GWS publishes device notifications on.
pub const DEVICES_CHANNEL: &str = "/v2/me/devices";
/// The `messageType` of a v3 call notification (on
/// [`V3_VOICE_CHANNEL`]): read as v2's
/// `CallStateChangeMessage` is, into [`Notification::Call`].
pub const V3_CALL_MESSAGE_TYPE: &str = "CallStateChanged";
/// The `messageType` of a v3 notification about the agent's DN (its agent state):
/// [`Notification::Device`], as v2's device notifications are.
pub const V3_DN_MESSAGE_TYPE: &str = "DnStateChanged";
/// The `messageType` of a v3 notification that an operation failed:
/// [`Notification::Error`], as v2's `ErrorMessage` is.
pub const V3_ERROR_MESSAGE_TYPE: &str = "EventError";

/// Which generation's call notifications a channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Calls {
    /// v2's `CallStateChangeMessage` ([`CALLS_CHANNEL`]).
    V2,
    /// v3's `CallStateChanged` ([`V3_VOICE_CHANNEL`]).
    V3,
    /// Either ([`decode_data`]: the channel is not known).
    Both,
    /// Neither.
    None,
}

impl Calls {
    pub(crate) fn of(channel: &str) -> Calls {
        match channel {
            CALLS_CHANNEL => Calls::V2,
            V3_VOICE_CHANNEL => Calls::V3,
            _ => Calls::None,
        }
    }

    pub(crate) fn v2(self) -> bool {
        matches!(self, Calls::V2 | Calls::Both)
    }

    pub(crate) fn v3(self) -> bool {
        matches!(self, Calls::V3 | Calls::Both)
    }
}

/// What a message's `data` is, borrowed from its text.
#[derive(Clone, Debug, PartialEq)]
pub enum Notification<'a> {
    /// A call notification: v2's `CallStateChangeMessage` (on [`CALLS_CHANNEL`], when read
    /// from a message) or v3's `CallStateChanged` (on
    /// [`V3_VOICE_CHANNEL`]).
    Call(CallNotification<'a>),
    /// A `DeviceStateChangeMessage`, or v3's `DnStateChanged`: the `data` object's text.
    Device(&'a str),
    /// A GWS `ErrorMessage`, or v3's `EventError`: the `data` object's text.
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

type Reader<'a> = serde_json::Deserializer<serde_json::de::StrRead<'a>>;

/// Runs `read` over `text` with serde_json, turning what stopped it into a [`DecodeError`]:
/// the [`Fault`] a visitor recorded, else serde_json's own error. `read` checks for trailing
/// characters itself, before it judges shapes: a syntax error anywhere in the text is
/// reported as such.
fn read_all<'a, T>(
    text: &'a str,
    read: impl FnOnce(&mut Pass<'a>, &mut Reader<'a>) -> Result<T, ReadError>,
) -> Result<(T, Pass<'a>), DecodeError> {
    let mut pass = Pass::new(text);
    let mut de = serde_json::Deserializer::from_str(text);
    match read(&mut pass, &mut de) {
        Ok(t) => Ok((t, pass)),
        Err(ReadError::Fault(fault)) => Err(DecodeError::from_fault(text.as_bytes(), fault)),
        Err(ReadError::Json(e)) => Err(match pass.fault.take() {
            Some(fault) => DecodeError::from_fault(text.as_bytes(), fault),
            // A syntax error. serde_json words some of them differently when it reads into
            // a visitor ("trailing comma") than when it only checks ("expected value"), at
            // the same place: the words are those of the check, read again on this cold path.
            None => match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(checked) => DecodeError::from(&checked),
                Ok(_) => DecodeError::from(&e),
            },
        }),
    }
}

/// Why a read stopped: serde_json's error (behind which a visitor's [`Fault`] may be
/// recorded), or a fault found after serde_json was done.
enum ReadError {
    Json(serde_json::Error),
    Fault(Fault),
}

impl From<serde_json::Error> for ReadError {
    fn from(e: serde_json::Error) -> Self {
        ReadError::Json(e)
    }
}

impl From<Fault> for ReadError {
    fn from(f: Fault) -> Self {
        ReadError::Fault(f)
    }
}

/// What a Bayeux data message carries. A message without `data` is [`Notification::Other`].
pub fn decode(msg: &Message) -> Result<Notification<'_>, DecodeError> {
    match msg.data.as_deref() {
        Some(data) => read_data(data.get(), Calls::of(&msg.channel)),
        None => Ok(Notification::Other),
    }
}

/// What a message's `data` text is, whatever channel it came on.
pub fn decode_data(data: &str) -> Result<Notification<'_>, DecodeError> {
    read_data(data, Calls::Both)
}

fn read_data(data: &str, calls: Calls) -> Result<Notification<'_>, DecodeError> {
    read_all(data, |pass, de| {
        let found = pass.data(de)?;
        de.end()?;
        Ok(found.into_notification(pass, calls)?)
    })
    .map(|(n, _)| n)
}

/// A call object's text (the whole of `text`), its `userData` nesting at most `max_depth`
/// levels.
fn read_call(
    text: &str,
    notification_type: Option<NotificationType>,
    max_depth: usize,
) -> Result<CallNotification<'_>, DecodeError> {
    read_all(text, |pass, de| {
        let start = json::next_value(text, 0);
        if text.as_bytes().get(start) != Some(&b'{') {
            return Err(Fault::value(start, "the call is not a JSON object").into());
        }
        let fields = pass.call(de, start, max_depth)?;
        de.end()?;
        Ok(fields.check(notification_type, pass)?)
    })
    .map(|(c, _)| c)
}

impl<'a> CallNotification<'a> {
    /// Reads the text of one call object (as `GET /api/v2/me/calls` or v3's
    /// `current-session` lists it, or as a typed [`Call`](crate::gws::Call) encodes), with
    /// the given notification type: how a call that did not come in a notification enters
    /// the store. Either generation's call reads, told apart by its `userData`'s form.
    pub fn from_call_text(
        call: &'a str,
        notification_type: Option<NotificationType>,
    ) -> Result<Self, DecodeError> {
        read_call(call, notification_type, MAX_USER_DATA_DEPTH)
    }

    /// Like [`CallNotification::from_call_text`], for a call the server listed (a catch-up
    /// or a heal): a `userData` over [`MAX_USER_DATA_DEPTH`] does not keep the call out. The
    /// store then holds the call exactly as listed, but its user data is not read: changes
    /// say nothing about it until a notification within the limits arrives (which reports
    /// its pairs as added).
    pub(crate) fn from_listed_call_text(
        call: &'a str,
        notification_type: Option<NotificationType>,
    ) -> Result<Self, DecodeError> {
        match CallNotification::from_call_text(call, notification_type.clone()) {
            Err(e) if e.limit().is_some() => {
                let mut read = read_call(call, notification_type, usize::MAX)?;
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

    /// The call's `userData` text, exactly as received (v2's object or v3's KVList); `None`
    /// when absent or null.
    pub fn user_data_text(&self) -> Option<&'a str> {
        self.call.get(self.user_data.clone()?)
    }

    /// Where `userData` is in [`CallNotification::call_text`].
    pub(crate) fn user_data_range(&self) -> Option<Range<usize>> {
        self.user_data.clone()
    }
}

/// Reads a Bayeux reply body (an array of messages, or one message object) in one pass,
/// keeping only the call notifications on their generation's channel ([`CALLS_CHANNEL`],
/// [`V3_VOICE_CHANNEL`]), borrowed from `body`; other
/// messages are checked for JSON syntax and a `channel` only. A body that is not UTF-8 is an
/// error, even where the bad bytes are in a message that is not a call.
pub fn calls_in_batch(body: &[u8]) -> Result<Vec<CallNotification<'_>>, DecodeError> {
    match std::str::from_utf8(body) {
        Ok(text) => calls_in_text(text),
        // The calls are slices of the body, so it must be text: report where it is not
        // (a syntax error first if there is one, as the parser meets it).
        Err(e) => {
            let first_fault = serde_json::from_slice::<serde::de::IgnoredAny>(body)
                .and_then(|_| serde_json::from_slice::<serde_json::Value>(body));
            Err(match first_fault {
                Err(e) => DecodeError::from(&e),
                Ok(_) => DecodeError::from_fault(
                    body,
                    Fault {
                        syntax: true,
                        ..Fault::value(e.valid_up_to(), "invalid UTF-8")
                    },
                ),
            })
        }
    }
}

/// Like [`calls_in_batch`], for a body already known to be text (as
/// [`crate::fixture::Reader`] lines are): skips checking the UTF-8 again.
pub fn calls_in_text(body: &str) -> Result<Vec<CallNotification<'_>>, DecodeError> {
    let ((), pass) = read_all(body, |pass, de| {
        pass.batch(de)?;
        Ok(de.end()?)
    })?;
    Ok(pass.calls)
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
        // 20 000 levels on a 256 KiB stack: refused with the limit, nothing recursed.
        let deep = call(&nested(20_000));
        let refused = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || calls_in_text(&deep).map(|c| c.len()).map_err(|e| e.limit()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(refused, Err(Some(Limit::UserDataDepth)));
        // A syntax error is not a limit error. (Inside over-deep user data, serde_json's
        // check of the value comes before its depth is counted: the syntax error is found.)
        assert!(calls_in_text("[1,").unwrap_err().limit().is_none());
    }
}
