//! The console: a page at `/` a person uses in a browser to see the logged-in user's calls
//! live and act on them like a desk phone and an IVR would.
//!
//! Everything it serves is behind the same HTTP Basic credentials as the REST API (or a
//! valid `JSESSIONID`), and built into the binary: no CDN, loopback is enough.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the page (`assets/index.html`) |
//! | `GET /console/console.css`, `GET /console/console.js` | its style and script |
//! | `GET /console/api/state?since=N` | `{"user","number","version","calls":[...],"changes":[...],"replay":...}`; held (a long poll, at most [`LONG_POLL`]) while the user's version is still `N` |
//! | `POST /console/api/ring` | `{"from","to","userData":[[key, JSON text], ...]}`: an inbound call rings (`to` defaults to the user's number), the data attached; `{"statusCode":0,"id"}` |
//! | `POST /console/api/dial` | `{"to"}`: the user dials out; `{"statusCode":0,"id"}` |
//! | `POST /console/api/calls/{id}/remote-answer` | the far end of a dialled call answers |
//! | `POST /console/api/replay/{play,pause,step,speed}` | acts on the user's `serve --replay` (see `replay`); 404 without one |
//!
//! `calls` are the user's calls as `GET /api/v2/me/calls` lists them, with `userData` as a
//! list of `{"key","value","json"}` in order, duplicate keys kept; `changes` are the last
//! [`hub::CHANGES_KEPT`] `CallChange`s, each the JSON line `watch` prints for it (computed by
//! the library's `CallStore` from the notifications the user receives). During a
//! `serve --replay`, both follow the replay: `calls` are what a call read answers (the
//! replayed calls as of the point reached), read without counting as the client's catch-up
//! read, and `changes` include what the replay delivers and heals; with several sessions
//! replaying, the most recent session's (see `replay::player`). Refusals answer
//! like GWS: `{"statusCode":N,"statusMessage":...}` with a 4xx status. The console's POSTs
//! must be `application/json`, which a cross-site form cannot send.
//!
//! The agent's operations (answer, hold, retrieve, hang up, the user-data operations) are
//! not here: the page sends them to `POST /api/v2/me/calls/{id}` with the CSRF token of
//! `GET /api/v2/me`, exactly as the CLI does. `replay` is `null` unless `serve --replay`
//! replays a recording to the user: then it says where the replay stands
//! (`{"delivered","total","loops","sessions","paused","speed"}`), the version also moves with
//! it, and the page shows a panel with its controls.
//!
//! | module | what it holds |
//! |---|---|
//! | `hub` | per user: the library's call store fed by the notifications, the last changes, a version to wait on |
//! | `view` | the calls as the page shows them, user data in order |
//! | `phone` | the network's side: ring, dial, far end answers |
//! | `replay` | `serve --replay`'s position and controls |

mod hub;
mod phone;
mod replay;
mod view;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::sync::watch;

pub(crate) use self::hub::Hub;
use self::phone::Refused;
use self::replay::ReplayView;
use self::view::CallView;
use crate::fault::ActiveFaults;
use crate::gws::GwsSim;
use crate::json_string::quote;
use crate::replay::{ReplayControl, Replays};
use crate::server::{json_reply, reply, Route};

/// The longest a state request is held waiting for a change.
pub(crate) const LONG_POLL: Duration = Duration::from_secs(25);

/// How long a state request woken by the replay waits for more of it, so a fast replay
/// (`--speed max --loop`) answers a page a few times a second, not once per notification.
const REPLAY_SETTLE: Duration = Duration::from_millis(100);

const INDEX_HTML: &str = include_str!("assets/index.html");
const CONSOLE_CSS: &str = include_str!("assets/console.css");
const CONSOLE_JS: &str = include_str!("assets/console.js");

/// What `GET /console/api/state` answers.
#[derive(Serialize)]
struct State<'a> {
    user: &'a str,
    number: String,
    version: u64,
    calls: Vec<CallView>,
    changes: Vec<String>,
    /// `serve --replay`'s state; none without a replay for the user.
    replay: Option<ReplayView>,
}

