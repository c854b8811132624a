//! The v3 Workspace API routes (`/workspace/v3/...`): initialize-workspace, the session's
//! calls and the call operations (see the [module docs](super)).

use bytes::Bytes;
use gws_cometd::gws::api::V3_VOICE_CHANNEL;
use hyper::header::SET_COOKIE;
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{query, Session, SESSION_COOKIE, V3};
use crate::gws::auth::random_token;
use crate::gws::calls::{from_kvlist, with_operation_id};
use crate::gws::{fnv1a, AgentState, Note, RawPairs, SimCallError};
use crate::json_string::quote;
use crate::server::{add_header, cookie, json_reply};

/// `{"status":{"code":code,"message":message}}` with this HTTP status.
fn status(http: StatusCode, code: i64, message: &str) -> Response<Bytes> {
    json_reply(
        http,
        format!(
            r#"{{"status":{{"code":{code},"message":{}}}}}"#,
            quote(message)
        ),
    )
}

fn ok() -> Response<Bytes> {
    json_reply(StatusCode::OK, r#"{"status":{"code":0}}"#)
}

/// A new operation id, shaped like a UUID.
fn operation_id() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        fastrand::u32(..),
        fastrand::u16(..),
        fastrand::u16(..0x1000),
        fastrand::u16(0x8000..0xc000),
        fastrand::u64(..1 << 48)
    )
}

/// A call operation, its request read.
enum Op {
    Answer,
    Hold,
    Retrieve,
    Release,
    Complete,
    Attach(RawPairs),
    Update(RawPairs),
    DeletePair(String),
    DeleteAll,
}

#[derive(Deserialize, Default)]
struct OperationBody {
    #[serde(default)]
    data: Option<OperationData>,
}

#[derive(Deserialize, Default)]
struct OperationData {
    #[serde(rename = "userData", default)]
    user_data: Option<Box<RawValue>>,
    #[serde(default)]
    key: Option<String>,
}

impl V3 {
    /// Answers `/workspace/v3{rest}` (but the notifications).
    pub(super) fn workspace(&self, req: &Request<Bytes>, rest: &str) -> Response<Bytes> {
        if rest == "/initialize-workspace" {
            return self.initialize(req);
        }
        let session = cookie(req.headers(), SESSION_COOKIE).map(str::to_owned);
        let Some(user) = self.session_of(req.headers(), false) else {
            return status(StatusCode::UNAUTHORIZED, 401, "Unauthorized: no session");
        };
        let get = *req.method() == Method::GET;
        let post = *req.method() == Method::POST;
        match rest {
            "/current-session" if get => self.current_session(&user, session.as_deref()),
            "/voice/calls" if get => json_reply(
                StatusCode::OK,
                format!(
                    r#"{{"status":{{"code":0}},"data":{}}}"#,
                    self.gws.listed_calls_v3(&user)
                ),
            ),
            "/activate-channels" if post => ok(),
            "/voice/ready" if post => {
                self.gws.set_agent_state(&user, AgentState::Ready);
                ok()
            }
            "/voice/not-ready" if post => {
                self.gws.set_agent_state(&user, AgentState::NotReady);
                ok()
            }
            "/logout" if post => {
                if let Some(id) = session {
                    self.state().sessions.remove(&id);
                }
                ok()
            }
            _ => match rest.strip_prefix("/voice/calls/") {
                Some(op) if post => match op.split_once('/') {
                    Some((id, name)) if !name.contains('/') => {
                        let id = percent_decode_str(id).decode_utf8_lossy();
                        self.operation(&user, &id, name, req.body())
                    }
                    _ => status(StatusCode::NOT_FOUND, 3, "Not found"),
                },
                _ => status(StatusCode::NOT_FOUND, 3, "Not found"),
            },
        }
    }

    /// `initialize-workspace`: a new session for the user of `?code=` or of the bearer
    /// token.
    fn initialize(&self, req: &Request<Bytes>) -> Response<Bytes> {
        if !matches!(*req.method(), Method::GET | Method::POST) {
            return status(StatusCode::METHOD_NOT_ALLOWED, 3, "Method not allowed");
        }
        let q = query(req);
        let user = match q.get("code") {
            Some(code) => {
                let mut state = self.state();
                // The redirect URI the code was issued for, as OAuth wants it.
                match state.codes.get(code) {
                    Some(g) if q.get("redirect_uri") != Some(&g.redirect_uri) => None,
                    Some(_) => state.codes.remove(code).map(|g| g.user),
                    None => None,
                }
            }
            None => self.bearer_user(req.headers()),
        };
        let Some(user) = user else {
            return status(StatusCode::UNAUTHORIZED, 401, "Unauthorized");
        };
        let id = random_token();
        self.state().sessions.insert(
            id.clone(),
            Session {
                user: user.clone(),
                first_handshake: None,
            },
        );
        let mut r = json_reply(
            StatusCode::OK,
            format!(
                r#"{{"status":{{"code":1}},"data":{{"user":{}}}}}"#,
                self.user_json(&user, false)
            ),
        );
        add_header(
            &mut r,
            SET_COOKIE,
            &format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly"),
        );
        r
    }

