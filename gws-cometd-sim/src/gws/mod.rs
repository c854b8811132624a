//! GWS REST semantics of the simulator: login, HTTP sessions, CSRF, a call model and the
//! user-data operations, independent of any HTTP server.
//!
//! [`GwsSim::handle`] answers a request for every route under `/api/v2/me` and returns `None`
//! for everything else (the Bayeux endpoint). Each change of a call is handed to the
//! `publish` callback given to [`GwsSim::new`] as the JSON text of a `CallStateChangeMessage`
//! for the channel [`CALLS_CHANNEL`], with the call's owner.
//!
//! Several users may be configured ([`GwsSimConfig::with_user`]). Every call belongs to one
//! user; REST requests see only their session user's calls (another user's call answers
//! 404 / `statusCode` 6, like an unknown one), and notifications name the owner so a server
//! can deliver them to that user's Bayeux sessions only.
//!
//! | module | what it holds |
//! |---|---|
//! | `auth` | HTTP sessions, Basic credentials, the `JSESSIONID` cookie, CSRF tokens |
//! | `agent` | devices and agent state, contact-center sessions, `ErrorMessage`, counters |
//! | `calls` | the call model: states, capabilities, user-data operations, JSON rendering |
//! | `center` | the living contact center: seeded, never-ending call traffic per user |
//! | `rest` | the REST routes and their operations |
//! | `scenario` | timed scenario steps: parsing and running |
//! | [`v3`] | the Workspace API v3 over the same users and calls ([`V3`]) |
//!
//! # REST routes
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v2/me` | `{"statusCode":0,"user":{...}}`; with valid HTTP Basic and no valid session, a new `JSESSIONID` cookie |
//! | `GET /api/v2/me/calls` (any query) | `{"statusCode":0,"calls":[...]}`, every call of the session's user not yet `Completed` |
//! | `GET /api/v2/me/calls/{id}` | `{"statusCode":0,"call":{...}}` |
//! | `POST /api/v2/me/calls/{id}` | `{"statusCode":0}` for `operationName` `AttachUserData`, `UpdateUserData`, `DeleteUserDataPair` (`key`), `DeleteUserData`, `Answer`, `Hold`, `Retrieve`, `Hangup`, `Complete` |
//! | `GET /api/v2/me/devices` (any query) | `{"statusCode":0,"devices":[...]}`: the user's one device, numbered by [`GwsSimConfig::number_of`], its `userState` the agent state |
//! | `POST /api/v2/me/channels/voice` | `{"statusCode":0}` for `operationName` `Ready`, `NotReady`, `AfterCallWork`; then a `DeviceStateChangeMessage` on [`DEVICES_CHANNEL`] |
//! | `POST /api/v2/me` | `StartContactCenterSession` (`channels`, optional string `place`, `devicePath`, `loginCode`, `queue`): logs the agent in on voice, `{"statusCode":0}`; a channel other than `voice` makes it `statusCode` 7 with a result per channel under `channels` (the simulator's layout: GWS does not document it), and no `voice` at all 503 / 4. `EndContactCenterSession`: logs the agent out and ends the HTTP session |
//!
//! [`GwsSim::stats`] counts logins and every `operationName` received, so a test can tell
//! that a passive client never sent `StartContactCenterSession` or `EndContactCenterSession`.
//! [`GwsSim::publish_error_message`] sends a user an `ErrorMessage`.
//!
//! A request is authenticated by a valid `JSESSIONID` cookie or by HTTP Basic with a
//! configured user (which opens a session); otherwise it gets 401 with
//! `WWW-Authenticate: Basic realm="gws"`. With CSRF on, every GET answer names the header
//! (`X-CSRF-HEADER: X-CSRF-TOKEN`) and the session's token (`X-CSRF-TOKEN`), and a POST, PUT or
//! DELETE without that token gets 403 `{"statusCode":3,"statusMessage":"Missing or invalid
//! Csrf token"}`. Errors: unknown call 404 / `statusCode` 6; missing `operationName`, `userData`
//! or `key` 400 / 1; an operation the call's state does not allow 400 / 2.
//!
//! # User data
//!
//! A call's user data is an ordered list of pairs whose values are kept as the exact JSON
//! text received. `AttachUserData` appends every pair, even for a key already present (the
//! key then appears twice in the call's JSON text); `UpdateUserData` replaces the value of
//! every occurrence of a key, or appends it when absent; `DeleteUserDataPair` removes every
//! occurrence of `key`; `DeleteUserData` removes all pairs, and the call's `userData`
//! property disappears. Each operation publishes `AttachedDataChanged` with the whole call.
//!
//! # Calls
//!
//! Inbound and internal calls start `Ringing` and are answered (`Answer`); outbound calls
//! start `Dialing` and are established when the far end answers
//! ([`GwsSim::remote_answer`]). `Established` ⇄ `Held` (`Hold`, `Retrieve`); `Hangup` from
//! `Dialing`, `Ringing`, `Established` or `Held` → `Released` → `Completed`. Every transition
//! publishes `StatusChange`. `capabilities` lists what GWS's documented samples list for the
//! state (no sample shows a ringing call: there it is `Answer`, `Hangup` and the user-data
//! operations); user-data operations are accepted while the call is up, as those lists say.
//!
//! **How a call completes.** GWS's documentation is silent on how a released call leaves the
//! calls list. The simulator's assumption: a released call stays listed, with empty
//! `capabilities`, during its wrap-up; when the wrap-up ends it publishes one last
//! `StatusChange` with state `Completed` and is no longer listed. The wrap-up ends with
//! [`GwsSim::complete`] (the simulator's own `operationName` `Complete`, or a scenario's
//! `complete` step); the living contact center completes its calls 1–2 s after the hangup.
//!
//! # The living contact center
//!
//! [`GwsSim::run_living_center_for`] keeps calls coming for one user until the simulator is
//! dropped: every few seconds a call arrives (mostly inbound, some internal and outbound),
//! rings or dials, is established, gets data attached by an "IVR" and then by the agent
//! (attach, update, delete-pair, a key sometimes twice), is sometimes held and retrieved, is
//! hung up and completes after a short wrap-up. A seed makes it repeatable per user.
//! [`GwsSimConfig::number_of`] gives each user's own number.
//!
//! # Scenarios
//!
//! A scenario is a list of timed steps (see [`parse_scenario`] for the file format), run for
//! one user by [`GwsSim::run_scenario_for`].

mod agent;
mod auth;
mod calls;
mod center;
mod rest;

pub(crate) use rest::status as refusal;
mod scenario;
pub mod v3;

pub use v3::{V3Restart, V3};

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gws_cometd::gws::api::V3_VOICE_CHANNEL;
use gws_cometd::gws::Api;

pub use agent::{AgentState, GwsStats};
pub use calls::{NewCall, RawPairs, SimCallError, SimCallState, SimCallType};
pub use scenario::{
    load_scenario, parse_scenario, CallRef, ScenarioAction, ScenarioError, ScenarioStep,
};

/// The channel call notifications are published on.
pub const CALLS_CHANNEL: &str = "/v2/me/calls";

/// The channel device (agent state) notifications are published on.
pub const DEVICES_CHANNEL: &str = "/v2/me/devices";

/// The name of the CSRF header the simulator announces and expects.
pub const CSRF_HEADER: &str = "X-CSRF-TOKEN";

/// Receives every notification: the user it is for (the call's owner), the channel and the
/// `data` JSON text. Called in the order the changes happened, outside the simulator's state
/// lock: it may read the simulator (`session_of`, `call_json`, ...) but must not change it
/// (that would deadlock).
pub type Publish = Arc<dyn Fn(&str, &str, String) + Send + Sync>;

/// Answers a user's call read on an API generation in place of the simulator's own calls
/// (the calls as a JSON array of call objects, given as they are: `GET /api/v2/me/calls`
/// lists them for v2, `current-session` and `voice/calls` for v3), or `None` to leave the
/// read to the simulator: how a replay serves the calls of its recording. Set with
/// [`GwsSim::set_calls_source`].
pub type CallsSource = Arc<dyn Fn(&str, Api) -> Option<String> + Send + Sync>;

/// How the simulated GWS behaves.
#[derive(Clone)]
pub struct GwsSimConfig {
    /// The accepted users as `(name, password)`; the first is the default user, who owns the
    /// calls of [`GwsSim::ring_inbound`] and [`GwsSim::run_scenario`].
    pub users: Vec<(String, String)>,
    /// Whether CSRF protection is on (default `true`).
    pub csrf: bool,
    /// HTTP sessions unused for this long expire (default: never).
    pub session_ttl: Option<Duration>,
    /// The URL the simulator is reached at, used in the calls' `uri` and `deviceUri`
    /// (default `http://127.0.0.1:8090`).
    pub public_url: String,
    /// How a call's `id` looks (default [`CallIdForm::ConnId`], as real servers send).
    pub call_ids: CallIdForm,
    /// How `participants` is written (default [`ParticipantsForm::Objects`]).
    pub participants: ParticipantsForm,
}

/// How the simulator writes a call's `id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CallIdForm {
    /// As real captures show it: `id` is the connection id, 16 hex digits like
    /// `0071025563e9f00f` (also sent as `connId`), and `callUuid` differs
    /// (`00QEAG4KU4A5P78IG2DAHG5AES00000F`).
    #[default]
    ConnId,
    /// As most documented samples show it: `id` equals `callUuid`.
    CallUuid,
}

