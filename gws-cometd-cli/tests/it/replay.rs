//! Fixtures (reader, recorder) and the `gws-cometd replay` command.

use std::path::Path;
use std::process::{Command, Output};

use gws_cometd::bayeux::Message;
use gws_cometd::fixture::{FixtureError, Reader, Recorder};

use crate::support::{fixture, BIN};

fn golden(name: &str) -> String {
    std::fs::read_to_string(fixture("golden").join(name)).unwrap()
}

fn replay(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN).arg("replay").args(args).output().unwrap()
}

fn replay_file(path: &Path, snapshot: bool) -> Output {
    let mut args = vec![path.as_os_str()];
    if snapshot {
        args.push("--snapshot".as_ref());
    }
    replay(&args)
}

fn assert_golden(fixture_name: &str) {
    let stem = fixture_name.trim_end_matches(".jsonl");
    for (snapshot, golden_name) in [
        (false, format!("{stem}.changes.jsonl")),
        (true, format!("{stem}.snapshot.json")),
    ] {
        let out = replay_file(&fixture(fixture_name), snapshot);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            golden(&golden_name),
            "{fixture_name} --snapshot={snapshot}"
        );
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn replay_matches_the_golden_outputs() {
    assert_golden("seed-attached-data-changed.jsonl");
    assert_golden("inbound-call.jsonl");
    assert_golden("inbound-call-in-wrap-up.jsonl");
    assert_golden("v3-inbound-call.jsonl");
}

#[test]
fn the_inbound_call_golden_tells_the_story_of_the_call() {
    let changes = golden("inbound-call.changes.jsonl");
    let lines: Vec<serde_json::Value> = changes
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let call: Vec<_> = lines
        .iter()
        .filter(|c| c["callId"] == "01RCC3N118B1V0SL8O7GK2LAES00000T")
        .collect();
    let states: Vec<_> = call
        .iter()
        .filter_map(|c| c["state"]["to"].as_str())
        .collect();
    assert_eq!(states, ["Ringing", "Established", "Released", "Completed"]);
    // The duplicate AccountNumber is an addition; DeleteUserDataPair removes both.
    assert!(changes.contains(r#"{"added":[{"key":"AccountNumber","value":"67890"}]}"#));
    assert!(changes.contains(
        r#"{"removed":[{"key":"AccountNumber","value":"12345"},{"key":"AccountNumber","value":"67890"}]}"#
    ));
    assert_eq!(call.last().unwrap()["removed"], true);
    // The batch that carried the same notification twice produced one change.
    assert_eq!(
        changes.matches(r#""value":"12345"}]}}"#).count(),
        2,
        "one addition for each call, no repeat"
    );

    // Completed calls leave the snapshot; the wrap-up fixture still holds the call, with its
    // big integer and decimal spelling as received.
    let snap = golden("inbound-call.snapshot.json");
    assert!(!snap.contains("00000T"));
    assert!(snap.contains("00000R"));
    let wrap = golden("inbound-call-in-wrap-up.snapshot.json");
    assert!(wrap.contains(r#""state":"Released""#));
    assert!(wrap.contains(r#""BigCounter":9007199254740993,"Score":0.50"#));
    assert!(wrap.contains(r#""x-futureField":{"a":[1,2,3]}"#));
}

#[test]
fn the_snapshot_keeps_duplicate_pairs_and_unknown_fields_as_received() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dups.jsonl");
    let call = r#"{"id":"c1","state":"Established","userData":{"A":"1","A":"2","N":123456789012345678901234567890},"x-new":{"k":[1.0,2]}}"#;
    std::fs::write(
        &path,
        format!(
            "{{\"channel\":\"/meta/connect\",\"successful\":true}}\n[{{\"channel\":\"/v2/me/calls\",\"data\":{{\"messageType\":\"CallStateChangeMessage\",\"notificationType\":\"AttachedDataChanged\",\"call\":{call}}}}},{{\"channel\":\"/elsewhere\",\"data\":{{\"messageType\":\"CallStateChangeMessage\",\"call\":{{\"id\":\"c2\"}}}}}}]\n"
        ),
    )
    .unwrap();
    let out = replay_file(&path, true);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{{\"calls\":{{\"c1\":{call}}}}}\n")
    );
}

fn assert_fails_cleanly(out: &Output, expected_in_stderr: &str) {
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    assert!(err.contains(expected_in_stderr), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_malformed_line_fails_with_file_and_line_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    // Valid changes before the bad line must not be printed either.
    let seed = std::fs::read_to_string(fixture("seed-attached-data-changed.jsonl")).unwrap();
    std::fs::write(
        &path,
        format!("{seed}\n[{{\"channel\":\"/v2/me/calls\",}}]\n"),
    )
    .unwrap();
    for snapshot in [false, true] {
        let out = replay_file(&path, snapshot);
        assert_fails_cleanly(&out, &format!("{}:3:", path.display()));
    }
}

#[test]
fn non_utf8_input_fails_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.jsonl");
    std::fs::write(
        &path,
        b"{\"channel\":\"/a\"}\n{\"channel\":\"/b\",\"data\":\"caf\xe9\"}\n",
    )
    .unwrap();
    let out = replay_file(&path, false);
    assert_fails_cleanly(&out, &format!("{}:2:28: invalid UTF-8", path.display()));
}

#[test]
fn an_unreadable_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    assert_fails_cleanly(&replay_file(&missing, false), "missing.jsonl");
    // A directory cannot be read as a fixture either.
    assert_fails_cleanly(
        &replay_file(dir.path(), true),
        &dir.path().display().to_string(),
    );
}

#[test]
fn a_call_notification_that_does_not_fit_fails_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noid.jsonl");
    std::fs::write(
        &path,
        "\n{\"channel\":\"/v2/me/calls\",\"data\":{\"messageType\":\"CallStateChangeMessage\",\"call\":{\"state\":\"Ringing\"}}}\n",
    )
    .unwrap();
    assert_fails_cleanly(&replay_file(&path, false), ":2:");
}

#[test]
fn the_reader_skips_blank_lines_and_reports_positions() {
    let text = "\n  \n{\"channel\":\"/a\"}\r\n[{\"channel\":\"/b\"},{\"channel\":\"/c\",\"id\":5}]\n\n{\"channel\":\"/d\",\"id\":[}\n{\"channel\":\"/e\"}\n";
    let mut r = Reader::new("mem.jsonl", text.as_bytes());
    let mut seen = Vec::new();
    let err = loop {
        match r.next() {
            Some(Ok(m)) => seen.push(m.channel),
            Some(Err(e)) => break e,
            None => panic!("no error"),
        }
    };
    assert_eq!(seen, ["/a", "/b", "/c"]);
    match &err {
        FixtureError::Parse {
            path, line, column, ..
        } => {
            assert_eq!(path, Path::new("mem.jsonl"));
            assert_eq!(*line, 6);
            // The column serde_json reports within the line is passed through.
            let bad = r#"{"channel":"/d","id":[}"#;
            let expected = serde_json::from_str::<Message>(bad).unwrap_err().column();
            assert!(expected > 0);
            assert_eq!(*column, expected);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().starts_with("mem.jsonl:6:"), "{err}");
    assert!(r.next().is_none(), "stops after the first error");
}

#[test]
fn a_byte_order_mark_before_the_first_line_is_skipped_and_nowhere_else() {
    let text = "\u{feff}{\"channel\":\"/a\"}\n\u{feff}{\"channel\":\"/b\"}\n";
    let mut r = Reader::new("bom.jsonl", text.as_bytes());
    assert_eq!(r.next().unwrap().unwrap().channel, "/a");
    // A second one is not where a byte-order mark goes: the line does not read.
    assert!(matches!(
        r.next(),
        Some(Err(FixtureError::Parse { line: 2, .. }))
    ));
}

#[test]
fn the_recorder_writes_each_body_on_one_line_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.jsonl");
    let bodies: [&[u8]; 4] = [
        br#"[{"channel":"/v2/me/calls","data":{"userData":{"A":"1","A":"2","n":9007199254740993,"f":1.50,"s":"a\nb\u00e9"}}}]"#,
        b"[\r\n  {\"channel\": \"/meta/connect\",\n   \"successful\": true}\n]\n",
        b"   ",
        br#"{"channel":"/x"}"#,
    ];
    let mut rec = Recorder::create(&path).unwrap();
    for b in bodies {
        rec.record(b).unwrap();
        // Flushed on every body: the file is complete without dropping the recorder.
    }
    let written = std::fs::read_to_string(&path).unwrap();
    drop(rec);
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 3, "{written}");
    assert_eq!(lines[0].as_bytes(), bodies[0]);
    assert_eq!(
        lines[1],
        "[    {\"channel\": \"/meta/connect\",    \"successful\": true} ]"
    );
    assert_eq!(lines[2].as_bytes(), bodies[3]);

    let replayed: Vec<Message> = Reader::open(&path).unwrap().map(Result::unwrap).collect();
    assert_eq!(replayed.len(), 3);
    assert_eq!(
        replayed[0].data.as_ref().unwrap().get(),
        r#"{"userData":{"A":"1","A":"2","n":9007199254740993,"f":1.50,"s":"a\nb\u00e9"}}"#
    );
    assert_eq!(replayed[1].successful, Some(true));
}

#[tokio::test]
async fn the_fixture_stream_ends_with_the_error() {
    use futures::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    std::fs::write(
        &path,
        "[{\"channel\":\"/a\"},{\"channel\":\"/b\"}]\nnot json\n{\"channel\":\"/c\"}\n",
    )
    .unwrap();
    let items: Vec<_> = gws_cometd::fixture::read(&path).collect().await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[1].as_ref().unwrap().channel, "/b");
    let err = items[2].as_ref().unwrap_err().to_string();
    assert!(err.contains("s.jsonl:2:2"), "{err}");

    let missing: Vec<_> = gws_cometd::fixture::read(dir.path().join("nope"))
        .collect()
        .await;
    assert_eq!(missing.len(), 1);
    assert!(missing[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("nope"));
}

#[test]
fn the_snapshot_writes_each_call_byte_for_byte_as_received() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exact.jsonl");
    // Known fields out of the usual order, a null known field, escapes, spacing, and a
    // number spelling: none of it may be normalized.
    let call = r#"{ "state" : "Established", "userData":{"Name":"Ren\u00e9e","Name":"x","n":1.50}, "ani":null, "id":"c\u0031", "callType":"Inbound" }"#;
    let line = |nt: &str, call: &str| {
        format!(
            r#"[{{"channel":"/v2/me/calls","data":{{"messageType":"CallStateChangeMessage","notificationType":"{nt}","call":{call}}}}}]"#
        )
    };
    let first = r#"{"id":"c1","state":"Ringing"}"#;
    std::fs::write(
        &path,
        format!(
            "{}\n{}\n",
            line("StatusChange", first),
            line("AttachedDataChanged", call)
        ),
    )
    .unwrap();
    let out = replay_file(&path, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{{\"calls\":{{\"c1\":{call}}}}}\n")
    );
    // The change still reads the escaped id and values as decoded text.
    let changes = String::from_utf8(replay_file(&path, false).stdout).unwrap();
    assert!(
        changes.contains(r#"{"callId":"c1","notificationType":"AttachedDataChanged","state":{"from":"Ringing","to":"Established"},"userData":{"added":[{"key":"Name","value":"Renée"},"#),
        "{changes}"
    );
}

#[test]
fn time_stamps_are_written_before_bodies_and_read_out_of_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stamped.jsonl");
    let mut rec = Recorder::create(&path).unwrap().with_time_stamps();
    rec.record(br#"[{"channel":"/v2/me/calls","data":{"n":1}}]"#)
        .unwrap();
    rec.record(br#"[{"channel":"/v2/me/calls","data":{"n":2}}]"#)
        .unwrap();
    drop(rec);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.starts_with(r#"{"channel":"/gws-cometd/time","data":{"unixMs":"#),
        "{written}"
    );
    // The stamps are not messages: the reader hands back the two bodies only, and keeps the
    // stamp of each.
    let mut reader = Reader::open(&path).unwrap();
    let (line, batch) = reader.next_batch().unwrap().unwrap();
    assert_eq!(line, 2);
    assert_eq!(batch[0].data.as_ref().unwrap().get(), r#"{"n":1}"#);
    let first = reader.time_stamp().expect("a stamp before the first body");
    assert!(first > 1_600_000_000_000, "{first}");
    let (_, batch) = reader.next_batch().unwrap().unwrap();
    assert_eq!(batch[0].data.as_ref().unwrap().get(), r#"{"n":2}"#);
    assert!(reader.time_stamp().unwrap() >= first);
    assert!(reader.next_batch().is_none());
    // Old fixtures carry none.
    let mut old = Reader::open(fixture("inbound-call.jsonl")).unwrap();
    old.next_batch().unwrap().unwrap();
    assert_eq!(old.time_stamp(), None);
}

#[test]
fn a_bad_time_stamp_is_an_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-stamp.jsonl");
    std::fs::write(
        &path,
        "[{\"channel\":\"/x\",\"data\":{}}]\n{\"channel\":\"/gws-cometd/time\",\"data\":{\"unixMs\":\"soon\"}}\n",
    )
    .unwrap();
    let err = Reader::open(&path)
        .unwrap()
        .find_map(Result::err)
        .expect("an error");
    let shown = err.to_string();
    assert!(shown.contains("bad-stamp.jsonl:2:"), "{shown}");
}
