//! Catch-up: calls in progress when a feed starts are reported as such, and a later
//! notification reports only its own change.

use std::collections::BTreeSet;
use std::time::Duration;

use gws_cometd::gws::{Api, CallEvent, CallFeed, ChangeOrigin, FeedEvent};
use gws_cometd_test_support::{within, within_real};

use super::{base_url, differences, feed, label, proxy_to, raw, sim, sim_config, DN};

/// Three calls up (ringing, talking with a duplicate key, held) before `api`'s feed starts
/// through 100 ms of latency: each is caught up, then an attach and a retrieve are notified
/// as just what they changed.
async fn catch_up(api: Api) {
    within_real("the test", Duration::from_secs(30), async {
        let sim = sim(sim_config(true)).await;
        let gws = sim.gws();
        let ringing = gws.ring_inbound("5115", DN);
        let talking = gws.ring_inbound("5116", DN);
        gws.answer(&talking).unwrap();
        let pairs = vec![
            ("AccountNumber".to_owned(), raw("\"12345\"".into())),
            ("Note".to_owned(), raw("\"first\"".into())),
            ("Note".to_owned(), raw("\"second\"".into())),
        ];
        gws.attach_user_data(&talking, pairs).unwrap();
        let held = gws.ring_inbound("5117", DN);
        gws.answer(&held).unwrap();
        gws.hold(&held).unwrap();
        let proxy = proxy_to(&sim).await;
        proxy.latency(Duration::from_millis(100));
        let mut feed = feed(&base_url(&proxy), api).await;

        let mut caught_up = BTreeSet::new();
        let ready = within("the catch-up", Duration::from_secs(10), async {
            loop {
                match feed.next().await.expect("the feed goes on") {
                    FeedEvent::Call(CallEvent { change, call }) => {
                        assert_eq!(change.origin, ChangeOrigin::CatchUp, "{change:?}");
                        assert!(change.new, "{change:?}");
                        assert!(call.is_some());
                        caught_up.insert(change.call_id);
                    }
                    FeedEvent::Ready { calls } => return calls,
                    _ => {}
                }
            }
        })
        .await;
        assert_eq!(ready, 3);
        let want: BTreeSet<String> = [&ringing, &talking, &held].into_iter().cloned().collect();
        assert_eq!(caught_up, want);
        assert_eq!(
            differences(gws, api, &feed.store_handle()),
            Vec::<String>::new()
        );
        {
            let store = feed.store();
            let notes: Vec<_> = store
                .get(&talking)
                .unwrap()
                .user_data()
                .get_all("Note")
                .collect();
            assert_eq!(notes.len(), 2, "both occurrences of a key are kept");
        }

        // A later notification reports its own change only.
        gws.attach_user_data(&talking, vec![("Extra".into(), raw("1".into()))])
            .unwrap();
        let change = next_change(&mut feed, &talking).await;
        assert_eq!(change.origin, ChangeOrigin::Notification);
        assert!(!change.new && !change.removed);
        assert_eq!(change.state, None, "no state change: {change:?}");
        let added: Vec<_> = change.user_data.added.iter().map(|p| &p.key).collect();
        assert_eq!(added, ["Extra"], "{change:?}");
        assert!(change.user_data.changed.is_empty() && change.user_data.removed.is_empty());
        gws.retrieve(&held).unwrap();
        let change = next_change(&mut feed, &held).await;
        assert_eq!(change.origin, ChangeOrigin::Notification);
        assert!(change.user_data.is_empty(), "{change:?}");
        let to = change.state.and_then(|s| s.to).map(|s| s.to_string());
        assert_eq!(to.as_deref(), Some("Established"));
        assert_eq!(
            differences(gws, api, &feed.store_handle()),
            Vec::<String>::new()
        );
        println!(
            "FAULT-SUITE {}: {} calls in progress reported as catchUp",
            label(api, "catch-up through 100 ms of latency"),
            caught_up.len()
        );
        feed.disconnect().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_progress_are_caught_up_and_a_later_notification_reports_only_its_change() {
    catch_up(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_calls_in_progress_are_caught_up_and_a_later_notification_reports_only_its_change() {
    catch_up(Api::V3).await;
}

/// The next change of call `id` (10 s at most).
pub(super) async fn next_change(feed: &mut CallFeed, id: &str) -> gws_cometd::gws::CallChange {
    within("the change arrives", Duration::from_secs(10), async {
        loop {
            if let FeedEvent::Call(CallEvent { change, .. }) =
                feed.next().await.expect("the feed goes on")
            {
                if change.call_id == id {
                    return change;
                }
            }
        }
    })
    .await
}