/// How the simulator writes a call's `participants`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParticipantsForm {
    /// Current servers: objects with `e164Number`, `formattedPhoneNumber`, `phoneNumber` and
    /// `digits`.
    #[default]
    Objects,
    /// Older servers: plain number strings, with the details in `participantsInfo`
    /// (`digits`, `e164Number`, `formattedPhoneNumber`).
    StringsWithInfo,
}

impl GwsSimConfig {
    /// A configuration accepting `user` with `password`, CSRF on, sessions that never expire.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        GwsSimConfig {
            users: vec![(user.into(), password.into())],
            csrf: true,
            session_ttl: None,
            public_url: "http://127.0.0.1:8090".into(),
            call_ids: CallIdForm::default(),
            participants: ParticipantsForm::default(),
        }
    }

    /// Accepts one more user. A name already present keeps its first password.
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        let user = user.into();
        if !self.users.iter().any(|(u, _)| *u == user) {
            self.users.push((user, password.into()));
        }
        self
    }

    /// The default (first) user's name; empty when no user is configured.
    pub fn default_user(&self) -> &str {
        self.users.first().map_or("", |(u, _)| u.as_str())
    }

    /// The agent's phone number (DN) of a configured user: `5001` for the first, `5002` for
    /// the second, ... The living contact center and `dial` scenario steps use it.
    pub fn number_of(&self, user: &str) -> Option<String> {
        let i = self.users.iter().position(|(u, _)| u == user)?;
        Some((5001 + i).to_string())
    }

    fn knows(&self, user: &str) -> bool {
        self.users.iter().any(|(u, _)| u == user)
    }
}

