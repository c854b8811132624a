//! `--api v3` on the commands, against the simulator, which serves both generations: `watch`
//! prints the call in progress then each change in v2's format; `attach --api v3` comes back
//! typed as written (`A=12345` a string, `P:=2` a number); v3's secrets never from argv;
//! `--client-id` without a secret and `--redirect-uri` sign in with the code as that client.

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
    // A secret means the password grant, which has no redirect URI: said, not ignored.
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
        "--redirect-uri",
        "https://app.example/cb",
    ])
    .env("GWS_PASSWORD", PASSWORD)
    .env("GWS_CLIENT_SECRET", "s3cret-of-app"))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--client-id app has a secret (GWS_CLIENT_SECRET or --client-secret-file)"),
        "{err}"
    );
    assert!(!err.contains("s3cret-of-app"), "{err}");
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

/// `--client-id` without a secret signs in with the authorization code as that client, with
/// `--redirect-uri`: what a real GWS 9 registered (here the simulator, which refuses any
/// other client or redirect URI once one is registered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_id_without_a_secret_signs_in_as_that_client_with_its_redirect_uri() {
    const CLIENT: &str = "crm-sync";
    const REDIRECT: &str = "https://crm.example/gws/callback";
    let sim = gws_sim().await;
    sim.v3().register_client(CLIENT, REDIRECT);
    let id = sim.gws().ring_inbound("5115", "5001");
    let base = sim.base_url();
    let user = format!("\\{USER}");
    let watch = |extra: &[&str]| {
        let mut args = vec![
            "watch", "--api", "v3", "--gws", &base, "--user", &user, "--count", "1",
        ];
        args.extend_from_slice(extra);
        let mut c = cmd(&args);
        c.env("GWS_PASSWORD", PASSWORD)
            .env_remove("GWS_CLIENT_SECRET");
        c
    };
    let out = run(&mut watch(&[
        "--client-id",
        CLIENT,
        "--redirect-uri",
        REDIRECT,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(
        line.contains(&id) && line.contains(r#""origin":"catchUp""#),
        "{line}"
    );
    // The default redirect URI (the base URL) is not the registered one.
    let out = run(&mut watch(&["--client-id", CLIENT])).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "refused client \"{CLIENT}\" with redirect URI \"{base}/\""
        )),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
}

#[tokio::test]
async fn redirect_uri_is_for_v3_and_an_absolute_url() {
    let sim = gws_sim().await;
    let base = sim.base_url();
    let out = run(cmd(&[
        "watch",
        "--gws",
        &base,
        "--user",
        USER,
        "--redirect-uri",
        "https://app.example/cb",
    ])
    .env("GWS_PASSWORD", PASSWORD))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--redirect-uri is for --api v3 (API v2 logs in with the user's password)"),
        "{err}"
    );
    let out = run(cmd(&[
        "attach",
        "--api",
        "v3",
        "--gws",
        &base,
        "--user",
        USER,
        "--redirect-uri",
        "app.example/cb",
        "CALL",
        "A=1",
    ])
    .env("GWS_PASSWORD", PASSWORD))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("not an absolute URL (e.g. https://app.example.com/callback)"),
        "{err}"
    );
}
