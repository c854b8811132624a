//! `gws-cometd serve --replay` as a process: `watch` against it prints what `replay` prints,
//! the official CometD JavaScript client gets the recording through the GWS login, bad
//! fixtures are refused before anything is served.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use gws_cometd::fixture::Reader;
use gws_cometd_test_support::within;
use tokio::io::BufReader;
use tokio::process::{Child, Command};

use crate::support::{
    cmd, fixture, gws_sim, read_until, run, spawn_serve, text, BIN, PASSWORD, USER, WAIT,
};

/// A running `serve --replay ...` and its base URL.
pub(crate) struct Serving {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Serving {
    /// Starts `serve --listen 127.0.0.1:0 --user agent ARGS` and waits for its URL. The rest
    /// of its stderr is drained so it never blocks on a full pipe.
    pub(crate) async fn start(args: &[&str]) -> Serving {
        let mut c = cmd(&["serve", "--listen", "127.0.0.1:0", "--user", USER]);
        c.args(args).env("GWS_PASSWORD", PASSWORD);
        let (child, base) = spawn_serve(&mut c).await;
        Serving { child, base }
    }

    /// `watch --gws BASE --user agent --count N`'s stdout.
    async fn watch(&self, count: usize) -> String {
        let count = count.to_string();
        let mut c = cmd(&[
            "watch", "--gws", &self.base, "--user", USER, "--count", &count,
        ]);
        c.env("GWS_PASSWORD", PASSWORD);
        let out = run(&mut c).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    }
}

/// What `replay FILE` prints.
pub(crate) async fn replayed(file: &Path) -> String {
    let out = run(&mut cmd(&["replay", file.to_str().unwrap()])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

async fn assert_watch_prints_what_replay_prints(file: &Path) {
    let expected = replayed(file).await;
    assert!(!expected.is_empty());
    let serving = Serving::start(&["--replay", file.to_str().unwrap(), "--speed", "max"]).await;
    let watched = serving.watch(expected.lines().count()).await;
    assert_eq!(watched, expected, "{}", file.display());
}

#[tokio::test]
async fn watch_against_serve_replay_at_max_speed_prints_exactly_what_replay_prints() {
    for name in ["inbound-call.jsonl", "inbound-call-in-wrap-up.jsonl"] {
        assert_watch_prints_what_replay_prints(&fixture(name)).await;
    }
}

/// A recording made by `watch --record` now: time stamps, and a catch-up with a call in
/// progress that the replay's calls read answers.
#[tokio::test]
async fn a_watch_recording_with_calls_in_progress_is_served_back_as_watch_saw_it() {
    let sim = gws_sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded.jsonl");
    let mut c = cmd(&[
        "watch",
        "--gws",
        &sim.base_url(),
        "--user",
        USER,
        "--count",
        "3",
        "--record",
        file.to_str().unwrap(),
    ]);
    c.env("GWS_PASSWORD", PASSWORD);
    let watching = c.spawn().unwrap();
    assert!(
        sim.bayeux()
            .wait_for_subscribers("/v2/me/calls", 1, WAIT)
            .await
    );
    // Each change seen alone (watch merges changes of one call that arrive together).
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.gws().hold(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.gws().retrieve(&id).unwrap();
    let out = within("watch --record", WAIT, watching.wait_with_output())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(recorded.contains("/gws-cometd/time"), "{recorded}");
    assert!(recorded.contains("/gws-cometd/catch-up"), "{recorded}");
    assert_watch_prints_what_replay_prints(&file).await;
}

#[tokio::test]
async fn the_official_cometd_javascript_client_gets_the_recorded_notifications_through_the_gws_login(
) {
    gws_cometd_test_support::cometd_node::ensure_installed()
        .await
        .expect("node_modules installed");
    let file = fixture("inbound-call.jsonl");
    // What the recording holds, in order: channel, message type, notification type, state.
    let summary = |channel: &str, data: &serde_json::Value| {
        format!(
            "{channel} {} {} {}",
            data["messageType"], data["notificationType"], data["call"]["state"]
        )
    };
    let expected: Vec<String> = Reader::open(&file)
        .unwrap()
        .map(Result::unwrap)
        .filter(|m| !m.channel.starts_with("/meta/"))
        .map(|m| {
            let data = serde_json::from_str(m.data.unwrap().get()).unwrap();
            summary(&m.channel, &data)
        })
        .collect();
    assert_eq!(expected.len(), 14);
    let serving = Serving::start(&["--replay", file.to_str().unwrap(), "--speed", "max"]).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/js/gws-login-tail.js");
    let out = within(
        "the JavaScript client",
        WAIT,
        Command::new("node")
            .arg(&script)
            .args(["--gws", &serving.base, "--user", USER, "--count"])
            .arg(expected.len().to_string())
            .env("GWS_PASSWORD", PASSWORD)
            .current_dir(gws_cometd_test_support::workspace_root())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            summary(v["channel"].as_str().unwrap(), &v["data"])
        })
        .collect();
    assert_eq!(got, expected);
    drop(serving.child);
}

#[tokio::test]
async fn serve_refuses_a_fixture_that_does_not_read_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.jsonl");
    std::fs::write(
        &path,
        "[{\"channel\":\"/v2/me/calls\",\"data\":{}}]\n[{\"channel\":\"/v2/me/calls\",\"data\":{]\n",
    )
    .unwrap();
    let mut c = cmd(&["serve", "--listen", "127.0.0.1:0", "--replay"]);
    c.arg(&path).env("GWS_PASSWORD", "x");
    // Bounded: a serve that took the file would serve until stopped.
    let out = within("serve refuses", WAIT, c.output()).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2:", path.display())),
        "{stderr}"
    );
    assert!(
        !stderr.contains("GWS simulator at"),
        "nothing served: {stderr}"
    );
}

#[tokio::test]
async fn a_bare_replay_file_with_several_users_asks_for_which_user() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "a:pa\nb:pb\n").unwrap();
    let mut c = cmd(&["serve", "--listen", "127.0.0.1:0", "--users"]);
    c.arg(&users)
        .arg("--replay")
        .arg(fixture("inbound-call.jsonl"));
    let out = within("serve refuses", WAIT, c.output()).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--replay USER=FILE"), "{stderr}");
}

