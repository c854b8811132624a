//! The console's API over real HTTP, without a browser: the state request waits for the
//! user's next change (only theirs), and a server that stops lets it go at once. The page
//! itself is tested in Chromium by gws-cometd-cli's `console` tests.

use std::time::Duration;

use gws_cometd_sim::gws::GwsSimConfig;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
use gws_cometd_test_support::within;
use serde_json::Value;

const USER: &str = "agent";
const PASSWORD: &str = "c0nsole-pw";
const OTHER: &str = "second";
const OTHER_PASSWORD: &str = "s3cond-pw";
const WAIT: Duration = Duration::from_secs(10);

async fn server() -> GwsSimServer {
    GwsSimServer::start(GwsServerConfig {
        gws: GwsSimConfig::new(USER, PASSWORD).with_user(OTHER, OTHER_PASSWORD),
        scenario: Some(Vec::new()),
        ..GwsServerConfig::new(USER, PASSWORD)
    })
    .await
    .unwrap()
}

async fn state(sim: &GwsSimServer, since: Option<u64>) -> Value {
    let query = since.map(|v| format!("?since={v}")).unwrap_or_default();
    let resp = reqwest::Client::new()
        .get(format!("{}/console/api/state{query}", sim.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    serde_json::from_str(&resp.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_state_request_waits_for_the_users_next_change_and_not_another_users() {
    let sim = server().await;
    let first = state(&sim, None).await;
    assert_eq!(first["user"], USER);
    assert_eq!(first["number"], "5001");
    assert_eq!(first["calls"], serde_json::json!([]));
    assert_eq!(first["replay"], Value::Null);
    let version = first["version"].as_u64().unwrap();

    let waiting = {
        let url = sim.base_url();
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(format!("{url}/console/api/state?since={version}"))
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.gws().ring_inbound_for(OTHER, "6116", "5002").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "another user's call woke it");

    let id = sim.gws().ring_inbound("5115", "5001");
    let next = within("the state after the ring", WAIT, waiting)
        .await
        .unwrap();
    let next: Value = serde_json::from_str(&next).unwrap();
    assert!(next["version"].as_u64().unwrap() > version);
    assert_eq!(next["calls"][0]["id"], id.as_str());
    assert_eq!(next["calls"][0]["state"], "Ringing");
    assert_eq!(
        next["calls"].as_array().unwrap().len(),
        1,
        "only the user's"
    );
    let line = next["changes"][0].as_str().unwrap();
    assert!(
        line.starts_with(&format!(r#"{{"callId":"{id}","#)),
        "{line}"
    );
}

#[tokio::test]
async fn a_held_state_request_does_not_hold_up_a_shutdown() {
    let sim = server().await;
    let version = state(&sim, None).await["version"].as_u64().unwrap();
    let url = sim.base_url();
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("{url}/console/api/state?since={version}"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    within("the shutdown", WAIT, sim.shutdown()).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let _ = within("the held request", WAIT, held).await;
}

// --- serve --replay through the console's API ----------------------------------------------

mod replay {
    use std::time::Duration;

    use gws_cometd_sim::replay::{Recording, ReplayConfig, Speed};
    use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
    use gws_cometd_test_support::within;
    use serde_json::{json, Value};

    use super::{state, PASSWORD, USER, WAIT};
    use crate::support::GwsClient;

    fn notification(id: &str, state: &str) -> String {
        format!(
            r#"[{{"channel":"/v2/me/calls","data":{{"messageType":"CallStateChangeMessage","notificationType":"StatusChange","call":{{"id":"{id}","state":"{state}","callType":"Inbound"}}}}}}]"#
        )
    }

    /// A user replaying four unstamped notifications (a second apart at speed 1).
    async fn server(dir: &std::path::Path) -> GwsSimServer {
        server_at(dir, Speed::Factor(1.0)).await
    }

    /// The same at `speed`.
    async fn server_at(dir: &std::path::Path, speed: Speed) -> GwsSimServer {
        let path = dir.join("replay.jsonl");
        let lines = [
            notification("A", "Ringing"),
            notification("A", "Established"),
            notification("A", "Released"),
            notification("B", "Ringing"),
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let mut config = GwsServerConfig::new(USER, PASSWORD);
        // Short long polls, so "nothing arrived" is seen quickly.
        config.sim.long_poll_timeout = Duration::from_millis(300);
        let mut replay = ReplayConfig::new(USER, Recording::open(&path).unwrap());
        replay.speed = speed;
        config.replay = Some(replay);
        GwsSimServer::start(config).await.unwrap()
    }

    /// `POST /console/api/replay/{action}`: the status and the reply.
    async fn control(sim: &GwsSimServer, action: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/console/api/replay/{action}", sim.base_url()))
            .basic_auth(USER, Some(PASSWORD))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
        )
    }

    /// Logs in, subscribes the calls and reads them (the catch-up read the replay waits for).
    async fn started(sim: &GwsSimServer) -> GwsClient {
        let client = subscribed(sim).await;
        client.read_calls().await;
        client
    }

    /// Logs in and subscribes the calls, without reading them.
    async fn subscribed(sim: &GwsSimServer) -> GwsClient {
        let mut client = GwsClient::login(&sim.base_url(), USER, PASSWORD).await;
        client.start_session(&["/v2/me/calls"]).await;
        client
    }

    #[tokio::test]
    async fn pause_stops_the_replay_step_lets_one_go_speed_and_play_resume_it() {
        let dir = tempfile::tempdir().unwrap();
        let sim = server(dir.path()).await;
        let first = state(&sim, None).await;
        assert_eq!(
            first["replay"],
            json!({"delivered":0,"total":4,"loops":0,"sessions":0,"paused":false,"speed":"1"})
        );

        // A pause wakes a page waiting on the state.
        let version = first["version"].as_u64().unwrap();
        let waiting = {
            let url = format!("{}/console/api/state?since={version}", sim.base_url());
            tokio::spawn(async move {
                let resp = reqwest::Client::new()
                    .get(url)
                    .basic_auth(USER, Some(PASSWORD))
                    .send()
                    .await
                    .unwrap();
                serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, paused) = control(&sim, "pause", json!({})).await;
        assert_eq!(
            (status, &paused["statusCode"]),
            (200, &json!(0)),
            "{paused}"
        );
        assert_eq!(paused["replay"]["paused"], true);
        let woke = within("the state after the pause", WAIT, waiting)
            .await
            .unwrap();
        assert_eq!(woke["replay"]["paused"], true);
        assert!(woke["version"].as_u64().unwrap() > version);

        // Paused from the start: nothing goes out.
        let client = started(&sim).await;
        client.nothing_for(Duration::from_millis(1500)).await;
        let now = state(&sim, None).await;
        assert_eq!(now["replay"]["delivered"], 0);
        assert_eq!(now["replay"]["sessions"], 1);

        // A step: exactly one, the first.
        control(&sim, "step", json!({})).await;
        let got = client.receive_data(1).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains(r#""id":"A","state":"Ringing""#),
            "{}",
            got[0]
        );
        client.nothing_for(Duration::from_millis(1000)).await;
        let control_handle = sim.replay_control(USER).unwrap();
        assert!(control_handle.wait_for_delivered(1, WAIT).await);
        assert_eq!(state(&sim, None).await["replay"]["delivered"], 1);

        // Speeds: a factor as a number or text, or max; anything else is refused with why.
        let (status, slow) = control(&sim, "speed", json!({"speed": 0.5})).await;
        assert_eq!((status, &slow["replay"]["speed"]), (200, &json!("0.5")));
        let (status, refused) = control(&sim, "speed", json!({"speed": "fast"})).await;
        assert_eq!(status, 400, "{refused}");
        assert!(
            refused["statusMessage"]
                .as_str()
                .unwrap()
                .contains("not a speed"),
            "{refused}"
        );
        let (_, max) = control(&sim, "speed", json!({"speed": "max"})).await;
        assert_eq!(max["replay"]["speed"], "max");
        assert_eq!(control_handle.speed(), Speed::Max);

        // Play: the other three, at once at max.
        let (_, playing) = control(&sim, "play", json!({})).await;
        assert_eq!(playing["replay"]["paused"], false);
        let rest = client.receive_data(3).await;
        assert!(
            rest[2].contains(r#""id":"B","state":"Ringing""#),
            "{rest:?}"
        );
        assert!(control_handle.wait_for_delivered(4, WAIT).await);
        let end = state(&sim, None).await["replay"].clone();
        assert_eq!((&end["delivered"], &end["total"]), (&json!(4), &json!(4)));

        let (status, unknown) = control(&sim, "rewind", json!({})).await;
        assert_eq!((status, &unknown["statusCode"]), (404, &json!(6)));
    }

    #[tokio::test]
    async fn without_a_replay_the_controls_answer_not_found() {
        let sim = super::server().await;
        let (status, reply) = control(&sim, "pause", json!({})).await;
        assert_eq!((status, &reply["statusCode"]), (404, &json!(6)), "{reply}");
        assert!(reply["statusMessage"]
            .as_str()
            .unwrap()
            .contains("no replay"));
    }

    /// The line `watch` prints for a notification's `data`, received by a fresh store.
    fn watch_line(data: &str) -> String {
        let mut store = gws_cometd::gws::CallStore::new();
        let Ok(gws_cometd::gws::wire::Notification::Call(call)) =
            gws_cometd::gws::wire::decode_data(data)
        else {
            panic!("not a call notification: {data}");
        };
        let mut applied = store.apply(&call, std::time::Instant::now()).unwrap();
        serde_json::to_string(&applied.change()).unwrap()
    }

    #[tokio::test]
    async fn the_calls_and_changes_follow_the_replay_without_taking_the_catch_up_read() {
        let dir = tempfile::tempdir().unwrap();
        let sim = server(dir.path()).await;
        control(&sim, "pause", json!({})).await;
        let client = started(&sim).await;
        let before = state(&sim, None).await;
        assert_eq!(before["calls"], json!([]), "{before}");
        assert_eq!(before["changes"], json!([]), "{before}");
        let version = before["version"].as_u64().unwrap();

        // A page waiting on the state wakes with the stepped call and its change.
        let url = format!("{}/console/api/state?since={version}", sim.base_url());
        let waiting = tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .get(url)
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await
                .unwrap();
            serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap()
        });
        control(&sim, "step", json!({})).await;
        let got = client.receive_data(1).await;
        let woke = within("the state after the step", WAIT, waiting)
            .await
            .unwrap();
        assert!(woke["version"].as_u64().unwrap() > version);
        // The page's calls and changes after the step.
        let after = within("the stepped call on the console", WAIT, async {
            loop {
                let now = state(&sim, None).await;
                if now["replay"]["delivered"] == 1 && now["changes"].as_array().unwrap().len() == 1
                {
                    return now;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let calls = after["calls"].as_array().unwrap();
        assert_eq!(calls.len(), 1, "{after}");
        assert_eq!(
            (&calls[0]["id"], &calls[0]["state"]),
            (&json!("A"), &json!("Ringing"))
        );
        assert_eq!(after["changes"][0].as_str().unwrap(), watch_line(&got[0]));

        // Played to the end: B rings, A was released.
        control(&sim, "speed", json!({"speed": "max"})).await;
        control(&sim, "play", json!({})).await;
        client.receive_data(3).await;
        let end = within("the whole replay on the console", WAIT, async {
            loop {
                let now = state(&sim, None).await;
                if now["changes"].as_array().unwrap().len() == 4 {
                    return now;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let ids: Vec<&str> = end["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&"B"), "{end}");
        assert!(
            end["changes"][3]
                .as_str()
                .unwrap()
                .contains(r#""callId":"B""#),
            "{end}"
        );
    }

    #[tokio::test]
    async fn a_console_read_is_not_the_clients_catch_up_read() {
        let dir = tempfile::tempdir().unwrap();
        let sim = server_at(dir.path(), Speed::Max).await;
        let client = subscribed(&sim).await;
        let subscribed = std::time::Instant::now();
        // The console reads at once and again: the replay still waits for the client's own
        // read, which never comes, for its whole catch-up wait (a second).
        state(&sim, None).await;
        state(&sim, None).await;
        let got = client.receive_data(1).await;
        let waited = subscribed.elapsed();
        assert!(waited >= Duration::from_millis(900), "{waited:?}: {got:?}");
    }

    /// The console's state once `done` says it is reached.
    async fn state_when(sim: &GwsSimServer, done: impl Fn(&Value) -> bool) -> Value {
        within("the console's state", WAIT, async {
            loop {
                let now = state(sim, None).await;
                if done(&now) {
                    return now;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    #[tokio::test]
    async fn with_two_sessions_replaying_the_console_follows_the_most_recent() {
        let dir = tempfile::tempdir().unwrap();
        let sim = server(dir.path()).await;
        control(&sim, "pause", json!({})).await;
        let older = started(&sim).await;
        control(&sim, "step", json!({})).await;
        older.receive_data(1).await;
        state_when(&sim, |s| s["calls"][0]["state"] == "Ringing").await;

        // A newer session starts over: the console shows its calls (none yet), and the
        // change its catch-up read would show.
        let newer = started(&sim).await;
        let restarted = state_when(&sim, |s| {
            s["replay"]["sessions"] == 2 && s["changes"].as_array().unwrap().len() == 2
        })
        .await;
        assert_eq!(restarted["calls"], json!([]), "{restarted}");
        assert!(
            restarted["changes"][1]
                .as_str()
                .unwrap()
                .contains(r#""removed":true"#),
            "{restarted}"
        );

        // A step: the older session's call is answered, the newer one's rings; the console
        // shows the newer one's.
        control(&sim, "step", json!({})).await;
        let got = older.receive_data(1).await;
        assert!(got[0].contains("Established"), "{got:?}");
        let rung = newer.receive_data(1).await;
        let now = state_when(&sim, |s| s["changes"].as_array().unwrap().len() == 3).await;
        assert_eq!(now["calls"].as_array().unwrap().len(), 1, "{now}");
        assert_eq!(now["calls"][0]["state"], "Ringing", "{now}");
        assert_eq!(now["changes"][2].as_str().unwrap(), watch_line(&rung[0]));
    }

    #[tokio::test]
    async fn the_controls_and_the_calls_work_the_same_for_a_v3_recording() {
        use crate::v3_support::V3Client;
        use gws_cometd::gws::api::V3_VOICE_CHANNEL;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.jsonl");
        let changed = |state: &str| {
            format!(
                r#"[{{"channel":"{V3_VOICE_CHANNEL}","data":{{"messageType":"CallStateChanged","notificationType":"StateChange","call":{{"id":"A","state":"{state}","callType":"Inbound","userData":[{{"key":"K","type":"str","value":"1"}},{{"key":"K","type":"int","value":2}}]}}}}}}]"#
            )
        };
        std::fs::write(
            &path,
            [changed("Ringing"), changed("Established")].join("\n"),
        )
        .unwrap();
        let mut config = GwsServerConfig::new(USER, PASSWORD);
        config.sim.long_poll_timeout = Duration::from_millis(300);
        config.replay = Some(ReplayConfig::new(USER, Recording::open(&path).unwrap()));
        let sim = GwsSimServer::start(config).await.unwrap();
        control(&sim, "pause", json!({})).await;
        let mut client = V3Client::login_by_password(&sim.base_url(), USER, PASSWORD).await;
        client.start_session(&[V3_VOICE_CHANNEL]).await;
        client.get("/workspace/v3/current-session").await;
        client.nothing_for(Duration::from_millis(600)).await;
        control(&sim, "step", json!({})).await;
        let got = client.receive_text(1).await;
        assert!(got[0].contains("Ringing"), "{got:?}");
        let stepped = state_when(&sim, |s| {
            s["replay"]["delivered"] == 1 && s["changes"].as_array().unwrap().len() == 1
        })
        .await;
        assert_eq!(stepped["calls"][0]["state"], "Ringing", "{stepped}");
        let pairs: Vec<(&str, &str)> = stepped["calls"][0]["userData"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["key"].as_str().unwrap(), p["value"].as_str().unwrap()))
            .collect();
        assert_eq!(pairs, [("K", "1"), ("K", "2")], "{stepped}");
        client.nothing_for(Duration::from_millis(600)).await;
        control(&sim, "speed", json!({"speed": "max"})).await;
        control(&sim, "play", json!({})).await;
        let got = client.receive_text(1).await;
        assert!(got[0].contains("Established"), "{got:?}");
        let end = state_when(&sim, |s| s["replay"]["delivered"] == 2).await;
        assert_eq!(end["replay"]["total"], 2, "{end}");
    }
}
