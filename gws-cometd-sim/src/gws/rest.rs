//! The REST routes under `/api/v2/me` and their operations (see the [module docs](super)).

use bytes::Bytes;
use hyper::header::{HeaderName, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::agent::StartRefused;
use super::auth::Login;
use super::calls::Pairs;
use super::{fnv1a, AgentState, GwsSim, RawPairs, SimCallError, CSRF_HEADER};
use crate::json_string::quote;
use crate::server::{add_header, json_reply};

/// `{"statusCode":code,"statusMessage":message}` with this HTTP status: how GWS refuses,
/// and how the console does.
pub(crate) fn status(http: StatusCode, code: i64, message: &str) -> Response<Bytes> {
    json_reply(
        http,
        format!(
            r#"{{"statusCode":{code},"statusMessage":{}}}"#,
            quote(message)
        ),
    )
}

/// `{"statusCode":0}`.
fn ok() -> Response<Bytes> {
    json_reply(StatusCode::OK, r#"{"statusCode":0}"#)
}

fn not_found(what: &str) -> Response<Bytes> {
    status(StatusCode::NOT_FOUND, 6, what)
}

fn bad_request(code: i64, message: &str) -> Response<Bytes> {
    status(StatusCode::BAD_REQUEST, code, message)
}

/// An operation POST's body.
struct Operation {
    name: String,
    fields: RawPairs,
}

impl Operation {
    /// The raw JSON text of field `name`.
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get())
    }

    /// Field `name` if it is a string.
    fn string(&self, name: &str) -> Option<String> {
        self.field(name)
            .and_then(|v| serde_json::from_str::<String>(v).ok())
    }
}

fn unavailable(channel: &str) -> String {
    format!("Channel {channel} is not available in the simulator")
}

impl GwsSim {
    /// Answers a GWS REST request, or `None` when the path is not under `/api/v2/me`.
    pub fn handle(&self, req: &Request<Bytes>) -> Option<Response<Bytes>> {
        let path = req.uri().path().trim_end_matches('/');
        let rest = path.strip_prefix("/api/v2/me")?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let headers = req.headers();
        if self.refuse_login(headers) {
            return Some(json_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
            ));
        }
        let Some(login) = self.authenticate(headers) else {
            let mut resp = status(StatusCode::UNAUTHORIZED, 20, "Authentication required");
            add_header(&mut resp, WWW_AUTHENTICATE, r#"Basic realm="gws""#);
            return Some(resp);
        };
        let reads = matches!(*req.method(), Method::GET | Method::HEAD);
        let mut resp = if !reads && !self.csrf_matches(&login.session_id, headers) {
            status(StatusCode::FORBIDDEN, 3, "Missing or invalid Csrf token")
        } else {
            self.route(&login, req.method(), rest, req.body())
        };
        if let Some(cookie) = &login.set_cookie {
            add_header(&mut resp, hyper::header::SET_COOKIE, cookie);
        }
        if reads && self.inner.config.csrf {
            if let Some(token) = self.csrf_token(&login.session_id) {
                add_header(
                    &mut resp,
                    HeaderName::from_static("x-csrf-header"),
                    CSRF_HEADER,
                );
                if let Ok(name) = HeaderName::from_bytes(CSRF_HEADER.as_bytes()) {
                    add_header(&mut resp, name, &token);
                }
            }
        }
        Some(resp)
    }

