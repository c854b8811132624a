//! End-to-end, both generations at once: a v2 `CallFeed` and a v3 `CallFeed` (form sign-in
//! with an empty tenant, `\agent`) on the same GWS simulator see the same calls and print
//! the same change lines; user data attached through v3 comes back typed as written (a
//! string, an integer beyond 2^53, nested pairs with duplicate keys); a server that forgot
//! its v3 sessions is logged in again and healed, whichever way its CometD endpoint shows
//! the restart (HTTP 401, a `/meta/disconnect` of its own, `402` after a new handshake).
//! Every wait is bounded.

use gws_cometd_test_support::within;
use std::time::Duration;

use gws_cometd::bayeux::{Cause, SessionEvent};
use gws_cometd::gws::rest::{Credentials, UserValue};
use gws_cometd::gws::{Api, CallChange, CallEvent, CallFeed, FeedEvent};
use gws_cometd::ClientEvent;
use gws_cometd_sim::gws::V3Restart;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer, SimConfig};

const USER: &str = "agent";
const PASSWORD: &str = "v3-pa55word";
const WAIT: Duration = Duration::from_secs(15);

async fn sim() -> GwsSimServer {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.scenario = Some(Vec::new());
    config.sim = SimConfig {
        long_poll_timeout: Duration::from_millis(500),
        ..SimConfig::default()
    };
    GwsSimServer::start(config).await.expect("simulator starts")
}

/// A caught-up feed of `api`; v3 signs in as `\agent` (empty tenant).
async fn feed(sim: &GwsSimServer, api: Api) -> CallFeed {
    let user = match api {
        Api::V3 => format!("\\{USER}"),
        _ => USER.to_owned(),
    };
    let mut feed = CallFeed::builder(sim.base_url(), Credentials::new(user, PASSWORD))
        .api(api)
        .max_network_delay(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("the {api} feed connects: {e}"));
    next(&mut feed, |e| {
        matches!(e, FeedEvent::Ready { .. }).then_some(())
    })
    .await;
    feed
}

/// The first event `pick` takes; earlier ones are passed over.
async fn next<T>(feed: &mut CallFeed, mut pick: impl FnMut(FeedEvent) -> Option<T>) -> T {
    within("a feed event", WAIT, async {
        loop {
            match feed.next().await.expect("the feed goes on") {
                FeedEvent::Session(ClientEvent::Terminated { error }) => {
                    panic!("the feed ended: {error}")
                }
                ev => {
                    if let Some(t) = pick(ev) {
                        return t;
                    }
                }
            }
        }
    })
    .await
}

