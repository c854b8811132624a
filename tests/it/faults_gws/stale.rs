//! Replies that never get through: a middlebox resets every reply carrying a call
//! notification, and the feed's staleness stays bounded.

use std::time::Duration;

use gws_cometd::bayeux::GapCause;
use gws_cometd::gws::{Api, FeedEvent};
use gws_cometd_test_support::within_real;
use tokio::time::{sleep, Instant};

use super::driver::{is_healed, Consumer, Driver};
use super::{
    base_url, feed_with_bound, label, proxy_to, settle, sim, sim_config, HEAL_LIMIT, SETTLE,
};

/// What every reply carrying a call notification of `api` contains.
fn notification_marker(api: Api) -> &'static [u8] {
    match api {
        Api::V3 => b"CallStateChanged",
        _ => b"CallStateChangeMessage",
    }
}

/// With the acknowledged-messages extension, a middlebox resets every reply that carries a
/// call notification, for 14 s of operations and then while the calls rest: the server
/// replays the same growing batch after every cut, so nothing would ever arrive. The feed
/// says at once that its store may be stale, treats the withheld batch as lost when the
/// bound passes (a gap, a read of the server's calls, a new session), reads again each
/// bound while it lasts, and so its store equals the server's within 30 s of the last change
/// although the fault goes on. When the fault ends, it says the store is complete again.
async fn replies_never_get_through(api: Api) {
    const BOUND: Duration = Duration::from_secs(2);
    within_real("the test", Duration::from_secs(120), async {
        let sim = sim(sim_config(true)).await;
        let proxy = proxy_to(&sim).await;
        let driver = Driver::start(sim.gws().clone(), 0x5eed_0002);
        sleep(Duration::from_millis(300)).await;
        let feed = feed_with_bound(&base_url(&proxy), api, BOUND).await;
        let store = feed.store_handle();
        let consumer = Consumer::start(feed);
        sleep(SETTLE).await;

        let fault_from = Instant::now();
        proxy.reset_replies_containing(Some(notification_marker(api)));
        sleep(Duration::from_secs(14)).await;
        let paused = driver.pause().await;
        let last_change = Instant::now();
        let caught_up = settle(sim.gws(), api, &store, Duration::from_secs(30)).await;
        let cuts = proxy.stats().cuts;
        // The fault is still on: the store caught up through the REST API alone.
        let caught_up = caught_up.unwrap_or_else(|diff| {
            panic!(
                "30 s after the last change, under the fault, the store still differs:\n{}",
                diff.join("\n")
            )
        });
        let fault_to = Instant::now();
        proxy.reset_replies_containing(None);
        drop(paused);
        sleep(Duration::from_secs(2)).await;
        let paused = driver.pause().await;
        let after = settle(sim.gws(), api, &store, HEAL_LIMIT).await;
        drop(paused);
        sleep(Duration::from_secs(2 * BOUND.as_secs())).await;
        drop(driver);
        let log = consumer.finish().await;
        after.unwrap_or_else(|diff| panic!("after the fault: {}", diff.join("\n")));

        assert!(cuts >= 3, "the proxy reset notification replies: {cuts}");
        let during = |at: &Instant| *at >= fault_from && *at <= fault_to;
        let first_stale = log
            .iter()
            .find(|(at, e)| during(at) && matches!(e, FeedEvent::Stale { .. }))
            .map(|(at, _)| at.duration_since(fault_from))
            .expect("the feed said its store may be stale");
        let overdue = log
            .iter()
            .filter(|(at, e)| {
                during(at)
                    && matches!(
                        e,
                        FeedEvent::Gap {
                            cause: GapCause::RedeliveryOverdue { .. }
                        }
                    )
            })
            .count();
        let heals = log
            .iter()
            .filter(|(at, e)| during(at) && is_healed(e))
            .count();
        assert!(
            overdue >= 3,
            "overdue gaps while the fault lasted: {overdue}"
        );
        assert!(heals >= 3, "heals while the fault lasted: {heals}");
        // The last word on staleness is that the store is complete.
        let last = log
            .iter()
            .rev()
            .find(|(_, e)| matches!(e, FeedEvent::Stale { .. } | FeedEvent::Fresh { .. }));
        assert!(
            matches!(last, Some((_, FeedEvent::Fresh { .. }))),
            "the feed ends known complete: {last:?}"
        );
        println!(
            "FAULT-SUITE {}, every notification reply reset: stale said after {first_stale:.1?}, \
             {overdue} overdue gaps and {heals} heals in {:.1?}, store equal to the server \
             {caught_up:.1?} after the last change (fault still on), {} handshakes",
            label(api, "feed+ack"),
            fault_to.duration_since(fault_from),
            sim.bayeux().stats().handshakes,
        );
        let _ = last_change;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_replies_that_never_get_through_leave_the_store_stale_for_a_bounded_time() {
    replies_never_get_through(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_with_ack_replies_that_never_get_through_leave_the_store_stale_for_a_bounded_time() {
    replies_never_get_through(Api::V3).await;
}