#[tokio::test]
async fn serve_says_when_a_recording_holds_no_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.jsonl");
    std::fs::write(
        &path,
        "[{\"channel\":\"/meta/connect\",\"successful\":true,\"id\":\"4\"}]\n",
    )
    .unwrap();
    let mut c = cmd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--user",
        USER,
        "--replay",
    ]);
    c.arg(&path).env("GWS_PASSWORD", PASSWORD);
    let mut child = c.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let lines = read_until(&mut stderr, "GWS simulator at ").await;
    assert!(
        lines.iter().any(|l| l.contains("holds no notifications")),
        "{lines:?}"
    );
}

#[test]
fn serve_help_says_the_replay_is_per_session() {
    let out = std::process::Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    for needle in [
        "--replay",
        "[USER=]FILE",
        "each new CometD session",
        "--speed",
        "max",
        "--loop",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
}

/// Two users, each with their own recording: each watches only theirs.
#[tokio::test]
async fn each_user_replays_their_own_recording() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("{USER}:{PASSWORD}\nsecond:{PASSWORD}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let first = fixture("inbound-call.jsonl");
    let second = fixture("inbound-call-in-wrap-up.jsonl");
    let mut c = cmd(&["serve", "--listen", "127.0.0.1:0", "--speed", "max"]);
    c.arg("--users").arg(&users);
    c.arg("--replay")
        .arg(format!("{USER}={}", first.display()))
        .arg("--replay")
        .arg(format!("second={}", second.display()));
    let (child, base) = spawn_serve(&mut c).await;
    for (user, file) in [("second", &second), (USER, &first)] {
        let expected = replayed(file).await;
        let count = expected.lines().count().to_string();
        let mut w = cmd(&["watch", "--gws", &base, "--user", user, "--count", &count]);
        w.env("GWS_PASSWORD", PASSWORD);
        let out = run(&mut w).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), expected, "{user}");
    }
    drop(child);
}
