//! The fault suite against the GWS simulator ([`GwsSimServer`]), through [`CallFeed`]
//! (`Delivery::Changes`), mostly behind the fault-injecting proxy of
//! test-support's `fault_proxy` on 127.0.0.1. The calls are driven by the test through
//! `sim.gws()` (20 operations a second on a handful of calls: rings, answers, holds,
//! user-data attach/update/delete, hang-ups, completions), so that "the server's state" is
//! known at every moment: after each fault the driver pauses and the feed's store must equal
//! the server's calls as the feed's API lists them, call by call, as exact text (only
//! `duration`, which the simulator computes when it renders a call, is masked): for API v2
//! `sim.gws().calls_json_for(user)`, for the Workspace API v3 `sim.gws().calls_v3_for(user)`
//! (`current-session`'s calls: KVList `userData`, numeric `duration`).
//!
//! The feed scenarios are written once and run for both generations: every test below but
//! the raw client's contrast also runs as `v3_<name>`, with a v3 feed (form sign-in as
//! `\agent`) on the simulator's `/workspace/v3` endpoint, through the same proxy, with the
//! same seeded driver (the held requests are then v3's sign-in and `current-session`).
//!
//! | test | what it shows |
//! |---|---|
//! | `with_ack_the_store_equals_the_server_after_every_fault` | the fault schedule of test-support's `fault_plan` with the simulator's ack extension: no gap, and the store equals the server's state within a bounded settle time after each fault |
//! | `without_ack_every_gap_is_healed_and_the_store_equals_the_server` | the same without it: gaps are reported, each is followed by `Healed`, and the store equals the server's state after each fault (the time is the table's "time to heal") |
//! | `calls_in_progress_are_caught_up_and_a_later_notification_reports_only_its_change` | a feed started (through 100 ms of latency) while calls are up reports each as `origin: catchUp`; a later notification reports only what it changed |
//! | `after_a_15_s_outage_the_store_equals_the_server_within_3_s` | the network refuses connections for 15 s (the Bayeux session expires meanwhile): from the outage's end to the store equal to the server's takes ≤ 3 s |
//! | `with_ack_replies_that_never_get_through_leave_the_store_stale_for_a_bounded_time` | every reply carrying a notification reset: the store trails the server by a bounded time, and the feed says so |
//! | `a_slow_consumer_keeps_the_session_and_gets_the_net_change_per_call` | a consumer that stops reading for 2.5 × the server's `maxInterval` costs no re-handshake, and then gets one net change per call |
//! | `contrast_a_raw_client_whose_subscriber_is_full_loses_its_session` | the raw `Client` whose subscriber stops reading loses its session after `maxInterval` (as its docs say) |
//! | `a_held_login_fails_within_the_max_network_delay` | `GET /api/v2/me` never answered: `connect()` fails with a timeout after about the max network delay (1 s), not 30 s |
//! | `a_held_heal_read_fails_within_the_max_network_delay_and_is_retried` | `GET /api/v2/me/calls` never answered during a heal: `HealFailed` (a timeout) within about 1 s, and the heal succeeds once it is answered |
//! | `a_notification_over_the_message_limit_is_a_gap_and_is_healed` | a notification over `max_message_bytes` is a `MessageTooLarge` gap; the heal brings the call from REST |
//!
//! Figures are printed as `FAULT-SUITE` lines (a v3 run names `v3`): `cargo test --test it
//! faults_gws -- --nocapture | grep FAULT-SUITE`. Every test is bounded in real time.

mod catch_up;
mod driver;
mod limits;
mod outage;
mod schedule;
mod slow;
mod stale;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::{Api, CallFeed, CallFeedBuilder, CallStore};
use gws_cometd_sim::gws::GwsSim;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer, SimConfig};
use gws_cometd_test_support::fault_proxy::FaultProxy;
use serde_json::value::RawValue;
use tokio::time::{sleep, Instant};

const USER: &str = "agent";
const PASSWORD: &str = "fault-suite-pa55";
/// The agent's number in the simulator.
const DN: &str = "5001";
/// The simulator holds a connect this long: a 4 s stall outlasts a connect's deadline.
const HOLD: Duration = Duration::from_secs(2);
const MAX_NETWORK_DELAY: Duration = Duration::from_secs(1);
/// How long after a fault's end the store may take to equal the server's.
const HEAL_LIMIT: Duration = Duration::from_secs(8);
/// Clean traffic after each phase.
const SETTLE: Duration = Duration::from_secs(1);
/// Time between two operations of the driver.
const OP_EVERY: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------
// The simulator, the feed, the store compared with the server.

/// A simulator that runs no activity of its own (the tests drive the calls).
async fn sim(sim: SimConfig) -> GwsSimServer {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.scenario = Some(Vec::new());
    config.sim = sim;
    GwsSimServer::start(config).await.expect("simulator starts")
}

fn sim_config(ack: bool) -> SimConfig {
    SimConfig {
        long_poll_timeout: HOLD,
        ack_extension: ack,
        ..SimConfig::default()
    }
}

