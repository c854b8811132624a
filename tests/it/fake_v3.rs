//! A small fake of a Workspace API v3 server (GWS 9) over real HTTP on 127.0.0.1: OAuth
//! sign-in + code and password grant, `initialize-workspace` and its session cookie,
//! `current-session` (with a 403 window on demand), the voice operations. It records every
//! request. Shared by the `it` and `logs` test binaries, each using part of it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use gws_cometd::gws::rest::{Credentials, GwsSession};
use gws_cometd::gws::Api;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub const USER: &str = r"\JohnSmith";
pub const PASSWORD: &str = "v3-pa55-w0rd";
pub const CLIENT: &str = "wwe-client";
pub const SECRET: &str = "cl13nt-s3cr3t";
pub const API_KEY: &str = "4p1-k3y-9c0d";
pub const CODE: &str = "c0de-8d2f61";
pub const TOKEN: &str = "t0ken-5b7e04";
pub const CALL: &str = r#"{"id":"c1","state":"Established","userData":[{"key":"A","type":"str","value":"1"},{"key":"A","type":"int","value":2}]}"#;

/// One request the fake saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub api_key: Option<String>,
    pub content_type: Option<String>,
    pub cookie: String,
    pub body: String,
    pub status: u16,
}

#[derive(Default)]
pub struct State {
    pub seen: Vec<Seen>,
    /// Live workspace sessions (cookie values).
    pub sessions: HashSet<String>,
    pub logins: u32,
    /// How many more `current-session` requests answer 403.
    pub forbidden: u32,
    /// A request without a live session is answered 403 (as some deployments do), not 401.
    pub forbid_lost: bool,
    /// The calls `current-session` lists, as text.
    pub calls: Vec<String>,
    /// Where `/workspace/v3/notifications` is passed on to (a Bayeux server's endpoint),
    /// for workspace sessions only, and only with `Content-Type: application/json`.
    pub bayeux: Option<String>,
}

/// The fake v3 server; stops on drop.
pub struct Fake {
    addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            calls: vec![CALL.to_owned()],
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| serve(state.clone(), addr, req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Fake { addr, state, task }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn session(&self, password: &str, grant: bool) -> GwsSession {
        let mut b = GwsSession::builder(&self.base(), Credentials::new(USER, password))
            .api(Api::V3)
            .api_key(API_KEY)
            .timeout(Duration::from_secs(5));
        if grant {
            b = b.client_credentials(CLIENT, SECRET);
        }
        b.build().unwrap()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        let path = path.to_owned();
        self.seen()
            .into_iter()
            .filter(|s| s.target.split('?').next() == Some(path.as_str()))
            .collect()
    }
}

pub fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn reply(status: u16, body: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_owned())));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp
}

fn redirect(to: &str, cookie: Option<&str>) -> Response<Full<Bytes>> {
    let mut resp = reply(302, "");
    resp.headers_mut().insert("location", to.parse().unwrap());
    if let Some(c) = cookie {
        resp.headers_mut().insert("set-cookie", c.parse().unwrap());
    }
    resp
}

async fn serve(
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = String::from_utf8_lossy(&body.collect().await?.to_bytes()).into_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let cookie = header("cookie").unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let session_ok = cookie
        .split("; ")
        .filter_map(|c| c.strip_prefix("WORKSPACE_SESSIONID="))
        .any(|s| state.lock().unwrap().sessions.contains(s));
    let bayeux = state.lock().unwrap().bayeux.clone();
    let resp = match bayeux {
        Some(to) if path.starts_with("/workspace/v3/notifications") => {
            let suffix = &path["/workspace/v3/notifications".len()..];
            if !session_ok {
                reply(401, "")
            } else if header("content-type").as_deref() != Some("application/json") {
                reply(415, "Content-Type must be application/json")
            } else {
                pass_on(&format!("{to}{suffix}"), &cookie, body.clone()).await
            }
        }
        _ => route(&state, addr, &parts, &body, session_ok),
    };
    state.lock().unwrap().seen.push(Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authorization: header("authorization"),
        api_key: header("x-api-key"),
        content_type: header("content-type"),
        cookie,
        body,
        status: resp.status().as_u16(),
    });
    Ok(resp)
}

