//! [`Bridge`]: many agents' feeds in one process, into JetStream, with metrics.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::ContextBuilder;
use async_nats::{ConnectOptions, Event};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::agent::{self, AgentTasks, Shared};
use super::error::BridgeError;
use super::http::{self, Health};
use super::layout::LayoutConfig;
use super::metrics::Metrics;
use super::source::FeedSettings;
use super::writer::Publisher;
use gws_cometd::backoff::{Backoff, BackoffConfig};
use gws_cometd::gws::rest::Credentials;
use gws_cometd::transport::http::new_client;
use gws_cometd::transport::HttpOptions;

/// How a [`Bridge`] runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// GWS base URL, e.g. `https://gws.example:8090`.
    pub gws_base_url: String,
    /// The agents to follow.
    pub agents: Vec<Credentials>,
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
}

impl BridgeConfig {
    /// The defaults for these agents, GWS and NATS.
    pub fn new(
        gws_base_url: impl Into<String>,
        agents: Vec<Credentials>,
        nats_url: impl Into<String>,
    ) -> Self {
        BridgeConfig {
            gws_base_url: gws_base_url.into(),
            agents,
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
        let nats = connect_nats(&config, &metrics).await?;
        let js = ContextBuilder::new()
            .timeout(config.nats_timeout)
            .build(nats.clone());
        let (publisher_tx, publisher_rx) = watch::channel(None);
        let layout_ready = Arc::new(AtomicBool::new(false));
        let (stop, stop_rx) = watch::channel(false);
        let (drain, drain_rx) = watch::channel(None);

        let setup = {
            let (metrics, layout, replica, settle) = (
                metrics.clone(),
                config.layout.clone(),
                config.replica.clone(),
                config.settle,
            );
            let ready = layout_ready.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut backoff = Backoff::new(&BackoffConfig {
                    initial: Duration::from_millis(200),
                    max: Duration::from_secs(10),
                    ..BackoffConfig::default()
                });
                loop {
                    match Publisher::new(js.clone(), &layout, &replica, settle, metrics.clone())
                        .await
                    {
                        Ok(p) => {
                            ready.store(true, Ordering::Release);
                            tracing::info!("JetStream layout ready");
                            let _ = publisher_tx.send(Some(p));
                            // Keep the sender: writers wait on it.
                            let _ = stop.wait_for(|s| *s).await;
                            return;
                        }
                        Err(e) => {
                            let delay = backoff.next_delay();
                            tracing::warn!(retry_in = ?delay, "JetStream not ready: {e}");
                            tokio::select! {
                                _ = tokio::time::sleep(delay) => {}
                                _ = stop.wait_for(|s| *s) => return,
                            }
                        }
                    }
                }
            })
        };

        let http = match config.metrics_listen {
            Some(addr) => Some(
                http::serve(
                    addr,
                    Health {
                        metrics: metrics.clone(),
                        layout_ready,
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
        })
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
        let before = self.metrics.inner.unwritten.get();
        let _ = self.stop.send(true);
        let _ = self.drain.send(Some(Instant::now() + self.drain_timeout));
        let bound = self.drain_timeout + Duration::from_secs(15);
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

async fn connect_nats(
    config: &BridgeConfig,
    metrics: &Metrics,
) -> Result<async_nats::Client, BridgeError> {
    let events = metrics.clone();
    let url = gws_cometd::transport::endpoint::redact(&config.nats_url);
    let client = ConnectOptions::new()
        .name(format!("gws-cometd bridge {}", config.replica))
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        // Capped reconnect delay: a restarted server is found within a second.
        .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(1000)))
        .event_callback(move |event| {
            let metrics = events.clone();
            async move {
                match event {
                    Event::Connected => {
                        metrics.inner.nats_connected.set(1);
                        tracing::info!("NATS connected");
                    }
                    Event::Disconnected => {
                        metrics.inner.nats_connected.set(0);
                        tracing::warn!(
                            "NATS disconnected; reconnecting (changes wait in the buffers)"
                        );
                    }
                    Event::Closed => {
                        metrics.inner.nats_connected.set(0);
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
    }
    Ok(client)
}