/// The next change of call `id`, as the JSON line `watch` prints.
async fn line_of(feed: &mut CallFeed, id: &str) -> String {
    let change: CallChange = next(feed, |e| match e {
        FeedEvent::Call(CallEvent { change, .. }) if change.call_id == id => Some(change),
        _ => None,
    })
    .await;
    serde_json::to_string(&change).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_and_v3_feeds_see_the_same_calls_and_print_the_same_changes() {
    let sim = sim().await;
    // A call in progress before either feed starts: both catch it up.
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    let mut v2 = feed(&sim, Api::V2).await;
    let mut v3 = feed(&sim, Api::V3).await;
    for feed in [&v2, &v3] {
        let store = feed.store();
        let call = store.get(&id).expect("caught up");
        assert_eq!(
            call.state.as_ref().map(|s| s.to_string()).as_deref(),
            Some("Established")
        );
    }

    // Attached through v3, typed as written: a string, an integer beyond 2^53, nested pairs
    // with a duplicate key.
    let pairs = vec![
        ("AccountNumber".to_owned(), UserValue::from("12345")),
        (
            "Big".to_owned(),
            UserValue::integer("123456789012345678901234567890").unwrap(),
        ),
        (
            "Journey".to_owned(),
            UserValue::json(r#"{"IVR":"main","Step":3,"Step":4}"#).unwrap(),
        ),
    ];
    v3.session()
        .attach_user_data(&id, &pairs)
        .await
        .expect("attach through v3");
    let (a, b) = tokio::join!(line_of(&mut v2, &id), line_of(&mut v3, &id));
    assert_eq!(a, b, "one change format for both generations");
    for expected in [
        r#""AccountNumber","value":"12345""#,
        r#""Big","value":123456789012345678901234567890"#,
    ] {
        assert!(a.contains(expected), "{expected} in {a}");
    }
    assert!(
        a.contains(r#""Journey","value":{"IVR":"main","Step":3,"Step":4}"#),
        "nested pairs as v2's nested objects, duplicate keys in order: {a}"
    );

    // A hold through v2, seen by both alike.
    v2.session().hold(&id).await.expect("hold through v2");
    let (a, b) = tokio::join!(line_of(&mut v2, &id), line_of(&mut v3, &id));
    assert_eq!(a, b);
    assert!(a.contains(r#""to":"Held""#), "{a}");
    v2.disconnect().await;
    v3.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_server_that_forgot_its_sessions_is_logged_in_again_and_healed() {
    let sim = sim().await;
    let mut v3 = feed(&sim, Api::V3).await;
    let id = sim.gws().ring_inbound("5115", "5001");
    line_of(&mut v3, &id).await;
    // As a restart would: every v3 session and token forgotten; a change meanwhile.
    sim.v3().expire_sessions();
    sim.gws().answer(&id).unwrap();
    next(&mut v3, |e| {
        matches!(e, FeedEvent::LoggedInAgain).then_some(())
    })
    .await;
    next(&mut v3, |e| {
        matches!(e, FeedEvent::Healed { .. }).then_some(())
    })
    .await;
    let store = v3.store();
    let call = store.get(&id).expect("the call");
    assert_eq!(
        call.state.as_ref().map(|s| s.to_string()).as_deref(),
        Some("Established")
    );
}

/// Restarts the simulator's v3 side as `how` says while a call changes, and checks the
/// feed says the session was forgotten as `forgotten` expects, logs in again, heals, and
/// follows changes made afterwards.
async fn restart_heals(how: V3Restart, forgotten: Option<fn(&Cause, bool) -> bool>) {
    let sim = sim().await;
    let mut v3 = feed(&sim, Api::V3).await;
    let id = sim.gws().ring_inbound("5115", "5001");
    line_of(&mut v3, &id).await;
    sim.restart_v3(how);
    sim.gws().answer(&id).unwrap();
    let mut said = Vec::new();
    next(&mut v3, |e| match e {
        FeedEvent::Session(ClientEvent::Session(SessionEvent::Forgotten {
            cause,
            unconnected,
        })) => {
            said.push((cause, unconnected));
            None
        }
        FeedEvent::LoggedInAgain => Some(()),
        _ => None,
    })
    .await;
    if let Some(forgotten) = forgotten {
        assert!(
            said.iter().any(|(c, u)| forgotten(c, *u)),
            "{how:?}: the feed logged in again after {said:?}"
        );
    }
    next(&mut v3, |e| {
        matches!(e, FeedEvent::Healed { .. }).then_some(())
    })
    .await;
    let state = |v3: &CallFeed| {
        let store = v3.store();
        let call = store.get(&id).expect("the call");
        call.state.as_ref().map(|s| s.to_string())
    };
    assert_eq!(state(&v3).as_deref(), Some("Established"));
    // The new session follows what happens next.
    sim.gws().hold(&id).unwrap();
    let line = line_of(&mut v3, &id).await;
    assert!(line.contains(r#""Held""#), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_server_that_ended_its_cometd_sessions_with_meta_disconnect_is_logged_in_again() {
    restart_heals(
        V3Restart::Disconnect,
        Some(|cause, _| *cause == Cause::EndedByServer),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_server_that_answers_unknown_client_after_a_new_handshake_is_logged_in_again() {
    restart_heals(
        V3Restart::UnknownClient,
        Some(|cause, unconnected| unconnected && cause.to_string().contains("402::Unknown client")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_server_whose_cometd_answers_401_after_a_restart_is_logged_in_again() {
    // The held connect may see `402` first, or the next request the 401: either way.
    restart_heals(V3Restart::Unauthorized, None).await;
}

/// As Genesys's own v3 servers behave: sign-in with an empty tenant (`\agent`),
/// `current-session` forbidden for a while after the first handshake, the voice subscription
/// denied while its messages are delivered anyway, kebab-case capabilities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_genesys_v3_shapes_the_feed_catches_up_and_follows_without_a_subscription() {
    use gws_cometd::gws::api::V3_VOICE_CHANNEL;
    use gws_cometd::gws::model::Capability;
    let sim = sim().await;
    sim.v3()
        .forbid_current_session_after_handshake(Some(Duration::from_millis(700)));
    sim.v3().deliver_without_subscription(true);
    sim.bayeux().set_fault(gws_cometd_sim::Fault::DenySubscribe(
        V3_VOICE_CHANNEL.into(),
    ));
    let in_progress = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&in_progress).unwrap();
    let mut v3 = CallFeed::builder(
        sim.base_url(),
        Credentials::new(format!("\\{USER}"), PASSWORD),
    )
    .api(Api::V3)
    .max_network_delay(Duration::from_secs(2))
    .connect()
    .await
    .expect("the v3 feed connects");
    // Caught up through the 403 window: the call in progress, as the server lists it.
    let caught_up = line_of(&mut v3, &in_progress).await;
    assert!(caught_up.contains(r#""origin":"catchUp""#), "{caught_up}");
    assert!(caught_up.contains(r#""Established""#), "{caught_up}");
    // Denied, yet delivered: live changes come through.
    let id = sim.gws().ring_inbound("6116", "5001");
    let line = line_of(&mut v3, &id).await;
    assert!(
        !line.contains(r#""origin""#),
        "a notification's change: {line}"
    );
    let store = v3.store();
    let call = store.get(&id).expect("the ringing call");
    let caps: Vec<Capability> = call
        .capabilities
        .iter()
        .flatten()
        .map(Capability::canonical)
        .collect();
    assert!(caps.contains(&Capability::Answer), "{caps:?}");
    assert!(
        store.get_text(&id).unwrap().contains(r#""answer""#),
        "kebab-case kept in the text"
    );
}
