//! The bridge against a real nats-server with JetStream (test-support's `nats`) and the GWS
//! simulator: replicas publish every change once, a replica that joins mid-call or dies
//! mid-stream neither repeats nor loses anything, a restarted nats-server loses nothing
//! within the bound, a lagging replica never moves the KV back.
//!
//! The oracle is an observer per agent: a `CallFeed` with `Delivery::Messages` whose every
//! message the test applies to its own `CallStore`, so it sees each change GWS made, in
//! order. Every test is bounded and stops its servers by itself.

use gws_cometd_test_support::{nats, within};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, stream::DirectGetErrorKind};
use gws_cometd::gws::feed::Delivery;
use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::store::{change_between, ChangeOrigin};
use gws_cometd::gws::wire::{self, Notification};
use gws_cometd::gws::{CallFeed, CallStore, FeedEvent};
use gws_cometd_bridge::{
    state_fingerprint, AgentWriter, Bridge, BridgeConfig, CallAddress, ChangeItem, LayoutConfig,
    Metrics, Publisher, SessionState, Written, BUCKET, REPLICA_HEADER, SEQ_HEADER, STATE_HEADER,
    STREAM,
};
use gws_cometd_sim::gws::parse_scenario;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
use nats::NatsServer;
use serde_json::value::RawValue;

use crate::support::nats_server;

pub(crate) const PASSWORD: &str = "bridge-pa55";

/// The same for every agent, from its first subscription: time for every session to
/// subscribe, then two calls, one of which completes; the other ends established with
/// data. Attach then delete of `Priority` returns call 0's data to an earlier content.
pub(crate) const SCENARIO: &str = r#"
{"at_ms":2500,"ring":{"from":"5115","to":"5001"}}
{"at_ms":2700,"answer":0}
{"at_ms":2900,"attach":{"call":0,"userData":{"AccountNumber":"12345"}}}
{"at_ms":3100,"attach":{"call":0,"userData":{"Priority":2}}}
{"at_ms":3300,"ring_internal":{"from":"5002","to":"5001"}}
{"at_ms":3500,"delete_pair":{"call":0,"key":"Priority"}}
{"at_ms":3700,"answer":1}
{"at_ms":3900,"attach":{"call":1,"userData":{"K":1}}}
{"at_ms":4100,"hold":0}
{"at_ms":4300,"retrieve":0}
{"at_ms":4500,"update":{"call":1,"userData":{"K":2}}}
{"at_ms":4700,"hangup":0}
{"at_ms":4900,"complete":0}
{"at_ms":5100,"attach":{"call":1,"userData":{"Final":"yes"}}}
"#;

/// Changes per agent in [`SCENARIO`].
pub(crate) const CHANGES_PER_AGENT: usize = 14;

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    within(what, limit, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

pub(crate) fn agent(i: usize) -> String {
    // Not a valid subject token as it is: the bridge must escape it.
    format!("agent.{i:02}@cc")
}

fn agents(n: usize) -> Vec<Credentials> {
    (0..n)
        .map(|i| Credentials::new(agent(i), PASSWORD))
        .collect()
}

pub(crate) async fn sim(n: usize, scenario: &str) -> GwsSimServer {
    let mut config = GwsServerConfig::new(agent(0), PASSWORD);
    for i in 1..n {
        config.gws = config.gws.with_user(agent(i), PASSWORD);
    }
    config.scenario = Some(parse_scenario(scenario).expect("scenario"));
    GwsSimServer::start(config).await.expect("simulator")
}

fn config(sim: &GwsSimServer, nats: &NatsServer, n: usize, replica: &str) -> BridgeConfig {
    let mut c = BridgeConfig::new(sim.base_url(), agents(n), nats.url());
    c.replica = replica.into();
    // The default: long enough for a loaded machine's peer to catch up.
    c.settle = Duration::from_secs(1);
    c.nats_timeout = Duration::from_secs(2);
    c.drain_timeout = Duration::from_secs(5);
    c
}

pub(crate) async fn wait_connected(bridge: &Bridge, n: usize) {
    until("every session connected", Duration::from_secs(20), || {
        bridge
            .metrics()
            .snapshot()
            .sessions_in(SessionState::Connected)
            == n as i64
    })
    .await;
}

/// One observed change: the call, its state fingerprint after, the change's JSON.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub call_id: String,
    pub state: String,
    /// The call text after it (`None` once completed).
    pub text: Option<String>,
    pub change: serde_json::Value,
}

pub(crate) type Observed = Arc<Mutex<BTreeMap<String, Vec<Seen>>>>;

/// Follows every agent with a feed of its own and records every change, per agent.
pub(crate) async fn observe(
    sim: &GwsSimServer,
    n: usize,
) -> (Observed, Vec<tokio::task::JoinHandle<()>>) {
    let observed: Observed = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..n {
        let name = agent(i);
        let mut feed = CallFeed::builder(sim.base_url(), Credentials::new(name.clone(), PASSWORD))
            .delivery(Delivery::Messages)
            .connect()
            .await
            .expect("observer feed");
        let observed = observed.clone();
        tasks.push(tokio::spawn(async move {
            let mut store = CallStore::new();
            while let Some(ev) = feed.next().await {
                let FeedEvent::Message(msg) = ev else {
                    continue;
                };
                let Ok(Notification::Call(call)) = wire::decode(&msg) else {
                    continue;
                };
                let Some(mut applied) = store.apply(&call, tokio::time::Instant::now().into_std())
                else {
                    continue;
                };
                let change = applied.change();
                let text = (!change.removed).then(|| applied.text().to_owned());
                let seen = Seen {
                    call_id: change.call_id.clone(),
                    state: state_fingerprint(text.as_deref()),
                    text,
                    change: serde_json::to_value(&change).unwrap(),
                };
                observed
                    .lock()
                    .unwrap()
                    .entry(name.clone())
                    .or_default()
                    .push(seen);
            }
        }));
    }
    (observed, tasks)
}

