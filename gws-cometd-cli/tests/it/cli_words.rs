//! Words made consistent: numbers refused alike whatever the option, each command's own log
//! target and exit codes, the banner only at INFO, each session event said once.

use crate::support::*;
use gws_cometd_test_support::within;
use tokio::io::{AsyncReadExt, BufReader};

#[tokio::test]
async fn negative_zero_and_nonsense_numbers_get_the_same_clear_line_whatever_the_option() {
    for (args, expected) in [
        (
            vec!["watch", "--count", "-1"],
            "invalid value '-1' for '--count <N>': expected a whole number of 1 or more",
        ),
        (
            vec!["tail", "--count", "0"],
            "invalid value '0' for '--count <N>': expected a whole number of 1 or more",
        ),
        (
            vec!["watch", "--duration", "-1"],
            "invalid value '-1' for '--duration <SECS>': expected a number of seconds greater than 0",
        ),
        (
            vec!["watch", "--max-network-delay", "0"],
            "invalid value '0' for '--max-network-delay <SECS>': expected a number of seconds greater than 0",
        ),
        (
            vec!["tail", "--max-network-delay", "-0.5"],
            "invalid value '-0.5' for '--max-network-delay <SECS>': expected a number of seconds greater than 0",
        ),
        (
            vec!["serve", "--seed", "-1"],
            "invalid value '-1' for '--seed <N>': expected a whole number of 0 or more",
        ),
    ] {
        let out = run(&mut cmd(&args)).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("unexpected argument"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn each_help_lists_only_the_exit_codes_that_apply() {
    let help = |command: &'static str| async move {
        let out = run(&mut cmd(&[command, "--help"])).await;
        assert!(out.status.success());
        let all = text(&out.stdout);
        all[all.find("Exit codes:").expect("exit codes")..].to_owned()
    };
    let replay = help("replay").await;
    assert!(
        !replay.contains("statusCode") && !replay.contains("--count"),
        "{replay}"
    );
    assert!(replay.contains("1  the fixture is empty"), "{replay}");
    for command in ["watch", "tail"] {
        let codes = help(command).await;
        assert!(!codes.contains("statusCode"), "{command}: {codes}");
        assert!(
            codes.contains("fewer than --count lines"),
            "{command}: {codes}"
        );
    }
    let serve = help("serve").await;
    assert!(
        !serve.contains("statusCode") && !serve.contains("\n  1 "),
        "{serve}"
    );
}

#[tokio::test]
async fn each_command_logs_under_its_own_target_and_each_session_event_once() {
    let sim = gws_sim().await;
    for command in ["watch", "tail"] {
        let mut c = gws_cmd(&sim, command, &[]);
        c.env("RUST_LOG", "info").env("NO_COLOR", "1");
        let mut child = c.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = read_until(&mut stderr, " connected").await;
        sigterm(&child);
        let status = within("the exit", WAIT, child.wait()).await.unwrap();
        assert_eq!(status.code(), Some(0));
        let mut rest = String::new();
        within("the rest of stderr", WAIT, stderr.read_to_string(&mut rest))
            .await
            .unwrap();
        lines.extend(rest.lines().map(str::to_owned));
        let err = lines.join("\n");
        let line = err
            .lines()
            .find(|l| l.contains("SIGTERM: disconnected"))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(
            line.contains(&format!("gws_cometd::cli::{command}:")),
            "{line}"
        );
        for event in [" subscribed", " connected"] {
            let said = err
                .lines()
                .filter(|l| l.ends_with(event) || l.contains(&format!("{event} ")))
                .count();
            assert_eq!(said, 1, "{command}: {event:?} said {said} times:\n{err}");
        }
        // Wait for the session to be gone before the next command subscribes.
        assert!(sim.bayeux().wait_for_sessions(0, WAIT).await);
    }
}

#[tokio::test]
async fn the_banner_is_shown_at_info_only() {
    let quiet = run(cmd(&["watch", "--count", "1"]).env("RUST_LOG", "warn")).await;
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert_eq!(json_lines(&quiet).len(), 1);
    let err = text(&quiet.stderr);
    assert!(!err.contains("built-in GWS simulator"), "{err}");
    assert!(!err.contains(" watch --gws "), "{err}");

    let told = run(&mut cmd(&["watch", "--count", "1"])).await;
    assert!(told.status.success(), "{}", text(&told.stderr));
    assert!(text(&told.stderr).contains("built-in GWS simulator"));
}

#[tokio::test]
async fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef gws-cometd"),
        ("fish", "complete -c gws-cometd"),
    ] {
        let out = run(&mut cmd(&["completions", shell])).await;
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script:.300}");
        for word in ["watch", "replay", "record", "scenario-per-session"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let out = run(&mut cmd(&["completions", "tcsh"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid value 'tcsh'"));
}

/// A server that accepts connections and never answers: `tail --url` gives up after its
/// handshake attempts, and says the deadline as it was set.
#[tokio::test]
async fn a_deadline_is_said_as_it_was_set() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cometd", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let out = run(&mut cmd(&[
        "tail",
        "--url",
        &url,
        "--max-network-delay",
        "1",
    ]))
    .await;
    silent.abort();
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "tail", &format!("{url}: no reply within 1s"));
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .filter(|l| l.contains("handshake failed"))
            .all(|l| l.contains("no reply within 1s")),
        "{err}"
    );
}
