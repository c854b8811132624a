//! [`Bridge`]: many agents' feeds in one process, into JetStream, with metrics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::ContextBuilder;
use async_nats::{ConnectOptions, Event};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::agent::{self, AgentTasks, Shared};
use super::agents::Agent;
use super::error::BridgeError;
use super::http::{self, Health};
use super::layout::LayoutConfig;
use super::metrics::Metrics;
use super::source::{FeedSettings, GwsApi};
use super::writer::Publisher;
use gws_cometd::backoff::{Backoff, BackoffConfig};
use gws_cometd::transport::http::new_client;
use gws_cometd::transport::HttpOptions;

/// How a [`Bridge`] runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// GWS base URL, e.g. `https://gws.example:8090`.
    pub gws_base_url: String,
    /// The agents to follow (each on [`gws_api`](Self::gws_api)'s generation unless it
    /// says another).
    pub agents: Vec<Agent>,
    /// NATS server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub nats_url: String,
    /// This replica's name, written into every message it publishes (`Gws-Replica`).
    pub replica: String,
    /// What to create when the stream or the bucket is absent.
    pub layout: LayoutConfig,
    /// Changes an agent's buffer holds before merging per call (default 1 000).
    pub buffer_per_agent: usize,
    /// How old a catch-up or heal change must be before it is published over a history that
    /// does not show it (default 1 s); see the [bridge docs](super).
    pub settle: Duration,
    /// How long a JetStream ack or request may take before the write is retried (default
    /// 5 s).
    pub nats_timeout: Duration,
    /// How long a shutdown waits for buffered changes to be written (default 10 s).
    pub drain_timeout: Duration,
    /// Where to serve `/metrics` and `/healthz` (none by default).
    pub metrics_listen: Option<SocketAddr>,
    /// Proxy and CA settings of the one HTTP client every session shares.
    pub http_options: HttpOptions,
    /// Each GWS request's network deadline (default 10 s).
    pub max_network_delay: Duration,
    /// Logins in flight at once (default 64): thousands of agents do not all log in at the
    /// same moment.
    pub login_concurrency: usize,
    /// The GWS generation (v2 by default, or the Workspace API v3) of the agents that do
    /// not say ([`Agent::api`]), and v3's login settings for every v3 agent.
    pub gws_api: GwsApi,
}

impl BridgeConfig {
    /// The defaults for these agents ([`Agent`]s, or [`Credentials`](gws_cometd::gws::rest::Credentials) for agents on
    /// [`gws_api`](Self::gws_api)'s generation), GWS and NATS.
    pub fn new<A: Into<Agent>>(
        gws_base_url: impl Into<String>,
        agents: impl IntoIterator<Item = A>,
        nats_url: impl Into<String>,
    ) -> Self {
        BridgeConfig {
            gws_base_url: gws_base_url.into(),
            agents: agents.into_iter().map(Into::into).collect(),
            nats_url: nats_url.into(),
            replica: default_replica_name(),
            layout: LayoutConfig::default(),
            buffer_per_agent: 1000,
            settle: Duration::from_secs(1),
            nats_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            metrics_listen: None,
            http_options: HttpOptions::default(),
            max_network_delay: Duration::from_secs(10),
            login_concurrency: 64,
            gws_api: GwsApi::default(),
        }
    }
}

/// `<host name>-<process id>`.
pub fn default_replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "bridge".into());
    format!("{host}-{}", std::process::id())
}

/// What a shutdown left undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Changes still buffered when the drain time ran out (also counted as
    /// `gws_bridge_changes_unwritten_total`).
    pub unwritten: u64,
}

