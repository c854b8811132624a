//! Workspace API v3 recordings served by the GWS simulator (`GwsServerConfig::replay`), over
//! real HTTP on 127.0.0.1: a v3 client (either login) reads the calls at start from
//! `current-session`, gets every recorded message in order and byte for byte, and reads the
//! point reached; pace and control as for v2; a client of the other generation gets nothing
//! replayed; a recording mixing both generations is refused.

use std::path::Path;
use std::time::Duration;

use gws_cometd::gws::api::{V3_INITIALIZATION_CHANNEL, V3_VOICE_CHANNEL};
use gws_cometd::gws::Api;
use gws_cometd_sim::gws::{GwsSimConfig, CALLS_CHANNEL};
use gws_cometd_sim::replay::{Recording, ReplayConfig, Speed};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};

use crate::support::GwsClient;
use crate::v3_support::V3Client;

const USER: &str = "agent";
const PASSWORD: &str = "r3play-v3-pw";
const OTHER: &str = "second";
const OTHER_PASSWORD: &str = "s3cond-pw";

/// A v3 call object as a server writes it: a KVList with a duplicate key and a big integer,
/// a field no model knows.
fn call(id: &str, state: &str) -> String {
    format!(
        r#"{{"id":"{id}","connId":"{id}","state":"{state}","callType":"Inbound","userData":[{{"key":"K","type":"str","value":"1"}},{{"key":"K","type":"str","value":"2"}},{{"key":"n","type":"int","value":9007199254740993}}],"x-new":{{"a":[1,2.50]}}}}"#
    )
}

fn changed(id: &str, state: &str) -> String {
    format!(
        r#"{{"messageType":"CallStateChanged","notificationType":"StateChange","call":{}}}"#,
        call(id, state)
    )
}

