//! The simulated calls: states and their capabilities, the user-data operations, and the
//! calls' JSON as notifications and REST replies show it.

use std::fmt::{self, Write as _};
use tokio::time::Instant;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::agent::device_id;
use super::{CallIdForm, GwsSim, GwsSimConfig, Note, ParticipantsForm};
use crate::json::quote;

/// How many completed calls are remembered (so late operations on them answer
/// `statusCode` 2 rather than 6); older ones are forgotten.
const COMPLETED_CALLS_KEPT: usize = 100;

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
    fn capabilities(self) -> &'static str {
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
    fn takes_user_data(self) -> bool {
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

/// A call to start with [`GwsSim::start_call`].
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

    fn new(call_type: SimCallType, from: impl Into<String>, to: impl Into<String>) -> Self {
        NewCall {
            call_type,
            from: from.into(),
            to: to.into(),
        }
    }

    /// The agent's own number in this call.
    fn agent_number(&self) -> &str {
        match self.call_type {
            SimCallType::Outbound => &self.from,
            SimCallType::Inbound | SimCallType::Internal => &self.to,
        }
    }

    /// The other party's number.
    fn other_party(&self) -> &str {
        match self.call_type {
            SimCallType::Outbound => &self.to,
            SimCallType::Inbound | SimCallType::Internal => &self.from,
        }
    }
}

/// Why a call operation of the simulator was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimCallError {
    /// No call has this id.
    #[error("call {0} not found")]
    NotFound(String),
    /// The call's state does not allow the operation.
    #[error("call {id} is {state}: {operation} is not allowed")]
    InvalidState {
        /// The call.
        id: String,
        /// Its state.
        state: SimCallState,
        /// The refused operation.
        operation: &'static str,
    },
}

/// A pair list as received: keys in order, duplicates kept, values as exact JSON text.
pub type RawPairs = Vec<(String, Box<RawValue>)>;

/// A JSON object read as ordered pairs: duplicate keys kept, values as exact text.
pub(super) struct Pairs(pub RawPairs);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Box<RawValue> = map.next_value()?;
                    pairs.push((key, value));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// How a user-data operation changes the pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UserDataOp {
    Attach,
    Update,
    DeletePair,
    DeleteAll,
}

impl UserDataOp {
    fn name(self) -> &'static str {
        match self {
            Self::Attach => "AttachUserData",
            Self::Update => "UpdateUserData",
            Self::DeletePair => "DeleteUserDataPair",
            Self::DeleteAll => "DeleteUserData",
        }
    }
}

struct SimCall {
    id: String,
    call_uuid: String,
    /// The user whose calls list shows it and who gets its notifications.
    owner: String,
    conn_id: String,
    state: SimCallState,
    call: NewCall,
    user_data: RawPairs,
    started: Instant,
}

/// Every call the simulator knows, oldest first.
#[derive(Default)]
pub(super) struct Calls {
    list: Vec<SimCall>,
    rung: u64,
}