impl fmt::Debug for GwsSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("GwsSimConfig")
            .field("users", &names)
            .field("csrf", &self.csrf)
            .field("session_ttl", &self.session_ttl)
            .field("public_url", &self.public_url)
            .field("call_ids", &self.call_ids)
            .field("participants", &self.participants)
            .finish()
    }
}

/// Everything the simulator's REST model changes, behind one lock.
#[derive(Default)]
struct State {
    auth: auth::Sessions,
    calls: calls::Calls,
    agents: agent::Agents,
    stats: GwsStats,
}

struct Inner {
    config: GwsSimConfig,
    publish: Publish,
    state: Mutex<State>,
    /// Held from a change until its notifications are published, so they go out in the
    /// order the changes happened.
    publish_order: Mutex<()>,
    /// Dropped with the simulator; scenario tasks watch it and stop.
    alive: tokio::sync::watch::Sender<()>,
    /// Who answers call listings instead of the model, for some users (a replay).
    calls_source: std::sync::OnceLock<CallsSource>,
    /// Whether v3 notifications are published too (see [`GwsSim::publish_v3`]).
    v3: std::sync::atomic::AtomicBool,
}

/// The simulated GWS REST server and call model. Cloning shares it; scenario tasks stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct GwsSim {
    inner: Arc<Inner>,
}