/// A running bridge. See the [module docs](super).
pub struct Bridge {
    metrics: Metrics,
    stop: watch::Sender<bool>,
    drain: watch::Sender<Option<Instant>>,
    drain_timeout: Duration,
    agents: Vec<AgentTasks>,
    setup: JoinHandle<()>,
    http: Option<(SocketAddr, JoinHandle<()>)>,
    nats: async_nats::Client,
    failed: Option<oneshot::Receiver<BridgeError>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("agents", &self.agents.len())
            .field("metrics", &self.http.as_ref().map(|(a, _)| a))
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Connects to NATS (in the background: an unreachable server is retried, and changes
    /// wait in the buffers meanwhile), makes the layout, and starts following every agent.
    /// Fails on a bad URL, a metrics address that cannot be bound, or an HTTP client that
    /// cannot be built.
    pub async fn start(config: BridgeConfig) -> Result<Bridge, BridgeError> {
        let metrics = Metrics::new();
        let (connected_tx, connected) = watch::channel(false);
        let nats = connect_nats(&config, &metrics, connected_tx).await?;
        let js = ContextBuilder::new()
            .timeout(config.nats_timeout)
            .build(nats.clone());
        let (publisher_tx, publisher_rx) = watch::channel(None);
        let layout_ready = Arc::new(AtomicBool::new(false));
        let (stop, stop_rx) = watch::channel(false);
        let (drain, drain_rx) = watch::channel(None);

        let (failed_tx, failed) = oneshot::channel();
        let setup = tokio::spawn(
            Setup {
                nats: nats.clone(),
                url: gws_cometd::transport::endpoint::redact(&config.nats_url),
                js,
                connected: connected.clone(),
                layout: config.layout.clone(),
                replica: config.replica.clone(),
                settle: config.settle,
                metrics: metrics.clone(),
                ready: layout_ready.clone(),
                stop: stop_rx.clone(),
            }
            .run(publisher_tx, failed_tx),
        );

        let http = match config.metrics_listen {
            Some(addr) => Some(
                http::serve(
                    addr,
                    Health {
                        metrics: metrics.clone(),
                        layout_ready,
                        // The feeds' default staleness bound.
                        stale_bound: 2 * config.max_network_delay,
                    },
                    stop_rx.clone(),
                )
                .await?,
            ),
            None => None,
        };

        let client = new_client(&config.http_options).map_err(gws_cometd::Error::from)?;
        let shared = Shared {
            publisher: publisher_rx,
            metrics: metrics.clone(),
            feed: FeedSettings {
                base_url: config.gws_base_url.clone(),
                http: client,
                max_network_delay: config.max_network_delay,
                logins: Arc::new(Semaphore::new(config.login_concurrency.max(1))),
                api: config.gws_api.clone(),
            },
            buffer: config.buffer_per_agent,
            stop: stop_rx,
            drain_until: drain_rx,
        };
        let agents = config
            .agents
            .into_iter()
            .map(|a| agent::spawn(a, shared.clone()))
            .collect();
        Ok(Bridge {
            metrics,
            stop,
            drain,
            drain_timeout: config.drain_timeout,
            agents,
            setup,
            http,
            nats,
            failed: Some(failed),
        })
    }

    /// Resolves when the bridge cannot go on until an operator acts (see
    /// [`BridgeError::is_fatal`]): a nats-server older than 2.9, a stream or bucket without
    /// direct get. Everything else (NATS away, requests timing out) is retried and never
    /// resolves this. Pending forever once it has resolved.
    pub async fn failed(&mut self) -> BridgeError {
        match self.failed.take() {
            Some(rx) => match rx.await {
                Ok(e) => e,
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Where `/metrics` and `/healthz` are served (the bound port when asked for port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(a, _)| *a)
    }

    /// Stops: disconnects every session, writes what is buffered (for at most the drain
    /// timeout), flushes NATS.
    pub async fn shutdown(self) -> ShutdownReport {
        let drain = self.drain_timeout;
        self.shutdown_within(drain).await
    }

    /// [`shutdown`](Self::shutdown) with this drain time instead of the configured one
    /// (zero after [`failed`](Self::failed): nothing can be written).
    pub async fn shutdown_within(self, drain: Duration) -> ShutdownReport {
        let before = self.metrics.inner.unwritten.get();
        let _ = self.stop.send(true);
        let _ = self.drain.send(Some(Instant::now() + drain));
        let bound = drain + Duration::from_secs(15);
        let (readers, writers): (Vec<_>, Vec<_>) = self
            .agents
            .into_iter()
            .map(|a| (a.reader, a.writer))
            .unzip();
        let all = async {
            futures::future::join_all(readers).await;
            futures::future::join_all(writers).await;
        };
        if tokio::time::timeout(bound, all).await.is_err() {
            tracing::warn!("shutdown: some agents did not stop in time");
        }
        // Nothing can be flushed to a server the client is not connected to.
        if self.nats.connection_state() == async_nats::connection::State::Connected {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.nats.flush()).await;
        }
        self.setup.abort();
        if let Some((_, task)) = self.http {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        ShutdownReport {
            unwritten: self.metrics.inner.unwritten.get() - before,
        }
    }

    /// Stops at once, as a crash would: nothing is drained, writes in flight are abandoned.
    /// (For tests of what peers do when a replica dies.)
    pub fn abort(self) {
        for a in &self.agents {
            a.reader.abort();
            a.writer.abort();
        }
        self.setup.abort();
        if let Some((_, task)) = &self.http {
            task.abort();
        }
    }
}

/// Why a TCP connection to the first server of `urls` fails, if it does.
async fn probe(urls: &str) -> Option<String> {
    let first = urls.split(',').next()?.trim();
    let addr: async_nats::ServerAddr = first.parse().ok()?;
    let connect = tokio::net::TcpStream::connect((addr.host(), addr.port()));
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 2 s".into()),
    }
}

/// The oldest nats-server the bridge works with: direct get (`allow_direct`) came in 2.9.
const NEEDED_SERVER: (u64, u64) = (2, 9);

/// `major.minor` of a server version such as `2.10.4` or `2.11.0-RC.1`.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let number = |p: Option<&str>| -> Option<u64> {
        let p = p?;
        let digits = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
        p[..digits].parse().ok()
    };
    Some((number(parts.next())?, number(parts.next())?))
}

