//! The Workspace API v3 of the GWS simulator over real HTTP, next to API v2 on the same
//! server: both logins, the session cookie, the initialization message, the same calls
//! seen through both generations, user data in both forms, `EventError`, the fault mode.

use std::time::Duration;

use gws_cometd::gws::api::{V3_INITIALIZATION_CHANNEL, V3_VOICE_CHANNEL};
use gws_cometd_sim::gws::{GwsSimConfig, CALLS_CHANNEL};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer, SimConfig};
use serde_json::{json, Value};

use crate::support::GwsClient;
use crate::v3_support::{form, json, V3Client, REDIRECT_URI};

const USER: &str = "agent";
const PASSWORD: &str = "pa55-w0rd";
const OTHER: &str = "second";
const OTHER_PASSWORD: &str = "s3cond-pw";

/// Two users, nothing happening by itself, short long polls.
async fn server() -> GwsSimServer {
    GwsSimServer::start(GwsServerConfig {
        sim: SimConfig {
            long_poll_timeout: Duration::from_secs(1),
            ..SimConfig::default()
        },
        gws: GwsSimConfig::new(USER, PASSWORD).with_user(OTHER, OTHER_PASSWORD),
        scenario: Some(vec![]),
        ..GwsServerConfig::new(USER, PASSWORD)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn both_logins_open_a_workspace_session_and_wrong_credentials_are_refused() {
    let server = server().await;
    let base = server.base_url();
    let by_password = V3Client::login_by_password(&base, USER, PASSWORD).await;
    let (status, session) = by_password.get("/workspace/v3/current-session").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["status"]["code"], 0);
    assert_eq!(session["data"]["user"]["userName"], USER);
    assert_eq!(session["data"]["user"]["activeSession"]["calls"], json!([]));

    // The form sign-in takes `\user` (empty tenant) and `tenant\user`.
    let by_code = V3Client::login_by_code(&base, "\\second", OTHER_PASSWORD).await;
    let (_, session) = by_code.get("/workspace/v3/current-session").await;
    assert_eq!(session["data"]["user"]["userName"], OTHER);
    V3Client::login_by_code(&base, "acme\\agent", PASSWORD).await;

    let stranger = V3Client::new(&base);
    assert_eq!(stranger.sign_in("\\agent", "wrong").await, Err(401));
    let (status, body) = json(stranger.token("\\agent", "wrong").await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let no_client = stranger
        .http
        .post(format!("{base}/auth/v3/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "password"),
            ("username", USER),
            ("password", PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(no_client.status(), 401);
    // A code is good once; without a session there is nothing to read.
    let code = stranger.sign_in(USER, PASSWORD).await.unwrap();
    let init = |code: String| {
        let http = stranger.http.clone();
        let base = base.clone();
        async move {
            http.get(format!("{base}/workspace/v3/initialize-workspace"))
                .query(&[("code", code.as_str()), ("redirect_uri", REDIRECT_URI)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(init(code.clone()).await, 200);
    assert_eq!(init(code).await, 401);
    let (status, _) = V3Client::new(&base)
        .get("/workspace/v3/current-session")
        .await;
    assert_eq!(status, 401);
}

/// As a real authorization server: a code is good only with the redirect URI (and, at the
/// token endpoint, the client) it was issued for; once clients are registered, authorize
/// refuses another client id or another redirect URI, and never redirects.
#[tokio::test]
async fn codes_are_bound_to_their_client_and_redirect_uri_and_registered_clients_are_checked() {
    let server = server().await;
    let base = server.base_url();
    let c = V3Client::new(&base);
    let init = |code: &str, uri: &str| {
        c.http
            .get(format!("{base}/workspace/v3/initialize-workspace"))
            .query(&[("code", code), ("redirect_uri", uri)])
            .send()
    };
    let code = c.sign_in(USER, PASSWORD).await.unwrap();
    assert_eq!(
        init(&code, "http://127.0.0.1:9/other")
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(init(&code, REDIRECT_URI).await.unwrap().status(), 200);
    let exchange = |code: String, client: &'static str, uri: &'static str| {
        c.http
            .post(format!("{base}/auth/v3/oauth/token"))
            .basic_auth(client, Some("secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", uri),
            ]))
            .send()
    };
    let code = c.sign_in(USER, PASSWORD).await.unwrap();
    let (status, body) = json(
        exchange(code, "another_client", REDIRECT_URI)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let code = c.sign_in(USER, PASSWORD).await.unwrap();
    let (status, body) = json(
        exchange(code, "external_api_client", REDIRECT_URI)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");

    server
        .v3()
        .register_client("crm", "https://crm.example/callback");
    let authorize = |client: &str, uri: &str| {
        c.http
            .get(format!("{base}/auth/v3/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", uri),
            ])
            .send()
    };
    let (status, body) = json(
        authorize("external_api_client", REDIRECT_URI)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, body) = json(authorize("crm", REDIRECT_URI).await.unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uri"),
        "{body}"
    );
    let ok = authorize("crm", "https://crm.example/callback")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn the_notifications_want_a_session_and_json_and_announce_the_initialization() {
    let server = server().await;
    let base = server.base_url();
    let handshake = r#"[{"channel":"/meta/handshake","version":"1.0","supportedConnectionTypes":["long-polling"]}]"#;
    let stranger = V3Client::new(&base);
    let (status, _) = stranger
        .post("/workspace/v3/notifications", handshake)
        .await;
    assert_eq!(status, 401);
    let mut client = V3Client::login_by_password(&base, USER, PASSWORD).await;
    let text = client
        .http
        .post(format!("{base}/workspace/v3/notifications"))
        .header("content-type", "text/plain")
        .body(handshake)
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    client
        .start_session(&[V3_INITIALIZATION_CHANNEL, V3_VOICE_CHANNEL])
        .await;
    let got = client.receive(1).await;
    assert_eq!(got[0].0, V3_INITIALIZATION_CHANNEL);
    assert_eq!(got[0].1["messageType"], "WorkspaceInitializationComplete");
    assert_eq!(got[0].1["state"], "Complete");
    assert_eq!(got[0].1["data"]["user"]["userName"], USER);

    // A restarted server forgets the session: REST and CometD answer 401.
    server.v3().expire_sessions();
    let (status, _) = client.get("/workspace/v3/voice/calls").await;
    assert_eq!(status, 401);
    let (status, _) = client.post("/workspace/v3/notifications", handshake).await;
    assert_eq!(status, 401);
}

/// A v2 and a v3 client of `USER`, both subscribed to their calls channel.
async fn both(server: &GwsSimServer) -> (GwsClient, V3Client) {
    let base = server.base_url();
    let mut v2 = GwsClient::login(&base, USER, PASSWORD).await;
    v2.start_session(&[CALLS_CHANNEL]).await;
    let mut v3 = V3Client::login_by_code(&base, "\\agent", PASSWORD).await;
    v3.start_session(&[V3_VOICE_CHANNEL]).await;
    (v2, v3)
}

fn v2_call(data: &str) -> Value {
    serde_json::from_str::<Value>(data).unwrap()["call"].clone()
}

#[tokio::test]
async fn a_call_is_seen_by_a_v2_and_a_v3_client_alike() {
    let server = server().await;
    let (v2, v3) = both(&server).await;
    let id = server.gws().ring_inbound("5115", "5001");
    let old = v2_call(&v2.receive_data(1).await[0]);
    let got = v3.receive(1).await;
    let (channel, msg) = &got[0];
    assert_eq!(channel, V3_VOICE_CHANNEL);
    assert_eq!(msg["messageType"], "CallStateChanged");
    assert_eq!(msg["notificationType"], "StateChange");
    let call = &msg["call"];
    for field in [
        "id", "connId", "callUuid", "state", "callType", "ani", "dnis",
    ] {
        assert_eq!(call[field], old[field], "{field}");
    }
    assert_eq!(call["state"], "Ringing");
    assert_eq!(call["id"], id.as_str());
    assert_eq!(
        call["participants"],
        json!([{"number":"5115","role":"RoleOrigination"}])
    );
    assert_eq!(
        call["capabilities"],
        json!([
            "answer",
            "release",
            "attach-user-data",
            "delete-user-data",
            "delete-user-data-pair",
            "update-user-data"
        ])
    );
    assert!(call["duration"].is_u64());
    assert!(call["startedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(call["userData"], json!([]));

    // The catch-up reads list it, in the same form.
    let (status, session) = v3.get("/workspace/v3/current-session").await;
    assert_eq!(status, 200);
    let listed = &session["data"]["user"]["activeSession"]["calls"];
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    let (_, calls) = v3.get("/workspace/v3/voice/calls").await;
    assert_eq!(calls["status"]["code"], 0);
    assert_eq!(calls["data"][0]["state"], "Ringing");
    // The other user sees none of it.
    let other = V3Client::login_by_password(&server.base_url(), OTHER, OTHER_PASSWORD).await;
    assert_eq!(
        other.get("/workspace/v3/voice/calls").await.1["data"],
        json!([])
    );

    // Answered through v3: both see it established, v3 with the request's operationId.
    assert!(
        msg.get("operationId").is_none(),
        "a ring is no one's operation"
    );
    let operation = v3.operate(&id, "answer", "{}").await;
    assert_eq!(
        v2_call(&v2.receive_data(1).await[0])["state"],
        "Established"
    );
    let answered = &v3.receive(1).await[0].1;
    assert_eq!(answered["call"]["state"], "Established");
    assert_eq!(answered["operationId"], operation.as_str());
    v3.operate(&id, "hold", r#"{"data":{}}"#).await;
    v3.operate(&id, "retrieve", "").await;
    v3.operate(&id, "release", "{}").await;
    let states: Vec<String> = v2
        .receive_data(3)
        .await
        .iter()
        .map(|d| v2_call(d)["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["Held", "Established", "Released"]);
    let got = v3.receive(3).await;
    assert_eq!(got[2].1["call"]["state"], "Released");
    assert_eq!(got[2].1["call"]["capabilities"], json!(["complete"]));
    v3.operate(&id, "complete", "{}").await;
    assert_eq!(v3.receive(1).await[0].1["call"]["state"], "Completed");
    let (_, session) = v3.get("/workspace/v3/current-session").await;
    assert_eq!(session["data"]["user"]["activeSession"]["calls"], json!([]));
}

#[tokio::test]
async fn user_data_attached_through_one_generation_shows_through_the_other() {
    let server = server().await;
    let (v2, v3) = both(&server).await;
    let id = server.gws().ring_inbound("5115", "5001");
    v2.receive_data(1).await;
    v3.receive_text(1).await;

    // v3 → v2: each type, a duplicate key, a nested list, a big integer; order kept.
    let list = r#"[{"key":"A","type":"str","value":"12345"},{"key":"P","type":"int","value":123456789012345678901234567890},{"key":"J","type":"kvlist","value":[{"key":"x","type":"str","value":"1"},{"key":"x","type":"int","value":2}]},{"key":"A","type":"str","value":"again"}]"#;
    v3.operate(
        &id,
        "attach-user-data",
        &format!(r#"{{"data":{{"userData":{list}}}}}"#),
    )
    .await;
    let v2_text = &v2.receive_data(1).await[0];
    assert!(
        v2_text.contains(r#""userData":{"A":"12345","P":123456789012345678901234567890,"J":{"x":"1","x":2},"A":"again"}"#),
        "{v2_text}"
    );
    let v3_text = &v3.receive_text(1).await[0];
    assert!(v3_text.contains(r#""notificationType":"AttachedDataChanged""#));
    assert!(
        v3_text.contains(&format!(r#""userData":{list}"#)),
        "{v3_text}"
    );

    // v2 → v3: an update of the duplicated key, a float kept as `json`.
    let (status, body) = v2
        .post(
            &format!("/api/v2/me/calls/{id}"),
            r#"{"operationName":"UpdateUserData","userData":{"A":"one","F":1.5,"O":{"k":"v"}}}"#
                .to_owned(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    v2.receive_data(1).await;
    let v3_text = &v3.receive_text(1).await[0];
    assert!(
        v3_text.contains(concat!(
            r#""userData":[{"key":"A","type":"str","value":"one"},"#,
            r#"{"key":"P","type":"int","value":123456789012345678901234567890},"#,
            r#"{"key":"J","type":"kvlist","value":[{"key":"x","type":"str","value":"1"},{"key":"x","type":"int","value":2}]},"#,
            r#"{"key":"A","type":"str","value":"one"},{"key":"F","type":"json","value":1.5},"#,
            r#"{"key":"O","type":"kvlist","value":[{"key":"k","type":"str","value":"v"}]}]"#
        )),
        "{v3_text}"
    );

    // v3 update, delete-pair (every occurrence) and delete-all, seen through v2.
    v3.operate(
        &id,
        "update-user-data",
        r#"{"data":{"userData":[{"key":"P","type":"int","value":"7"}]}}"#,
    )
    .await;
    assert!(v2.receive_data(1).await[0].contains(r#""P":7,"#));
    v3.operate(&id, "delete-user-data-pair", r#"{"data":{"key":"A"}}"#)
        .await;
    let text = &v2.receive_data(1).await[0];
    assert!(
        text.contains(r#""userData":{"P":7,"J":"#) && !text.contains(r#""A":"#),
        "{text}"
    );
    v3.operate(&id, "delete-user-data", "{}").await;
    assert!(!v2.receive_data(1).await[0].contains("userData"));
    let got = v3.receive(3).await;
    assert_eq!(got[2].1["call"]["userData"], json!([]));

    // A malformed list is refused at once, and nothing changes.
    let (status, body) = v3
        .post(
            &format!("/workspace/v3/voice/calls/{id}/attach-user-data"),
            r#"{"data":{"userData":[{"key":"N","type":"int","value":"x"}]}}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_ne!(body["status"]["code"], 0);
}

#[tokio::test]
async fn a_failed_operation_gives_an_event_error() {
    let server = server().await;
    let (_v2, v3) = both(&server).await;
    let id = server.gws().ring_inbound("5115", "5001");
    v3.receive(1).await;
    let operation = v3.operate(&id, "hold", "{}").await;
    let got = v3.receive(1).await;
    let (channel, error) = &got[0];
    assert_eq!(channel, V3_VOICE_CHANNEL);
    assert_eq!(error["messageType"], "EventError");
    assert_eq!(error["operationId"], operation.as_str());
    assert_eq!(error["error"]["errorCode"], 1);
    assert!(error["error"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("Ringing"));
    let (status, body) = v3.post("/workspace/v3/voice/calls/nope/answer", "{}").await;
    assert_eq!((status, &body["status"]["code"]), (404, &json!(2)));
    assert_eq!(v3.receive(1).await[0].1["error"]["errorCode"], 2);
}

#[tokio::test]
async fn current_session_may_be_forbidden_right_after_the_first_handshake() {
    let server = server().await;
    server
        .v3()
        .forbid_current_session_after_handshake(Some(Duration::from_millis(600)));
    let mut v3 = V3Client::login_by_password(&server.base_url(), USER, PASSWORD).await;
    // Before any handshake it answers.
    assert_eq!(v3.get("/workspace/v3/current-session").await.0, 200);
    v3.start_session(&[V3_VOICE_CHANNEL]).await;
    assert_eq!(v3.get("/workspace/v3/current-session").await.0, 403);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(v3.get("/workspace/v3/current-session").await.0, 200);
}

#[tokio::test]
async fn a_v3_subscription_alone_starts_the_scenario_and_the_login_survives_a_restart_by_a_new_login(
) {
    let server = GwsSimServer::start(GwsServerConfig {
        scenario: Some(gws_cometd_sim::gws::GwsSim::one_call_scenario()),
        ..GwsServerConfig::new(USER, PASSWORD)
    })
    .await
    .unwrap();
    let mut v3 = V3Client::login_by_code(&server.base_url(), "\\agent", PASSWORD).await;
    v3.start_session(&[V3_VOICE_CHANNEL]).await;
    let got = v3.receive(3).await;
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|(_, m)| {
            (
                m["notificationType"].as_str().unwrap().to_owned(),
                m["call"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("StateChange".to_owned(), "Ringing".to_owned()),
            ("StateChange".to_owned(), "Established".to_owned()),
            ("AttachedDataChanged".to_owned(), "Established".to_owned()),
        ]
    );
    assert_eq!(
        got[2].1["call"]["userData"],
        json!([{"key":"AccountNumber","type":"str","value":"12345"}])
    );
    // Sessions forgotten (as by a restart): a new login reads the call in progress.
    server.v3().expire_sessions();
    assert_eq!(v3.get("/workspace/v3/current-session").await.0, 401);
    let again = V3Client::login_by_password(&server.base_url(), USER, PASSWORD).await;
    let (_, session) = again.get("/workspace/v3/current-session").await;
    let calls = &session["data"]["user"]["activeSession"]["calls"];
    assert_eq!(calls[0]["state"], "Established");
}

#[tokio::test]
async fn v3_messages_may_be_delivered_without_a_subscription() {
    let server = server().await;
    server.v3().deliver_without_subscription(true);
    let mut v3 = V3Client::login_by_password(&server.base_url(), USER, PASSWORD).await;
    v3.handshake().await;
    let got = v3.receive(1).await;
    assert_eq!(got[0].0, V3_INITIALIZATION_CHANNEL);
    assert_eq!(got[0].1["messageType"], "WorkspaceInitializationComplete");
    let first = server.gws().ring_inbound("5115", "5001");
    let got = v3.receive(1).await;
    assert_eq!(got[0].0, V3_VOICE_CHANNEL);
    assert_eq!(got[0].1["call"]["id"], first.as_str());
    // Subscribed, each message still comes once, and the initialization is not repeated.
    v3.subscribe(&[V3_INITIALIZATION_CHANNEL, V3_VOICE_CHANNEL])
        .await;
    let second = server.gws().ring_inbound("6116", "5001");
    server.gws().hangup(&second).unwrap();
    let got = v3.receive(2).await;
    let ids: Vec<&Value> = got.iter().map(|(_, m)| &m["call"]["id"]).collect();
    assert_eq!(ids, [&json!(second), &json!(second)]);
    assert_eq!(got[1].1["call"]["state"], "Released");
}

#[tokio::test]
async fn the_official_cometd_javascript_client_follows_a_call_through_the_v3_login() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    gws_cometd_test_support::cometd_node::ensure_installed()
        .await
        .expect("node_modules installed");
    let server = server().await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/js/gws-v3-login-tail.js");
    let mut node = tokio::process::Command::new("node")
        .arg(&script)
        .args([
            "--gws",
            &server.base_url(),
            "--user",
            "\\agent",
            "--count",
            "3",
        ])
        .env("GWS_PASSWORD", PASSWORD)
        .current_dir(gws_cometd_test_support::workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stderr = BufReader::new(node.stderr.take().unwrap()).lines();
    let ready = gws_cometd_test_support::within(
        "the JavaScript client subscribes",
        Duration::from_secs(20),
        async { stderr.next_line().await.unwrap() },
    )
    .await;
    assert_eq!(ready.as_deref(), Some("READY"));

    let id = server.gws().ring_inbound("5115", "5001");
    let mut v3 = V3Client::login_by_password(&server.base_url(), USER, PASSWORD).await;
    v3.start_session(&[V3_VOICE_CHANNEL]).await;
    let list = r#"[{"key":"A","type":"str","value":"1"},{"key":"A","type":"int","value":2},{"key":"J","type":"kvlist","value":[{"key":"x","type":"str","value":"y"}]}]"#;
    v3.operate(
        &id,
        "attach-user-data",
        &format!(r#"{{"data":{{"userData":{list}}}}}"#),
    )
    .await;

    let mut stdout = String::new();
    let mut out = node.stdout.take().unwrap();
    let status = gws_cometd_test_support::within(
        "the JavaScript client's messages",
        Duration::from_secs(20),
        async {
            out.read_to_string(&mut stdout).await.unwrap();
            node.wait().await.unwrap()
        },
    )
    .await;
    assert!(status.success(), "{stdout}");
    let got: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 3, "{stdout}");
    assert_eq!(got[0]["channel"], V3_INITIALIZATION_CHANNEL);
    assert_eq!(
        got[0]["data"]["messageType"],
        "WorkspaceInitializationComplete"
    );
    assert_eq!(got[1]["channel"], V3_VOICE_CHANNEL);
    assert_eq!(got[1]["data"]["call"]["state"], "Ringing");
    assert_eq!(got[2]["data"]["notificationType"], "AttachedDataChanged");
    assert_eq!(
        got[2]["data"]["call"]["userData"],
        serde_json::from_str::<Value>(list).unwrap()
    );
}
