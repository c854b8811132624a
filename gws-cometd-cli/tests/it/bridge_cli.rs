//! `gws-cometd bridge` as a process: it refuses an agents file others may read, follows
//! the agents of its shard into JetStream, and on SIGTERM disconnects every session and
//! exits 0.

use gws_cometd_test_support::{nats, within};

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream;
use gws_cometd_bridge::{shard_of, STREAM};
use gws_cometd_sim::gws::parse_scenario;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
use tokio::process::Command;

use crate::support::BIN;

const PASSWORD: &str = "cli-pa55";

fn agents_file(dir: &std::path::Path, users: &[String], mode: u32) -> std::path::PathBuf {
    let path = dir.join("agents.txt");
    let text: String = users.iter().map(|u| format!("{u}:{PASSWORD}\n")).collect();
    std::fs::write(&path, format!("# test agents\n{text}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[tokio::test]
async fn an_agents_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = agents_file(dir.path(), &["a".into()], 0o644);
    let out = within(
        "the bridge",
        Duration::from_secs(20),
        Command::new(BIN)
            .args([
                "bridge",
                "--gws",
                "http://127.0.0.1:9",
                "--nats",
                "nats://127.0.0.1:9",
            ])
            .arg("--agents")
            .arg(&path)
            .output(),
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

/// An unknown `api=` names the file and the line, exit 2, no password; the v3 settings are
/// refused for a file of v2 agents only.
#[tokio::test]
async fn a_bad_api_field_names_the_file_and_line_and_v3_settings_want_a_v3_agent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agents.txt");
    let bridge = |text: &str, extra: &[&str]| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut c = Command::new(BIN);
        c.args([
            "bridge",
            "--gws",
            "http://127.0.0.1:9",
            "--nats",
            "nats://127.0.0.1:9",
        ])
        .arg("--agents")
        .arg(&path)
        .args(extra)
        .env_remove("GWS_CLIENT_SECRET")
        .stdin(Stdio::null())
        .kill_on_drop(true);
        within("the bridge", Duration::from_secs(20), c.output())
    };
    let out = bridge(&format!("a:{PASSWORD}\napi=v4 b:{PASSWORD}\n"), &[])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "agents file {}: line 2: unknown api \"v4\" (expected api=v2 or api=v3)",
            path.display()
        )),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    let out = bridge(&format!("a:{PASSWORD}\n"), &["--client-id", "crm"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--client-id is for --api v3"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_follows_its_shard_and_stops_cleanly_on_sigterm() {
    within("the test", Duration::from_secs(60), async {
        let nats = nats::NatsServer::start().await.expect("nats-server");
        let users: Vec<String> = (0..6).map(|i| format!("cli{i}")).collect();
        let mine: Vec<&String> = users.iter().filter(|u| shard_of(u, 2) == 1).collect();
        assert!(!mine.is_empty() && mine.len() < users.len());
        let mut config = GwsServerConfig::new(users[0].clone(), PASSWORD);
        for u in &users[1..] {
            config.gws = config.gws.with_user(u.clone(), PASSWORD);
        }
        config.scenario = Some(
            parse_scenario(
                r#"{"at_ms":300,"ring":{"from":"5115","to":"5001"}}
{"at_ms":500,"answer":0}"#,
            )
            .unwrap(),
        );
        let sim = GwsSimServer::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = agents_file(dir.path(), &users, 0o600);
        let child = Command::new(BIN)
            .args(["bridge", "--gws", &sim.base_url(), "--nats", &nats.url()])
            .arg("--agents")
            .arg(&path)
            .args(["--shard", "1/2", "--replica", "cli-test"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Two changes (ring, answer) per agent of the shard.
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client);
        let want = 2 * mine.len() as u64;
        within("the shard's changes", Duration::from_secs(30), async {
            loop {
                if let Ok(mut s) = js.get_stream(STREAM).await {
                    if s.info().await.map(|i| i.state.messages).unwrap_or(0) >= want {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert_eq!(sim.bayeux().stats().sessions, mine.len());
        let mut stream = js.get_stream(STREAM).await.unwrap();
        assert_eq!(stream.info().await.unwrap().state.messages, want);
        for seq in 1..=want {
            let m = stream.direct_get(seq).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            let agent = v["agent"].as_str().unwrap().to_owned();
            assert!(
                mine.iter().any(|u| **u == agent),
                "{agent} is not of shard 1/2"
            );
        }

        let pid = child.id().unwrap().to_string();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = within(
            "exit after SIGTERM",
            Duration::from_secs(20),
            child.wait_with_output(),
        )
        .await
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(!err.contains(PASSWORD), "{err}");
        // Every session said /meta/disconnect.
        within("sessions gone", Duration::from_secs(5), async {
            while sim.bayeux().stats().sessions > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert_eq!(sim.bayeux().stats().disconnects, mine.len() as u64);
    })
    .await;
}

/// NATS refused: the first warning names the URL and the cause within seconds (not a
/// JetStream timeout 15 s later), no warning repeats it, and SIGTERM ends with exit 1 and
/// one final line naming the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_nats_is_named_at_once_and_once() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    within("the test", Duration::from_secs(60), async {
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nats_url = format!("nats://127.0.0.1:{}", closed.local_addr().unwrap().port());
        drop(closed);
        let mut config = GwsServerConfig::new("refused0", PASSWORD);
        config.scenario =
            Some(parse_scenario(r#"{"at_ms":300,"ring":{"from":"5115","to":"5001"}}"#).unwrap());
        let sim = GwsSimServer::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = agents_file(dir.path(), &["refused0".into()], 0o600);
        let mut child = Command::new(BIN)
            .args(["bridge", "--gws", &sim.base_url(), "--nats", &nats_url])
            .arg("--agents")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let warning = within("the first warning", Duration::from_secs(5), async {
            loop {
                let line = lines.next_line().await.unwrap().expect("stderr open");
                seen.push(line.clone());
                if line.contains("WARN") {
                    return line;
                }
            }
        })
        .await;
        assert!(
            warning.contains(&format!("cannot reach NATS at {nats_url}"))
                && warning.contains("refused"),
            "{warning}"
        );
        // The ring reaches the bridge's buffer, then SIGTERM.
        within("the session", Duration::from_secs(10), async {
            while sim.bayeux().stats().sessions == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let pid = child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        within("exit after SIGTERM", Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                seen.push(line);
            }
        })
        .await;
        let status = within("exit status", Duration::from_secs(5), child.wait())
            .await
            .unwrap();
        let all = seen.join("\n");
        assert_eq!(status.code(), Some(1), "{all}");
        assert_eq!(all.matches("WARN").count(), 1, "{all}");
        let last = seen.last().unwrap();
        assert!(
            last.contains("changes were not written to JetStream")
                && last.contains(&format!("NATS at {nats_url}")),
            "{all}"
        );
    })
    .await;
}

/// A stream the bridge cannot read through (made by someone else without direct get): exit
/// 2 at once, one line naming the stream and the fix, not a retry loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_direct_get_stops_the_bridge_with_exit_2() {
    within("the test", Duration::from_secs(60), async {
        let nats = nats::NatsServer::start().await.expect("nats-server");
        let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
        js.create_stream(jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec!["gws.calls.>".into()],
            allow_direct: false,
            ..Default::default()
        })
        .await
        .unwrap();
        let sim = GwsSimServer::start(GwsServerConfig::new("direct0", PASSWORD))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = agents_file(dir.path(), &["direct0".into()], 0o600);
        let out = within(
            "the bridge's exit",
            Duration::from_secs(20),
            Command::new(BIN)
                .args(["bridge", "--gws", &sim.base_url(), "--nats", &nats.url()])
                .arg("--agents")
                .arg(&path)
                // The default filter, as a newcomer runs it (with RUST_LOG=info the NATS
                // client's own "event: closed" may land after the last line).
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains("stream GWS_CALLS exists without allow_direct")
                && last.contains("nats stream edit GWS_CALLS --allow-direct"),
            "{err}"
        );
        assert_eq!(err.matches("allow_direct").count(), 1, "{err}");
    })
    .await;
}
