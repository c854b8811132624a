//! The `gws-cometd` binary: the `tail` contract (against the Bayeux simulator, the built-in
//! GWS demo and `--gws`) and the user-data commands, over HTTP on 127.0.0.1.

use gws_cometd_sim::{Fault, GwsSimServer, SimConfig, SimServer};
use tokio::process::Command;

use crate::support::{self, finish, gws_sim, run, text, PASSWORD, USER, WAIT};

/// The binary with `args`, logging warnings only: these tests count the lines of stderr.
fn cmd(args: &[&str]) -> Command {
    let mut c = support::cmd(args);
    c.env("RUST_LOG", "warn");
    c
}

async fn bayeux_sim() -> SimServer {
    SimServer::start(SimConfig::default()).await.unwrap()
}

#[tokio::test]
async fn tail_prints_one_exact_line_per_message_and_stops_at_count() {
    let sim = bayeux_sim().await;
    let child = cmd(&["tail", "--url", &sim.url(), "--count", "3"])
        .spawn()
        .unwrap();
    assert!(sim.wait_for_subscribers("/v2/me/calls", 1, WAIT).await);
    let bodies = [
        r#"{"messageType":"CallStateChangeMessage","n":1}"#,
        r#"{"a":"1","a":"2","big":9007199254740993,"u":"\u00e9"}"#,
        r#"[1, 2.50, "x"]"#,
        r#"{"not":"printed: past --count"}"#,
    ];
    for b in bodies {
        sim.publish_str("/v2/me/calls", b);
    }
    let out = finish(child).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected: String = bodies[..3]
        .iter()
        .map(|b| format!("{{\"channel\":\"/v2/me/calls\",\"data\":{b}}}\n"))
        .collect();
    assert_eq!(text(&out.stdout), expected);
}

#[tokio::test]
async fn tail_duration_without_all_messages_exits_1_saying_how_many() {
    let sim = bayeux_sim().await;
    let child = cmd(&[
        "tail",
        "--url",
        &sim.url(),
        "--channel",
        "/x",
        "--count",
        "5",
        "--duration",
        "1.5",
    ])
    .spawn()
    .unwrap();
    assert!(sim.wait_for_subscribers("/x", 1, WAIT).await);
    sim.publish_str("/x", "1");
    sim.publish_str("/x", "2");
    let out = finish(child).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 of 5"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).lines().count(), 2);
}

