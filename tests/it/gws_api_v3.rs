//! The GWS REST session on the Workspace API v3, against the fake v3 server of `fake_v3.rs`
//! (real HTTP on 127.0.0.1): both logins, the session cookie of `initialize-workspace`, the
//! API key, `current-session`'s 403 window, the operations' bodies and status codes, and a new
//! login after the server forgot the session.

use gws_cometd_test_support::within;
use std::time::Duration;

use super::fake_v3::{form, session_id, Fake, API_KEY, CALL, CLIENT, CODE, PASSWORD, TOKEN, USER};
use gws_cometd::gws::rest::{Credentials, GwsSession, GwsStatus, RestError, UserValue};
use gws_cometd::gws::Api;

const STEP: Duration = Duration::from_secs(20);

#[tokio::test]
async fn sign_in_and_code_flow_keep_the_session_cookie_and_send_the_api_key() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, false);
    let me = within("login", STEP, session.login()).await.unwrap();
    assert_eq!(me.user_name.as_deref(), Some("JohnSmith"));
    assert!(session
        .cookies()
        .names()
        .contains(&"WORKSPACE_SESSIONID".to_owned()));
    let sign_in = fake.seen_at("/auth/v3/sign-in");
    let posted = sign_in.iter().find(|s| s.method == "POST").unwrap();
    assert!(form(&posted.body).contains(&("username".into(), USER.into())));
    let init = &fake.seen_at("/workspace/v3/initialize-workspace")[0];
    assert!(init.target.contains(&format!("code={CODE}")), "{init:?}");
    // The REST requests ride on the session cookie; every request carries the API key.
    let calls = within("calls", STEP, session.calls()).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].get(), CALL, "the call text exactly as sent");
    assert!(fake.seen_at("/workspace/v3/current-session")[0]
        .cookie
        .contains(&format!("WORKSPACE_SESSIONID={}", session_id(1))));
    for s in fake.seen() {
        assert_eq!(s.api_key.as_deref(), Some(API_KEY), "{s:?}");
    }
    assert!(!format!("{session:?}").contains(PASSWORD));
}

#[tokio::test]
async fn a_wrong_password_is_refused_at_once() {
    let fake = Fake::start().await;
    let session = fake.session("wrong", false);
    let err = within("login", STEP, session.login()).await.unwrap_err();
    assert!(err.is_auth() && !err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("sign-in"), "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");
    assert!(fake
        .seen_at("/workspace/v3/initialize-workspace")
        .is_empty());
}

#[tokio::test]
async fn the_password_grant_initializes_with_a_bearer_token() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, true);
    within("login", STEP, session.login()).await.unwrap();
    assert!(fake.seen_at("/auth/v3/sign-in").is_empty());
    let init = &fake.seen_at("/workspace/v3/initialize-workspace")[0];
    assert_eq!(
        init.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert!(session
        .cookies()
        .names()
        .contains(&"WORKSPACE_SESSIONID".to_owned()));

    let bad = GwsSession::builder(&fake.base(), Credentials::new(USER, PASSWORD))
        .api(Api::V3)
        .client_credentials(CLIENT, "not-the-secret")
        .build()
        .unwrap();
    let err = within("login", STEP, bad.login()).await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
}

#[tokio::test]
async fn current_session_is_asked_again_through_its_403_window() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, true);
    within("login", STEP, session.login()).await.unwrap();
    fake.state.lock().unwrap().forbidden = 2;
    let calls = within("calls", STEP, session.calls()).await.unwrap();
    assert_eq!(calls.len(), 1);
    let statuses: Vec<u16> = fake
        .seen_at("/workspace/v3/current-session")
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [403, 403, 200]);
    assert_eq!(
        fake.state.lock().unwrap().logins,
        1,
        "no new login for the window"
    );
}