/// One message of `GWS_CALLS`.
#[derive(Debug)]
pub(crate) struct Stored {
    pub subject: String,
    pub state: String,
    pub replica: String,
    pub id: String,
    pub payload: serde_json::Value,
}

pub(crate) async fn js(nats: &NatsServer) -> jetstream::Context {
    let client = async_nats::connect(nats.url()).await.expect("NATS connect");
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client)
}

/// Every message of the stream, in order.
pub(crate) async fn stored(js: &jetstream::Context) -> Vec<Stored> {
    let mut stream = js.get_stream(STREAM).await.expect("stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        let m = match stream.direct_get(seq).await {
            Ok(m) => m,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => continue,
            Err(e) => panic!("direct get {seq}: {e}"),
        };
        let h = |name: &str| {
            m.headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        out.push(Stored {
            subject: m.subject.to_string(),
            state: h(STATE_HEADER),
            replica: h(REPLICA_HEADER),
            id: h("Nats-Msg-Id"),
            payload: serde_json::from_slice(&m.payload).expect("payload is JSON"),
        });
    }
    out
}

async fn stream_len(js: &jetstream::Context) -> u64 {
    match js.get_stream(STREAM).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

pub(crate) async fn wait_stream_len(js: &jetstream::Context, want: u64, limit: Duration) {
    within("the stream to fill", limit, async {
        loop {
            if stream_len(js).await >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Per subject, the states the stream holds must be the observer's, in order: every
/// change once. Returns the stored messages.
async fn assert_stream_matches(
    js: &jetstream::Context,
    observed: &Observed,
    exact_payloads: bool,
) -> Vec<Stored> {
    let stored = stored(js).await;
    let mut by_subject: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for m in &stored {
        by_subject.entry(m.subject.as_str()).or_default().push(m);
    }
    let observed = observed.lock().unwrap().clone();
    let mut want_subjects = 0;
    for (agent, seen) in &observed {
        let mut per_call: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
        for s in seen {
            per_call.entry(s.call_id.as_str()).or_default().push(s);
        }
        for (call_id, seen) in per_call {
            want_subjects += 1;
            let subject = CallAddress::new(agent, call_id).unwrap().subject;
            let got = by_subject
                .get(subject.as_str())
                .cloned()
                .unwrap_or_default();
            let got_states: Vec<&str> = got.iter().map(|m| m.state.as_str()).collect();
            let want_states: Vec<&str> = seen.iter().map(|s| s.state.as_str()).collect();
            let who: Vec<String> = got
                .iter()
                .map(|m| {
                    format!(
                        "{}@{} {}",
                        m.replica,
                        m.id,
                        m.payload
                            .get("origin")
                            .map(|o| o.to_string())
                            .unwrap_or_default()
                    )
                })
                .collect();
            assert_eq!(got_states, want_states, "states of {subject}: {who:?}");
            for (m, s) in got.iter().zip(&seen) {
                assert_eq!(m.payload["agent"], serde_json::json!(agent), "{subject}");
                assert_eq!(m.payload["callId"], serde_json::json!(call_id));
                if exact_payloads {
                    let mut p = m.payload.clone();
                    p.as_object_mut().unwrap().remove("agent");
                    assert_eq!(p, s.change, "change of {subject}");
                }
            }
        }
    }
    assert_eq!(by_subject.len(), want_subjects, "subjects nobody observed");
    let mut ids: Vec<&str> = stored.iter().map(|m| m.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), stored.len(), "message ids are unique");
    stored
}

/// The KV holds the simulator's current call for every live call and nothing for
/// completed ones.
async fn assert_kv_matches_sim(js: &jetstream::Context, sim: &GwsSimServer, observed: &Observed) {
    let kv = js.get_key_value(BUCKET).await.expect("bucket");
    let observed = observed.lock().unwrap().clone();
    let mut live = 0;
    for (agent, seen) in &observed {
        let mut last: BTreeMap<&str, &Seen> = BTreeMap::new();
        for s in seen {
            last.insert(s.call_id.as_str(), s);
        }
        for (call_id, s) in last {
            let key = CallAddress::new(agent, call_id).unwrap().key;
            let value = kv.get(&key).await.expect("kv get");
            if s.change["removed"] == serde_json::json!(true) {
                assert_eq!(value, None, "{key} completed");
                let entry = kv.entry(&key).await.expect("kv entry").expect("a marker");
                assert_eq!(entry.operation, kv::Operation::Delete, "{key}");
            } else {
                let value = value.unwrap_or_else(|| panic!("{key} missing in the KV"));
                let value = std::str::from_utf8(&value).unwrap();
                // The call as GWS last sent it, and as the simulator has it now (but for
                // the seconds it has lasted, which a catch-up reads afresh).
                let strip = |t: &str| {
                    let mut v: serde_json::Value = serde_json::from_str(t).unwrap();
                    v.as_object_mut().unwrap().remove("duration");
                    v
                };
                assert_eq!(strip(value), strip(s.text.as_deref().unwrap()), "{key}");
                let now = sim.gws().call_json(call_id).expect("the simulator has it");
                assert_eq!(strip(value), strip(&now), "{key}");
                live += 1;
            }
        }
    }
    assert!(live > 0, "some call is still up");
}

/// Two replicas of `n` agents (replica A serving metrics when `metrics`), run until both
/// have written or found every change of [`SCENARIO`]; the stream and the KV checked
/// against the observers.
struct TwoReplicas {
    a: Bridge,
    b: Bridge,
    sim: GwsSimServer,
    observers: Vec<tokio::task::JoinHandle<()>>,
    stored: Vec<Stored>,
    want: u64,
}

async fn two_replicas_publish_every_change(
    nats: &NatsServer,
    n: usize,
    metrics: bool,
) -> TwoReplicas {
    let sim = sim(n, SCENARIO).await;
    let (observed, observers) = observe(&sim, n).await;
    let mut a_config = config(&sim, nats, n, "replica-a");
    if metrics {
        a_config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    }
    let (a, b) = tokio::join!(
        Bridge::start(a_config),
        Bridge::start(config(&sim, nats, n, "replica-b"))
    );
    let (a, b) = (a.expect("bridge a"), b.expect("bridge b"));
    tokio::join!(wait_connected(&a, n), wait_connected(&b, n));
    let js = js(nats).await;
    let want = (n * CHANGES_PER_AGENT) as u64;
    wait_stream_len(&js, want, Duration::from_secs(30)).await;
    // Both replicas have written (or found) everything.
    until("both replicas done", Duration::from_secs(10), || {
        let (sa, sb) = (a.metrics().snapshot(), b.metrics().snapshot());
        sa.published + sa.duplicates == want && sb.published + sb.duplicates == want
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored = assert_stream_matches(&js, &observed, true).await;
    assert_eq!(stored.len() as u64, want);
    assert_kv_matches_sim(&js, &sim, &observed).await;
    TwoReplicas {
        a,
        b,
        sim,
        observers,
        stored,
        want,
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_twenty_agents_publish_every_change_exactly_once() {
    const N: usize = 20;
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let TwoReplicas {
            a,
            b,
            sim,
            observers,
            stored,
            want,
        } = two_replicas_publish_every_change(&nats, N, true).await;
        let (sa, sb) = (a.metrics().snapshot(), b.metrics().snapshot());
        assert_eq!(sa.published + sb.published, want, "{sa:?} {sb:?}");
        assert_eq!(sa.notifications, want);
        assert_eq!(sb.notifications, want);
        // Both replicas really raced: each published some and found the other's.
        let by_a = stored.iter().filter(|m| m.replica == "replica-a").count() as u64;
        assert_eq!(by_a, sa.published);
        assert!(sa.published > 0 && sb.published > 0, "{sa:?} {sb:?}");
        assert!(sa.duplicates > 0 && sb.duplicates > 0, "{sa:?} {sb:?}");

        // The metrics endpoint.
        let addr = a.metrics_addr().expect("metrics address");
        let http = reqwest::Client::new();
        let text = metrics_text(&http, addr).await;
        for name in [
            "gws_bridge_sessions{state=\"connected\"} 20",
            &format!("gws_bridge_changes_published_total {}", sa.published),
            &format!("gws_bridge_duplicates_suppressed_total {}", sa.duplicates),
            &format!("gws_bridge_notifications_total {want}"),
            "gws_bridge_publish_latency_seconds_bucket",
            "gws_bridge_heals_total 0",
            "gws_bridge_rehandshakes_total 0",
        ] {
            assert!(text.contains(name), "{name} not in\n{text}");
        }
        let health = http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let health: serde_json::Value =
            serde_json::from_str(&health.text().await.unwrap()).unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["sessions"]["connected"], 20);

        let (ra, rb) = tokio::join!(a.shutdown(), b.shutdown());
        assert_eq!((ra.unwritten, rb.unwritten), (0, 0));
        // Every session was disconnected.
        until("sessions gone", Duration::from_secs(10), || {
            sim.bayeux().stats().sessions == N
        })
        .await;
        for o in observers {
            o.abort();
        }
    })
    .await;
}

/// Replica A follows from the start; B joins mid-call (its catch-up must find everything
/// already there); then A is killed mid-stream and B carries on alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joining_mid_call_and_one_killed_mid_stream_neither_repeat_nor_lose() {
    const N: usize = 5;
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let sim = sim(N, SCENARIO).await;
        let (observed, observers) = observe(&sim, N).await;
        let a = Bridge::start(config(&sim, &nats, N, "replica-a"))
            .await
            .expect("bridge a");
        wait_connected(&a, N).await;
        let js = js(&nats).await;
        // Mid-call: both calls of every agent are up (the 5th change is the second ring).
        wait_stream_len(&js, (N * 5) as u64, Duration::from_secs(20)).await;
        let b = Bridge::start(config(&sim, &nats, N, "replica-b"))
            .await
            .expect("bridge b");
        wait_connected(&b, N).await;
        // B's catch-up (two calls per agent) was found in the stream.
        until(
            "B's catch-up held against the stream",
            Duration::from_secs(10),
            || b.metrics().snapshot().duplicates >= (2 * N) as u64,
        )
        .await;
        let before_kill = stream_len(&js).await;
        assert!(
            before_kill < (N * CHANGES_PER_AGENT) as u64,
            "still mid-stream"
        );
        a.abort();
        let want = (N * CHANGES_PER_AGENT) as u64;
        wait_stream_len(&js, want, Duration::from_secs(30)).await;
        until("B done", Duration::from_secs(10), || {
            b.metrics().snapshot().pending == 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stored = assert_stream_matches(&js, &observed, true).await;
        assert_eq!(stored.len() as u64, want);
        assert_kv_matches_sim(&js, &sim, &observed).await;
        let sb = b.metrics().snapshot();
        assert!(sb.published > 0, "B carried on: {sb:?}");
        assert!(
            stored.iter().all(|m| m.payload.get("origin").is_none()),
            "no catch-up was published"
        );
        b.shutdown().await;
        for o in observers {
            o.abort();
        }
    })
    .await;
}

/// nats-server is killed mid-stream and restarted 1.5 s later: the bridge buffers, retries
/// with the same ids, and the stream ends up with every change once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_nats_server_loses_nothing_within_the_bound() {
    const N: usize = 5;
    within("the test", Duration::from_secs(60), async {
        let mut nats = nats_server().await;
        let sim = sim(N, SCENARIO).await;
        let (observed, observers) = observe(&sim, N).await;
        // Acks time out well within the outage: the writes fail and are retried.
        let short = |replica| {
            let mut c = config(&sim, &nats, N, replica);
            c.nats_timeout = Duration::from_millis(400);
            c
        };
        let (a, b) = tokio::join!(
            Bridge::start(short("replica-a")),
            Bridge::start(short("replica-b"))
        );
        let (a, b) = (a.expect("bridge a"), b.expect("bridge b"));
        tokio::join!(wait_connected(&a, N), wait_connected(&b, N));
        {
            let js = js(&nats).await;
            wait_stream_len(&js, (N * 3) as u64, Duration::from_secs(20)).await;
        }
        nats.kill().await.expect("kill");
        let down = Instant::now();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        nats.restart().await.expect("restart");
        let js = js(&nats).await;
        let want = (N * CHANGES_PER_AGENT) as u64;
        wait_stream_len(&js, want, Duration::from_secs(30)).await;
        until("both replicas done", Duration::from_secs(15), || {
            a.metrics().snapshot().pending == 0 && b.metrics().snapshot().pending == 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stored = assert_stream_matches(&js, &observed, true).await;
        assert_eq!(stored.len() as u64, want);
        assert_kv_matches_sim(&js, &sim, &observed).await;
        let (sa, sb) = (a.metrics().snapshot(), b.metrics().snapshot());
        assert!(
            sa.publish_errors + sb.publish_errors > 0,
            "the outage was felt: {sa:?} {sb:?}"
        );
        assert_eq!(sa.coalesced + sb.coalesced, 0);
        assert!(sa.nats_connected && sb.nats_connected);
        eprintln!("NATS down {:?}; a {sa:?}; b {sb:?}", down.elapsed());
        tokio::join!(a.shutdown(), b.shutdown());
        for o in observers {
            o.abort();
        }
    })
    .await;
}

/// Beyond the bound (2 changes per agent) with NATS away, changes are merged per call and
/// counted; the KV still ends equal to the simulator and the stream's last state of each
/// call is the observer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_bound_changes_are_merged_per_call_and_reported() {
    const N: usize = 2;
    within("the test", Duration::from_secs(60), async {
        let mut nats = nats_server().await;
        let sim = sim(N, SCENARIO).await;
        let (observed, observers) = observe(&sim, N).await;
        let mut c = config(&sim, &nats, N, "replica-a");
        c.buffer_per_agent = 2;
        let a = Bridge::start(c).await.expect("bridge");
        wait_connected(&a, N).await;
        nats.kill().await.expect("kill");
        // The whole scenario happens while NATS is away.
        until(
            "the scenario's changes seen",
            Duration::from_secs(20),
            || a.metrics().snapshot().notifications == (N * CHANGES_PER_AGENT) as u64,
        )
        .await;
        nats.restart().await.expect("restart");
        until("drained", Duration::from_secs(20), || {
            a.metrics().snapshot().pending == 0
        })
        .await;
        let s = a.metrics().snapshot();
        assert!(s.coalesced > 0, "{s:?}");
        // A write that timed out while NATS was away can land after all: its retry then
        // finds it (a duplicate).
        assert_eq!(
            s.published + s.duplicates + s.coalesced,
            (N * CHANGES_PER_AGENT) as u64,
            "{s:?}"
        );
        let js = js(&nats).await;
        assert_kv_matches_sim(&js, &sim, &observed).await;
        let stored = stored(&js).await;
        assert!(stored
            .iter()
            .any(|m| m.payload["coalesced"].as_u64() > Some(1)));
        // Each call's last stored state is the observer's last.
        let observed = observed.lock().unwrap().clone();
        for (agent, seen) in &observed {
            for s in seen {
                let subject = CallAddress::new(agent, &s.call_id).unwrap().subject;
                let last_seen = seen.iter().rev().find(|x| x.call_id == s.call_id).unwrap();
                let last_stored = stored.iter().rev().find(|m| m.subject == subject).unwrap();
                assert_eq!(last_stored.state, last_seen.state, "{subject}");
            }
        }
        a.shutdown().await;
        for o in observers {
            o.abort();
        }
    })
    .await;
}

/// Logins that fail do not stop the other agents: refused ones are retried with backoff
/// until they work, a wrong password keeps failing and is listed in `/healthz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_logins_are_retried_and_reported_without_stopping_the_others() {
    const N: usize = 3;
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let sim = sim(N, SCENARIO).await;
        // The next two logins get a bare 503 (a GWS node restarting).
        sim.gws().fail_logins(2);
        let mut c = config(&sim, &nats, N, "replica-a");
        c.agents
            .push(Credentials::new(agent(1).replace("01", "99"), "wrong").into());
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        let bad = c.agents[N].user().to_owned();
        let bridge = Bridge::start(c).await.expect("bridge");
        wait_connected(&bridge, N).await;
        let s = bridge.metrics().snapshot();
        assert!(s.login_failures >= 2, "{s:?}");
        until(
            "the wrong password retried",
            Duration::from_secs(10),
            || bridge.metrics().snapshot().login_failures >= 3,
        )
        .await;
        assert_eq!(bridge.metrics().failing_agents(), vec![bad.clone()]);
        assert_eq!(
            bridge
                .metrics()
                .snapshot()
                .sessions_in(SessionState::LoginFailed),
            1
        );
        let addr = bridge.metrics_addr().unwrap();
        let body = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["loginFailing"], serde_json::json!([bad]));
        assert_eq!(health["sessions"]["login_failed"], 1);
        assert!(!body.contains("wrong"), "{body}");
        // The others publish.
        let js = js(&nats).await;
        wait_stream_len(&js, (N * 3) as u64, Duration::from_secs(20)).await;
        bridge.shutdown().await;
    })
    .await;
}

