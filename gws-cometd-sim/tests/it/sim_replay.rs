//! Recordings served by the GWS simulator (`GwsServerConfig::replay`), over real HTTP on
//! 127.0.0.1: the calls at start, every notification as recorded, the calls as of the point
//! reached, pace, loop, per session, and the control handle.

use std::path::Path;
use std::time::{Duration, Instant};

use gws_cometd_sim::replay::{Recording, ReplayConfig, Speed};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};

use crate::support::GwsClient;

const USER: &str = "agent";
const PASSWORD: &str = "r3play-pw";

/// A call object as a real server writes it: duplicate keys, a big integer, a field no model
/// knows.
fn call(id: &str, state: &str) -> String {
    format!(
        r#"{{"id":"{id}","state":"{state}","callType":"Inbound","userData":{{"K":"1","K":"2","n":9007199254740993}},"x-new":{{"a":[1,2.50]}}}}"#
    )
}

fn notification(id: &str, state: &str) -> String {
    format!(
        r#"{{"messageType":"CallStateChangeMessage","notificationType":"StatusChange","call":{}}}"#,
        call(id, state)
    )
}

fn line(channel: &str, data: &str) -> String {
    format!(r#"[{{"channel":"{channel}","data":{data}}}]"#)
}

fn stamp(ms: u64) -> String {
    gws_cometd::fixture::time_stamp_line(1_700_000_000_000 + ms)
}

const DEVICES: &str = r#"{"messageType":"DeviceStateChangeMessage","devices":[{"id":"d1","userState":{"state":"Ready"},"x":1}]}"#;

/// Writes `lines` to a fixture in `dir` and reads it.
fn recording(dir: &Path, lines: &[String]) -> Recording {
    let path = dir.join("recording.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    Recording::open(&path).unwrap()
}

async fn server(recording: Recording, speed: Speed, looped: bool) -> GwsSimServer {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    // Short long polls, so "nothing arrived" is seen quickly.
    config.sim.long_poll_timeout = Duration::from_millis(300);
    config.replay = Some(ReplayConfig {
        speed,
        looped,
        ..ReplayConfig::new(USER, recording)
    });
    GwsSimServer::start(config).await.unwrap()
}

fn texts(got: &[(String, String, Instant)]) -> Vec<(String, String)> {
    got.iter().map(|(c, d, _)| (c.clone(), d.clone())).collect()
}

#[tokio::test]
async fn a_client_reads_the_calls_at_start_then_gets_every_notification_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let catch_up = format!(
        r#"{{"channel":"/gws-cometd/catch-up","data":{{"calls":[{}],"kept":[]}}}}"#,
        call("A", "Established")
    );
    let recording = recording(
        dir.path(),
        &[
            r#"[{"channel":"/meta/handshake","successful":true,"clientId":"old","version":"1.0"}]"#
                .to_owned(),
            catch_up,
            line("/v2/me/calls", &notification("A", "Held")),
            // The recorder healed a gap here: it learnt of call C from the read.
            format!(
                r#"{{"channel":"/gws-cometd/heal","data":{{"calls":[{},{}],"kept":[]}}}}"#,
                call("A", "Held"),
                call("C", "Established")
            ),
            line("/v2/me/devices", DEVICES),
            line("/v2/me/calls", &notification("B", "Ringing")),
        ],
    );
    assert_eq!(recording.notifications(), 3);
    assert_eq!(recording.calls_at_start(), 1);
    let server = server(recording, Speed::Max, false).await;
    let control = server.replay_control(USER).unwrap();
    // Held until the operation below was answered.
    control.pause();
    let mut client = GwsClient::login(&server.base_url(), USER, PASSWORD).await;
    let at_start = format!(
        r#"{{"statusCode":0,"calls":[{}]}}"#,
        call("A", "Established")
    );
    assert_eq!(client.read_calls().await, at_start);
    client
        .start_session(&["/v2/me/devices", "/v2/me/calls"])
        .await;
    assert_eq!(client.read_calls().await, at_start);
    // An operation is the simulator's to answer (it knows no call A) and changes nothing
    // in the recording.
    let (status, body) = client
        .post(
            "/api/v2/me/calls/A",
            r#"{"operationName":"AttachUserData","userData":{"X":"1"}}"#.to_owned(),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains(r#""statusCode":6"#), "{body}");
    control.play();
    let got = client.receive(3).await;
    assert_eq!(
        texts(&got),
        [
            ("/v2/me/calls".to_owned(), notification("A", "Held")),
            ("/v2/me/devices".to_owned(), DEVICES.to_owned()),
            ("/v2/me/calls".to_owned(), notification("B", "Ringing")),
        ]
    );
    // A heal read now answers the calls as of the point reached (the recorder's heal
    // included), each as last received.
    let reached = format!(
        r#"{{"statusCode":0,"calls":[{},{},{}]}}"#,
        call("A", "Held"),
        call("C", "Established"),
        call("B", "Ringing")
    );
    assert!(control.wait_for_delivered(3, Duration::from_secs(5)).await);
    assert_eq!(client.read_calls().await, reached);
}

/// Three notifications recorded 600 ms apart.
fn stamped(dir: &Path) -> Recording {
    recording(
        dir,
        &[
            stamp(0),
            line("/v2/me/calls", &notification("A", "Ringing")),
            stamp(600),
            line("/v2/me/calls", &notification("A", "Established")),
            stamp(1200),
            line("/v2/me/calls", &notification("A", "Released")),
        ],
    )
}

async fn spread_of_three(server: &GwsSimServer) -> Duration {
    let mut client = GwsClient::login(&server.base_url(), USER, PASSWORD).await;
    client
        .start_session(&["/v2/me/devices", "/v2/me/calls"])
        .await;
    client.read_calls().await;
    let got = client.receive(3).await;
    got[2].2 - got[0].2
}

#[tokio::test]
async fn the_pace_is_the_recorded_one_scaled_by_speed_or_none_at_max() {
    let dir = tempfile::tempdir().unwrap();
    let recording = stamped(dir.path());
    assert!(recording.is_stamped());
    assert_eq!(recording.duration(), Duration::from_millis(1200));
    // Twice as fast: 1.2 s recorded takes 0.6 s.
    let server = server(recording, Speed::factor(2.0).unwrap(), false).await;
    let spread = spread_of_three(&server).await;
    assert!(
        spread >= Duration::from_millis(500) && spread < Duration::from_millis(1100),
        "{spread:?}"
    );
    let server = self::server(stamped(dir.path()), Speed::Max, false).await;
    let spread = spread_of_three(&server).await;
    assert!(spread < Duration::from_millis(400), "{spread:?}");
}

#[tokio::test]
async fn without_time_stamps_replies_are_a_second_apart_at_speed_1() {
    let dir = tempfile::tempdir().unwrap();
    let recording = recording(
        dir.path(),
        &[
            line("/v2/me/calls", &notification("A", "Ringing")),
            line("/v2/me/calls", &notification("A", "Established")),
            line("/v2/me/calls", &notification("A", "Released")),
        ],
    );
    assert!(!recording.is_stamped());
    // At 5x: 2 s recorded take 0.4 s.
    let server = server(recording, Speed::factor(5.0).unwrap(), false).await;
    let spread = spread_of_three(&server).await;
    assert!(
        spread >= Duration::from_millis(330) && spread < Duration::from_millis(900),
        "{spread:?}"
    );
}

#[tokio::test]
async fn with_loop_the_recording_starts_over_after_its_last_notification() {
    let dir = tempfile::tempdir().unwrap();
    let recording = recording(
        dir.path(),
        &[
            line("/v2/me/calls", &notification("A", "Ringing")),
            line("/v2/me/calls", &notification("A", "Released")),
        ],
    );
    let server = server(recording, Speed::Max, true).await;
    let mut client = GwsClient::login(&server.base_url(), USER, PASSWORD).await;
    client
        .start_session(&["/v2/me/devices", "/v2/me/calls"])
        .await;
    client.read_calls().await;
    let got = client.receive(6).await;
    let states: Vec<bool> = got[..6]
        .iter()
        .map(|(_, data, _)| data.contains("Ringing"))
        .collect();
    assert_eq!(states, [true, false, true, false, true, false]);
    assert!(server.replay_control(USER).unwrap().position().loops >= 2);
}

#[tokio::test]
async fn each_new_session_of_the_user_gets_the_recording_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let recording = recording(
        dir.path(),
        &[
            line("/v2/me/calls", &notification("A", "Ringing")),
            line("/v2/me/calls", &notification("A", "Released")),
        ],
    );
    let server = server(recording, Speed::Max, false).await;
    let mut first = GwsClient::login(&server.base_url(), USER, PASSWORD).await;
    first
        .start_session(&["/v2/me/devices", "/v2/me/calls"])
        .await;
    first.read_calls().await;
    let once = texts(&first.receive(2).await);
    // A restarted service: a new login, a new session, the recording again.
    let mut second = GwsClient::login(&server.base_url(), USER, PASSWORD).await;
    second
        .start_session(&["/v2/me/devices", "/v2/me/calls"])
        .await;
    second.read_calls().await;
    assert_eq!(texts(&second.receive(2).await), once);
    assert_eq!(once.len(), 2);
    assert!(once[0].1.contains("Ringing"));
}

#[tokio::test]
async fn the_control_pauses_steps_one_notification_changes_speed_and_plays() {
    let dir = tempfile::tempdir().unwrap();
    let recording = recording(
        dir.path(),
        &[
            line("/v2/me/calls", &notification("A", "Ringing")),
            line("/v2/me/calls", &notification("A", "Established")),
            line("/v2/me/calls", &notification("A", "Held")),
        ],
    );
    // So slow that nothing after the first would come within the test.
    let server = server(recording, Speed::factor(0.001).unwrap(), false).await;
    let control = server.replay_control(USER).unwrap();
    assert!(server.replay_control("nobody").is_none());
    control.pause();
    let mut client = GwsClient::login(&server.base_url(), USER, PASSWORD).await;
    client
        .start_session(&["/v2/me/devices", "/v2/me/calls"])
        .await;
    client.read_calls().await;
    assert!(client.connect().await.is_empty(), "paused: nothing comes");
    control.step();
    let got = client.receive(1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].1.contains("Ringing"));
    assert_eq!(control.position().delivered, 1);
    assert_eq!(control.position().total, 3);
    assert_eq!(control.position().sessions, 1);
    assert!(
        client.connect().await.is_empty(),
        "one step, one notification"
    );
    // Playing at 0.001x: the next is 1000 s away.
    control.play();
    assert!(client.connect().await.is_empty());
    control.set_speed(Speed::Max);
    assert_eq!(control.speed(), Speed::Max);
    let rest = client.receive(2).await;
    assert!(rest[0].1.contains("Established") && rest[1].1.contains("Held"));
}

