//! The GWS REST session on the Workspace API v3, against a small fake v3 server written here
//! (real HTTP on 127.0.0.1): both logins, the session cookie of `initialize-workspace`, the
//! API key, `current-session`'s 403 window, the operations' bodies and status codes, and a new
//! login after the server forgot the session.

use gws_cometd_test_support::within;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use gws_cometd::gws::rest::{Credentials, GwsSession, GwsStatus, RestError, UserValue};
use gws_cometd::gws::Api;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const USER: &str = r"\JohnSmith";
const PASSWORD: &str = "v3-pa55-w0rd";
const CLIENT: &str = "wwe-client";
const SECRET: &str = "cl13nt-s3cr3t";
const API_KEY: &str = "4p1-k3y";
const CODE: &str = "c0de-42";
const TOKEN: &str = "t0ken-42";
const CALL: &str = r#"{"id":"c1","state":"Established","userData":[{"key":"A","type":"str","value":"1"},{"key":"A","type":"int","value":2}]}"#;
const STEP: Duration = Duration::from_secs(20);

/// One request the fake saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query.
    target: String,
    authorization: Option<String>,
    api_key: Option<String>,
    cookie: String,
    body: String,
    status: u16,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Live workspace sessions (cookie values).
    sessions: HashSet<String>,
    logins: u32,
    /// How many more `current-session` requests answer 403.
    forbidden: u32,
}

/// The fake v3 server; stops on drop.
struct Fake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    async fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<State>> = Arc::default();
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

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn session(&self, password: &str, grant: bool) -> GwsSession {
        let mut b = GwsSession::builder(&self.base(), Credentials::new(USER, password))
            .api(Api::V3)
            .api_key(API_KEY)
            .timeout(Duration::from_secs(5));
        if grant {
            b = b.client_credentials(CLIENT, SECRET);
        }
        b.build().unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn seen_at(&self, path: &str) -> Vec<Seen> {
        let path = path.to_owned();
        self.seen()
            .into_iter()
            .filter(|s| s.target.split('?').next() == Some(path.as_str()))
            .collect()
    }
}

fn form(body: &str) -> Vec<(String, String)> {
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
    let query: Vec<(String, String)> = form(parts.uri.query().unwrap_or(""));
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let path = parts.uri.path().to_owned();
    let mut st = state.lock().unwrap();
    let session_ok = cookie
        .split("; ")
        .filter_map(|c| c.strip_prefix("WORKSPACE_SESSIONID="))
        .any(|s| st.sessions.contains(s));
    let redirect_uri = format!("http://{addr}/");
    let resp = match (parts.method.as_str(), path.as_str()) {
        ("GET", "/auth/v3/oauth/authorize") => {
            if cookie.contains("AUTH=signed-in") {
                redirect(&format!("{redirect_uri}?code={CODE}&state=x"), None)
            } else {
                redirect("/auth/v3/sign-in", None)
            }
        }
        ("GET", "/auth/v3/sign-in") => reply(200, "<html>sign in</html>"),
        ("POST", "/auth/v3/sign-in") => {
            let f = form(&body);
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
            let f = form(&body);
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
                let id = format!("s{}", st.logins);
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
        _ if !session_ok => reply(401, ""),
        ("GET", "/workspace/v3/current-session") => {
            if st.forbidden > 0 {
                st.forbidden -= 1;
                reply(403, "")
            } else {
                let text = format!(
                    r#"{{"status":{{"code":0}},"data":{{"user":{{"activeSession":{{"calls":[{CALL}]}}}}}}}}"#
                );
                reply(200, &text)
            }
        }
        ("POST", p) if p.starts_with("/workspace/v3/voice/calls/") => {
            if p.starts_with("/workspace/v3/voice/calls/gone/") {
                reply(400, r#"{"status":{"code":6,"message":"Call not found"}}"#)
            } else {
                reply(200, r#"{"status":{"code":1},"operationId":"op-1"}"#)
            }
        }
        _ => reply(404, ""),
    };
    st.seen.push(Seen {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authorization: header("authorization"),
        api_key: header("x-api-key"),
        cookie,
        body,
        status: resp.status().as_u16(),
    });
    Ok(resp)
}

#[tokio::test]
async fn sign_in_and_code_flow_keep_the_session_cookie_and_send_the_api_key() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, false);
    let me = within("login", STEP, session.login()).await.unwrap();
    assert_eq!(me.user_name.as_deref(), Some("JohnSmith"));
    assert!(session
        .cookies()
        .names()
        .contains(&"WORKSPACE_SESSIONID".to_owned()));
    let sign_in = fake.seen_at("/auth/v3/sign-in");
    let posted = sign_in.iter().find(|s| s.method == "POST").unwrap();
    assert!(form(&posted.body).contains(&("username".into(), USER.into())));
    let init = &fake.seen_at("/workspace/v3/initialize-workspace")[0];
    assert!(init.target.contains(&format!("code={CODE}")), "{init:?}");
    // The REST requests ride on the session cookie; every request carries the API key.
    let calls = within("calls", STEP, session.calls()).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].get(), CALL, "the call text exactly as sent");
    assert!(fake.seen_at("/workspace/v3/current-session")[0]
        .cookie
        .contains("WORKSPACE_SESSIONID=s1"));
    for s in fake.seen() {
        assert_eq!(s.api_key.as_deref(), Some(API_KEY), "{s:?}");
    }
    assert!(!format!("{session:?}").contains(PASSWORD));
}

