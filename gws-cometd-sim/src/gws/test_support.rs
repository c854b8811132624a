//! Helpers the simulator's unit tests share: a simulator that records what it publishes,
//! and requests made without an HTTP server.

pub(super) use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
pub(super) use hyper::header::{HeaderValue, AUTHORIZATION, COOKIE};
pub(super) use hyper::{HeaderMap, Method, Request, Response};

pub(super) use super::{lock, GwsSim, GwsSimConfig, CALLS_CHANNEL, CSRF_HEADER};

pub(super) type Published = Arc<Mutex<Vec<(String, String)>>>;

/// A simulator whose notifications are recorded as `(channel, data)`.
pub(super) fn sim_with(config: GwsSimConfig) -> (GwsSim, Published) {
    let published: Published = Arc::default();
    let sink = published.clone();
    let sim = GwsSim::new(
        config,
        Arc::new(move |_user: &str, channel: &str, data: String| {
            lock(&sink).push((channel.to_owned(), data));
        }),
    );
    (sim, published)
}

/// One user, `agent` with password `pw`.
pub(super) fn sim() -> (GwsSim, Published) {
    sim_with(GwsSimConfig::new("agent", "pw"))
}

pub(super) fn basic(user: &str, password: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
    );
    h
}

pub(super) fn header<'r>(resp: &'r Response<Bytes>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn body(resp: &Response<Bytes>) -> &str {
    std::str::from_utf8(resp.body()).unwrap()
}

pub(super) fn request(
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: &str,
) -> Request<Bytes> {
    let mut req = Request::new(Bytes::copy_from_slice(body.as_bytes()));
    *req.method_mut() = method;
    *req.uri_mut() = path.parse().unwrap();
    *req.headers_mut() = headers.clone();
    req
}

pub(super) fn get(sim: &GwsSim, path: &str, headers: &HeaderMap) -> Response<Bytes> {
    sim.handle(&request(Method::GET, path, headers, ""))
        .expect("a GWS route")
}

pub(super) fn post(sim: &GwsSim, path: &str, headers: &HeaderMap, body: &str) -> Response<Bytes> {
    sim.handle(&request(Method::POST, path, headers, body))
        .expect("a GWS route")
}

/// Logs `agent` in and returns headers carrying the session cookie and CSRF token.
pub(super) fn login(sim: &GwsSim) -> HeaderMap {
    login_as(sim, "agent", "pw")
}

/// Logs `user` in and returns headers carrying the session cookie and CSRF token.
pub(super) fn login_as(sim: &GwsSim, user: &str, password: &str) -> HeaderMap {
    let resp = get(sim, "/api/v2/me", &basic(user, password));
    assert_eq!(resp.status(), 200, "{}", body(&resp));
    let cookie = header(&resp, "Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let mut h = HeaderMap::new();
    h.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
    assert_eq!(header(&resp, "X-CSRF-HEADER"), Some(CSRF_HEADER));
    let token = header(&resp, CSRF_HEADER).unwrap();
    h.insert(CSRF_HEADER, HeaderValue::from_str(token).unwrap());
    h
}

/// The `userData` object text of a notification or call, exactly as written.
pub(super) fn user_data_of(data: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(data).unwrap();
    let call = v.get("call").unwrap_or(&v);
    // The raw text keeps duplicates; find the userData object text by position.
    call.get("userData")?;
    let start = data.find(r#""userData":"#)? + r#""userData":"#.len();
    let end = start + data[start..].find('}')? + 1;
    Some(data[start..end].to_owned())
}
