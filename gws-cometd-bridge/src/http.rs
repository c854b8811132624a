//! `--metrics-listen ADDR`: `GET /metrics` (Prometheus text, OpenMetrics flavour) and
//! `GET /healthz` over HTTP/1.1.
//!
//! `/healthz` answers 200 while the NATS connection is up and the layout is made, 503
//! otherwise; its body is JSON: `{"status":"ok"|"degraded"|"unavailable","stale":["agent",
//! ...],"nats":true|false,"sessions":{"connected":N,...},"pending":N,"loginFailing":
//! ["agent",...]}`. `degraded` (still 200: restarting the bridge would not help) names the
//! agents whose store has possibly been stale for longer than the feeds' staleness bound
//! (twice the max network delay): notifications are not getting through, and the bridge
//! publishes what its reads of the server's calls find until they do.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use super::error::BridgeError;
use super::metrics::{Metrics, SessionState};
use gws_cometd::http_server;

/// What the endpoint reads.
#[derive(Clone)]
pub(crate) struct Health {
    pub metrics: Metrics,
    /// The stream and bucket are there.
    pub layout_ready: Arc<AtomicBool>,
    /// How long an agent's store may be stale before `/healthz` says `degraded`: the
    /// feeds' staleness bound.
    pub stale_bound: std::time::Duration,
}

/// How long a stopping endpoint waits for a scrape in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Binds `addr` and serves until `stop` turns true.
pub(crate) async fn serve(
    addr: SocketAddr,
    health: Health,
    stop: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BridgeError> {
    let (listener, bound) =
        http_server::bind(addr)
            .await
            .map_err(|source| BridgeError::MetricsListen {
                addr: addr.to_string(),
                source,
            })?;
    let task = tokio::spawn(http_server::serve(
        listener,
        stop,
        SHUTDOWN_GRACE,
        move |req, _conn| {
            let reply = answer(&req, &health);
            async move { reply }
        },
    ));
    Ok((bound, task))
}

fn answer(req: &Request<Incoming>, health: &Health) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            health.metrics.encode(),
        ),
        "/healthz" => {
            let m = health.metrics.snapshot();
            let ok = m.nats_connected && health.layout_ready.load(Ordering::Acquire);
            let stale: Vec<String> = health
                .metrics
                .stale_agents_since()
                .into_iter()
                .filter(|(_, since)| since.elapsed() >= health.stale_bound)
                .map(|(agent, _)| agent)
                .collect();
            let sessions: serde_json::Map<String, serde_json::Value> = SessionState::ALL
                .iter()
                .map(|s| (s.name().to_owned(), m.sessions_in(*s).into()))
                .collect();
            let status = match (ok, stale.is_empty()) {
                (false, _) => "unavailable",
                (true, false) => "degraded",
                (true, true) => "ok",
            };
            let body = serde_json::json!({
                "status": status,
                "stale": stale,
                "nats": m.nats_connected,
                "sessions": sessions,
                "pending": m.pending,
                "loginFailing": health.metrics.failing_agents(),
            });
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, "application/json", format!("{body}\n"))
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "/metrics or /healthz\n".into(),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
