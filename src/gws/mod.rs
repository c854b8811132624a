//! The typed GWS model and the call-state reducer.
//!
//! | module | purpose |
//! |---|---|
//! | [`call`] | [`CallStateChangeMessage`], [`Call`] and their enums, [`DeviceStateChangeMessage`], [`ErrorMessage`] |
//! | [`notification`] | [`GwsNotification`]: a Bayeux message's `data` dispatched on `messageType` |
//! | [`user_data`] | [`UserData`]: ordered multimap keeping duplicate keys and exact numbers |
//! | [`diff`] | [`UserDataDiff`]: what changed in the user data between two snapshots |
//! | [`raw_call`] | [`RawCallMessage`]: a call notification read in one pass, its call text kept as received |
//! | [`api`] | [`api::GwsSession`]: GWS REST login, CSRF, user-data operations |
//! | [`feed`] | [`CallFeed`]: one agent's calls, kept right across re-handshakes and re-logins |
//! | [`store`] | [`CallStore`]: the latest snapshot per call, emitting [`CallChange`]s |
//!
//! Decoding works from the exact JSON text of `data` ([`crate::bayeux::Message::data`]), so
//! duplicate user-data keys, integers beyond 64 bits and unknown fields all survive; encoding
//! writes them back. Every enum has an `Other(String)` fallback.
//!
//! ```
//! use gws_cometd::bayeux::Message;
//! use gws_cometd::gws::{CallStateChangeMessage, CallStore, NotificationType};
//!
//! let msg: Message = serde_json::from_str(r#"{"channel":"/v2/me/calls","data":{
//!     "messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged",
//!     "call":{"id":"c1","state":"Established","userData":{"A":"1","A":"2"}}}}"#).unwrap();
//! let call_msg = CallStateChangeMessage::from_message(&msg).unwrap().unwrap();
//! assert_eq!(call_msg.notification_type, Some(NotificationType::AttachedDataChanged));
//! assert_eq!(call_msg.call.user_data().get_all("A").count(), 2);
//!
//! let mut store = CallStore::new();
//! let change = store.apply_owned(call_msg).unwrap();
//! assert_eq!(change.call_id, "c1");
//! ```

pub mod api;
pub mod call;
pub mod diff;
pub mod feed;
pub mod notification;
mod ordered;
mod raw;
pub mod raw_call;
mod scan;
pub mod store;
pub mod user_data;

pub use call::{
    Call, CallDuration, CallState, CallStateChangeMessage, CallType, Capability, Device,
    DeviceStateChangeMessage, ErrorMessage, Mute, NotificationType, Participant, ParticipantInfo,
    RecordingState,
};
pub use diff::{ChangedPair, Pair, UserDataDiff};
pub use feed::{CallFeed, CallFeedBuilder, FeedEvent};
pub use notification::{calls_in_batch, GwsNotification, CALLS_CHANNEL, DEVICES_CHANNEL};
pub use raw::RawJson;
pub use raw_call::{raw_calls_in_batch, raw_calls_in_text, DecodeError, RawCallMessage};
pub use store::{CallChange, CallStore, Changes, MessageItem, Snapshot, StateTransition};
pub use user_data::{Number, UserData, Value};
