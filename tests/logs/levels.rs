//! What an operator sees at the default level (`info`): each distinct failure of an outage
//! once, not once per retry.

use gws_cometd_test_support::log_capture;
use gws_cometd_test_support::within;

use std::time::Duration;

use futures::StreamExt;
use gws_cometd::bayeux::SessionEvent;
use gws_cometd::{Client, ClientEvent};
use gws_cometd_sim::{Fault, SimConfig, SimServer};

async fn connected(events: &mut gws_cometd::EventStream) {
    within("the connection", Duration::from_secs(20), async {
        while let Some(ev) = events.next().await {
            if matches!(ev, ClientEvent::Session(SessionEvent::Connected)) {
                return;
            }
        }
    })
    .await
}

#[tokio::test]
async fn each_distinct_failure_of_an_outage_is_logged_once() {
    let captured = log_capture::install("trace");
    let sim = SimServer::start(SimConfig {
        long_poll_timeout: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = Client::builder(sim.url())
        .backoff(Duration::from_millis(20), Duration::from_millis(50))
        .build()
        .unwrap();
    let mut events = client.events();
    let _sub = client.subscribe("/a").await.unwrap();
    connected(&mut events).await;
    // An outage of many retries with the same failure, then with a second one.
    sim.set_fault(Fault::HttpStatus(503));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.set_fault(Fault::HttpStatus(502));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = sim.stats().requests;
    sim.clear_faults();
    connected(&mut events).await;
    client.disconnect().await;

    let log = captured.text();
    let warned = |status: &str| {
        log.lines()
            .filter(|l| l.contains(" WARN ") && l.contains(&format!("HTTP {status}")))
            .count()
    };
    assert!(
        before > 20,
        "the outage was retried many times: {before} requests"
    );
    assert_eq!(warned("503"), 1, "{log}");
    assert_eq!(warned("502"), 1, "{log}");
    assert!(log.contains(" INFO ") && log.contains("connected"), "{log}");
}
