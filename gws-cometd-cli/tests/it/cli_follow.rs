//! `watch`, `tail` and `serve` as real processes: catch-up then live changes, recordings
//! that replay to the same lines, SIGTERM as a clean stop, `--channel` replacing the
//! default, JSON logs, one-line fatal errors, and the login commands they print.

use std::process::Stdio;

use crate::support::*;
use gws_cometd_sim::gws::AgentState;
use gws_cometd_sim::{SimConfig, SimServer};
use gws_cometd_test_support::within;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

/// Reads the next stdout line of a running child, exactly as written.
async fn read_text_line(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    let got = within("a stdout line", WAIT, stdout.read_line(&mut line))
        .await
        .unwrap();
    assert!(got > 0, "stdout ended");
    line
}

/// Reads stdout lines of a running child until `n` were read.
async fn read_lines(stdout: &mut BufReader<ChildStdout>, n: usize) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    while lines.len() < n {
        let line = read_text_line(stdout).await;
        lines.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
    }
    lines
}

/// A `watch` that has printed its catch-up: what the test does from now on is live.
struct Watching {
    child: Child,
    stderr: tokio::task::JoinHandle<String>,
}

async fn watch_caught_up(sim: &gws_cometd_sim::GwsSimServer, args: &[&str]) -> Watching {
    let mut child = gws_cmd(sim, "watch", args).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let head = read_until(&mut stderr, "caught up with the server's calls").await;
    // Drained to the end, so the child never blocks on a full pipe.
    let stderr = tokio::spawn(async move {
        let mut rest = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut rest).await;
        format!("{}\n{rest}", head.join("\n"))
    });
    Watching { child, stderr }
}

impl Watching {
    /// Waits for the exit; the output with all of stderr.
    async fn finish(self) -> (std::process::Output, String) {
        let out = finish(self.child).await;
        let err = within("the rest of stderr", WAIT, self.stderr)
            .await
            .unwrap();
        (out, err)
    }
}