#[test]
fn a_fixture_that_does_not_read_is_an_error_at_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "[{\"channel\":\"/v2/me/calls\",\"data\":{}}]\n  [{\"channel\":\"/v2/me/calls\",\"data\":{]\n",
    )
    .unwrap();
    let err = Recording::open(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2:", path.display())), "{err}");
    let quiet = dir.path().join("quiet.jsonl");
    std::fs::write(
        &quiet,
        "[{\"channel\":\"/meta/connect\",\"successful\":true}]\n",
    )
    .unwrap();
    assert_eq!(Recording::open(&quiet).unwrap().notifications(), 0);
}

#[test]
fn the_time_between_two_sessions_of_an_appended_recording_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let handshake =
        r#"[{"channel":"/meta/handshake","successful":true,"clientId":"x","version":"1.0"}]"#;
    let recording = recording(
        dir.path(),
        &[
            stamp(0),
            handshake.to_owned(),
            stamp(500),
            line("/v2/me/calls", &notification("A", "Ringing")),
            // The next day, `--record --append`.
            stamp(86_400_000),
            handshake.to_owned(),
            stamp(86_400_300),
            line("/v2/me/calls", &notification("A", "Released")),
        ],
    );
    // 500 ms, then at most a second to the new session, then its 300 ms.
    assert_eq!(recording.duration(), Duration::from_millis(1800));
}