#[tokio::test]
async fn tail_duration_alone_exits_0() {
    let sim = bayeux_sim().await;
    let out = run(&mut cmd(&[
        "tail",
        "--url",
        &sim.url(),
        "--duration",
        "0.5",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn tail_records_reply_bodies_that_replay_reads() {
    let sim = bayeux_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.jsonl");
    let child = cmd(&[
        "tail",
        "--url",
        &sim.url(),
        "--count",
        "1",
        "--record",
        file.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    assert!(sim.wait_for_subscribers("/v2/me/calls", 1, WAIT).await);
    let data = r#"{"messageType":"CallStateChangeMessage","notificationType":"AttachedDataChanged","call":{"id":"c1","state":"Established","userData":{"K":"1","K":"2"}}}"#;
    sim.publish_str("/v2/me/calls", data);
    let out = finish(child).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(recorded.contains(data), "{recorded}");
    let replay = run(&mut cmd(&["replay", "--snapshot", file.to_str().unwrap()])).await;
    assert!(replay.status.success(), "{}", text(&replay.stderr));
    assert!(
        text(&replay.stdout).contains(r#""userData":{"K":"1","K":"2"}"#),
        "{}",
        text(&replay.stdout)
    );
}

#[tokio::test]
async fn tail_fails_clearly_on_a_bad_url() {
    let out = run(&mut cmd(&["tail", "--url", "ftp://example/cometd"])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ftp://example/cometd"), "{err}");
}

#[tokio::test]
async fn tail_fails_clearly_when_nothing_listens() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/cometd");
    let out = run(&mut cmd(&["tail", "--url", &url])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("check the URL"), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn tail_fails_clearly_on_http_401() {
    let sim = bayeux_sim().await;
    sim.set_fault(Fault::HttpStatus(401));
    let out = run(&mut cmd(&["tail", "--url", &sim.url()])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn tail_without_an_endpoint_follows_the_built_in_gws_simulator() {
    let out = run(&mut cmd(&["tail", "--count", "3", "--duration", "15"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["channel"], "/v2/me/calls");
            assert_eq!(l["data"]["messageType"], "CallStateChangeMessage");
            l["data"]["notificationType"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        kinds,
        ["StatusChange", "StatusChange", "AttachedDataChanged"]
    );
    assert_eq!(
        lines[2]["data"]["call"]["userData"]["AccountNumber"],
        "12345"
    );
}

#[tokio::test]
async fn tail_gws_follows_calls_with_the_password_from_the_environment() {
    let sim = gws_sim().await;
    let child = cmd(&[
        "tail",
        "--gws",
        &sim.base_url(),
        "--user",
        USER,
        "--count",
        "1",
    ])
    .env("GWS_PASSWORD", PASSWORD)
    .spawn()
    .unwrap();
    assert!(
        sim.bayeux()
            .wait_for_subscribers("/v2/me/calls", 1, WAIT)
            .await
    );
    let id = sim.gws().ring_inbound("5115", "5001");
    let out = finish(child).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(line["data"]["call"]["id"], id.as_str());
}

#[tokio::test]
async fn tail_gws_reads_the_password_file_and_rejects_a_wrong_one() {
    let sim = gws_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "not-the-password\n").unwrap();
    let out = run(&mut cmd(&[
        "tail",
        "--gws",
        &sim.base_url(),
        "--user",
        USER,
        "--password-file",
        file.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");

    let out = run(&mut cmd(&[
        "tail",
        "--gws",
        &sim.base_url(),
        "--user",
        USER,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("GWS_PASSWORD"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn user_data_commands_change_the_call() {
    let sim = gws_sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    let base = sim.base_url();
    let gws = |op: &str, rest: &[&str]| {
        let mut args = vec![op, "--gws", &base, "--user", USER, &id];
        args.extend_from_slice(rest);
        let mut c = cmd(&args);
        c.env("GWS_PASSWORD", PASSWORD);
        c
    };
    // The pairs in order, duplicates kept (serde_json::Value would sort and merge keys).
    let user_data = |sim: &GwsSimServer| -> String {
        let json = sim.gws().call_json(&id).unwrap();
        let call: gws_cometd::gws::Call = serde_json::from_str(&json).unwrap();
        if json.contains("\"userData\"") {
            serde_json::to_string(call.user_data()).unwrap()
        } else {
            String::new()
        }
    };

    // KEY:=JSON is a JSON value, KEY=VALUE always a string (httpie's syntax).
    let out = run(&mut gws("attach", &["Priority:=2", "Code=007", "Name=Ann"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        user_data(&sim),
        r#"{"Priority":2,"Code":"007","Name":"Ann"}"#
    );
    let raw = sim.gws().call_json(&id).unwrap();

    let out = run(&mut gws("attach", &["Priority:=3"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let raw_after = sim.gws().call_json(&id).unwrap();
    assert_ne!(raw, raw_after);
    assert_eq!(raw_after.matches("\"Priority\"").count(), 2, "{raw_after}");

    // Update sets every occurrence of the key.
    let out = run(&mut gws("update", &["Priority:=9"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        user_data(&sim),
        r#"{"Priority":9,"Code":"007","Name":"Ann","Priority":9}"#
    );

    // Delete-pair removes every occurrence.
    let out = run(&mut gws("delete-pair", &["Priority"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(user_data(&sim), r#"{"Code":"007","Name":"Ann"}"#);

    let out = run(&mut gws("delete-all", &[])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(user_data(&sim), "");

    // An unknown call: statusCode 6, named, exit 1.
    let mut c = cmd(&["attach", "--gws", &base, "--user", USER, "nope", "A=1"]);
    c.env("GWS_PASSWORD", PASSWORD);
    let out = run(&mut c).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("statusCode 6") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // A malformed pair never reaches the server.
    let out = run(&mut gws("attach", &["=x"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the key is empty"));
}
