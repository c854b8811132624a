//! The agent side of the simulated GWS: each user's device and agent state, contact-center
//! sessions, `ErrorMessage` notifications, and the counters tests read.

use std::collections::{BTreeMap, HashMap};

use super::{fnv1a, GwsSim, GwsSimConfig, Note, DEVICES_CHANNEL};
use crate::json_string::quote;

/// An agent's state on the voice channel, as the device's `userState` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentState {
    /// `Ready`: calls may be routed to the agent.
    Ready,
    /// `NotReady` (the state after login).
    #[default]
    NotReady,
    /// `NotReady` with `workMode` `AfterCallWork`.
    AfterCallWork,
}

impl AgentState {
    /// The operation on `POST /api/v2/me/channels/voice` that sets it.
    pub fn from_operation(name: &str) -> Option<Self> {
        match name {
            "Ready" => Some(Self::Ready),
            "NotReady" => Some(Self::NotReady),
            "AfterCallWork" => Some(Self::AfterCallWork),
            _ => None,
        }
    }

    /// The device's `userState` object.
    fn user_state_json(self) -> &'static str {
        // The ids are the simulator's own, one per state, as GWS gives each state one.
        match self {
            Self::Ready => {
                r#"{"id":"9430250E-0A1B-421F-B372-F29E69366DED","displayName":"Ready","state":"Ready"}"#
            }
            Self::NotReady => {
                r#"{"id":"900D55CC-2BB0-431F-8BF9-D3525B383BE6","displayName":"Not Ready","state":"NotReady"}"#
            }
            Self::AfterCallWork => {
                r#"{"id":"D3663509-3D82-4DD3-A82E-2EA8EFA02AEF","displayName":"AfterCallWork","state":"NotReady","workMode":"AfterCallWork"}"#
            }
        }
    }
}

/// Counters of what clients asked the simulated GWS, for tests (e.g. that a passive
/// observer never logged the agent in or out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GwsStats {
    /// HTTP sessions opened with HTTP Basic.
    pub logins: u64,
    /// Every `operationName` received on an authenticated POST (whatever came of it), by
    /// name: `StartContactCenterSession`, `EndContactCenterSession`, `Ready`, `Answer`, ...
    pub operations: BTreeMap<String, u64>,
}

impl GwsStats {
    /// How many times `operation` was asked for.
    pub fn operation(&self, operation: &str) -> u64 {
        self.operations.get(operation).copied().unwrap_or(0)
    }
}

#[derive(Default)]
struct Agent {
    state: AgentState,
    /// Logged in on the voice channel by `StartContactCenterSession`.
    logged_in: bool,
}

/// Every user's agent state, created on first use.
#[derive(Default)]
pub(super) struct Agents {
    by_user: HashMap<String, Agent>,
}

/// The id of the device with this number: stable, shaped like GWS's UUIDs.
pub(super) fn device_id(number: &str) -> String {
    let a = fnv1a(number);
    let b = fnv1a(&format!("{number}/device"));
    format!(
        "{a:08x}-{:04x}-4{:03x}-8{:03x}-{b:08x}{:04x}",
        a >> 16,
        a & 0xfff,
        b >> 20,
        b & 0xffff
    )
}

fn device_json(config: &GwsSimConfig, number: &str, agent: &Agent) -> String {
    format!(
        r#"{{"id":{},"deviceState":"Active","userState":{},"phoneNumber":{n},"e164Number":{n},"telephonyNetwork":"Private","doNotDisturb":"Off","voiceEnvironmentUri":{},"capabilities":["ForwardCallsOn","DoNotDisturbOn"]}}"#,
        quote(&device_id(number)),
        agent.state.user_state_json(),
        quote(&format!(
            "{}/api/v2/voice-environments/{}",
            config.public_url,
            device_id("voice-environment")
        )),
        n = quote(number),
    )
}

/// Why a contact-center session could not start.
pub(super) enum StartRefused {
    /// No channel was named.
    NoChannels,
    /// Only channels the simulator does not serve: the first of them.
    Unavailable(String),
}

impl GwsSim {
    /// `user`'s agent state; `None` for an unknown user.
    pub fn agent_state(&self, user: &str) -> Option<AgentState> {
        self.inner.config.knows(user).then(|| {
            self.state()
                .agents
                .by_user
                .get(user)
                .map(|a| a.state)
                .unwrap_or_default()
        })
    }

    /// Whether `user` is logged in on the voice channel (by `StartContactCenterSession`, until
    /// `EndContactCenterSession`).
    pub fn is_logged_in(&self, user: &str) -> bool {
        self.state()
            .agents
            .by_user
            .get(user)
            .is_some_and(|a| a.logged_in)
    }

    /// Sets `user`'s agent state and publishes a `DeviceStateChangeMessage` on
    /// [`DEVICES_CHANNEL`]; `false` (and nothing) for an unknown user.
    pub fn set_agent_state(&self, user: &str, state: AgentState) -> bool {
        self.update_agent(user, |a| a.state = state)
    }

