//! End-to-end: `CallFeed` and the GWS REST session against the GWS simulator over HTTP on
//! 127.0.0.1. Every wait is bounded.

use gws_cometd_test_support::within;
use std::time::Duration;

use gws_cometd::gws::rest::{Credentials, RestError, UserValue};
use gws_cometd::gws::{CallChange, CallEvent, CallFeed, ChangeOrigin, FeedEvent};
use gws_cometd::gws::{CallState, CallType, Value};
use gws_cometd::ClientEvent;
use gws_cometd_sim::{Fault, GwsServerConfig, GwsSimServer, SimConfig};

const USER: &str = "agent";
const PASSWORD: &str = "s3cret-pa55";
const WAIT: Duration = Duration::from_secs(10);

/// A simulator without a scenario (the tests drive the calls), with short long polls.
async fn sim() -> GwsSimServer {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.scenario = Some(Vec::new());
    config.sim = SimConfig {
        long_poll_timeout: Duration::from_millis(500),
        ..SimConfig::default()
    };
    GwsSimServer::start(config).await.expect("simulator starts")
}

/// The next feed event matching `pred`; earlier ones are discarded.
async fn until(
    feed: &mut CallFeed,
    what: &str,
    mut pred: impl FnMut(&FeedEvent) -> bool,
) -> FeedEvent {
    within(what, WAIT, async {
        loop {
            let ev = feed.next().await.expect("the feed goes on");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
}

/// A connected feed: subscribed and caught up.
async fn feed(sim: &GwsSimServer) -> CallFeed {
    let mut feed = CallFeed::builder(sim.base_url(), Credentials::new(USER, PASSWORD))
        .connect()
        .await
        .expect("feed connects");
    until(&mut feed, "the catch-up", |e| {
        matches!(e, FeedEvent::Ready { .. })
    })
    .await;
    feed
}

/// The next call change for `id`.
async fn change_of(feed: &mut CallFeed, id: &str) -> CallChange {
    match until(
        feed,
        "a call change",
        |e| matches!(e, FeedEvent::Call(CallEvent { change, .. }) if change.call_id == id),
    )
    .await
    {
        FeedEvent::Call(CallEvent { change, .. }) => change,
        _ => unreachable!(),
    }
}

/// The changes of the next heal, each marked as such, checked against its `Healed` count.
async fn healed(feed: &mut CallFeed) -> Vec<CallChange> {
    within("a heal", WAIT, async {
        let mut changes = Vec::new();
        loop {
            match feed.next().await.expect("the feed goes on") {
                FeedEvent::Call(CallEvent { change, .. })
                    if change.origin == ChangeOrigin::Heal =>
                {
                    changes.push(change)
                }
                FeedEvent::Healed { changes: n } => {
                    assert_eq!(n, changes.len());
                    return changes;
                }
                FeedEvent::Session(ClientEvent::Terminated { error }) => {
                    panic!("the feed ended: {error}")
                }
                _ => {}
            }
        }
    })
    .await
}

fn strings(feed: &CallFeed, id: &str, key: &str) -> Vec<String> {
    let store = feed.store();
    let call = store.get(id).expect("call in the store");
    call.user_data()
        .get_all(key)
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, UserValue)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), UserValue::from(*v)))
        .collect()
}

/// Attaches `key` with the JSON `value` directly in the simulator, as another GWS client
/// would: the feed only learns of it by notification (or, during an outage, by recovery).
fn attach_behind_the_feed(sim: &GwsSimServer, id: &str, key: &str, value: &str) {
    let value = serde_json::value::RawValue::from_string(value.to_owned()).unwrap();
    sim.gws()
        .attach_user_data(id, vec![(key.to_owned(), value)])
        .unwrap();
}

/// A ringing call, answered, seen by the feed as established.
async fn established_call(sim: &GwsSimServer, feed: &mut CallFeed) -> String {
    let id = sim.gws().ring_inbound("5115", "5001");
    let c = change_of(feed, &id).await;
    assert!(c.new, "first notification makes a new call: {c:?}");
    sim.gws().answer(&id).unwrap();
    let c = change_of(feed, &id).await;
    assert_eq!(
        c.state.and_then(|s| s.to).map(|s| s.to_string()).as_deref(),
        Some("Established")
    );
    id
}

