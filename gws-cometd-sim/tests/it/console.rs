//! The console's API over real HTTP, without a browser: the state request waits for the
//! user's next change (only theirs), and a server that stops lets it go at once. The page
//! itself is tested in Chromium by gws-cometd-cli's `console` tests.

use std::time::Duration;

use gws_cometd_sim::gws::GwsSimConfig;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
use gws_cometd_test_support::within;
use serde_json::Value;

const USER: &str = "agent";
const PASSWORD: &str = "c0nsole-pw";
const OTHER: &str = "second";
const OTHER_PASSWORD: &str = "s3cond-pw";
const WAIT: Duration = Duration::from_secs(10);

async fn server() -> GwsSimServer {
    GwsSimServer::start(GwsServerConfig {
        gws: GwsSimConfig::new(USER, PASSWORD).with_user(OTHER, OTHER_PASSWORD),
        scenario: Some(Vec::new()),
        ..GwsServerConfig::new(USER, PASSWORD)
    })
    .await
    .unwrap()
}

async fn state(sim: &GwsSimServer, since: Option<u64>) -> Value {
    let query = since.map(|v| format!("?since={v}")).unwrap_or_default();
    let resp = reqwest::Client::new()
        .get(format!("{}/console/api/state{query}", sim.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_state_request_waits_for_the_users_next_change_and_not_another_users() {
    let sim = server().await;
    let first = state(&sim, None).await;
    assert_eq!(first["user"], USER);
    assert_eq!(first["number"], "5001");
    assert_eq!(first["calls"], serde_json::json!([]));
    assert_eq!(first["replay"], Value::Null);
    let version = first["version"].as_u64().unwrap();

    let waiting = {
        let url = sim.base_url();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!("{url}/console/api/state?since={version}"))
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.gws().ring_inbound_for(OTHER, "6116", "5002").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "another user's call woke it");

    let id = sim.gws().ring_inbound("5115", "5001");
    let next = within("the state after the ring", WAIT, waiting)
        .await
        .unwrap();
    let next: Value = serde_json::from_str(&next).unwrap();
    assert!(next["version"].as_u64().unwrap() > version);
    assert_eq!(next["calls"][0]["id"], id.as_str());
    assert_eq!(next["calls"][0]["state"], "Ringing");
    assert_eq!(
        next["calls"].as_array().unwrap().len(),
        1,
        "only the user's"
    );
    let line = next["changes"][0].as_str().unwrap();
    assert!(
        line.starts_with(&format!(r#"{{"callId":"{id}","#)),
        "{line}"
    );
}

#[tokio::test]
async fn a_held_state_request_does_not_hold_up_a_shutdown() {
    let sim = server().await;
    let version = state(&sim, None).await["version"].as_u64().unwrap();
    let url = sim.base_url();
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("{url}/console/api/state?since={version}"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    within("the shutdown", WAIT, sim.shutdown()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let _ = within("the held request", WAIT, held).await;
}
