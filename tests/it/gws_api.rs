//! The GWS REST session against the simulator's GWS semantics, over real HTTP on 127.0.0.1.

use gws_cometd_test_support::within;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gws_cometd::gws::rest::{Credentials, GwsSession, GwsStatus, RestError, UserValue};
use gws_cometd_sim::gws::{GwsSim, GwsSimConfig, CALLS_CHANNEL};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const USER: &str = "agent";
const PASSWORD: &str = "pa55-w0rd-secret";

/// Every request the server saw: method, path, status.
type Log = Arc<Mutex<Vec<(String, String, u16)>>>;
type Published = Arc<Mutex<Vec<(String, String)>>>;

/// An HTTP server on 127.0.0.1:0 routing every request into `GwsSim::handle`; stops on drop.
struct Server {
    addr: SocketAddr,
    sim: GwsSim,
    log: Log,
    published: Published,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Server {
        let published: Published = Arc::default();
        let sink = published.clone();
        let sim = GwsSim::new(
            GwsSimConfig::new(USER, PASSWORD),
            Arc::new(move |_user: &str, channel: &str, data: String| {
                sink.lock().unwrap().push((channel.to_owned(), data));
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let (task_sim, task_log) = (sim.clone(), log.clone());
        let task = tokio::spawn(async move {
            // Connections live in the set, so aborting the accept loop ends them too.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let (sim, log) = (task_sim.clone(), task_log.clone());
                connections.spawn(async move {
                    let service = service_fn(move |req| serve(sim.clone(), log.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server {
            addr,
            sim,
            log,
            published,
            task,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn session(&self, password: &str) -> GwsSession {
        GwsSession::builder(&self.base(), Credentials::new(USER, password))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    fn requests(&self) -> Vec<(String, String, u16)> {
        self.log.lock().unwrap().clone()
    }

    fn published(&self) -> Vec<(String, String)> {
        self.published.lock().unwrap().clone()
    }
}

async fn serve(
    sim: GwsSim,
    log: Log,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let req = Request::from_parts(parts, body);
    let resp = sim.handle(&req).unwrap_or_else(|| {
        let mut not_found = Response::new(Bytes::new());
        *not_found.status_mut() = hyper::StatusCode::NOT_FOUND;
        not_found
    });
    log.lock().unwrap().push((
        req.method().to_string(),
        req.uri().path().to_owned(),
        resp.status().as_u16(),
    ));
    Ok(resp.map(Full::new))
}

/// Bounds every step so a broken server or client cannot hang the suite.
const STEP: Duration = Duration::from_secs(20);

/// `KEY=VALUE` pairs: a JSON integer literal is an integer, `"..."` a string without its
/// quotes, anything else a string.
fn pairs(args: &[&str]) -> Vec<(String, UserValue)> {
    let value = |v: &str| match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(quoted) => UserValue::from(quoted),
        None => UserValue::integer(v).unwrap_or_else(|| UserValue::from(v)),
    };
    args.iter()
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap();
            (k.to_owned(), value(v))
        })
        .collect()
}

/// The `userData` object text of a call, exactly as written (duplicates included).
fn user_data_text(call: &str) -> Option<&str> {
    let start = call.find(r#""userData":{"#)? + r#""userData":"#.len();
    let end = start + call[start..].find('}')? + 1;
    Some(&call[start..end])
}

#[tokio::test]
async fn login_keeps_the_session_cookie_and_the_csrf_header() {
    let server = Server::start().await;
    let session = server.session(PASSWORD);
    let me = within("the request", STEP, session.login()).await.unwrap();
    assert_eq!(me.user_name.as_deref(), Some(USER));
    assert!(me.user.get().contains(r#""userName":"agent""#));

    let url = reqwest::Url::parse(&session.notifications_url()).unwrap();
    let cookie = session
        .cookies()
        .header_for(&url)
        .expect("a cookie for the notifications URL");
    assert!(cookie.to_str().unwrap().starts_with("JSESSIONID="));
    let csrf = session.csrf_headers().read().unwrap().clone();
    assert_eq!(csrf.len(), 1);
    assert!(csrf.get("X-CSRF-TOKEN").is_some());

    // Exactly what the notification transport will send is accepted by the server.
    let mut headers = csrf;
    headers.insert(hyper::header::COOKIE, cookie);
    assert_eq!(server.sim.session_of(&headers).as_deref(), Some(USER));
    assert!(server.sim.csrf_ok(&headers));
    assert_eq!(
        session.notifications_url(),
        format!("{}/api/v2/notifications", server.base())
    );
}

#[tokio::test]
async fn a_wrong_password_fails_once_with_a_clear_error_and_no_retries() {
    let server = Server::start().await;
    let session = server.session("wrong-password");
    let err = within("the request", STEP, session.login())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RestError::Unauthorized { status: 401, hint, .. } if hint.contains("check the user name and password")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(server.requests().len(), 1);

    // A REST call that has to log in first fails the same way, also after one request.
    let id = server.sim.ring_inbound("5115", "5001");
    let err = within("the request", STEP, session.delete_user_data(&id))
        .await
        .unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert_eq!(server.requests().len(), 2);
    assert!(!err.to_string().contains("wrong-password"));
}

#[tokio::test]
async fn a_refused_csrf_token_is_refreshed_once_and_the_operation_succeeds() {
    let server = Server::start().await;
    let session = server.session(PASSWORD);
    within("the request", STEP, session.login()).await.unwrap();
    let id = server.sim.ring_inbound("5115", "5001");
    let old = session.csrf_headers().read().unwrap().clone();

    server.sim.rotate_csrf_tokens();
    within(
        "the request",
        STEP,
        session.attach_user_data(&id, &pairs(&["AccountNumber=12345"])),
    )
    .await
    .unwrap();

    let requests = server.requests();
    let statuses: Vec<_> = requests[1..]
        .iter()
        .map(|(m, p, s)| (m.as_str(), p.as_str(), *s))
        .collect();
    let call_path = format!("/api/v2/me/calls/{id}");
    assert_eq!(
        statuses,
        [
            ("POST", call_path.as_str(), 403),
            ("GET", "/api/v2/me", 200),
            ("POST", call_path.as_str(), 200)
        ]
    );
    assert_ne!(*session.csrf_headers().read().unwrap(), old);
    assert!(server
        .sim
        .call_json(&id)
        .unwrap()
        .contains(r#""AccountNumber":12345"#));
}

#[tokio::test]
async fn the_four_operations_change_the_call_as_gws_does() {
    let server = Server::start().await;
    let session = server.session(PASSWORD);
    let id = server.sim.ring_inbound("5115", "5001");
    server.sim.answer(&id).unwrap();
    let call = |sim: &GwsSim| sim.call_json(&id).unwrap();

    // The first operation logs in by itself.
    within(
        "the request",
        STEP,
        session.attach_user_data(&id, &pairs(&["AccountNumber=12345", "Priority=2"])),
    )
    .await
    .unwrap();
    assert_eq!(
        user_data_text(&call(&server.sim)),
        Some(r#"{"AccountNumber":12345,"Priority":2}"#)
    );

    // Attach of an existing key yields a duplicate, in order, with its own type.
    within(
        "the request",
        STEP,
        session.attach_user_data(&id, &pairs(&[r#"AccountNumber="999""#])),
    )
    .await
    .unwrap();
    let duplicated = r#"{"AccountNumber":12345,"Priority":2,"AccountNumber":"999"}"#;
    assert_eq!(user_data_text(&call(&server.sim)), Some(duplicated));

    // calls() hands back the call text with both occurrences.
    let calls = within("the request", STEP, session.calls()).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(user_data_text(calls[0].get()), Some(duplicated));
    assert_eq!(calls[0].get(), call(&server.sim));

    // Update replaces every occurrence, and adds absent keys.
    within(
        "the request",
        STEP,
        session.update_user_data(&id, &pairs(&["AccountNumber=7", "Region=EU"])),
    )
    .await
    .unwrap();
    assert_eq!(
        user_data_text(&call(&server.sim)),
        Some(r#"{"AccountNumber":7,"Priority":2,"AccountNumber":7,"Region":"EU"}"#)
    );

    // Delete-pair removes both occurrences.
    within(
        "the request",
        STEP,
        session.delete_user_data_pair(&id, "AccountNumber"),
    )
    .await
    .unwrap();
    assert_eq!(
        user_data_text(&call(&server.sim)),
        Some(r#"{"Priority":2,"Region":"EU"}"#)
    );

    // Delete-all drops the property.
    within("the request", STEP, session.delete_user_data(&id))
        .await
        .unwrap();
    assert!(!call(&server.sim).contains("userData"));

    // Each operation published AttachedDataChanged with the whole call, in order.
    let published = server.published();
    let changes: Vec<&str> = published
        .iter()
        .filter(|(channel, data)| {
            channel == CALLS_CHANNEL && data.contains(r#""notificationType":"AttachedDataChanged""#)
        })
        .map(|(_, data)| data.as_str())
        .collect();
    assert_eq!(changes.len(), 5);
    assert_eq!(user_data_text(changes[1]), Some(duplicated));
    assert!(changes[4].contains(&format!(r#""id":"{id}""#)));
    assert!(!changes[4].contains("userData"));
}

#[tokio::test]
async fn gws_status_codes_become_typed_errors_naming_the_call() {
    let server = Server::start().await;
    let session = server.session(PASSWORD);
    let err = within(
        "the request",
        STEP,
        session.delete_user_data_pair("NO-SUCH-CALL", "K"),
    )
    .await
    .unwrap_err();
    match &err {
        RestError::Gws {
            operation,
            call_id,
            status,
            message,
        } => {
            assert_eq!(operation, "DeleteUserDataPair");
            assert_eq!(call_id.as_deref(), Some("NO-SUCH-CALL"));
            assert_eq!(*status, GwsStatus::NotFound);
            assert_eq!(message.as_deref(), Some("Call not found"));
        }
        other => panic!("expected a GWS error, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "DeleteUserDataPair on call NO-SUCH-CALL: GWS statusCode 6 (not found): Call not found"
    );

    let id = server.sim.ring_inbound("5115", "5001");
    server.sim.hangup(&id).unwrap();
    server.sim.complete(&id).unwrap();
    let err = within(
        "the request",
        STEP,
        session.attach_user_data(&id, &pairs(&["A=1"])),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &err,
            RestError::Gws {
                status: GwsStatus::InvalidState,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_expired_http_session_logs_in_again_once_and_goes_on() {
    let server = Server::start().await;
    let session = server.session(PASSWORD);
    within("the request", STEP, session.login()).await.unwrap();
    let id = server.sim.ring_inbound("5115", "5001");

    server.sim.expire_http_sessions();
    within(
        "the request",
        STEP,
        session.attach_user_data(&id, &pairs(&["A=1"])),
    )
    .await
    .unwrap();
    let call_path = format!("/api/v2/me/calls/{id}");
    let after_login: Vec<_> = server.requests()[1..]
        .iter()
        .map(|(m, p, s)| (m.clone(), p.clone(), *s))
        .collect();
    assert_eq!(
        after_login,
        [
            ("POST".into(), call_path.clone(), 401),
            ("GET".into(), "/api/v2/me".into(), 200),
            ("POST".into(), call_path, 200)
        ]
    );

    // Concurrent callers hitting the same expiry share one login.
    server.sim.expire_http_sessions();
    let before = server.requests().len();
    let b2 = pairs(&["B=2"]);
    let (a, b, c) = within("the request", STEP, async {
        tokio::join!(
            session.calls(),
            session.calls(),
            session.attach_user_data(&id, &b2)
        )
    })
    .await;
    assert_eq!(a.unwrap().len(), 1);
    assert_eq!(b.unwrap().len(), 1);
    c.unwrap();
    let logins = server.requests()[before..]
        .iter()
        .filter(|(_, p, _)| p == "/api/v2/me")
        .count();
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output_or_errors() {
    let server = Server::start().await;
    let session = server.session(PASSWORD);
    within("the request", STEP, session.login()).await.unwrap();
    let url = reqwest::Url::parse(&session.notifications_url()).unwrap();
    let cookie = session.cookies().header_for(&url).unwrap();
    let cookie = cookie
        .to_str()
        .unwrap()
        .trim_start_matches("JSESSIONID=")
        .to_owned();
    let token = session.csrf_headers().read().unwrap()["X-CSRF-TOKEN"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.len() >= 16 && token.len() >= 16);

    let mut errors = vec![
        within("the request", STEP, session.delete_user_data("missing"))
            .await
            .unwrap_err(),
        within(
            "the request",
            STEP,
            server.session("not-the-password-xyz").login(),
        )
        .await
        .unwrap_err(),
    ];
    server.sim.rotate_csrf_tokens();
    server.sim.expire_http_sessions();
    errors.push(
        within("the request", STEP, session.delete_user_data("missing"))
            .await
            .unwrap_err(),
    );

    let mut texts = vec![
        format!("{session:?}"),
        format!("{:?}", session.csrf_headers()),
        format!("{:?}", Credentials::new(USER, PASSWORD)),
    ];
    for err in &errors {
        texts.push(format!("{err:?}"));
        texts.push(err.to_string());
    }
    for text in texts {
        for secret in [PASSWORD, "not-the-password-xyz", &cookie, &token] {
            assert!(!text.contains(secret), "{text:?} leaks a secret");
        }
    }
}
