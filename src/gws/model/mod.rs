//! The typed GWS model: calls, devices, errors, user data and the user-data diff.
//!
//! Every type keeps the fields it does not know in `other`, in order and exactly as
//! received, and every enum keeps values it does not know in `Other`, so decode → encode
//! loses nothing a consumer could see. Decoding from the wire goes through
//! [`crate::gws::wire`]; these types are what it hands out.
//!
//! | module | what it is |
//! |---|---|
//! | `call` | [`CallStateChangeMessage`], [`Call`] and their enums |
//! | `device` | [`DeviceStateChangeMessage`], [`Device`] |
//! | `error_message` | [`ErrorMessage`] |
//! | `initialization` | [`WorkspaceInitialization`]: v3's initialization messages |
//! | `notification` | [`GwsNotification`]: any of them, or other `data` as received |
//! | `user_data` | [`UserData`]: an ordered multimap keeping duplicate keys and exact numbers |
//! | `kvlist` | v3's user data, a KVList, read into the same pairs |
//! | `diff` | [`UserDataDiff`]: what changed in the user data between two snapshots |
//! | `record` | [`RawJson`] and the macros behind the lossless records and open enums |

mod call;
mod device;
pub(crate) mod diff;
mod error_message;
mod initialization;
pub(crate) mod kvlist;
mod notification;
pub(crate) mod record;
pub(crate) mod tokens;
mod user_data;

pub use call::{
    Call, CallDuration, CallState, CallStateChangeMessage, CallType, Capability, Mute,
    NotificationType, Participant, ParticipantInfo, RecordingState,
};
pub use device::{Device, DeviceStateChangeMessage};
pub use diff::{ChangedPair, Pair, UserDataDiff};
pub use error_message::ErrorMessage;
pub use initialization::{InitializationState, WorkspaceInitialization};
pub use notification::GwsNotification;
pub use record::RawJson;
pub use user_data::{Number, UserData, Value, MAX_USER_DATA_DEPTH};
