//! A call to start: who called whom, and which party is the agent.

/// Who called whom, as GWS's `callType` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimCallType {
    /// From outside to the agent; starts `Ringing`.
    Inbound,
    /// From the agent to outside; starts `Dialing`.
    Outbound,
    /// Between two internal numbers; starts `Ringing` at the agent.
    Internal,
}

impl SimCallType {
    /// The type as GWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "Inbound",
            Self::Outbound => "Outbound",
            Self::Internal => "Internal",
        }
    }
}

/// A call to start with [`GwsSim::start_call`](crate::gws::GwsSim::start_call).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewCall {
    /// Inbound, outbound or internal.
    pub call_type: SimCallType,
    /// The calling number (`ani`): the caller, or the agent's number for an outbound call.
    pub from: String,
    /// The called number (`dnis`): the agent's number, or the dialled one for an outbound call.
    pub to: String,
}

impl NewCall {
    /// A call from outside (`from`) to the agent's number `to`.
    pub fn inbound(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self::new(SimCallType::Inbound, from, to)
    }

    /// A call from a colleague's number `from` to the agent's number `to`.
    pub fn internal(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self::new(SimCallType::Internal, from, to)
    }

    /// A call the agent (number `from`) dials to `to`.
    pub fn outbound(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self::new(SimCallType::Outbound, from, to)
    }

    pub(super) fn new(
        call_type: SimCallType,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        NewCall {
            call_type,
            from: from.into(),
            to: to.into(),
        }
    }

    /// The agent's own number in this call.
    pub(super) fn agent_number(&self) -> &str {
        match self.call_type {
            SimCallType::Outbound => &self.from,
            SimCallType::Inbound | SimCallType::Internal => &self.to,
        }
    }

    /// The other party's number.
    pub(super) fn other_party(&self) -> &str {
        match self.call_type {
            SimCallType::Outbound => &self.to,
            SimCallType::Inbound | SimCallType::Internal => &self.from,
        }
    }
}
