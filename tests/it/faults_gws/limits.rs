//! The max network delay on login and REST, and the message limit.

use std::time::Duration;

use gws_cometd::bayeux::GapCause;
use gws_cometd::gws::{Api, CallChange, CallEvent, ChangeOrigin, FeedEvent};
use gws_cometd_sim::Fault as SimFault;
use gws_cometd_test_support::{within, within_real};
use tokio::time::Instant;

use super::catch_up::next_change;
use super::{
    base_url, builder, differences, feed, label, proxy_to, raw, sim, sim_config, DN,
    MAX_NETWORK_DELAY, PASSWORD,
};

/// The request that carries `api`'s credentials: v2's Basic login, v3's form sign-in.
fn login_request(api: Api) -> SimFault {
    let (method, path) = match api {
        Api::V3 => ("POST", "/auth/v3/sign-in"),
        _ => ("GET", "/api/v2/me"),
    };
    SimFault::HoldRequests {
        method: method.into(),
        path: path.into(),
    }
}

/// The read of the agent's calls a heal makes.
fn calls_read(api: Api) -> SimFault {
    let path = match api {
        Api::V3 => "/workspace/v3/current-session",
        _ => "/api/v2/me/calls",
    };
    SimFault::HoldRequests {
        method: "GET".into(),
        path: path.into(),
    }
}

/// The login request never answered: `connect()` fails with a timeout after about the max
/// network delay, and no secret shows in the error.
async fn held_login(api: Api) {
    within_real("the test", Duration::from_secs(20), async {
        let sim = sim(sim_config(true)).await;
        sim.bayeux().set_fault(login_request(api));
        let started = Instant::now();
        let err = builder(&sim.base_url(), api)
            .connect()
            .await
            .expect_err("a login never answered fails");
        let took = started.elapsed();
        println!(
            "FAULT-SUITE {}: connect() failed after {} ms (max network delay {} ms): {err}",
            label(api, "held login"),
            took.as_millis(),
            MAX_NETWORK_DELAY.as_millis()
        );
        assert!(err.is_timeout(), "a timeout: {err:?}");
        assert!(
            took >= MAX_NETWORK_DELAY && took < MAX_NETWORK_DELAY * 2,
            "after about the max network delay: {took:?}"
        );
        assert!(
            !format!("{err} {err:?}").contains(PASSWORD),
            "no secret in errors"
        );
    })
    .await;
}

/// The origin of `change` if it is call `id` going to `Established`.
fn established(id: &str, change: CallChange) -> Option<ChangeOrigin> {
    let to = change.state.and_then(|s| s.to).map(|s| s.to_string());
    (change.call_id == id && to.as_deref() == Some("Established")).then_some(change.origin)
}

