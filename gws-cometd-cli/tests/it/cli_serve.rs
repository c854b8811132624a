//! `gws-cometd serve` as a process: a bad scenario named, logins answered until Ctrl-C.
//! Moved here from tests/gws_sim_server.rs with serve's options: the password now comes
//! from GWS_PASSWORD (there is no --password any more); the assertions are unchanged.

use std::time::Duration;

use gws_cometd_test_support::within;

use crate::support::BIN;

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn serve_refuses_a_bad_scenario_file_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"at_ms\":1,\"ring\":{\"from\":\"1\",\"to\":\"2\"}}\n{\"at_ms\":2,\"dance\":0}\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("GWS_PASSWORD", "x")
        .arg("--scenario")
        .arg(&path)
        .output()
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