/// A call that ended while no replica ran: the next replica's catch-up does not have it,
/// so it removes it from the KV and says so in the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_ended_while_no_replica_ran_is_removed_at_the_next_start() {
    const N: usize = 2;
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let sim = sim(
            N,
            r#"{"at_ms":300,"ring":{"from":"5115","to":"5001"}}
{"at_ms":500,"answer":0}"#,
        )
        .await;
        let a = Bridge::start(config(&sim, &nats, N, "replica-a"))
            .await
            .expect("bridge a");
        let js = js(&nats).await;
        wait_stream_len(&js, (2 * N) as u64, Duration::from_secs(20)).await;
        until("written", Duration::from_secs(10), || {
            a.metrics().snapshot().pending == 0
        })
        .await;
        a.shutdown().await;
        // Agent 0's call ends while no bridge runs; agent 1's goes on.
        let ended = sim.gws().call_ids_for(&agent(0));
        for id in &ended {
            sim.gws().hangup(id).unwrap();
            sim.gws().complete(id).unwrap();
        }
        let b = Bridge::start(config(&sim, &nats, N, "replica-b"))
            .await
            .expect("bridge b");
        let kv = js.get_key_value(BUCKET).await.unwrap();
        let key = CallAddress::new(&agent(0), &ended[0]).unwrap().key;
        within("the ended call removed", Duration::from_secs(20), async {
            while kv.get(&key).await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        let stored = stored(&js).await;
        let subject = CallAddress::new(&agent(0), &ended[0]).unwrap().subject;
        let last = stored.iter().rev().find(|m| m.subject == subject).unwrap();
        assert_eq!(last.payload["removed"], true);
        assert_eq!(last.payload["origin"], "catchUp");
        assert_eq!(last.replica, "replica-b");
        // Agent 1's live call is untouched, and nothing else was published.
        let live = sim.gws().call_ids_for(&agent(1));
        let key1 = CallAddress::new(&agent(1), &live[0]).unwrap().key;
        assert!(kv.get(&key1).await.unwrap().is_some());
        assert_eq!(stored.len(), 2 * N + 1);
        b.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The write protocol itself, replica against replica, on synthetic changes.

fn item(id: &str, before: Option<&str>, after: Option<&str>) -> ChangeItem {
    let change = change_between(id, before, after, ChangeOrigin::Notification, None);
    ChangeItem::new(change, after.map(Arc::from))
}

async fn writer(nats: &NatsServer, replica: &str, agent: &str) -> AgentWriter {
    let publisher = Publisher::new(
        js(nats).await,
        &LayoutConfig::default(),
        replica,
        Duration::from_millis(200),
        Metrics::new(),
    )
    .await
    .expect("publisher");
    publisher.agent(agent).expect("writer")
}

async fn write(w: &mut AgentWriter, mut item: ChangeItem) -> Written {
    within(
        "a write",
        Duration::from_secs(10),
        w.write(&mut item, &|| false),
    )
    .await
    .expect("write")
}

/// A → B → A: the lagging replica finds each step in the history and never writes the
/// older B over the newer A, though B differs from the KV's content.
#[tokio::test]
async fn a_lagging_replica_never_moves_the_kv_back_from_a_b_a() {
    within("the test", Duration::from_secs(30), async {
        let nats = nats_server().await;
        let mut fast = writer(&nats, "fast", "jdoe").await;
        let mut slow = writer(&nats, "slow", "jdoe").await;
        let a = r#"{"id":"c1","state":"Established","userData":{"X":"1"}}"#;
        let b = r#"{"id":"c1","state":"Established","userData":{"X":"1","Y":"2"}}"#;
        let steps = [
            item("c1", None, Some(a)),
            item("c1", Some(a), Some(b)),
            item("c1", Some(b), Some(a)),
        ];
        let mut seqs = Vec::new();
        for s in steps.clone() {
            match write(&mut fast, s).await {
                Written::Published { seq } => seqs.push(seq),
                other => panic!("fast: {other:?}"),
            }
        }
        let js = js(&nats).await;
        let kv = js.get_key_value(BUCKET).await.unwrap();
        let key = CallAddress::new("jdoe", "c1").unwrap().key;
        let before = kv.entry(&key).await.unwrap().unwrap();
        assert_eq!(std::str::from_utf8(&before.value).unwrap(), a);

        // The slow replica now gets the same three changes.
        for (s, want) in steps.into_iter().zip(&seqs) {
            assert_eq!(write(&mut slow, s).await, Written::Duplicate { seq: *want });
            // After its late B the KV still holds the newer A, untouched.
            let now = kv.entry(&key).await.unwrap().unwrap();
            assert_eq!(now.revision, before.revision);
            assert_eq!(std::str::from_utf8(&now.value).unwrap(), a);
        }
        assert_eq!(stream_len(&js).await, 3);
        // The entry says which stream message it reflects.
        let kv_stream = js.get_stream("KV_gws_calls").await.unwrap();
        let raw = kv_stream
            .direct_get_last_for_subject(format!("$KV.gws_calls.{key}"))
            .await
            .unwrap();
        assert_eq!(
            raw.headers.get(SEQ_HEADER).map(|v| v.as_str().to_owned()),
            Some(seqs[2].to_string())
        );
    })
    .await;
}

/// Two replicas write the same 40 changes of 4 calls at the same time: each stored once,
/// in order, and the KV at each call's last state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_store_each_change_once() {
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let texts: Vec<Vec<String>> = (0..4)
            .map(|c| {
                (0..10)
                    .map(|n| {
                        format!(r#"{{"id":"c{c}","state":"Established","userData":{{"N":{n}}}}}"#)
                    })
                    .collect()
            })
            .collect();
        let items = |texts: &Vec<Vec<String>>| {
            let mut out = Vec::new();
            for n in 0..10 {
                for (c, t) in texts.iter().enumerate() {
                    let before = (n > 0).then(|| t[n - 1].as_str());
                    out.push(item(&format!("c{c}"), before, Some(&t[n])));
                }
            }
            out
        };
        async fn run(nats: &NatsServer, replica: &str, items: Vec<ChangeItem>) -> usize {
            let mut w = writer(nats, replica, "jdoe").await;
            let mut published = 0;
            for i in items {
                if matches!(write(&mut w, i).await, Written::Published { .. }) {
                    published += 1;
                }
            }
            published
        }
        let (pa, pb) = tokio::join!(
            run(&nats, "a", items(&texts)),
            run(&nats, "b", items(&texts))
        );
        assert_eq!(pa + pb, 40, "a {pa}, b {pb}");
        let js = js(&nats).await;
        let stored = stored(&js).await;
        assert_eq!(stored.len(), 40);
        let kv = js.get_key_value(BUCKET).await.unwrap();
        for (c, t) in texts.iter().enumerate() {
            let subject = CallAddress::new("jdoe", &format!("c{c}")).unwrap().subject;
            let states: Vec<&str> = stored
                .iter()
                .filter(|m| m.subject == subject)
                .map(|m| m.state.as_str())
                .collect();
            let want: Vec<String> = t.iter().map(|x| state_fingerprint(Some(x))).collect();
            assert_eq!(states, want, "{subject}");
            let key = CallAddress::new("jdoe", &format!("c{c}")).unwrap().key;
            let v = kv.get(&key).await.unwrap().unwrap();
            assert_eq!(std::str::from_utf8(&v).unwrap(), t[9]);
        }
    })
    .await;
}

