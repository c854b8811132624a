//! An in-process Bayeux 1.0 server for tests and demos.
//!
//! [`SimServer::start`] binds a loopback port (port 0 by default) and serves long-polling
//! Bayeux at `/cometd` and `/api/v2/notifications`, and at every path below them (clients
//! append `/handshake`, `/connect`, ...). It behaves like the official CometD server where
//! clients can tell: sessions are bound to the `BAYEUX_BROWSER` cookie set on the handshake
//! reply, one `/meta/connect` is held per session, wildcard subscriptions, server-side and
//! client publishing, and sessions expire without connects. [`Fault`]s make it misbehave on
//! purpose. Dropping the [`SimServer`] stops every task and closes the listener.
//!
//! | module | what it holds |
//! |---|---|
//! | `engine` | the Bayeux protocol state: sessions, subscriptions, queues, held connects (its meta channels, held connects, publishing, expiry and read-back in one submodule each) |
//! | `bayeux_route` | the Bayeux endpoint: request batches in, reply batches out, cookies |
//! | `server` | the hyper server, the router of routes, the faults that act on HTTP |
//! | `fault` | the fault set |
//! | `ack` | the server side of CometD's acknowledged-messages extension |
//! | [`gws`] | the GWS REST model: HTTP sessions, calls, user data, scenarios |
//! | `gws_server` | [`GwsSimServer`]: the GWS model and an authenticated, per-user notification endpoint on one server |
//! | `gws_v3_server` | the Workspace API v3 routes and CometD endpoint of [`GwsSimServer`], and its initialization message |
//! | `console` | the console at `/`: a page to see and drive the user's calls in a browser |
//! | `json_string` | `quote`: a string as a JSON string literal, for replies built as text |
//! | [`replay`] | recordings served to any GWS client (`serve --replay`), with a control handle |
//!
//! Routes see the standard `http` types (`Request<Bytes>` in, `Response<Bytes>` out).
//! Extensions such as the GWS REST endpoints plug in through `SimServer::start_with`: their
//! routes are tried before the Bayeux endpoint and get the engine to publish with.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use gws_cometd_sim::{SimConfig, SimServer};
//! let sim = SimServer::start(SimConfig::default()).await?;
//! assert!(sim.url().ends_with("/cometd"));
//! // No one is subscribed yet, so nobody receives this.
//! assert_eq!(sim.publish_str("/v2/me/calls", r#"{"n":1}"#), 0);
//! # Ok(()) }
//! ```

mod ack;
mod bayeux_route;
mod console;
mod engine;
mod fault;
pub mod gws;
mod gws_server;
mod gws_v3_server;
mod json_string;
pub mod replay;
mod server;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use fault::Fault;
pub use gws_server::{GwsServerConfig, GwsSimServer};

use bayeux_route::BayeuxRoute;
use engine::{Engine, EngineConfig};
use fault::FaultSet;
use server::{Route, Shared};

/// The Bayeux base paths the simulator serves.
const BAYEUX_PATHS: [&str; 2] = ["/cometd", "/api/v2/notifications"];

/// How the simulator listens and times sessions.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to bind; default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// How long a `/meta/connect` is held when nothing is queued (`advice.timeout`);
    /// default 30 s.
    pub long_poll_timeout: Duration,
    /// `advice.interval`: the pause clients make between connects; default 0.
    pub interval: Duration,
    /// A session with no connect held or received for this long is removed; default 10 s.
    pub max_interval: Duration,
    /// Messages queued per session at most; beyond it the oldest is dropped with a
    /// warning. Default 100 000.
    pub max_queue: usize,
    /// Whether clients that handshake with `ext:{ack:true}` get CometD's
    /// acknowledged-messages extension (default `true`): every connect reply then carries
    /// `ext:{ack:<batch>}`, and messages are delivered again on every connect until a
    /// connect acknowledges their batch, so a reply lost on the way is not lost. Clients
    /// that do not ask are served as without it.
    pub ack_extension: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            long_poll_timeout: Duration::from_secs(30),
            interval: Duration::ZERO,
            max_interval: Duration::from_secs(10),
            max_queue: 100_000,
            ack_extension: true,
        }
    }
}

