//! [`GwsNotification`]: a Bayeux message's `data` as a typed GWS notification.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::call::CallStateChangeMessage;
use super::device::DeviceStateChangeMessage;
use super::error_message::ErrorMessage;
use super::record::{RawJson, Typed};

/// A GWS notification: the `data` of a Bayeux data message, typed by its `messageType`.
/// Decode one with [`GwsNotification::from_data`] (the wire decoder says what it is; the
/// typed record is then read from the text).
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
        GwsNotification::from_data(&raw).map_err(serde::de::Error::custom)
    }
}