/// The background task that waits for NATS, checks the server and makes the layout.
struct Setup {
    nats: async_nats::Client,
    url: String,
    js: async_nats::jetstream::Context,
    connected: watch::Receiver<bool>,
    layout: LayoutConfig,
    replica: String,
    settle: Duration,
    metrics: Metrics,
    ready: Arc<AtomicBool>,
    stop: watch::Receiver<bool>,
}

impl Setup {
    async fn run(
        mut self,
        publisher: watch::Sender<Option<Publisher>>,
        failed: oneshot::Sender<BridgeError>,
    ) {
        let mut backoff = Backoff::new(&BackoffConfig {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
            ..BackoffConfig::default()
        });
        let mut last_warning = String::new();
        loop {
            // While NATS is away the connection's own warning says so; a layout request
            // would only time out and say it again.
            tokio::select! {
                _ = self.connected.wait_for(|c| *c) => {}
                _ = self.stop.wait_for(|s| *s) => return,
            }
            let attempt = match self.check_server() {
                Ok(()) => {
                    Publisher::new(
                        self.js.clone(),
                        &self.layout,
                        &self.replica,
                        self.settle,
                        self.metrics.clone(),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match attempt {
                Ok(p) => {
                    self.ready.store(true, Ordering::Release);
                    tracing::info!("JetStream layout ready");
                    let _ = publisher.send(Some(p));
                    // Keep the sender: writers wait on it.
                    let _ = self.stop.wait_for(|s| *s).await;
                    return;
                }
                Err(e) if e.is_fatal() => {
                    let _ = failed.send(e);
                    return;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    let warning = e.to_string();
                    if warning != last_warning {
                        tracing::warn!(retry_in = ?delay, "JetStream not ready: {warning}");
                        last_warning = warning;
                    } else {
                        tracing::debug!(retry_in = ?delay, "JetStream still not ready: {warning}");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    fn check_server(&self) -> Result<(), BridgeError> {
        check_version(&self.nats.server_info().version, &self.url)
    }
}

/// Refuses a server older than [`NEEDED_SERVER`]. A version the bridge cannot read is given
/// the benefit of the doubt: the layout check still refuses a server without direct get.
fn check_version(found: &str, url: &str) -> Result<(), BridgeError> {
    match major_minor(found) {
        Some(v) if v < NEEDED_SERVER => Err(BridgeError::UnsupportedServer {
            url: url.to_owned(),
            found: found.to_owned(),
            needed: "2.9",
        }),
        _ => Ok(()),
    }
}

async fn connect_nats(
    config: &BridgeConfig,
    metrics: &Metrics,
    connected: watch::Sender<bool>,
) -> Result<async_nats::Client, BridgeError> {
    let events = metrics.clone();
    let url = gws_cometd::transport::endpoint::redact(&config.nats_url);
    let connected = Arc::new(connected);
    // One warning per episode of NATS being unreachable, naming the URL at once.
    let unreachable_said = Arc::new(AtomicBool::new(false));
    let event_url = url.clone();
    let connected_now = connected.clone();
    let client = ConnectOptions::new()
        .name(format!("gws-cometd bridge {}", config.replica))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        // Capped reconnect delay: a restarted server is found within a second.
        .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(1000)))
        .event_callback(move |event| {
            let metrics = events.clone();
            let connected = connected.clone();
            let said = unreachable_said.clone();
            let url = event_url.clone();
            async move {
                match event {
                    Event::Connected => {
                        metrics.inner.nats_connected.set(1);
                        said.store(false, Ordering::Relaxed);
                        connected.send_replace(true);
                        tracing::info!(url, "NATS connected");
                    }
                    Event::Disconnected => {
                        metrics.inner.nats_connected.set(0);
                        connected.send_replace(false);
                        said.store(true, Ordering::Relaxed);
                        tracing::warn!(
                            url,
                            "NATS disconnected; reconnecting (changes wait in the buffers)"
                        );
                    }
                    Event::ClientError(e) if !said.swap(true, Ordering::Relaxed) => {
                        // The client's error names only a kind ("IO error"); a plain connect
                        // finds the cause a person can act on ("Connection refused").
                        let cause = match probe(&url).await {
                            Some(cause) => cause,
                            None => e.to_string(),
                        };
                        tracing::warn!(
                            "cannot reach NATS at {url}: {cause}; retrying (changes wait in \
                             the buffers)"
                        );
                    }
                    Event::Closed => {
                        metrics.inner.nats_connected.set(0);
                        connected.send_replace(false);
                    }
                    other => tracing::debug!("NATS: {other}"),
                }
            }
        })
        .connect(config.nats_url.as_str())
        .await
        .map_err(|e| BridgeError::Nats {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    if client.connection_state() == async_nats::connection::State::Connected {
        metrics.inner.nats_connected.set(1);
        connected_now.send_replace(true);
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::{check_version, major_minor};

    #[test]
    fn server_versions_are_read_as_major_and_minor() {
        assert_eq!(major_minor("2.9.10"), Some((2, 9)));
        assert_eq!(major_minor("2.10.4"), Some((2, 10)));
        assert_eq!(major_minor("v2.11.0-RC.1"), Some((2, 11)));
        assert_eq!(major_minor("2"), None);
        assert_eq!(major_minor("next"), None);
    }

    #[test]
    fn servers_before_2_9_are_refused_in_one_line_naming_both_versions() {
        let url = "nats://127.0.0.1:4222";
        let e = check_version("2.8.4", url).unwrap_err();
        assert!(e.is_fatal());
        assert_eq!(
            e.to_string(),
            "NATS at nats://127.0.0.1:4222: nats-server 2.8.4 found, the bridge needs 2.9 or \
             later (JetStream direct get)"
        );
        assert!(check_version("1.4.1", url).is_err());
        for ok in ["2.9.0", "2.9.10", "2.10.0", "3.0.0", "unknown"] {
            assert!(check_version(ok, url).is_ok(), "{ok}");
        }
    }
}
