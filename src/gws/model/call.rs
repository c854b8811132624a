//! Typed GWS voice notifications: [`CallStateChangeMessage`] and its [`Call`] snapshot.
//!
//! Every type keeps the fields it does not know in `other`, in order and exactly as received,
//! and every enum keeps values it does not know in `Other`, so decode → encode loses nothing
//! a consumer could see. Known fields are written back in GWS's usual order, unknown ones after.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::record::{deserialize_record, open_enum, record, typed_serde, Present, RawJson, Typed};
use super::user_data::UserData;

open_enum! {
    /// `notificationType` of a [`CallStateChangeMessage`]: why it was sent.
    pub enum NotificationType {
        /// The call's state changed.
        StatusChange = "StatusChange",
        /// Parties joined or left.
        ParticipantsUpdated = "ParticipantsUpdated",
        /// User data was attached, updated or deleted.
        AttachedDataChanged = "AttachedDataChanged",
        /// DTMF digits were sent.
        DtmfSent = "DtmfSent",
        /// Recording started, stopped, paused or resumed.
        CallRecordingStateChange = "CallRecordingStateChange",
        /// A supervisor muted or unmuted the monitored agent.
        MonitoredUserMutedStateChange = "MonitoredUserMutedStateChange",
        /// v3: the call was recovered (after a server's failover, say); the snapshot is
        /// whole, as any other.
        CallRecovered = "CallRecovered",
    }
}

impl NotificationType {
    /// A v3 `notificationType`, named as v2 names it where the two differ: v3's
    /// `StateChange` is [`NotificationType::StatusChange`], so change lines read the same
    /// for both generations (the call's text, kept byte for byte, still says what the
    /// server sent). Other values, v3's own (`CallRecovered`, ...) among them, as
    /// [`NotificationType::from`] reads them.
    pub fn from_v3(s: &str) -> Self {
        match s {
            "StateChange" => NotificationType::StatusChange,
            other => NotificationType::from(other),
        }
    }
}

open_enum! {
    /// `state` of a call.
    pub enum CallState {
        /// Outbound call being dialed.
        Dialing = "Dialing",
        /// Inbound call alerting.
        Ringing = "Ringing",
        /// Connected.
        Established = "Established",
        /// On hold.
        Held = "Held",
        /// Hung up; the call may still be in wrap-up and its data may still change.
        Released = "Released",
        /// Finished: the call will not be notified again.
        Completed = "Completed",
    }
}

open_enum! {
    /// `callType` of a call.
    pub enum CallType {
        /// Between two agents of the contact center.
        Internal = "Internal",
        /// From outside.
        Inbound = "Inbound",
        /// To outside.
        Outbound = "Outbound",
        /// Consultation call of a transfer or conference.
        Consult = "Consult",
    }
}

open_enum! {
    /// One of a call's `capabilities`: an operation allowed now, named as its
    /// `operationName`. The set is open; values not listed here are kept in `Other`.
    pub enum Capability {
        /// Answer a ringing call.
        Answer = "Answer",
        /// Hang up.
        Hangup = "Hangup",
        /// Put on hold.
        Hold = "Hold",
        /// Take off hold.
        Retrieve = "Retrieve",
        /// Append user-data pairs.
        AttachUserData = "AttachUserData",
        /// Add or replace user-data pairs.
        UpdateUserData = "UpdateUserData",
        /// Delete one user-data key (every occurrence).
        DeleteUserDataPair = "DeleteUserDataPair",
        /// Delete all user data.
        DeleteUserData = "DeleteUserData",
        /// Send DTMF digits.
        SendDtmf = "SendDtmf",
        /// Start a two-step transfer.
        InitiateTransfer = "InitiateTransfer",
        /// Complete a two-step transfer.
        CompleteTransfer = "CompleteTransfer",
        /// Start a two-step conference.
        InitiateConference = "InitiateConference",
        /// Complete a two-step conference.
        CompleteConference = "CompleteConference",
        /// Transfer in one step.
        SingleStepTransfer = "SingleStepTransfer",
        /// Conference in one step.
        SingleStepConference = "SingleStepConference",
        /// Swap between a held and an active call.
        SwapCalls = "SwapCalls",
        /// Start recording.
        StartCallRecording = "StartCallRecording",
        /// Stop recording.
        StopCallRecording = "StopCallRecording",
        /// Pause recording.
        PauseCallRecording = "PauseCallRecording",
        /// Resume recording.
        ResumeCallRecording = "ResumeCallRecording",
    }
}