    fn current_session(&self, user: &str, session: Option<&str>) -> Response<Bytes> {
        {
            let state = self.state();
            let since = session
                .and_then(|id| state.sessions.get(id))
                .and_then(|s| s.first_handshake);
            if let (Some(window), Some(since)) = (state.forbid_current_session, since) {
                if since.elapsed() < window {
                    return status(StatusCode::FORBIDDEN, 403, "Forbidden: initializing");
                }
            }
        }
        json_reply(
            StatusCode::OK,
            format!(
                r#"{{"status":{{"code":0}},"data":{{"user":{}}}}}"#,
                self.user_json(user, true)
            ),
        )
    }

    /// The v3 user object; with `active`, its `activeSession` with the calls.
    pub(crate) fn user_json(&self, user: &str, active: bool) -> String {
        let number = self.gws.config().number_of(user).unwrap_or_default();
        let mut o = format!(
            r#"{{"id":"{:08x}","userName":{},"employeeId":{},"agentLogin":{},"defaultPlace":{},"firstName":"Sim","lastName":"Agent","roles":["ROLE_AGENT"]"#,
            fnv1a(user),
            quote(user),
            quote(user),
            quote(&number),
            quote(&format!("Place_{number}")),
        );
        if active {
            o.push_str(&format!(
                r#","activeSession":{{"dn":{{"number":{}}},"calls":{}}}"#,
                quote(&number),
                self.gws.listed_calls_v3(user)
            ));
        }
        o.push('}');
        o
    }

    /// `POST /workspace/v3/voice/calls/{id}/{name}`.
    fn operation(&self, user: &str, id: &str, name: &str, body: &[u8]) -> Response<Bytes> {
        let parsed: OperationBody = if body.iter().all(u8::is_ascii_whitespace) {
            OperationBody::default()
        } else {
            match serde_json::from_slice(body) {
                Ok(b) => b,
                Err(e) => return status(StatusCode::BAD_REQUEST, 3, &format!("Bad body: {e}")),
            }
        };
        let data = parsed.data.unwrap_or_default();
        let pairs = || match &data.user_data {
            Some(list) => from_kvlist(list),
            None => Err("data.userData is required".to_owned()),
        };
        let gws = &self.gws;
        let operation_id = operation_id();
        if !gws.owns(user, id) {
            self.event_error(user, id, &operation_id, 2, "Call not found");
            return status(StatusCode::NOT_FOUND, 2, "Call not found");
        }
        let op = match name {
            "answer" => Op::Answer,
            "hold" => Op::Hold,
            "retrieve" => Op::Retrieve,
            "release" => Op::Release,
            "complete" => Op::Complete,
            "attach-user-data" | "update-user-data" => match pairs() {
                Ok(pairs) if name == "attach-user-data" => Op::Attach(pairs),
                Ok(pairs) => Op::Update(pairs),
                Err(why) => return status(StatusCode::BAD_REQUEST, 3, &why),
            },
            "delete-user-data-pair" => match data.key {
                Some(key) => Op::DeletePair(key),
                None => return status(StatusCode::BAD_REQUEST, 3, "data.key is required"),
            },
            "delete-user-data" => Op::DeleteAll,
            _ => return status(StatusCode::NOT_FOUND, 3, "Unknown operation"),
        };
        let result = with_operation_id(&operation_id, || match op {
            Op::Answer => gws.answer(id),
            Op::Hold => gws.hold(id),
            Op::Retrieve => gws.retrieve(id),
            Op::Release => gws.hangup(id),
            Op::Complete => gws.complete(id),
            Op::Attach(pairs) => gws.attach_user_data(id, pairs),
            Op::Update(pairs) => gws.update_user_data(id, pairs),
            Op::DeletePair(key) => gws.delete_user_data_pair(id, &key),
            Op::DeleteAll => gws.delete_user_data(id),
        });
        gws.count_operation(name);
        match result {
            Ok(()) => {}
            Err(e @ SimCallError::InvalidState { .. }) => {
                self.event_error(user, id, &operation_id, 1, &e.to_string());
            }
            Err(e @ SimCallError::NotFound(_)) => {
                self.event_error(user, id, &operation_id, 2, &e.to_string());
            }
        }
        json_reply(
            StatusCode::OK,
            format!(
                r#"{{"status":{{"code":0}},"operationId":{}}}"#,
                quote(&operation_id)
            ),
        )
    }

    /// Publishes an `EventError` to `user` on the voice channel.
    fn event_error(&self, user: &str, call: &str, operation_id: &str, code: i64, message: &str) {
        let data = format!(
            r#"{{"messageType":"EventError","error":{{"errorCode":{code},"errorMessage":{}}},"operationId":{},"callId":{}}}"#,
            quote(message),
            quote(operation_id),
            quote(call)
        );
        let note = Note {
            user: user.to_owned(),
            channel: V3_VOICE_CHANNEL,
            data,
        };
        self.gws
            .change(|_, _| Ok::<_, std::convert::Infallible>(((), vec![note])))
            .unwrap_or_else(|never| match never {});
    }
}