/// Sends SIGTERM once the child's session is up; it must disconnect and exit 0.
async fn assert_sigterm_disconnects(child: Child, sim: &SimServer, command: &str) {
    let before = sim.stats().disconnects;
    sigterm(&child);
    let out = finish(child).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{command}: {}",
        text(&out.stderr)
    );
    assert_eq!(
        sim.stats().disconnects,
        before + 1,
        "{command} sent /meta/disconnect"
    );
    assert!(
        text(&out.stderr).contains("SIGTERM"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn watch_prints_the_calls_in_progress_then_live_changes() {
    let sim = gws_sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    let mut watching = watch_caught_up(&sim, &["--count", "2"]).await;
    let mut stdout = BufReader::new(watching.child.stdout.take().unwrap());
    // Live: once the catch-up is printed (not before: a change of the same call not yet
    // read would be merged into it), data is attached.
    let mut lines = read_lines(&mut stdout, 1).await;
    let pairs = vec![(
        "AccountNumber".to_owned(),
        serde_json::value::RawValue::from_string(r#""12345""#.into()).unwrap(),
    )];
    sim.gws().attach_user_data(&id, pairs).unwrap();
    lines.extend(read_lines(&mut stdout, 1).await);
    let (out, err) = watching.finish().await;
    assert!(out.status.success(), "{err}");
    // The catch-up: the call as it already was.
    assert_eq!(lines[0]["callId"], id.as_str());
    assert_eq!(lines[0]["origin"], "catchUp");
    assert_eq!(lines[0]["new"], true);
    assert_eq!(lines[0]["state"]["to"], "Established");
    assert!(
        lines[1].get("origin").is_none(),
        "a live change has no origin"
    );
    // Then the live change, in replay's format.
    assert_eq!(lines[1]["callId"], id.as_str());
    assert_eq!(lines[1]["notificationType"], "AttachedDataChanged");
    assert_eq!(
        lines[1]["userData"],
        serde_json::json!({"added":[{"key":"AccountNumber","value":"12345"}]})
    );
    let caught_up = err
        .lines()
        .find(|l| l.contains("caught up with the server's calls"))
        .unwrap();
    assert!(caught_up.contains("calls=1"), "{caught_up}");
}

#[tokio::test]
async fn watch_shows_gws_error_messages_on_stderr_only() {
    let sim = gws_sim().await;
    let watching = watch_caught_up(&sim, &["--count", "1"]).await;
    assert!(sim.gws().publish_error_message(USER, 42, "Hold failed"));
    let id = sim.gws().ring_inbound("5115", "5001");
    let (out, err) = watching.finish().await;
    assert!(out.status.success(), "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "the ErrorMessage is not a stdout line");
    assert_eq!(lines[0]["callId"], id.as_str());
    let warn = err
        .lines()
        .find(|l| l.contains("Hold failed"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(warn.contains("WARN") && warn.contains("42"), "{warn}");
}

#[tokio::test]
async fn watch_record_then_replay_gives_the_same_lines() {
    let sim = gws_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.jsonl");
    let mut watching =
        watch_caught_up(&sim, &["--count", "4", "--record", file.to_str().unwrap()]).await;
    let mut stdout = BufReader::new(watching.child.stdout.take().unwrap());
    // One step at a time, each seen before the next: changes of one call that arrive
    // together are merged into one by watch (it never falls behind the session), while
    // replay prints every notification's change.
    let id = sim.gws().ring_inbound("5115", "5001");
    let mut watched = read_text_line(&mut stdout).await;
    sim.gws().answer(&id).unwrap();
    watched += &read_text_line(&mut stdout).await;
    sim.gws().hold(&id).unwrap();
    watched += &read_text_line(&mut stdout).await;
    sim.gws().hangup(&id).unwrap();
    watched += &read_text_line(&mut stdout).await;
    let (out, err) = watching.finish().await;
    assert!(out.status.success(), "{err}");
    let states: Vec<String> = watched
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["state"]["to"].to_string())
        .collect();
    assert_eq!(
        states,
        [
            r#""Ringing""#,
            r#""Established""#,
            r#""Held""#,
            r#""Released""#
        ]
    );
    let replayed = run(&mut cmd(&["replay", file.to_str().unwrap()])).await;
    assert!(replayed.status.success(), "{}", text(&replayed.stderr));
    assert_eq!(text(&replayed.stdout), watched);
}

/// The catch-up is in the recording too, so a replay starts with the same lines.
#[tokio::test]
async fn watch_record_then_replay_gives_the_same_lines_with_calls_in_progress() {
    let sim = gws_sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("watch.jsonl");
    let mut watching =
        watch_caught_up(&sim, &["--count", "2", "--record", file.to_str().unwrap()]).await;
    let mut stdout = BufReader::new(watching.child.stdout.take().unwrap());
    let mut watched = read_text_line(&mut stdout).await;
    assert!(watched.contains(r#""origin":"catchUp""#), "{watched}");
    sim.gws().hold(&id).unwrap();
    watched += &read_text_line(&mut stdout).await;
    let (out, err) = watching.finish().await;
    assert!(out.status.success(), "{err}");
    let replayed = run(&mut cmd(&["replay", file.to_str().unwrap()])).await;
    assert!(replayed.status.success(), "{}", text(&replayed.stderr));
    assert_eq!(text(&replayed.stdout), watched);
}

#[tokio::test]
async fn sigterm_disconnects_and_exits_0_for_watch_and_tail() {
    let sim = gws_sim().await;
    let watching = watch_caught_up(&sim, &[]).await;
    let before = sim.bayeux().stats().disconnects;
    sigterm(&watching.child);
    let (out, err) = watching.finish().await;
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        sim.bayeux().stats().disconnects,
        before + 1,
        "watch sent /meta/disconnect"
    );
    assert!(err.contains("SIGTERM"), "{err}");

    let tail = gws_cmd(&sim, "tail", &[]).spawn().unwrap();
    assert!(
        sim.bayeux()
            .wait_for_subscribers("/v2/me/calls", 1, WAIT)
            .await
    );
    assert_sigterm_disconnects(tail, sim.bayeux(), "tail --gws").await;

    let bayeux = SimServer::start(SimConfig::default()).await.unwrap();
    let tail = cmd(&["tail", "--url", &bayeux.url()]).spawn().unwrap();
    assert!(bayeux.wait_for_subscribers("/v2/me/calls", 1, WAIT).await);
    assert_sigterm_disconnects(tail, &bayeux, "tail --url").await;
}

#[tokio::test]
async fn channel_replaces_the_default() {
    // A plain Bayeux endpoint: only the channel given is subscribed.
    let bayeux = SimServer::start(SimConfig::default()).await.unwrap();
    let child = cmd(&[
        "tail",
        "--url",
        &bayeux.url(),
        "--channel",
        "/x",
        "--count",
        "1",
    ])
    .spawn()
    .unwrap();
    assert!(bayeux.wait_for_subscribers("/x", 1, WAIT).await);
    let subscriptions = bayeux.stats().subscriptions;
    assert!(
        !subscriptions.contains_key("/v2/me/calls"),
        "{subscriptions:?}"
    );
    bayeux.publish_str("/v2/me/calls", r#"{"not":"wanted"}"#);
    bayeux.publish_str("/x", r#"{"n":1}"#);
    let out = finish(child).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"channel\":\"/x\",\"data\":{\"n\":1}}\n"
    );

    // GWS: --channel /v2/me/devices prints devices only (the feed still follows calls).
    let sim = gws_sim().await;
    let child = gws_cmd(
        &sim,
        "tail",
        &["--channel", "/v2/me/devices", "--count", "1"],
    )
    .spawn()
    .unwrap();
    assert!(
        sim.bayeux()
            .wait_for_subscribers("/v2/me/devices", 1, WAIT)
            .await
    );
    sim.gws().ring_inbound("5115", "5001");
    assert!(sim.gws().set_agent_state(USER, AgentState::Ready));
    let out = finish(child).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["channel"], "/v2/me/devices");
    assert_eq!(lines[0]["data"]["messageType"], "DeviceStateChangeMessage");
}

#[tokio::test]
async fn fatal_failures_are_one_line_after_no_warnings() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let out = run(&mut cmd(&["tail", "--url", &format!("{url}/cometd")])).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "tail", "check the URL");

    let mut c = cmd(&["watch", "--gws", &url, "--user", USER]);
    c.env("GWS_PASSWORD", PASSWORD);
    let out = run(&mut c).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "watch", "check the URL");

    let sim = gws_sim().await;
    let mut c = gws_cmd(&sim, "watch", &[]);
    c.env("GWS_PASSWORD", "wrong");
    let out = run(&mut c).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "watch", "check the user name and password");
}

#[tokio::test]
async fn log_format_json_writes_json_lines_on_stderr() {
    let sim = gws_sim().await;
    let watching = watch_caught_up(&sim, &["--log-format", "json", "--count", "1"]).await;
    sim.gws().ring_inbound("5115", "5001");
    let (out, err) = watching.finish().await;
    assert!(out.status.success(), "{err}");
    assert_eq!(json_lines(&out).len(), 1);
    assert!(err.lines().count() >= 2, "{err}");
    for line in err.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }

    // The fatal line too.
    let base = sim.base_url();
    let mut c = cmd(&[
        "--log-format",
        "json",
        "watch",
        "--gws",
        &base,
        "--user",
        USER,
    ]);
    c.env("GWS_PASSWORD", "wrong");
    let out = run(&mut c).await;
    assert_eq!(out.status.code(), Some(2));
    let last = text(&out.stderr).lines().last().unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["command"], "watch");
    assert!(v["message"].as_str().unwrap().contains("401"), "{last}");
}