#[tokio::test]
async fn operations_send_v3_bodies_and_map_status_codes() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, true);
    let pairs = vec![
        ("A".to_owned(), UserValue::from("12345")),
        ("P".to_owned(), UserValue::from(2)),
        (
            "J".to_owned(),
            UserValue::json(r#"{"k":"v","n":7}"#).unwrap(),
        ),
        ("A".to_owned(), UserValue::from("again")),
    ];
    within("attach", STEP, session.attach_user_data("c1", &pairs))
        .await
        .unwrap();
    within(
        "delete pair",
        STEP,
        session.delete_user_data_pair("c1", "A"),
    )
    .await
    .unwrap();
    within("hold", STEP, session.hold("c1")).await.unwrap();
    within("hangup", STEP, session.hangup("c1")).await.unwrap();
    let posts: Vec<(String, String)> = fake
        .seen()
        .into_iter()
        .filter(|s| s.target.starts_with("/workspace/v3/voice/"))
        .map(|s| (s.target, s.body))
        .collect();
    assert_eq!(
        posts,
        [
            (
                "/workspace/v3/voice/calls/c1/attach-user-data".to_owned(),
                concat!(
                    r#"{"data":{"userData":[{"key":"A","type":"str","value":"12345"},"#,
                    r#"{"key":"P","type":"int","value":2},{"key":"J","type":"kvlist","value":["#,
                    r#"{"key":"k","type":"str","value":"v"},{"key":"n","type":"int","value":7}]},"#,
                    r#"{"key":"A","type":"str","value":"again"}]}}"#
                )
                .to_owned()
            ),
            (
                "/workspace/v3/voice/calls/c1/delete-user-data-pair".to_owned(),
                r#"{"data":{"key":"A"}}"#.to_owned()
            ),
            (
                "/workspace/v3/voice/calls/c1/hold".to_owned(),
                r#"{"data":{}}"#.to_owned()
            ),
            (
                "/workspace/v3/voice/calls/c1/release".to_owned(),
                r#"{"data":{}}"#.to_owned()
            ),
        ]
    );
    // Delete-all: v3 has none; each key of the call is deleted once.
    within("delete all", STEP, session.delete_user_data("c1"))
        .await
        .unwrap();
    let deletes = fake
        .seen_at("/workspace/v3/voice/calls/c1/delete-user-data-pair")
        .len();
    assert_eq!(deletes, 2, "A once more, from the call's [A, A]");

    let err = within("answer", STEP, session.answer("gone"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RestError::Gws { status: GwsStatus::NotFound, call_id: Some(c), .. } if c == "gone"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Answer on call gone: GWS statusCode 6 (not found): Call not found"
    );
    // A 403 with a v3 status is GWS refusing the operation, not a lost session.
    let err = within("hold", STEP, session.hold("denied"))
        .await
        .unwrap_err();
    assert_eq!(err.gws_status(), Some(GwsStatus::NoPermission), "{err:?}");
    assert_eq!(fake.state.lock().unwrap().logins, 1, "no new login for it");
    let err = session
        .attach_user_data("c1", &[("F".into(), UserValue::json("2.5").unwrap())])
        .await
        .unwrap_err();
    assert!(matches!(err, RestError::InvalidValue { .. }), "{err:?}");
}

#[tokio::test]
async fn a_forgotten_session_logs_in_again_once() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, false);
    within("login", STEP, session.login()).await.unwrap();
    // The server restarted: it knows no session any more.
    fake.state.lock().unwrap().sessions.clear();
    within("hold", STEP, session.hold("c1")).await.unwrap();
    assert_eq!(fake.state.lock().unwrap().logins, 2);
    let holds: Vec<u16> = fake
        .seen_at("/workspace/v3/voice/calls/c1/hold")
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(holds, [401, 200]);
    assert!(fake.seen_at("/workspace/v3/voice/calls/c1/hold")[1]
        .cookie
        .contains(&format!("WORKSPACE_SESSIONID={}", session_id(2))));
}

#[tokio::test]
async fn a_forgotten_session_answered_403_logs_in_again_too() {
    let fake = Fake::start().await;
    let session = fake.session(PASSWORD, true);
    within("login", STEP, session.login()).await.unwrap();
    {
        let mut st = fake.state.lock().unwrap();
        st.sessions.clear();
        st.forbid_lost = true;
    }
    within("attach", STEP, session.delete_user_data_pair("c1", "A"))
        .await
        .unwrap();
    assert_eq!(fake.state.lock().unwrap().logins, 2);
}