/// A catch-up of a replica that restarted finds the call as the stream last has it and
/// publishes nothing; one that differs (the call changed while no replica ran) is published
/// once it has settled, as the step from the stream's last state.
#[tokio::test]
async fn a_catch_up_is_held_against_the_stream_not_against_an_empty_store() {
    within("the test", Duration::from_secs(30), async {
        let nats = nats_server().await;
        let a = r#"{"id":"c1","state":"Established","userData":{"X":"1"}}"#;
        let b = r#"{"id":"c1","state":"Held","userData":{"X":"1"}}"#;
        let mut first = writer(&nats, "first", "jdoe").await;
        assert!(matches!(
            write(&mut first, item("c1", None, Some(a))).await,
            Written::Published { .. }
        ));
        // A restarted replica: empty store, so its catch-up says "new".
        let mut restarted = writer(&nats, "restarted", "jdoe").await;
        let catch_up = |text: &str| {
            let change = change_between("c1", None, Some(text), ChangeOrigin::CatchUp, None);
            ChangeItem::new(change, Some(Arc::from(text)))
        };
        assert!(matches!(
            write(&mut restarted, catch_up(a)).await,
            Written::Duplicate { .. }
        ));
        let mut again = writer(&nats, "again", "jdoe").await;
        let started = Instant::now();
        let mut held = catch_up(b);
        let mut hold_seen = false;
        let outcome = loop {
            match within(
                "a write",
                Duration::from_secs(10),
                again.write(&mut held, &|| false),
            )
            .await
            .unwrap()
            {
                Written::Hold { until } => {
                    hold_seen = true;
                    tokio::time::sleep_until(until).await;
                }
                other => break other,
            }
        };
        assert!(hold_seen, "a differing catch-up settles first");
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(
            matches!(outcome, Written::Published { seq: 2 }),
            "{outcome:?}"
        );
        let js = js(&nats).await;
        let stored = stored(&js).await;
        assert_eq!(stored.len(), 2);
        // The step from the stream's last state (Established → Held), not "new".
        let p = &stored[1].payload;
        assert_eq!(p["origin"], "catchUp");
        assert!(p.get("new").is_none(), "{p}");
        assert_eq!(p["state"]["from"], "Established");
        assert_eq!(p["state"]["to"], "Held");
    })
    .await;
}

