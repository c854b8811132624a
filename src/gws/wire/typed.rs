//! Typed views, read from the text once the decoder has said what it is.
//!
//! Reading is lenient where the decoder was not asked to be strict: a known field whose
//! value has an unexpected shape (say `"capabilities":5`) is kept in the record's `other`,
//! as received, instead of failing the whole notification.

use serde_json::value::RawValue;

use super::{decode, decode_data, DecodeError, Notification};
use crate::bayeux::Message;
use crate::gws::api::V3_INITIALIZATION_CHANNEL;
use crate::gws::model::record::{lenient_record, Record};
use crate::gws::model::{
    Call, CallStateChangeMessage, Device, DeviceStateChangeMessage, ErrorMessage, GwsNotification,
    RawJson, WorkspaceInitialization,
};

const MESSAGE_TYPE: &str = "messageType";

impl GwsNotification {
    /// Decodes a message's `data` text. `data` that is not an object, or has another
    /// `messageType`, becomes [`GwsNotification::Other`] with the exact text. Errors only
    /// when a call notification lacks what the store needs (see [`super`]).
    pub fn from_data(data: &RawValue) -> Result<GwsNotification, DecodeError> {
        Ok(match decode_data(data.get())? {
            Notification::Call(call) => {
                GwsNotification::CallStateChange(CallStateChangeMessage::read_as(data.get(), &call))
            }
            Notification::Device(text) => GwsNotification::DeviceStateChange(read(text)),
            Notification::Error(text) => GwsNotification::Error(read(text)),
            Notification::Other => GwsNotification::Other(RawJson::from(data)),
        })
    }

    /// Decodes a message's `data`; `None` when it has none.
    pub fn from_message(msg: &Message) -> Option<Result<GwsNotification, DecodeError>> {
        msg.data.as_deref().map(GwsNotification::from_data)
    }
}

impl DeviceStateChangeMessage {
    /// Reads the `data` text of a device notification (as [`Notification::Device`] gives it).
    /// v3's `DnStateChanged` reads as one device: its `dn` object, whose `number` is the
    /// device's `phoneNumber` (the rest of it, `agentState` and all, kept in the device's
    /// `other`); the `dn` member itself stays in the message's `other`, as received.
    pub fn read(data: &str) -> DeviceStateChangeMessage {
        let mut m: DeviceStateChangeMessage = read(data);
        if m.devices.is_none() {
            if let Some((_, dn)) = m.other.iter().rev().find(|(k, _)| k == "dn") {
                if let Some(mut device) = lenient_record::<Device>(dn.get(), &[]) {
                    if let Some(at) = device.other.iter().position(|(k, _)| k == "number") {
                        let number = serde_json::from_str::<String>(device.other[at].1.get());
                        if let (None, Ok(number)) = (&device.phone_number, number) {
                            device.phone_number = Some(number);
                            device.other.remove(at);
                        }
                    }
                    m.devices = Some(vec![device]);
                }
            }
        }
        m
    }
}

impl ErrorMessage {
    /// Reads the `data` text of an error notification (as [`Notification::Error`] gives it).
    /// v3's `EventError`, which nests them in an `error` object, gives its `errorMessage`
    /// and `errorCode` the same way (the `error` member stays in `other`, as received).
    pub fn read(data: &str) -> ErrorMessage {
        let mut m: ErrorMessage = read(data);
        if m.error_message.is_none() && m.error_code.is_none() {
            if let Some((_, error)) = m.other.iter().rev().find(|(k, _)| k == "error") {
                if let Some(inner) = lenient_record::<ErrorMessage>(error.get(), &[]) {
                    m.error_message = inner.error_message;
                    m.error_code = inner.error_code;
                }
            }
        }
        m
    }
}