/// Serves the console for the users of `gws`.
pub(crate) struct ConsoleRoute {
    gws: GwsSim,
    hub: Arc<Hub>,
    /// `serve --replay`'s recordings, when it runs.
    replays: Option<Replays>,
    shutdown: watch::Receiver<bool>,
}

impl ConsoleRoute {
    /// The console of `gws`'s users, showing what `hub` is fed and where their `replays`
    /// stand, until `shutdown`.
    pub(crate) fn route(
        gws: GwsSim,
        hub: Arc<Hub>,
        replays: Option<Replays>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<dyn Route> {
        Arc::new(ConsoleRoute {
            gws,
            hub,
            replays,
            shutdown,
        })
    }
}

impl Route for ConsoleRoute {
    fn handle<'a>(
        &'a self,
        req: &'a Request<Bytes>,
        _faults: &'a ActiveFaults,
    ) -> BoxFuture<'a, Option<Response<Bytes>>> {
        let path = req.uri().path();
        if !(path == "/" || path == "/console" || path.starts_with("/console/")) {
            return futures::future::ready(None).boxed();
        }
        async move {
            let Some(user) = self.user_of(req.headers()) else {
                let mut r =
                    crate::gws::refusal(StatusCode::UNAUTHORIZED, 20, "Authentication required");
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="gws""#),
                );
                return Some(r);
            };
            let mut r = self.answer(req, &user).await;
            let headers = r.headers_mut();
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static("default-src 'self'"),
            );
            headers.insert(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            );
            Some(r)
        }
        .boxed()
    }
}

