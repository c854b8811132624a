//! Genesys Web Services: the typed model, the one wire decoder, the call store, the REST
//! session and the call feed.
//!
//! | module | what it is |
//! |---|---|
//! | [`model`] | [`CallStateChangeMessage`], [`Call`], devices, errors, [`UserData`], [`UserDataDiff`] |
//! | [`wire`] | the one decoder: [`wire::decode`] → [`Notification`], [`CallNotification`] |
//! | [`store`] | [`CallStore`]: the latest snapshot per call, emitting [`CallChange`]s |
//! | [`rest`] | [`rest::GwsSession`]: login, CSRF, current calls, call operations |
//! | [`feed`] | [`CallFeed`]: one agent's calls, kept right across re-handshakes and re-logins |
//!
//! What a service names is re-exported here, so one `use` does:
//! `use gws_cometd::gws::{CallEvent, CallFeed, Credentials, FeedEvent};` is the documented
//! path (the types are defined in the modules above: [`Credentials`] in [`rest`],
//! [`CallView`] in [`feed`], [`Value`] in [`model`]).
//!
//! Decoding works from the exact JSON text of `data` ([`crate::bayeux::Message::data`]), so
//! duplicate user-data keys, integers beyond 64 bits and unknown fields all survive; encoding
//! writes them back. Every enum has an `Other(String)` fallback.
//!
//! ```
//! use std::time::Instant;
//! use gws_cometd::bayeux::Message;
//! use gws_cometd::gws::wire::{self, Notification};
//! use gws_cometd::gws::{CallStateChangeMessage, CallStore, NotificationType};
//!
//! let msg: Message = serde_json::from_str(r#"{"channel":"/v2/me/calls","data":{
//!     "messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged",
//!     "call":{"id":"c1","state":"Established","userData":{"A":"1","A":"2"}}}}"#).unwrap();
//!
//! // What the store reads, borrowed from the message...
//! let Notification::Call(call) = wire::decode(&msg).unwrap() else { unreachable!() };
//! let mut store = CallStore::new();
//! let change = store.apply(&call, Instant::now()).unwrap().change();
//! assert_eq!(change.call_id, "c1");
//!
//! // ...and the typed view, read from the same text when asked for.
//! let typed = CallStateChangeMessage::from_message(&msg).unwrap().unwrap();
//! assert_eq!(typed.notification_type, Some(NotificationType::AttachedDataChanged));
//! assert_eq!(typed.call.user_data().get_all("A").count(), 2);
//! ```

pub mod api;
pub mod feed;
pub mod model;
pub mod rest;
pub mod store;
pub mod wire;

pub use api::Api;
pub use feed::{CallEvent, CallFeed, CallFeedBuilder, CallView, Delivery, FeedEvent};
pub use model::{
    Call, CallState, CallStateChangeMessage, CallType, DeviceStateChangeMessage, ErrorMessage,
    GwsNotification, NotificationType, Number, Participant, RawJson, UserData, UserDataDiff, Value,
    MAX_USER_DATA_DEPTH,
};
// What a service that follows calls names, beside the feed; defined in `rest`.
pub use rest::{Credentials, GwsSession, RestError};
pub use store::{Applied, CallChange, CallStore, ChangeOrigin, StateTransition};
pub use wire::{
    CallNotification, DecodeError, Limit, Notification, CALLS_CHANNEL, DEVICES_CHANNEL,
};
