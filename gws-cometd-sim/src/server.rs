//! The simulator's HTTP/1.1 server: the library's serve loop, a small router of
//! [`Route`]s, and the faults that act on the HTTP exchange itself.
//!
//! Routes see the standard `http` request with its body read (`Request<Bytes>`) and answer a
//! whole `Response<Bytes>`; faults then shape how it is sent. Routes are tried in order; the
//! first that answers wins. A route may also guard others by
//! answering only when it refuses a request (e.g. a missing session cookie) and passing the
//! rest on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, COOKIE};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use gws_cometd::http_server::{self, Connection};

use super::fault::{ActiveFaults, FaultSet};

/// Largest request body the simulator reads.
const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;
/// How long [`Fault::Hold`](super::Fault::Hold) keeps a request at most.
const MAX_HOLD: Duration = Duration::from_secs(600);
/// How long a graceful shutdown waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Number of pieces a slow body is cut into (at most).
const SLOW_PIECES: usize = 16;

/// The JSON content type Bayeux servers answer with.
pub(crate) const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// The reply body type: whole, streamed slowly, or broken off.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The value of cookie `name`, from any `Cookie` header.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A reply with this status, content type and body.
pub(crate) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON reply.
pub(crate) fn json_reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    reply(status, JSON_UTF8, body)
}

/// A plain-text reply.
pub(crate) fn text_reply(status: StatusCode, body: impl Into<String>) -> Response<Bytes> {
    reply(status, "text/plain;charset=UTF-8", body.into())
}

/// Adds a header; a value that is not a valid header is skipped with a warning.
pub(crate) fn add_header(r: &mut Response<Bytes>, name: HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            r.headers_mut().append(name, v);
        }
        Err(_) => tracing::warn!(header = %name, "skipping an invalid header value"),
    }
}

/// A handler for some of the simulator's paths.
pub(crate) trait Route: Send + Sync + 'static {
    /// Answers `req` (under the request's `faults`), or returns `None` to let the next
    /// route try.
    fn handle<'a>(
        &'a self,
        req: &'a Request<Bytes>,
        faults: &'a ActiveFaults,
    ) -> BoxFuture<'a, Option<Response<Bytes>>>;
}

/// What every connection task shares.
pub(crate) struct Shared {
    pub routes: Vec<Arc<dyn Route>>,
    pub faults: Arc<FaultSet>,
    pub requests: AtomicU64,
    /// Replies held back by [`Fault::DelayReplies`](super::Fault::DelayReplies), counted
    /// when their request arrives.
    pub delayed_replies: AtomicU64,
    pub shutdown: watch::Receiver<bool>,
}

/// Accepts connections until shutdown; then lets open connections finish, bounded. The
/// loop is the library's ([`gws_cometd::http_server`]); the simulator adds its routes and
/// faults.
pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let shutdown = shared.shutdown.clone();
    http_server::serve(listener, shutdown, SHUTDOWN_GRACE, move |req, conn| {
        let shared = shared.clone();
        async move { handle(req, &shared, &conn).await }
    })
    .await;
}

fn full(body: Bytes) -> Body {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Sends `r` whole.
fn whole(r: Response<Bytes>) -> Response<Body> {
    r.map(full)
}

async fn handle(req: Request<Incoming>, shared: &Shared, conn: &Connection) -> Response<Body> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let faults = shared.faults.take();
    if faults.close_after_reply {
        // hyper closes the connection after this reply without adding a `Connection:
        // close` header: exactly the misbehaviour the fault wants.
        conn.close_after_reply();
    }
    if let Some(code) = faults.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return whole(text_reply(status, format!("simulated HTTP {code}")));
    }
    if faults.holds(req.method().as_str(), req.uri().path()) {
        let mut shutdown = shared.shutdown.clone();
        let _ = tokio::time::timeout(MAX_HOLD, shutdown.wait_for(|stop| *stop)).await;
        return whole(text_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "held request released",
        ));
    }
    if faults.malformed {
        return whole(json_reply(StatusCode::OK, &b"[{\"channel\":"[..]));
    }

    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return whole(text_reply(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {e}"),
            ))
        }
    };
    let req = Request::from_parts(parts, body);
    let mut answer = None;
    for route in &shared.routes {
        if let Some(r) = route.handle(&req, &faults).await {
            answer = Some(r);
            break;
        }
    }
    let answer = answer.unwrap_or_else(|| {
        text_reply(
            StatusCode::NOT_FOUND,
            format!("no route for {}", req.uri().path()),
        )
    });
    if let Some(delay) = faults.reply_delay(req.method().as_str(), req.uri().path()) {
        shared.delayed_replies.fetch_add(1, Ordering::Relaxed);
        let mut shutdown = shared.shutdown.clone();
        let _ = tokio::time::timeout(delay, shutdown.wait_for(|stop| *stop)).await;
    }
    shape(answer, &faults, shared.shutdown.clone())
}

/// Applies the faults that damage how a reply is sent.
fn shape(
    r: Response<Bytes>,
    faults: &ActiveFaults,
    shutdown: watch::Receiver<bool>,
) -> Response<Body> {
    let (mut parts, mut bytes) = r.into_parts();
    if faults.truncated {
        bytes.truncate(bytes.len() / 2);
    }
    if faults.reset_mid_body {
        let half = bytes.slice(..bytes.len() / 2);
        let len = bytes.len().to_string();
        let items: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(half)),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated reset mid-body",
            )),
        ];
        let body = StreamBody::new(futures::stream::iter(items)).boxed_unsync();
        set_length(&mut parts.headers, &len);
        return Response::from_parts(parts, body);
    }
    if let Some(delay) = faults.slow_body {
        let piece = bytes.len().div_ceil(SLOW_PIECES).max(1);
        let len = bytes.len().to_string();
        let stream = futures::stream::unfold(
            (bytes, true, shutdown),
            move |(mut rest, first, shutdown)| async move {
                if rest.is_empty() {
                    return None;
                }
                if !first && !*shutdown.borrow() {
                    tokio::time::sleep(delay).await;
                }
                let chunk = rest.split_to(piece.min(rest.len()));
                Some((Ok(Frame::data(chunk)), (rest, false, shutdown)))
            },
        );
        let body = StreamBody::new(stream).boxed_unsync();
        // A declared length keeps the framing identical to a normal reply.
        set_length(&mut parts.headers, &len);
        return Response::from_parts(parts, body);
    }
    Response::from_parts(parts, full(bytes))
}

fn set_length(headers: &mut HeaderMap, len: &str) {
    if let Ok(v) = HeaderValue::from_str(len) {
        headers.insert(hyper::header::CONTENT_LENGTH, v);
    }
}