/// What a message on [`V3_INITIALIZATION_CHANNEL`] says of the workspace's initialization:
/// `None` for any other message (another channel, no `data`, another `messageType`). The
/// decoder has nothing to check in it, so it is read here, leniently: a `state` of an odd
/// shape is kept in `other`.
pub fn initialization(msg: &Message) -> Option<WorkspaceInitialization> {
    if msg.channel != V3_INITIALIZATION_CHANNEL {
        return None;
    }
    let data = msg.data.as_deref()?.get();
    let init: WorkspaceInitialization = lenient_record(data, &[])?;
    matches!(
        init.message_type.as_deref(),
        Some("WorkspaceInitializationProgress" | "WorkspaceInitializationComplete")
    )
    .then_some(init)
}

/// A notification record from text the decoder has checked, `messageType` left out.
fn read<R: Record>(text: &str) -> R {
    lenient_record(text, &[MESSAGE_TYPE]).unwrap_or_default()
}

impl CallStateChangeMessage {
    /// The call notification a Bayeux message carries: `Ok(None)` unless the message is on
    /// [`CALLS_CHANNEL`](super::CALLS_CHANNEL) with `messageType` `CallStateChangeMessage`.
    pub fn from_message(msg: &Message) -> Result<Option<CallStateChangeMessage>, DecodeError> {
        Ok(match (decode(msg)?, msg.data.as_deref()) {
            (Notification::Call(call), Some(data)) => {
                Some(CallStateChangeMessage::read_as(data.get(), &call))
            }
            _ => None,
        })
    }

    /// Reads the `data` text of the call notification the decoder read as `call`: a v3
    /// `CallStateChanged` too, as v2's message (its `notificationType` named as the decoder
    /// names it, v3's `StateChange` as `StatusChange`; `operationId` typed).
    fn read_as(data: &str, call: &super::CallNotification<'_>) -> CallStateChangeMessage {
        let mut m = CallStateChangeMessage::read(data);
        m.notification_type = call.notification_type().cloned();
        m
    }

    /// Reads the `data` text of a call notification the decoder has checked.
    pub(crate) fn read(data: &str) -> CallStateChangeMessage {
        if let Ok(m) = serde_json::from_str::<CallStateChangeMessage>(data) {
            return m;
        }
        let mut m = CallStateChangeMessage::default();
        let _ = super::json::for_each_member(data, |key, range| {
            let Some(value) = data.get(range) else {
                return;
            };
            match key.as_ref() {
                MESSAGE_TYPE => {}
                "call" => m.call = Call::read(value),
                _ => {
                    let mut de = serde_json::Deserializer::from_str(value);
                    if m.take_field(key.clone(), &mut de).is_err() {
                        if let Ok(raw) = RawJson::from_text(value) {
                            m.push_other(key.into_owned(), raw);
                        }
                    }
                }
            }
        });
        m
    }

    /// Its call object as JSON text: with
    /// [`CallNotification::from_call_text`](super::CallNotification::from_call_text), how a typed notification enters the
    /// [`CallStore`](crate::gws::CallStore).
    pub fn call_text(&self) -> String {
        // A call always serializes: every field is a string, number, bool or valid raw JSON.
        serde_json::to_string(&self.call).unwrap_or_default()
    }
}

impl Call {
    /// Reads a call object the decoder has checked (or the store kept).
    pub(crate) fn read(text: &str) -> Call {
        serde_json::from_str::<Call>(text)
            .ok()
            .or_else(|| lenient_record(text, &[]))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::CallState;

    #[test]
    fn a_known_field_of_an_odd_shape_is_kept_as_received() {
        let data = r#"{"messageType":"CallStateChangeMessage","call":{"id":"c1","state":"Held","capabilities":5},"phoneNumber":7}"#;
        let m = CallStateChangeMessage::read(data);
        assert_eq!(m.call.id, "c1");
        assert_eq!(m.call.state, Some(CallState::Held));
        assert_eq!(m.call.capabilities, None);
        assert_eq!(m.call.other[0].0, "capabilities");
        assert_eq!(m.call.other[0].1.get(), "5");
        assert_eq!(m.other[0].0, "phoneNumber");
        assert!(m.other.iter().all(|(k, _)| k != MESSAGE_TYPE));
    }
}
