//! A consumer that stops reading: the feed keeps its session and hands out the net change
//! per call; the raw client, by contrast, loses its session.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use gws_cometd::bayeux::{GapCause, SessionEvent};
use gws_cometd::gws::{Api, CallEvent, FeedEvent};
use gws_cometd::{Client, ClientEvent};
use gws_cometd_sim::{SimConfig, SimServer};
use gws_cometd_test_support::within_real;
use tokio::time::{sleep, timeout, Instant};

use super::driver::is_gap;
use super::{builder, differences, label, raw, sim, DN};

/// A consumer of `api`'s feed that stops reading for 2.5 × the server's `maxInterval`
/// while 63 changes are made: no re-handshake, no gap, then one net change per call.
async fn slow_consumer(api: Api) {
    const MAX_INTERVAL: Duration = Duration::from_secs(2);
    within_real("the test", Duration::from_secs(40), async {
        let sim = sim(SimConfig {
            long_poll_timeout: Duration::from_secs(1),
            max_interval: MAX_INTERVAL,
            ..SimConfig::default()
        })
        .await;
        let gws = sim.gws();
        let calls: Vec<String> = (0..3).map(|i| gws.ring_inbound(&format!("511{i}"), DN)).collect();
        for id in &calls {
            gws.answer(id).unwrap();
        }
        // Every change joins its call's last one waiting: the consumer gets the net change.
        let mut feed = builder(&sim.base_url(), api)
            .max_separate_changes(0)
            .connect()
            .await
            .expect("the feed connects");
        // Take everything the catch-up queued.
        while timeout(Duration::from_millis(300), feed.next()).await.is_ok() {}

        // The consumer stops reading; meanwhile 60 changes, a call ends and one starts.
        let stopped = Instant::now();
        for n in 0..60u32 {
            let id = &calls[n as usize % 2];
            let key = format!("Key{n}");
            gws.attach_user_data(id, vec![(key, raw(n.to_string()))]).unwrap();
            sleep(Duration::from_millis(40)).await;
        }
        gws.hangup(&calls[2]).unwrap();
        gws.complete(&calls[2]).unwrap();
        let fresh = gws.ring_inbound("5999", DN);
        sleep((MAX_INTERVAL * 5 / 2).saturating_sub(stopped.elapsed())).await;
        let paused_for = stopped.elapsed();

        // Reading again: one net change per call.
        let mut changes = Vec::new();
        let mut others = Vec::new();
        while let Ok(ev) = timeout(Duration::from_millis(500), feed.next()).await {
            match ev.expect("the feed goes on") {
                FeedEvent::Call(CallEvent { change, call }) => changes.push((change, call)),
                other => others.push(other),
            }
        }
        let stats = sim.bayeux().stats();
        println!(
            "FAULT-SUITE {}: paused {} ms (maxInterval {} ms), 63 changes made, {} handed out after; handshakes {}",
            label(api, "slow consumer"),
            paused_for.as_millis(),
            MAX_INTERVAL.as_millis(),
            changes.len(),
            stats.handshakes
        );
        assert_eq!(stats.handshakes, 1, "no re-handshake: {stats:?}");
        assert_eq!(stats.expired, 0, "{stats:?}");
        assert!(
            !others.iter().any(is_gap),
            "no gap: {others:?}"
        );
        let ids: Vec<&str> = changes.iter().map(|(c, _)| c.call_id.as_str()).collect();
        assert_eq!(
            ids.iter().collect::<BTreeSet<_>>().len(),
            ids.len(),
            "one change per call: {ids:?}"
        );
        assert_eq!(ids.len(), 4, "{ids:?}");
        for (change, call) in &changes {
            let store = feed.store();
            match change.call_id.as_str() {
                id if id == calls[0] || id == calls[1] => {
                    assert_eq!(change.user_data.added.len(), 30, "the net change: {change:?}");
                    assert_eq!(call.as_ref().map(|c| c.text()), store.get_text(id));
                }
                id if id == calls[2] => assert!(change.removed, "{change:?}"),
                id => {
                    assert_eq!(id, fresh);
                    assert!(change.new, "{change:?}");
                }
            }
        }
        assert_eq!(differences(gws, api, &feed.store_handle()), Vec::<String>::new());
        feed.disconnect().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_keeps_the_session_and_gets_the_net_change_per_call() {
    slow_consumer(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_slow_consumer_keeps_the_session_and_gets_the_net_change_per_call() {
    slow_consumer(Api::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contrast_a_raw_client_whose_subscriber_is_full_loses_its_session() {
    // Documents the raw client's contract (see the `client` module docs): a subscriber that
    // stops reading stops the long poll, and past maxInterval the server drops the session.
    // `CallFeed` with `Delivery::Changes` exists to avoid this; if the client changes, this
    // test and those docs change together.
    const MAX_INTERVAL: Duration = Duration::from_secs(2);
    within_real("the test", Duration::from_secs(40), async {
        let sim = SimServer::start(SimConfig {
            long_poll_timeout: Duration::from_secs(1),
            max_interval: MAX_INTERVAL,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let client = Client::builder(sim.url()).buffer_size(4).build().unwrap();
        let mut events = client.events();
        let mut sub = client.subscribe("/x").await.unwrap();
        assert!(sim.wait_for_subscribers("/x", 1, Duration::from_secs(5)).await);
        for n in 0..20 {
            sim.publish_str("/x", &format!(r#"{{"n":{n}}}"#));
        }
        sleep(MAX_INTERVAL * 5 / 2).await;
        // Reading again: the session was lost meanwhile.
        let mut got = 0;
        while let Ok(Some(_)) = timeout(Duration::from_millis(300), sub.next()).await {
            got += 1;
        }
        let mut rehandshaken = false;
        let mut gap = None;
        while let Ok(Some(ev)) = timeout(Duration::from_millis(300), events.next()).await {
            match ev {
                ClientEvent::Session(SessionEvent::Rehandshaken { .. }) => rehandshaken = true,
                ClientEvent::Session(SessionEvent::Gap { cause }) => gap = Some(cause),
                _ => {}
            }
        }
        let stats = sim.stats();
        println!(
            "FAULT-SUITE contrast: a raw client with a full 4-message subscriber, not read for {} ms (maxInterval {} ms): {got} of 20 messages read after, handshakes {}, expired {}",
            (MAX_INTERVAL * 5 / 2).as_millis(),
            MAX_INTERVAL.as_millis(),
            stats.handshakes,
            stats.expired
        );
        assert!(stats.expired >= 1, "{stats:?}");
        assert!(rehandshaken, "the client handshakes again");
        assert_eq!(gap, Some(GapCause::Rehandshake));
        client.disconnect().await;
    })
    .await;
}