/// Counters and a snapshot of the simulator's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Live sessions.
    pub sessions: usize,
    /// Successful handshakes.
    pub handshakes: u64,
    /// `/meta/connect` messages received.
    pub connects: u64,
    /// `/meta/disconnect` messages that ended a session.
    pub disconnects: u64,
    /// Sessions removed for lack of connects.
    pub expired: u64,
    /// HTTP requests received (any path, any outcome).
    pub requests: u64,
    /// Replies held back by [`Fault::DelayReplies`], counted when their request arrived.
    pub delayed_replies: u64,
    /// For each subscribed channel pattern, how many live sessions hold it. A session that
    /// subscribes twice counts once, as on a real server.
    pub subscriptions: BTreeMap<String, usize>,
    /// For each channel, how many times it was asked for in `/meta/subscribe`, over the
    /// server's life (reveals duplicate subscribe requests).
    pub subscribe_requests: BTreeMap<String, u64>,
    /// Messages published, by the server or by clients.
    pub published: u64,
    /// Publishes received from clients.
    pub client_publishes: u64,
    /// Data messages written into connect replies (redeliveries included).
    pub delivered: u64,
    /// Data messages written again because their batch was not acknowledged
    /// (acknowledged-messages extension).
    pub redelivered: u64,
    /// Data messages dropped because a session's queue was full.
    pub dropped: u64,
}

/// A running simulator. Dropping it stops the server: tasks are aborted and the listener
/// closed. [`SimServer::shutdown`] stops it gracefully.
pub struct SimServer {
    addr: SocketAddr,
    engine: Arc<Engine>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// Binds `config.listen` and starts serving. Fails when the address cannot be bound
    /// (the error's kind says why, e.g. `AddrInUse`). The error is a plain
    /// [`std::io::Error`]: `?` takes it into `Box<dyn Error>`, `std::io::Result`, or
    /// `gws_cometd::Result` (as `gws_cometd::Error::Io`).
    pub async fn start(config: SimConfig) -> std::io::Result<SimServer> {
        Self::start_with(config, |_| Vec::new()).await
    }

