//! The Workspace API v3 (GWS 9, Genesys Multicloud CX) over the same users and calls as
//! API v2: a call rung by the living contact center or a scenario shows through both, and
//! an operation through one shows through the other.
//!
//! # Login
//!
//! | request | answer |
//! |---|---|
//! | `GET /auth/v3/oauth/authorize?response_type=code&client_id=..&redirect_uri=..[&state=..]` | the sign-in form (HTML), with an `AUTH_SESSIONID` cookie remembering `redirect_uri` |
//! | `POST /auth/v3/sign-in` (form `username`, `password`) | 302 to `redirect_uri?code=..[&state=..]`; bad credentials 401 with the form again |
//! | `POST /auth/v3/oauth/token` (HTTP Basic client, form `grant_type=password`, `username`, `password`; or `grant_type=authorization_code`, `code`, `redirect_uri`) | `{"access_token":..,"token_type":"bearer","expires_in":..,"scope":"*"}`; bad credentials 400 `invalid_grant`, no Basic 401 |
//! | `GET`/`POST /workspace/v3/initialize-workspace` with `?code=..&redirect_uri=..` or `Authorization: Bearer ..` | sets `WORKSPACE_SESSIONID`; `{"status":{"code":1},"data":{"user":{..}}}` |
//!
//! User names are the simulator's users, optionally as `\user` or `tenant\user` (any
//! tenant). Any client id and secret are accepted, until [`V3::register_client`] names the
//! code flow's clients: then authorize refuses (400, OAuth JSON) another client id or a
//! redirect URI other than the client's. A code is bound to the client id and redirect URI
//! of its authorize request, as a real server binds it: `initialize-workspace` wants the same
//! `redirect_uri` (else 401), the token endpoint the same client (Basic) and `redirect_uri`
//! (else 400 `invalid_grant`). Codes are single use. Sessions, codes
//! and tokens live in memory: a restarted simulator forgets them (401 on REST, 401 on
//! CometD) and a client logs in again.
//!
//! # Workspace (with the `WORKSPACE_SESSIONID` cookie; without it 401)
//!
//! | request | answer |
//! |---|---|
//! | `GET /workspace/v3/current-session` | `{"status":{"code":0},"data":{"user":{..,"activeSession":{"calls":[..]}}}}` |
//! | `GET /workspace/v3/voice/calls` | `{"status":{"code":0},"data":[..]}` |
//! | `POST /workspace/v3/voice/calls/{id}/{op}` | `{"status":{"code":0},"operationId":".."}` (see below) |
//! | `POST /workspace/v3/activate-channels`, `/voice/ready`, `/voice/not-ready` | `{"status":{"code":0}}` (ready and not-ready set the agent state) |
//! | `POST /workspace/v3/logout` | ends the session, `{"status":{"code":0}}` |
//! | `POST /workspace/v3/notifications` | CometD long polling for the session's user; `Content-Type: application/json` required (else 415) |
//!
//! The calls are those of v2's `GET /api/v2/me/calls`, in the v3 form (see the call
//! model's `render_v3`); while a v3 recording is served to the user, the recording's (see
//! [`crate::replay`]). Once a session of the user subscribes to
//! [`V3_INITIALIZATION_CHANNEL`](gws_cometd::gws::api::V3_INITIALIZATION_CHANNEL), it gets
//! `{"messageType":"WorkspaceInitializationComplete","state":"Complete","data":{"user":..}}`
//! there; every change of a call comes as `CallStateChanged` on
//! [`V3_VOICE_CHANNEL`](gws_cometd::gws::api::V3_VOICE_CHANNEL).
//!
//! # Operations
//!
//! `{op}` is `answer`, `hold`, `retrieve`, `release`, `complete`, `attach-user-data`,
//! `update-user-data` (`{"data":{"userData":[KVList]}}`), `delete-user-data-pair`
//! (`{"data":{"key":".."}}`) or `delete-user-data`. The reply comes at once; the change
//! arrives as a `CallStateChanged` notification (`AttachedDataChanged` for user data,
//! `StateChange` otherwise) carrying the same `operationId`. An operation the call's state refuses gets the same reply,
//! then `{"messageType":"EventError","error":{"errorCode":1,"errorMessage":".."},
//! "operationId":..,"callId":..}` on the voice channel. An unknown (or another user's)
//! call: 404 `{"status":{"code":2,"message":"Call not found"}}` and an `EventError` with
//! `errorCode` 2. A malformed body or unknown operation: 400 `{"status":{"code":3,..}}`.
//! The status and error codes are the simulator's: the reference does not list them.
//!
//! # Fault mode
//!
//! Both off by default, as GWS 9 may behave:
//!
//! - [`V3::forbid_current_session_after_handshake`]: `current-session` answers 403 for a
//!   while after a session's first CometD request.
//! - [`V3::deliver_without_subscription`]: the v3 channels' messages reach every v3 CometD
//!   session of the user, subscribed or not (the initialization message right after the
//!   handshake).
//!
//! # Restarts
//!
//! [`GwsSimServer::restart_v3`](crate::GwsSimServer::restart_v3) forgets every workspace
//! session, token and code, and ends the v3 CometD sessions in one of the ways a restarted
//! GWS 9 shows it ([`V3Restart`]).