#[tokio::test]
async fn a_wrong_password_is_refused_at_once() {
    let fake = Fake::start().await;
    let session = fake.session("wrong", false);
    let err = within("login", STEP, session.login()).await.unwrap_err();
    assert!(err.is_auth() && !err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("sign-in"), "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");
    assert!(fake
        .seen_at("/workspace/v3/initialize-workspace")
        .is_empty());
}

#[tokio::test]
async fn the_password_grant_initializes_with_a_bearer_token() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, true);
    within("login", STEP, session.login()).await.unwrap();
    assert!(fake.seen_at("/auth/v3/sign-in").is_empty());
    let init = &fake.seen_at("/workspace/v3/initialize-workspace")[0];
    assert_eq!(
        init.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert!(session
        .cookies()
        .names()
        .contains(&"WORKSPACE_SESSIONID".to_owned()));

    let bad = GwsSession::builder(&fake.base(), Credentials::new(USER, PASSWORD))
        .api(Api::V3)
        .client_credentials(CLIENT, "not-the-secret")
        .build()
        .unwrap();
    let err = within("login", STEP, bad.login()).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
}

#[tokio::test]
async fn current_session_is_asked_again_through_its_403_window() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, true);
    within("login", STEP, session.login()).await.unwrap();
    fake.state.lock().unwrap().forbidden = 2;
    let calls = within("calls", STEP, session.calls()).await.unwrap();
    assert_eq!(calls.len(), 1);
    let statuses: Vec<u16> = fake
        .seen_at("/workspace/v3/current-session")
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [403, 403, 200]);
    assert_eq!(
        fake.state.lock().unwrap().logins,
        1,
        "no new login for the window"
    );
}

#[tokio::test]
async fn operations_send_v3_bodies_and_map_status_codes() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, true);
    let pairs = vec![
        ("A".to_owned(), UserValue::from("12345")),
        ("P".to_owned(), UserValue::from(2)),
        (
            "J".to_owned(),
            UserValue::json(r#"{"k":"v","n":7}"#).unwrap(),
        ),
        ("A".to_owned(), UserValue::from("again")),
    ];
    within("attach", STEP, session.attach_user_data("c1", &pairs))
        .await
        .unwrap();
    within(
        "delete pair",
        STEP,
        session.delete_user_data_pair("c1", "A"),
    )
    .await
    .unwrap();
    within("hold", STEP, session.hold("c1")).await.unwrap();
    within("hangup", STEP, session.hangup("c1")).await.unwrap();
    let posts: Vec<(String, String)> = fake
        .seen()
        .into_iter()
        .filter(|s| s.target.starts_with("/workspace/v3/voice/"))
        .map(|s| (s.target, s.body))
        .collect();
    assert_eq!(
        posts,
        [
            (
                "/workspace/v3/voice/calls/c1/attach-user-data".to_owned(),
                concat!(
                    r#"{"data":{"userData":[{"key":"A","type":"str","value":"12345"},"#,
                    r#"{"key":"P","type":"int","value":2},{"key":"J","type":"kvlist","value":["#,
                    r#"{"key":"k","type":"str","value":"v"},{"key":"n","type":"int","value":7}]},"#,
                    r#"{"key":"A","type":"str","value":"again"}]}}"#
                )
                .to_owned()
            ),
            (
                "/workspace/v3/voice/calls/c1/delete-user-data-pair".to_owned(),
                r#"{"data":{"key":"A"}}"#.to_owned()
            ),
            (
                "/workspace/v3/voice/calls/c1/hold".to_owned(),
                r#"{"data":{}}"#.to_owned()
            ),
            (
                "/workspace/v3/voice/calls/c1/release".to_owned(),
                r#"{"data":{}}"#.to_owned()
            ),
        ]
    );
    // Delete-all: v3 has none; each key of the call is deleted once.
    within("delete all", STEP, session.delete_user_data("c1"))
        .await
        .unwrap();
    let deletes = fake
        .seen_at("/workspace/v3/voice/calls/c1/delete-user-data-pair")
        .len();
    assert_eq!(deletes, 2, "A once more, from the call's [A, A]");

    let err = within("answer", STEP, session.answer("gone"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RestError::Gws { status: GwsStatus::NotFound, call_id: Some(c), .. } if c == "gone"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Answer on call gone: GWS statusCode 6 (not found): Call not found"
    );
    let err = session
        .attach_user_data("c1", &[("F".into(), UserValue::json("2.5").unwrap())])
        .await
        .unwrap_err();
    assert!(matches!(err, RestError::InvalidValue { .. }), "{err:?}");
}

#[tokio::test]
async fn a_forgotten_session_logs_in_again_once() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, false);
    within("login", STEP, session.login()).await.unwrap();
    // The server restarted: it knows no session any more.
    fake.state.lock().unwrap().sessions.clear();
    within("hold", STEP, session.hold("c1")).await.unwrap();
    assert_eq!(fake.state.lock().unwrap().logins, 2);
    let holds: Vec<u16> = fake
        .seen_at("/workspace/v3/voice/calls/c1/hold")
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(holds, [401, 200]);
    assert!(fake.seen_at("/workspace/v3/voice/calls/c1/hold")[1]
        .cookie
        .contains("WORKSPACE_SESSIONID=s2"));
}
