//! Recovery after a long outage: the network refuses connections for longer than the
//! server keeps a Bayeux session.

use std::time::Duration;

use gws_cometd::gws::{Api, CallEvent, ChangeOrigin, FeedEvent};
use gws_cometd_test_support::fault_plan::Row;
use gws_cometd_test_support::within_real;
use tokio::time::{sleep, Instant};

use super::driver::{is_gap, is_healed, is_outage, Consumer, Driver};
use super::{base_url, feed, label, proxy_to, settle, sim, sim_config, SETTLE};

/// Connections refused for 15 s while the driver goes on: from the outage's end to `api`'s
/// store equal to the server's takes at most 3 s, then notifications flow again.
async fn outage(api: Api) {
    const OUTAGE: Duration = Duration::from_secs(15);
    within_real("the test", Duration::from_secs(60), async {
        let sim = sim(sim_config(true)).await;
        let proxy = proxy_to(&sim).await;
        let driver = Driver::start(sim.gws().clone(), 0x5eed_0002);
        sleep(Duration::from_millis(300)).await;
        let feed = feed(&base_url(&proxy), api).await;
        let store = feed.store_handle();
        let consumer = Consumer::start(feed);
        sleep(SETTLE).await;
        proxy.refuse_for(OUTAGE);
        let end = Instant::now() + OUTAGE;
        tokio::time::sleep_until(end).await;
        let paused = driver.pause().await;
        let healed = settle(sim.gws(), api, &store, Duration::from_secs(10)).await;
        drop(paused);
        // Live again: a change made now arrives as a notification.
        let ops_before = driver.ops();
        sleep(Duration::from_secs(1)).await;
        let paused = driver.pause().await;
        let live = settle(sim.gws(), api, &store, Duration::from_secs(5)).await;
        drop(paused);
        let ops = driver.ops() - ops_before;
        drop(driver);
        let log = consumer.finish().await;
        let stats = proxy.stats();
        let heal = healed.unwrap_or_else(|d| panic!("not healed: {d:?}"));
        let gaps = log.iter().filter(|(_, e)| is_gap(e)).count();
        let heals = log.iter().filter(|(_, e)| is_healed(e)).count();
        Row {
            server: label(api, "feed+ack"),
            fault: "refuse-15s".into(),
            lost: None,
            duplicated: None,
            reordered: None,
            gaps: gaps as u64,
            heals: heals as u64,
            outages: log.iter().filter(|(_, e)| is_outage(e)).count() as u64,
            recovery: Some(heal),
        }
        .print();
        println!(
            "FAULT-SUITE recovery after a 15 s outage ({}): store equal to the server {} ms after the outage ended; {} connections refused; {} handshakes",
            label(api, "feed+ack"),
            heal.as_millis(),
            stats.refused,
            sim.bayeux().stats().handshakes
        );
        assert!(stats.refused >= 3, "{stats:?}");
        assert!(heal <= Duration::from_secs(3), "healed {heal:?} after the outage");
        // The session expired during the outage: a re-handshake, a gap, a heal.
        assert!(gaps >= 1 && heals >= 1, "{log:?}");
        assert!(live.is_ok(), "after the heal, {ops} changes: {live:?}");
        let notified_after = log.iter().any(|(at, e)| {
            *at > end + heal
                && matches!(e, FeedEvent::Call(CallEvent { change, .. }) if change.origin == ChangeOrigin::Notification)
        });
        assert!(notified_after, "notifications flow again");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_15_s_outage_the_store_equals_the_server_within_3_s() {
    outage(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_after_a_15_s_outage_the_store_equals_the_server_within_3_s() {
    outage(Api::V3).await;
}