/// The next call event for `id`, whole.
async fn event_of(feed: &mut CallFeed, id: &str) -> CallEvent {
    match until(
        feed,
        "a call change",
        |e| matches!(e, FeedEvent::Call(CallEvent { change, .. }) if change.call_id == id),
    )
    .await
    {
        FeedEvent::Call(event) => event,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_change_carries_its_call_typed_and_exact() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    let id = sim.gws().ring_inbound("5115", "5001");
    let ringing = event_of(&mut feed, &id).await;
    let call = ringing.call.as_ref().expect("a new call is there");
    assert_eq!(call.id, id);
    assert_eq!(call.state, Some(CallState::Ringing));
    assert_eq!(call.call_type, Some(CallType::Inbound));
    assert_eq!(call.ani.as_deref(), Some("5115"));
    assert!(call.user_data().is_empty());

    sim.gws().answer(&id).unwrap();
    let _ = event_of(&mut feed, &id).await;
    attach_behind_the_feed(&sim, &id, "AccountNumber", r#""12345""#);
    attach_behind_the_feed(&sim, &id, "AccountNumber", "9007199254740993");
    let first = event_of(&mut feed, &id).await;
    let second = event_of(&mut feed, &id).await;
    // Each event holds the call as of its change, though the store is ahead of the first.
    let shown = |e: &CallEvent| -> Vec<String> {
        let call = e.call.as_ref().expect("the call");
        call.user_data()
            .get_all("AccountNumber")
            .map(|v| v.to_string())
            .collect()
    };
    assert_eq!(shown(&first), ["12345"]);
    assert_eq!(shown(&second), ["12345", "9007199254740993"]);
    let second = second.call.expect("the call");
    assert_eq!(second.state, Some(CallState::Established));
    assert_eq!(Some(second.text()), feed.store().get_text(&id));

    sim.gws().hangup(&id).unwrap();
    let released = event_of(&mut feed, &id).await;
    assert_eq!(
        released.call.map(|c| c.into_call().state),
        Some(Some(CallState::Released))
    );
    feed.disconnect().await;
}

#[tokio::test]
async fn every_user_data_operation_reaches_the_store() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    let id = established_call(&sim, &mut feed).await;
    let session = feed.session().clone();

    session
        .attach_user_data(&id, &pairs(&[("AccountNumber", "12345")]))
        .await
        .unwrap();
    let c = change_of(&mut feed, &id).await;
    assert_eq!(c.user_data.added.len(), 1, "{c:?}");
    // GWS appends on attach even for an existing key: a duplicate.
    session
        .attach_user_data(&id, &pairs(&[("AccountNumber", "67890")]))
        .await
        .unwrap();
    let c = change_of(&mut feed, &id).await;
    assert_eq!(
        c.user_data.added.len(),
        1,
        "second occurrence is an addition: {c:?}"
    );
    assert_eq!(strings(&feed, &id, "AccountNumber"), ["12345", "67890"]);
    let text = feed.store().get_text(&id).unwrap().to_owned();
    assert_eq!(text.matches("\"AccountNumber\"").count(), 2, "{text}");

    // Update sets every occurrence, and adds a key not there yet.
    session
        .update_user_data(
            &id,
            &pairs(&[("AccountNumber", "111"), ("Segment", "Gold")]),
        )
        .await
        .unwrap();
    change_of(&mut feed, &id).await;
    assert_eq!(strings(&feed, &id, "AccountNumber"), ["111", "111"]);
    assert_eq!(strings(&feed, &id, "Segment"), ["Gold"]);

    // Delete-pair removes both occurrences of a duplicated key.
    session
        .attach_user_data(&id, &pairs(&[("Segment", "Silver")]))
        .await
        .unwrap();
    change_of(&mut feed, &id).await;
    assert_eq!(strings(&feed, &id, "Segment"), ["Gold", "Silver"]);
    session.delete_user_data_pair(&id, "Segment").await.unwrap();
    let c = change_of(&mut feed, &id).await;
    assert_eq!(c.user_data.removed.len(), 2, "{c:?}");
    assert!(strings(&feed, &id, "Segment").is_empty());

    // Delete-all drops the userData property.
    session.delete_user_data(&id).await.unwrap();
    change_of(&mut feed, &id).await;
    assert!(feed.store().get(&id).unwrap().user_data().is_empty());
    assert!(!feed.store().get_text(&id).unwrap().contains("userData"));

    // An unknown call is statusCode 6.
    let err = session
        .attach_user_data("no-such-call", &pairs(&[("A", "1")]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RestError::Gws { status, .. } if status.code() == 6),
        "{err}"
    );
    feed.disconnect().await;
}

#[tokio::test]
async fn recovery_after_the_server_forgets_every_session() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    let kept = established_call(&sim, &mut feed).await;
    let ending = established_call(&sim, &mut feed).await;

    // The outage: every Bayeux session is gone, and meanwhile one call's data changes and
    // the other call ends. Nobody is subscribed, so these notifications are lost.
    sim.bayeux().forget_sessions();
    attach_behind_the_feed(&sim, &kept, "AccountNumber", "\"12345\"");
    sim.gws().hangup(&ending).unwrap();
    sim.gws().complete(&ending).unwrap();

    let changes = healed(&mut feed).await;
    let attach = changes
        .iter()
        .find(|c| c.call_id == kept)
        .expect("the changed call is reported");
    assert_eq!(attach.user_data.added.len(), 1, "{attach:?}");
    let ended = changes
        .iter()
        .find(|c| c.call_id == ending)
        .expect("the ended call is reported");
    assert!(ended.removed, "{ended:?}");
    assert_eq!(changes.len(), 2, "{changes:?}");

    assert_eq!(strings(&feed, &kept, "AccountNumber"), ["12345"]);
    assert!(feed.store().get(&ending).is_none());
    assert_eq!(feed.store().len(), 1);

    // Live again: the next change arrives as a notification, on one subscription only.
    sim.gws().hold(&kept).unwrap();
    let c = change_of(&mut feed, &kept).await;
    assert_eq!(
        c.state.and_then(|s| s.to).map(|s| s.to_string()).as_deref(),
        Some("Held")
    );
    let stats = sim.bayeux().stats();
    assert_eq!(
        stats.subscriptions.get("/v2/me/calls"),
        Some(&1),
        "{stats:?}"
    );
    feed.disconnect().await;
}