/// One agent's bad notification stays its own: a call's user data nested over the
/// library's limit is refused (a gap, then a heal from the server's calls that publishes the
/// call as GWS lists it), nothing aborts, no task has to be restarted, and the other agent
/// publishes every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agents_notification_over_the_limit_is_healed_and_the_others_go_on() {
    const N: usize = 2;
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let sim = sim(N, SCENARIO).await;
        let bridge = Bridge::start(config(&sim, &nats, N, "replica-a"))
            .await
            .expect("bridge");
        wait_connected(&bridge, N).await;
        let sick = agent(0);
        until("agent 0 has a call", Duration::from_secs(20), || {
            !sim.gws().call_ids_for(&sick).is_empty()
        })
        .await;
        let id = sim.gws().call_ids_for(&sick)[0].clone();
        let deep = format!("{}1{}", r#"{"k":"#.repeat(1_000), "}".repeat(1_000));
        // The call may have moved on meanwhile (completed): then the next call gets it.
        let mut attached = sim
            .gws()
            .attach_user_data(
                &id,
                vec![("Deep".into(), RawValue::from_string(deep.clone()).unwrap())],
            )
            .is_ok();
        while !attached {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(id) = sim.gws().call_ids_for(&sick).first() {
                attached = sim
                    .gws()
                    .attach_user_data(
                        id,
                        vec![("Deep".into(), RawValue::from_string(deep.clone()).unwrap())],
                    )
                    .is_ok();
            }
        }
        until("a gap and a heal", Duration::from_secs(20), || {
            let s = bridge.metrics().snapshot();
            s.gaps >= 1 && s.heals >= 1
        })
        .await;
        // The other agent publishes all of its changes.
        let js = js(&nats).await;
        let healthy = agent(1);
        within(
            "the other agent's changes",
            Duration::from_secs(30),
            async {
                loop {
                    let n = stored(&js)
                        .await
                        .iter()
                        .filter(|m| m.payload["agent"] == healthy.as_str())
                        .count();
                    if n >= CHANGES_PER_AGENT {
                        assert_eq!(n, CHANGES_PER_AGENT);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        )
        .await;
        // The heal published the call as GWS lists it, deep user data and all.
        // The heals published what the refused notifications said, as GWS lists the call
        // (held for the settle time first, as every catch-up and heal change is).
        within("agent 0's heal changes", Duration::from_secs(20), async {
            loop {
                let heals = stored(&js)
                    .await
                    .into_iter()
                    .filter(|m| {
                        m.payload["agent"] == sick.as_str() && m.payload["origin"] == "heal"
                    })
                    .count();
                if heals > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        let s = bridge.metrics().snapshot();
        assert_eq!(s.agent_restarts, 0, "{s:?}");
        assert_eq!(s.sessions_in(SessionState::Connected), N as i64, "{s:?}");
        bridge.shutdown().await;
    })
    .await;
}

/// nats-server 2.9 (Debian 12's package), the oldest the bridge supports: the layout is made
/// without the account-info request whose 2.9 reply the NATS client cannot read, and two
/// replicas publish every change exactly once, as on the pinned release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_nats_server_2_9_replicas_publish_every_change_exactly_once() {
    const N: usize = 2;
    within("the test", Duration::from_secs(90), async {
        let nats = match NatsServer::start_2_9().await {
            Ok(server) => server,
            Err(e) => panic!("nats-server 2.9 must start for this test: {e}"),
        };
        let TwoReplicas {
            a,
            b,
            observers,
            want,
            ..
        } = two_replicas_publish_every_change(&nats, N, false).await;
        let (sa, sb) = (a.metrics().snapshot(), b.metrics().snapshot());
        assert_eq!(sa.published + sb.published, want, "{sa:?} {sb:?}");
        let (ra, rb) = tokio::join!(a.shutdown(), b.shutdown());
        assert_eq!((ra.unwritten, rb.unwritten), (0, 0));
        for o in observers {
            o.abort();
        }
    })
    .await;
}

/// Whether every call the simulator has for the first `n` agents is in the KV as the
/// simulator has it (but for `duration`), and every call an observer saw end is gone.
async fn kv_equals_sim(
    js: &jetstream::Context,
    sim: &GwsSimServer,
    observed: &Observed,
    n: usize,
) -> bool {
    let Ok(kv) = js.get_key_value(BUCKET).await else {
        return false;
    };
    let strip = |t: &str| {
        let mut v: serde_json::Value = serde_json::from_str(t).unwrap();
        v.as_object_mut().unwrap().remove("duration");
        v
    };
    for i in 0..n {
        for id in sim.gws().call_ids_for(&agent(i)) {
            let key = CallAddress::new(&agent(i), &id).unwrap().key;
            let Ok(Some(value)) = kv.get(&key).await else {
                return false;
            };
            let Some(now) = sim.gws().call_json(&id) else {
                continue; // it ended meanwhile
            };
            if strip(std::str::from_utf8(&value).unwrap()) != strip(&now) {
                return false;
            }
        }
    }
    let ended: Vec<(String, String)> = observed
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(agent, seen)| {
            seen.iter()
                .filter(|s| s.change["removed"] == serde_json::json!(true))
                .map(|s| (agent.clone(), s.call_id.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    for (agent, id) in ended {
        let key = CallAddress::new(&agent, &id).unwrap().key;
        if !matches!(kv.get(&key).await, Ok(None)) {
            return false;
        }
    }
    true
}

async fn metrics_text(http: &reqwest::Client, addr: std::net::SocketAddr) -> String {
    let reply = http.get(format!("http://{addr}/metrics")).send().await;
    reply.unwrap().text().await.unwrap()
}

async fn healthz(http: &reqwest::Client, addr: std::net::SocketAddr) -> serde_json::Value {
    let reply = http.get(format!("http://{addr}/healthz")).send().await;
    serde_json::from_str(&reply.unwrap().text().await.unwrap()).unwrap()
}

/// The simulator grants the acknowledged-messages extension and a middlebox between it and
/// the bridge resets every reply carrying a call notification (the server replays the same
/// batch after each cut: nothing would ever arrive). `/healthz` says `degraded` naming the
/// agents, the stale gauge counts them, and the KV still comes to equal the simulator's
/// calls through the feeds' reads while the fault goes on; once it ends, `ok` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_that_never_get_through_are_published_from_reads_and_healthz_is_degraded() {
    const N: usize = 2;
    within("the test", Duration::from_secs(90), async {
        let nats = nats_server().await;
        let mut sim_config = GwsServerConfig::new(agent(0), PASSWORD);
        for i in 1..N {
            sim_config.gws = sim_config.gws.with_user(agent(i), PASSWORD);
        }
        sim_config.scenario = Some(parse_scenario(SCENARIO).expect("scenario"));
        sim_config.sim.ack_extension = true;
        let sim = GwsSimServer::start(sim_config).await.expect("simulator");
        let (observed, observers) = observe(&sim, N).await;
        let proxy = gws_cometd_test_support::fault_proxy::FaultProxy::start(sim.addr())
            .await
            .unwrap();
        proxy.reset_replies_containing(Some(b"CallStateChangeMessage"));
        let mut config = BridgeConfig::new(format!("http://{}", proxy.addr()), agents(N), nats.url());
        config.max_network_delay = Duration::from_secs(1);
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        config.settle = Duration::from_millis(200);
        let bridge = Bridge::start(config).await.expect("bridge");
        let addr = bridge.metrics_addr().unwrap();
        let http = reqwest::Client::new();
        let started = Instant::now();
        let degraded = within("healthz degraded", Duration::from_secs(20), async {
            loop {
                let h = healthz(&http, addr).await;
                if h["status"] == "degraded" {
                    return h;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        let degraded_after = started.elapsed();
        assert!(!degraded["stale"].as_array().unwrap().is_empty(), "{degraded}");
        assert!(bridge.metrics().snapshot().stale_agents >= 1);
        let text = metrics_text(&http, addr).await;
        assert!(text.contains("gws_bridge_oldest_staleness_seconds"), "{text}");
        // The scenario ends 5.1 s after the sessions subscribed; then the KV must come to
        // equal the simulator through reads alone, the fault still on.
        tokio::time::sleep(Duration::from_secs(6).saturating_sub(started.elapsed())).await;
        let js = js(&nats).await;
        let js_ref = &js;
        let caught_up = Instant::now();
        within("the KV equal to the simulator under the fault", Duration::from_secs(30), async {
            while !kv_equals_sim(js_ref, &sim, &observed, N).await {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        let took = caught_up.elapsed();
        assert!(proxy.stats().cuts >= 1);
        proxy.reset_replies_containing(None);
        within("healthz ok again", Duration::from_secs(15), async {
            loop {
                if healthz(&http, addr).await["status"] == "ok" {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert_eq!(bridge.metrics().snapshot().stale_agents, 0);
        println!(
            "FAULT-SUITE bridge, every notification reply reset: /healthz degraded {degraded_after:.1?} after the start, KV equal to the simulator {took:.1?} after the scenario's end (fault on)",
        );
        let report = bridge.shutdown().await;
        assert_eq!(report.unwritten, 0);
        for o in observers {
            o.abort();
        }
    })
    .await;
}

/// The agents' feeds on the Workspace API v3 (the simulator serves both generations): the
/// stream holds exactly the changes a v2 observer saw, in v2's change format, and the KV
/// the calls as the v3 feeds got them. (The `Gws-State` fingerprints differ from a v2
/// bridge's: they are of the call's text as the server sent it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_on_the_workspace_api_v3_publish_the_same_changes() {
    const N: usize = 2;
    within("the test", Duration::from_secs(60), async {
        let nats = nats_server().await;
        let sim = sim(N, SCENARIO).await;
        let (observed, observers) = observe(&sim, N).await;
        let mut config = config(&sim, &nats, N, "replica-v3");
        config.gws_api.api = gws_cometd::gws::Api::V3;
        let bridge = Bridge::start(config).await.expect("bridge");
        wait_connected(&bridge, N).await;
        let js = js(&nats).await;
        let want = (N * CHANGES_PER_AGENT) as u64;
        wait_stream_len(&js, want, Duration::from_secs(30)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stored = stored(&js).await;
        assert_eq!(stored.len() as u64, want);
        for (agent, seen) in observed.lock().unwrap().iter() {
            for s in seen {
                let subject = CallAddress::new(agent, &s.call_id).unwrap().subject;
                let n = seen.iter().filter(|o| o.call_id == s.call_id).count();
                let got: Vec<serde_json::Value> = stored
                    .iter()
                    .filter(|m| m.subject == subject)
                    .map(|m| {
                        let mut p = m.payload.clone();
                        p.as_object_mut().unwrap().remove("agent");
                        p
                    })
                    .collect();
                let want: Vec<&serde_json::Value> = seen
                    .iter()
                    .filter(|o| o.call_id == s.call_id)
                    .map(|o| &o.change)
                    .collect();
                assert_eq!(got.len(), n, "{subject}");
                assert!(
                    got.iter().zip(&want).all(|(g, w)| g == *w),
                    "{subject}: {got:?} vs {want:?}"
                );
            }
        }
        let kv = js.get_key_value(BUCKET).await.expect("bucket");
        let mut live = 0;
        for i in 0..N {
            for id in sim.gws().call_ids_for(&agent(i)) {
                let key = CallAddress::new(&agent(i), &id).unwrap().key;
                let value = kv.get(&key).await.unwrap().expect("a live call in the KV");
                let text = std::str::from_utf8(&value).unwrap();
                // The call as the v3 feed got it: user data as a typed list.
                assert!(text.contains(r#""userData":["#), "{text}");
                live += 1;
            }
        }
        assert!(live > 0);
        assert_eq!(bridge.shutdown().await.unwritten, 0);
        for o in observers {
            o.abort();
        }
    })
    .await;
}