fn refusal(r: Refused) -> Response<Bytes> {
    let http = match r.code {
        6 => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    crate::gws::refusal(http, r.code, &r.message)
}

fn started(outcome: Result<String, Refused>) -> Response<Bytes> {
    match outcome {
        Ok(id) => json_reply(
            StatusCode::OK,
            format!(r#"{{"statusCode":0,"id":{}}}"#, quote(&id)),
        ),
        Err(r) => refusal(r),
    }
}

/// The `since` of a state request's query.
fn since(req: &Request<Bytes>) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("since="))?
        .parse()
        .ok()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

impl ConsoleRoute {
    /// The user of valid HTTP Basic credentials, or of a valid `JSESSIONID`.
    fn user_of(&self, headers: &HeaderMap) -> Option<String> {
        let basic = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, encoded) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("basic").then_some(encoded)
            })
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
            })
            .and_then(|decoded| String::from_utf8(decoded).ok());
        if let Some((user, password)) = basic.as_deref().and_then(|t| t.split_once(':')) {
            let known = self.gws.config().users.iter().any(|(u, p)| {
                u == user && p.len() == password.len() && p.as_bytes() == password.as_bytes()
            });
            if known {
                return Some(user.to_owned());
            }
        }
        self.gws.session_of(headers)
    }

    async fn answer(&self, req: &Request<Bytes>, user: &str) -> Response<Bytes> {
        let path = req.uri().path();
        let get = *req.method() == Method::GET || *req.method() == Method::HEAD;
        let post = *req.method() == Method::POST;
        if post && !is_json(req.headers()) {
            return crate::gws::refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                1,
                "console requests must be application/json",
            );
        }
        match (get, post, path) {
            (true, _, "/" | "/console" | "/console/") => {
                reply(StatusCode::OK, "text/html;charset=UTF-8", INDEX_HTML)
            }
            (true, _, "/console/console.css") => {
                reply(StatusCode::OK, "text/css;charset=UTF-8", CONSOLE_CSS)
            }
            (true, _, "/console/console.js") => {
                reply(StatusCode::OK, "text/javascript;charset=UTF-8", CONSOLE_JS)
            }
            (true, _, "/console/api/state") => self.state(req, user).await,
            (_, true, "/console/api/ring") => started(phone::ring(&self.gws, user, req.body())),
            (_, true, "/console/api/dial") => started(phone::dial(&self.gws, user, req.body())),
            (_, true, _) if path.ends_with("/remote-answer") => {
                let id = path
                    .strip_prefix("/console/api/calls/")
                    .and_then(|rest| rest.strip_suffix("/remote-answer"))
                    .unwrap_or_default();
                match phone::remote_answer(&self.gws, user, id) {
                    Ok(()) => json_reply(StatusCode::OK, r#"{"statusCode":0}"#),
                    Err(r) => refusal(r),
                }
            }
            (_, true, _) if path.starts_with("/console/api/replay/") => {
                self.replay(user, &path["/console/api/replay/".len()..], req.body())
            }
            _ if path.starts_with("/console/api/replay") => {
                crate::gws::refusal(StatusCode::NOT_FOUND, 6, "Not found")
            }
            _ => crate::gws::refusal(StatusCode::NOT_FOUND, 6, "Not found"),
        }
    }

    /// The control of `user`'s replay, if one runs for them.
    fn control(&self, user: &str) -> Option<ReplayControl> {
        self.replays.as_ref()?.control(user)
    }

    /// `POST /console/api/replay/{action}`.
    fn replay(&self, user: &str, action: &str, body: &[u8]) -> Response<Bytes> {
        let Some(control) = self.control(user) else {
            return crate::gws::refusal(
                StatusCode::NOT_FOUND,
                6,
                &format!("no replay is running for {user} (serve --replay)"),
            );
        };
        if let Err(r) = replay::act(&control, action, body) {
            return refusal(r);
        }
        let view = serde_json::to_string(&ReplayView::of(&control)).unwrap_or_default();
        json_reply(
            StatusCode::OK,
            format!(r#"{{"statusCode":0,"replay":{view}}}"#),
        )
    }

    /// The user's version: the hub's, plus the replay's changes. Both only grow.
    fn version(&self, user: &str, control: Option<&ReplayControl>) -> u64 {
        self.hub
            .version(user)
            .wrapping_add(control.map_or(0, ReplayControl::revision))
    }

    /// Waits until `user`'s version is past `since`, at most [`LONG_POLL`], or the server
    /// stops.
    async fn wait_past(&self, user: &str, since: u64, control: Option<&ReplayControl>) {
        let hub_now = self.hub.version(user);
        let replay_now = control.map_or(0, ReplayControl::revision);
        if hub_now.wrapping_add(replay_now) != since {
            return;
        }
        let replay_moved = async {
            match control {
                Some(c) => {
                    c.wait_revision_past(replay_now).await;
                    tokio::time::sleep(REPLAY_SETTLE).await;
                }
                None => std::future::pending().await,
            }
        };
        let mut stop = self.shutdown.clone();
        tokio::select! {
            _ = self.hub.wait_past(user, hub_now, LONG_POLL, &mut stop) => {}
            _ = replay_moved => {}
        }
    }

    /// The user's calls and changes, once their version is past `since`.
    async fn state(&self, req: &Request<Bytes>, user: &str) -> Response<Bytes> {
        let control = self.control(user);
        if let Some(since) = since(req) {
            self.wait_past(user, since, control.as_ref()).await;
        }
        // The version first: a change after it makes the next request answer at once.
        let version = self.version(user, control.as_ref());
        // During a replay, what the user's call read answers (the latest session's calls),
        // peeked: a console read is not the client's catch-up read the replay waits for.
        let listing = match self.replays.as_ref().and_then(|r| r.user(user)) {
            Some(replay) => replay.peek_calls(),
            None => self.gws.calls_json_for(user),
        };
        let state = State {
            user,
            number: self.gws.config().number_of(user).unwrap_or_default(),
            version,
            calls: CallView::listed(&listing),
            changes: self.hub.changes(user),
            replay: control.as_ref().map(ReplayView::of),
        };
        match serde_json::to_string(&state) {
            Ok(body) => json_reply(StatusCode::OK, body),
            Err(e) => crate::gws::refusal(StatusCode::INTERNAL_SERVER_ERROR, 4, &e.to_string()),
        }
    }
}
