//! `gws-cometd serve` as a process: a bad scenario named, logins answered until Ctrl-C.
//! Moved here from tests/gws_sim_server.rs with serve's options: the password now comes
//! from GWS_PASSWORD (there is no --password any more); the assertions are unchanged.

use std::time::Duration;

use gws_cometd_test_support::within;

use crate::support::{cmd, BIN};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serve_refuses_a_bad_scenario_file_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"at_ms\":1,\"ring\":{\"from\":\"1\",\"to\":\"2\"}}\n{\"at_ms\":2,\"dance\":0}\n",
    )
    .unwrap();
    let mut c = cmd(&["serve", "--listen", "127.0.0.1:0", "--scenario"]);
    c.arg(&path).env("GWS_PASSWORD", "x");
    // Bounded: a serve that took the file would serve until stopped.
    let out = within("serve refuses", Duration::from_secs(15), c.output())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // `FILE:LINE: message`, as compilers say it.
    assert!(
        stderr.contains(&format!("{}:2: ", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("dance"), "{stderr}");
}

#[tokio::test]
async fn serve_answers_logins_until_interrupted() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--user", "u1"])
        .env("GWS_PASSWORD", "p1")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let base = within("the base URL line", Duration::from_secs(10), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("a base URL line");
            if let Some(rest) = line.split("GWS simulator at ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        }
    })
    .await;
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let resp = within(
        "the login",
        Duration::from_secs(10),
        http()
            .get(format!("{base}/api/v2/me"))
            .basic_auth("u1", Some("p1"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let pid = child.id().unwrap();
    // SIGINT is what Ctrl-C sends.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = within("the exit", Duration::from_secs(10), child.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// With `--scenario-per-session`, a second `watch` (a restarted service under test) gets
/// the scenario again, with a call of its own; without it the scenario ran once per user.
#[tokio::test]
async fn serve_scenario_per_session_runs_the_scenario_again_for_a_new_session() {
    use crate::support::{cmd, json_lines, read_until, run, sigterm, text, WAIT};
    use tokio::io::BufReader;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("ring.jsonl");
    std::fs::write(
        &scenario,
        "{\"at_ms\":0,\"ring\":{\"from\":\"5115\",\"to\":\"5001\"}}\n",
    )
    .unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let mut serve = cmd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--password-file",
        pw.to_str().unwrap(),
        "--scenario",
        scenario.to_str().unwrap(),
        "--scenario-per-session",
    ])
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let lines = read_until(&mut stderr, "stop with Ctrl-C").await;
    let banner = lines
        .iter()
        .find(|l| l.starts_with("GWS simulator at "))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(banner.contains("for every new session"), "{banner}");
    let base = banner.split_whitespace().nth(3).unwrap().to_owned();
    let watch = |count: &'static str| {
        cmd(&[
            "watch",
            "--gws",
            &base,
            "--user",
            "agent",
            "--password-file",
            pw.to_str().unwrap(),
            "--count",
            count,
            "--duration",
            "10",
        ])
    };
    let first = run(&mut watch("1")).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let first_id = json_lines(&first)[0]["callId"].clone();
    // The first call is still ringing: the second watch starts with it, then its own.
    let second = run(&mut watch("2")).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let ids: Vec<_> = json_lines(&second)
        .iter()
        .map(|l| l["callId"].clone())
        .collect();
    assert!(ids.contains(&first_id), "{ids:?}");
    assert!(ids.iter().any(|id| *id != first_id), "{ids:?}");
    sigterm(&serve);
    let status = within("the exit", WAIT, serve.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0));
}
