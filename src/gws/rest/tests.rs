//! Unit tests of the session's URLs, `Debug` and reply judging.

use super::*;

#[test]
fn base_urls_are_normalized_and_bad_ones_refused() {
    let base = |s: &str| parse_base(s).map(|u| u.to_string());
    assert_eq!(base("http://h:8090").unwrap(), "http://h:8090/");
    assert_eq!(base("http://h:8090/").unwrap(), "http://h:8090/");
    assert_eq!(base("http://h:8090/api/v2/").unwrap(), "http://h:8090/");
    assert_eq!(base("https://h/gws/api").unwrap(), "https://h/gws");
    assert_eq!(
        base("https://h/gws/workspace/v3/").unwrap(),
        "https://h/gws"
    );
    assert!(matches!(
        base("ftp://h"),
        Err(RestError::Transport(TransportError::InvalidUrl { .. }))
    ));
    let err = parse_base("http://bob:hunter2@h:8090").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
fn urls_are_built_under_api_v2_with_encoded_ids() {
    let s = GwsSession::new("http://h:8090/gws/", Credentials::new("u", "p")).unwrap();
    assert_eq!(
        s.notifications_url(),
        "http://h:8090/gws/api/v2/notifications"
    );
    assert_eq!(
        s.url(&["me", "calls", "a/b c"]).as_str(),
        "http://h:8090/gws/api/v2/me/calls/a%2Fb%20c"
    );
    let s = GwsSession::new("http://h:8090", Credentials::new("u", "p")).unwrap();
    assert_eq!(s.notifications_url(), "http://h:8090/api/v2/notifications");
    assert_eq!(s.base_url(), "http://h:8090");
}

#[test]
fn debug_output_hides_the_password() {
    let creds = Credentials::new("agent", "s3cr3t-pw");
    let s = GwsSession::new("http://h:8090", creds.clone()).unwrap();
    for text in [format!("{creds:?}"), format!("{s:?}")] {
        assert!(!text.contains("s3cr3t-pw"), "{text}");
    }
    assert!(format!("{creds:?}").contains("agent"));
}

#[test]
fn non_zero_status_codes_become_typed_errors_whatever_the_http_status() {
    let url = Url::parse("http://h/api/v2/me/calls/X").unwrap();
    let reply = Reply {
        status: StatusCode::NOT_FOUND,
        body: br#"{"statusCode":6,"statusMessage":"Call not found"}"#.to_vec(),
    };
    let err = judge(&url, reply, "AttachUserData", Some("X")).unwrap_err();
    assert!(matches!(
        &err,
        RestError::Gws { status: GwsStatus::NotFound, call_id: Some(id), .. } if id == "X"
    ));
    assert_eq!(
        err.to_string(),
        "AttachUserData on call X: GWS statusCode 6 (not found): Call not found"
    );
    let reply = Reply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: br#"{"statusMessage":"database down"}"#.to_vec(),
    };
    let err = judge(&url, reply, "GetCalls", None).unwrap_err();
    assert!(
        matches!(&err, RestError::Transport(TransportError::Status { status: 500, body, .. }) if body == "database down")
    );
    let ok = Reply {
        status: StatusCode::OK,
        body: br#"{"statusCode":0}"#.to_vec(),
    };
    assert!(judge(&url, ok, "X", None).is_ok());
}
