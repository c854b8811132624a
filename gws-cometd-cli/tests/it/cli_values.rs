//! The REST commands of the binary against the GWS simulator: values typed as httpie types
//! them, call control, and arguments refused before any request is made.

use crate::support::*;
use gws_cometd_sim::gws::SimCallState;
use gws_cometd_sim::GwsSimServer;
use gws_cometd_test_support::within;

/// The call's `userData` object text, exactly as the simulator holds it (order,
/// duplicates and number spellings kept).
fn user_data(sim: &GwsSimServer, id: &str) -> String {
    let json = sim.gws().call_json(id).unwrap();
    let call: gws_cometd::gws::Call = serde_json::from_str(&json).unwrap();
    serde_json::to_string(call.user_data()).unwrap()
}

fn state(sim: &GwsSimServer, id: &str) -> String {
    let json = sim.gws().call_json(id).unwrap();
    let call: serde_json::Value = serde_json::from_str(&json).unwrap();
    call["state"].as_str().unwrap().to_owned()
}

async fn established_call(sim: &GwsSimServer) -> String {
    let id = sim.gws().ring_inbound("5115", "5001");
    sim.gws().answer(&id).unwrap();
    id
}

#[tokio::test]
async fn key_equals_value_is_a_string_and_key_colon_equals_is_exact_json() {
    let sim = gws_sim().await;
    let id = established_call(&sim).await;
    let out = run(&mut gws_cmd(
        &sim,
        "attach",
        &[
            &id,
            "AccountNumber=12345",
            "Zip=007",
            "N:=5",
            "Big:=123456789012345678901234567890",
            r#"Journey:={"IVR":"main","IVR":"billing","Step":3}"#,
            r#"Tags:=["a",2]"#,
            "Empty=",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        user_data(&sim, &id),
        r#"{"AccountNumber":"12345","Zip":"007","N":5,"Big":123456789012345678901234567890,"Journey":{"IVR":"main","IVR":"billing","Step":3},"Tags":["a",2],"Empty":""}"#
    );
}

#[tokio::test]
async fn bad_pairs_ids_and_keys_are_refused_before_any_request() {
    let sim = gws_sim().await;
    let id = established_call(&sim).await;
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "attach",
            vec![&id, "N:=abc"],
            r#""N:=abc": after ':=' at column 4: not JSON"#,
        ),
        ("attach", vec![&id, "NoEquals"], "no '='"),
        ("update", vec![&id, "=x"], "the key is empty"),
        ("update", vec![&id, r#"J:={"a":1"#], "'}' is missing"),
        (
            "attach",
            vec!["", "A=1"],
            "invalid call id \"\": it is empty",
        ),
        ("hold", vec!["a b"], "spaces"),
        ("answer", vec!["http://h/api/v2/me/calls/1"], "'/'"),
        ("delete-all", vec![".."], "only dots"),
        (
            "delete-pair",
            vec![&id, "A=1"],
            "takes a KEY, not KEY=VALUE",
        ),
        ("delete-pair", vec![&id, ""], "the key is empty"),
    ];
    for (command, args, expected) in cases {
        let out = run(&mut gws_cmd(&sim, command, &args)).await;
        assert_eq!(out.status.code(), Some(2), "{command} {args:?}");
        assert_fatal_line(&out, command, expected);
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(
        sim.bayeux().stats().requests,
        0,
        "no request reached the server"
    );
    assert_eq!(sim.gws().stats().logins, 0);
}

#[tokio::test]
async fn call_control_answers_holds_retrieves_and_hangs_up_the_call() {
    let sim = gws_sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    assert_eq!(state(&sim, &id), SimCallState::Ringing.as_str());
    for (command, after) in [
        ("answer", SimCallState::Established),
        ("hold", SimCallState::Held),
        ("retrieve", SimCallState::Established),
        ("hangup", SimCallState::Released),
    ] {
        let out = run(&mut gws_cmd(&sim, command, &[&id])).await;
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        assert_eq!(state(&sim, &id), after.as_str(), "after {command}");
    }
    let stats = sim.gws().stats();
    for operation in ["Answer", "Hold", "Retrieve", "Hangup"] {
        assert_eq!(stats.operation(operation), 1, "{operation}");
    }
}

#[tokio::test]
async fn a_refused_operation_exits_1_with_one_line_naming_the_status() {
    let sim = gws_sim().await;
    let id = sim.gws().ring_inbound("5115", "5001");
    // A ringing call cannot be held.
    let out = run(&mut gws_cmd(&sim, "hold", &[&id])).await;
    assert_eq!(out.status.code(), Some(1));
    assert_fatal_line(&out, "hold", "statusCode 2");
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert_eq!(state(&sim, &id), "Ringing");

    let out = run(&mut gws_cmd(&sim, "answer", &["0071025563e9ffff"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert_fatal_line(&out, "answer", "statusCode 6 (not found)");
    assert!(text(&out.stderr).contains("check the call id"));
}

#[tokio::test]
async fn a_wrong_password_or_no_server_is_one_fatal_line_without_the_password() {
    let sim = gws_sim().await;
    let mut c = gws_cmd(&sim, "answer", &["0071025563e9f001"]);
    c.env("GWS_PASSWORD", "not-the-password");
    let out = run(&mut c).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "answer", "401");
    assert!(!text(&out.stderr).contains("not-the-password"));

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut c = cmd(&["hangup", "--gws", &base, "--user", USER, "0071025563e9f001"]);
    c.env("GWS_PASSWORD", PASSWORD);
    let out = run(&mut c).await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "hangup", "check the URL");
}

#[tokio::test]
async fn a_proxy_url_with_a_password_is_refused() {
    let sim = gws_sim().await;
    let out = run(&mut gws_cmd(
        &sim,
        "answer",
        &[
            "--proxy",
            "http://bob:hunter2@127.0.0.1:9",
            "0071025563e9f001",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "answer", "HTTPS_PROXY");
    assert!(!text(&out.stderr).contains("hunter2"));
    assert_eq!(sim.bayeux().stats().requests, 0);
}

#[tokio::test]
async fn requests_go_through_the_proxy_given() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An HTTP proxy that records the first request it is asked to forward and refuses it.
    let sim = gws_sim().await;
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let seen = tokio::spawn(async move {
        let (mut conn, _) = proxy.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let _ = conn
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    let out = run(&mut gws_cmd(
        &sim,
        "answer",
        &["--proxy", &proxy_url, "0071025563e9f001"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_fatal_line(&out, "answer", "502");
    let request_line = within("the request line through the proxy", WAIT, seen)
        .await
        .unwrap();
    assert_eq!(
        request_line,
        format!("GET {}/api/v2/me HTTP/1.1", sim.base_url())
    );
    assert_eq!(
        sim.bayeux().stats().requests,
        0,
        "nothing went around the proxy"
    );
}

#[tokio::test]
async fn an_unreadable_or_empty_ca_file_is_named() {
    let sim = gws_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let out = run(&mut gws_cmd(
        &sim,
        "answer",
        &["--cacert", empty.to_str().unwrap(), "0071025563e9f001"],
    ))
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert_fatal_line(&out, "answer", "--cacert");
    assert_eq!(sim.bayeux().stats().requests, 0);
}
