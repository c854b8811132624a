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
