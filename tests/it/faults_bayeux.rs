//! The fault suite at the Bayeux level: the raw [`Client`] behind the fault-injecting proxy of
//! test-support's `fault_proxy` on 127.0.0.1, in front of the official CometD Node.js server
//! (`cometd-nodejs-server`, started by test-support's `cometd_node`) or the project's simulator
//! (`SimServer`, feature `sim`). The client asks for the acknowledged-messages extension (its
//! default); the server grants it or not (`NodeOptions::ack`, `SimConfig::ack_extension`).
//!
//! | test | what it shows |
//! |---|---|
//! | `with_ack_no_fault_loses_duplicates_or_reorders_a_message` | numbered messages at 200 msg/s through the schedule of test-support's `fault_plan` (resets, cut replies RST and FIN, a stall past the deadline, a 3 s outage, latency, low bandwidth) against Node with the extension: nothing lost, duplicated or reordered, no gap reported |
//! | `without_ack_every_loss_lies_within_a_reported_gap` | the same without the extension: messages are lost, and each run of losses is explained by a gap event reported no later than the next message; nothing is duplicated (what a subscriber got before a cut is never handed again) or reordered |
//! | `the_simulator_with_ack_*`, `the_simulator_without_ack_*` | the same two against the simulator |
//! | `after_a_15_s_outage_messages_flow_again_within_3_s` | the network refuses connections for 15 s (longer than the server keeps the session): the first message after the outage arrives ≤ 3 s after it ends |
//! | `a_multi_megabyte_reply_on_a_slow_link_is_never_abandoned` | a 2 MB backlog reply through a 200 KB/s link, with a max network delay of 1 s: every message arrives, no timeout, no gap |
//! | `one_message_over_the_limit_is_a_gap_and_the_rest_of_a_4_mb_reply_arrives` | a 4 MB backlog reply is read, not refused; its one message over `max_message_bytes` is a `MessageTooLarge` gap |
//! | `with_ack_replies_cut_for_longer_than_max_interval_do_not_cost_a_live_session` | with ack, replies cut for longer than `maxInterval` (each after its head) keep the same session: nothing lost or duplicated |
//! | `the_checker_*` | the loss/gap checker itself, on made-up logs: it can fail |
//!
//! Figures are printed as `FAULT-SUITE` lines: `cargo test --test it faults_bayeux --
//! --nocapture | grep FAULT-SUITE`; `FAULT_SUITE_TRACE=1` also prints each schedule's log
//! (runs of messages, gaps, outages, phase boundaries). Under `CI=true` a Node server that
//! cannot start fails the test (see test-support's `cometd_node`). Every test is bounded in real
//! time.

use gws_cometd_test_support::cometd_node;
use gws_cometd_test_support::fault_plan;
use gws_cometd_test_support::fault_proxy;
use gws_cometd_test_support::within_real;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cometd_node::{CometdNode, NodeOptions, Numbered};
use fault_plan::{run_phase, schedule, Fault, Row};
use fault_proxy::FaultProxy;
use futures::StreamExt;
use gws_cometd::bayeux::{GapCause, SessionEvent};
use gws_cometd::transport::HttpTransport;
use gws_cometd::{Client, ClientBuilder, ClientEvent, EventStream, Subscriber};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

const CHANNEL: &str = "/seq";
/// Messages per burst, a burst every `TICK`: 200 msg/s.
const BURST: usize = 50;
const TICK: Duration = Duration::from_millis(250);
/// Bytes of each message's data.
const SIZE: usize = 100;
/// The Node server holds a connect this long (ms): a stall of 4 s outlasts a connect's
/// deadline (2 s + the max network delay).
const HOLD_MS: u64 = 2_000;
const MAX_NETWORK_DELAY: Duration = Duration::from_secs(1);
/// How late after the next message a gap may be observed and still explain a loss.
const GAP_LAG: Duration = Duration::from_millis(500);
/// Clean traffic after each phase, once messages flow again.
const SETTLE: Duration = Duration::from_secs(1);
/// How long after a fault's end the stream may take to be live again before the next
/// phase starts anyway (the check then fails on the recovery time).
const LIVE_AGAIN: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// What the consumer sees, and the checker.

/// One thing the consumer saw, in the order it saw it.
#[derive(Debug, Clone)]
enum Seen {
    Message {
        seq: u64,
        at: Instant,
    },
    Gap {
        cause: GapCause,
        at: Instant,
    },
    /// `ConnectionLost`.
    Outage {
        at: Instant,
    },
    Rehandshaken,
    /// The server granted the acknowledged-messages extension.
    Acknowledged,
    /// The event stream lagged: events were lost, so the check cannot be trusted.
    Lagged,
}

/// Reads the subscriber and the client's events into one log until stopped. Messages are
/// taken first: an event is looked at only when no message is ready, so a gap is never
/// logged before a message the driver handed out before it (see [`check`]).
struct Consumer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<Seen>>,
    /// The highest `seq` received so far, plus one (0: none yet).
    high: Arc<AtomicU64>,
    /// When the first message with `seq >= watch` arrived (set by [`Consumer::watch_from`]).
    first_from: Arc<std::sync::Mutex<HashMap<u64, Instant>>>,
}

