//! The fault schedule of test-support's `fault_plan` through a feed of each API, with and
//! without the acknowledged-messages extension: the store equals the server's calls after
//! every fault.

use std::time::Duration;

use gws_cometd::gws::{Api, CallEvent, ChangeOrigin, FeedEvent};
use gws_cometd_sim::GwsSimServer;
use gws_cometd_test_support::fault_plan::{run_phase, schedule, Fault, Row};
use gws_cometd_test_support::within_real;
use tokio::time::{sleep, Instant};

use super::driver::{is_gap, is_healed, is_outage, Consumer, Driver};
use super::{
    base_url, feed_with_bound, label, proxy_to, settle, sim, sim_config, HEAL_LIMIT, SETTLE,
};

/// Longer than every phase of the fault schedule (the longest, the stall, is 4 s): with the
/// acknowledged-messages extension each phase's withheld messages are redelivered within
/// it, so none becomes a gap.
const SCHEDULE_BOUND: Duration = Duration::from_secs(8);

/// Runs the fault schedule through `api`'s feed; returns the rows and the feed's log.
async fn run_schedule(api: Api, ack: bool) -> (Vec<Row>, Vec<(Instant, FeedEvent)>, GwsSimServer) {
    let sim = sim(sim_config(ack)).await;
    let proxy = proxy_to(&sim).await;
    let driver = Driver::start(sim.gws().clone(), 0x5eed_0001);
    sleep(Duration::from_millis(300)).await;
    let feed = feed_with_bound(&base_url(&proxy), api, SCHEDULE_BOUND).await;
    let store = feed.store_handle();
    let consumer = Consumer::start(feed);
    sleep(SETTLE).await;

    let server = label(api, if ack { "feed+ack" } else { "feed" });
    let mut windows = Vec::new();
    for phase in schedule() {
        let (from, before) = (Instant::now(), proxy.stats());
        run_phase(&proxy, phase).await;
        let paused = driver.pause().await;
        let healed = settle(sim.gws(), api, &store, HEAL_LIMIT).await;
        drop(paused);
        assert!(
            phase.fault.happened(&before, &proxy.stats()),
            "{}: the proxy did not act",
            phase.fault.name()
        );
        let heal = healed.unwrap_or_else(|diff| {
            panic!(
                "{server}: {} s after {} the store still differs from the server:\n{}",
                HEAL_LIMIT.as_secs(),
                phase.fault.name(),
                diff.join("\n")
            )
        });
        sleep(SETTLE).await;
        windows.push((phase.fault, from, Instant::now(), heal));
    }
    let ops = driver.ops();
    drop(driver);
    let log = consumer.finish().await;
    let rows = windows
        .into_iter()
        .map(|(fault, from, to, heal)| {
            let count = |pick: fn(&FeedEvent) -> bool| {
                log.iter()
                    .filter(|(at, ev)| *at >= from && *at < to && pick(ev))
                    .count() as u64
            };
            Row {
                server: server.clone(),
                fault: fault.name().to_owned(),
                lost: None,
                duplicated: None,
                reordered: None,
                gaps: count(is_gap),
                outages: count(is_outage),
                heals: count(is_healed),
                recovery: Some(heal),
            }
        })
        .collect::<Vec<_>>();
    println!(
        "FAULT-SUITE {server}: {ops} operations on the simulator's calls, {} call changes handed out",
        log.iter()
            .filter(|(_, e)| matches!(e, FeedEvent::Call(_)))
            .count()
    );
    (rows, log, sim)
}

/// With ack: no gap, one Bayeux session all along.
async fn with_ack(api: Api) {
    within_real("the test", Duration::from_secs(120), async {
        let (rows, log, sim) = run_schedule(api, true).await;
        for r in &rows {
            r.print();
        }
        let gaps: Vec<_> = log.iter().filter(|(_, e)| is_gap(e)).collect();
        assert!(gaps.is_empty(), "no gap with redelivery: {gaps:?}");
        assert_eq!(
            sim.bayeux().stats().handshakes,
            1,
            "one Bayeux session all along"
        );
        let stall = rows
            .iter()
            .find(|r| r.fault == Fault::Stall.name())
            .unwrap();
        assert!(
            stall.outages >= 1,
            "the stall outlasted the deadline: {stall:?}"
        );
    })
    .await;
}

/// Without ack: every gap is followed by a heal.
async fn without_ack(api: Api) {
    within_real("the test", Duration::from_secs(120), async {
        let (rows, log, _sim) = run_schedule(api, false).await;
        for r in &rows {
            r.print();
        }
        let last_gap = log.iter().rposition(|(_, e)| is_gap(e));
        let last_heal = log.iter().rposition(|(_, e)| is_healed(e));
        assert!(last_gap.is_some(), "the faults cost notifications: {rows:?}");
        assert!(
            last_heal > last_gap,
            "a gap without a heal after it: {:?}",
            &log[last_gap.unwrap()..]
        );
        // A broken connect reply is a gap without redelivery. (Its heal may come in a later
        // phase when the read was cut too and is retried with backoff: the check above
        // covers it.)
        for fault in [Fault::Reset, Fault::CutReset, Fault::CutClose, Fault::Stall] {
            let row = rows.iter().find(|r| r.fault == fault.name()).unwrap();
            assert!(row.gaps >= 1, "a gap: {row:?}");
        }
        let heal_changes = log
            .iter()
            .filter(|(_, e)| {
                matches!(e, FeedEvent::Call(CallEvent { change, .. }) if change.origin == ChangeOrigin::Heal)
            })
            .count();
        println!(
            "FAULT-SUITE {}: {heal_changes} changes came from heals",
            label(api, "feed")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_the_store_equals_the_server_after_every_fault() {
    with_ack(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_with_ack_the_store_equals_the_server_after_every_fault() {
    with_ack(Api::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ack_every_gap_is_healed_and_the_store_equals_the_server() {
    without_ack(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_without_ack_every_gap_is_healed_and_the_store_equals_the_server() {
    without_ack(Api::V3).await;
}
