//! No secret in any log line at any level, dependencies' included: the whole GWS flow (login,
//! CometD, REST operations, an expired HTTP session and a new login, refreshed CSRF tokens)
//! runs with every log record at TRACE captured, then every password, Basic credential,
//! cookie value and CSRF token the run used is searched for in what was logged.

use gws_cometd_test_support::log_capture;
use gws_cometd_test_support::within;

use std::time::Duration;

use base64::Engine;
use gws_cometd::gws::rest::{Credentials, GwsSession, UserValue};
use gws_cometd::gws::{CallEvent, CallFeed, FeedEvent};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};

const USER: &str = "agent";
const PASSWORD: &str = "Pa55-w0rd-never-logged";
const WAIT: Duration = Duration::from_secs(20);

/// The session's secrets now: cookie values and the CSRF token.
fn secrets_of(session: &GwsSession) -> Vec<String> {
    let url = reqwest::Url::parse(&session.notifications_url()).unwrap();
    let mut out = Vec::new();
    if let Some(cookies) = session.cookies().header_for(&url) {
        for pair in cookies.to_str().unwrap().split("; ") {
            let (_, value) = pair.split_once('=').unwrap();
            out.push(value.to_owned());
        }
    }
    for (_, token) in session.csrf_headers().read().unwrap().iter() {
        out.push(token.to_str().unwrap().to_owned());
    }
    out
}

async fn next_call(feed: &mut CallFeed) -> CallEvent {
    within("a call change", WAIT, async {
        loop {
            if let FeedEvent::Call(c) = feed.next().await.expect("the feed goes on") {
                return c;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gws_flow_at_trace_level_logs_no_secret() {
    let captured = log_capture::install("trace");
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.scenario = Some(Vec::new());
    let sim = GwsSimServer::start(config).await.unwrap();
    let mut feed = CallFeed::builder(sim.base_url(), Credentials::new(USER, PASSWORD))
        .connect()
        .await
        .unwrap();
    let mut secrets = vec![
        PASSWORD.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}")),
    ];
    secrets.extend(secrets_of(feed.session()));

    let id = sim.gws().ring_inbound("5115", "5001");
    next_call(&mut feed).await;
    let session = feed.session().clone();
    let pairs = vec![("AccountNumber".to_owned(), UserValue::from("12345"))];
    session.attach_user_data(&id, &pairs).await.unwrap();
    next_call(&mut feed).await;

    // A new HTTP session (new cookie, new token), and rotated tokens.
    sim.gws().expire_http_sessions();
    sim.bayeux().forget_sessions();
    within("the login again and the heal", WAIT, async {
        while !matches!(feed.next().await, Some(FeedEvent::Healed { .. })) {}
    })
    .await;
    secrets.extend(secrets_of(feed.session()));
    sim.gws().rotate_csrf_tokens();
    session.update_user_data(&id, &pairs).await.unwrap();
    secrets.extend(secrets_of(feed.session()));
    feed.disconnect().await;

    let log = captured.text();
    // The capture really saw the flow, dependencies included.
    assert!(log.contains("TRACE"), "nothing at trace level was captured");
    assert!(
        log.contains("hyper") || log.contains("reqwest"),
        "the HTTP stack's own records were captured"
    );
    eprintln!("captured {} lines", log.lines().count());
    assert!(
        log.contains("logging in again") || log.contains("logged in again"),
        "{log}"
    );
    secrets.retain(|s| s.len() >= 8);
    assert!(
        secrets.len() >= 6,
        "the run used cookies and tokens: {}",
        secrets.len()
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret was logged: {secret}"
        );
    }
}
