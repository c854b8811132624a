//! The console at `/` in a real browser (headless Chromium, Playwright): it shows the
//! user's calls, follows changes made elsewhere without a reload, rings calls the REST API
//! lists, its operations reach `watch`, and it pauses, steps and plays `serve --replay`,
//! showing the replayed calls and their changes as `watch` prints them.
//! See `browser.rs` for how the browser is had.
//!
//! `GWS_CONSOLE_SCREENSHOT=PATH cargo test -p gws-cometd-cli --test it console_` also
//! saves the 1280x800 screenshot there (how docs/console.png is made).

use std::time::Duration;

use gws_cometd_sim::GwsSimServer;
use gws_cometd_test_support::within;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::browser::{browser, scenario};
use crate::support::{
    cmd, fixture, gws_cmd, gws_sim, read_until, run, spawn_serve, text, BIN, PASSWORD, USER, WAIT,
};

/// How soon a change must show on the page.
const LIVE: u64 = 1000;

fn args(sim: &GwsSimServer, more: Value) -> Value {
    let mut args = json!({
        "base": sim.base_url(),
        "user": USER,
        "password": PASSWORD,
        "cli": BIN,
    });
    if let (Some(a), Value::Object(more)) = (args.as_object_mut(), more) {
        a.extend(more);
    }
    args
}

/// Rings a call with `pairs` (JSON values) attached; returns its id.
fn ring(sim: &GwsSimServer, from: &str, pairs: &[(&str, &str)]) -> String {
    let id = sim.gws().ring_inbound(from, "5001");
    if !pairs.is_empty() {
        let raw = pairs
            .iter()
            .map(|(k, v)| {
                let v = serde_json::value::RawValue::from_string((*v).to_owned()).unwrap();
                ((*k).to_owned(), v)
            })
            .collect();
        sim.gws().attach_user_data(&id, raw).unwrap();
    }
    id
}