    /// Answers an authenticated request: only the session user's calls are visible.
    fn route(&self, login: &Login, method: &Method, rest: &str, body: &[u8]) -> Response<Bytes> {
        let user = login.user.as_str();
        let reads = matches!(*method, Method::GET | Method::HEAD);
        let posts = *method == Method::POST;
        match (reads, posts, rest) {
            (true, _, "") => json_reply(StatusCode::OK, self.me_json(user)),
            (true, _, "/calls") => json_reply(StatusCode::OK, self.listed_calls(user)),
            (true, _, "/devices") => match self.devices_json_for(user) {
                Some(devices) => json_reply(StatusCode::OK, devices),
                None => not_found("Not found"),
            },
            (_, true, "") => self.me_operation(login, body),
            (_, true, "/channels/voice") => self.voice_operation(user, body),
            (_, _, "" | "/calls" | "/devices" | "/channels/voice") => {
                status(StatusCode::METHOD_NOT_ALLOWED, 1, "Method not allowed")
            }
            _ => {
                let Some(id) = rest.strip_prefix("/calls/").filter(|id| !id.contains('/')) else {
                    return not_found("Not found");
                };
                let id = percent_decode_str(id).decode_utf8_lossy();
                if !self.owns(user, &id) {
                    // Another user's call is as unknown as a call that never existed.
                    return not_found("Call not found");
                }
                if reads {
                    return match self.call_json(&id) {
                        Some(call) => json_reply(
                            StatusCode::OK,
                            format!(r#"{{"statusCode":0,"call":{call}}}"#),
                        ),
                        None => not_found("Call not found"),
                    };
                }
                if posts {
                    self.call_operation(&id, body)
                } else {
                    status(StatusCode::METHOD_NOT_ALLOWED, 1, "Method not allowed")
                }
            }
        }
    }

    /// The body of an operation POST: its `operationName` (counted) and every field; or
    /// why it is a bad request (`statusCode` 1).
    fn operation(&self, body: &[u8]) -> Result<Operation, String> {
        let fields = match serde_json::from_slice::<Pairs>(body) {
            Ok(Pairs(fields)) => fields,
            Err(e) => return Err(format!("Invalid JSON body: {e}")),
        };
        let op = Operation {
            name: String::new(),
            fields,
        };
        let Some(name) = op.string("operationName") else {
            return Err("operationName is missing".into());
        };
        self.count_operation(&name);
        Ok(Operation { name, ..op })
    }

    /// `POST /api/v2/me`: `StartContactCenterSession`, `EndContactCenterSession`.
    fn me_operation(&self, login: &Login, body: &[u8]) -> Response<Bytes> {
        let op = match self.operation(body) {
            Ok(op) => op,
            Err(why) => return bad_request(1, &why),
        };
        match op.name.as_str() {
            "StartContactCenterSession" => {
                let Some(channels) = op
                    .field("channels")
                    .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
                else {
                    return bad_request(1, "channels is missing or not an array of channel names");
                };
                for name in ["place", "devicePath", "loginCode", "queue"] {
                    if op.field(name).is_some() && op.string(name).is_none() {
                        return bad_request(1, &format!("{name} must be a string"));
                    }
                }
                match self.start_contact_center_session(&login.user, &channels) {
                    Ok(failed) if failed.is_empty() => ok(),
                    Ok(failed) => {
                        // GWS documents partial success (7) with a result per channel but
                        // not its layout; this is the simulator's.
                        let mut parts = String::from(r#""voice":{"statusCode":0}"#);
                        for channel in &failed {
                            parts.push_str(&format!(
                                r#",{}:{{"statusCode":4,"statusMessage":{}}}"#,
                                quote(channel),
                                quote(&unavailable(channel))
                            ));
                        }
                        json_reply(
                            StatusCode::OK,
                            format!(
                                r#"{{"statusCode":7,"statusMessage":"Partial success","channels":{{{parts}}}}}"#
                            ),
                        )
                    }
                    Err(StartRefused::NoChannels) => bad_request(1, "channels is empty"),
                    Err(StartRefused::Unavailable(channel)) => {
                        status(StatusCode::SERVICE_UNAVAILABLE, 4, &unavailable(&channel))
                    }
                }
            }
            "EndContactCenterSession" => {
                self.end_contact_center_session(&login.user, &login.session_id);
                ok()
            }
            other => bad_request(1, &format!("Unsupported operationName {}", quote(other))),
        }
    }

    /// `POST /api/v2/me/channels/voice`: `Ready`, `NotReady`, `AfterCallWork`.
    fn voice_operation(&self, user: &str, body: &[u8]) -> Response<Bytes> {
        let op = match self.operation(body) {
            Ok(op) => op,
            Err(why) => return bad_request(1, &why),
        };
        match AgentState::from_operation(&op.name) {
            Some(state) => {
                self.set_agent_state(user, state);
                ok()
            }
            None => bad_request(1, &format!("Unsupported operationName {}", quote(&op.name))),
        }
    }

    fn me_json(&self, user: &str) -> String {
        let config = &self.inner.config;
        format!(
            r#"{{"statusCode":0,"user":{{"id":"{:08x}","userName":{},"firstName":"Sim","lastName":"Agent","roles":["ROLE_AGENT"],"enabled":true,"uri":{},"path":"/me"}}}}"#,
            fnv1a(user),
            quote(user),
            quote(&format!("{}/api/v2/me", config.public_url)),
        )
    }

    /// `POST /api/v2/me/calls/{id}`.
    fn call_operation(&self, id: &str, body: &[u8]) -> Response<Bytes> {
        if self.call_json(id).is_none() {
            return not_found("Call not found");
        }
        let op = match self.operation(body) {
            Ok(op) => op,
            Err(why) => return bad_request(1, &why),
        };
        let user_data = || {
            op.field("userData")
                .and_then(|v| serde_json::from_str::<Pairs>(v).ok())
        };
        let missing = |what| bad_request(1, what);
        let operation = &op.name;
        let result = match operation.as_str() {
            "AttachUserData" => match user_data() {
                Some(Pairs(pairs)) => self.attach_user_data(id, pairs),
                None => return missing("userData is missing or not an object"),
            },
            "UpdateUserData" => match user_data() {
                Some(Pairs(pairs)) => self.update_user_data(id, pairs),
                None => return missing("userData is missing or not an object"),
            },
            "DeleteUserDataPair" => match op.string("key") {
                Some(key) => self.delete_user_data_pair(id, &key),
                None => return missing("key is missing"),
            },
            "DeleteUserData" => self.delete_user_data(id),
            "Answer" => self.answer(id),
            "Hold" => self.hold(id),
            "Retrieve" => self.retrieve(id),
            "Hangup" => self.hangup(id),
            "Complete" => self.complete(id),
            other => return bad_request(1, &format!("Unsupported operationName {}", quote(other))),
        };
        match result {
            Ok(()) => ok(),
            Err(SimCallError::NotFound(_)) => not_found("Call not found"),
            Err(e @ SimCallError::InvalidState { .. }) => bad_request(2, &e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::test_support::*;

    #[test]
    fn non_gws_paths_are_left_to_the_bayeux_server() {
        let (sim, _) = sim();
        let h = HeaderMap::new();
        for path in ["/api/v2/notifications", "/api/v2/meta", "/"] {
            let req = request(Method::POST, path, &h, "");
            assert!(sim.handle(&req).is_none(), "{path}");
        }
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
            (resp.status().as_u16(), body(&resp)),
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
            assert_eq!(resp.status(), 400, "{bad}");
            assert!(
                body(&resp).starts_with(r#"{"statusCode":1,"#),
                "{bad}: {}",
                body(&resp)
            );
        }
        let resp = post(&sim, &path, &session, r#"{"operationName":"Hold"}"#);
        assert_eq!(resp.status(), 400);
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
        assert_eq!(get(&sim, "/api/v2/me/calls/zzz", &session).status(), 404);
        assert_eq!(sim.call_ids(), vec![a]);
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
        assert_eq!(get(&sim, &path, &session).status(), 404);
        let resp = post(
            &sim,
            &path,
            &session,
            r#"{"operationName":"DeleteUserData"}"#,
        );
        assert_eq!(
            (resp.status().as_u16(), body(&resp)),
            (404, r#"{"statusCode":6,"statusMessage":"Call not found"}"#)
        );
        let resp = get(&sim, "/api/v2/me", &basic("other", "pw2"));
        assert_eq!(resp.status(), 200);
        assert!(body(&resp).contains(r#""userName":"other""#));
        assert_eq!(get(&sim, "/api/v2/me", &basic("other", "pw")).status(), 401);
        assert!(!format!("{:?}", sim.config()).contains("pw2"));
    }
}