async fn proxy_to(sim: &GwsSimServer) -> FaultProxy {
    FaultProxy::start(sim.addr())
        .await
        .expect("the proxy starts")
}

fn base_url(proxy: &FaultProxy) -> String {
    format!("http://{}", proxy.addr())
}

/// The name of a run in `FAULT-SUITE` lines: `what` for v2, `v3 what` for v3.
fn label(api: Api, what: &str) -> String {
    match api {
        Api::V3 => format!("v3 {what}"),
        _ => what.to_owned(),
    }
}

/// A builder of `api`'s feed for the test's agent (`\agent`, an empty tenant, for v3).
fn builder(base: &str, api: Api) -> CallFeedBuilder {
    let user = match api {
        Api::V3 => format!("\\{USER}"),
        _ => USER.to_owned(),
    };
    CallFeed::builder(base, Credentials::new(user, PASSWORD))
        .api(api)
        .max_network_delay(MAX_NETWORK_DELAY)
}

async fn feed(base: &str, api: Api) -> CallFeed {
    feed_with_bound(base, api, 2 * MAX_NETWORK_DELAY).await
}

/// A feed whose withheld messages are overdue after `bound` (the default is twice the max
/// network delay).
async fn feed_with_bound(base: &str, api: Api, bound: Duration) -> CallFeed {
    builder(base, api)
        .staleness_bound(bound)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("the {api} feed connects: {e}"))
}

/// `text` with the value of every `"duration"` replaced by `*`: the simulator renders it
/// from the clock, so two renderings of an unchanged call differ there. v2 writes it as a
/// string (`"duration":"*"`), v3 as a number (`"duration":*`).
fn mask_duration(text: &str) -> String {
    const KEY: &str = r#""duration":"#;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let value = at + KEY.len();
        out.push_str(&rest[..value]);
        let tail = &rest[value..];
        let skip = match tail.strip_prefix('"') {
            Some(string) => {
                out.push('"');
                1 + string.find('"').unwrap_or(string.len())
            }
            None => tail
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E' | '+')))
                .unwrap_or(tail.len()),
        };
        out.push('*');
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// The server's calls for `USER` as `api` lists them, by id, as text with `duration`
/// masked.
fn server_calls(gws: &GwsSim, api: Api) -> BTreeMap<String, String> {
    #[derive(serde::Deserialize)]
    struct List<'a> {
        #[serde(borrow)]
        calls: Vec<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    let text = match api {
        Api::V3 => format!(r#"{{"calls":{}}}"#, gws.calls_v3_for(USER)),
        _ => gws.calls_json_for(USER),
    };
    let list: List<'_> = serde_json::from_str(&text).expect("the calls list is JSON");
    list.calls
        .into_iter()
        .map(|c| {
            let id: Id = serde_json::from_str(c.get()).expect("a call has an id");
            (id.id, mask_duration(c.get()))
        })
        .collect()
}

/// How the store differs from the server: empty when they are equal.
fn differences(gws: &GwsSim, api: Api, store: &Mutex<CallStore>) -> Vec<String> {
    let server = server_calls(gws, api);
    let store = store.lock().unwrap();
    let mut out = Vec::new();
    for (id, text) in &server {
        match store.get_text(id) {
            None => out.push(format!("{id}: missing from the store")),
            Some(t) if mask_duration(t) != *text => {
                out.push(format!("{id}: store {t}\n  server {text}"))
            }
            Some(_) => {}
        }
    }
    for call in store.calls() {
        if !server.contains_key(&call.id) {
            out.push(format!("{}: in the store, gone from the server", call.id));
        }
    }
    out
}

/// Waits (at most `limit`) until the store equals the server's state; returns how long it
/// took, or the differences left.
async fn settle(
    gws: &GwsSim,
    api: Api,
    store: &Mutex<CallStore>,
    limit: Duration,
) -> Result<Duration, Vec<String>> {
    let started = Instant::now();
    loop {
        let diff = differences(gws, api, store);
        if diff.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= limit {
            return Err(diff);
        }
        sleep(Duration::from_millis(5)).await;
    }
}

fn raw(json: String) -> Box<RawValue> {
    RawValue::from_string(json).expect("JSON")
}

#[test]
fn durations_are_masked_and_the_rest_still_compared() {
    let a = r#"{"id":"1","duration":"12","userData":{"duration":"x"}}"#;
    assert_eq!(
        mask_duration(a),
        r#"{"id":"1","duration":"*","userData":{"duration":"*"}}"#
    );
    assert_ne!(
        mask_duration(r#"{"id":"1","duration":"3","state":"Held"}"#),
        mask_duration(r#"{"id":"1","duration":"3","state":"Established"}"#)
    );
    // v3: a number.
    assert_eq!(
        mask_duration(r#"{"id":"1","duration":127,"startedAt":"x","duration":0}"#),
        r#"{"id":"1","duration":*,"startedAt":"x","duration":*}"#
    );
    assert_ne!(
        mask_duration(r#"{"duration":3,"state":"Held"}"#),
        mask_duration(r#"{"duration":4,"state":"Established"}"#)
    );
}