impl fmt::Debug for GwsSim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GwsSim")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the simulator down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A short stable hash, for ids derived from names.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl GwsSim {
    /// A simulator with no calls and no sessions; notifications go to `publish`.
    pub fn new(config: GwsSimConfig, publish: Publish) -> Self {
        let (alive, _) = tokio::sync::watch::channel(());
        GwsSim {
            inner: Arc::new(Inner {
                config,
                publish,
                state: Mutex::new(State::default()),
                publish_order: Mutex::new(()),
                alive,
                calls_source: std::sync::OnceLock::new(),
                v3: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Lets `source` answer the call reads of the users it knows, on either generation
    /// (see [`CallsSource`]); only the first source set is kept. Operations still act on
    /// the simulator's own calls.
    pub fn set_calls_source(&self, source: CallsSource) {
        if self.inner.calls_source.set(source).is_err() {
            tracing::warn!("a calls source was already set: the new one is ignored");
        }
    }

    /// The `GET /api/v2/me/calls` reply body for `user`: the calls source's when it knows
    /// the user, else the simulator's.
    fn listed_calls(&self, user: &str) -> String {
        match self.sourced_calls(user, Api::V2) {
            Some(calls) => format!(r#"{{"statusCode":0,"calls":{calls}}}"#),
            None => self.calls_json_for(user),
        }
    }

    /// `user`'s calls for a v3 read, as a JSON array: the calls source's when it knows the
    /// user, else the simulator's.
    pub(crate) fn listed_calls_v3(&self, user: &str) -> String {
        self.sourced_calls(user, Api::V3)
            .unwrap_or_else(|| self.calls_v3_for(user))
    }

    fn sourced_calls(&self, user: &str, api: Api) -> Option<String> {
        self.inner.calls_source.get().and_then(|s| s(user, api))
    }

    /// The configuration.
    pub fn config(&self) -> &GwsSimConfig {
        &self.inner.config
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    /// Runs a change under the state lock, then publishes its notifications in order.
    fn change<T, E>(
        &self,
        f: impl FnOnce(&mut State, &GwsSimConfig) -> Result<(T, Vec<Note>), E>,
    ) -> Result<T, E> {
        let _order = lock(&self.inner.publish_order);
        let (value, notes) = {
            let mut state = self.state();
            f(&mut state, &self.inner.config)?
        };
        let v3 = self.inner.v3.load(std::sync::atomic::Ordering::Relaxed);
        for note in notes {
            if note.channel == V3_VOICE_CHANNEL && !v3 {
                continue;
            }
            (self.inner.publish)(&note.user, note.channel, note.data);
        }
        Ok(value)
    }

    /// From now on, every change of a call is also published as the Workspace API v3's
    /// `CallStateChanged` on [`V3_VOICE_CHANNEL`], after its v2 notification (off until
    /// then: a simulator serving only v2 publishes only v2). [`GwsSimServer`](crate::GwsSimServer)
    /// turns it on, as it serves both.
    pub fn publish_v3(&self) {
        self.inner
            .v3
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A notification for one user: the channel and the `data` JSON text.
struct Note {
    user: String,
    channel: &'static str,
    data: String,
}

impl Note {
    /// On [`CALLS_CHANNEL`].
    fn call(user: &str, data: String) -> Self {
        Note {
            user: user.to_owned(),
            channel: CALLS_CHANNEL,
            data,
        }
    }
}

#[cfg(test)]
mod test_support;
