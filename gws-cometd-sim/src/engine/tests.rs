use super::*;
use gws_cometd::bayeux::Subscription;
use serde_json::value::RawValue;

static P: Policy = Policy {
    advice_none: false,
    deny: Vec::new(),
};

fn one(ch: &str) -> Option<Subscription> {
    Some(Subscription::One(ch.to_owned()))
}

fn engine(max_queue: usize) -> (Engine, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(false);
    let cfg = EngineConfig {
        long_poll_timeout: Duration::from_secs(30),
        interval: Duration::ZERO,
        max_interval: Duration::from_secs(10),
        max_queue,
        ack_extension: true,
    };
    (Engine::new(cfg, rx), tx)
}

fn msg(channel: &str, client_id: Option<&str>) -> Message {
    let mut m = Message::new(channel);
    m.id = Some("1".into());
    m.client_id = client_id.map(str::to_owned);
    m
}

async fn handshake(e: &Engine) -> (String, String) {
    let r = e
        .handle_batch(vec![msg("/meta/handshake", None)], None, None, &P)
        .await;
    let browser = r.set_browser.expect("a new browser cookie");
    let id = r.messages[0].client_id.clone().expect("a clientId");
    (id, browser)
}

fn connect(id: &str, timeout_ms: Option<u64>) -> Message {
    let mut m = msg("/meta/connect", Some(id));
    m.connection_type = Some("long-polling".into());
    m.advice = timeout_ms.map(|t| Advice {
        timeout: Some(t),
        ..Advice::default()
    });
    m
}