/// What the page showed of a call: `[state, type, parties]` and its pairs.
fn shown(result: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let s = &result["shown"];
    let head = ["state", "type", "parties"]
        .iter()
        .map(|k| s[k].as_str().unwrap_or_default().to_owned())
        .collect();
    let pairs = s["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (head, pairs)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Loopback only, no script error, never reloaded.
fn assert_clean(result: &Value) {
    assert_eq!(
        result["outside"],
        json!([]),
        "requests beyond the simulator"
    );
    assert_eq!(result["errors"], json!([]), "errors in the page");
    assert_eq!(result["navigations"], 1, "the page was reloaded");
}

#[tokio::test]
async fn console_shows_the_users_calls_with_duplicate_keys_in_order() {
    let Some(_browser) = browser().await else {
        return;
    };
    let sim = gws_sim().await;
    let id = ring(
        &sim,
        "+14155550142",
        &[
            ("A", r#""1""#),
            ("N", "12345678901234567890"),
            ("A", r#""2""#),
        ],
    );
    let _other = ring(&sim, "5116", &[]);
    let result = scenario("shows", &args(&sim, json!({ "callId": id }))).await;
    assert_clean(&result);
    let (head, got) = shown(&result);
    assert_eq!(head, ["Ringing", "Inbound", "+14155550142 → 5001"]);
    assert_eq!(
        got,
        pairs(&[("A", "1"), ("N", "12345678901234567890"), ("A", "2")])
    );
    assert_eq!(result["count"], "2");
    assert_eq!(result["replayHidden"], true, "no replay, no replay panel");
}

#[tokio::test]
async fn console_shows_a_change_made_from_the_cli_within_a_second_without_a_reload() {
    let Some(_browser) = browser().await else {
        return;
    };
    let sim = gws_sim().await;
    let id = ring(&sim, "5115", &[]);
    let result = scenario("live", &args(&sim, json!({ "callId": id }))).await;
    assert_clean(&result);
    let (answer, attach) = (&result["answerMs"], &result["attachMs"]);
    eprintln!("console: the answer showed {answer} ms and the attach {attach} ms after the CLI");
    assert!(answer.as_u64().unwrap() < LIVE, "answer: {answer} ms");
    assert!(attach.as_u64().unwrap() < LIVE, "attach: {attach} ms");
    let (head, got) = shown(&result);
    assert_eq!(head[0], "Established");
    assert_eq!(got, pairs(&[("Note", "from the CLI")]));
    // The changes as watch prints them, newest first.
    let newest = result["changes"][0].as_str().unwrap();
    assert_eq!(
        newest,
        format!(
            r#"{{"callId":"{id}","notificationType":"AttachedDataChanged","userData":{{"added":[{{"key":"Note","value":"from the CLI"}}]}}}}"#
        )
    );
}

#[tokio::test]
async fn clicking_ring_rings_a_call_the_rest_api_lists() {
    let Some(_browser) = browser().await else {
        return;
    };
    let sim = gws_sim().await;
    let result = scenario("ring", &args(&sim, json!({}))).await;
    assert_clean(&result);
    let id = result["id"].as_str().unwrap().to_owned();
    let (head, got) = shown(&result);
    assert_eq!(head, ["Ringing", "Inbound", "+3225550199 → 5001"]);
    assert_eq!(
        got,
        pairs(&[("Segment", "Gold"), ("Segment", "Silver"), ("Score", "7")])
    );
    let listed = reqwest::Client::new()
        .get(format!("{}/api/v2/me/calls?fields=*", sim.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains(&format!(r#""id":"{id}""#)), "{listed}");
    assert!(
        listed.contains(r#""userData":{"Segment":"Gold","Segment":"Silver","Score":7}"#),
        "{listed}"
    );
    assert!(listed.contains(r#""ani":"+3225550199""#), "{listed}");
}

#[tokio::test]
async fn an_attach_from_the_console_reaches_watch_as_the_page_shows_it() {
    let Some(_browser) = browser().await else {
        return;
    };
    let sim = gws_sim().await;
    let mut watch = gws_cmd(&sim, "watch", &[]).spawn().unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    // Rung after the catch-up, the call comes as notifications, as the page lists them.
    let mut stderr = BufReader::new(watch.stderr.take().unwrap());
    read_until(&mut stderr, "caught up with the server's calls").await;
    let id = ring(&sim, "5115", &[]);
    let result = scenario("attach", &args(&sim, json!({ "callId": id }))).await;
    assert_clean(&result);
    let (head, got) = shown(&result);
    assert_eq!(head[0], "Held");
    assert_eq!(got, pairs(&[("Disposition", "Resolved")]));

    let mut printed = Vec::new();
    within("watch prints the attach and the hold", WAIT, async {
        while printed.len() < 4 {
            printed.push(lines.next_line().await.unwrap().expect("a watch line"));
        }
    })
    .await;
    let attach = printed
        .iter()
        .find(|l| l.contains("Disposition"))
        .unwrap_or_else(|| panic!("no attach in {printed:#?}"));
    assert_eq!(
        *attach,
        format!(
            r#"{{"callId":"{id}","notificationType":"AttachedDataChanged","userData":{{"added":[{{"key":"Disposition","value":"Resolved"}}]}}}}"#
        )
    );
    // The page's changes are watch's lines, newest first.
    let mut page: Vec<String> = result["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    page.reverse();
    assert_eq!(page, printed);
    let _ = watch.start_kill();
}

#[tokio::test]
async fn the_console_drives_a_call_like_a_desk_phone_through_gws_operations() {
    let Some(_browser) = browser().await else {
        return;
    };
    let sim = gws_sim().await;
    let result = scenario("phone", &args(&sim, json!({}))).await;
    assert_clean(&result);
    let steps: Vec<Vec<String>> = serde_json::from_value(result["steps"].clone()).unwrap();
    let expected = [
        ["dial", "Dialing", ""],
        ["far end answers", "Established", ""],
        ["attach", "Established", "K=1"],
        ["attach again", "Established", "K=1,K=2"],
        ["update", "Established", "K=3,K=3"],
        ["delete pair", "Established", ""],
        ["attach", "Established", "A=1"],
        ["delete all", "Established", ""],
        ["hold", "Held", ""],
        ["retrieve", "Established", ""],
        ["hang up", "Released", ""],
    ];
    assert_eq!(steps, expected);
    let stats = sim.gws().stats();
    for (operation, n) in [
        ("AttachUserData", 3),
        ("UpdateUserData", 1),
        ("DeleteUserDataPair", 1),
        ("DeleteUserData", 1),
        ("Hold", 1),
        ("Retrieve", 1),
        ("Hangup", 1),
        ("Complete", 1),
    ] {
        assert_eq!(stats.operation(operation), n, "{operation}");
    }
    assert!(sim.gws().call_ids().is_empty(), "the call completed");
}

#[tokio::test]
async fn console_refusals_show_on_the_page() {
    let Some(_browser) = browser().await else {
        return;
    };
    let sim = gws_sim().await;
    let id = ring(&sim, "5115", &[]);
    let result = scenario("refused", &args(&sim, json!({ "callId": id }))).await;
    assert_eq!(result["outside"], json!([]));
    let ring_error = result["ringError"].as_str().unwrap();
    assert!(
        ring_error.starts_with("ring: the value of Score is not JSON"),
        "{ring_error}"
    );
    let answer_error = result["answerError"].as_str().unwrap();
    assert!(
        answer_error.starts_with("Answer: ") && answer_error.ends_with("(statusCode 2)"),
        "{answer_error}"
    );
    assert_eq!(
        sim.gws().stats().operation("Answer"),
        2,
        "the CLI's answer, then the page's"
    );
}

#[tokio::test]
async fn console_is_usable_at_1280x800_and_on_a_phone() {
    let Some(_browser) = browser().await else {
        return;
    };
    let sim = gws_sim().await;
    let first = ring(
        &sim,
        "+14155550142",
        &[
            ("CustomerSegment", r#""Gold""#),
            ("AccountNumber", r#""12345""#),
            ("AccountNumber", r#""67890""#),
            ("IVRPath", r#"{"menu":"billing","attempts":2}"#),
        ],
    );
    sim.gws().answer(&first).unwrap();
    sim.gws()
        .update_user_data(
            &first,
            vec![(
                "CustomerSegment".to_owned(),
                serde_json::value::RawValue::from_string(r#""Platinum""#.into()).unwrap(),
            )],
        )
        .unwrap();
    ring(
        &sim,
        "+13125550187",
        &[("Language", r#""es""#), ("Queue", r#""Billing""#)],
    );
    sim.gws()
        .start_call(
            USER,
            gws_cometd_sim::gws::NewCall::outbound("5001", "+442075550123"),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wide_png = std::env::var("GWS_CONSOLE_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("console.png"));
    for (width, height, png) in [
        (1280, 800, wide_png),
        (390, 844, dir.path().join("phone.png")),
    ] {
        let more = json!({
            "calls": 3, "width": width, "height": height,
            "screenshot": png.display().to_string(),
        });
        let result = scenario("look", &args(&sim, more)).await;
        assert_clean(&result);
        assert!(
            result["overflow"].as_f64().unwrap() <= 0.0,
            "{width}x{height}: wider than the window: {result}"
        );
        for control in ["hangupBox", "ringBox"] {
            let b = &result[control];
            let right = b["x"].as_f64().unwrap() + b["width"].as_f64().unwrap();
            assert!(
                b["x"].as_f64().unwrap() >= 0.0 && right <= f64::from(width),
                "{width}x{height}: {control} cut off: {b}"
            );
        }
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", png.display());
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        assert_eq!(w, width, "{}", png.display());
    }
}

#[tokio::test]
async fn console_is_behind_the_apis_credentials_and_serves_its_own_assets() {
    let sim = gws_sim().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = sim.base_url();
    for path in [
        "/",
        "/console/console.js",
        "/console/api/state",
        "/console/api/replay/pause",
    ] {
        let anonymous = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        assert_eq!(
            anonymous.headers()["www-authenticate"],
            r#"Basic realm="gws""#
        );
        let wrong = http
            .get(format!("{base}{path}"))
            .basic_auth(USER, Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let page = http
        .get(format!("{base}/"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-security-policy"],
        "default-src 'self'"
    );
    let html = page.text().await.unwrap();
    for needle in [
        r#"data-testid="ring""#,
        r#"href="/console/console.css""#,
        r#"src="/console/console.js""#,
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    assert!(
        !html.contains("//cdn") && !html.contains("https://"),
        "{html}"
    );
    for (path, kind) in [
        ("/console/console.css", "text/css"),
        ("/console/console.js", "text/javascript"),
    ] {
        let r = http
            .get(format!("{base}{path}"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
    }
    // A cross-site form cannot ring: the console's POSTs are JSON only.
    let form = http
        .post(format!("{base}/console/api/ring"))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("from=1")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    assert!(sim.gws().call_ids().is_empty());
    let form = http
        .post(format!("{base}/console/api/replay/pause"))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415, "the replay's controls too");
}

/// The lines `replay FILE` prints: what `watch` prints of a replay of FILE.
async fn replayed(file: &str) -> Vec<String> {
    let out = run(&mut cmd(&["replay", file])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

/// Starts `serve --listen 127.0.0.1:0 --user agent ARGS`; its base URL. Its stderr is
/// drained so it never blocks on a full pipe.
async fn serve(args: &[&str]) -> (Child, String) {
    let mut c = cmd(&["serve", "--listen", "127.0.0.1:0", "--user", USER]);
    c.args(args).env("GWS_PASSWORD", PASSWORD);
    spawn_serve(&mut c).await
}

#[tokio::test]
async fn console_pauses_steps_and_plays_serve_replay_as_watch_receives_it() {
    let Some(_browser) = browser().await else {
        return;
    };
    let file = fixture("inbound-call.jsonl");
    let file = file.to_str().unwrap();
    let expected = replayed(file).await;
    let total = gws_cometd_sim::replay::Recording::open(file)
        .unwrap()
        .notifications();
    // At a thousandth of the recorded pace, nothing comes unless stepped.
    let (_serve, base) = serve(&["--replay", file, "--speed", "0.001"]).await;
    let mut watch = cmd(&["watch", "--gws", &base, "--user", USER])
        .env("GWS_PASSWORD", PASSWORD)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(watch.stderr.take().unwrap());
    read_until(&mut stderr, "caught up with the server's calls").await;
    tokio::spawn(async move {
        let mut lines = stderr.lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    });
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let args = json!({ "base": base, "user": USER, "password": PASSWORD, "cli": BIN });

    // The recording's first notification (a device's) has no gap before it: it comes at
    // once. The call rings a recorded second later: a step.
    let mut step_args = args.clone();
    step_args["from"] = json!(1);
    step_args["steps"] = json!(1);
    let stepped = scenario("replayStep", &step_args).await;
    assert_clean(&stepped);
    let start = &stepped["start"];
    assert_eq!(
        (&start["delivered"], &start["total"], &start["paused"]),
        (&json!(1), &json!(total), &json!(false)),
        "{start}"
    );
    assert_eq!(
        (&start["speed"], &start["selected"]),
        (&json!("0.001"), &json!("0.001"))
    );
    let delivered: Vec<&Value> = stepped["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["delivered"])
        .collect();
    assert_eq!(delivered, [&json!(2)], "one notification a step");
    let shown = stepped["steps"][0]["text"].as_str().unwrap();
    assert_eq!(
        shown,
        format!("2 of {total} delivered · loop 0 · 1 session · paused · 0.001×")
    );
    let first = within(
        "watch prints the stepped notification",
        WAIT,
        lines.next_line(),
    )
    .await
    .unwrap()
    .expect("a watch line");
    assert_eq!(first, expected[0]);
    // The page shows the replayed call the step brought, and the change as watch printed
    // it, newest first.
    let printed: Value = serde_json::from_str(&first).unwrap();
    let call_id = printed["callId"].as_str().unwrap();
    let step = &stepped["steps"][0];
    assert_eq!(step["calls"], json!([[call_id, "Ringing"]]), "{step}");
    assert_eq!(step["changes"][0], json!(first), "{step}");
    assert!(
        tokio::time::timeout(Duration::from_secs(1), lines.next_line())
            .await
            .is_err(),
        "watch printed more than the stepped notification"
    );

    let played = scenario("replayPlay", &args).await;
    assert_eq!(played["outside"], json!([]));
    assert_eq!(played["navigations"], 1);
    // The browser logs the refused speed's 400; nothing else.
    let errors = played["errors"].as_array().unwrap();
    assert!(
        errors.len() == 1 && errors[0].as_str().unwrap().contains("400"),
        "{errors:?}"
    );
    let speed_error = played["speedError"].as_str().unwrap();
    assert!(
        speed_error.starts_with(r#"replay speed: "fast" is not a speed"#)
            && speed_error.ends_with("(statusCode 1)"),
        "{speed_error}"
    );
    let end = &played["end"];
    assert_eq!(
        (&end["delivered"], &end["paused"], &end["speed"]),
        (&json!(total), &json!(false), &json!("max")),
        "{end}"
    );
    let mut rest = Vec::new();
    within("watch prints the rest of the recording", WAIT, async {
        while rest.len() < expected.len() - 1 {
            rest.push(lines.next_line().await.unwrap().expect("a watch line"));
        }
    })
    .await;
    assert_eq!(rest, expected[1..]);
    let _ = watch.start_kill();
}
