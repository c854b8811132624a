//! A replayed fixture and the same messages delivered live (simulator → HTTP → client)
//! produce the same call store.

use gws_cometd_test_support::within;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gws_cometd::gws::wire::{self, Notification};
use gws_cometd::gws::{CallStore, CALLS_CHANNEL};
use gws_cometd::Client;
use gws_cometd_sim::{SimConfig, SimServer};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/inbound-call.jsonl");

#[tokio::test]
async fn replayed_and_live_stores_are_identical() {
    // Replay: the fixture through the reducer's stream adapter.
    let mut replayed = CallStore::new().changes(Box::pin(gws_cometd::fixture::read(FIXTURE)));
    let mut replay_changes = Vec::new();
    while let Some(change) = replayed.next().await {
        replay_changes.push(change.expect("the fixture reads"));
    }
    let replayed = replayed.into_store();

    // Live: every call-channel data message of the fixture published by the simulator,
    // received by the client, applied as it arrives.
    let messages: Vec<_> = gws_cometd::fixture::read(FIXTURE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|m| m.expect("the fixture reads"))
        .filter(|m| m.channel == CALLS_CHANNEL && m.data.is_some())
        .collect();
    assert!(messages.len() >= 8, "the fixture is a whole call");
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let client = Client::builder(sim.url()).build().unwrap();
    let mut sub = client.subscribe(CALLS_CHANNEL).await.unwrap();
    assert!(
        sim.wait_for_subscribers(CALLS_CHANNEL, 1, Duration::from_secs(10))
            .await
    );
    for m in &messages {
        sim.publish(CALLS_CHANNEL, m.data.as_deref().unwrap());
    }
    let mut live = CallStore::new();
    let mut live_changes = Vec::new();
    for _ in 0..messages.len() {
        let m = within("every message", Duration::from_secs(10), sub.next())
            .await
            .expect("the stream goes on");
        if let Notification::Call(call) = wire::decode(&m).expect("decodes") {
            live_changes.extend(live.apply(&call, Instant::now()).map(|mut a| a.change()));
        }
    }
    client.disconnect().await;

    assert_eq!(live_changes, replay_changes);
    assert_eq!(
        serde_json::to_string(&live.snapshot()).unwrap(),
        serde_json::to_string(&replayed.snapshot()).unwrap()
    );
}