fn subscribe(id: &str, ch: &str) -> Message {
    let mut m = msg("/meta/subscribe", Some(id));
    m.subscription = one(ch);
    m
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn connect_holds_for_the_long_poll_timeout_when_nothing_is_queued() {
    let (e, _tx) = engine(10);
    let (id, b) = handshake(&e).await;
    let start = Instant::now();
    let r = e
        .handle_batch(vec![connect(&id, None)], Some(&b), None, &P)
        .await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(r.messages.len(), 1);
    assert!(r.messages[0].is_successful());
}

#[tokio::test(start_paused = true)]
async fn first_connect_with_timeout_zero_answers_at_once() {
    let (e, _tx) = engine(10);
    let (id, b) = handshake(&e).await;
    let start = Instant::now();
    e.handle_batch(vec![connect(&id, Some(0))], Some(&b), None, &P)
        .await;
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_publish_releases_the_held_connect_with_data_before_the_reply() {
    let (e, _tx) = engine(10);
    let (id, b) = handshake(&e).await;
    e.handle_batch(vec![subscribe(&id, "/v2/**")], Some(&b), None, &P)
        .await;
    let held = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
    let publish = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(e.publish("/v2/me/calls", &raw(r#"{"a":1,"a":2}"#)), 1);
    };
    let start = Instant::now();
    let (r, ()) = tokio::join!(held, publish);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(r.messages.len(), 2);
    assert_eq!(r.messages[0].channel, "/v2/me/calls");
    assert_eq!(
        r.messages[0].data.as_ref().unwrap().get(),
        r#"{"a":1,"a":2}"#
    );
    assert_eq!(r.messages[1].channel, "/meta/connect");
    assert_eq!(e.stats().delivered, 1);
}

#[tokio::test(start_paused = true)]
async fn a_second_connect_releases_the_first() {
    let (e, _tx) = engine(10);
    let (id, b) = handshake(&e).await;
    let first = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
    let second = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let start = Instant::now();
        e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P)
            .await;
        start.elapsed()
    };
    let start = Instant::now();
    let first = async {
        let r = first.await;
        (r, start.elapsed())
    };
    let ((r, first_took), second_took) = tokio::join!(first, second);
    assert_eq!(first_took, Duration::from_secs(2));
    assert!(r.messages[0].is_successful());
    assert_eq!(second_took, Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn sessions_expire_after_max_interval_without_a_connect() {
    let (e, _tx) = engine(10);
    let (id, b) = handshake(&e).await;
    tokio::time::advance(Duration::from_secs(9)).await;
    e.expire_idle();
    assert_eq!(e.stats().sessions, 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    e.expire_idle();
    assert_eq!(e.stats().sessions, 0);
    assert_eq!(e.stats().expired, 1);
    let r = e
        .handle_batch(vec![connect(&id, Some(0))], Some(&b), None, &P)
        .await;
    assert_eq!(r.messages[0].error.as_deref(), Some(UNKNOWN_CLIENT));
}

#[tokio::test(start_paused = true)]
async fn a_held_connect_keeps_its_session_alive() {
    let (e, _tx) = engine(10);
    let (id, b) = handshake(&e).await;
    let held = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
    let check = async {
        tokio::time::sleep(Duration::from_secs(25)).await;
        e.expire_idle();
        e.stats().sessions
    };
    let (_, sessions) = tokio::join!(held, check);
    assert_eq!(sessions, 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_the_oldest_message() {
    let (e, _tx) = engine(2);
    let (id, b) = handshake(&e).await;
    e.handle_batch(vec![subscribe(&id, "/a")], Some(&b), None, &P)
        .await;
    for i in 0..3 {
        e.publish("/a", &raw(&i.to_string()));
    }
    let r = e
        .handle_batch(vec![connect(&id, None)], Some(&b), None, &P)
        .await;
    let data: Vec<_> = r.messages[..2]
        .iter()
        .map(|m| m.data.as_ref().unwrap().get().to_owned())
        .collect();
    assert_eq!(data, ["1", "2"]);
    assert_eq!(e.stats().dropped, 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_with_another_browser_cookie_is_an_unknown_client() {
    let (e, _tx) = engine(10);
    let (id, _b) = handshake(&e).await;
    let r = e
        .handle_batch(vec![subscribe(&id, "/a")], Some("other"), None, &P)
        .await;
    assert_eq!(r.messages[0].error.as_deref(), Some(UNKNOWN_CLIENT));
    assert!(r.messages[0].advice.is_none());
    assert!(e.stats().subscriptions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_connect_lets_the_session_expire() {
    let (e, _tx) = engine(10);
    let (id, b) = handshake(&e).await;
    let held = e.handle_batch(vec![connect(&id, None)], Some(&b), None, &P);
    assert!(tokio::time::timeout(Duration::from_secs(1), held)
        .await
        .is_err());
    tokio::time::advance(Duration::from_secs(11)).await;
    e.expire_idle();
    assert_eq!(e.stats().sessions, 0);
}

#[tokio::test(start_paused = true)]
async fn publish_to_reaches_only_the_owners_sessions_and_owners_cannot_share_sessions() {
    let (e, _tx) = engine(10);
    let mut ids = Vec::new();
    for owner in [Some("alice"), Some("bob"), None] {
        let r = e
            .handle_batch(vec![msg("/meta/handshake", None)], None, owner, &P)
            .await;
        let b = r.set_browser.unwrap();
        let id = r.messages[0].client_id.clone().unwrap();
        let r = e
            .handle_batch(vec![subscribe(&id, "/v2/me/*")], Some(&b), owner, &P)
            .await;
        assert!(r.messages[0].is_successful());
        ids.push((id, b));
    }
    // Sessions without an owner (the plain endpoint) are not listed.
    let receiving = e.sessions_receiving("/v2/me/calls");
    assert_eq!(receiving.into_iter().collect::<Vec<_>>(), {
        let mut owned = vec![
            (ids[0].0.clone(), "alice".to_owned()),
            (ids[1].0.clone(), "bob".to_owned()),
        ];
        owned.sort();
        owned
    });
    assert_eq!(e.publish_to("alice", "/v2/me/calls", &raw("1")), 1);
    assert_eq!(e.publish("/v2/me/calls", &raw("2")), 3);

    let (alice, alice_b) = &ids[0];
    let r = e
        .handle_batch(
            vec![connect(alice, Some(0))],
            Some(alice_b),
            Some("alice"),
            &P,
        )
        .await;
    let data: Vec<_> = r.messages[..2]
        .iter()
        .map(|m| m.data.as_ref().unwrap().get().to_owned())
        .collect();
    assert_eq!(data, ["1", "2"]);
    let (bob, bob_b) = &ids[1];
    let r = e
        .handle_batch(vec![connect(bob, Some(0))], Some(bob_b), Some("bob"), &P)
        .await;
    assert_eq!(r.messages.len(), 2, "bob gets the broadcast only");

    // Alice's session used with Bob's login is unknown.
    let r = e
        .handle_batch(
            vec![connect(alice, Some(0))],
            Some(alice_b),
            Some("bob"),
            &P,
        )
        .await;
    assert_eq!(r.messages[0].error.as_deref(), Some(UNKNOWN_CLIENT));
}
