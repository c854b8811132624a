//! The NATS JetStream facts the bridge's exactly-once design relies on, proven against a real
//! `nats-server` (test-support's `nats`), and what `bridge.rs` needs of that harness. Each
//! test says which part of the bridge depends on its fact; facts nothing here relies on are
//! not tested (what the bridge does itself is tested in `bridge.rs` and its unit tests).
//!
//! Server time is real time, so the one duplicate-window test waits about a second; every
//! wait here is bounded.

use gws_cometd_test_support::{nats, within};

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::context::{ContextBuilder, PublishErrorKind};
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;
use async_nats::{Client, ConnectOptions};
use bytes::Bytes;
use futures::StreamExt;
use gws_cometd_bridge::{escape_token, unescape_token};
use nats::NatsServer;

use crate::support::nats_server;
use tokio::time::{timeout, Instant};

/// Bound on any single wait in these tests that has no timeout of its own.
const STEP: Duration = Duration::from_secs(10);

/// A client that retries the connection every 50 ms after a disconnect.
async fn connect(server: &NatsServer) -> Client {
    ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}\n{}", server.url(), server.log()))
}

/// A JetStream context whose API requests and publish acks wait at most `ack_timeout`.
fn context(client: Client, ack_timeout: Duration) -> Context {
    ContextBuilder::new().timeout(ack_timeout).build(client)
}

fn stream_config(name: &str, subjects: &str, window: Duration) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        duplicate_window: window,
        ..Default::default()
    }
}

async fn create_stream(js: &Context, config: stream::Config) -> stream::Stream {
    let name = config.name.clone();
    js.create_stream(config)
        .await
        .unwrap_or_else(|e| panic!("creating stream {name}: {e}"))
}

async fn messages_in(stream: &mut stream::Stream) -> u64 {
    stream.info().await.expect("stream info").state.messages
}

fn with_id(payload: &str, id: &str) -> PublishMessage {
    PublishMessage::build()
        .payload(Bytes::from(payload.to_string()))
        .message_id(id)
}

async fn publish_acked(js: &Context, subject: &str, msg: PublishMessage) -> PublishAck {
    let ack = js
        .send_publish(subject.to_string(), msg)
        .await
        .unwrap_or_else(|e| panic!("publishing to {subject}: {e}"));
    ack.await
        .unwrap_or_else(|e| panic!("ack for {subject}: {e}"))
}

/// The `Nats-Msg-Id` of every message in the stream, in stream order.
async fn stored_ids(stream: &stream::Stream, count: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for seq in 1..=count {
        let msg = stream
            .get_raw_message(seq)
            .await
            .unwrap_or_else(|e| panic!("reading message {seq}: {e}"));
        let id = msg
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        ids.push(id);
    }
    ids
}

