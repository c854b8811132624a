//! A `CallFeed` on the Workspace API v3, against the fake v3 server of `fake_v3.rs` whose
//! notifications endpoint passes on to the Bayeux simulator: the feed logs in, opens the
//! notification client on `/workspace/v3/notifications` with `Content-Type:
//! application/json` and the API key, subscribes the voice and initialization channels,
//! catches up from `current-session` through its 403 window, and logs in again when the
//! server forgot the workspace session. (Live v3 call changes are the decoder's and the v3
//! simulator's tests.)

use gws_cometd_test_support::within;
use std::time::Duration;

use gws_cometd::gws::api::{V3_INITIALIZATION_CHANNEL, V3_VOICE_CHANNEL};
use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::{Api, CallFeed, FeedEvent};
use gws_cometd_sim::{SimConfig, SimServer};

use super::fake_v3::{Fake, API_KEY, PASSWORD, USER};

const STEP: Duration = Duration::from_secs(20);
const CALL: &str = r#"{"id":"c1","state":"Established"}"#;

async fn until(feed: &mut CallFeed, what: &str, pick: impl Fn(&FeedEvent) -> bool) -> FeedEvent {
    within(what, STEP, async {
        loop {
            let ev = feed.next().await.expect("the feed goes on");
            if pick(&ev) {
                return ev;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_feed_opens_the_workspace_endpoint_catches_up_and_logs_in_again() {
    let config = SimConfig {
        long_poll_timeout: Duration::from_millis(300),
        ..SimConfig::default()
    };
    let sim = SimServer::start(config).await.unwrap();
    let fake = Fake::start().await;
    {
        let mut st = fake.state.lock().unwrap();
        st.bayeux = Some(sim.url());
        st.forbidden = 2;
        st.calls = vec![CALL.to_owned()];
    }
    let connecting = CallFeed::builder(fake.base(), Credentials::new(USER, PASSWORD))
        .api(Api::V3)
        .api_key(API_KEY)
        .connect();
    let mut feed = within("connect", STEP, connecting).await.unwrap();
    let ready = until(&mut feed, "ready", |e| matches!(e, FeedEvent::Ready { .. })).await;
    assert!(matches!(ready, FeedEvent::Ready { calls: 1 }), "{ready:?}");
    assert!(sim.wait_for_subscribers(V3_VOICE_CHANNEL, 1, STEP).await);
    assert!(
        sim.wait_for_subscribers(V3_INITIALIZATION_CHANNEL, 1, STEP)
            .await
    );
    let statuses: Vec<u16> = fake
        .seen_at("/workspace/v3/current-session")
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [403, 403, 200]);

    // The initialization channel's messages reach the feed.
    let complete = r#"{"messageType":"WorkspaceInitializationComplete","state":"Complete"}"#;
    assert_eq!(sim.publish_str(V3_INITIALIZATION_CHANNEL, complete), 1);
    until(&mut feed, "the initialization message", |e| {
        e.raw()
            .is_some_and(|m| m.channel.as_str() == V3_INITIALIZATION_CHANNEL)
    })
    .await;

    // The server forgot the workspace session: the next connect is refused, the feed logs
    // in again and heals.
    fake.state.lock().unwrap().sessions.clear();
    until(&mut feed, "a new login", |e| {
        matches!(e, FeedEvent::LoggedInAgain)
    })
    .await;
    until(&mut feed, "the heal", |e| {
        matches!(e, FeedEvent::Healed { .. })
    })
    .await;
    assert_eq!(fake.state.lock().unwrap().logins, 2);
    feed.disconnect().await;

    let notifications: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.target.starts_with("/workspace/v3/notifications"))
        .collect();
    assert!(notifications.len() >= 4, "{notifications:?}");
    for s in &notifications {
        assert_eq!(s.content_type.as_deref(), Some("application/json"), "{s:?}");
        assert_eq!(s.api_key.as_deref(), Some(API_KEY), "{s:?}");
    }
    assert!(notifications.iter().any(|s| s.status == 401));
}
