//! `replay` conventions: `-` is stdin, a byte-order mark is accepted, and a line that does
//! not read is one error line `FILE:LINE:COLUMN: what is wrong` in plain words.

use std::process::Stdio;

use crate::support::*;
use tokio::io::AsyncWriteExt;

async fn replay_stdin(input: Vec<u8>, args: &[&str]) -> std::process::Output {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.push("-");
    let mut child = cmd(&all).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Written while the child reads, then closed so it sees the end.
    let writer = tokio::spawn(async move {
        stdin.write_all(&input).await.unwrap();
        drop(stdin);
    });
    let out = finish(child).await;
    writer.await.unwrap();
    out
}

#[tokio::test]
async fn replay_dash_reads_stdin_like_a_file() {
    let path = fixture("inbound-call.jsonl");
    let from_file = run(&mut cmd(&["replay", path.to_str().unwrap()])).await;
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    assert!(!from_file.stdout.is_empty());
    let from_stdin = replay_stdin(std::fs::read(&path).unwrap(), &[]).await;
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    assert_eq!(text(&from_stdin.stdout), text(&from_file.stdout));
    assert!(from_stdin.stderr.is_empty(), "{}", text(&from_stdin.stderr));

    let snapshot = replay_stdin(std::fs::read(&path).unwrap(), &["--snapshot"]).await;
    assert!(snapshot.status.success());
    assert!(text(&snapshot.stdout).starts_with(r#"{"calls":"#));
}

#[tokio::test]
async fn a_byte_order_mark_is_accepted_in_a_file_and_on_stdin() {
    let path = fixture("inbound-call.jsonl");
    let expected = text(
        &run(&mut cmd(&["replay", path.to_str().unwrap()]))
            .await
            .stdout,
    );
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), &std::fs::read(&path).unwrap()].concat();
    let dir = tempfile::tempdir().unwrap();
    let bom_file = dir.path().join("bom.jsonl");
    std::fs::write(&bom_file, &with_bom).unwrap();

    let out = run(&mut cmd(&["replay", bom_file.to_str().unwrap()])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expected);

    let out = replay_stdin(with_bom, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expected);
}

#[tokio::test]
async fn errors_name_file_line_and_column_in_plain_words_and_print_nothing() {
    let seed = std::fs::read_to_string(fixture("seed-attached-data-changed.jsonl")).unwrap();
    let seed = seed.trim_end();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // Plain text, where serde_json would say `expected ident`.
        (
            format!("{seed}\nnot json\n"),
            "calls.jsonl:2:2: not JSON: expected a value",
        ),
        // A line of words.
        (
            format!("{seed}\n\nhello world\n"),
            "calls.jsonl:3:1: not JSON: expected a value",
        ),
        (
            format!("{seed}\n[{{\"channel\":\"/v2/me/calls\"\n"),
            "calls.jsonl:2:26: not JSON: the text ends inside an object (a '}' is missing)",
        ),
        (
            format!("{seed}\n{{channel:1}}\n"),
            "calls.jsonl:2:2: not JSON: an object key must be a string in double quotes",
        ),
    ];
    for (content, expected) in cases {
        let path = dir.path().join("calls.jsonl");
        std::fs::write(&path, &content).unwrap();
        // Run from the directory, so the file is named as given.
        let out = run(cmd(&["replay", "calls.jsonl"]).current_dir(dir.path())).await;
        assert_eq!(out.status.code(), Some(2), "{expected}");
        assert!(out.stdout.is_empty(), "nothing on stdout");
        assert_eq!(
            text(&out.stderr),
            format!("gws-cometd replay: {expected}\n")
        );

        // On stdin, the name is <stdin>.
        let out = replay_stdin(content.into_bytes(), &[]).await;
        assert_eq!(out.status.code(), Some(2));
        let on_stdin = expected.replace("calls.jsonl", "<stdin>");
        assert_eq!(
            text(&out.stderr),
            format!("gws-cometd replay: {on_stdin}\n")
        );
    }
}

#[tokio::test]
async fn a_missing_file_is_one_line_and_exit_2() {
    let out = run(&mut cmd(&["replay", "/nonexistent/calls.jsonl"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "replay", "/nonexistent/calls.jsonl");
    assert_eq!(text(&out.stderr).lines().count(), 1);
}
