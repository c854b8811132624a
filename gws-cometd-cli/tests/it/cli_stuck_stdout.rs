//! A stuck consumer costs nothing: `watch` and `tail` with a stdout pipe nobody reads keep
//! their session and their `--record` file, end at `--duration`, and end within 2 s of
//! SIGTERM with exit 0.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;
use gws_cometd_sim::GwsSimServer;
use gws_cometd_test_support::within;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

/// Updates of one call, each a notification whose change line is over 2 kB: together far
/// more than a pipe holds.
const UPDATES: usize = 300;

/// A child whose stdout is held open and never read, and whose stderr is drained.
struct Stuck {
    child: Child,
    _stdout: ChildStdout,
    stderr: tokio::task::JoinHandle<String>,
}

async fn start_stuck(sim: &GwsSimServer, command: &str, args: &[&str]) -> Stuck {
    let mut child = gws_cmd(sim, command, args).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    assert!(
        sim.bayeux()
            .wait_for_subscribers("/v2/me/calls", 1, WAIT)
            .await,
        "{command} subscribed"
    );
    let stderr = tokio::spawn(async move {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all).await;
        all
    });
    Stuck {
        child,
        _stdout: stdout,
        stderr,
    }
}

/// One call, then [`UPDATES`] user-data updates of it, each 2 kB.
async fn flood(sim: &GwsSimServer) {
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    for i in 0..UPDATES {
        let value = format!("\"{i:04}{}\"", "x".repeat(2048));
        let pairs = vec![("Blob".to_owned(), RawValue::from_string(value).unwrap())];
        sim.gws().update_user_data(&id, pairs).unwrap();
        // Spread over a second or so, as a busy agent's notifications would come.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

fn updates_recorded(file: &Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .matches(r#""notificationType":"AttachedDataChanged""#)
        .count()
}

/// Waits until the record holds every update: it kept growing while stdout was stuck.
async fn record_complete(file: &Path) {
    within("every update in the record", WAIT, async {
        while updates_recorded(file) < UPDATES {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(updates_recorded(file), UPDATES);
}

#[tokio::test]
async fn watch_and_tail_with_a_stdout_nobody_reads_end_at_duration_with_the_record_complete() {
    for command in ["watch", "tail"] {
        let sim = gws_sim().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stuck.jsonl");
        let started = Instant::now();
        let duration = 4.0;
        let stuck = start_stuck(
            &sim,
            command,
            &[
                "--duration",
                &duration.to_string(),
                "--record",
                file.to_str().unwrap(),
            ],
        )
        .await;
        flood(&sim).await;
        record_complete(&file).await;
        let status = within(
            "the end at --duration",
            WAIT,
            stuck.child.wait_with_output(),
        )
        .await
        .unwrap();
        let took = started.elapsed();
        let err = stuck.stderr.await.unwrap();
        assert_eq!(status.status.code(), Some(0), "{command}: {err}");
        assert!(
            took < Duration::from_secs_f64(duration + 3.0),
            "{command} took {took:?}: {err}"
        );
        // The session lived through it: one handshake, ended by the command's disconnect.
        let stats = sim.bayeux().stats();
        assert_eq!(stats.handshakes, 1, "{command}: {err}");
        assert_eq!(stats.disconnects, 1, "{command}: {err}");
        if command == "tail" {
            assert!(err.contains("stdout is not being read"), "{err}");
        }
    }
}

#[tokio::test]
async fn watch_and_tail_with_a_stdout_nobody_reads_end_within_2s_of_sigterm() {
    for command in ["watch", "tail"] {
        let sim = gws_sim().await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stuck.jsonl");
        let stuck = start_stuck(&sim, command, &["--record", file.to_str().unwrap()]).await;
        flood(&sim).await;
        record_complete(&file).await;
        sigterm(&stuck.child);
        let out = within(
            "the end after SIGTERM",
            Duration::from_secs(2),
            stuck.child.wait_with_output(),
        )
        .await
        .unwrap();
        let err = stuck.stderr.await.unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {err}");
        assert!(err.contains("SIGTERM: disconnected"), "{command}: {err}");
        let stats = sim.bayeux().stats();
        assert_eq!(stats.handshakes, 1, "{command}: {err}");
        assert_eq!(stats.disconnects, 1, "{command}: {err}");
    }
}

/// `watch | head -1`: stdout closes after the first line. At the next lines (as for any
/// Unix filter, a closed pipe is learnt by writing to it) the command ends, exit 0,
/// disconnecting its session, without a panic (the stdout thread's outcome is read once
/// and remembered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_whose_stdout_closes_ends_quietly_at_once() {
    use tokio::io::AsyncBufReadExt;
    let sim = gws_sim().await;
    let mut child = gws_cmd(&sim, "watch", &["--duration", "30"])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert!(
        sim.bayeux()
            .wait_for_subscribers("/v2/me/calls", 1, WAIT)
            .await,
        "watch subscribed"
    );
    let id = sim.gws().ring_inbound("5115", "5001");
    let mut first = String::new();
    within("the first line", WAIT, stdout.read_line(&mut first))
        .await
        .unwrap();
    assert!(first.contains(&id), "{first}");
    drop(stdout);
    // More lines to write into the closed pipe.
    let started = Instant::now();
    sim.gws().answer(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.gws().hold(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.gws().retrieve(&id).unwrap();
    let out = finish(child).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    within("the session gone", WAIT, async {
        while sim.bayeux().stats().sessions > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}