impl Calls {
    fn find(&mut self, id: &str) -> Result<&mut SimCall, SimCallError> {
        self.list
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| SimCallError::NotFound(id.to_owned()))
    }

    fn prune_completed(&mut self) {
        let completed = self
            .list
            .iter()
            .filter(|c| c.state == SimCallState::Completed)
            .count();
        let mut excess = completed.saturating_sub(COMPLETED_CALLS_KEPT);
        self.list.retain(|c| {
            if excess > 0 && c.state == SimCallState::Completed {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }

    /// The calls not `Completed` that `keep` selects.
    fn live(&self, keep: impl Fn(&SimCall) -> bool) -> impl Iterator<Item = &SimCall> {
        self.list
            .iter()
            .filter(move |c| c.state != SimCallState::Completed && keep(c))
    }
}

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
            };
            let note = Note::call(&call.owner, call.notification("StatusChange", config));
            let id = call.id.clone();
            state.calls.list.push(call);
            Ok::<_, std::convert::Infallible>((id, vec![note]))
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
    /// documents no such operation; see the [module docs](super) for the assumption.
    pub fn complete(&self, id: &str) -> Result<(), SimCallError> {
        self.transition(
            id,
            "Complete",
            &[SimCallState::Released],
            SimCallState::Completed,
        )
    }

    /// `AttachUserData`: appends the pairs, even for keys already present.
    pub fn attach_user_data(&self, id: &str, pairs: RawPairs) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::Attach, pairs, "")
    }

    /// `UpdateUserData`: replaces every occurrence of each key, or appends it when absent.
    pub fn update_user_data(&self, id: &str, pairs: RawPairs) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::Update, pairs, "")
    }

    /// `DeleteUserDataPair`: removes every occurrence of `key`.
    pub fn delete_user_data_pair(&self, id: &str, key: &str) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::DeletePair, Vec::new(), key)
    }

    /// `DeleteUserData`: removes all pairs.
    pub fn delete_user_data(&self, id: &str) -> Result<(), SimCallError> {
        self.user_data_op(id, UserDataOp::DeleteAll, Vec::new(), "")
    }

    /// The call's JSON text, as notifications and `GET /api/v2/me/calls` show it.
    pub fn call_json(&self, id: &str) -> Option<String> {
        let state = self.state();
        let call = state.calls.list.iter().find(|c| c.id == id)?;
        Some(call.json(&self.inner.config))
    }

    /// Every call not `Completed`, of every user, as `GET /api/v2/me/calls` shows them.
    pub fn calls_json(&self) -> String {
        self.calls_json_where(|_| true)
    }

    /// The `GET /api/v2/me/calls` reply for `user`: their calls not `Completed`.
    pub fn calls_json_for(&self, user: &str) -> String {
        self.calls_json_where(|c| c.owner == user)
    }

    fn calls_json_where(&self, keep: impl Fn(&SimCall) -> bool) -> String {
        let state = self.state();
        let mut out = String::from(r#"{"statusCode":0,"calls":["#);
        for (i, call) in state.calls.live(keep).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&call.json(&self.inner.config));
        }
        out.push_str("]}");
        out
    }

    /// The ids of every call not `Completed`, of every user, oldest first.
    pub fn call_ids(&self) -> Vec<String> {
        self.call_ids_where(|_| true)
    }

    /// The ids of `user`'s calls not `Completed`, oldest first.
    pub fn call_ids_for(&self, user: &str) -> Vec<String> {
        self.call_ids_where(|c| c.owner == user)
    }

    fn call_ids_where(&self, keep: impl Fn(&SimCall) -> bool) -> Vec<String> {
        let state = self.state();
        state.calls.live(keep).map(|c| c.id.clone()).collect()
    }

    /// Whether call `id` exists and is `user`'s.
    pub(super) fn owns(&self, user: &str, id: &str) -> bool {
        self.state()
            .calls
            .list
            .iter()
            .any(|c| c.id == id && c.owner == user)
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
            let note = Note::call(&call.owner, call.notification("StatusChange", config));
            if to == SimCallState::Completed {
                state.calls.prune_completed();
            }
            Ok(((), vec![note]))
        })
    }

    fn user_data_op(
        &self,
        id: &str,
        op: UserDataOp,
        pairs: RawPairs,
        key: &str,
    ) -> Result<(), SimCallError> {
        self.change(|state, config| {
            let call = state.calls.find(id)?;
            if !call.state.takes_user_data() {
                return Err(SimCallError::InvalidState {
                    id: id.to_owned(),
                    state: call.state,
                    operation: op.name(),
                });
            }
            let data = &mut call.user_data;
            match op {
                UserDataOp::Attach => data.extend(pairs),
                UserDataOp::Update => {
                    for (k, v) in pairs {
                        let mut found = false;
                        for (_, value) in data.iter_mut().filter(|(dk, _)| *dk == k) {
                            *value = v.clone();
                            found = true;
                        }
                        if !found {
                            data.push((k, v));
                        }
                    }
                }
                UserDataOp::DeletePair => data.retain(|(k, _)| k != key),
                UserDataOp::DeleteAll => data.clear(),
            }
            let note = call.notification("AttachedDataChanged", config);
            Ok(((), vec![Note::call(&call.owner, note)]))
        })
    }
}