    /// Starts with extra routes, tried in order before the Bayeux endpoint. `build` gets
    /// the [`Extension`] context so routes can publish and watch subscriptions.
    pub(crate) async fn start_with(
        config: SimConfig,
        build: impl FnOnce(&Extension) -> Vec<Arc<dyn Route>>,
    ) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let engine = Arc::new(Engine::new(
            EngineConfig {
                long_poll_timeout: config.long_poll_timeout,
                interval: config.interval,
                max_interval: config.max_interval,
                max_queue: config.max_queue,
                ack_extension: config.ack_extension,
            },
            shutdown_rx.clone(),
        ));
        let mut routes = build(&Extension {
            addr,
            engine: engine.clone(),
            shutdown: shutdown_rx.clone(),
        });
        routes.push(Arc::new(BayeuxRoute {
            engine: engine.clone(),
            bases: BAYEUX_PATHS.iter().map(|p| p.to_string()).collect(),
        }));
        let shared = Arc::new(Shared {
            routes,
            faults: Arc::new(FaultSet::default()),
            requests: AtomicU64::new(0),
            delayed_replies: AtomicU64::new(0),
            shutdown: shutdown_rx.clone(),
        });
        let accept = tokio::spawn(server::accept_loop(listener, shared.clone()));
        let sweeper = tokio::spawn(sweep(engine.clone(), config.max_interval, shutdown_rx));
        tracing::debug!(%addr, "simulator listening");
        Ok(SimServer {
            addr,
            engine,
            shared,
            shutdown,
            tasks: vec![accept, sweeper],
        })
    }

    /// Runs `task` until the server stops; it is aborted when the server is dropped.
    pub(crate) fn spawn<F>(&mut self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.push(tokio::spawn(task));
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CometD endpoint, `http://127.0.0.1:PORT/cometd`.
    pub fn url(&self) -> String {
        format!("http://{}/cometd", self.addr)
    }

    /// The GWS notification endpoint, `http://127.0.0.1:PORT/api/v2/notifications`.
    pub fn gws_url(&self) -> String {
        format!("http://{}/api/v2/notifications", self.addr)
    }

    /// Publishes `data` on `channel` to every session with a matching subscription
    /// (including `*` and `**` patterns); returns how many sessions got it. The data is
    /// delivered byte for byte as given.
    pub fn publish(&self, channel: &str, data: &RawValue) -> usize {
        self.engine.publish(channel, data)
    }

    /// Like [`publish`](Self::publish) for JSON text; invalid JSON publishes nothing,
    /// returns 0 and logs a warning.
    pub fn publish_str(&self, channel: &str, json: &str) -> usize {
        match RawValue::from_string(json.to_owned()) {
            Ok(raw) => self.publish(channel, &raw),
            Err(e) => {
                tracing::warn!(channel, error = %e, "simulator publish skipped: data is not JSON");
                0
            }
        }
    }

    /// Turns on a fault for subsequent requests.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.faults.set(fault);
    }

    /// Turns every fault off.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Drops every session: the next request of any client gets `402::Unknown client` (with
    /// advice `reconnect:handshake` on connect replies); held connects answer so at once.
    pub fn forget_sessions(&self) {
        self.engine.forget_sessions(|_| true);
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Counters and a snapshot of sessions and subscriptions.
    pub fn stats(&self) -> SimStats {
        SimStats {
            requests: self.shared.requests.load(Ordering::Relaxed),
            delayed_replies: self.shared.delayed_replies.load(Ordering::Relaxed),
            ..self.engine.stats()
        }
    }

    /// Waits until at least `n` sessions are subscribed to exactly `channel` (the pattern
    /// as subscribed), for at most `timeout`. Returns whether that happened.
    pub async fn wait_for_subscribers(&self, channel: &str, n: usize, timeout: Duration) -> bool {
        self.engine.wait_for_subscribers(channel, n, timeout).await
    }

    /// Every message clients published, oldest first, as `(channel, data JSON text)`. Keeps
    /// the latest `max_queue` entries.
    pub fn published_by_clients(&self) -> Vec<(String, String)> {
        self.engine.client_log()
    }

    /// Waits until clients have published at least `n` messages in all, for at most
    /// `timeout`. Returns whether that happened.
    pub async fn wait_for_client_publishes(&self, n: usize, timeout: Duration) -> bool {
        self.engine.wait_for_client_publishes(n, timeout).await
    }

    /// Waits until exactly `n` sessions are live (e.g. 0 after expiry or disconnect), for at
    /// most `timeout`. Returns whether that happened.
    pub async fn wait_for_sessions(&self, n: usize, timeout: Duration) -> bool {
        self.engine.wait_for_sessions(n, timeout).await
    }

    /// Stops gracefully: no new connections, held connects answer, open connections get a
    /// few seconds to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(6), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What a simulator extension (extra routes, scenarios) gets to work with.
pub(crate) struct Extension {
    /// The bound address.
    pub addr: SocketAddr,
    /// The Bayeux state: publish, subscriptions, sessions.
    pub engine: Arc<Engine>,
    /// Becomes `true` when the server stops.
    pub shutdown: watch::Receiver<bool>,
}

/// Removes expired sessions even when no request arrives to trigger the lazy check.
async fn sweep(engine: Arc<Engine>, max_interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let period = (max_interval / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => engine.expire_idle(),
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}