/// Passes a Bayeux request on, with its cookies both ways.
async fn pass_on(to: &str, cookie: &str, body: String) -> Response<Full<Bytes>> {
    let sent = reqwest::Client::new()
        .post(to)
        .header("content-type", "application/json")
        .header("cookie", cookie)
        .body(body)
        .send()
        .await;
    let Ok(got) = sent else {
        return reply(502, "");
    };
    let status = got.status().as_u16();
    let cookies: Vec<_> = got
        .headers()
        .get_all("set-cookie")
        .iter()
        .cloned()
        .collect();
    let text = got.text().await.unwrap_or_default();
    let mut resp = reply(status, &text);
    for c in cookies {
        resp.headers_mut().append("set-cookie", c);
    }
    resp
}

/// Every route but the notifications.
fn route(
    state: &Mutex<State>,
    addr: SocketAddr,
    parts: &hyper::http::request::Parts,
    body: &str,
    session_ok: bool,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let cookie = header("cookie").unwrap_or_default();
    let query: Vec<(String, String)> = form(parts.uri.query().unwrap_or(""));
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let path = parts.uri.path();
    let mut st = state.lock().unwrap();
    let redirect_uri = format!("http://{addr}/");
    match (parts.method.as_str(), path) {
        ("GET", "/auth/v3/oauth/authorize") => {
            if cookie.contains("AUTH=signed-in") {
                redirect(&format!("{redirect_uri}?code={CODE}&state=x"), None)
            } else {
                redirect("/auth/v3/sign-in", None)
            }
        }
        ("GET", "/auth/v3/sign-in") => reply(200, "<html>sign in</html>"),
        ("POST", "/auth/v3/sign-in") => {
            let f = form(body);
            let ok = f.contains(&("username".into(), USER.into()))
                && f.contains(&("password".into(), PASSWORD.into()));
            if ok {
                let back = format!(
                    "/auth/v3/oauth/authorize?response_type=code&client_id=x&redirect_uri={}",
                    url::form_urlencoded::byte_serialize(redirect_uri.as_bytes())
                        .collect::<String>()
                );
                redirect(&back, Some("AUTH=signed-in; Path=/auth"))
            } else {
                redirect("/auth/v3/sign-in?error=bad_credentials", None)
            }
        }
        ("POST", "/auth/v3/oauth/token") => {
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}"))
            );
            let f = form(body);
            let ok = header("authorization") == Some(basic)
                && f.contains(&("grant_type".into(), "password".into()))
                && f.contains(&("username".into(), USER.into()))
                && f.contains(&("password".into(), PASSWORD.into()));
            if ok {
                reply(
                    200,
                    &format!(r#"{{"access_token":"{TOKEN}","token_type":"bearer"}}"#),
                )
            } else {
                reply(401, r#"{"error":"invalid_grant"}"#)
            }
        }
        (_, "/workspace/v3/initialize-workspace") => {
            let by_code = param("code").as_deref() == Some(CODE)
                && param("redirect_uri").as_deref() == Some(redirect_uri.as_str());
            let by_token = header("authorization") == Some(format!("Bearer {TOKEN}"));
            if by_code || by_token {
                st.logins += 1;
                let id = session_id(st.logins);
                st.sessions.insert(id.clone());
                let mut r = reply(
                    200,
                    r#"{"status":{"code":1},"data":{"user":{"id":"u1","userName":"JohnSmith"}}}"#,
                );
                r.headers_mut().insert(
                    "set-cookie",
                    format!("WORKSPACE_SESSIONID={id}; Path=/; HttpOnly")
                        .parse()
                        .unwrap(),
                );
                r
            } else {
                reply(
                    401,
                    r#"{"status":{"code":20,"message":"not authenticated"}}"#,
                )
            }
        }
        _ if !session_ok => reply(if st.forbid_lost { 403 } else { 401 }, ""),
        ("GET", "/workspace/v3/current-session") => {
            if st.forbidden > 0 {
                st.forbidden -= 1;
                reply(403, "")
            } else {
                let text = format!(
                    r#"{{"status":{{"code":0}},"data":{{"user":{{"activeSession":{{"calls":[{}]}}}}}}}}"#,
                    st.calls.join(",")
                );
                reply(200, &text)
            }
        }
        ("POST", p) if p.starts_with("/workspace/v3/voice/calls/") => {
            if p.starts_with("/workspace/v3/voice/calls/denied/") {
                reply(403, r#"{"status":{"code":5,"message":"No permission"}}"#)
            } else if p.starts_with("/workspace/v3/voice/calls/gone/") {
                reply(400, r#"{"status":{"code":6,"message":"Call not found"}}"#)
            } else {
                reply(200, r#"{"status":{"code":1},"operationId":"op-1"}"#)
            }
        }
        _ => reply(404, ""),
    }
}

/// The session cookie value of the `n`th login.
pub fn session_id(n: u32) -> String {
    format!("wsid-7f3a9c1e-{n}")
}
