//! `watch` behind a middlebox that resets every reply carrying a call notification, while
//! the simulator grants the acknowledged-messages extension (so it replays the same batch
//! after every cut and nothing would ever arrive): stderr says once that the store may be
//! stale, the changes still reach stdout (as heals) while the fault lasts, and once the
//! fault ends stderr says the store is complete again.

use gws_cometd_test_support::fault_proxy::FaultProxy;
use gws_cometd_test_support::within;

use std::time::Duration;

use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{cmd, finish, text, PASSWORD, USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_behind_a_middlebox_that_breaks_notifications_says_stale_and_still_follows() {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.scenario = Some(Vec::new());
    config.sim.ack_extension = true;
    let sim = GwsSimServer::start(config).await.unwrap();
    let proxy = FaultProxy::start(sim.addr()).await.unwrap();
    proxy.reset_replies_containing(Some(b"CallStateChangeMessage"));
    let base = format!("http://{}", proxy.addr());
    let mut child = cmd(&[
        "watch",
        "--gws",
        &base,
        "--user",
        USER,
        "--max-network-delay",
        "1",
        "--duration",
        "14",
    ])
    .env("GWS_PASSWORD", PASSWORD)
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    within("the catch-up", Duration::from_secs(10), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            let done = line.contains("caught up");
            said.push(line);
            if done {
                return;
            }
        }
    })
    .await;
    let id = sim.gws().ring_inbound("5115", "5001");
    let value = RawValue::from_string("\"12345\"".into()).unwrap();
    sim.gws()
        .attach_user_data(&id, vec![("AccountNumber".into(), value)])
        .unwrap();
    within("the stale warning", Duration::from_secs(5), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            let stale = line.contains("the store may be stale");
            said.push(line);
            if stale {
                return;
            }
        }
    })
    .await;
    // Past the bound (2 x the 1 s network delay) and one read: the changes came as heals.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cuts = proxy.stats().cuts;
    proxy.reset_replies_containing(None);
    within("the store complete again", Duration::from_secs(8), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            let fresh = line.contains("known complete again");
            said.push(line);
            if fresh {
                return;
            }
        }
    })
    .await;
    child.stderr = None;
    let out = finish(child).await;
    let stdout = text(&out.stdout);
    let all = said.join("\n");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(cuts >= 1, "the proxy reset notification replies");
    let healed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(&id) && l.contains(r#""origin":"heal""#))
        .collect();
    assert!(
        healed.iter().any(|l| l.contains("AccountNumber")),
        "the call and its data came by a heal while the fault lasted:\n{stdout}\n{all}"
    );
    let warnings = all.lines().filter(|l| l.contains("WARN")).count();
    assert_eq!(
        all.matches("the store may be stale").count(),
        1,
        "one warning for the episode: {all}"
    );
    assert!(warnings <= 2, "no WARN repeating it: {all}");
}