mod auth;
mod workspace;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::Request;
use percent_encoding::percent_decode_str;

use super::{lock, GwsSim};
use crate::server::cookie;

/// The cookie of a v3 workspace session.
pub const SESSION_COOKIE: &str = "WORKSPACE_SESSIONID";

/// How a restarted v3 server shows its CometD clients that their sessions are gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum V3Restart {
    /// Every CometD request without a workspace session answers HTTP 401 (the sessions'
    /// held connects too).
    Unauthorized,
    /// Each CometD session gets a `/meta/disconnect` of the server's own in the reply to
    /// its held (or next) connect; then as [`V3Restart::Unauthorized`].
    Disconnect,
    /// Each CometD session is forgotten (`402::Unknown client`), and a request without a
    /// workspace session is answered in Bayeux terms: its handshake succeeds, every other
    /// message gets `402::Unknown client`, as a CometD endpoint that checks the HTTP
    /// session only behind the handshake answers.
    UnknownClient,
}

/// An authorize request waiting for its sign-in.
#[derive(Clone)]
struct SignInRequest {
    /// `None` for a sign-in without an authorize request.
    client_id: Option<String>,
    redirect_uri: String,
    state: Option<String>,
}

/// What a code was issued for: the exchange must name the same client and redirect URI.
struct Grant {
    user: String,
    client_id: Option<String>,
    redirect_uri: String,
}

struct Session {
    user: String,
    /// When the session's first CometD request came.
    first_handshake: Option<Instant>,
}

#[derive(Default)]
struct V3State {
    sign_ins: HashMap<String, SignInRequest>,
    codes: HashMap<String, Grant>,
    /// The code flow's registered clients (client id → redirect URI); empty: any.
    clients: HashMap<String, String>,
    /// Access token → user.
    tokens: HashMap<String, String>,
    sessions: HashMap<String, Session>,
    forbid_current_session: Option<Duration>,
    /// The client ids of the Bayeux sessions handshaken on the v3 endpoint.
    bayeux_clients: HashSet<String>,
    /// The Bayeux sessions that got `WorkspaceInitializationComplete`.
    initialized: HashSet<String>,
    deliver_unsubscribed: bool,
    /// Requests without a workspace session are answered in Bayeux terms
    /// ([`V3Restart::UnknownClient`]).
    unknown_in_bayeux: bool,
}

/// The v3 API over a [`GwsSim`]: its logins and workspace sessions, and the routes of
/// `/auth/v3` and `/workspace/v3` but the notifications (see the [module docs](self)).
pub struct V3 {
    gws: GwsSim,
    state: Mutex<V3State>,
}

impl std::fmt::Debug for V3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3").finish_non_exhaustive()
    }
}

