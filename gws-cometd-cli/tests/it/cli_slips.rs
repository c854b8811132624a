//! Nothing lost by a slip: `--record` never truncates a file that holds something unless
//! told to, and a fixture that is empty, a directory or binary gets a plain line.

use crate::support::*;

/// `watch --count 1` with `extra` against a simulator with one ringing call.
async fn watch_one(extra: &[&str]) -> std::process::Output {
    let sim = gws_sim().await;
    sim.gws().ring_inbound("5115", "5001");
    let mut args = vec!["--count", "1"];
    args.extend_from_slice(extra);
    run(&mut gws_cmd(&sim, "watch", &args)).await
}

#[tokio::test]
async fn record_refuses_a_file_that_holds_something_unless_force_or_append() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keep.jsonl");
    let path = file.to_str().unwrap();
    let kept = "{\"channel\":\"/meta/connect\",\"successful\":true}\n".repeat(25);
    std::fs::write(&file, &kept).unwrap();

    for command in ["watch", "tail"] {
        let sim = gws_sim().await;
        let out = run(&mut gws_cmd(
            &sim,
            command,
            &["--count", "1", "--record", path],
        ))
        .await;
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert_fatal_line(
            &out,
            command,
            &format!(
                "--record {path}: the file exists and is not empty ({} bytes); refusing to \
                 overwrite it (--force overwrites it, --append adds to it)",
                kept.len()
            ),
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), kept, "untouched");
        assert_eq!(
            sim.bayeux().stats().handshakes,
            0,
            "refused before connecting"
        );
    }

    // --append keeps what was there and adds the new session.
    let out = watch_one(&["--record", path, "--append"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let appended = std::fs::read_to_string(&file).unwrap();
    assert!(appended.starts_with(&kept) && appended.len() > kept.len());

    // --force overwrites.
    let out = watch_one(&["--record", path, "--force"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let overwritten = std::fs::read_to_string(&file).unwrap();
    assert!(!overwritten.starts_with(&kept), "{overwritten}");

    // An empty file is not worth keeping: recorded over without asking.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = watch_one(&["--record", empty.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::metadata(&empty).unwrap().len() > 0);

    // Both at once is a usage error.
    let out = run(&mut cmd(&[
        "watch", "--record", path, "--force", "--append",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be used with"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn an_empty_fixture_is_said_so_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n  \n").unwrap();
    let empty = empty.to_str().unwrap().to_owned();
    for (file, name) in [(empty.as_str(), empty.as_str()), ("/dev/null", "/dev/null")] {
        for snapshot in [false, true] {
            let mut args = vec!["replay", file];
            if snapshot {
                args.push("--snapshot");
            }
            let out = run(&mut cmd(&args)).await;
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            assert!(out.stdout.is_empty(), "{args:?}");
            assert_fatal_line(
                &out,
                "replay",
                &format!("{name} is empty: no lines to replay"),
            );
        }
    }
}

#[tokio::test]
async fn a_directory_or_a_binary_file_as_a_fixture_gets_a_plain_line() {
    let dir = tempfile::tempdir().unwrap();
    let adir = dir.path().join("adir");
    std::fs::create_dir(&adir).unwrap();
    let out = run(&mut cmd(&["replay", adir.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(
        &out,
        "replay",
        &format!("{} is a directory, not a fixture", adir.display()),
    );

    let binary = dir.path().join("calls.jsonl.gz");
    std::fs::write(
        &binary,
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xcb\x48\xcd\xc9\xc9\x07\x00",
    )
    .unwrap();
    let out = run(&mut cmd(&["replay", binary.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(
        &out,
        "replay",
        &format!(
            "{} is not a fixture: it holds binary data, not JSON Lines text",
            binary.display()
        ),
    );
}