async fn wait_connected(client: &Client) {
    within("reconnect", STEP, async {
        while client.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The harness itself

/// The bridge needs JetStream, and the facts below are those of the pinned server version
/// (one that checks a publish's expectation before its id, see
/// `expected_last_subject_sequence_with_msg_id_is_a_single_write_cas`).
#[tokio::test]
async fn harness_serves_jetstream_on_a_free_port() {
    let server = nats_server().await;
    assert_ne!(server.port(), 0);
    assert!(server.url().starts_with("nats://127.0.0.1:"));
    let client = connect(&server).await;
    let info = client.server_info();
    if std::env::var_os(nats::BIN_ENV).is_none() {
        assert_eq!(info.version, nats::NATS_SERVER_VERSION, "{info:?}");
    }
    assert!(info.jetstream, "{info:?}");
    let js = context(client, Duration::from_secs(5));
    let mut stream = create_stream(&js, stream_config("SELF", "self.>", Duration::ZERO)).await;
    for i in 0..3 {
        let ack = publish_acked(
            &js,
            "self.a",
            PublishMessage::build().payload(format!("m{i}").into()),
        )
        .await;
        assert_eq!(ack.stream, "SELF");
        assert_eq!(ack.sequence, i + 1);
    }
    assert_eq!(messages_in(&mut stream).await, 3);
    let second = stream.get_raw_message(2).await.expect("message 2");
    assert_eq!(second.subject.as_str(), "self.a");
    assert_eq!(second.payload.as_ref(), b"m1");
    let log = server.log();
    assert!(log.contains("Server is ready"), "log:\n{log}");
    assert!(log.contains("Starting JetStream"), "log:\n{log}");
}

/// `bridge.rs`'s restart tests (`a_restarted_nats_server_loses_nothing_within_the_bound`,
/// `beyond_the_bound_changes_are_merged_per_call_and_reported`) rely on a killed and restarted
/// server answering on the same URL with its stream and KV as they were, and on a client
/// reconnecting by itself.
#[tokio::test]
async fn harness_kill_and_restart_keep_port_and_store() {
    let mut server = nats_server().await;
    let port = server.port();
    let client = connect(&server).await;
    let js = context(client.clone(), Duration::from_secs(5));
    create_stream(
        &js,
        stream_config("KEEP", "keep.>", Duration::from_secs(60)),
    )
    .await;
    for i in 0..5 {
        publish_acked(&js, "keep.x", with_id(&format!("v{i}"), &format!("k{i}"))).await;
    }
    let kv = bucket(&js, "keep_kv", 1).await;
    let revision = kv.put("agent.call", "kept".into()).await.expect("put");
    let first_pid = server.pid().expect("running");

    server.kill().await.expect("kill");
    assert_eq!(server.pid(), None);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts after SIGKILL"
    );

    server.restart().await.expect("restart");
    assert_eq!(server.port(), port);
    assert_ne!(server.pid(), Some(first_pid));
    // The old client reconnects by itself; a new one sees the same data.
    wait_connected(&client).await;
    let js2 = context(connect(&server).await, Duration::from_secs(5));
    let mut stream = js2.get_stream("KEEP").await.expect("stream after restart");
    assert_eq!(messages_in(&mut stream).await, 5);
    assert_eq!(
        stored_ids(&stream, 5).await,
        ["k0", "k1", "k2", "k3", "k4"].map(String::from)
    );
    let last = stream.get_raw_message(5).await.expect("message 5");
    assert_eq!(last.payload.as_ref(), b"v4");
    let kv = js2
        .get_key_value("keep_kv")
        .await
        .expect("bucket after restart");
    let entry = kv.entry("agent.call").await.expect("entry").expect("kept");
    assert_eq!(
        (entry.revision, entry.value.as_ref()),
        (revision, &b"kept"[..])
    );
    assert_eq!(server.log().matches("--- start").count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Deduplication by Nats-Msg-Id

/// The writer takes a publish acked as `duplicate` for a change already stored, at the ack's
/// sequence (the guard on servers that check the id before the expectation); and an id
/// guards only within the duplicate window, which is why the expectation, not the id, is
/// what keeps the history single across long outages and restarts.
#[tokio::test]
async fn msg_id_is_stored_once_within_the_window_and_again_after_it() {
    let window = Duration::from_secs(1);
    let server = nats_server().await;
    let js = context(connect(&server).await, Duration::from_secs(5));
    let mut stream = create_stream(&js, stream_config("DEDUP", "dedup.>", window)).await;
    assert_eq!(stream.cached_info().config.duplicate_window, window);

    let sent = Instant::now();
    let first = publish_acked(&js, "dedup.a", with_id("first", "id-1")).await;
    assert!(!first.duplicate);
    let second = publish_acked(&js, "dedup.a", with_id("second", "id-1")).await;
    assert!(
        second.duplicate,
        "second publish within the window: {second:?}"
    );
    // The duplicate's ack names the sequence of the message that was stored.
    assert_eq!(second.sequence, first.sequence);
    // The id is per stream, not per subject: another subject is a duplicate too.
    let other = publish_acked(&js, "dedup.b", with_id("other", "id-1")).await;
    assert!(other.duplicate);
    assert_eq!(messages_in(&mut stream).await, 1);
    let kept = stream.get_raw_message(first.sequence).await.expect("first");
    assert_eq!(kept.payload.as_ref(), b"first");

    // After the window the same id is new again. Retrying every 100 ms until then: a duplicate
    // publish does not extend the window.
    let again = within("the id to expire", STEP, async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let ack = publish_acked(&js, "dedup.a", with_id("third", "id-1")).await;
            if !ack.duplicate {
                return ack;
            }
        }
    })
    .await;
    let elapsed = sent.elapsed();
    assert!(
        elapsed >= window,
        "stored again after {elapsed:?} < {window:?}"
    );
    assert!(
        elapsed < window * 4,
        "the window of {window:?} lasted {elapsed:?}"
    );
    assert_eq!(again.sequence, 2);
    assert_eq!(messages_in(&mut stream).await, 2);
}

// ---------------------------------------------------------------------------------------------
// Writes that timed out while the server was down

/// Why every try of the writer carries the same expectation and id: a publish whose ack
/// timed out while disconnected can still land after the reconnect (the bridge docs' "a
/// try the client queued while disconnected and sent after reconnecting").
#[tokio::test]
async fn a_publish_timed_out_while_disconnected_is_still_sent_after_reconnect() {
    let mut server = nats_server().await;
    let client = connect(&server).await;
    let js = context(client.clone(), Duration::from_millis(300));
    let mut stream = create_stream(
        &js,
        stream_config("LATE", "late.>", Duration::from_secs(60)),
    )
    .await;

    server.kill().await.expect("kill");
    within("the client to notice", STEP, async {
        while client.connection_state() == async_nats::connection::State::Connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // The publish is queued in the client; its ack times out; the message is not dropped.
    let queued = js
        .send_publish("late.a", with_id("queued", "late-1"))
        .await
        .expect("queueing while disconnected succeeds");
    let err = queued.await.expect_err("no server, no ack");
    assert_eq!(err.kind(), PublishErrorKind::TimedOut);

    server.restart().await.expect("restart");
    wait_connected(&client).await;
    within("the queued message to be stored", STEP, async {
        while messages_in(&mut stream).await < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // So a retry must reuse the msg id; with it, the retry is a duplicate, not a second copy.
    let js = context(client, Duration::from_secs(5));
    let retry = publish_acked(&js, "late.a", with_id("retry", "late-1")).await;
    assert!(retry.duplicate, "{retry:?}");
    assert_eq!(messages_in(&mut stream).await, 1);
    let stored = stream.get_raw_message(1).await.expect("message 1");
    assert_eq!(stored.payload.as_ref(), b"queued");
}

/// Why the writer's KV write forgets the revision it knew after an error and reads the entry
/// again before the next try: the timed-out write can land later.
#[tokio::test]
async fn a_kv_update_timed_out_while_disconnected_lands_later() {
    let mut server = nats_server().await;
    let client = connect(&server).await;
    let js = context(client.clone(), Duration::from_millis(300));
    let kv = bucket(&js, "late_kv", 1).await;
    let r1 = kv.put("agent.call", "v1".into()).await.expect("put");

    server.kill().await.expect("kill");
    within("the client to notice", STEP, async {
        while client.connection_state() == async_nats::connection::State::Connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let err = kv
        .update("agent.call", "v2".into(), r1)
        .await
        .expect_err("no server, no ack");
    assert_eq!(err.kind(), UpdateErrorKind::TimedOut);

    server.restart().await.expect("restart");
    wait_connected(&client).await;
    let landed = within("the queued update to land", STEP, async {
        loop {
            match kv.entry("agent.call").await {
                Ok(Some(e)) if e.revision > r1 => return e,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert_eq!(landed.value.as_ref(), b"v2");
    // The retry of the "failed" update is refused: on a conflict the CAS loop must compare
    // the current value with its own before calling it lost.
    let retry = kv
        .update("agent.call", "v2".into(), r1)
        .await
        .expect_err("revision moved");
    assert_eq!(retry.kind(), UpdateErrorKind::WrongLastRevision);
}

// ---------------------------------------------------------------------------------------------
// Optimistic concurrency on the stream itself

/// The bridge's one linear history per call: at most one message follows a base, the
/// expectation is checked before the id, and the refused writer finds the winner by reading
/// the subject after its base.
#[tokio::test]
async fn expected_last_subject_sequence_with_msg_id_is_a_single_write_cas() {
    let server = nats_server().await;
    let js = context(connect(&server).await, Duration::from_secs(5));
    let mut stream =
        create_stream(&js, stream_config("CAS", "cas.>", Duration::from_secs(60))).await;
    let subject = "cas.agent.call";
    let base = publish_acked(&js, subject, with_id("s1", "call:0:h1")).await;
    // Something else lands on another subject: the expectation is per subject.
    publish_acked(&js, "cas.agent.other", with_id("o1", "other:0:h1")).await;

    let change = |payload: &str, id: &str| {
        with_id(payload, id).expected_last_subject_sequence(base.sequence)
    };
    // Replica A writes s1 -> s2.
    let a = publish_acked(&js, subject, change("s2", "call:1:h2")).await;
    assert!(!a.duplicate);
    // Replica B saw the same change: same id, same expectation. The expectation is checked
    // before the id, so B is refused too, not told "duplicate"...
    let b = js
        .send_publish(subject, change("s2", "call:1:h2"))
        .await
        .expect("publish")
        .await
        .expect_err("the base moved on");
    assert_eq!(b.kind(), PublishErrorKind::WrongLastSequence, "{b}");
    // ...and learns by reading the subject's last message that its change is the one stored.
    let last = stream
        .get_last_raw_message_by_subject(subject)
        .await
        .expect("last for subject");
    assert_eq!(last.sequence, a.sequence);
    assert_eq!(
        last.headers.get("Nats-Msg-Id").map(|v| v.as_str()),
        Some("call:1:h2")
    );
    // Without the expectation the same id is a plain duplicate.
    let dup = publish_acked(&js, subject, with_id("s2", "call:1:h2")).await;
    assert!(dup.duplicate);
    assert_eq!(dup.sequence, a.sequence);
    // Replica C had a different change on the same base -> refused.
    let c = js
        .send_publish(subject, change("s3", "call:1:h3"))
        .await
        .expect("publish")
        .await
        .expect_err("stale expectation");
    assert_eq!(c.kind(), PublishErrorKind::WrongLastSequence, "{c}");
    assert_eq!(messages_in(&mut stream).await, 3);
    // Expecting 0 means "no message on this subject yet".
    let fresh = publish_acked(
        &js,
        "cas.agent.new",
        with_id("n1", "new:0:h1").expected_last_subject_sequence(0),
    )
    .await;
    assert!(!fresh.duplicate);
    let taken = js
        .send_publish(
            "cas.agent.new",
            with_id("n2", "new:0:h2").expected_last_subject_sequence(0),
        )
        .await
        .expect("publish")
        .await
        .expect_err("subject is taken");
    assert_eq!(taken.kind(), PublishErrorKind::WrongLastSequence);
}

// ---------------------------------------------------------------------------------------------
// KV bucket semantics

async fn bucket(js: &Context, name: &str, history: i64) -> kv::Store {
    js.create_key_value(kv::Config {
        bucket: name.to_string(),
        history,
        storage: StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("creating bucket {name}: {e}"))
}

/// The writer's KV write is a CAS on the entry's revision, and it keeps the ack's sequence
/// as the new revision: revisions are the bucket stream's sequence, 0 is "absent", a stale
/// revision is refused.
#[tokio::test]
async fn kv_create_update_and_revisions() {
    let server = nats_server().await;
    let js = context(connect(&server).await, Duration::from_secs(5));
    let kv = bucket(&js, "cas_test", 5).await;
    let key = "agent1.call1";

    let r1 = kv.create(key, "v1".into()).await.expect("create");
    let exists = kv
        .create(key, "again".into())
        .await
        .expect_err("key exists");
    assert_eq!(exists.kind(), CreateErrorKind::AlreadyExists);

    let entry = kv.entry(key).await.expect("entry").expect("present");
    assert_eq!((entry.revision, entry.operation), (r1, Operation::Put));
    assert_eq!(entry.value.as_ref(), b"v1");
    assert_eq!(kv.get(key).await.expect("get").as_deref(), Some(&b"v1"[..]));
    assert_eq!(kv.get("agent1.none").await.expect("get missing"), None);

    let r2 = kv.update(key, "v2".into(), r1).await.expect("update at r1");
    assert!(r2 > r1);
    let stale = kv
        .update(key, "v3".into(), r1)
        .await
        .expect_err("stale revision");
    assert_eq!(stale.kind(), UpdateErrorKind::WrongLastRevision, "{stale}");
    // Revision 0 means "must not exist".
    let zero = kv.update(key, "v3".into(), 0).await.expect_err("exists");
    assert_eq!(zero.kind(), UpdateErrorKind::WrongLastRevision);
    assert_eq!(kv.get(key).await.expect("get").as_deref(), Some(&b"v2"[..]));

    // Revisions are the bucket stream's sequence: shared by all keys, so gaps per key.
    let other = kv.put("agent1.call2", "x".into()).await.expect("put");
    assert_eq!(other, r2 + 1);
    let r3 = kv.update(key, "v3".into(), r2).await.expect("update at r2");
    assert_eq!(r3, other + 1);
    let old = kv
        .entry_for_revision(key, r1)
        .await
        .expect("old revision")
        .expect("kept");
    assert_eq!(old.value.as_ref(), b"v1");
}

/// "The KV never goes back": replicas write one entry with a read, compare, write loop
/// that reads again on a conflict; under contention such a loop loses no write.
#[tokio::test]
async fn kv_cas_loop_loses_no_update_under_contention() {
    const PER_WRITER: u64 = 25;
    let server = nats_server().await;
    let js = context(connect(&server).await, Duration::from_secs(5));
    bucket(&js, "counter", 1).await;
    let key = "agent1.call1";

    // Read, compute, write at the read revision; on a conflict read again.
    async fn increment(kv: &kv::Store, key: &str) -> u32 {
        let mut conflicts = 0;
        loop {
            let (value, revision) = match kv.entry(key).await.expect("entry") {
                Some(e) if e.operation == Operation::Put => (
                    std::str::from_utf8(&e.value)
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                    e.revision,
                ),
                Some(e) => (0, e.revision),
                None => (0, 0),
            };
            match kv
                .update(key, (value + 1).to_string().into(), revision)
                .await
            {
                Ok(_) => return conflicts,
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => conflicts += 1,
                Err(e) => panic!("update: {e}"),
            }
            assert!(conflicts < 1000, "CAS loop does not converge");
        }
    }
    async fn writer(server_url: String) -> u32 {
        let client = async_nats::connect(server_url).await.expect("connect");
        let js = ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client);
        let kv = js.get_key_value("counter").await.expect("bucket");
        let mut conflicts = 0;
        for _ in 0..PER_WRITER {
            conflicts += increment(&kv, "agent1.call1").await;
        }
        conflicts
    }
    let (c1, c2) = within("both writers", STEP, async {
        tokio::join!(writer(server.url()), writer(server.url()))
    })
    .await;
    let kv = js.get_key_value("counter").await.expect("bucket");
    let total = kv.get(key).await.expect("get").expect("value");
    assert_eq!(total.as_ref(), (2 * PER_WRITER).to_string().as_bytes());
    eprintln!("CAS conflicts: {c1} + {c2}");
}

async fn next_entry(watch: &mut kv::Watch) -> kv::Entry {
    within("a watched entry", STEP, watch.next())
        .await
        .expect("watch ended")
        .expect("watch entry")
}

/// What the bridge docs promise a reader of the bucket: `kv.watch("<agent>.>")` sees that
/// agent's calls only, a completed call's delete marker reads as absent, and a late watcher
/// starts from each key's latest entry.
#[tokio::test]
async fn kv_delete_purge_history_and_prefix_watch() {
    let server = nats_server().await;
    let js = context(connect(&server).await, Duration::from_secs(5));
    let kv = bucket(&js, "watch_test", 5).await;

    let mut watch = kv.watch("agent1.>").await.expect("watch agent1.>");
    kv.put("agent1.c1", "a".into()).await.expect("put");
    kv.put("agent2.c1", "other agent".into())
        .await
        .expect("put");
    kv.put("agent1.c1", "b".into()).await.expect("put");
    kv.delete("agent1.c1").await.expect("delete");
    kv.put("agent1.c2", "z".into()).await.expect("put");
    kv.purge("agent1.c2").await.expect("purge");
    kv.put("agent1.sub.deeper", "d".into()).await.expect("put");

    let mut seen = Vec::new();
    for _ in 0..6 {
        let e = next_entry(&mut watch).await;
        seen.push((
            e.key,
            e.operation,
            String::from_utf8(e.value.to_vec()).unwrap(),
        ));
    }
    let expected = [
        ("agent1.c1", Operation::Put, "a"),
        ("agent1.c1", Operation::Put, "b"),
        ("agent1.c1", Operation::Delete, ""),
        ("agent1.c2", Operation::Put, "z"),
        ("agent1.c2", Operation::Purge, ""),
        ("agent1.sub.deeper", Operation::Put, "d"),
    ]
    .map(|(k, o, v)| (k.to_string(), o, v.to_string()));
    assert_eq!(seen, expected, "agent2's key must not appear");

    // A deleted key reads as absent, but its entry is the delete marker, with a revision.
    assert_eq!(kv.get("agent1.c1").await.expect("get"), None);
    let marker = kv.entry("agent1.c1").await.expect("entry").expect("marker");
    assert_eq!(marker.operation, Operation::Delete);
    // Delete keeps history; purge rolls the key up to the marker alone.
    let history = |key: &'static str| {
        let kv = kv.clone();
        async move {
            let h = kv.history(key).await.expect("history");
            let all: Vec<kv::Entry> = within("history", STEP, h.collect::<Vec<_>>())
                .await
                .into_iter()
                .map(|e| e.expect("history entry"))
                .collect();
            all.into_iter().map(|e| e.operation).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        history("agent1.c1").await,
        [Operation::Put, Operation::Put, Operation::Delete]
    );
    assert_eq!(history("agent1.c2").await, [Operation::Purge]);
    // `create` succeeds on a deleted key.
    kv.create("agent1.c1", "again".into())
        .await
        .expect("create after delete");

    // `history: 5` keeps the last 5 revisions per key.
    for i in 0..8 {
        kv.put("agent3.c1", i.to_string().into())
            .await
            .expect("put");
    }
    assert_eq!(history("agent3.c1").await.len(), 5);

    // A watcher that starts late gets the latest entry per key first, markers included.
    let mut late = kv
        .watch_with_history("agent1.>")
        .await
        .expect("watch with history");
    let mut initial = BTreeMap::new();
    for _ in 0..3 {
        let e = next_entry(&mut late).await;
        initial.insert(e.key, e.operation);
    }
    let expected: BTreeMap<String, Operation> = [
        ("agent1.c1", Operation::Put),
        ("agent1.c2", Operation::Purge),
        ("agent1.sub.deeper", Operation::Put),
    ]
    .into_iter()
    .map(|(k, o)| (k.to_string(), o))
    .collect();
    assert_eq!(initial, expected);
    // A `*` watch matches one token only.
    let mut one_level = kv
        .watch_with_history("agent1.*")
        .await
        .expect("watch agent1.*");
    let mut keys = HashSet::new();
    for _ in 0..2 {
        keys.insert(next_entry(&mut one_level).await.key);
    }
    assert_eq!(
        keys,
        HashSet::from(["agent1.c1".to_string(), "agent1.c2".to_string()])
    );
    assert!(
        timeout(Duration::from_millis(200), one_level.next())
            .await
            .is_err(),
        "agent1.sub.deeper must not match agent1.*"
    );
}

// ---------------------------------------------------------------------------------------------
// Legal characters, and the bridge's escaping of agent names and call ids

/// Why the bridge escapes agent names and call ids (`names`): raw ones break keys and
/// subjects, escaped ones are one legal token each.
#[tokio::test]
async fn raw_names_break_keys_and_subjects_escaped_names_do_not() {
    let server = nats_server().await;
    let js = context(connect(&server).await, Duration::from_secs(5));
    let kv = bucket(&js, "keys_test", 1).await;
    let mut stream = create_stream(
        &js,
        stream_config("SUBJ", "gws.calls.>", Duration::from_secs(60)),
    )
    .await;

    // The client accepts only [-/_=.A-Za-z0-9] in keys, no leading or trailing `.`...
    for key in [
        "a b", "a*b", "a>b", "*", ">", "a@b", "a:b", "ü", ".a", "a.", "a.*",
    ] {
        let e = kv.put(key, "v".into()).await.expect_err(key);
        assert_eq!(e.kind(), kv::PutErrorKind::InvalidKey, "{key:?}");
    }
    // ...and the server refuses an empty token.
    let e = kv.put("a..b", "v".into()).await.expect_err("empty token");
    assert_eq!(e.kind(), kv::PutErrorKind::Ack);
    kv.put("a/b=c_-9.Z", "v".into()).await.expect("legal key");

    // Subjects: the client checks only for whitespace; the server does not refuse wildcard
    // tokens on publish and stores them, where `gws.calls.*.x` then reads like a pattern;
    // an empty token matches no stream.
    for subject in [
        "gws.calls.*.c1",
        "gws.calls.a.>",
        "gws.calls.a@b.c1",
        "gws.calls.ü.c1",
    ] {
        let ack = publish_acked(&js, subject, PublishMessage::build().payload("x".into())).await;
        let stored = stream.get_raw_message(ack.sequence).await.expect("stored");
        assert_eq!(stored.subject.as_str(), subject);
    }
    let e = js
        .send_publish(
            "gws.calls.a..c1",
            PublishMessage::build().payload("x".into()),
        )
        .await
        .expect("sent")
        .await
        .expect_err("empty token");
    assert_eq!(e.kind(), PublishErrorKind::StreamNotFound);
    let e = js
        .send_publish(
            "gws.calls.a b.c1",
            PublishMessage::build().payload("x".into()),
        )
        .await
        .expect_err("space");
    assert_eq!(e.kind(), PublishErrorKind::Other);
    let before = messages_in(&mut stream).await;

    // Escaped, every name is one legal token, in keys and subjects alike, and a per-agent
    // `<agent>.>` watch sees exactly that agent's calls.
    let agents = [
        "jdoe@example.com",
        "a.b",
        "*",
        ">",
        "with space",
        "ünï",
        "a=2Eb",
    ];
    let call = "0071025563e9f00f.1";
    let mut watch = kv
        .watch(format!("{}.>", escape_token("a.b").unwrap()))
        .await
        .expect("watch");
    for agent in agents {
        let key = format!(
            "{}.{}",
            escape_token(agent).unwrap(),
            escape_token(call).unwrap()
        );
        kv.put(&key, agent.to_string().into())
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let subject = format!("gws.calls.{key}");
        let ack = publish_acked(&js, &subject, with_id(agent, &key)).await;
        let stored = stream.get_raw_message(ack.sequence).await.expect("stored");
        assert_eq!(stored.subject.as_str(), subject);
        let tokens: Vec<&str> = subject.split('.').collect();
        assert_eq!(tokens.len(), 4, "{subject}");
        assert_eq!(unescape_token(tokens[2]).as_deref(), Some(agent));
        assert_eq!(unescape_token(tokens[3]).as_deref(), Some(call));
    }
    assert_eq!(messages_in(&mut stream).await, before + agents.len() as u64);
    let only = next_entry(&mut watch).await;
    assert_eq!(only.value.as_ref(), b"a.b");
    assert!(
        timeout(Duration::from_millis(200), watch.next())
            .await
            .is_err(),
        "the a.b watch saw another agent (a=2Eb escapes differently)"
    );
}