impl V3 {
    /// The v3 API over `gws`; turns on v3 notifications ([`GwsSim::publish_v3`]).
    pub fn new(gws: GwsSim) -> Self {
        gws.publish_v3();
        V3 {
            gws,
            state: Mutex::new(V3State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, V3State> {
        lock(&self.state)
    }

    /// Answers a request under `/auth/v3` or `/workspace/v3` (but the notifications), or
    /// `None` for any other path.
    pub fn handle(&self, req: &Request<Bytes>) -> Option<hyper::Response<Bytes>> {
        let path = req.uri().path().trim_end_matches('/');
        if let Some(rest) = path.strip_prefix("/auth/v3") {
            return Some(self.auth(req, rest));
        }
        let rest = path.strip_prefix("/workspace/v3")?;
        if rest.starts_with("/notifications") {
            return None;
        }
        Some(self.workspace(req, rest))
    }

    /// The user of the session named by the request's `WORKSPACE_SESSIONID` cookie; the
    /// first call for a session marks its first CometD request when `handshake`.
    pub fn session_of(&self, headers: &HeaderMap, handshake: bool) -> Option<String> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let mut state = self.state();
        let session = state.sessions.get_mut(id)?;
        if handshake && session.first_handshake.is_none() {
            session.first_handshake = Some(Instant::now());
        }
        Some(session.user.clone())
    }

    /// Fault mode: `GET /workspace/v3/current-session` answers 403 for `window` after a
    /// session's first CometD request (`None`, the default, never).
    pub fn forbid_current_session_after_handshake(&self, window: Option<Duration>) {
        self.state().forbid_current_session = window;
    }

    /// Fault mode (off by default): deliver the v3 channels' messages to every v3 CometD
    /// session of the user, subscribed or not, as GWS 9 may: `WorkspaceInitializationComplete`
    /// right after the handshake, and every `CallStateChanged` and `EventError`.
    pub fn deliver_without_subscription(&self, on: bool) {
        self.state().deliver_unsubscribed = on;
    }

    /// Registers a client of the authorization-code flow and its one redirect URI, as a real
    /// GWS 9 has them: once one is, authorize refuses any other client id, and any other
    /// redirect URI for this one.
    pub fn register_client(&self, client_id: impl Into<String>, redirect_uri: impl Into<String>) {
        self.state()
            .clients
            .insert(client_id.into(), redirect_uri.into());
    }

    /// Remembers a Bayeux session handshaken on the v3 endpoint.
    pub(crate) fn add_bayeux_client(&self, client_id: &str) {
        self.state().bayeux_clients.insert(client_id.to_owned());
    }

    /// With [`deliver_without_subscription`](Self::deliver_without_subscription) on, the
    /// v3 Bayeux sessions to deliver to without a subscription; `None` when off.
    pub(crate) fn unsubscribed_delivery(&self) -> Option<HashSet<String>> {
        let state = self.state();
        state
            .deliver_unsubscribed
            .then(|| state.bayeux_clients.clone())
    }

    /// Marks `client_id` initialized: `true` the first time.
    pub(crate) fn first_initialization(&self, client_id: &str) -> bool {
        self.state().initialized.insert(client_id.to_owned())
    }

    /// Whether `client_id` got its initialization message.
    pub(crate) fn is_initialized(&self, client_id: &str) -> bool {
        self.state().initialized.contains(client_id)
    }

    /// Forgets the Bayeux sessions that are gone.
    pub(crate) fn retain_bayeux_clients(&self, alive: impl Fn(&str) -> bool) {
        let mut state = self.state();
        state.bayeux_clients.retain(|id| alive(id));
        state.initialized.retain(|id| alive(id));
    }

    /// Ends every workspace session and forgets every token and code, as a restarted
    /// server would: clients must log in again.
    pub fn expire_sessions(&self) {
        let mut state = self.state();
        state.sessions.clear();
        state.tokens.clear();
        state.codes.clear();
    }

    /// Forgets the workspace sessions (as [`expire_sessions`](Self::expire_sessions)) and
    /// sets how CometD requests without one are answered; returns the client ids of the
    /// v3 CometD sessions, for the caller to end as `how` says.
    pub(crate) fn restart(&self, how: V3Restart) -> HashSet<String> {
        self.expire_sessions();
        let mut state = self.state();
        state.unknown_in_bayeux = how == V3Restart::UnknownClient;
        state.initialized.clear();
        std::mem::take(&mut state.bayeux_clients)
    }

    /// Whether a CometD request without a workspace session is answered in Bayeux terms.
    pub(crate) fn unknown_in_bayeux(&self) -> bool {
        self.state().unknown_in_bayeux
    }

    /// The user of a bearer token.
    fn bearer_user(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
        let token = value
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map(|_| value[7..].trim())?;
        self.state().tokens.get(token).cloned()
    }
}

/// The user part of a v3 user name: `user`, `\user` or `tenant\user`.
fn user_name(name: &str) -> &str {
    name.rsplit_once('\\').map_or(name, |(_, user)| user)
}

/// `a=1&b=2` decoded (`+` is a space), the first value of each name kept.
fn decode_form(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        out.entry(decode(k)).or_insert_with(|| decode(v));
    }
    out
}

/// A form body's fields.
fn form(body: &[u8]) -> HashMap<String, String> {
    decode_form(&String::from_utf8_lossy(body))
}

/// A request's query parameters.
fn query(req: &Request<Bytes>) -> HashMap<String, String> {
    decode_form(req.uri().query().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_and_forms() {
        assert_eq!(user_name("\\agent"), "agent");
        assert_eq!(user_name("acme\\agent"), "agent");
        assert_eq!(user_name("agent"), "agent");
        let f = decode_form("username=%5Cagent&password=a+b%26c&username=x");
        assert_eq!(f["username"], "\\agent");
        assert_eq!(f["password"], "a b&c");
    }
}