impl Capability {
    /// The capability as v2 names it. v3 names operations in kebab case (`attach-user-data`),
    /// which the typed call keeps as received, in `Other`; this reads such a name as the one
    /// it means (`AttachUserData`), so a check for a capability works for both generations.
    /// Any other value comes back unchanged.
    ///
    /// ```
    /// use gws_cometd::gws::model::Capability;
    /// assert_eq!(Capability::from("attach-user-data").canonical(), Capability::AttachUserData);
    /// assert_eq!(Capability::from("Answer").canonical(), Capability::Answer);
    /// ```
    pub fn canonical(&self) -> Capability {
        match self {
            Capability::Other(s) if s.starts_with(|c: char| c.is_ascii_lowercase()) => {
                let mut pascal = String::with_capacity(s.len());
                for word in s.split('-') {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        pascal.push(first.to_ascii_uppercase());
                        pascal.push_str(chars.as_str());
                    }
                }
                Capability::from(pascal.as_str())
            }
            other => other.clone(),
        }
    }
}

open_enum! {
    /// `mute` of a call.
    pub enum Mute {
        /// Muted.
        On = "On",
        /// Not muted.
        Off = "Off",
    }
}

open_enum! {
    /// `recordingState` of a call.
    pub enum RecordingState {
        /// Not recording.
        Stopped = "Stopped",
        /// Recording.
        Recording = "Recording",
        /// Recording paused.
        Paused = "Paused",
    }
}

/// `duration`: seconds since the call started, kept exactly as received (GWS sends a string
/// such as `"42"`; a number is accepted too).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallDuration(pub RawJson);

impl CallDuration {
    /// The duration in seconds, when the value is a whole number (quoted or not).
    pub fn seconds(&self) -> Option<u64> {
        let t = self.0.get();
        t.strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(t)
            .trim()
            .parse()
            .ok()
    }
}

record! {
    /// A participant given as an object: v2's four spellings of the number, or v3's
    /// `number` and `role`.
    pub struct ParticipantInfo: serde {
        /// `e164Number`.
        e164_number: Option<String> = "e164Number",
        /// `formattedPhoneNumber`.
        formatted_phone_number: Option<String> = "formattedPhoneNumber",
        /// `phoneNumber`.
        phone_number: Option<String> = "phoneNumber",
        /// `digits`.
        digits: Option<String> = "digits",
        /// `number` (v3).
        number: Option<String> = "number",
        /// `role` (v3): the participant's part in the call, as received.
        role: Option<String> = "role",
    }
}

/// One entry of `participants`: an object on current servers, a plain number on older ones
/// (which send the details in `participantsInfo`).
#[derive(Clone, Debug, PartialEq)]
pub enum Participant {
    /// The object form.
    Info(ParticipantInfo),
    /// The plain-string form.
    Number(String),
}

impl Participant {
    /// The participant's phone number, whichever form was used.
    pub fn phone_number(&self) -> Option<&str> {
        match self {
            Participant::Info(i) => i.phone_number.as_deref().or(i.number.as_deref()),
            Participant::Number(n) => Some(n),
        }
    }
}