    /// The `GET /api/v2/me/devices` reply for `user`: their one device.
    pub fn devices_json_for(&self, user: &str) -> Option<String> {
        let number = self.inner.config.number_of(user)?;
        let st = self.state();
        let default = Agent::default();
        let agent = st.agents.by_user.get(user).unwrap_or(&default);
        Some(format!(
            r#"{{"statusCode":0,"devices":[{}]}}"#,
            device_json(&self.inner.config, &number, agent)
        ))
    }

    /// Publishes an `ErrorMessage` (`errorCode`, `errorMessage`) to `user` on
    /// [`CALLS_CHANNEL`](super::CALLS_CHANNEL), as GWS reports a voice operation that failed later; `false` (and
    /// nothing) for an unknown user. The field names are those the project's decoder reads;
    /// GWS's documentation does not show the message.
    pub fn publish_error_message(&self, user: &str, error_code: i64, error_message: &str) -> bool {
        if !self.inner.config.knows(user) {
            return false;
        }
        let data = format!(
            r#"{{"messageType":"ErrorMessage","errorCode":{error_code},"errorMessage":{}}}"#,
            quote(error_message)
        );
        let _ = self
            .change(|_, _| Ok::<_, std::convert::Infallible>(((), vec![Note::call(user, data)])));
        true
    }

    /// What clients asked so far.
    pub fn stats(&self) -> GwsStats {
        self.state().stats.clone()
    }

    pub(super) fn count_operation(&self, operation: &str) {
        *self
            .state()
            .stats
            .operations
            .entry(operation.to_owned())
            .or_default() += 1;
    }

    /// `StartContactCenterSession` for `user` on `channels`: logs the agent in on voice.
    /// Returns the channels the simulator does not serve (the partial failure).
    pub(super) fn start_contact_center_session(
        &self,
        user: &str,
        channels: &[String],
    ) -> Result<Vec<String>, StartRefused> {
        let Some(first) = channels.first() else {
            return Err(StartRefused::NoChannels);
        };
        let others: Vec<String> = channels.iter().filter(|c| *c != "voice").cloned().collect();
        if others.len() == channels.len() {
            return Err(StartRefused::Unavailable(first.clone()));
        }
        self.update_agent(user, |a| {
            a.logged_in = true;
            a.state = AgentState::NotReady;
        });
        Ok(others)
    }

    /// `EndContactCenterSession`: logs the agent out and ends HTTP session `session_id`.
    pub(super) fn end_contact_center_session(&self, user: &str, session_id: &str) {
        let mut st = self.state();
        st.agents
            .by_user
            .entry(user.to_owned())
            .or_default()
            .logged_in = false;
        st.auth.end(session_id);
    }

