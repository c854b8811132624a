//! `gws-cometd serve --replay` of a Workspace API v3 recording as a process: `watch --api v3`
//! (either login) prints what `replay` prints, the official CometD JavaScript client gets the
//! recording through the v3 login, a v2 client gets nothing and serve says so once, a
//! recording mixing both generations is refused.

use std::path::Path;
use std::process::Stdio;

use gws_cometd::fixture::Reader;
use gws_cometd_test_support::within;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::cli_serve_replay::{replayed, Serving};
use crate::support::{cmd, fixture, read_until, run, sigterm, text, PASSWORD, USER, WAIT};

const V3_FIXTURE: &str = "v3-inbound-call.jsonl";

/// What `replay FILE` prints, but the lines of the recorder's heals: a heal is a read the
/// recorder made after a gap of its own; a served session has no gap, so its client reads
/// (and prints) the healed calls only if it reads for a reason of its own.
async fn replayed_without_heals(file: &Path) -> String {
    let all = replayed(file).await;
    let kept: Vec<&str> = all
        .lines()
        .filter(|l| !l.contains(r#""origin":"heal""#))
        .collect();
    assert_eq!(all.lines().count(), kept.len() + 1, "one heal line: {all}");
    kept.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test]
async fn watch_api_v3_against_serve_replay_of_a_v3_recording_prints_what_replay_prints() {
    let file = fixture(V3_FIXTURE);
    let expected = replayed_without_heals(&file).await;
    let count = expected.lines().count().to_string();
    let Serving { child, base } =
        Serving::start(&["--replay", file.to_str().unwrap(), "--speed", "max"]).await;
    // Signed in with the form and the code as `\agent`, then by the password grant: each a
    // new session, each the recording from its start.
    let by_code = format!("\\{USER}");
    let logins: [&[&str]; 2] = [
        &["--user", &by_code],
        &["--user", USER, "--client-id", "external_api_client"],
    ];
    for login in logins {
        let mut w = cmd(&["watch", "--api", "v3", "--gws", &base, "--count", &count]);
        w.args(login)
            .env("GWS_PASSWORD", PASSWORD)
            .env("GWS_CLIENT_SECRET", "client-secret");
        let out = run(&mut w).await;
        assert!(out.status.success(), "{login:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), expected, "{login:?}");
    }
    drop(child);
}

#[tokio::test]
async fn a_v2_client_of_a_v3_recording_gets_nothing_and_serve_says_so_once() {
    let file = fixture(V3_FIXTURE);
    let mut c = cmd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--user",
        USER,
        "--speed",
        "max",
    ]);
    c.arg("--replay").arg(&file).env("GWS_PASSWORD", PASSWORD);
    let mut serve = c.spawn().unwrap();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let banner = read_until(&mut stderr, "GWS simulator at ").await;
    assert!(
        banner
            .iter()
            .any(|l| l.contains(&format!("replaying {} (API v3) to {USER}", file.display()))),
        "{banner:?}"
    );
    let base = banner
        .last()
        .and_then(|l| l.split("GWS simulator at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    // Twice: a restarted service, said once all the same.
    for _ in 0..2 {
        let mut w = cmd(&["watch", "--gws", &base, "--user", USER, "--duration", "2"]);
        w.env("GWS_PASSWORD", PASSWORD);
        let out = run(&mut w).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "", "nothing replayed to a v2 client");
    }
    sigterm(&serve);
    let mut rest = Vec::new();
    let mut lines = (&mut stderr).lines();
    within("serve stops", WAIT, async {
        while let Some(l) = lines.next_line().await.unwrap() {
            rest.push(l);
        }
    })
    .await;
    let said: Vec<&String> = rest
        .iter()
        .filter(|l| l.contains("gets no replayed activity"))
        .collect();
    assert_eq!(said.len(), 1, "{rest:#?}");
    assert!(said[0].contains("WARN"), "{}", said[0]);
    assert!(
        said[0].contains(&format!("{USER} has an API v3 recording"))
            && said[0].contains("came on API v2"),
        "{}",
        said[0]
    );
    let _ = serve.wait().await;
}

#[tokio::test]
async fn serve_refuses_a_recording_that_mixes_v2_and_v3_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let mut text_of_both = std::fs::read_to_string(fixture(V3_FIXTURE)).unwrap();
    text_of_both.push_str(&std::fs::read_to_string(fixture("inbound-call.jsonl")).unwrap());
    std::fs::write(&path, text_of_both).unwrap();
    let mut c = cmd(&["serve", "--listen", "127.0.0.1:0", "--replay"]);
    c.arg(&path).env("GWS_PASSWORD", "x");
    // Bounded: a serve that took the file would serve until stopped.
    let out = within("serve refuses", WAIT, c.output()).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{}:", path.display())), "{stderr}");
    assert!(
        stderr.contains("is an API v2 channel, but the recording is on API v3"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("GWS simulator at"),
        "nothing served: {stderr}"
    );
}

#[tokio::test]
async fn the_official_cometd_javascript_client_gets_a_v3_recording_through_the_v3_login() {
    gws_cometd_test_support::cometd_node::ensure_installed()
        .await
        .expect("node_modules installed");
    let file = fixture(V3_FIXTURE);
    let summary = |channel: &str, data: &serde_json::Value| {
        format!(
            "{channel} {} {} {}",
            data["messageType"], data["notificationType"], data["call"]["state"]
        )
    };
    let recorded: Vec<String> = Reader::open(&file)
        .unwrap()
        .map(Result::unwrap)
        .filter(|m| !m.channel.starts_with("/meta/") && !m.channel.starts_with("/gws-cometd/"))
        .map(|m| {
            let data = serde_json::from_str(m.data.unwrap().get()).unwrap();
            summary(&m.channel, &data)
        })
        .collect();
    assert_eq!(recorded.len(), 14);
    let Serving { child, base } =
        Serving::start(&["--replay", file.to_str().unwrap(), "--speed", "max"]).await;
    let script = gws_cometd_test_support::workspace_root()
        .join("gws-cometd-sim/tests/it/js/gws-v3-login-tail.js");
    // The simulator's own initialization message, then the recording.
    let count = recorded.len() + 1;
    let out = within(
        "the JavaScript client",
        WAIT,
        Command::new("node")
            .arg(&script)
            .args(["--gws", &base, "--user", &format!("\\{USER}"), "--count"])
            .arg(count.to_string())
            .env("GWS_PASSWORD", PASSWORD)
            .current_dir(gws_cometd_test_support::workspace_root())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: Vec<(String, serde_json::Value)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["channel"].as_str().unwrap().to_owned(), v["data"].clone())
        })
        .collect();
    assert_eq!(got.len(), count);
    assert_eq!(got[0].0, "/workspace/v3/initialization");
    assert_eq!(got[0].1["messageType"], "WorkspaceInitializationComplete");
    assert_eq!(
        got[0].1["data"]["user"]["userName"], USER,
        "the simulator's"
    );
    let replayed: Vec<String> = got[1..].iter().map(|(c, d)| summary(c, d)).collect();
    assert_eq!(replayed, recorded);
    drop(child);
}