impl Serialize for Participant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Participant::Info(i) => i.serialize(s),
            Participant::Number(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for Participant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Participant;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a participant object or phone number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Participant, E> {
                Ok(Participant::Number(v.to_owned()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Participant, A::Error> {
                let mut info = ParticipantInfo::default();
                super::record::fill_record(&mut info, &mut map)?;
                Ok(Participant::Info(info))
            }
        }
        d.deserialize_any(V)
    }
}

record! {
    /// A call: the full snapshot GWS sends with every notification.
    pub struct Call {
        /// `id`: the call's identifier in GWS (the key of the store).
        id: String = "id",
        /// `callUuid`.
        call_uuid: Option<String> = "callUuid",
        /// `connId`: the T-Server connection id.
        conn_id: Option<String> = "connId",
        /// `parentConnId` (v3): the call this one was made from (a consultation's main
        /// call).
        parent_conn_id: Option<String> = "parentConnId",
        /// `previousConnId` (v3): the connection id the call had before a transfer.
        previous_conn_id: Option<String> = "previousConnId",
        /// `state`.
        state: Option<CallState> = "state",
        /// `callType`.
        call_type: Option<CallType> = "callType",
        /// `ani`: the caller's number.
        ani: Option<String> = "ani",
        /// `dnis`: the number dialed.
        dnis: Option<String> = "dnis",
        /// `participants`, in either form.
        participants: Option<Vec<Participant>> = "participants",
        /// `participantsInfo`, sent by older servers next to plain-string participants.
        participants_info: Option<RawJson> = "participantsInfo",
        /// `capabilities`: the operations allowed now.
        capabilities: Option<Vec<Capability>> = "capabilities",
        /// `userData`; absent when the call has none.
        user_data: Option<UserData> = "userData",
        /// `duration`.
        duration: Option<CallDuration> = "duration",
        /// `startedAt` (v3): when the call started, as the server wrote it.
        started_at: Option<String> = "startedAt",
        /// `mute`.
        mute: Option<Mute> = "mute",
        /// `supervisorListeningIn`.
        supervisor_listening_in: Option<bool> = "supervisorListeningIn",
        /// `monitoredUserMuted`.
        monitored_user_muted: Option<bool> = "monitoredUserMuted",
        /// `recordingState`.
        recording_state: Option<RecordingState> = "recordingState",
        /// `monitoring`, as received.
        monitoring: Option<RawJson> = "monitoring",
        /// `deviceUri`.
        device_uri: Option<String> = "deviceUri",
        /// `uri`.
        uri: Option<String> = "uri",
        /// `path`.
        path: Option<String> = "path",
    }
}

impl Present for Call {
    fn present(&self) -> bool {
        true
    }
}

impl Call {
    /// The user data, empty when the call has none.
    pub fn user_data(&self) -> &UserData {
        static EMPTY: UserData = UserData::EMPTY;
        self.user_data.as_ref().unwrap_or(&EMPTY)
    }
}

impl Serialize for Call {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::record::serialize_record(self, s)
    }
}

impl<'de> Deserialize<'de> for Call {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let call: Call = deserialize_record(d, "a call object")?;
        if call.id.is_empty() {
            return Err(de::Error::missing_field("id"));
        }
        Ok(call)
    }
}

record! {
    /// `messageType: "CallStateChangeMessage"`: a call changed; `call` is its full snapshot.
    pub struct CallStateChangeMessage {
        /// `notificationType`: why it was sent.
        notification_type: Option<NotificationType> = "notificationType",
        /// `phoneNumber`: the agent's DN.
        phone_number: Option<String> = "phoneNumber",
        /// `call`: the whole call, not a delta.
        call: Call = "call",
        /// `operationId` (v3): the operation whose effect this is, as its REST reply named
        /// it.
        operation_id: Option<String> = "operationId",
        /// `extensions`, as received.
        extensions: Option<RawJson> = "extensions",
        /// `metrics`, as received.
        metrics: Option<RawJson> = "metrics",
    }
}

impl Typed for CallStateChangeMessage {
    const MESSAGE_TYPE: &'static str = "CallStateChangeMessage";
    fn check(&self) -> Result<(), &'static str> {
        // Call's own decoder rejects an empty id, so an empty one here means no `call`.
        if self.call.id.is_empty() {
            Err("call")
        } else {
            Ok(())
        }
    }
}
typed_serde!(CallStateChangeMessage);
