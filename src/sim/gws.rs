//! GWS REST semantics of the simulator: login, HTTP sessions, CSRF, a call model and the
//! user-data operations, independent of any HTTP server.
//!
//! [`GwsSim::handle`] answers a [`SimRequest`] with a [`SimResponse`] for every route under
//! `/api/v2/me` and returns `None` for everything else (the Bayeux endpoint). Each change of
//! a call is handed to the `publish` callback given to [`GwsSim::new`] as the JSON text of a
//! `CallStateChangeMessage` for the channel [`CALLS_CHANNEL`], with the call's owner.
//!
//! Several users may be configured ([`GwsSimConfig::with_user`]). Every call belongs to one
//! user; REST requests see only their session user's calls (another user's call answers
//! 404 / `statusCode` 6, like an unknown one), and notifications name the owner so a server
//! can deliver them to that user's Bayeux sessions only.
//!
//! # REST routes
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v2/me` | `{"statusCode":0,"user":{...}}`; with valid HTTP Basic and no valid session, a new `JSESSIONID` cookie |
//! | `GET /api/v2/me/calls` (any query) | `{"statusCode":0,"calls":[...]}`, every call of the session's user not yet `Completed` |
//! | `GET /api/v2/me/calls/{id}` | `{"statusCode":0,"call":{...}}` |
//! | `POST /api/v2/me/calls/{id}` | `{"statusCode":0}` for `operationName` `AttachUserData`, `UpdateUserData`, `DeleteUserDataPair` (`key`), `DeleteUserData`, `Answer`, `Hold`, `Retrieve`, `Release`, `Complete` |
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
//! `Ringing` → `Established` ⇄ `Held` → `Released` → `Completed`; `Release` is allowed from
//! `Ringing`, `Established` and `Held`. Every transition publishes `StatusChange`.
//!
//! # Scenario files
//!
//! A scenario is a list of timed steps, written either as one JSON array of step objects or
//! as JSON Lines (one step object per line; blank lines and lines starting with `#` are
//! skipped). Each step has `at_ms`, the time since the scenario started, and exactly one
//! action. Steps run in the order written; a step whose time has passed runs at once.
//!
//! ```text
//! {"at_ms":500,"ring":{"from":"5115","to":"5001"}}
//! {"at_ms":1500,"answer":0}
//! {"at_ms":2500,"attach":{"call":0,"userData":{"AccountNumber":"12345","Priority":2}}}
//! {"at_ms":3000,"update":{"call":0,"userData":{"Priority":3}}}
//! {"at_ms":3500,"delete_pair":{"call":0,"key":"Priority"}}
//! {"at_ms":4000,"hold":0}
//! {"at_ms":5000,"retrieve":0}
//! {"at_ms":6000,"delete_all":0}
//! {"at_ms":7000,"release":0}
//! {"at_ms":8000,"complete":"01GWSSIM000000000000000000000001"}
//! ```
//!
//! A call is named by its index among the calls this scenario rang (`0` is the first) or by
//! its id as a string. `ring` gives the caller (`from`, the call's `ani`) and the agent's
//! number (`to`, the `dnis` and the notification's `phoneNumber`).

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::HeaderMap;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::fixture::{FixtureError, Result};

/// The channel call notifications are published on.
pub const CALLS_CHANNEL: &str = "/v2/me/calls";

/// The name of the CSRF header the simulator announces and expects.
pub const CSRF_HEADER: &str = "X-CSRF-TOKEN";

/// How many completed calls are remembered (so late operations on them answer
/// `statusCode` 2 rather than 6); older ones are forgotten.
const COMPLETED_CALLS_KEPT: usize = 100;

/// Receives every notification: the user it is for (the call's owner), the channel and the
/// `data` JSON text. Called in the order the changes happened, outside the simulator's state
/// lock: it may read the simulator (`session_of`, `call_json`, ...) but must not change it
/// (that would deadlock).
pub type Publish = Arc<dyn Fn(&str, &str, String) + Send + Sync>;

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
}

impl GwsSimConfig {
    /// A configuration accepting `user` with `password`, CSRF on, sessions that never expire.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        GwsSimConfig {
            users: vec![(user.into(), password.into())],
            csrf: true,
            session_ttl: None,
            public_url: "http://127.0.0.1:8090".into(),
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
            .finish()
    }
}

/// An HTTP request as the simulator needs to see it.
#[derive(Debug)]
pub struct SimRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without query.
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a [u8],
}

/// The simulator's answer to a [`SimRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimResponse {
    /// The HTTP status.
    pub status: u16,
    /// Headers to send, in order (`Content-Type` included).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl SimResponse {
    fn json(status: u16, body: impl Into<String>) -> Self {
        SimResponse {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json;charset=UTF-8".into(),
            )],
            body: body.into().into_bytes(),
        }
    }

    fn status(status: u16, code: i64, message: &str) -> Self {
        Self::json(
            status,
            format!(r#"{{"statusCode":{code},"statusMessage":{}}}"#, js(message)),
        )
    }

    fn ok() -> Self {
        Self::json(200, r#"{"statusCode":0}"#)
    }
}

/// The state of a simulated call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimCallState {
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
            Self::Ringing => "Ringing",
            Self::Established => "Established",
            Self::Held => "Held",
            Self::Released => "Released",
            Self::Completed => "Completed",
        }
    }

    fn capabilities(self) -> &'static str {
        match self {
            Self::Ringing => {
                r#"["Answer","Release","AttachUserData","DeleteUserData","UpdateUserData"]"#
            }
            Self::Established => {
                r#"["Hold","Release","AttachUserData","DeleteUserData","UpdateUserData","SendDtmf","InitiateTransfer","InitiateConference","SingleStepTransfer"]"#
            }
            Self::Held => {
                r#"["Retrieve","Release","AttachUserData","DeleteUserData","UpdateUserData"]"#
            }
            Self::Released => r#"["Complete","AttachUserData","DeleteUserData","UpdateUserData"]"#,
            Self::Completed => "[]",
        }
    }
}

