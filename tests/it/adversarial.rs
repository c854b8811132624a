//! Issue 21: every input costs time and memory in proportion to its size, or is refused by a
//! documented limit with a gap and a heal.
//!
//! Each adversarial shape (`gws_cometd_test_support::adversarial`) at the message limit's
//! order of magnitude goes through the replay/changes path (the one `watch`, the feed and
//! the bridge share) on a thread with a small stack, and the most memory that thread holds
//! at once is measured by the counting allocator this test binary runs on: it must stay
//! within a bound proportional to the input. No wall-clock assertion: a quadratic path shows
//! as memory (the old diff's table) or as a test that never ends (the harness's timeout).

use std::time::Duration;

use gws_cometd::bayeux::GapCause;
use gws_cometd::fixture::{FixtureError, Reader, Replay};
use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::{
    CallChange, CallEvent, CallFeed, CallStore, ChangeOrigin, FeedEvent, Limit, MAX_USER_DATA_DEPTH,
};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer, SimConfig};
use gws_cometd_test_support::adversarial::{self, fixture, nested, peak_during, Shape};
use gws_cometd_test_support::within_real;
use serde_json::value::RawValue;

/// About the default `max_message_bytes` (16 MiB) order of magnitude, and quick in a debug
/// build.
const SIZE: usize = 4 << 20;

/// The most a thread may hold at once while replaying `bytes` of input: a few copies of the
/// input (the line, the store's text, the changes' values) and room for the allocator's
/// rounding (a nested value takes some 16 times its text as `Value`s: 32 bytes a level for
/// `[`…`]`), never a table of pairs × pairs or a copy per nesting level.
fn bound(bytes: usize) -> usize {
    24 * bytes + (16 << 20)
}

