//! Device notifications: [`DeviceStateChangeMessage`] on `/v2/me/devices`.

use super::record::{record, typed_serde, RawJson, Typed};

record! {
    /// One device of a [`DeviceStateChangeMessage`].
    pub struct Device: serde {
        /// `id`.
        id: Option<String> = "id",
        /// `deviceState` (`Active`, `Inactive`, ...).
        device_state: Option<String> = "deviceState",
        /// `userState`, as received.
        user_state: Option<RawJson> = "userState",
        /// `phoneNumber`.
        phone_number: Option<String> = "phoneNumber",
        /// `e164Number`.
        e164_number: Option<String> = "e164Number",
    }
}

record! {
    /// `messageType: "DeviceStateChangeMessage"` on `/v2/me/devices`.
    pub struct DeviceStateChangeMessage {
        /// `devices`.
        devices: Option<Vec<Device>> = "devices",
    }
}

impl Typed for DeviceStateChangeMessage {
    const MESSAGE_TYPE: &'static str = "DeviceStateChangeMessage";
}
typed_serde!(DeviceStateChangeMessage);
