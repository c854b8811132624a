//! No secret in any log line on the Workspace API v3 either: both logins (sign-in + code, and
//! the password grant with a client secret), the API key, the REST calls and a new login after
//! the server forgot the session run with every record at TRACE captured; then the password,
//! the client secret and its Basic form, the API key, the code, the access token and every
//! session cookie are searched for in what was logged.

use gws_cometd_test_support::log_capture;
use gws_cometd_test_support::within;

use std::time::Duration;

use base64::Engine;
use gws_cometd::gws::rest::UserValue;

use super::fake_v3::{session_id, Fake, API_KEY, CLIENT, CODE, PASSWORD, SECRET, TOKEN};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v3_flow_at_trace_level_logs_no_secret() {
    let captured = log_capture::install("trace");
    let fake = Fake::start().await;
    let pairs = vec![("AccountNumber".to_owned(), UserValue::from("12345"))];
    within("the v3 flow", WAIT, async {
        for grant in [false, true] {
            let session = fake.session(PASSWORD, grant);
            session.login().await.unwrap();
            session.calls().await.unwrap();
            session.attach_user_data("c1", &pairs).await.unwrap();
            // The server restarted: a new login, then the operation again.
            fake.state.lock().unwrap().sessions.clear();
            session.update_user_data("c1", &pairs).await.unwrap();
            let text = format!("{session:?}");
            assert!(!text.contains(SECRET) && !text.contains(API_KEY), "{text}");
        }
    })
    .await;
    let logins = fake.state.lock().unwrap().logins;
    assert_eq!(logins, 4, "two logins per flow");

    let log = captured.text();
    assert!(log.contains("TRACE"), "nothing at trace level was captured");
    assert!(log.contains("logging in again"), "{log}");
    let mut secrets = vec![
        PASSWORD.to_owned(),
        SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}")),
        API_KEY.to_owned(),
        CODE.to_owned(),
        TOKEN.to_owned(),
    ];
    secrets.extend((1..=logins).map(session_id));
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret was logged: {secret}"
        );
    }
}
