//! The state of a simulated call, the capabilities GWS lists for it, and whether it takes
//! user data.

use std::fmt;

/// The state of a simulated call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimCallState {
    /// An outbound call the far end has not answered yet.
    Dialing,
    /// Alerting the agent.
    Ringing,
    /// Answered.
    Established,
    /// On hold.
    Held,
    /// Hung up, in after-call work.
    Released,
    /// Done; no longer listed.
    Completed,
}

impl SimCallState {
    /// The state as GWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dialing => "Dialing",
            Self::Ringing => "Ringing",
            Self::Established => "Established",
            Self::Held => "Held",
            Self::Released => "Released",
            Self::Completed => "Completed",
        }
    }

    /// The operations GWS lists for the state, in the order its documented samples show
    /// them (Dialing, Established, Held, Released). No documented sample shows a ringing
    /// call; its list is the operations the simulator accepts there.
    pub(super) fn capabilities(self) -> &'static str {
        match self {
            Self::Dialing => {
                r#"["SendDtmf","DeleteUserData","AttachUserData","DeleteUserDataPair","Hangup","UpdateUserData"]"#
            }
            Self::Ringing => {
                r#"["Answer","Hangup","AttachUserData","DeleteUserData","DeleteUserDataPair","UpdateUserData"]"#
            }
            Self::Established => {
                r#"["SingleStepTransfer","InitiateConference","Hold","SingleStepConference","InitiateTransfer","SendDtmf","DeleteUserData","AttachUserData","DeleteUserDataPair","Hangup","UpdateUserData"]"#
            }
            Self::Held => {
                r#"["SingleStepTransfer","InitiateConference","Retrieve","SingleStepConference","InitiateTransfer","DeleteUserData","AttachUserData","DeleteUserDataPair","Hangup","UpdateUserData"]"#
            }
            Self::Released | Self::Completed => "[]",
        }
    }

    /// Whether user-data operations are allowed: while the call is up, as its capabilities
    /// say.
    pub(super) fn takes_user_data(self) -> bool {
        matches!(
            self,
            Self::Dialing | Self::Ringing | Self::Established | Self::Held
        )
    }
}

impl fmt::Display for SimCallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
