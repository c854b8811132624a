//! A call's JSON text, as notifications and REST replies show it, and the
//! `CallStateChangeMessage` that carries it.

use std::fmt::Write as _;

use super::SimCall;
use crate::gws::agent::device_id;
use crate::gws::{GwsSimConfig, ParticipantsForm};
use crate::json_string::quote;

impl SimCall {
    pub(super) fn json(&self, config: &GwsSimConfig) -> String {
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

    pub(super) fn notification(&self, notification_type: &str, config: &GwsSimConfig) -> String {
        format!(
            r#"{{"messageType":"CallStateChangeMessage","notificationType":{},"phoneNumber":{},"call":{}}}"#,
            quote(notification_type),
            quote(self.call.agent_number()),
            self.json(config)
        )
    }
}
