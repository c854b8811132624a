//! Starting calls and moving them through their states (answer, hold, retrieve, hangup,
//! complete), each change published as a `StatusChange`.

use std::time::SystemTime;

use tokio::time::Instant;

use super::{NewCall, SimCall, SimCallError, SimCallState, SimCallType};
use crate::gws::{CallIdForm, GwsSim};

impl GwsSim {
    /// An inbound call from `from` to the agent's number `to` starts ringing for the default
    /// user; returns its id.
    pub fn ring_inbound(&self, from: &str, to: &str) -> String {
        let user = self.inner.config.default_user().to_owned();
        self.start(&user, NewCall::inbound(from, to))
    }

    /// Like [`ring_inbound`](Self::ring_inbound) for `user`'s calls; `None` (and no call)
    /// when `user` is not configured.
    pub fn ring_inbound_for(&self, user: &str, from: &str, to: &str) -> Option<String> {
        self.start_call(user, NewCall::inbound(from, to))
    }

    /// Starts `call` for `user`: inbound and internal calls ring, outbound ones dial.
    /// Returns its id; `None` (and no call) when `user` is not configured.
    pub fn start_call(&self, user: &str, call: NewCall) -> Option<String> {
        self.inner
            .config
            .knows(user)
            .then(|| self.start(user, call))
    }

    fn start(&self, user: &str, call: NewCall) -> String {
        let form = self.inner.config.call_ids;
        self.change(|state, config| {
            state.calls.rung += 1;
            let n = state.calls.rung;
            // The 15th call gets exactly the ids of a real capture.
            let conn_id = format!("{:016x}", 0x0071_0255_63e9_f000_u64.wrapping_add(n));
            let call_uuid = format!("00QEAG4KU4A5P78IG2DAHG5AES{}", base32hex(n, 6));
            let call = SimCall {
                id: match form {
                    CallIdForm::ConnId => conn_id.clone(),
                    CallIdForm::CallUuid => call_uuid.clone(),
                },
                call_uuid,
                owner: user.to_owned(),
                conn_id,
                state: match call.call_type {
                    SimCallType::Outbound => SimCallState::Dialing,
                    SimCallType::Inbound | SimCallType::Internal => SimCallState::Ringing,
                },
                call,
                user_data: Vec::new(),
                started: Instant::now(),
                started_at: SystemTime::now(),
            };
            let notes = call.notes("StatusChange", config);
            let id = call.id.clone();
            state.calls.list.push(call);
            Ok::<_, std::convert::Infallible>((id, notes))
        })
        .unwrap_or_else(|never| match never {})
    }

    /// Dialing → Established: the far end of an outbound call answered.
    pub fn remote_answer(&self, id: &str) -> Result<(), SimCallError> {
        self.transition(
            id,
            "RemoteAnswer",
            &[SimCallState::Dialing],
            SimCallState::Established,
        )
    }

    /// Ringing → Established.
    pub fn answer(&self, id: &str) -> Result<(), SimCallError> {
        self.transition(
            id,
            "Answer",
            &[SimCallState::Ringing],
            SimCallState::Established,
        )
    }

    /// Established → Held.
    pub fn hold(&self, id: &str) -> Result<(), SimCallError> {
        self.transition(id, "Hold", &[SimCallState::Established], SimCallState::Held)
    }

    /// Held → Established.
    pub fn retrieve(&self, id: &str) -> Result<(), SimCallError> {
        self.transition(
            id,
            "Retrieve",
            &[SimCallState::Held],
            SimCallState::Established,
        )
    }

    /// `Hangup`: Dialing, Ringing, Established or Held → Released.
    pub fn hangup(&self, id: &str) -> Result<(), SimCallError> {
        use SimCallState::*;
        self.transition(
            id,
            "Hangup",
            &[Dialing, Ringing, Established, Held],
            Released,
        )
    }

    /// Released → Completed: the wrap-up is over and the call is no longer listed. GWS
    /// documents no such operation; see the [module docs](crate::gws) for the assumption.
    pub fn complete(&self, id: &str) -> Result<(), SimCallError> {
        self.transition(
            id,
            "Complete",
            &[SimCallState::Released],
            SimCallState::Completed,
        )
    }

    fn transition(
        &self,
        id: &str,
        operation: &'static str,
        from: &[SimCallState],
        to: SimCallState,
    ) -> Result<(), SimCallError> {
        self.change(|state, config| {
            let call = state.calls.find(id)?;
            if !from.contains(&call.state) {
                return Err(SimCallError::InvalidState {
                    id: id.to_owned(),
                    state: call.state,
                    operation,
                });
            }
            call.state = to;
            let notes = call.notes("StatusChange", config);
            if to == SimCallState::Completed {
                state.calls.prune_completed();
            }
            Ok(((), notes))
        })
    }
}

/// `n` in base-32 "hex" digits (0-9, A-V), zero-padded to `width`, as GWS call UUIDs end.
pub(super) fn base32hex(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 32) as usize];
        n /= 32;
    }
    String::from_utf8_lossy(&out).into_owned()
}