#[tokio::test]
async fn watch_on_the_built_in_simulator_prints_commands_that_act_on_its_calls() {
    let mut child = cmd(&["watch", "--duration", "15"]).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let lines = read_until(&mut stderr, " attach --gws ").await;
    // Keep draining stderr so the child never blocks on it.
    let drain = tokio::spawn(async move {
        let mut rest = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut rest).await;
        rest
    });
    let attach_line = lines.last().unwrap().trim().to_owned();
    let words: Vec<&str> = attach_line.split_whitespace().collect();
    assert_eq!(words[1], "attach", "{attach_line}");
    assert!(words.contains(&"--password-file"), "{attach_line}");
    assert_eq!(words.last(), Some(&"Priority:=2"), "{attach_line}");

    // The first call that appears gets a pair attached with the printed command.
    let first = read_lines(&mut stdout, 1).await;
    let id = first[0]["callId"].as_str().unwrap().to_owned();
    let args: Vec<String> = words[1..]
        .iter()
        .map(|w| {
            if *w == "CALL_ID" {
                id.clone()
            } else {
                (*w).to_owned()
            }
        })
        .chain(["FromTest=yes".to_owned()])
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&mut cmd(&args)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // watch shows it.
    let seen = async {
        loop {
            let line = read_lines(&mut stdout, 1).await.remove(0);
            if line["callId"] == id.as_str()
                && line
                    .to_string()
                    .contains(r#"{"key":"FromTest","value":"yes"}"#)
            {
                return line;
            }
        }
    };
    let line = within("the attach to show", WAIT, seen).await;
    assert_eq!(line["notificationType"], "AttachedDataChanged");
    sigterm(&child);
    let status = within("the exit", WAIT, child.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    let rest = drain.await.unwrap();
    assert!(!rest.contains("panicked"), "{rest}");
    // The password file is gone with the simulator.
    let file = words[words.iter().position(|w| *w == "--password-file").unwrap() + 1];
    assert!(!std::path::Path::new(file).exists(), "{file} removed");
}

#[tokio::test]
async fn serve_prints_its_url_and_commands_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let mut serve = cmd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--user",
        USER,
        "--password-file",
        pw.to_str().unwrap(),
        "--seed",
        "7",
    ])
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let lines = read_until(&mut stderr, "stop with Ctrl-C").await;
    let all = lines.join("\n");
    let banner = lines
        .iter()
        .find(|l| l.starts_with("GWS simulator at "))
        .unwrap_or_else(|| panic!("{all}"));
    let base = banner
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(',')
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{banner}");
    assert!(banner.contains("seed 7"), "{banner}");
    let watch_line = lines
        .iter()
        .find(|l| l.contains(" watch --gws "))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(
        watch_line.contains(&format!(
            "--gws {base} --user {USER} --password-file {}",
            pw.display()
        )),
        "{watch_line}"
    );
    assert!(
        !all.contains(PASSWORD),
        "the password is never printed: {all}"
    );

    // The printed watch command follows the living contact center.
    let mut watch = cmd(&[
        "watch",
        "--gws",
        &base,
        "--user",
        USER,
        "--password-file",
        pw.to_str().unwrap(),
        "--count",
        "1",
    ]);
    let out = run(&mut watch).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out)[0]["new"], true);

    sigterm(&serve);
    let status = within("the exit", WAIT, serve.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn serve_reads_a_users_file_and_warns_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "# agents\nann:pw-ann\n\nbob:pw:with:colons\n").unwrap();
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut serve = cmd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--users",
        users.to_str().unwrap(),
    ])
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    let lines = read_until(&mut stderr, "stop with Ctrl-C").await;
    let all = lines.join("\n");
    assert!(all.contains("WARN") && all.contains("chmod 600"), "{all}");
    assert!(all.contains("2 users"), "{all}");
    let base = lines
        .iter()
        .find_map(|l| l.strip_prefix("GWS simulator at "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    // bob's password has colons: only the first one separates.
    let mut c = cmd(&["watch", "--gws", &base, "--user", "bob", "--count", "1"]);
    c.env("GWS_PASSWORD", "pw:with:colons");
    let out = run(&mut c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    sigterm(&serve);
    let status = within("the exit", WAIT, serve.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0));

    // A malformed line is named.
    std::fs::write(&users, "ann:pw\nnocolon\n").unwrap();
    let out = run(&mut cmd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--users",
        users.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(
        &out,
        "serve",
        &format!("{}:2: expected user:password", users.display()),
    );
}

#[tokio::test]
async fn serve_and_tail_read_no_password_from_the_command_line() {
    let out = run(&mut cmd(&["serve", "--password", "x"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--password"),
        "{}",
        text(&out.stderr)
    );
    let _ = Stdio::null();
}

#[tokio::test]
async fn watch_is_passive_unless_asked_to_start_the_contact_center_session() {
    let sim = gws_sim().await;
    let watching = watch_caught_up(&sim, &["--duration", "0.2"]).await;
    let (out, err) = watching.finish().await;
    assert!(out.status.success(), "{err}");
    assert_eq!(sim.gws().stats().operation("StartContactCenterSession"), 0);
    assert!(!sim.gws().is_logged_in(USER));

    let watching = watch_caught_up(&sim, &["--start-session", "voice", "--duration", "0.2"]).await;
    let (out, err) = watching.finish().await;
    assert!(out.status.success(), "{err}");
    assert_eq!(sim.gws().stats().operation("StartContactCenterSession"), 1);
    assert!(sim.gws().is_logged_in(USER), "{err}");
    assert_eq!(sim.gws().stats().operation("EndContactCenterSession"), 0);
}

#[tokio::test]
async fn an_outage_says_each_failure_once_then_recovers() {
    let bayeux = SimServer::start(SimConfig::default()).await.unwrap();
    let mut child = cmd(&["tail", "--url", &bayeux.url(), "--count", "1"])
        .spawn()
        .unwrap();
    assert!(bayeux.wait_for_subscribers("/v2/me/calls", 1, WAIT).await);
    let requests = bayeux.stats().requests;
    bayeux.set_fault(gws_cometd_sim::Fault::HttpStatus(503));
    // Real time: the child retries on its own clock. Several retries fail alike.
    let retried = async {
        while bayeux.stats().requests < requests + 4 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    within("the client's retries", WAIT, retried).await;
    bayeux.clear_faults();
    // Published until the client is back and receives it.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let deliver = async {
        let mut line = String::new();
        loop {
            bayeux.publish_str("/v2/me/calls", r#"{"back":true}"#);
            tokio::select! {
                n = stdout.read_line(&mut line) => {
                    assert!(n.unwrap() > 0);
                    return line;
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            }
        }
    };
    let line = within("the recovery", WAIT, deliver).await;
    assert!(line.contains(r#""back":true"#), "{line}");
    let out = finish(child).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains(" WARN ")).collect();
    let about_503 = warnings.iter().filter(|l| l.contains("503")).count();
    assert_eq!(about_503, 1, "the failure is said once:\n{err}");
}