/// The heal's read of the calls never answered: `HealFailed` (a timeout) within about the
/// max network delay, and the heal succeeds once the read is answered.
async fn held_heal_read(api: Api) {
    within_real("the test", Duration::from_secs(30), async {
        let sim = sim(sim_config(true)).await;
        let id = sim.gws().ring_inbound("5115", DN);
        let mut feed = feed(&sim.base_url(), api).await;
        sim.bayeux().set_fault(calls_read(api));
        // A gap: the Bayeux session is lost, and meanwhile the call changes.
        sim.bayeux().forget_sessions();
        sim.gws().answer(&id).unwrap();
        let mut gap_at = None;
        // How the answer reached the consumer. Usually through the heal; but forgetting
        // wakes the held connect, the client handshakes again at once, and its new session
        // may be subscribed before `answer` runs (seen when `forget_sessions` took 2-3 ms
        // on a loaded machine): then it is notified, and the heal has nothing to change.
        let mut answered = Vec::new();
        let failed = within("the held read fails", Duration::from_secs(10), async {
            loop {
                match feed.next().await.expect("the feed goes on") {
                    FeedEvent::Gap { .. } => gap_at = gap_at.or(Some(Instant::now())),
                    FeedEvent::HealFailed(e) => return (Instant::now(), e),
                    FeedEvent::Call(CallEvent { change, .. }) => answered.extend(established(&id, change)),
                    _ => {}
                }
            }
        }).await;
        let gap_at = gap_at.expect("a gap before the heal");
        let took = failed.0 - gap_at;
        sim.bayeux().clear_faults();
        let healed = within("the heal is retried and succeeds", Duration::from_secs(10), async {
            loop {
                match feed.next().await.expect("the feed goes on") {
                    FeedEvent::Healed { changes } => return changes,
                    FeedEvent::Call(CallEvent { change, .. }) => answered.extend(established(&id, change)),
                    _ => {}
                }
            }
        }).await;
        println!(
            "FAULT-SUITE {}: HealFailed {} ms after the gap (max network delay {} ms): {}; healed with {healed} change(s)",
            label(api, "held heal read"),
            took.as_millis(),
            MAX_NETWORK_DELAY.as_millis(),
            failed.1
        );
        assert!(failed.1.is_timeout(), "{:?}", failed.1);
        assert!(took < MAX_NETWORK_DELAY * 2, "{took:?}");
        assert_eq!(answered.len(), 1, "the answer handed out once: {answered:?}");
        let by_heal = answered[0] == ChangeOrigin::Heal;
        assert_eq!(healed, usize::from(by_heal), "{answered:?}");
        assert_eq!(differences(sim.gws(), api, &feed.store_handle()), Vec::<String>::new());
        feed.disconnect().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The message limit.

/// A notification over `max_message_bytes` is a `MessageTooLarge` gap, healed from REST;
/// the next notification under the limit is handed out as usual.
async fn message_limit(api: Api) {
    const LIMIT: usize = 64 * 1024;
    within_real("the test", Duration::from_secs(30), async {
        let sim = sim(sim_config(true)).await;
        let proxy = proxy_to(&sim).await;
        let id = sim.gws().ring_inbound("5115", DN);
        sim.gws().answer(&id).unwrap();
        let mut feed = builder(&base_url(&proxy), api)
            .max_message_bytes(LIMIT)
            .connect()
            .await
            .expect("the feed connects");
        let big = format!("\"{}\"", "x".repeat(100_000));
        sim.gws()
            .attach_user_data(&id, vec![("Transcript".into(), raw(big))])
            .unwrap();
        let (cause, changes) = within("a gap, then a heal", Duration::from_secs(10), async {
            let mut cause = None;
            loop {
                match feed.next().await.expect("the feed goes on") {
                    FeedEvent::Gap { cause: c } => cause = Some(c),
                    FeedEvent::Healed { changes } => return (cause, changes),
                    _ => {}
                }
            }
        })
        .await;
        println!(
            "FAULT-SUITE message limit ({}): {cause:?}, healed with {changes} change(s)",
            label(api, "feed")
        );
        match cause {
            Some(GapCause::MessageTooLarge { size, limit }) => {
                assert_eq!(limit, LIMIT);
                assert!(size > LIMIT);
            }
            other => panic!("a MessageTooLarge gap expected, got {other:?}"),
        }
        assert_eq!(changes, 1);
        assert_eq!(
            differences(sim.gws(), api, &feed.store_handle()),
            Vec::<String>::new()
        );
        // The feed goes on with the next notification (every notification of the call is
        // over the limit while the big value is attached: removing it is the next one under).
        sim.gws().delete_user_data_pair(&id, "Transcript").unwrap();
        let change = next_change(&mut feed, &id).await;
        assert_eq!(change.origin, ChangeOrigin::Notification);
        assert_eq!(change.user_data.removed.len(), 1, "{change:?}");
        assert_eq!(
            differences(sim.gws(), api, &feed.store_handle()),
            Vec::<String>::new()
        );
        feed.disconnect().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_login_fails_within_the_max_network_delay() {
    held_login(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_held_login_fails_within_the_max_network_delay() {
    held_login(Api::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_heal_read_fails_within_the_max_network_delay_and_is_retried() {
    held_heal_read(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_held_heal_read_fails_within_the_max_network_delay_and_is_retried() {
    held_heal_read(Api::V3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_over_the_message_limit_is_a_gap_and_is_healed() {
    message_limit(Api::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_a_notification_over_the_message_limit_is_a_gap_and_is_healed() {
    message_limit(Api::V3).await;
}