impl fmt::Display for SimCallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

struct HttpSession {
    user: String,
    csrf: String,
    last_used: Instant,
}

struct SimCall {
    id: String,
    /// The user whose calls list shows it and who gets its notifications.
    owner: String,
    conn_id: String,
    state: SimCallState,
    ani: String,
    dnis: String,
    user_data: RawPairs,
    started: Instant,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, HttpSession>,
    calls: Vec<SimCall>,
    next_call: u64,
    /// Logins still to refuse with HTTP 503 (see [`GwsSim::fail_logins`]).
    failing_logins: usize,
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
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GwsSimConfig {
        &self.inner.config
    }

    /// Answers a GWS REST request, or `None` when the path is not under `/api/v2/me`.
    pub fn handle(&self, req: &SimRequest<'_>) -> Option<SimResponse> {
        let path = req.path.trim_end_matches('/');
        let rest = path.strip_prefix("/api/v2/me")?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        if self.refuse_login(req.headers) {
            return Some(SimResponse::json(503, "Service Unavailable"));
        }
        let (session_id, mut set_cookie) = match self.authenticate(req.headers) {
            Some(found) => found,
            None => {
                let mut resp = SimResponse::status(401, 20, "Authentication required");
                resp.headers
                    .push(("WWW-Authenticate".into(), r#"Basic realm="gws""#.into()));
                return Some(resp);
            }
        };
        let reads = matches!(req.method, "GET" | "HEAD");
        let user = lock(&self.inner.state)
            .sessions
            .get(&session_id)
            .map(|s| s.user.clone())
            .unwrap_or_default();
        let mut resp = if !reads && !self.csrf_matches(&session_id, req.headers) {
            SimResponse::status(403, 3, "Missing or invalid Csrf token")
        } else {
            self.route(&user, req.method, rest, req.body)
        };
        if let Some(cookie) = set_cookie.take() {
            resp.headers.push(("Set-Cookie".into(), cookie));
        }
        if reads && self.inner.config.csrf {
            if let Some(token) = lock(&self.inner.state)
                .sessions
                .get(&session_id)
                .map(|s| s.csrf.clone())
            {
                resp.headers
                    .push(("X-CSRF-HEADER".into(), CSRF_HEADER.into()));
                resp.headers.push((CSRF_HEADER.into(), token));
            }
        }
        Some(resp)
    }

    /// The user of the HTTP session named by the request's `JSESSIONID` cookie, if that
    /// session is valid. Used to bind Bayeux sessions to HTTP sessions.
    pub fn session_of(&self, headers: &HeaderMap) -> Option<String> {
        let id = jsessionid(headers)?;
        let mut state = lock(&self.inner.state);
        self.live_session(&mut state, &id).map(|s| s.user.clone())
    }

    /// Whether a state-changing request (such as a CometD POST) with these headers passes
    /// the CSRF check: always when CSRF is off, otherwise when it carries its session's
    /// token.
    pub fn csrf_ok(&self, headers: &HeaderMap) -> bool {
        if !self.inner.config.csrf {
            return true;
        }
        jsessionid(headers).is_some_and(|id| self.csrf_matches(&id, headers))
    }

    /// Makes the next `n` logins (requests with Basic credentials and no live session) fail
    /// with a bare HTTP 503, as a GWS node restarting behind a load balancer would.
    pub fn fail_logins(&self, n: usize) {
        lock(&self.inner.state).failing_logins = n;
    }

    /// Forgets every HTTP session: the next REST call answers 401 and
    /// [`GwsSim::session_of`] answers `None` until the client logs in again.
    pub fn expire_http_sessions(&self) {
        lock(&self.inner.state).sessions.clear();
    }

    /// Gives every HTTP session a new CSRF token, so requests with the old one get 403.
    pub fn rotate_csrf_tokens(&self) {
        for session in lock(&self.inner.state).sessions.values_mut() {
            session.csrf = random_token();
        }
    }

    /// An inbound call from `from` to the agent's number `to` starts ringing for the default
    /// user; returns its id.
    pub fn ring_inbound(&self, from: &str, to: &str) -> String {
        let user = self.inner.config.default_user().to_owned();
        self.ring(&user, from, to)
    }

    /// Like [`ring_inbound`](Self::ring_inbound) for `user`'s calls; `None` (and no call)
    /// when `user` is not configured.
    pub fn ring_inbound_for(&self, user: &str, from: &str, to: &str) -> Option<String> {
        self.inner
            .config
            .knows(user)
            .then(|| self.ring(user, from, to))
    }

    fn ring(&self, user: &str, from: &str, to: &str) -> String {
        self.change(|state, public_url| {
            state.next_call += 1;
            let n = state.next_call;
            let call = SimCall {
                id: format!("01GWSSIM{n:024}"),
                owner: user.to_owned(),
                conn_id: format!("{:016x}", 0x0071_025b_d3c3_b000_u64.wrapping_add(n)),
                state: SimCallState::Ringing,
                ani: from.to_owned(),
                dnis: to.to_owned(),
                user_data: Vec::new(),
                started: Instant::now(),
            };
            let note = (
                call.owner.clone(),
                call.notification("StatusChange", public_url),
            );
            let id = call.id.clone();
            state.calls.push(call);
            Ok((id, vec![note]))
        })
        .unwrap_or_default()
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

    /// Ringing, Established or Held → Released.
    pub fn release(&self, id: &str) -> Result<(), SimCallError> {
        use SimCallState::*;
        self.transition(id, "Release", &[Ringing, Established, Held], Released)
    }

    /// Released → Completed; the call is no longer listed.
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
        let state = lock(&self.inner.state);
        let call = state.calls.iter().find(|c| c.id == id)?;
        Some(call.json(&self.inner.config.public_url))
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
        let state = lock(&self.inner.state);
        let mut out = String::from(r#"{"statusCode":0,"calls":["#);
        let live = state
            .calls
            .iter()
            .filter(|c| c.state != SimCallState::Completed && keep(c));
        for (i, call) in live.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&call.json(&self.inner.config.public_url));
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
        let state = lock(&self.inner.state);
        let live = state
            .calls
            .iter()
            .filter(|c| c.state != SimCallState::Completed && keep(c));
        live.map(|c| c.id.clone()).collect()
    }

    /// Runs `steps` for the default user on a tokio task (see the module docs). The task
    /// stops after the last step, or as soon as the simulator is dropped. Must be called
    /// inside a tokio runtime.
    pub fn run_scenario(&self, steps: Vec<ScenarioStep>) -> tokio::task::JoinHandle<()> {
        let user = self.inner.config.default_user().to_owned();
        tokio::spawn(self.scenario(user, steps))
    }

    /// Like [`run_scenario`](Self::run_scenario), ringing `user`'s calls.
    pub fn run_scenario_for(
        &self,
        user: &str,
        steps: Vec<ScenarioStep>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.scenario(user.to_owned(), steps))
    }

    /// The scenario as a future, for callers that own the task. Its clock starts now.
    pub(crate) fn scenario(
        &self,
        user: String,
        steps: Vec<ScenarioStep>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let mut alive = self.inner.alive.subscribe();
        let start = tokio::time::Instant::now();
        async move {
            let mut rung: Vec<String> = Vec::new();
            for (n, step) in steps.into_iter().enumerate() {
                tokio::select! {
                    _ = tokio::time::sleep_until(start + step.at) => {}
                    _ = alive.changed() => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let sim = GwsSim { inner };
                if let Err(e) = sim.run_step(&user, step.action, &mut rung) {
                    tracing::warn!(step = n + 1, %user, "scenario step failed: {e}");
                }
            }
        }
    }

    /// The built-in scenario: an inbound call from 5115 to 5001 rings after 0.5 s, is
    /// answered 1 s later, gets `AccountNumber` attached, and stays established.
    pub fn default_scenario() -> Vec<ScenarioStep> {
        let account = RawValue::from_string(r#""12345""#.into()).ok();
        let mut steps = vec![
            ScenarioStep {
                at: Duration::from_millis(500),
                action: ScenarioAction::Ring {
                    from: "5115".into(),
                    to: "5001".into(),
                },
            },
            ScenarioStep {
                at: Duration::from_millis(1500),
                action: ScenarioAction::Answer(CallRef::Index(0)),
            },
        ];
        if let Some(account) = account {
            steps.push(ScenarioStep {
                at: Duration::from_millis(2500),
                action: ScenarioAction::Attach {
                    call: CallRef::Index(0),
                    user_data: vec![("AccountNumber".into(), account)],
                },
            });
        }
        steps
    }

    fn run_step(
        &self,
        user: &str,
        action: ScenarioAction,
        rung: &mut Vec<String>,
    ) -> Result<(), String> {
        let resolve = |call: &CallRef| match call {
            CallRef::Id(id) => Ok(id.clone()),
            CallRef::Index(i) => rung
                .get(*i)
                .cloned()
                .ok_or_else(|| format!("call #{i} has not rung (only {} have)", rung.len())),
        };
        let done = match action {
            ScenarioAction::Ring { from, to } => {
                let id = self
                    .ring_inbound_for(user, &from, &to)
                    .ok_or_else(|| format!("unknown user {user:?}"))?;
                rung.push(id);
                Ok(())
            }
            ScenarioAction::Answer(c) => self.answer(&resolve(&c)?),
            ScenarioAction::Hold(c) => self.hold(&resolve(&c)?),
            ScenarioAction::Retrieve(c) => self.retrieve(&resolve(&c)?),
            ScenarioAction::Release(c) => self.release(&resolve(&c)?),
            ScenarioAction::Complete(c) => self.complete(&resolve(&c)?),
            ScenarioAction::Attach { call, user_data } => {
                self.attach_user_data(&resolve(&call)?, user_data)
            }
            ScenarioAction::Update { call, user_data } => {
                self.update_user_data(&resolve(&call)?, user_data)
            }
            ScenarioAction::DeletePair { call, key } => {
                self.delete_user_data_pair(&resolve(&call)?, &key)
            }
            ScenarioAction::DeleteAll(c) => self.delete_user_data(&resolve(&c)?),
        };
        done.map_err(|e| e.to_string())
    }

    /// Runs a change under the state lock, then publishes its notifications in order.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut State, &str) -> Result<(T, Vec<(String, String)>), SimCallError>,
    ) -> Result<T, SimCallError> {
        let _order = lock(&self.inner.publish_order);
        let (value, notes) = {
            let mut state = lock(&self.inner.state);
            f(&mut state, &self.inner.config.public_url)?
        };
        for (user, note) in notes {
            (self.inner.publish)(&user, CALLS_CHANNEL, note);
        }
        Ok(value)
    }

    fn transition(
        &self,
        id: &str,
        operation: &'static str,
        from: &[SimCallState],
        to: SimCallState,
    ) -> Result<(), SimCallError> {
        self.change(|state, public_url| {
            let call = find_call(state, id)?;
            if !from.contains(&call.state) {
                return Err(SimCallError::InvalidState {
                    id: id.to_owned(),
                    state: call.state,
                    operation,
                });
            }
            call.state = to;
            let note = (
                call.owner.clone(),
                call.notification("StatusChange", public_url),
            );
            if to == SimCallState::Completed {
                prune_completed(state);
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
        self.change(|state, public_url| {
            let call = find_call(state, id)?;
            if call.state == SimCallState::Completed {
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
            let note = call.notification("AttachedDataChanged", public_url);
            Ok(((), vec![(call.owner.clone(), note)]))
        })
    }

    /// The session id of a valid cookie, or a new session opened by valid HTTP Basic
    /// (with its `Set-Cookie` value).
    /// Whether this request is a login (Basic credentials, no live session) that
    /// [`GwsSim::fail_logins`] says to refuse; counts it if so.
    fn refuse_login(&self, headers: &HeaderMap) -> bool {
        let mut state = lock(&self.inner.state);
        if state.failing_logins == 0 || basic_credentials(headers).is_none() {
            return false;
        }
        if let Some(id) = jsessionid(headers) {
            if self.live_session(&mut state, &id).is_some() {
                return false;
            }
        }
        state.failing_logins -= 1;
        true
    }

    fn authenticate(&self, headers: &HeaderMap) -> Option<(String, Option<String>)> {
        let mut state = lock(&self.inner.state);
        if let Some(id) = jsessionid(headers) {
            if self.live_session(&mut state, &id).is_some() {
                return Some((id, None));
            }
        }
        let (user, password) = basic_credentials(headers)?;
        let config = &self.inner.config;
        if !config
            .users
            .iter()
            .any(|(u, p)| *u == user && *p == password)
        {
            return None;
        }
        let id = random_token();
        state.sessions.insert(
            id.clone(),
            HttpSession {
                user,
                csrf: random_token(),
                last_used: Instant::now(),
            },
        );
        let cookie = format!("JSESSIONID={id}; Path=/; HttpOnly");
        Some((id, Some(cookie)))
    }

    /// The session `id` unless it is unknown or has expired (then it is forgotten).
    fn live_session<'s>(&self, state: &'s mut State, id: &str) -> Option<&'s mut HttpSession> {
        let ttl = self.inner.config.session_ttl;
        let expired = match state.sessions.get(id) {
            None => return None,
            Some(s) => ttl.is_some_and(|ttl| s.last_used.elapsed() > ttl),
        };
        if expired {
            state.sessions.remove(id);
            return None;
        }
        let session = state.sessions.get_mut(id)?;
        session.last_used = Instant::now();
        Some(session)
    }

    fn csrf_matches(&self, session_id: &str, headers: &HeaderMap) -> bool {
        if !self.inner.config.csrf {
            return true;
        }
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let state = lock(&self.inner.state);
        matches!((state.sessions.get(session_id), sent), (Some(s), Some(t)) if s.csrf == t)
    }

    /// Answers an authenticated request of `user`: only their calls are visible.
    fn route(&self, user: &str, method: &str, rest: &str, body: &[u8]) -> SimResponse {
        match (method, rest) {
            ("GET" | "HEAD", "") => SimResponse::json(200, self.me_json(user)),
            ("GET" | "HEAD", "/calls") => SimResponse::json(200, self.calls_json_for(user)),
            (_, "" | "/calls") => SimResponse::status(405, 1, "Method not allowed"),
            _ => {
                let Some(id) = rest.strip_prefix("/calls/").filter(|id| !id.contains('/')) else {
                    return SimResponse::status(404, 6, "Not found");
                };
                let id = percent_decode(id);
                if !self.owns(user, &id) {
                    // Another user's call is as unknown as a call that never existed.
                    return SimResponse::status(404, 6, "Call not found");
                }
                match method {
                    "GET" | "HEAD" => match self.call_json(&id) {
                        Some(call) => {
                            SimResponse::json(200, format!(r#"{{"statusCode":0,"call":{call}}}"#))
                        }
                        None => SimResponse::status(404, 6, "Call not found"),
                    },
                    "POST" => self.call_operation(&id, body),
                    _ => SimResponse::status(405, 1, "Method not allowed"),
                }
            }
        }
    }

    fn owns(&self, user: &str, id: &str) -> bool {
        lock(&self.inner.state)
            .calls
            .iter()
            .any(|c| c.id == id && c.owner == user)
    }

    fn me_json(&self, user: &str) -> String {
        let config = &self.inner.config;
        format!(
            r#"{{"statusCode":0,"user":{{"id":"{:08x}","userName":{},"firstName":"Sim","lastName":"Agent","roles":["ROLE_AGENT"],"enabled":true,"uri":{},"path":"/me"}}}}"#,
            fnv1a(user),
            js(user),
            js(&format!("{}/api/v2/me", config.public_url)),
        )
    }

    /// `POST /api/v2/me/calls/{id}`.
    fn call_operation(&self, id: &str, body: &[u8]) -> SimResponse {
        if self.call_json(id).is_none() {
            return SimResponse::status(404, 6, "Call not found");
        }
        let fields = match serde_json::from_slice::<Pairs>(body) {
            Ok(Pairs(fields)) => fields,
            Err(e) => return SimResponse::status(400, 1, &format!("Invalid JSON body: {e}")),
        };
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.get());
        let string = |name: &str| field(name).and_then(|v| serde_json::from_str::<String>(v).ok());
        let Some(operation) = string("operationName") else {
            return SimResponse::status(400, 1, "operationName is missing");
        };
        let user_data = || field("userData").and_then(|v| serde_json::from_str::<Pairs>(v).ok());
        let missing = |what| SimResponse::status(400, 1, what);
        let result = match operation.as_str() {
            "AttachUserData" => match user_data() {
                Some(Pairs(pairs)) => self.attach_user_data(id, pairs),
                None => return missing("userData is missing or not an object"),
            },
            "UpdateUserData" => match user_data() {
                Some(Pairs(pairs)) => self.update_user_data(id, pairs),
                None => return missing("userData is missing or not an object"),
            },
            "DeleteUserDataPair" => match string("key") {
                Some(key) => self.delete_user_data_pair(id, &key),
                None => return missing("key is missing"),
            },
            "DeleteUserData" => self.delete_user_data(id),
            "Answer" => self.answer(id),
            "Hold" => self.hold(id),
            "Retrieve" => self.retrieve(id),
            "Release" => self.release(id),
            "Complete" => self.complete(id),
            other => {
                return SimResponse::status(
                    400,
                    1,
                    &format!("Unsupported operationName {}", js(other)),
                )
            }
        };
        match result {
            Ok(()) => SimResponse::ok(),
            Err(SimCallError::NotFound(_)) => SimResponse::status(404, 6, "Call not found"),
            Err(e @ SimCallError::InvalidState { .. }) => {
                SimResponse::status(400, 2, &e.to_string())
            }
        }
    }
}

fn find_call<'s>(state: &'s mut State, id: &str) -> Result<&'s mut SimCall, SimCallError> {
    state
        .calls
        .iter_mut()
        .find(|c| c.id == id)
        .ok_or_else(|| SimCallError::NotFound(id.to_owned()))
}

fn prune_completed(state: &mut State) {
    let completed = state
        .calls
        .iter()
        .filter(|c| c.state == SimCallState::Completed)
        .count();
    let mut excess = completed.saturating_sub(COMPLETED_CALLS_KEPT);
    state.calls.retain(|c| {
        if excess > 0 && c.state == SimCallState::Completed {
            excess -= 1;
            false
        } else {
            true
        }
    });
}

impl SimCall {
    fn json(&self, public_url: &str) -> String {
        let id = js(&self.id);
        let party = js(&self.ani);
        let mut o = String::with_capacity(1024);
        let _ = write!(
            o,
            r#"{{"id":{id},"callUuid":{id},"connId":{},"state":"{}","callType":"Inbound","ani":{party},"dnis":{},"participants":[{{"e164Number":{party},"formattedPhoneNumber":{party},"phoneNumber":{party},"digits":{party}}}],"capabilities":{}"#,
            js(&self.conn_id),
            self.state.as_str(),
            js(&self.dnis),
            self.state.capabilities(),
        );
        if !self.user_data.is_empty() {
            o.push_str(r#","userData":{"#);
            for (i, (k, v)) in self.user_data.iter().enumerate() {
                if i > 0 {
                    o.push(',');
                }
                o.push_str(&js(k));
                o.push(':');
                o.push_str(v.get());
            }
            o.push('}');
        }
        let _ = write!(
            o,
            r#","duration":"{}","mute":"Off","supervisorListeningIn":false,"monitoredUserMuted":false,"recordingState":"Stopped","deviceUri":{},"uri":{},"path":{}}}"#,
            self.started.elapsed().as_secs(),
            js(&format!(
                "{public_url}/api/v2/devices/{:08x}",
                fnv1a(&self.dnis)
            )),
            js(&format!("{public_url}/api/v2/me/calls/{}", self.id)),
            js(&format!("/calls/{}", self.id)),
        );
        o
    }

    fn notification(&self, notification_type: &str, public_url: &str) -> String {
        format!(
            r#"{{"messageType":"CallStateChangeMessage","notificationType":{},"phoneNumber":{},"call":{}}}"#,
            js(notification_type),
            js(&self.dnis),
            self.json(public_url)
        )
    }
}

/// A JSON object read as ordered pairs: duplicate keys kept, values as exact text.
struct Pairs(RawPairs);

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

/// A JSON string literal.
fn js(s: &str) -> String {
    // Serializing a str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// 32 hex digits, unpredictable enough for a simulator's session ids and tokens.
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let _ = write!(out, "{:016x}", h.finish());
    }
    out
}

fn jsessionid(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == "JSESSIONID")
        .map(|(_, value)| value.to_owned())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One timed step of a scenario.
#[derive(Clone, Debug)]
pub struct ScenarioStep {
    /// When the step runs, counted from the scenario's start.
    pub at: Duration,
    /// What it does.
    pub action: ScenarioAction,
}

/// What a scenario step does.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ScenarioAction {
    /// An inbound call rings.
    Ring {
        /// The caller (`ani`).
        from: String,
        /// The agent's number (`dnis`).
        to: String,
    },
    /// Ringing → Established.
    Answer(CallRef),
    /// Established → Held.
    Hold(CallRef),
    /// Held → Established.
    Retrieve(CallRef),
    /// → Released.
    Release(CallRef),
    /// Released → Completed.
    Complete(CallRef),
    /// `AttachUserData`.
    Attach {
        /// The call.
        call: CallRef,
        /// The pairs to append.
        user_data: RawPairs,
    },
    /// `UpdateUserData`.
    Update {
        /// The call.
        call: CallRef,
        /// The pairs to set.
        user_data: RawPairs,
    },
    /// `DeleteUserDataPair`.
    DeletePair {
        /// The call.
        call: CallRef,
        /// The key to remove.
        key: String,
    },
    /// `DeleteUserData`.
    DeleteAll(CallRef),
}

/// A call named in a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallRef {
    /// The n-th call the scenario rang, from 0.
    Index(usize),
    /// A call id.
    Id(String),
}

/// Reads a scenario (a JSON array of steps or JSON Lines; see the module docs). Errors name
/// the 1-based line (for JSON Lines) or step.
pub fn parse_scenario(text: &str) -> Result<Vec<ScenarioStep>, String> {
    if text.trim_start().starts_with('[') {
        let steps: Vec<Box<RawValue>> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON array of steps: {e}"))?;
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| parse_step(s.get()).map_err(|e| format!("step {}: {e}", i + 1)))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|(i, l)| parse_step(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect()
    }
}

/// Reads a scenario file; see [`parse_scenario`].
pub fn load_scenario(path: &Path) -> Result<Vec<ScenarioStep>> {
    let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Open {
        path: path.to_owned(),
        source,
    })?;
    parse_scenario(&text).map_err(|message| FixtureError::Parse {
        path: path.to_owned(),
        line: message
            .strip_prefix("line ")
            .and_then(|m| m.split(':').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        column: 0,
        message,
    })
}

fn parse_step(text: &str) -> Result<ScenarioStep, String> {
    let Pairs(fields) =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let mut at = None;
    let mut action = None;
    for (key, value) in &fields {
        let value = value.get();
        if key == "at_ms" {
            let ms: u64 = serde_json::from_str(value)
                .map_err(|_| "at_ms must be a non-negative integer of milliseconds".to_owned())?;
            at = Some(Duration::from_millis(ms));
            continue;
        }
        if action.is_some() {
            return Err(format!("more than one action (second: {key:?})"));
        }
        action = Some(parse_action(key, value)?);
    }
    Ok(ScenarioStep {
        at: at.ok_or("at_ms is missing")?,
        action: action.ok_or(
            "no action (ring, answer, hold, retrieve, release, complete, attach, update, delete_pair, delete_all)",
        )?,
    })
}

fn parse_action(key: &str, value: &str) -> Result<ScenarioAction, String> {
    let call_ref = |v: &str| -> Result<CallRef, String> {
        if let Ok(i) = serde_json::from_str::<usize>(v) {
            Ok(CallRef::Index(i))
        } else if let Ok(id) = serde_json::from_str::<String>(v) {
            Ok(CallRef::Id(id))
        } else {
            Err(format!(
                "{key}: a call is an index (0, 1, ...) or an id string, not {v}"
            ))
        }
    };
    let object = |v: &str| -> Result<RawPairs, String> {
        serde_json::from_str::<Pairs>(v)
            .map(|p| p.0)
            .map_err(|_| format!("{key}: expected an object"))
    };
    let field = |pairs: &RawPairs, name: &str| -> Result<String, String> {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get().to_owned())
            .ok_or_else(|| format!("{key}: {name} is missing"))
    };
    let string = |text: String, name: &str| -> Result<String, String> {
        serde_json::from_str(&text).map_err(|_| format!("{key}: {name} must be a string"))
    };
    Ok(match key {
        "ring" => {
            let o = object(value)?;
            ScenarioAction::Ring {
                from: string(field(&o, "from")?, "from")?,
                to: string(field(&o, "to")?, "to")?,
            }
        }
        "answer" => ScenarioAction::Answer(call_ref(value)?),
        "hold" => ScenarioAction::Hold(call_ref(value)?),
        "retrieve" => ScenarioAction::Retrieve(call_ref(value)?),
        "release" => ScenarioAction::Release(call_ref(value)?),
        "complete" => ScenarioAction::Complete(call_ref(value)?),
        "delete_all" => ScenarioAction::DeleteAll(call_ref(value)?),
        "attach" | "update" => {
            let o = object(value)?;
            let call = call_ref(&field(&o, "call")?)?;
            let user_data = object(&field(&o, "userData")?)?;
            if key == "attach" {
                ScenarioAction::Attach { call, user_data }
            } else {
                ScenarioAction::Update { call, user_data }
            }
        }
        "delete_pair" => {
            let o = object(value)?;
            ScenarioAction::DeletePair {
                call: call_ref(&field(&o, "call")?)?,
                key: string(field(&o, "key")?, "key")?,
            }
        }
        other => return Err(format!("unknown field {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderValue, AUTHORIZATION, COOKIE};

    type Published = Arc<Mutex<Vec<(String, String)>>>;

    fn sim_with(config: GwsSimConfig) -> (GwsSim, Published) {
        let published: Published = Arc::default();
        let sink = published.clone();
        let sim = GwsSim::new(
            config,
            Arc::new(move |_user: &str, channel: &str, data: String| {
                lock(&sink).push((channel.to_owned(), data));
            }),
        );
        (sim, published)
    }

    fn sim() -> (GwsSim, Published) {
        sim_with(GwsSimConfig::new("agent", "pw"))
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        h
    }

    fn header<'r>(resp: &'r SimResponse, name: &str) -> Option<&'r str> {
        resp.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(resp: &SimResponse) -> &str {
        std::str::from_utf8(&resp.body).unwrap()
    }

    fn get(sim: &GwsSim, path: &str, headers: &HeaderMap) -> SimResponse {
        let req = SimRequest {
            method: "GET",
            path,
            query: None,
            headers,
            body: b"",
        };
        sim.handle(&req).expect("a GWS route")
    }

    fn post(sim: &GwsSim, path: &str, headers: &HeaderMap, body: &str) -> SimResponse {
        let req = SimRequest {
            method: "POST",
            path,
            query: None,
            headers,
            body: body.as_bytes(),
        };
        sim.handle(&req).expect("a GWS route")
    }

    /// Logs in and returns headers carrying the session cookie and CSRF token.
    fn login(sim: &GwsSim) -> HeaderMap {
        let resp = get(sim, "/api/v2/me", &basic("agent", "pw"));
        assert_eq!(resp.status, 200, "{}", body(&resp));
        let cookie = header(&resp, "Set-Cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        assert_eq!(header(&resp, "X-CSRF-HEADER"), Some(CSRF_HEADER));
        let token = header(&resp, CSRF_HEADER).unwrap();
        h.insert(CSRF_HEADER, HeaderValue::from_str(token).unwrap());
        h
    }

    fn user_data_of(data: &str) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        let call = v.get("call").unwrap_or(&v);
        // The raw text keeps duplicates; find the userData object text by position.
        call.get("userData")?;
        let start = data.find(r#""userData":"#)? + r#""userData":"#.len();
        let end = start + data[start..].find('}')? + 1;
        Some(data[start..end].to_owned())
    }

    #[test]
    fn basic_auth_on_me_opens_a_session_and_wrong_credentials_get_401() {
        let (sim, _) = sim();
        let resp = get(&sim, "/api/v2/me", &basic("agent", "wrong"));
        assert_eq!(resp.status, 401);
        assert_eq!(
            header(&resp, "WWW-Authenticate"),
            Some(r#"Basic realm="gws""#)
        );
        assert!(header(&resp, "Set-Cookie").is_none());
        assert_eq!(get(&sim, "/api/v2/me", &HeaderMap::new()).status, 401);

        let session = login(&sim);
        assert_eq!(sim.session_of(&session).as_deref(), Some("agent"));
        let me = get(&sim, "/api/v2/me", &session);
        assert_eq!(me.status, 200);
        assert!(
            header(&me, "Set-Cookie").is_none(),
            "a valid cookie keeps its session"
        );
        assert!(body(&me).contains(r#""userName":"agent""#));
        assert!(sim.csrf_ok(&session));
    }

    #[test]
    fn non_gws_paths_are_left_to_the_bayeux_server() {
        let (sim, _) = sim();
        let h = HeaderMap::new();
        for path in ["/api/v2/notifications", "/api/v2/meta", "/"] {
            let req = SimRequest {
                method: "POST",
                path,
                query: None,
                headers: &h,
                body: b"",
            };
            assert!(sim.handle(&req).is_none(), "{path}");
        }
    }

    #[test]
    fn state_changing_requests_need_the_sessions_csrf_token() {
        let (sim, _) = sim();
        let id = sim.ring_inbound("5115", "5001");
        let session = login(&sim);
        let path = format!("/api/v2/me/calls/{id}");
        let op = r#"{"operationName":"DeleteUserData"}"#;

        let mut without = session.clone();
        without.remove(CSRF_HEADER);
        let resp = post(&sim, &path, &without, op);
        assert_eq!(resp.status, 403);
        assert_eq!(
            body(&resp),
            r#"{"statusCode":3,"statusMessage":"Missing or invalid Csrf token"}"#
        );
        assert!(!sim.csrf_ok(&without));

        assert_eq!(post(&sim, &path, &session, op).status, 200);
        sim.rotate_csrf_tokens();
        assert_eq!(post(&sim, &path, &session, op).status, 403);

        let (open, _) = sim_with(GwsSimConfig {
            csrf: false,
            ..GwsSimConfig::new("agent", "pw")
        });
        let id = open.ring_inbound("5115", "5001");
        let resp = get(&open, "/api/v2/me", &basic("agent", "pw"));
        assert!(header(&resp, "X-CSRF-HEADER").is_none());
        let cookie = header(&resp, "Set-Cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        assert_eq!(
            post(&open, &format!("/api/v2/me/calls/{id}"), &h, op).status,
            200
        );
    }

    #[test]
    fn user_data_operations_follow_gws_semantics_and_publish_the_whole_call() {
        let (sim, published) = sim();
        let id = sim.ring_inbound("5115", "5001");
        let session = login(&sim);
        let path = format!("/api/v2/me/calls/{id}");
        let last = || lock(&published).last().cloned().unwrap();

        let attach = r#"{"operationName":"AttachUserData","userData":{"A":"1","Big":123456789012345678901234567890}}"#;
        let resp = post(&sim, &path, &session, attach);
        assert_eq!((resp.status, body(&resp)), (200, r#"{"statusCode":0}"#));
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
    fn bad_requests_get_gws_status_codes() {
        let (sim, published) = sim();
        let id = sim.ring_inbound("5115", "5001");
        let session = login(&sim);
        let path = format!("/api/v2/me/calls/{id}");
        let before = lock(&published).len();

        let resp = post(
            &sim,
            "/api/v2/me/calls/NOPE",
            &session,
            r#"{"operationName":"DeleteUserData"}"#,
        );
        assert_eq!(
            (resp.status, body(&resp)),
            (404, r#"{"statusCode":6,"statusMessage":"Call not found"}"#)
        );
        for bad in [
            "{}",
            "not json",
            r#"{"operationName":"AttachUserData"}"#,
            r#"{"operationName":"UpdateUserData","userData":[1]}"#,
            r#"{"operationName":"DeleteUserDataPair"}"#,
            r#"{"operationName":"Explode"}"#,
        ] {
            let resp = post(&sim, &path, &session, bad);
            assert_eq!(resp.status, 400, "{bad}");
            assert!(
                body(&resp).starts_with(r#"{"statusCode":1,"#),
                "{bad}: {}",
                body(&resp)
            );
        }
        let resp = post(&sim, &path, &session, r#"{"operationName":"Hold"}"#);
        assert_eq!(resp.status, 400);
        assert!(
            body(&resp).starts_with(r#"{"statusCode":2,"#),
            "{}",
            body(&resp)
        );
        assert_eq!(
            lock(&published).len(),
            before,
            "refused requests publish nothing"
        );
    }

    #[test]
    fn calls_move_through_their_states_and_completed_calls_are_not_listed() {
        let (sim, published) = sim();
        let id = sim.ring_inbound("5115", "5001");
        assert!(sim.hold(&id).is_err());
        sim.answer(&id).unwrap();
        sim.hold(&id).unwrap();
        sim.retrieve(&id).unwrap();
        sim.release(&id).unwrap();
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
        let seed = r#"{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged","phoneNumber":"5001","call":{"id":"01RCC3N118B1V0SL8O7GK2LAES00000R","callUuid":"01RCC3N118B1V0SL8O7GK2LAES00000R","connId":"0071025bd3c3b001","state":"Established","callType":"Inbound","ani":"5115","dnis":"5001","participants":[{"e164Number":"5115","formattedPhoneNumber":"5115","phoneNumber":"5115","digits":"5115"}],"capabilities":["Hold","Release","AttachUserData","DeleteUserData","UpdateUserData","SendDtmf","InitiateTransfer","InitiateConference","SingleStepTransfer"],"userData":{"AccountNumber":"12345"},"duration":"42","mute":"Off","supervisorListeningIn":false,"monitoredUserMuted":false,"recordingState":"Stopped","deviceUri":"http://127.0.0.1:8090/api/v2/devices/0b1e9f27","uri":"http://127.0.0.1:8090/api/v2/me/calls/01RCC3N118B1V0SL8O7GK2LAES00000R","path":"/calls/01RCC3N118B1V0SL8O7GK2LAES00000R"}}"#;
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
        assert_eq!(id.len(), 32);
    }

    #[test]
    fn expired_sessions_are_refused_until_the_next_login() {
        let (sim, _) = sim();
        let session = login(&sim);
        sim.expire_http_sessions();
        assert_eq!(get(&sim, "/api/v2/me/calls", &session).status, 401);
        assert_eq!(sim.session_of(&session), None);
        assert!(!sim.csrf_ok(&session));

        let (short, _) = sim_with(GwsSimConfig {
            session_ttl: Some(Duration::ZERO),
            ..GwsSimConfig::new("agent", "pw")
        });
        let session = login(&short);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(get(&short, "/api/v2/me/calls", &session).status, 401);
    }

    #[test]
    fn listing_and_single_call_routes_answer_current_calls() {
        let (sim, _) = sim();
        let a = sim.ring_inbound("5115", "5001");
        let session = login(&sim);
        let list = get(&sim, "/api/v2/me/calls", &session);
        assert_eq!(body(&list), sim.calls_json());
        assert!(body(&list).contains(&format!(r#""id":"{a}""#)));
        let one = get(&sim, &format!("/api/v2/me/calls/{a}"), &session);
        assert_eq!(
            body(&one),
            format!(
                r#"{{"statusCode":0,"call":{}}}"#,
                sim.call_json(&a).unwrap()
            )
        );
        assert_eq!(get(&sim, "/api/v2/me/calls/zzz", &session).status, 404);
        assert_eq!(sim.call_ids(), vec![a]);
    }

    #[test]
    fn scenarios_parse_from_json_lines_or_an_array_and_errors_name_the_line() {
        let lines = "# a call\n{\"at_ms\":500,\"ring\":{\"from\":\"5115\",\"to\":\"5001\"}}\n\n{\"at_ms\":1500,\"answer\":0}\n{\"at_ms\":2000,\"attach\":{\"call\":\"X\",\"userData\":{\"K\":1,\"K\":2}}}\n{\"at_ms\":2500,\"delete_pair\":{\"call\":0,\"key\":\"K\"}}\n";
        let steps = parse_scenario(lines).unwrap();
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[1].at, Duration::from_millis(1500));
        assert!(matches!(
            &steps[1].action,
            ScenarioAction::Answer(CallRef::Index(0))
        ));
        match &steps[2].action {
            ScenarioAction::Attach { call, user_data } => {
                assert_eq!(call, &CallRef::Id("X".into()));
                assert_eq!(user_data.len(), 2, "duplicate keys are kept");
            }
            other => panic!("{other:?}"),
        }
        let array = r#"[{"at_ms":0,"ring":{"from":"1","to":"2"}},{"at_ms":10,"complete":0}]"#;
        assert_eq!(parse_scenario(array).unwrap().len(), 2);

        let err = parse_scenario(
            "{\"at_ms\":1,\"ring\":{\"from\":\"1\",\"to\":\"2\"}}\n{\"at_ms\":2,\"dance\":0}",
        )
        .unwrap_err();
        assert!(err.starts_with("line 2:") && err.contains("dance"), "{err}");
        assert!(parse_scenario(r#"{"ring":{"from":"1","to":"2"}}"#)
            .unwrap_err()
            .contains("at_ms"));
        assert!(parse_scenario(r#"{"at_ms":1,"answer":0,"hold":0}"#)
            .unwrap_err()
            .contains("more than one"));
        assert!(parse_scenario(r#"[{"at_ms":1,"answer":true}]"#)
            .unwrap_err()
            .starts_with("step 1:"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_default_scenario_rings_answers_and_stays_established() {
        let (sim, published) = sim();
        let task = sim.run_scenario(GwsSim::default_scenario());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(sim.call_ids().is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ids = sim.call_ids();
        assert_eq!(ids.len(), 1);
        assert!(sim
            .call_json(&ids[0])
            .unwrap()
            .contains(r#""state":"Ringing""#));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(sim
            .call_json(&ids[0])
            .unwrap()
            .contains(r#""state":"Established""#));
        task.await.unwrap();
        tokio::time::sleep(Duration::from_secs(130)).await;
        let call = sim.call_json(&ids[0]).unwrap();
        assert!(call.contains(r#""state":"Established""#), "{call}");
        assert!(
            call.contains(r#""userData":{"AccountNumber":"12345"}"#),
            "{call}"
        );
        assert_eq!(lock(&published).len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scenario_stops_when_the_simulator_is_dropped() {
        let (sim, published) = sim();
        let steps = parse_scenario(
            "{\"at_ms\":10,\"ring\":{\"from\":\"1\",\"to\":\"2\"}}\n{\"at_ms\":60000,\"answer\":0}",
        )
        .unwrap();
        let task = sim.run_scenario(steps);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(lock(&published).len(), 1);
        drop(sim);
        tokio::time::timeout(Duration::from_millis(1), task)
            .await
            .expect("the task ends without waiting for its next step")
            .unwrap();
        assert_eq!(lock(&published).len(), 1);
    }

    #[test]
    fn config_debug_hides_the_password() {
        let config = GwsSimConfig::new("agent", "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn each_user_sees_and_is_notified_of_only_their_own_calls() {
        let published: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let sink = published.clone();
        let sim = GwsSim::new(
            GwsSimConfig::new("agent", "pw").with_user("other", "pw2"),
            Arc::new(move |user: &str, _channel: &str, data: String| {
                lock(&sink).push((user.to_owned(), data));
            }),
        );
        assert_eq!(sim.ring_inbound_for("nobody", "1", "2"), None);
        let mine = sim.ring_inbound("5115", "5001");
        let theirs = sim.ring_inbound_for("other", "6116", "6001").unwrap();
        let owners: Vec<String> = lock(&published).iter().map(|p| p.0.clone()).collect();
        assert_eq!(owners, ["agent", "other"]);
        assert_eq!(sim.call_ids_for("other"), vec![theirs.clone()]);

        let session = login(&sim);
        let list = body(&get(&sim, "/api/v2/me/calls", &session)).to_owned();
        assert!(list.contains(&mine) && !list.contains(&theirs), "{list}");
        let path = format!("/api/v2/me/calls/{theirs}");
        assert_eq!(get(&sim, &path, &session).status, 404);
        let resp = post(
            &sim,
            &path,
            &session,
            r#"{"operationName":"DeleteUserData"}"#,
        );
        assert_eq!(
            (resp.status, body(&resp)),
            (404, r#"{"statusCode":6,"statusMessage":"Call not found"}"#)
        );
        let resp = get(&sim, "/api/v2/me", &basic("other", "pw2"));
        assert_eq!(resp.status, 200);
        assert!(body(&resp).contains(r#""userName":"other""#));
        assert_eq!(get(&sim, "/api/v2/me", &basic("other", "pw")).status, 401);
        assert!(!format!("{:?}", sim.config()).contains("pw2"));
    }
}