    fn update_agent(&self, user: &str, f: impl FnOnce(&mut Agent)) -> bool {
        let Some(number) = self.inner.config.number_of(user) else {
            return false;
        };
        let _ = self.change(|state, config| {
            let agent = state.agents.by_user.entry(user.to_owned()).or_default();
            f(agent);
            let data = format!(
                r#"{{"messageType":"DeviceStateChangeMessage","devices":[{}]}}"#,
                device_json(config, &number, agent)
            );
            let note = Note {
                user: user.to_owned(),
                channel: DEVICES_CHANNEL,
                data,
            };
            Ok::<_, std::convert::Infallible>(((), vec![note]))
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::test_support::*;

    fn json(resp: &Response<bytes::Bytes>) -> serde_json::Value {
        serde_json::from_str(body(resp)).unwrap()
    }

    #[test]
    fn devices_show_the_agent_state_and_voice_operations_change_it_with_a_notification() {
        let published: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let sink = published.clone();
        let sim = GwsSim::new(
            GwsSimConfig::new("agent", "pw").with_user("other", "pw2"),
            Arc::new(move |user: &str, channel: &str, data: String| {
                lock(&sink).push((user.to_owned(), channel.to_owned(), data));
            }),
        );
        let session = login(&sim);
        let devices = json(&get(&sim, "/api/v2/me/devices?fields=*", &session));
        assert_eq!(devices["statusCode"], 0);
        let device = &devices["devices"][0];
        assert_eq!(device["phoneNumber"], "5001");
        assert_eq!(device["userState"]["state"], "NotReady");
        assert_eq!(device["deviceState"], "Active");
        let id = sim.ring_inbound("5115", "5001");
        let call: serde_json::Value = serde_json::from_str(&sim.call_json(&id).unwrap()).unwrap();
        assert!(
            call["deviceUri"]
                .as_str()
                .unwrap()
                .ends_with(device["id"].as_str().unwrap()),
            "the call names the agent's device"
        );

        for (op, state, work_mode) in [
            ("Ready", "Ready", None),
            ("AfterCallWork", "NotReady", Some("AfterCallWork")),
            ("NotReady", "NotReady", None),
        ] {
            let resp = post(
                &sim,
                "/api/v2/me/channels/voice",
                &session,
                &format!(r#"{{"operationName":"{op}"}}"#),
            );
            assert_eq!(
                (resp.status().as_u16(), body(&resp)),
                (200, r#"{"statusCode":0}"#)
            );
            let (user, channel, data) = lock(&published).last().cloned().unwrap();
            assert_eq!(
                (user.as_str(), channel.as_str()),
                ("agent", DEVICES_CHANNEL)
            );
            let note: serde_json::Value = serde_json::from_str(&data).unwrap();
            assert_eq!(note["messageType"], "DeviceStateChangeMessage");
            assert_eq!(note["devices"][0]["userState"]["state"], state, "{op}");
            assert_eq!(
                note["devices"][0]["userState"]["workMode"].as_str(),
                work_mode
            );
            let listed = json(&get(&sim, "/api/v2/me/devices", &session));
            assert_eq!(listed["devices"][0], note["devices"][0]);
        }
        assert_eq!(sim.agent_state("agent"), Some(AgentState::NotReady));
        assert_eq!(sim.agent_state("nobody"), None);
        let other = login_as(&sim, "other", "pw2");
        let theirs = json(&get(&sim, "/api/v2/me/devices", &other));
        assert_eq!(theirs["devices"][0]["phoneNumber"], "5002");
        assert_ne!(theirs["devices"][0]["id"], device["id"]);

        let resp = post(
            &sim,
            "/api/v2/me/channels/voice",
            &session,
            r#"{"operationName":"Dance"}"#,
        );
        assert_eq!(resp.status(), 400);
        assert_eq!(sim.stats().operation("Ready"), 1);
        assert_eq!(sim.stats().operation("Dance"), 1);
    }

    #[test]
    fn contact_center_sessions_log_in_partly_or_not_and_ending_one_ends_the_http_session() {
        let (sim, _) = sim();
        let session = login(&sim);
        assert_eq!(sim.stats().logins, 1);
        assert!(!sim.is_logged_in("agent"));
        let start = |body: &str| post(&sim, "/api/v2/me", &session, body);

        for bad in [
            r#"{"operationName":"StartContactCenterSession"}"#,
            r#"{"operationName":"StartContactCenterSession","channels":"voice"}"#,
            r#"{"operationName":"StartContactCenterSession","channels":[]}"#,
            r#"{"operationName":"StartContactCenterSession","channels":["voice"],"place":7}"#,
        ] {
            let resp = start(bad);
            assert_eq!(resp.status(), 400, "{bad}");
            assert!(body(&resp).starts_with(r#"{"statusCode":1,"#), "{bad}");
        }
        let resp = start(r#"{"operationName":"StartContactCenterSession","channels":["chat"]}"#);
        assert_eq!(resp.status(), 503);
        assert_eq!(json(&resp)["statusCode"], 4);
        assert!(!sim.is_logged_in("agent"));

        let resp = start(
            r#"{"operationName":"StartContactCenterSession","channels":["voice"],"place":"P5001","queue":"8000"}"#,
        );
        assert_eq!(
            (resp.status().as_u16(), body(&resp)),
            (200, r#"{"statusCode":0}"#)
        );
        assert!(sim.is_logged_in("agent"));
        let resp = start(
            r#"{"operationName":"StartContactCenterSession","channels":["voice","chat","email"]}"#,
        );
        let partial = json(&resp);
        assert_eq!(partial["statusCode"], 7);
        assert_eq!(partial["channels"]["voice"]["statusCode"], 0);
        assert_eq!(partial["channels"]["chat"]["statusCode"], 4);
        assert_eq!(partial["channels"]["email"]["statusCode"], 4);
        assert_eq!(sim.stats().operation("StartContactCenterSession"), 7);

        let resp = post(
            &sim,
            "/api/v2/me",
            &session,
            r#"{"operationName":"EndContactCenterSession"}"#,
        );
        assert_eq!(
            (resp.status().as_u16(), body(&resp)),
            (200, r#"{"statusCode":0}"#)
        );
        assert!(!sim.is_logged_in("agent"));
        assert_eq!(sim.stats().operation("EndContactCenterSession"), 1);
        assert_eq!(get(&sim, "/api/v2/me/calls", &session).status(), 401);
        assert_eq!(sim.session_of(&session), None);
        let mut no_basic = session.clone();
        no_basic.remove(AUTHORIZATION);
        assert_eq!(get(&sim, "/api/v2/me", &no_basic).status(), 401);
    }

    #[test]
    fn an_error_message_reaches_only_its_user() {
        let published: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let sink = published.clone();
        let sim = GwsSim::new(
            GwsSimConfig::new("agent", "pw"),
            Arc::new(move |user: &str, channel: &str, data: String| {
                lock(&sink).push((user.to_owned(), channel.to_owned(), data));
            }),
        );
        assert!(!sim.publish_error_message("nobody", 1, "x"));
        assert!(sim.publish_error_message("agent", 56, "Invalid \"call\" state"));
        let sent = lock(&published).clone();
        assert_eq!(
            sent,
            [(
                "agent".to_owned(),
                CALLS_CHANNEL.to_owned(),
                r#"{"messageType":"ErrorMessage","errorCode":56,"errorMessage":"Invalid \"call\" state"}"#
                    .to_owned()
            )]
        );
    }
}
