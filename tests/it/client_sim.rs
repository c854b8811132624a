//! The client against the in-process simulator over real HTTP on 127.0.0.1: delivery,
//! recovery from every simulator fault, and the errors that end a client.

use gws_cometd_test_support::within;
use std::time::Duration;

use futures::StreamExt;
use gws_cometd::bayeux::{GapCause, SessionError, SessionEvent};
use gws_cometd::transport::{HttpTransport, HttpTransportBuilder};
use gws_cometd::{Client, ClientBuilder, ClientEvent, Error, EventStream, Subscriber};
use gws_cometd_sim::{Fault, SimConfig, SimServer};

use crate::support::events::{next_event, subscribed};

const LIMIT: Duration = Duration::from_secs(20);

async fn sim() -> SimServer {
    SimServer::start(SimConfig {
        long_poll_timeout: Duration::from_millis(1500),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn builder(sim: &SimServer) -> ClientBuilder {
    with_http(HttpTransport::builder(sim.url()))
}

/// A client with the test's timing over an HTTP transport configured by the test.
fn with_http(http: HttpTransportBuilder) -> ClientBuilder {
    Client::with_transport(http.build().unwrap())
        .max_network_delay(Duration::from_millis(1000))
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// The first event `pick` accepts, within `LIMIT`.
async fn expect_event<T>(
    events: &mut EventStream,
    pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    next_event(events, "the expected event", LIMIT, pick).await
}

async fn next_data(sub: &mut Subscriber) -> String {
    let m = within("a message", LIMIT, sub.next())
        .await
        .expect("stream still open");
    m.data.expect("data message").get().to_string()
}

async fn publish_seq(sim: &SimServer, channel: &str, range: std::ops::Range<u32>) {
    for i in range {
        sim.publish_str(channel, &format!(r#"{{"seq":{i}}}"#));
    }
}

#[tokio::test]
async fn messages_arrive_complete_and_in_order() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    publish_seq(&sim, "/v2/me/calls", 0..2000).await;
    for i in 0..2000 {
        assert_eq!(next_data(&mut sub).await, format!(r#"{{"seq":{i}}}"#));
    }
}

#[tokio::test]
async fn data_is_delivered_byte_for_byte() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    let text = r#"{"userData":{"k":"1","k":2,"big":90071992547409931234,"u":"\u00e9"}}"#;
    sim.publish_str("/v2/me/calls", text);
    assert_eq!(next_data(&mut sub).await, text);
}

#[tokio::test]
async fn wildcard_subscription_receives_matching_channels_once() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client
        .subscribe_all(["/v2/me/*", "/v2/me/calls"])
        .await
        .unwrap();
    subscribed(&mut events, "/v2/me/*", LIMIT).await;
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    sim.publish_str("/v2/me/calls", "1");
    sim.publish_str("/v2/me/devices", "2");
    sim.publish_str("/v2/other", "3");
    sim.publish_str("/v2/me/calls", "4");
    assert_eq!(next_data(&mut sub).await, "1");
    assert_eq!(next_data(&mut sub).await, "2");
    assert_eq!(next_data(&mut sub).await, "4");
}

#[tokio::test]
async fn forgotten_sessions_are_rehandshaken_and_resubscribed_once() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    publish_seq(&sim, "/v2/me/calls", 0..1).await;
    assert_eq!(next_data(&mut sub).await, r#"{"seq":0}"#);

    sim.forget_sessions();
    expect_event(&mut events, |e| {
        matches!(e, ClientEvent::Session(SessionEvent::Rehandshaken { .. })).then_some(())
    })
    .await;
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    publish_seq(&sim, "/v2/me/calls", 1..3).await;
    assert_eq!(next_data(&mut sub).await, r#"{"seq":1}"#);
    assert_eq!(next_data(&mut sub).await, r#"{"seq":2}"#);
    let stats = sim.stats();
    assert_eq!(stats.sessions, 1, "one live session: {stats:?}");
    assert_eq!(
        stats.subscriptions.get("/v2/me/calls").copied(),
        Some(1),
        "exactly one subscription after the re-handshake: {stats:?}"
    );
}

/// Runs one fault for a while, clears it, and checks that messages flow again.
async fn recovers_from(fault: Fault, expect_loss: bool) {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    // Let the first long poll settle so the fault hits a connect.
    tokio::time::sleep(Duration::from_millis(100)).await;
    sim.set_fault(fault);
    if expect_loss {
        expect_event(&mut events, |e| {
            matches!(e, ClientEvent::Session(SessionEvent::ConnectionLost { .. })).then_some(())
        })
        .await;
    } else {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sim.clear_faults();
    publish_seq(&sim, "/v2/me/calls", 0..5).await;
    for i in 0..5 {
        assert_eq!(next_data(&mut sub).await, format!(r#"{{"seq":{i}}}"#));
    }
}

#[tokio::test]
async fn recovers_from_http_500() {
    recovers_from(Fault::HttpStatus(500), true).await;
}

#[tokio::test]
async fn recovers_from_http_503_once() {
    recovers_from(Fault::HttpStatusOnce(503), false).await;
}

#[tokio::test]
async fn recovers_from_malformed_replies() {
    recovers_from(Fault::Malformed, true).await;
}

#[tokio::test]
async fn recovers_from_truncated_replies() {
    recovers_from(Fault::Truncated, true).await;
}

#[tokio::test]
async fn recovers_from_connections_reset_mid_body() {
    recovers_from(Fault::ResetMidBody, true).await;
}

#[tokio::test]
async fn a_silent_server_is_detected_by_the_deadline() {
    let started = std::time::Instant::now();
    recovers_from(Fault::Hold, true).await;
    // Held requests were abandoned at their deadline (1.5 s + 1 s), not waited on forever.
    assert!(started.elapsed() < LIMIT);
}

#[tokio::test]
async fn slow_bodies_arrive_complete() {
    let sim = sim().await;
    sim.set_fault(Fault::SlowBody(Duration::from_millis(5)));
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    publish_seq(&sim, "/v2/me/calls", 0..20).await;
    for i in 0..20 {
        assert_eq!(next_data(&mut sub).await, format!(r#"{{"seq":{i}}}"#));
    }
}

#[tokio::test]
async fn connections_closed_after_every_reply_cost_nothing_visible() {
    let sim = sim().await;
    sim.set_fault(Fault::CloseAfterReply);
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    for i in 0..50 {
        sim.publish_str("/v2/me/calls", &format!(r#"{{"seq":{i}}}"#));
        assert_eq!(next_data(&mut sub).await, format!(r#"{{"seq":{i}}}"#));
    }
    // No failure surfaced while connections kept closing.
    while let Some(Some(ev)) = events.next().now_or_never_opt() {
        assert!(
            !matches!(
                ev,
                ClientEvent::Session(SessionEvent::ConnectionLost { .. })
                    | ClientEvent::Session(SessionEvent::Rehandshaken { .. })
            ),
            "unexpected {ev:?}"
        );
    }
}

trait NowOrNever: futures::Future + Sized {
    fn now_or_never_opt(self) -> Option<Self::Output> {
        futures::FutureExt::now_or_never(self)
    }
}
impl<F: futures::Future> NowOrNever for F {}

#[tokio::test]
async fn advice_none_terminates_with_a_clear_error() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    sim.set_fault(Fault::AdviceNone);
    let error = expect_event(&mut events, |e| match e {
        ClientEvent::Terminated { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(
        matches!(*error, Error::Session(SessionError::ReconnectNone { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("none"));
    assert!(
        within("the end of the stream", LIMIT, sub.next())
            .await
            .is_none(),
        "stream ends"
    );
}

#[tokio::test]
async fn http_401_terminates_as_unauthorized() {
    let sim = sim().await;
    sim.set_fault(Fault::HttpStatus(401));
    let client = with_http(HttpTransport::builder(sim.url()).basic_auth("agent", "wrong-password"))
        .build()
        .unwrap();
    let mut events = client.events();
    let error = expect_event(&mut events, |e| match e {
        ClientEvent::Terminated { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(error.is_auth(), "{error}");
    assert!(!error.to_string().contains("wrong-password"));
    assert!(!format!("{error:?}").contains("wrong-password"));
}

#[tokio::test]
async fn an_unreachable_server_ends_after_the_initial_attempts() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::builder(format!("http://127.0.0.1:{port}/cometd"))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .initial_handshake_attempts(Some(3))
        .build()
        .unwrap();
    let mut events = client.events();
    let mut failures = 0;
    let error = expect_event(&mut events, |e| match e {
        ClientEvent::Session(SessionEvent::HandshakeFailed { .. }) => {
            failures += 1;
            None
        }
        ClientEvent::Terminated { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert_eq!(failures, 3);
    assert!(
        matches!(
            *error,
            Error::Session(SessionError::Unreachable { attempts: 3, .. })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn denied_subscriptions_are_reported() {
    let sim = sim().await;
    sim.set_fault(Fault::DenySubscribe("/secret".into()));
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let _sub = client.subscribe("/secret").await.unwrap();
    let error = expect_event(&mut events, |e| match e {
        ClientEvent::Session(SessionEvent::SubscriptionDenied { channel, error })
            if channel.as_str() == "/secret" =>
        {
            Some(error.clone())
        }
        _ => None,
    })
    .await;
    assert!(error.contains("403"), "{error}");
}

#[tokio::test]
async fn publish_is_acknowledged_and_delivered_to_subscribers() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/chat/room").await.unwrap();
    subscribed(&mut events, "/chat/room", LIMIT).await;
    within(
        "the publish",
        LIMIT,
        client.publish("/chat/room", &serde_json::json!({"text": "hi"})),
    )
    .await
    .unwrap();
    assert_eq!(next_data(&mut sub).await, r#"{"text":"hi"}"#);
    let seen = sim.published_by_clients();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "/chat/room");
}

#[tokio::test]
async fn a_full_subscriber_pauses_the_long_poll_and_loses_nothing() {
    let sim = sim().await;
    let client = builder(&sim).buffer_size(4).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    publish_seq(&sim, "/v2/me/calls", 0..10).await;
    // The driver delivers 4, then waits for room: no new connect goes out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connects = sim.stats().connects;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        sim.stats().connects,
        connects,
        "no long poll while the consumer is full"
    );
    publish_seq(&sim, "/v2/me/calls", 10..300).await;
    for i in 0..300 {
        assert_eq!(next_data(&mut sub).await, format!(r#"{{"seq":{i}}}"#));
    }
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_a_gap_and_the_stream_goes_on() {
    let sim = sim().await;
    let client = builder(&sim).max_message_bytes(2048).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    // One reply: a message too large, then one that fits.
    sim.publish_str("/v2/me/calls", &format!(r#""{}""#, "x".repeat(4096)));
    sim.publish_str("/v2/me/calls", r#"{"seq":1}"#);
    let (size, limit) = expect_event(&mut events, |e| match e {
        ClientEvent::Session(SessionEvent::Gap {
            cause: GapCause::MessageTooLarge { size, limit },
        }) => Some((*size, *limit)),
        ClientEvent::Session(SessionEvent::ConnectionLost { cause }) => {
            panic!("the connection is not lost over one message: {cause}")
        }
        _ => None,
    })
    .await;
    assert_eq!(limit, 2048);
    assert!(size > 4096, "{size}");
    assert_eq!(next_data(&mut sub).await, r#"{"seq":1}"#);
}

#[tokio::test]
async fn disconnect_ends_streams_and_the_server_session() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    assert_eq!(sim.stats().sessions, 1);
    within("the disconnect", LIMIT, client.disconnect()).await;
    assert!(within("the end of the stream", LIMIT, sub.next())
        .await
        .is_none());
    let error = expect_event(&mut events, |e| match e {
        ClientEvent::Terminated { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(*error, Error::Closed));
    assert_eq!(sim.stats().sessions, 0);
}

#[tokio::test]
async fn dropping_a_subscriber_unsubscribes() {
    let sim = sim().await;
    let client = builder(&sim).build().unwrap();
    let mut events = client.events();
    let sub = client.subscribe("/v2/me/calls").await.unwrap();
    subscribed(&mut events, "/v2/me/calls", LIMIT).await;
    drop(sub);
    expect_event(&mut events, |e| {
        matches!(e, ClientEvent::Session(SessionEvent::Unsubscribed { .. })).then_some(())
    })
    .await;
    assert_eq!(
        sim.stats()
            .subscriptions
            .get("/v2/me/calls")
            .copied()
            .unwrap_or(0),
        0
    );
}