impl Consumer {
    fn start(mut sub: Subscriber, mut events: EventStream) -> Consumer {
        let (stop, mut stopped) = oneshot::channel();
        let high = Arc::new(AtomicU64::new(0));
        let first_from: Arc<std::sync::Mutex<HashMap<u64, Instant>>> = Arc::default();
        let (h, firsts) = (high.clone(), first_from.clone());
        let task = tokio::spawn(async move {
            let mut log = Vec::new();
            loop {
                tokio::select! {
                    biased;
                    m = sub.next() => {
                        let Some(m) = m else { break };
                        let data = m.data.as_ref().map_or("null", |d| d.get());
                        let v: serde_json::Value = serde_json::from_str(data).expect("JSON data");
                        let seq = v["seq"].as_u64().expect("a numbered message");
                        let at = Instant::now();
                        h.fetch_max(seq + 1, Ordering::SeqCst);
                        let mut f = firsts.lock().unwrap();
                        for (from, first) in f.iter_mut() {
                            if seq >= *from && *first > at {
                                *first = at;
                            }
                        }
                        drop(f);
                        log.push(Seen::Message { seq, at });
                    }
                    ev = events.next() => {
                        let at = Instant::now();
                        match ev {
                            Some(ClientEvent::Session(SessionEvent::Gap { cause })) => log.push(Seen::Gap { cause, at }),
                            Some(ClientEvent::Session(SessionEvent::ConnectionLost { .. })) => log.push(Seen::Outage { at }),
                            Some(ClientEvent::Session(SessionEvent::Rehandshaken { .. })) => log.push(Seen::Rehandshaken),
                            Some(ClientEvent::Session(SessionEvent::AcknowledgedMessages)) => log.push(Seen::Acknowledged),
                            Some(ClientEvent::Lagged { .. }) => log.push(Seen::Lagged),
                            Some(ClientEvent::Terminated { error }) => panic!("the client stopped: {error}"),
                            Some(_) => {}
                            None => break,
                        }
                    }
                    _ = &mut stopped => break,
                }
            }
            log
        });
        Consumer {
            stop,
            task,
            high,
            first_from,
        }
    }

    /// From now on, note when the first message with `seq >= from` arrives.
    fn watch_from(&self, from: u64) {
        // A time far ahead stands for "not yet".
        let never = Instant::now() + Duration::from_secs(3600);
        self.first_from.lock().unwrap().insert(from, never);
    }

    /// When the first message with `seq >= from` arrived, if it has.
    fn first_from(&self, from: u64) -> Option<Instant> {
        let now = Instant::now();
        let f = self.first_from.lock().unwrap();
        f.get(&from).copied().filter(|at| *at <= now)
    }

    /// Waits (at most `limit`) until `seq` `last` has arrived, then stops and returns the log.
    async fn finish(self, last: u64, limit: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + limit;
        while self.high.load(Ordering::SeqCst) <= last && Instant::now() < deadline {
            sleep(Duration::from_millis(20)).await;
        }
        let _ = self.stop.send(());
        self.task.await.expect("the consumer does not panic")
    }
}

/// A run of lost messages: `seqs` never arrived; `position` messages had arrived before the
/// hole, and the message after it arrived at `closed` (`None`: nothing came after).
#[derive(Debug, Clone, PartialEq)]
struct Loss {
    seqs: std::ops::Range<u64>,
    position: usize,
    closed: Option<Instant>,
}

/// What a log says about `0..published`.
#[derive(Debug, Default)]
struct Verdict {
    /// Each `seq` received more than once (once per extra copy).
    duplicated: Vec<u64>,
    /// Each `seq` received after a higher one.
    reordered: Vec<u64>,
    /// The runs never received.
    losses: Vec<Loss>,
    /// Losses no gap explains: a gap observed at or after the hole's position (it cannot
    /// be observed before: the consumer takes messages first) and at most [`GAP_LAG`] after
    /// the message that closed it; each gap explains one loss.
    unexplained: Vec<Loss>,
    /// Gap events, with how many messages had arrived before each.
    gaps: Vec<(usize, Instant, GapCause)>,
    lagged: bool,
}

impl Verdict {
    fn lost(&self) -> u64 {
        self.losses.iter().map(|l| l.seqs.end - l.seqs.start).sum()
    }
}

/// Checks a log against the messages `0..published`.
fn check(log: &[Seen], published: u64) -> Verdict {
    let mut v = Verdict::default();
    let mut count: HashMap<u64, u32> = HashMap::new();
    for s in log {
        if let Seen::Message { seq, .. } = s {
            *count.entry(*seq).or_default() += 1;
        }
    }
    let received = |seq: u64| count.contains_key(&seq);
    let mut position = 0;
    let mut next = 0; // one past the highest seq seen
    let mut seen_once: HashMap<u64, ()> = HashMap::new();
    for s in log {
        match s {
            Seen::Message { seq, at } => {
                if seen_once.insert(*seq, ()).is_some() {
                    v.duplicated.push(*seq);
                } else if *seq < next {
                    v.reordered.push(*seq);
                }
                if *seq > next {
                    push_losses(&mut v.losses, next..*seq, position, Some(*at), &received);
                }
                next = next.max(seq + 1);
                position += 1;
            }
            Seen::Gap { cause, at } => v.gaps.push((position, *at, cause.clone())),
            Seen::Lagged => v.lagged = true,
            _ => {}
        }
    }
    if next < published {
        push_losses(&mut v.losses, next..published, position, None, &received);
    }
    let mut gaps = v.gaps.iter().peekable();
    for loss in &v.losses {
        // Gaps observed before this hole explain nothing here (or later).
        while gaps.next_if(|(q, _, _)| *q < loss.position).is_some() {}
        let explained = gaps
            .next_if(|(_, at, _)| loss.closed.is_none_or(|closed| *at <= closed + GAP_LAG))
            .is_some();
        if !explained {
            v.unexplained.push(loss.clone());
        }
    }
    v
}

