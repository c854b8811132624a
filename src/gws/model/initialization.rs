//! Workspace API v3's initialization messages, on `/workspace/v3/initialization`: how far
//! the server has come preparing the agent's workspace after the login.

use super::record::{open_enum, record, RawJson};

open_enum! {
    /// `state` of a v3 initialization message.
    pub enum InitializationState {
        /// Not started yet.
        NotStarted = "NotStarted",
        /// Under way.
        Executing = "Executing",
        /// Done: the workspace (and its notifications) is ready.
        Complete = "Complete",
        /// It failed: the session is of no use; log in again.
        Failed = "Failed",
    }
}

record! {
    /// `WorkspaceInitializationProgress` or `WorkspaceInitializationComplete` (read one with
    /// [`wire::initialization`](crate::gws::wire::initialization)).
    pub struct WorkspaceInitialization: serde {
        /// `messageType`: which of the two.
        message_type: Option<String> = "messageType",
        /// `state`.
        state: Option<InitializationState> = "state",
        /// `data` (the user and the configuration, once complete), as received.
        data: Option<RawJson> = "data",
    }
}