/// A heal's answer tells the calls as they were when the read arrived; a notification that
/// reaches the feed while that answer is on its way is newer, and the answer must not take
/// the call back (an invented change: the attached pair "removed", then nothing to restore
/// it, as its notification was already applied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heal_answer_older_than_a_notification_never_takes_the_call_back() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    let id = established_call(&sim, &mut feed).await;
    sim.bayeux().set_fault(Fault::DelayReplies {
        method: "GET".into(),
        path: "/api/v2/me/calls".into(),
        delay: Duration::from_millis(1500),
    });
    // A gap (the Bayeux session is lost) makes the feed read the server's calls once it is
    // subscribed again; the answer is made on arrival and held back.
    sim.bayeux().forget_sessions();
    within("the heal read to arrive", WAIT, async {
        while sim.bayeux().stats().delayed_replies == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // Meanwhile the call's data changes: its notification arrives before the older answer.
    attach_behind_the_feed(&sim, &id, "AccountNumber", "\"12345\"");
    let c = change_of(&mut feed, &id).await;
    assert_eq!(c.origin, ChangeOrigin::Notification, "{c:?}");
    assert_eq!(c.user_data.added.len(), 1, "{c:?}");

    let changes = healed(&mut feed).await;
    assert_eq!(
        changes,
        Vec::<CallChange>::new(),
        "the older answer changes nothing"
    );
    assert_eq!(strings(&feed, &id, "AccountNumber"), ["12345"]);
    assert_eq!(
        sim.gws().call_json(&id).map(|t| t.contains("12345")),
        Some(true),
        "the server agrees"
    );
    feed.disconnect().await;
}

#[tokio::test]
async fn an_expired_http_session_logs_in_again() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    let id = established_call(&sim, &mut feed).await;

    // The HTTP session expires: CometD POSTs get 401 and the feed must log in again.
    sim.gws().expire_http_sessions();
    sim.bayeux().forget_sessions();
    attach_behind_the_feed(&sim, &id, "Lost", "1");
    until(&mut feed, "re-login", |e| {
        matches!(e, FeedEvent::LoggedInAgain)
    })
    .await;
    let changes = healed(&mut feed).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].call_id, id);
    assert!(feed.store().get_text(&id).unwrap().contains("\"Lost\":1"));

    // REST works with the new session too, and notifications flow on the new client.
    feed.session()
        .attach_user_data(&id, &pairs(&[("After", "yes")]))
        .await
        .unwrap();
    change_of(&mut feed, &id).await;
    assert_eq!(strings(&feed, &id, "After"), ["yes"]);
    feed.disconnect().await;
}

