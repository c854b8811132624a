//! What the `cli_*` tests share: the built binary, run with a deadline, against the
//! in-process GWS simulator on 127.0.0.1:0.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
use gws_cometd_test_support::within;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_gws-cometd");
pub const WAIT: Duration = Duration::from_secs(20);
pub const USER: &str = "agent";
pub const PASSWORD: &str = "cli-s3cret";

/// The binary with `args`, as a user runs it: the default log filter (no `RUST_LOG`), no
/// password or proxy from the test's environment, stdin empty.
pub fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("RUST_LOG")
        .env_remove("GWS_PASSWORD")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// `command ARGS --gws BASE --user agent` with the password in `GWS_PASSWORD`.
pub fn gws_cmd(sim: &GwsSimServer, command: &str, args: &[&str]) -> Command {
    let base = sim.base_url();
    let mut all = vec![command, "--gws", &base, "--user", USER];
    all.extend_from_slice(args);
    let mut c = cmd(&all);
    c.env("GWS_PASSWORD", PASSWORD);
    c
}

pub async fn finish(child: Child) -> Output {
    within(
        "the command to exit by itself",
        WAIT,
        child.wait_with_output(),
    )
    .await
    .expect("the command runs")
}

pub async fn run(c: &mut Command) -> Output {
    finish(c.spawn().expect("binary starts")).await
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The GWS simulator with one user and no activity of its own: the test makes the calls.
pub async fn gws_sim() -> GwsSimServer {
    let mut config = GwsServerConfig::new(USER, PASSWORD);
    config.scenario = Some(Vec::new());
    GwsSimServer::start(config).await.unwrap()
}

/// Sends SIGTERM to a running child.
pub fn sigterm(child: &Child) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let pid = child.id().expect("still running");
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
}

/// A failure as documented: the last stderr line is `gws-cometd COMMAND: ...` containing
/// `expected`, and no WARN or ERROR log line comes before it.
pub fn assert_fatal_line(out: &Output, command: &str, expected: &str) {
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let last = lines.last().copied().unwrap_or_default();
    assert!(
        last.starts_with(&format!("gws-cometd {command}: ")),
        "last line: {last:?}\n{err}"
    );
    assert!(last.contains(expected), "{expected:?} not in {last:?}");
    for line in &lines[..lines.len() - 1] {
        assert!(
            !line.contains(" WARN ") && !line.contains(" ERROR "),
            "a WARN/ERROR line before the error: {line:?}\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// Reads stderr lines until one contains `needle`; returns every line read.
pub async fn read_until(stderr: &mut BufReader<ChildStderr>, needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let read = async {
        let mut line = String::new();
        loop {
            line.clear();
            let n = stderr.read_line(&mut line).await.unwrap();
            assert!(n > 0, "stderr ended before {needle:?}: {lines:?}");
            lines.push(line.trim_end().to_owned());
            if line.contains(needle) {
                return;
            }
        }
    };
    within(&format!("{needle:?} on stderr"), WAIT, read).await;
    lines
}

/// A file of the workspace's `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .join("fixtures")
        .join(name)
}

/// The JSON lines of stdout.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Spawns a prepared `serve` command and waits for its base URL; the rest of its stderr is
/// drained so it never blocks on a full pipe.
pub async fn spawn_serve(c: &mut Command) -> (Child, String) {
    let mut child = c.spawn().expect("serve starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let lines = read_until(&mut stderr, "GWS simulator at ").await;
    let base = lines
        .last()
        .and_then(|l| l.split("GWS simulator at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a base URL")
        .to_owned();
    tokio::spawn(async move {
        let mut lines = stderr.lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    });
    (child, base)
}