fn line(channel: &str, data: &str) -> String {
    format!(r#"[{{"channel":"{channel}","data":{data}}}]"#)
}

fn snapshot(kind: &str, calls: &[String]) -> String {
    format!(
        r#"{{"channel":"/gws-cometd/{kind}","data":{{"calls":[{}],"kept":[]}}}}"#,
        calls.join(",")
    )
}

fn stamp(ms: u64) -> String {
    gws_cometd::fixture::time_stamp_line(1_700_000_000_000 + ms)
}

const PROGRESS: &str =
    r#"{"messageType":"WorkspaceInitializationProgress","state":"Executing","x":[1]}"#;
const DN: &str = r#"{"messageType":"DnStateChanged","dn":{"number":"5001","agentState":"Ready","agentWorkMode":"Unknown"}}"#;

/// Writes `lines` to `name` in `dir` and reads it.
fn recording(dir: &Path, name: &str, lines: &[String]) -> Recording {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    Recording::open(&path).unwrap()
}

/// A v3 session as `watch --api v3 --record` writes one: the initialization progress with
/// the subscription, the catch-up, a change, a heal, a DN event and a new call.
fn v3_session(dir: &Path) -> Recording {
    recording(
        dir,
        "v3.jsonl",
        &[
            r#"[{"channel":"/meta/handshake","successful":true,"clientId":"old","version":"1.0"}]"#
                .to_owned(),
            format!(
                r#"[{{"channel":"/workspace/v3/initialization","data":{PROGRESS}}},{{"channel":"/meta/subscribe","successful":true,"subscription":"/workspace/v3/voice"}}]"#
            ),
            snapshot("catch-up", &[call("A", "Established")]),
            line(V3_VOICE_CHANNEL, &changed("A", "Held")),
            snapshot("heal", &[call("A", "Held"), call("C", "Established")]),
            line(V3_VOICE_CHANNEL, DN),
            line(V3_VOICE_CHANNEL, &changed("B", "Ringing")),
        ],
    )
}

/// Three v2 notifications, for the user of the other generation.
fn v2_session(dir: &Path) -> Recording {
    let v2 = r#"{"messageType":"CallStateChangeMessage","notificationType":"StatusChange","call":{"id":"V","state":"Ringing","userData":{"A":"1"}}}"#;
    recording(
        dir,
        "v2.jsonl",
        &[
            r#"{"channel":"/gws-cometd/catch-up","data":{"calls":[{"id":"V","state":"Dialing"}]}}"#
                .to_owned(),
            line(CALLS_CHANNEL, v2),
            line(CALLS_CHANNEL, v2),
        ],
    )
}

async fn server(replay: ReplayConfig) -> GwsSimServer {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.gws = GwsSimConfig::new(USER, PASSWORD).with_user(OTHER, OTHER_PASSWORD);
    // Short long polls, so "nothing arrived" is seen quickly.
    config.sim.long_poll_timeout = Duration::from_millis(300);
    config.replay = Some(replay);
    GwsSimServer::start(config).await.unwrap()
}

/// `GET path`'s body, which must be 200.
async fn read(client: &V3Client, path: &str) -> String {
    let (status, body) = client.get_text(path).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The text of `current-session`'s `activeSession.calls`, as sent.
fn active_calls(session: &str) -> &str {
    let at = session.find(r#""calls":"#).expect("calls") + r#""calls":"#.len();
    let end = session.rfind("}}}}").expect("the end of the session");
    &session[at..end]
}

#[tokio::test]
async fn a_v3_client_reads_the_calls_at_start_then_gets_every_message_in_order_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let recording = v3_session(dir.path());
    assert_eq!(recording.api(), Api::V3);
    assert_eq!(recording.notifications(), 4);
    let server = server(ReplayConfig {
        speed: Speed::Max,
        ..ReplayConfig::new(USER, recording)
    })
    .await;
    let control = server.replay_control(USER).unwrap();
    // Held until the operation below was answered.
    control.pause();
    let mut client =
        V3Client::login_by_code(&server.base_url(), &format!("\\{USER}"), PASSWORD).await;
    let at_start = format!("[{}]", call("A", "Established"));
    let session = read(&client, "/workspace/v3/current-session").await;
    assert_eq!(active_calls(&session), at_start, "{session}");
    client
        .start_session(&[V3_INITIALIZATION_CHANNEL, V3_VOICE_CHANNEL])
        .await;
    let session = read(&client, "/workspace/v3/current-session").await;
    assert_eq!(active_calls(&session), at_start);
    // The simulator's own initialization message still comes.
    let init = client.receive_timed(1).await;
    assert_eq!(init[0].0, V3_INITIALIZATION_CHANNEL);
    assert!(init[0].1.contains("WorkspaceInitializationComplete"));
    // An operation is the simulator's to answer (it knows no call A, and says so as it
    // does) and changes nothing in the recording.
    let (status, reply) = client
        .post(
            "/workspace/v3/voice/calls/A/attach-user-data",
            r#"{"data":{"userData":[{"key":"X","type":"str","value":"1"}]}}"#,
        )
        .await;
    assert_eq!(
        (status, &reply["status"]["code"]),
        (404, &serde_json::Value::from(2))
    );
    let error = client.receive_timed(1).await;
    assert!(error[0].1.contains("EventError"), "{error:?}");
    // Paused: nothing but a step comes.
    client.nothing_for(Duration::from_millis(600)).await;
    control.step();
    let first = client.receive_timed(1).await;
    assert_eq!(
        (first[0].0.as_str(), first[0].1.as_str()),
        (V3_INITIALIZATION_CHANNEL, PROGRESS)
    );
    assert!(control.wait_for_delivered(1, Duration::from_secs(5)).await);
    assert_eq!(control.position().delivered, 1);
    client.nothing_for(Duration::from_millis(600)).await;
    control.play();
    let rest: Vec<(String, String)> = client
        .receive_timed(3)
        .await
        .into_iter()
        .map(|(c, d, _)| (c, d))
        .collect();
    assert_eq!(
        rest,
        [
            (V3_VOICE_CHANNEL.to_owned(), changed("A", "Held")),
            (V3_VOICE_CHANNEL.to_owned(), DN.to_owned()),
            (V3_VOICE_CHANNEL.to_owned(), changed("B", "Ringing")),
        ]
    );
    // A heal read now answers the calls as of the point reached (the recorder's heal
    // included), each as last received, through both reads of the calls.
    assert!(control.wait_for_delivered(4, Duration::from_secs(5)).await);
    let reached = format!(
        "[{},{},{}]",
        call("A", "Held"),
        call("C", "Established"),
        call("B", "Ringing")
    );
    let session = read(&client, "/workspace/v3/current-session").await;
    assert_eq!(active_calls(&session), reached);
    assert_eq!(
        read(&client, "/workspace/v3/voice/calls").await,
        format!(r#"{{"status":{{"code":0}},"data":{reached}}}"#)
    );
}

/// Three v3 notifications recorded 600 ms apart.
fn stamped(dir: &Path) -> Recording {
    recording(
        dir,
        "stamped.jsonl",
        &[
            stamp(0),
            line(V3_VOICE_CHANNEL, &changed("A", "Ringing")),
            stamp(600),
            line(V3_VOICE_CHANNEL, &changed("A", "Established")),
            stamp(1200),
            line(V3_VOICE_CHANNEL, &changed("A", "Released")),
        ],
    )
}

async fn spread_of_three(server: &GwsSimServer) -> Duration {
    let mut client = V3Client::login_by_password(&server.base_url(), USER, PASSWORD).await;
    client.start_session(&[V3_VOICE_CHANNEL]).await;
    read(&client, "/workspace/v3/current-session").await;
    let got = client.receive_timed(3).await;
    let states: Vec<bool> = got.iter().map(|(_, d, _)| d.contains("Ringing")).collect();
    assert_eq!(states, [true, false, false]);
    got[2].2 - got[0].2
}

#[tokio::test]
async fn a_v3_recording_keeps_the_recorded_pace_scaled_by_speed_or_none_at_max() {
    let dir = tempfile::tempdir().unwrap();
    let at = |speed| ReplayConfig {
        speed,
        ..ReplayConfig::new(USER, stamped(dir.path()))
    };
    // Twice as fast: 1.2 s recorded takes 0.6 s.
    let server = server(at(Speed::factor(2.0).unwrap())).await;
    let spread = spread_of_three(&server).await;
    assert!(
        spread >= Duration::from_millis(500) && spread < Duration::from_millis(1100),
        "{spread:?}"
    );
    let server = self::server(at(Speed::Max)).await;
    let spread = spread_of_three(&server).await;
    assert!(spread < Duration::from_millis(400), "{spread:?}");
}

#[tokio::test]
async fn a_client_of_the_other_generation_gets_nothing_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut replay = ReplayConfig::new(USER, v3_session(dir.path()));
    replay
        .recordings
        .insert(OTHER.to_owned(), v2_session(dir.path()).into());
    replay.speed = Speed::Max;
    let server = server(replay).await;
    let base = server.base_url();
    // A v2 client of the user with a v3 recording: the simulator's own calls (none), and
    // nothing on its calls channel.
    let mut v2 = GwsClient::login(&base, USER, PASSWORD).await;
    assert_eq!(v2.read_calls().await, r#"{"statusCode":0,"calls":[]}"#);
    v2.start_session(&[CALLS_CHANNEL]).await;
    v2.read_calls().await;
    // The recording plays a second after a session starts at most: well past it.
    v2.nothing_for(Duration::from_millis(1800)).await;
    // A v3 client of the user with a v2 recording: likewise.
    let mut v3 = V3Client::login_by_password(&base, OTHER, OTHER_PASSWORD).await;
    let session = read(&v3, "/workspace/v3/current-session").await;
    assert_eq!(active_calls(&session), "[]");
    v3.start_session(&[V3_VOICE_CHANNEL]).await;
    read(&v3, "/workspace/v3/current-session").await;
    v3.nothing_for(Duration::from_millis(1800)).await;
    // Each recording still serves its own generation's clients.
    let mut own = V3Client::login_by_password(&base, USER, PASSWORD).await;
    own.start_session(&[V3_VOICE_CHANNEL]).await;
    read(&own, "/workspace/v3/current-session").await;
    let got = own.receive_timed(3).await;
    assert_eq!(got[0].1, changed("A", "Held"));
    let mut own = GwsClient::login(&base, OTHER, OTHER_PASSWORD).await;
    assert!(own.read_calls().await.contains(r#""id":"V""#));
    own.start_session(&[CALLS_CHANNEL]).await;
    own.read_calls().await;
    assert_eq!(own.receive(2).await.len(), 2);
}

#[test]
fn a_recording_mixing_both_generations_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let v2 = r#"{"messageType":"CallStateChangeMessage","notificationType":"StatusChange","call":{"id":"V","state":"Ringing"}}"#;
    std::fs::write(
        &path,
        [
            line(V3_VOICE_CHANNEL, &changed("A", "Ringing")),
            line(CALLS_CHANNEL, v2),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let err = Recording::open(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2:", path.display())), "{err}");
    assert!(
        err.contains("/v2/me/calls is an API v2 channel, but the recording is on API v3"),
        "{err}"
    );
    // A subscription names its generation too.
    std::fs::write(
        &path,
        [
            r#"[{"channel":"/meta/subscribe","successful":true,"subscription":["/v2/me/calls"]}]"#
                .to_owned(),
            line(V3_VOICE_CHANNEL, &changed("A", "Ringing")),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let err = Recording::open(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2:", path.display())), "{err}");
}
