//! Typed views, read from the text once the decoder has said what it is.
//!
//! Reading is lenient where the decoder was not asked to be strict: a known field whose
//! value has an unexpected shape (say `"capabilities":5`) is kept in the record's `other`,
//! as received, instead of failing the whole notification.

use serde_json::value::RawValue;

use super::{decode, decode_data, DecodeError, Notification};
use crate::bayeux::Message;
use crate::gws::model::record::{lenient_record, Record};
use crate::gws::model::{
    Call, CallStateChangeMessage, DeviceStateChangeMessage, ErrorMessage, GwsNotification, RawJson,
};

const MESSAGE_TYPE: &str = "messageType";

impl GwsNotification {
    /// Decodes a message's `data` text. `data` that is not an object, or has another
    /// `messageType`, becomes [`GwsNotification::Other`] with the exact text. Errors only
    /// when a call notification lacks what the store needs (see [`super`]).
    pub fn from_data(data: &RawValue) -> Result<GwsNotification, DecodeError> {
        Ok(match decode_data(data.get())? {
            Notification::Call(_) => {
                GwsNotification::CallStateChange(CallStateChangeMessage::read(data.get()))
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
    pub fn read(data: &str) -> DeviceStateChangeMessage {
        read(data)
    }
}

impl ErrorMessage {
    /// Reads the `data` text of an error notification (as [`Notification::Error`] gives it).
    pub fn read(data: &str) -> ErrorMessage {
        read(data)
    }
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
            (Notification::Call(_), Some(data)) => Some(CallStateChangeMessage::read(data.get())),
            _ => None,
        })
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
