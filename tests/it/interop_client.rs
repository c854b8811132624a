//! The client against the official CometD Node.js server (npm `cometd-nodejs-server`, pinned in
//! package-lock.json), started on 127.0.0.1 with a free port.

use gws_cometd_test_support::cometd_node;
use gws_cometd_test_support::within;

use std::time::Duration;

use cometd_node::CometdNode;
use futures::StreamExt;
use gws_cometd::bayeux::SessionEvent;
use gws_cometd::{Client, ClientEvent, Subscriber};

use crate::support::events::{next_event, subscribed};

const LIMIT: Duration = Duration::from_secs(60);

/// Reads `n` messages and checks their `seq` runs on from `first`.
async fn expect_seq(sub: &mut Subscriber, first: u64, n: u64) {
    for want in first..first + n {
        let m = within(&format!("message seq {want}"), LIMIT, sub.next())
            .await
            .expect("stream open");
        let v: serde_json::Value = serde_json::from_str(m.data.as_ref().unwrap().get()).unwrap();
        assert_eq!(v["seq"].as_u64(), Some(want), "out of order or lost: {v}");
    }
}

fn client(node: &CometdNode) -> Client {
    Client::builder(node.url())
        .max_network_delay(Duration::from_secs(5))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_20000_messages_arrives_complete_and_in_order() {
    let node = CometdNode::start()
        .await
        .expect("the CometD Node.js server starts");
    let client = client(&node);
    let mut events = client.events();
    let mut sub = client.subscribe("/burst").await.unwrap();
    subscribed(&mut events, "/burst", LIMIT).await;
    node.publish("/burst", 20_000, 300).await.unwrap();
    expect_seq(&mut sub, 0, 20_000).await;
    client.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_publish_reaches_another_client() {
    let node = CometdNode::start()
        .await
        .expect("the CometD Node.js server starts");
    let listener = client(&node);
    let mut events = listener.events();
    let mut sub = listener.subscribe("/chat/*").await.unwrap();
    subscribed(&mut events, "/chat/*", LIMIT).await;

    let speaker = client(&node);
    within(
        "the publish",
        LIMIT,
        speaker.publish("/chat/room", &serde_json::json!({"seq": 0, "text": "hi"})),
    )
    .await
    .expect("publish acknowledged");
    let m = within("the message", LIMIT, sub.next()).await.unwrap();
    assert_eq!(m.channel, "/chat/room");
    assert_eq!(m.data.unwrap().get(), r#"{"seq":0,"text":"hi"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_client_replies_lead_to_rehandshake_and_resubscription() {
    let node = CometdNode::start()
        .await
        .expect("the CometD Node.js server starts");
    let client = client(&node);
    let mut events = client.events();
    let mut sub = client.subscribe("/feed").await.unwrap();
    subscribed(&mut events, "/feed", LIMIT).await;
    node.publish("/feed", 10, 100).await.unwrap();
    expect_seq(&mut sub, 0, 10).await;

    node.forget().await.unwrap();
    next_event(&mut events, "Rehandshaken", LIMIT, |e| {
        matches!(e, ClientEvent::Session(SessionEvent::Rehandshaken { .. })).then_some(())
    })
    .await;
    subscribed(&mut events, "/feed", LIMIT).await;
    node.publish("/feed", 10, 100).await.unwrap();
    expect_seq(&mut sub, 0, 10).await;
    let sessions = node.sessions().await.unwrap();
    assert_eq!(sessions.sessions, 1, "{sessions:?}");
    assert_eq!(
        sessions.subscribers("/feed"),
        1,
        "no duplicate subscription: {sessions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gets_a_new_handshake_and_the_stream_goes_on() {
    let mut node = CometdNode::start()
        .await
        .expect("the CometD Node.js server starts");
    let client = client(&node);
    let mut events = client.events();
    let mut sub = client.subscribe("/feed").await.unwrap();
    subscribed(&mut events, "/feed", LIMIT).await;
    node.publish("/feed", 100, 300).await.unwrap();
    expect_seq(&mut sub, 0, 100).await;

    node.restart_same_port()
        .await
        .expect("restart on the same port");
    next_event(&mut events, "Rehandshaken", LIMIT, |e| {
        matches!(e, ClientEvent::Session(SessionEvent::Rehandshaken { .. })).then_some(())
    })
    .await;
    subscribed(&mut events, "/feed", LIMIT).await;
    node.publish("/feed", 100, 300).await.unwrap();
    expect_seq(&mut sub, 0, 100).await;
}