/// Adds the seqs of `range` never received as runs of losses.
fn push_losses(
    losses: &mut Vec<Loss>,
    range: std::ops::Range<u64>,
    position: usize,
    closed: Option<Instant>,
    received: &impl Fn(u64) -> bool,
) {
    let mut start = None;
    for seq in range.clone().chain([range.end]) {
        let missing = seq < range.end && !received(seq);
        match (start, missing) {
            (None, true) => start = Some(seq),
            (Some(s), false) => {
                losses.push(Loss {
                    seqs: s..seq,
                    position,
                    closed,
                });
                start = None;
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Setup.

async fn node(ack: bool, timeout_ms: u64) -> CometdNode {
    CometdNode::start_with(NodeOptions {
        timeout_ms: Some(timeout_ms),
        ack,
        ..NodeOptions::default()
    })
    .await
    .expect("the CometD Node.js server starts")
}

async fn proxy_to(node: &CometdNode) -> FaultProxy {
    let upstream = SocketAddr::from(([127, 0, 0, 1], node.port()));
    FaultProxy::start(upstream).await.expect("the proxy starts")
}

/// A client through `proxy`, as the brief has it: the HTTP transport built by hand.
fn client(proxy: &FaultProxy, configure: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Client {
    let transport = HttpTransport::builder(proxy.url("/cometd"))
        .build()
        .expect("transport");
    configure(ClientBuilder::new(transport).max_network_delay(MAX_NETWORK_DELAY))
        .build()
        .expect("client")
}

/// Subscribes `CHANNEL` and waits until the server has the subscription and holds the
/// client's connect. Returns the subscriber and the events from the start.
async fn subscribed(node: &CometdNode, client: &Client) -> (Subscriber, EventStream) {
    let events = client.events();
    let sub = client.subscribe(CHANNEL).await.expect("subscribe");
    node.wait_for(
        "a subscribed session with a held connect",
        Duration::from_secs(10),
        |s| s.subscribers(CHANNEL) == 1 && s.held == 1,
    )
    .await
    .expect("subscribed");
    (sub, events)
}

/// The server a schedule runs against (one per test: the size difference is no matter).
#[allow(clippy::large_enum_variant)]
enum Peer {
    Node(CometdNode),
    /// The project's own simulator, on its plain `/cometd` endpoint.
    Sim(gws_cometd_sim::SimServer),
}

impl Peer {
    async fn start(on_node: bool, ack: bool) -> Peer {
        if on_node {
            return Peer::Node(node(ack, HOLD_MS).await);
        }
        {
            let config = gws_cometd_sim::SimConfig {
                long_poll_timeout: Duration::from_millis(HOLD_MS),
                ack_extension: ack,
                ..gws_cometd_sim::SimConfig::default()
            };
            let sim = gws_cometd_sim::SimServer::start(config)
                .await
                .expect("the simulator starts");
            Peer::Sim(sim)
        }
    }

    fn as_node(&self) -> &CometdNode {
        match self {
            Peer::Node(node) => node,
            Peer::Sim(_) => panic!("not the Node server"),
        }
    }

    fn name(&self, ack: bool) -> &'static str {
        match (self, ack) {
            (Peer::Node(_), true) => "node+ack",
            (Peer::Node(_), false) => "node",
            (Peer::Sim(_), true) => "sim+ack",
            (Peer::Sim(_), false) => "sim",
        }
    }

    async fn proxy(&self) -> FaultProxy {
        let upstream = match self {
            Peer::Node(node) => SocketAddr::from(([127, 0, 0, 1], node.port())),
            Peer::Sim(sim) => sim.addr(),
        };
        FaultProxy::start(upstream).await.expect("the proxy starts")
    }

    /// Subscribes `CHANNEL` and waits until the server has the subscription.
    async fn subscribed(&self, client: &Client) -> (Subscriber, EventStream) {
        match self {
            Peer::Node(node) => subscribed(node, client).await,
            Peer::Sim(sim) => {
                let events = client.events();
                let sub = client.subscribe(CHANNEL).await.expect("subscribe");
                let limit = Duration::from_secs(10);
                assert!(
                    sim.wait_for_subscribers(CHANNEL, 1, limit).await,
                    "subscribed"
                );
                (sub, events)
            }
        }
    }

    /// Publishes `{"seq":i,"pad":"..."}` for i in `start..start + count`, in order.
    async fn publish(&self, start: u64, count: usize) {
        match self {
            Peer::Node(node) => {
                let run = Numbered {
                    start,
                    count,
                    size: SIZE,
                    big: None,
                };
                node.publish_seq(CHANNEL, run)
                    .await
                    .expect("control publish");
            }
            Peer::Sim(sim) => {
                for seq in start..start + count as u64 {
                    let base = format!(r#"{{"seq":{seq},"pad":""}}"#).len();
                    let pad = "x".repeat(SIZE.saturating_sub(base));
                    sim.publish_str(CHANNEL, &format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#));
                }
            }
        }
    }
}

/// Publishes numbered bursts of `BURST` every `TICK` until `until`; `next` is the next seq.
async fn publish_until(node: &Peer, next: &mut u64, until: Instant) {
    let mut tick = Instant::now();
    while tick < until {
        publish_burst(node, next).await;
        tick += TICK;
        sleep_until(tick.min(until)).await;
    }
}

/// Publishes numbered bursts every `TICK` until `phase` is over.
async fn publish_during(node: &Peer, next: &mut u64, phase: impl std::future::Future) {
    tokio::pin!(phase);
    let mut tick = Instant::now();
    loop {
        tokio::select! {
            _ = &mut phase => return,
            _ = sleep_until(tick) => {
                publish_burst(node, next).await;
                tick += TICK;
            }
        }
    }
}

async fn publish_burst(node: &Peer, next: &mut u64) {
    node.publish(*next, BURST).await;
    *next += BURST as u64;
}

/// Where a phase lies: the seqs published and the time from its start to the next phase's.
struct Window {
    fault: Fault,
    seqs: std::ops::Range<u64>,
    from: Instant,
    to: Instant,
    /// The first seq published after the fault was cleared, and when it was cleared.
    probe: (u64, Instant),
    /// Whether the proxy's counters show the fault acted.
    happened: bool,
}

/// Runs the whole schedule against the Node server (`on_node`) or the simulator, with or
/// without the extension; returns the rows, the verdict and the log.
async fn run_schedule(on_node: bool, ack: bool) -> (Vec<Row>, Verdict, Vec<Seen>) {
    let node = Peer::start(on_node, ack).await;
    let proxy = node.proxy().await;
    let client = client(&proxy, |b| b);
    let (sub, events) = node.subscribed(&client).await;
    let consumer = Consumer::start(sub, events);
    let mut next = 0;
    publish_until(&node, &mut next, Instant::now() + SETTLE).await;

    let mut windows = Vec::new();
    for phase in schedule() {
        let (from, first, before) = (Instant::now(), next, proxy.stats());
        publish_during(&node, &mut next, run_phase(&proxy, phase)).await;
        let cleared = Instant::now();
        let probe = next;
        consumer.watch_from(probe);
        // Each fault on its own: the next starts once the stream is live again (at most
        // `LIVE_AGAIN` after this one's end) and has been for `SETTLE`.
        let live = async {
            while consumer.first_from(probe).is_none() && cleared.elapsed() < LIVE_AGAIN {
                sleep(Duration::from_millis(10)).await;
            }
        };
        publish_during(&node, &mut next, live).await;
        publish_until(&node, &mut next, Instant::now() + SETTLE).await;
        windows.push(Window {
            fault: phase.fault,
            seqs: first..next,
            from,
            to: Instant::now(),
            probe: (probe, cleared),
            happened: phase.fault.happened(&before, &proxy.stats()),
        });
    }
    let recoveries: Vec<Option<Duration>> = windows
        .iter()
        .map(|w| consumer.first_from(w.probe.0).map(|at| at - w.probe.1))
        .collect();
    let log = consumer.finish(next - 1, Duration::from_secs(15)).await;
    client.disconnect().await;

    let verdict = check(&log, next);
    let server = node.name(ack);
    if std::env::var_os("FAULT_SUITE_TRACE").is_some() {
        trace(&log, &windows);
    }
    let rows = windows
        .iter()
        .zip(recoveries)
        .map(|(w, recovery)| {
            let in_seqs = |seq: &u64| w.seqs.contains(seq);
            let in_time = |at: &Instant| *at >= w.from && *at < w.to;
            assert!(w.happened, "{}: the proxy did not act", w.fault.name());
            Row {
                server: server.to_owned(),
                fault: w.fault.name().to_owned(),
                lost: Some(
                    verdict
                        .losses
                        .iter()
                        .flat_map(|l| l.seqs.clone())
                        .filter(in_seqs)
                        .count() as u64,
                ),
                duplicated: Some(verdict.duplicated.iter().filter(|s| in_seqs(s)).count() as u64),
                reordered: Some(verdict.reordered.iter().filter(|s| in_seqs(s)).count() as u64),
                gaps: verdict.gaps.iter().filter(|(_, at, _)| in_time(at)).count() as u64,
                outages: log
                    .iter()
                    .filter(|s| matches!(s, Seen::Outage { at } if in_time(at)))
                    .count() as u64,
                heals: 0,
                recovery,
            }
        })
        .collect();
    (rows, verdict, log)
}

/// Prints the log as runs of messages and the events between them, with times from the
/// first phase's start (`FAULT_SUITE_TRACE=1`).
fn trace(log: &[Seen], windows: &[Window]) {
    let t0 = windows[0].from;
    let ms = |at: Instant| {
        at.saturating_duration_since(t0).as_millis() as i128
            - t0.saturating_duration_since(at).as_millis() as i128
    };
    for w in windows {
        println!(
            "TRACE phase {} {}..{} ms, cleared at {} ms, seqs {:?}, probe {}",
            w.fault.name(),
            ms(w.from),
            ms(w.to),
            ms(w.probe.1),
            w.seqs,
            w.probe.0
        );
    }
    let mut run: Option<(u64, u64, Instant)> = None;
    for s in log {
        match s {
            Seen::Message { seq, at } => match &mut run {
                Some((_, last, _)) if *seq == *last + 1 => *last = *seq,
                _ => {
                    if let Some((a, b, t)) = run.take() {
                        println!("TRACE {:>6} ms messages {a}..={b}", ms(t));
                    }
                    run = Some((*seq, *seq, *at));
                }
            },
            other => {
                if let Some((a, b, t)) = run.take() {
                    println!("TRACE {:>6} ms messages {a}..={b}", ms(t));
                }
                match other {
                    Seen::Gap { cause, at } => println!("TRACE {:>6} ms gap: {cause}", ms(*at)),
                    Seen::Outage { at } => println!("TRACE {:>6} ms connection lost", ms(*at)),
                    other => println!("TRACE {other:?}"),
                }
            }
        }
    }
    if let Some((a, b, t)) = run {
        println!("TRACE {:>6} ms messages {a}..={b}", ms(t));
    }
}

fn print_rows(rows: &[Row]) {
    for row in rows {
        row.print();
    }
}

/// Each fault's end is followed by live traffic within the backoff cap (2 s) and a margin.
fn assert_recovered(rows: &[Row]) {
    for r in rows {
        assert!(
            r.recovery.is_some_and(|d| d <= Duration::from_secs(3)),
            "not live again within 3 s of the end of {}: {r:?}",
            r.fault
        );
    }
}

fn row(rows: &[Row], fault: Fault) -> &Row {
    rows.iter()
        .find(|r| r.fault == fault.name())
        .expect("every fault has a row")
}

// ---------------------------------------------------------------------------------------
// The scenarios.

/// With the extension: nothing lost, duplicated or reordered, and no gap.
async fn schedule_with_ack(on_node: bool) {
    let (rows, verdict, log) = run_schedule(on_node, true).await;
    print_rows(&rows);
    assert!(
        log.iter().any(|s| matches!(s, Seen::Acknowledged)),
        "the server with the extension grants it"
    );
    assert!(!verdict.lagged, "the event stream lagged");
    assert_eq!(verdict.lost(), 0, "lost: {:?}", verdict.losses);
    assert!(
        verdict.duplicated.is_empty(),
        "duplicated: {:?}",
        verdict.duplicated
    );
    assert!(
        verdict.reordered.is_empty(),
        "reordered: {:?}",
        verdict.reordered
    );
    assert!(
        verdict.gaps.is_empty(),
        "no gap with redelivery: {:?}",
        verdict.gaps
    );
    assert!(
        row(&rows, Fault::Stall).outages >= 1,
        "the stall outlasted a connect's deadline: {rows:?}"
    );
    assert_recovered(&rows);
}

/// Without it: every loss explained by a gap, nothing duplicated or reordered.
async fn schedule_without_ack(on_node: bool) {
    let (rows, verdict, log) = run_schedule(on_node, false).await;
    print_rows(&rows);
    assert!(
        !log.iter().any(|s| matches!(s, Seen::Acknowledged)),
        "a server without the extension does not grant it"
    );
    assert!(!verdict.lagged, "the event stream lagged");
    assert!(
        verdict.unexplained.is_empty(),
        "losses without a gap event: {:?}\nall gaps: {:?}",
        verdict.unexplained,
        verdict.gaps
    );
    assert!(
        verdict.duplicated.is_empty(),
        "duplicated: {:?}",
        verdict.duplicated
    );
    assert!(
        verdict.reordered.is_empty(),
        "reordered: {:?}",
        verdict.reordered
    );
    // A broken connect reply is a gap without redelivery: the faults that break one must
    // have been reported.
    for fault in [
        Fault::Reset,
        Fault::CutReset,
        Fault::CutClose,
        Fault::Stall,
        Fault::Refuse,
    ] {
        assert!(
            row(&rows, fault).gaps >= 1,
            "{}: no gap: {rows:?}",
            fault.name()
        );
    }
    assert_recovered(&rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_no_fault_loses_duplicates_or_reorders_a_message() {
    within_real("the test", Duration::from_secs(90), schedule_with_ack(true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ack_every_loss_lies_within_a_reported_gap() {
    within_real(
        "the test",
        Duration::from_secs(90),
        schedule_without_ack(true),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_with_ack_no_fault_loses_duplicates_or_reorders_a_message() {
    within_real(
        "the test",
        Duration::from_secs(90),
        schedule_with_ack(false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_without_ack_every_loss_lies_within_a_reported_gap() {
    within_real(
        "the test",
        Duration::from_secs(90),
        schedule_without_ack(false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_15_s_outage_messages_flow_again_within_3_s() {
    const OUTAGE: Duration = Duration::from_secs(15);
    within_real("the test", Duration::from_secs(60), async {
        let node = node(true, HOLD_MS).await;
        let proxy = proxy_to(&node).await;
        // The default backoff: the claim is about the client as it comes.
        let client = client(&proxy, |b| b);
        let (sub, events) = subscribed(&node, &client).await;
        let consumer = Consumer::start(sub, events);
        let mut next = 0u64;
        let one = |start| Numbered {
            start,
            count: 1,
            size: SIZE,
            big: None,
        };
        let started = Instant::now();
        while Instant::now() < started + Duration::from_secs(1) {
            node.publish_seq(CHANNEL, one(next)).await.unwrap();
            next += 1;
            sleep(Duration::from_millis(20)).await;
        }
        proxy.refuse_for(OUTAGE);
        let outage_end = Instant::now() + OUTAGE;
        // Publish on through the outage; once it is over, stop as soon as a message
        // published after its end has arrived.
        let mut after = None;
        while Instant::now() < outage_end + Duration::from_secs(8) {
            if Instant::now() >= outage_end && after.is_none() {
                after = Some(next);
                consumer.watch_from(next);
            }
            node.publish_seq(CHANNEL, one(next)).await.unwrap();
            next += 1;
            if after.is_some_and(|a| consumer.first_from(a).is_some()) {
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        assert!(after.is_some(), "the outage ended");
        // A little more traffic, which must all arrive.
        for _ in 0..25 {
            node.publish_seq(CHANNEL, one(next)).await.unwrap();
            next += 1;
            sleep(Duration::from_millis(20)).await;
        }
        let log = consumer.finish(next - 1, Duration::from_secs(10)).await;
        // Any message counts, whenever it was published.
        let (first_seq, first) = log
            .iter()
            .find_map(|s| match s {
                Seen::Message { seq, at } if *at >= outage_end => Some((*seq, *at)),
                _ => None,
            })
            .expect("messages arrive after the outage");
        let recovery = first - outage_end;
        let stats = proxy.stats();
        let verdict = check(&log, next);
        let rehandshakes = log
            .iter()
            .filter(|s| matches!(s, Seen::Rehandshaken))
            .count();
        Row {
            server: "node+ack".into(),
            fault: "refuse-15s".into(),
            lost: Some(verdict.lost()),
            duplicated: Some(verdict.duplicated.len() as u64),
            reordered: Some(verdict.reordered.len() as u64),
            gaps: verdict.gaps.len() as u64,
            outages: log.iter().filter(|s| matches!(s, Seen::Outage { .. })).count() as u64,
            heals: 0,
            recovery: Some(recovery),
        }
        .print();
        println!(
            "FAULT-SUITE recovery after a 15 s outage (node+ack): first message {} ms after the outage ended; {} connections refused; {} re-handshake(s)",
            recovery.as_millis(),
            stats.refused,
            rehandshakes,
        );
        assert!(stats.refused >= 3, "the outage refused the client's attempts: {stats:?}");
        assert!(
            recovery <= Duration::from_secs(3),
            "first message {recovery:?} after the outage"
        );
        // The outage outlasted the server's maxInterval: the session was lost, and so was
        // what it was sent meanwhile, and the client said so.
        assert!(rehandshakes >= 1, "{log:?}");
        assert!(
            verdict.unexplained.is_empty(),
            "unexplained {:?}; losses {:?}; gaps {:?}",
            verdict.unexplained,
            verdict.losses,
            verdict.gaps
        );
        assert!(verdict.duplicated.is_empty() && verdict.reordered.is_empty());
        // From the first message past the outage on, nothing is lost.
        assert!(
            verdict.losses.iter().all(|l| l.seqs.end <= first_seq),
            "lost after recovery: {:?}",
            verdict.losses
        );
        client.disconnect().await;
    })
    .await;
}

// The session gives up its clientId once it has been unconnected for longer than
// `timeout + interval + maxInterval`, as the server will have expired it by then. A server
// restarts its maxInterval clock whenever it writes a connect reply (cometd-nodejs-server:
// `_scheduleExpiration`), and a reply cut on the way was written: the client saw its success
// head. So "unconnected" counts from the last connect reply that began, and while every
// reply is cut (a flaky proxy) the session, and with the acknowledged-messages extension
// every message not yet acknowledged, is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_replies_cut_for_longer_than_max_interval_do_not_cost_a_live_session() {
    // Longer than timeout + interval + maxInterval (2 + 0 + 10 s: the server's default
    // maxInterval, which it does not advertise, so the client assumes the same); each cut
    // connect reaches the server at most the backoff cap (2 s) after the previous one, well
    // within maxInterval.
    const CUTTING: Duration = Duration::from_secs(14);
    within_real("the test", Duration::from_secs(60), async {
        let peer = Peer::start(true, true).await;
        let node = peer.as_node();
        let proxy = peer.proxy().await;
        let client = client(&proxy, |b| b);
        let (sub, events) = peer.subscribed(&client).await;
        let session = node.sessions().await.unwrap().ids;
        let consumer = Consumer::start(sub, events);
        let mut next = 0;
        publish_until(&peer, &mut next, Instant::now() + SETTLE).await;
        proxy.cut_every_reply(700, fault_proxy::Cut::Reset);
        publish_until(&peer, &mut next, Instant::now() + CUTTING).await;
        // Evidence: the server still has the first session when the cutting stops.
        let still_there = node.sessions().await.unwrap().ids;
        proxy.clear();
        let cuts = proxy.stats().cuts;
        publish_until(&peer, &mut next, Instant::now() + Duration::from_secs(3)).await;
        let log = consumer.finish(next - 1, Duration::from_secs(10)).await;
        let verdict = check(&log, next);
        let rehandshakes = log
            .iter()
            .filter(|s| matches!(s, Seen::Rehandshaken))
            .count();
        println!(
            "FAULT-SUITE every reply cut for {} s (node+ack): {cuts} cuts, {rehandshakes} re-handshake(s), lost {}, gaps {:?}",
            CUTTING.as_secs(),
            verdict.lost(),
            verdict.gaps.iter().map(|g| g.2.to_string()).collect::<Vec<_>>(),
        );
        assert!(cuts >= 4, "replies were cut: {cuts}");
        assert!(
            session.iter().all(|id| still_there.contains(id)),
            "the server kept the session: {session:?} among {still_there:?}"
        );
        assert_eq!(
            rehandshakes, 0,
            "the client gave up the session {session:?}, which the server still had ({still_there:?})"
        );
        assert_eq!(verdict.lost(), 0, "{:?}", verdict.losses);
        assert!(verdict.gaps.is_empty(), "{:?}", verdict.gaps);
        assert!(verdict.duplicated.is_empty() && verdict.reordered.is_empty());
        client.disconnect().await;
    })
    .await;
}

/// Publishes `count` messages of `size` bytes (one of them `big`) in one control request
/// while the client's connect is held, and reads them through `proxy`. Returns the log, the
/// time the read took, and the largest reply the server built (in messages).
async fn backlog(
    node: &CometdNode,
    client: &Client,
    count: usize,
    size: usize,
    big: Option<(u64, usize)>,
    limit: Duration,
) -> (Vec<Seen>, Duration, u64) {
    let (sub, events) = subscribed(node, client).await;
    let consumer = Consumer::start(sub, events);
    let run = Numbered {
        start: 0,
        count,
        size,
        big,
    };
    let started = Instant::now();
    node.publish_seq(CHANNEL, run)
        .await
        .expect("control publish");
    let log = consumer.finish(count as u64 - 1, limit).await;
    let took = started.elapsed();
    let stats = node.sessions().await.expect("sessions").stats;
    (log, took, stats.max_batch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_megabyte_reply_on_a_slow_link_is_never_abandoned() {
    const COUNT: usize = 2_000;
    const SIZE_1K: usize = 1_000;
    const RATE: u64 = 200_000;
    within_real("the test", Duration::from_secs(60), async {
        let node = node(true, HOLD_MS).await;
        let proxy = proxy_to(&node).await;
        let client = client(&proxy, |b| b);
        proxy.bandwidth(Some(RATE));
        let (log, took, max_batch) = backlog(
            &node,
            &client,
            COUNT,
            SIZE_1K,
            None,
            Duration::from_secs(40),
        )
        .await;
        let verdict = check(&log, COUNT as u64);
        let outages = log.iter().filter(|s| matches!(s, Seen::Outage { .. })).count();
        let bytes = proxy.stats().server_to_client;
        println!(
            "FAULT-SUITE slow link: {COUNT} messages of {SIZE_1K} B ({bytes} bytes from the server) at {RATE} B/s read in {} ms with a max network delay of {} ms; largest reply {max_batch} messages; lost {}, gaps {}, outages {outages}",
            took.as_millis(),
            MAX_NETWORK_DELAY.as_millis(),
            verdict.lost(),
            verdict.gaps.len(),
        );
        assert_eq!(verdict.lost(), 0, "{:?}", verdict.losses);
        assert!(verdict.duplicated.is_empty() && verdict.reordered.is_empty());
        assert!(verdict.gaps.is_empty(), "{:?}", verdict.gaps);
        assert_eq!(outages, 0, "no timeout: {log:?}");
        assert!(
            max_batch >= (COUNT as u64) * 9 / 10,
            "the backlog went in one reply (largest {max_batch})"
        );
        assert!(
            took > MAX_NETWORK_DELAY * 5,
            "the body took far longer than the max network delay ({took:?})"
        );
        client.disconnect().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_over_the_limit_is_a_gap_and_the_rest_of_a_4_mb_reply_arrives() {
    const COUNT: usize = 4_000;
    const LIMIT: usize = 64 * 1024;
    const BIG: u64 = 2_000;
    within_real("the test", Duration::from_secs(60), async {
        let node = node(true, HOLD_MS).await;
        let proxy = proxy_to(&node).await;
        let client = client(&proxy, |b| b.max_message_bytes(LIMIT));
        let (log, took, max_batch) = backlog(
            &node,
            &client,
            COUNT,
            1_000,
            Some((BIG, 100_000)),
            Duration::from_secs(30),
        )
        .await;
        let verdict = check(&log, COUNT as u64);
        println!(
            "FAULT-SUITE message limit: a reply of {max_batch} messages (~4 MB) read in {} ms; gaps {:?}; lost {:?}",
            took.as_millis(),
            verdict.gaps.iter().map(|g| &g.2).collect::<Vec<_>>(),
            verdict.losses.iter().map(|l| &l.seqs).collect::<Vec<_>>(),
        );
        assert!(max_batch >= (COUNT as u64) * 9 / 10, "one reply: {max_batch}");
        assert_eq!(
            verdict.losses,
            [Loss {
                seqs: BIG..BIG + 1,
                position: BIG as usize,
                closed: verdict.losses.first().and_then(|l| l.closed),
            }],
            "only the message over the limit is missing"
        );
        match &verdict.gaps[..] {
            [(_, _, GapCause::MessageTooLarge { size, limit })] => {
                assert_eq!(*limit, LIMIT);
                assert!(*size > LIMIT, "{size}");
            }
            other => panic!("one MessageTooLarge gap expected, got {other:?}"),
        }
        assert!(verdict.unexplained.is_empty(), "{:?}", verdict.unexplained);
        assert!(verdict.duplicated.is_empty() && verdict.reordered.is_empty());
        assert!(
            !log.iter().any(|s| matches!(s, Seen::Outage { .. })),
            "the reply was read to its end: {log:?}"
        );
        client.disconnect().await;
    })
    .await;
}

/// With the acknowledged-messages extension, a middlebox resets every reply that carries a
/// message for 8 s while 200 messages/s are published: the raw client, which keeps no state
/// to heal, receives nothing while it lasts and says so once (`ConnectionLost`, no
/// `Connected` until the end); the server replays the same growing batch after every cut.
/// When the fault ends, the batch arrives whole: nothing lost, nothing doubled, no gap. The
/// feed builds its staleness bound on exactly these events (`faults_gws`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_replies_that_never_get_through_freeze_the_raw_client_without_loss() {
    within_real("the test", Duration::from_secs(60), async {
        let peer = Peer::start(false, true).await;
        let proxy = peer.proxy().await;
        let client = client(&proxy, |b| b);
        let (sub, events) = peer.subscribed(&client).await;
        let consumer = Consumer::start(sub, events);
        let mut next = 0;
        publish_until(&peer, &mut next, Instant::now() + Duration::from_secs(1)).await;
        let fault_from = Instant::now();
        proxy.reset_replies_containing(Some(b"\"seq\""));
        publish_until(&peer, &mut next, fault_from + Duration::from_secs(8)).await;
        let fault_to = Instant::now();
        let cuts = proxy.stats().cuts;
        proxy.reset_replies_containing(None);
        publish_until(&peer, &mut next, Instant::now() + Duration::from_secs(1)).await;
        let log = consumer.finish(next - 1, Duration::from_secs(15)).await;
        let verdict = check(&log, next);
        let during = |at: &Instant| *at > fault_from + Duration::from_millis(500) && *at < fault_to;
        let received_during = log
            .iter()
            .filter(|s| matches!(s, Seen::Message { at, .. } if during(at)))
            .count();
        let outages = log
            .iter()
            .filter(|s| matches!(s, Seen::Outage { at } if *at >= fault_from && *at < fault_to))
            .count();
        println!(
            "FAULT-SUITE sim+ack raw client, every message reply reset for 8 s: {cuts} replies reset, \
             {received_during} messages received meanwhile, {outages} ConnectionLost, {} lost, {} \
             duplicated, {} gaps",
            verdict.lost(),
            verdict.duplicated.len(),
            verdict.gaps.len()
        );
        assert!(cuts >= 3, "the proxy reset replies: {cuts}");
        assert_eq!(received_during, 0, "nothing gets through while it lasts");
        assert_eq!(outages, 1, "said once: {log:?}");
        assert_eq!(verdict.lost(), 0, "{verdict:?}");
        assert!(verdict.duplicated.is_empty(), "{verdict:?}");
        assert!(verdict.gaps.is_empty(), "{verdict:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// The checker on made-up logs.

fn msgs(t0: Instant, seqs: &[u64]) -> Vec<Seen> {
    seqs.iter()
        .map(|&seq| Seen::Message {
            seq,
            at: t0 + Duration::from_millis(seq),
        })
        .collect()
}

fn gap(at: Instant) -> Seen {
    Seen::Gap {
        cause: GapCause::Rehandshake,
        at,
    }
}

#[test]
fn the_checker_finds_a_loss_without_a_gap() {
    let t0 = Instant::now();
    let log = msgs(t0, &[0, 1, 4, 5]);
    let v = check(&log, 6);
    assert_eq!(v.lost(), 2);
    assert_eq!(v.unexplained.len(), 1, "{v:?}");
    assert_eq!(v.unexplained[0].seqs, 2..4);
}

#[test]
fn the_checker_accepts_a_loss_after_a_gap_and_refuses_a_gap_before_it() {
    let t0 = Instant::now();
    // The gap is seen after message 1 and before 4: it explains 2..4.
    let mut log = msgs(t0, &[0, 1]);
    log.push(gap(t0 + Duration::from_millis(2)));
    log.extend(msgs(t0, &[4, 5]));
    assert!(check(&log, 6).unexplained.is_empty());

    // Seen before message 1 arrived: the hole opened after it, so it explains nothing.
    let mut log = msgs(t0, &[0]);
    log.push(gap(t0));
    log.extend(msgs(t0, &[1, 4, 5]));
    assert_eq!(check(&log, 6).unexplained.len(), 1);

    // One gap explains one run of losses, not two.
    let mut log = msgs(t0, &[0]);
    log.push(gap(t0));
    log.extend(msgs(t0, &[2, 4]));
    let v = check(&log, 5);
    assert_eq!(v.losses.len(), 2);
    assert_eq!(v.unexplained.len(), 1, "{v:?}");

    // A gap seen long after the message that closed the hole does not explain it.
    let mut log = msgs(t0, &[0, 1, 4]);
    log.push(gap(t0 + Duration::from_millis(4) + GAP_LAG * 2));
    assert_eq!(check(&log, 5).unexplained.len(), 1);
}

#[test]
fn the_checker_counts_duplicates_reorders_and_a_lost_tail() {
    let t0 = Instant::now();
    let log = msgs(t0, &[0, 1, 1, 3, 2, 4]);
    let v = check(&log, 7);
    assert_eq!(v.duplicated, [1]);
    assert_eq!(v.reordered, [2]);
    // 2 came late: not lost. 5 and 6 never came, and no gap says why.
    assert_eq!(v.losses.len(), 1);
    assert_eq!(v.losses[0].seqs, 5..7);
    assert_eq!(v.unexplained.len(), 1);
}
