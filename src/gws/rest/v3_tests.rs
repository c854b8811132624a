//! Unit tests of the v3 module: status codes, secrets in `Debug`, the code flow's settings.

use super::*;

#[test]
fn v3_status_codes_map_to_the_v2_table() {
    let url = Url::parse("http://h/workspace/v3/voice/calls/X/hold").unwrap();
    let reply = |status, body: &str| Reply {
        status,
        body: body.as_bytes().to_vec(),
    };
    let ok = reply(StatusCode::OK, r#"{"status":{"code":1},"operationId":"o"}"#);
    assert!(judge_v3(&url, ok, "Hold", Some("X")).is_ok());
    let refused = reply(
        StatusCode::BAD_REQUEST,
        r#"{"status":{"code":2,"message":"Invalid call state"}}"#,
    );
    let err = judge_v3(&url, refused, "Hold", Some("X")).unwrap_err();
    assert_eq!(err.gws_status(), Some(GwsStatus::InvalidState));
    assert_eq!(
        err.to_string(),
        "Hold on call X: GWS statusCode 2 (invalid for the current state): Invalid call state"
    );
    let down = reply(StatusCode::BAD_GATEWAY, "upstream gone");
    let err = judge_v3(&url, down, "Hold", Some("X")).unwrap_err();
    assert!(matches!(
        err,
        RestError::Transport(TransportError::Status { status: 502, .. })
    ));
}

#[test]
fn debug_shows_no_secret() {
    let config = V3Config {
        client: Some(("wwe".into(), Password::new("cl13nt-s3cret"))),
        api_key: Some(Password::new("k3y-s3cret")),
        ..V3Config::default()
    };
    let text = format!("{config:?}");
    assert!(text.contains("wwe") && !text.contains("s3cret"), "{text}");
}

#[test]
fn a_redirect_uri_must_be_absolute_and_oauth_errors_are_read() {
    let with = |uri: &str| V3Config {
        redirect_uri: Some(uri.into()),
        ..V3Config::default()
    };
    assert!(with("https://crm.example/cb").check().is_ok());
    assert!(V3Config::default().check().is_ok());
    for bad in ["crm.example/cb", "/cb", "mailto:x@example.com"] {
        let err = with(bad).check().unwrap_err().to_string();
        assert!(
            err.contains("a redirect URI must be an absolute URL"),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        oauth_reason(r#"{"error":"unauthorized_client","error_description":"Unknown client"}"#),
        "Unknown client"
    );
    assert_eq!(
        oauth_reason(r#"{"error":"invalid_request"}"#),
        "invalid_request"
    );
    assert_eq!(oauth_reason("Bad Request"), "Bad Request");
}