#[tokio::test]
async fn rotated_csrf_tokens_are_refreshed() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    let id = established_call(&sim, &mut feed).await;
    sim.gws().rotate_csrf_tokens();
    feed.session()
        .attach_user_data(&id, &pairs(&[("AccountNumber", "1")]))
        .await
        .expect("a 403 for a stale CSRF token is refreshed and retried once");
    // The long poll still carried the old token: it is refused with 403, and the feed logs
    // in again. Either way the change reaches the store, live or by reconciliation.
    until(&mut feed, "the change, live or healed", |e| match e {
        FeedEvent::Call(CallEvent { change, .. }) => change.call_id == id,
        _ => false,
    })
    .await;
    assert_eq!(strings(&feed, &id, "AccountNumber"), ["1"]);
    feed.disconnect().await;
}

#[tokio::test]
async fn a_wrong_password_fails_once_and_clearly() {
    let sim = sim().await;
    let started = std::time::Instant::now();
    let err = CallFeed::builder(sim.base_url(), Credentials::new(USER, "wrong-password"))
        .connect()
        .await
        .expect_err("wrong credentials are refused");
    assert!(err.is_auth(), "{err}");
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("wrong-password"),
        "no secret in errors: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no retry storm: took {:?}",
        started.elapsed()
    );
    assert_eq!(
        sim.bayeux().stats().handshakes,
        0,
        "no CometD attempt without a login"
    );
}

#[tokio::test]
async fn a_refused_login_again_ends_the_feed_without_a_retry_storm() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    // Everything is refused from now on: CometD and the login alike.
    sim.bayeux()
        .set_fault(gws_cometd_sim::Fault::HttpStatus(401));
    let before = sim.bayeux().stats().requests;
    let ev = until(&mut feed, "termination", |e| {
        matches!(e, FeedEvent::Session(ClientEvent::Terminated { .. }))
    })
    .await;
    let FeedEvent::Session(ClientEvent::Terminated { error }) = ev else {
        unreachable!()
    };
    assert!(error.is_auth(), "{error}");
    assert!(
        within("the end of the feed", WAIT, feed.next())
            .await
            .is_none(),
        "nothing after termination"
    );
    let requests = sim.bayeux().stats().requests - before;
    assert!(
        requests <= 3,
        "one refused poll and one refused login, got {requests} requests"
    );
}

#[tokio::test]
async fn logging_in_again_rides_out_refused_logins() {
    let sim = sim().await;
    let mut feed = feed(&sim).await;
    let id = established_call(&sim, &mut feed).await;

    // GWS restarts: sessions gone, and the first two logins meet a 503.
    sim.gws().fail_logins(2);
    sim.gws().expire_http_sessions();
    sim.bayeux().forget_sessions();
    attach_behind_the_feed(&sim, &id, "During", "\"outage\"");
    let ev = until(&mut feed, "re-login after refused logins", |e| {
        matches!(
            e,
            FeedEvent::LoggedInAgain | FeedEvent::Session(ClientEvent::Terminated { .. })
        )
    })
    .await;
    assert!(
        matches!(ev, FeedEvent::LoggedInAgain),
        "the feed ended instead of retrying the login: {ev:?}"
    );
    let changes = healed(&mut feed).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(strings(&feed, &id, "During"), ["outage"]);
    feed.disconnect().await;
}
