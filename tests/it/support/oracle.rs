//! A second, deliberately plain decoder of GWS call notifications, for differential tests
//! and fuzzing: serde_json reads the body into `Message`s and each `data` into ordered
//! (key, raw value) pairs; `data` is a call notification when its first `messageType` is the
//! string `CallStateChangeMessage` and the message is on `/v2/me/calls` (or v3's
//! `CallStateChanged` on `/workspace/v3/voice`); the last `call`
//! member is the call; the typed notification is read with serde. Slow and plainly right:
//! the library's decoder must agree with it.
//!
//! Include it with `#[path = "support/oracle.rs"] mod oracle;`.

use std::fmt;

use gws_cometd::bayeux::Message;
use gws_cometd::gws::{CallStateChangeMessage, NotificationType};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A call notification as the oracle reads it.
#[derive(Debug)]
pub struct OracleCall {
    /// The typed notification.
    pub message: CallStateChangeMessage,
    /// The text of the (last) `call` member, exactly as in the input.
    pub call_text: String,
}

/// A JSON object as its members in order, duplicates kept, values as raw text.
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
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    pairs.push((key, map.next_value()?));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// The call notifications of a reply body (an array of messages or one message), or why the
/// body is not one the oracle can judge.
pub fn calls(body: &[u8]) -> Result<Vec<OracleCall>, String> {
    let batch = Message::parse_batch(body).map_err(|e| format!("not a Bayeux batch: {e}"))?;
    let mut out = Vec::new();
    for m in &batch {
        if let Some(call) = call(m)? {
            out.push(call);
        }
    }
    Ok(out)
}

/// The call notification one message carries, if any: v2's `CallStateChangeMessage` on
/// `/v2/me/calls`, or v3's `CallStateChanged` on `/workspace/v3/voice` (read as v2's, its
/// `notificationType` named as v2 names it).
pub fn call(m: &Message) -> Result<Option<OracleCall>, String> {
    let expected = match m.channel.as_str() {
        "/v2/me/calls" => "CallStateChangeMessage",
        "/workspace/v3/voice" => "CallStateChanged",
        _ => return Ok(None),
    };
    let Some(data) = m.data.as_deref() else {
        return Ok(None);
    };
    if !data.get().starts_with('{') {
        return Ok(None);
    }
    let Pairs(pairs) = serde_json::from_str(data.get()).map_err(|e| format!("data: {e}"))?;
    let message_type = pairs
        .iter()
        .find(|(k, _)| k == "messageType")
        .and_then(|(_, v)| serde_json::from_str::<String>(v.get()).ok());
    if message_type.as_deref() != Some(expected) {
        return Ok(None);
    }
    let mut message = serde_json::from_str::<CallStateChangeMessage>(data.get())
        .map_err(|e| format!("call notification: {e}"))?;
    if expected == "CallStateChanged" {
        message.notification_type = message
            .notification_type
            .map(|n| NotificationType::from_v3(n.as_str()));
    }
    let call_text = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "call")
        .map(|(_, v)| v.get().to_owned())
        .ok_or("no call")?;
    Ok(Some(OracleCall { message, call_text }))
}