/// `n` in base-32 "hex" digits (0-9, A-V), zero-padded to `width`, as GWS call UUIDs end.
fn base32hex(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 32] = b"0123456789ABCDEFGHIJKLMNOPQRSTUV";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 32) as usize];
        n /= 32;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SimCall {
    fn json(&self, config: &GwsSimConfig) -> String {
        let public_url = &config.public_url;
        let party = quote(self.call.other_party());
        let participants = match config.participants {
            ParticipantsForm::Objects => format!(
                r#""participants":[{{"e164Number":{party},"formattedPhoneNumber":{party},"phoneNumber":{party},"digits":{party}}}]"#
            ),
            ParticipantsForm::StringsWithInfo => format!(
                r#""participants":[{party}],"participantsInfo":[{{"digits":{party},"e164Number":{party},"formattedPhoneNumber":{party}}}]"#
            ),
        };
        let mut o = String::with_capacity(1024);
        let _ = write!(
            o,
            r#"{{"id":{},"callUuid":{},"connId":{},"state":"{}","callType":"{}","ani":{},"dnis":{},{participants},"capabilities":{}"#,
            quote(&self.id),
            quote(&self.call_uuid),
            quote(&self.conn_id),
            self.state.as_str(),
            self.call.call_type.as_str(),
            quote(&self.call.from),
            quote(&self.call.to),
            self.state.capabilities(),
        );
        if !self.user_data.is_empty() {
            o.push_str(r#","userData":{"#);
            for (i, (k, v)) in self.user_data.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                o.push_str(&quote(k));
                o.push(':');
                o.push_str(v.get());
            }
            o.push('}');
        }
        let _ = write!(
            o,
            r#","duration":"{}","mute":"Off","supervisorListeningIn":false,"monitoredUserMuted":false,"recordingState":"Stopped","deviceUri":{},"uri":{},"path":{}}}"#,
            self.started.elapsed().as_secs(),
            quote(&format!(
                "{public_url}/api/v2/devices/{}",
                device_id(self.call.agent_number())
            )),
            quote(&format!("{public_url}/api/v2/me/calls/{}", self.id)),
            quote(&format!("/calls/{}", self.id)),
        );
        o
    }

    fn notification(&self, notification_type: &str, config: &GwsSimConfig) -> String {
        format!(
            r#"{{"messageType":"CallStateChangeMessage","notificationType":{},"phoneNumber":{},"call":{}}}"#,
            quote(notification_type),
            quote(self.call.agent_number()),
            self.json(config)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::test_support::*;

    #[test]
    fn user_data_operations_follow_gws_semantics_and_publish_the_whole_call() {
        let (sim, published) = sim();
        let id = sim.ring_inbound("5115", "5001");
        let session = login(&sim);
        let path = format!("/api/v2/me/calls/{id}");
        let last = || lock(&published).last().cloned().unwrap();

        let attach = r#"{"operationName":"AttachUserData","userData":{"A":"1","Big":123456789012345678901234567890}}"#;
        let resp = post(&sim, &path, &session, attach);
        assert_eq!(
            (resp.status().as_u16(), body(&resp)),
            (200, r#"{"statusCode":0}"#)
        );
        let (channel, data) = last();
        assert_eq!(channel, CALLS_CHANNEL);
        assert!(data.contains(r#""notificationType":"AttachedDataChanged""#));
        assert_eq!(
            user_data_of(&data).unwrap(),
            r#"{"A":"1","Big":123456789012345678901234567890}"#
        );

        post(
            &sim,
            &path,
            &session,
            r#"{"operationName":"AttachUserData","userData":{"A":2}}"#,
        );
        assert_eq!(
            user_data_of(&last().1).unwrap(),
            r#"{"A":"1","Big":123456789012345678901234567890,"A":2}"#
        );

        post(
            &sim,
            &path,
            &session,
            r#"{"operationName":"UpdateUserData","userData":{"A":"x","New":7}}"#,
        );
        assert_eq!(
            user_data_of(&last().1).unwrap(),
            r#"{"A":"x","Big":123456789012345678901234567890,"A":"x","New":7}"#
        );

        post(
            &sim,
            &path,
            &session,
            r#"{"operationName":"DeleteUserDataPair","key":"A"}"#,
        );
        assert_eq!(
            user_data_of(&last().1).unwrap(),
            r#"{"Big":123456789012345678901234567890,"New":7}"#
        );

        post(
            &sim,
            &path,
            &session,
            r#"{"operationName":"DeleteUserData"}"#,
        );
        let data = last().1;
        assert!(!data.contains("userData"), "{data}");
        assert!(!sim.call_json(&id).unwrap().contains("userData"));
        // ring + five operations
        assert_eq!(lock(&published).len(), 6);
    }

    #[test]
    fn calls_move_through_their_states_and_completed_calls_are_not_listed() {
        let (sim, published) = sim();
        let id = sim.ring_inbound("5115", "5001");
        assert!(sim.hold(&id).is_err());
        sim.answer(&id).unwrap();
        sim.hold(&id).unwrap();
        sim.retrieve(&id).unwrap();
        sim.hangup(&id).unwrap();
        assert!(matches!(
            sim.attach_user_data(&id, Vec::new()),
            Err(SimCallError::InvalidState {
                state: SimCallState::Released,
                operation: "AttachUserData",
                ..
            })
        ));
        assert!(matches!(
            sim.answer(&id),
            Err(SimCallError::InvalidState {
                state: SimCallState::Released,
                ..
            })
        ));
        assert!(sim.calls_json().contains(&id));
        sim.complete(&id).unwrap();
        assert_eq!(sim.calls_json(), r#"{"statusCode":0,"calls":[]}"#);
        assert!(matches!(
            sim.attach_user_data(&id, Vec::new()),
            Err(SimCallError::InvalidState { .. })
        ));
        assert_eq!(
            sim.answer("nope"),
            Err(SimCallError::NotFound("nope".into()))
        );
        let states: Vec<String> = lock(&published)
            .iter()
            .map(|(_, d)| {
                let v: serde_json::Value = serde_json::from_str(d).unwrap();
                assert_eq!(v["notificationType"], "StatusChange");
                v["call"]["state"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            states,
            [
                "Ringing",
                "Established",
                "Held",
                "Established",
                "Released",
                "Completed"
            ]
        );
    }

    #[test]
    fn notifications_have_the_shape_of_real_gws_ones() {
        let seed = r#"{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged","phoneNumber":"5001","call":{"id":"01RCC3N118B1V0SL8O7GK2LAES00000R","callUuid":"01RCC3N118B1V0SL8O7GK2LAES00000R","connId":"0071025bd3c3b001","state":"Established","callType":"Inbound","ani":"5115","dnis":"5001","participants":[{"e164Number":"5115","formattedPhoneNumber":"5115","phoneNumber":"5115","digits":"5115"}],"capabilities":["SingleStepTransfer","InitiateConference","Hold","SingleStepConference","InitiateTransfer","SendDtmf","DeleteUserData","AttachUserData","DeleteUserDataPair","Hangup","UpdateUserData"],"userData":{"AccountNumber":"12345"},"duration":"42","mute":"Off","supervisorListeningIn":false,"monitoredUserMuted":false,"recordingState":"Stopped","deviceUri":"http://127.0.0.1:8090/api/v2/devices/0b1e9f27","uri":"http://127.0.0.1:8090/api/v2/me/calls/01RCC3N118B1V0SL8O7GK2LAES00000R","path":"/calls/01RCC3N118B1V0SL8O7GK2LAES00000R"}}"#;
        let (sim, published) = sim();
        let id = sim.ring_inbound("5115", "5001");
        sim.answer(&id).unwrap();
        let account = RawValue::from_string(r#""12345""#.into()).unwrap();
        sim.attach_user_data(&id, vec![("AccountNumber".into(), account)])
            .unwrap();
        let ours = lock(&published).last().unwrap().1.clone();
        let keys = |text: &str| -> (Vec<String>, Vec<String>) {
            let Pairs(top) = serde_json::from_str(text).unwrap();
            let call = &top.iter().find(|(k, _)| k == "call").unwrap().1;
            let Pairs(call) = serde_json::from_str(call.get()).unwrap();
            (
                top.into_iter().map(|p| p.0).collect(),
                call.into_iter().map(|p| p.0).collect(),
            )
        };
        assert_eq!(keys(&ours), keys(seed));
        let v: serde_json::Value = serde_json::from_str(&ours).unwrap();
        let s: serde_json::Value = serde_json::from_str(seed).unwrap();
        for field in [
            "state",
            "callType",
            "ani",
            "dnis",
            "participants",
            "capabilities",
            "userData",
            "mute",
        ] {
            assert_eq!(v["call"][field], s["call"][field], "{field}");
        }
        assert_eq!(v["phoneNumber"], "5001");
        assert_eq!(
            v["call"]["uri"],
            format!("http://127.0.0.1:8090/api/v2/me/calls/{id}")
        );
        // As real captures: a connId-like id, a different callUuid.
        assert_eq!(id.len(), 16);
        assert_eq!(v["call"]["connId"], id.as_str());
        assert_ne!(v["call"]["callUuid"], id.as_str());
    }

    #[test]
    fn ids_and_participants_take_the_configured_form() {
        let (sim, _) = sim();
        let ids: Vec<String> = (0..15).map(|_| sim.ring_inbound("5115", "5001")).collect();
        let call: serde_json::Value =
            serde_json::from_str(&sim.call_json(&ids[14]).unwrap()).unwrap();
        assert_eq!(call["id"], "0071025563e9f00f");
        assert_eq!(call["callUuid"], "00QEAG4KU4A5P78IG2DAHG5AES00000F");
        assert_eq!(
            call["uri"],
            "http://127.0.0.1:8090/api/v2/me/calls/0071025563e9f00f"
        );
        assert!(call.get("participantsInfo").is_none());

        let (older, _) = sim_with(GwsSimConfig {
            call_ids: CallIdForm::CallUuid,
            participants: ParticipantsForm::StringsWithInfo,
            ..GwsSimConfig::new("agent", "pw")
        });
        let id = older.ring_inbound("5115", "5001");
        let call: serde_json::Value = serde_json::from_str(&older.call_json(&id).unwrap()).unwrap();
        assert_eq!(
            (id.len(), call["callUuid"].as_str()),
            (32, Some(id.as_str()))
        );
        assert_ne!(call["connId"], id.as_str());
        assert_eq!(call["participants"], serde_json::json!(["5115"]));
        assert_eq!(
            call["participantsInfo"],
            serde_json::json!([{"digits":"5115","e164Number":"5115","formattedPhoneNumber":"5115"}])
        );
        assert_eq!(base32hex(32 * 32 + 31, 3), "10V");
    }

    #[tokio::test(start_paused = true)]
    async fn outbound_calls_dial_until_the_far_end_answers_and_internal_ones_ring() {
        let (sim, published) = sim();
        let out = sim
            .start_call("agent", NewCall::outbound("5001", "+14155550123"))
            .unwrap();
        let internal = sim
            .start_call("agent", NewCall::internal("5002", "5001"))
            .unwrap();
        assert_eq!(sim.start_call("nobody", NewCall::internal("1", "2")), None);
        assert!(
            sim.answer(&out).is_err(),
            "an outbound call is not answered"
        );
        assert!(sim.remote_answer(&internal).is_err());
        sim.attach_user_data(
            &out,
            vec![("K".into(), RawValue::from_string("1".into()).unwrap())],
        )
        .unwrap();
        sim.remote_answer(&out).unwrap();
        tokio::time::advance(std::time::Duration::from_secs(7)).await;
        sim.hangup(&out).unwrap();
        let notes: Vec<serde_json::Value> = lock(&published)
            .iter()
            .map(|(_, d)| serde_json::from_str(d).unwrap())
            .collect();
        let of = |id: &str| -> Vec<&serde_json::Value> {
            notes.iter().filter(|n| n["call"]["id"] == id).collect()
        };
        let states: Vec<&str> = of(&out)
            .iter()
            .map(|n| n["call"]["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["Dialing", "Dialing", "Established", "Released"]);
        let dialing = of(&out)[0];
        assert_eq!(dialing["phoneNumber"], "5001", "the agent's own number");
        assert_eq!(dialing["call"]["callType"], "Outbound");
        assert_eq!(dialing["call"]["ani"], "5001");
        assert_eq!(dialing["call"]["dnis"], "+14155550123");
        assert_eq!(
            dialing["call"]["participants"][0]["phoneNumber"],
            "+14155550123"
        );
        assert_eq!(
            dialing["call"]["capabilities"],
            serde_json::json!([
                "SendDtmf",
                "DeleteUserData",
                "AttachUserData",
                "DeleteUserDataPair",
                "Hangup",
                "UpdateUserData"
            ])
        );
        let released = of(&out)[3];
        assert_eq!(released["call"]["capabilities"], serde_json::json!([]));
        assert_eq!(released["call"]["duration"], "7", "paused time counts");
        let ringing = of(&internal)[0];
        assert_eq!(ringing["call"]["state"], "Ringing");
        assert_eq!(ringing["call"]["callType"], "Internal");
        assert_eq!(ringing["phoneNumber"], "5001");
        assert_eq!(ringing["call"]["participants"][0]["phoneNumber"], "5002");
    }
}