/// Replays `bytes` on a thread with a 256 KiB stack: the changes (or the error), and the
/// thread's peak of memory held.
fn replay(bytes: Vec<u8>) -> (Result<Vec<CallChange>, FixtureError>, usize) {
    std::thread::Builder::new()
        .name("replay".into())
        .stack_size(256 << 10)
        .spawn(move || {
            peak_during(|| {
                Replay::new(Reader::new("adversarial.jsonl", &bytes[..]))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .expect("a thread")
        .join()
        .expect("the replay does not panic")
}

#[test]
fn every_shape_at_the_message_limits_order_of_magnitude_replays_within_a_memory_bound() {
    for shape in Shape::ALL {
        let bytes = fixture(shape, SIZE);
        let len = bytes.len();
        let (out, peak) = replay(bytes);
        println!(
            "ADVERSARIAL {:<40} {:>9} bytes, peak {:>6.1} MB held",
            shape.name(),
            len,
            peak as f64 / 1e6
        );
        assert!(
            peak <= bound(len),
            "{}: {peak} bytes held for {len} bytes of input",
            shape.name()
        );
        match shape {
            Shape::OverLimit => match out {
                Err(FixtureError::Parse { line, message, .. }) => {
                    assert_eq!(line, 2);
                    assert!(message.contains("MAX_USER_DATA_DEPTH"), "{message}");
                }
                other => panic!("over the limit: refused, got {other:?}"),
            },
            Shape::Ordinary => assert!(out.expect("replays").len() > 1000),
            _ => {
                let changes = out.expect("replays");
                assert_eq!(changes.len(), 2, "{}", shape.name());
                let ud = &changes[1].user_data;
                assert!(
                    ud.added.is_empty() && ud.removed.is_empty(),
                    "{}",
                    shape.name()
                );
                let first = changes[0].user_data.added.len();
                let expected = match shape {
                    Shape::Permuted => 0,
                    _ => first / 2,
                };
                assert_eq!(ud.changed.len(), expected, "{}", shape.name());
            }
        }
    }
}

#[test]
fn a_shape_twice_as_large_holds_at_most_about_twice_as_much() {
    // Proportion, not only a bound: the quadratic paths grew four times per doubling.
    for shape in [Shape::Duplicates, Shape::Permuted, Shape::DeepObjects] {
        let (_, small) = replay(fixture(shape, SIZE / 2));
        let (_, large) = replay(fixture(shape, SIZE));
        println!(
            "ADVERSARIAL {:<40} peak {small} → {large} bytes for twice the input",
            shape.name()
        );
        assert!(large <= 3 * small, "{}: {small} → {large}", shape.name());
    }
}

#[test]
fn a_call_the_server_lists_over_the_limit_is_kept_as_listed_without_its_user_data_compared() {
    let deep = nested(1_000, true, "1");
    let listed = format!(r#"{{"id":"c1","state":"Established","userData":{{"Deep":{deep}}}}}"#);
    let mut store = CallStore::new();
    let now = std::time::Instant::now();
    let current = [RawValue::from_string(listed.clone()).unwrap()];
    let changes = store.reconcile(&current, now, ChangeOrigin::Heal, |_| false);
    assert_eq!(changes.len(), 1);
    assert!(changes[0].change.new);
    assert!(changes[0].change.user_data.is_empty());
    assert_eq!(store.get_text("c1"), Some(listed.as_str()));
    // Listed again within the limits: the store takes it, its pairs come as added.
    let fine = r#"{"id":"c1","state":"Established","userData":{"A":"1"}}"#;
    let current = [RawValue::from_string(fine.to_owned()).unwrap()];
    let changes = store.reconcile(&current, now, ChangeOrigin::Heal, |_| false);
    assert_eq!(changes[0].change.user_data.added.len(), 1);
    assert_eq!(store.get_text("c1"), Some(fine));
}

#[test]
fn the_limit_is_the_documented_one() {
    assert_eq!(MAX_USER_DATA_DEPTH, adversarial::DEPTH_LIMIT);
    assert_eq!(Limit::UserDataDepth.name(), "MAX_USER_DATA_DEPTH");
}

// ---------------------------------------------------------------------------------------
// Live, from the simulator.

const USER: &str = "agent";
const PASSWORD: &str = "adversarial-pa55";

async fn next_change(feed: &mut CallFeed, id: &str) -> CallChange {
    loop {
        if let FeedEvent::Call(CallEvent { change, .. }) =
            feed.next().await.expect("the feed goes on")
        {
            if change.call_id == id {
                return change;
            }
        }
    }
}

/// `text` without its `"duration":"…"` member's value (the simulator renders it from its
/// clock).
fn unclocked(text: &str) -> String {
    let Some(at) = text.find(r#""duration":""#) else {
        return text.to_owned();
    };
    let value = at + r#""duration":""#.len();
    let end = text[value..].find('"').map_or(text.len(), |e| value + e);
    format!("{}{}", &text[..value], &text[end..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_notification_over_the_limit_is_a_gap_and_is_healed_and_large_shapes_pass() {
    within_real(
        "the over-limit notification is healed",
        Duration::from_secs(60),
        async {
            let mut config = GwsServerConfig::new(USER, PASSWORD);
            config.scenario = Some(Vec::new());
            config.sim = SimConfig {
                long_poll_timeout: Duration::from_secs(2),
                ..SimConfig::default()
            };
            let sim = GwsSimServer::start(config).await.expect("simulator starts");
            let id = sim.gws().ring_inbound("5115", "5001");
            sim.gws().answer(&id).unwrap();
            let mut feed = CallFeed::builder(
                format!("http://{}", sim.addr()),
                Credentials::new(USER, PASSWORD),
            )
            .max_network_delay(Duration::from_secs(1))
            .connect()
            .await
            .expect("the feed connects");

            // Nested over the limit: refused, a gap naming the limit, a heal.
            let deep = RawValue::from_string(nested(1_000, true, "1")).unwrap();
            sim.gws()
                .attach_user_data(&id, vec![("Deep".into(), deep)])
                .unwrap();
            let (mut cause, mut healed, mut heal_change) = (None, None, None);
            while healed.is_none() {
                match feed.next().await.expect("the feed goes on") {
                    FeedEvent::Gap { cause: c } => cause = Some(c),
                    FeedEvent::Call(CallEvent { change, call })
                        if change.origin == ChangeOrigin::Heal =>
                    {
                        heal_change = Some((change, call))
                    }
                    FeedEvent::Healed { changes } if cause.is_some() => healed = Some(changes),
                    _ => {}
                }
            }
            let (change, call) = heal_change.expect("the heal's change");
            assert_eq!(change.call_id, id);
            assert!(change.user_data.is_empty(), "not compared: {change:?}");
            assert!(call.is_some_and(|c| c.text().contains(r#""Deep":{"k":{"k":"#)));
            match cause {
                Some(GapCause::MessageOverLimit {
                    channel,
                    limit,
                    max,
                }) => {
                    assert_eq!(channel, "/v2/me/calls");
                    assert_eq!(limit, Limit::UserDataDepth);
                    assert_eq!(max, MAX_USER_DATA_DEPTH);
                }
                other => panic!("a MessageOverLimit gap expected, got {other:?}"),
            }
            assert_eq!(healed, Some(1));
            // The store keeps the call as the server lists it.
            let server = sim.gws().call_json(&id).expect("the call is there");
            let stored = feed
                .store_handle()
                .lock()
                .unwrap()
                .get_text(&id)
                .map(unclocked);
            assert_eq!(stored, Some(unclocked(&server)));

            // Removing it is the next notification within the limits: the feed goes on.
            sim.gws().delete_user_data_pair(&id, "Deep").unwrap();
            let change = next_change(&mut feed, &id).await;
            assert_eq!(change.origin, ChangeOrigin::Notification);

            // Large adversarial shapes within the limits pass through live, as notifications.
            for shape in [Shape::Duplicates, Shape::Permuted] {
                let ud = adversarial::user_data(shape, 1 << 20, false);
                let pairs = pairs_of(&ud);
                let n = pairs.len();
                sim.gws().attach_user_data(&id, pairs).unwrap();
                let change = next_change(&mut feed, &id).await;
                assert_eq!(
                    change.origin,
                    ChangeOrigin::Notification,
                    "{}",
                    shape.name()
                );
                assert_eq!(change.user_data.added.len(), n, "{}", shape.name());
                sim.gws().delete_user_data(&id).unwrap();
                let change = next_change(&mut feed, &id).await;
                assert_eq!(change.user_data.removed.len(), n, "{}", shape.name());
            }
            feed.disconnect().await;
        },
    )
    .await;
}

/// The pairs of a user-data object text, values as raw JSON.
fn pairs_of(text: &str) -> Vec<(String, Box<RawValue>)> {
    struct Pairs(Vec<(String, Box<RawValue>)>);
    impl<'de> serde::Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Pairs;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Pairs, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = m.next_entry::<String, Box<RawValue>>()? {
                        out.push((k, v));
                    }
                    Ok(Pairs(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Pairs>(text)
        .expect("user data is an object")
        .0
}

// ---------------------------------------------------------------------------------------
// Workspace API v3: the same costs and the same limit for a KVList.

/// A replay line with one v3 call notification whose `userData` is `kvlist`.
fn v3_line(kvlist: &str) -> String {
    format!(
        r#"[{{"channel":"/workspace/v3/voice","data":{{"messageType":"CallStateChanged","notificationType":"AttachedDataChanged","call":{{"id":"c1","state":"Established","userData":{kvlist}}}}}}}]"#
    )
}

/// `n` entries of one key, the i-th an `int` valued `value(i)`.
fn v3_duplicates(n: usize, value: impl Fn(usize) -> i64) -> String {
    let entries: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"key":"K","type":"int","value":{}}}"#, value(i)))
        .collect();
    format!("[{}]", entries.join(","))
}

/// Thousands of duplicate entries, then half of them changed: two lines.
fn v3_duplicates_fixture(n: usize) -> Vec<u8> {
    let first = v3_line(&v3_duplicates(n, |i| i as i64));
    let second = v3_line(&v3_duplicates(n, |i| {
        if i % 2 == 1 {
            -(i as i64)
        } else {
            i as i64
        }
    }));
    format!("{first}\n{second}\n").into_bytes()
}

/// A KVList nested `levels` kvlist levels deep (two containers a level).
fn v3_nested(levels: usize) -> String {
    let open = r#"[{"key":"k","type":"kvlist","value":"#;
    format!(
        "{}{}{}",
        open.repeat(levels - 1),
        r#"[{"key":"k","type":"str","value":"v"}]"#,
        "}]".repeat(levels - 1)
    )
}

#[test]
fn v3_duplicate_entries_replay_in_proportion_to_their_size() {
    let mut peaks = Vec::new();
    for n in [20_000, 40_000] {
        let bytes = v3_duplicates_fixture(n);
        let len = bytes.len();
        let (out, peak) = replay(bytes);
        println!("ADVERSARIAL v3 duplicates x{n:<29} {len:>9} bytes, peak {peak} bytes held");
        assert!(
            peak <= bound(len),
            "{peak} bytes held for {len} bytes of input"
        );
        let changes = out.expect("replays");
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].user_data.added.len(), n);
        let ud = &changes[1].user_data;
        assert!(ud.added.is_empty() && ud.removed.is_empty());
        assert_eq!(ud.changed.len(), n / 2);
        peaks.push(peak);
    }
    assert!(peaks[1] <= 3 * peaks[0], "{peaks:?}");
}

#[test]
fn v3_kvlists_nested_past_the_limit_are_refused_with_the_typed_error() {
    // Two containers a level: half the limit in kvlist levels fits, one more does not.
    let fits = v3_line(&v3_nested(MAX_USER_DATA_DEPTH / 2));
    let (out, _) = replay(format!("{fits}\n").into_bytes());
    assert_eq!(out.expect("replays").len(), 1);
    for levels in [MAX_USER_DATA_DEPTH / 2 + 1, 200_000] {
        let bytes = format!("{}\n{}\n", fits, v3_line(&v3_nested(levels))).into_bytes();
        let len = bytes.len();
        let (out, peak) = replay(bytes);
        assert!(peak <= bound(len), "{peak} bytes held for {len} bytes");
        match out {
            Err(FixtureError::Parse { line, message, .. }) => {
                assert_eq!(line, 2);
                assert!(message.contains("MAX_USER_DATA_DEPTH"), "{message}");
            }
            other => panic!("{levels} levels: refused, got {other:?}"),
        }
        // The decoder's error names the limit.
        let line = v3_line(&v3_nested(levels));
        let err = gws_cometd::gws::wire::calls_in_text(&line).unwrap_err();
        assert_eq!(err.limit(), Some(Limit::UserDataDepth));
    }
    // Listed by the server over the limit: kept as listed, its user data not compared.
    let listed = format!(
        r#"{{"id":"c1","state":"Established","userData":{}}}"#,
        v3_nested(1_000)
    );
    let mut store = CallStore::new();
    let current = [RawValue::from_string(listed.clone()).unwrap()];
    let now = std::time::Instant::now();
    let changes = store.reconcile(&current, now, ChangeOrigin::Heal, |_| false);
    assert!(changes[0].change.new && changes[0].change.user_data.is_empty());
    assert_eq!(store.get_text("c1"), Some(listed.as_str()));
}
