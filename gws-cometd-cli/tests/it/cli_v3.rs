//! `--api v3` on the commands, against the simulator, which serves both generations: `watch`
//! prints the call in progress then each change in v2's format; `attach --api v3` comes back
//! typed as written (`A=12345` a string, `P:=2` a number); v3's secrets never from argv.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;
use gws_cometd_test_support::within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_attach_with_api_v3_print_the_v2_lines_typed_as_written() {
    let sim = gws_sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    let base = sim.base_url();
    let user = format!("\\{USER}");
    let mut watch = cmd(&[
        "watch", "--api", "v3", "--gws", &base, "--user", &user, "--count", "3",
    ])
    .env("GWS_PASSWORD", PASSWORD)
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = within("the catch-up line", WAIT, lines.next_line())
        .await
        .unwrap()
        .expect("a line");
    assert!(
        first.contains(&id) && first.contains(r#""origin":"catchUp""#),
        "{first}"
    );
    let out = run(cmd(&[
        "attach", "--api", "v3", "--gws", &base, "--user", &user, &id, "A=12345", "P:=2",
    ])
    .env("GWS_PASSWORD", PASSWORD))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let attached = within("the attach line", WAIT, lines.next_line())
        .await
        .unwrap()
        .expect("a line");
    assert_eq!(
        attached,
        format!(
            r#"{{"callId":"{id}","notificationType":"AttachedDataChanged","userData":{{"added":[{{"key":"A","value":"12345"}},{{"key":"P","value":2}}]}}}}"#
        )
    );
    let out = run(
        cmd(&["hold", "--api", "v3", "--gws", &base, "--user", &user, &id])
            .env("GWS_PASSWORD", PASSWORD),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let held = within("the hold line", WAIT, lines.next_line())
        .await
        .unwrap()
        .expect("a line");
    assert!(held.contains(r#""to":"Held""#), "{held}");
    let out = finish(watch).await;
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test]
async fn v3_secrets_come_from_the_environment_or_a_file_and_only_for_v3() {
    let sim = gws_sim().await;
    let base = sim.base_url();
    let out = run(cmd(&[
        "watch",
        "--api",
        "v3",
        "--gws",
        &base,
        "--user",
        USER,
        "--client-id",
        "app",
    ])
    .env("GWS_PASSWORD", PASSWORD)
    .env_remove("GWS_CLIENT_SECRET"))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "--client-id app: no secret: set GWS_CLIENT_SECRET or pass --client-secret-file FILE"
        ),
        "{err}"
    );
    let out = run(cmd(&[
        "watch",
        "--gws",
        &base,
        "--user",
        USER,
        "--client-id",
        "app",
    ])
    .env("GWS_PASSWORD", PASSWORD)
    .env("GWS_CLIENT_SECRET", "s"))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--client-id is for --api v3"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&mut cmd(&[
        "watch", "--api", "v4", "--gws", &base, "--user", USER,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("expected v2 or v3"),
        "{}",
        text(&out.stderr)
    );
}
