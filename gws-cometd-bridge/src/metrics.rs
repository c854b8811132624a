//! The bridge's metrics, in a `prometheus-client` registry served at `/metrics`.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `gws_bridge_sessions{state}` | gauge | agent sessions by state: `connecting`, `connected`, `disconnected` (connection lost, retrying), `login_failed` (waiting to retry), `stopped` |
//! | `gws_bridge_notifications_total` | counter | call changes the feeds delivered |
//! | `gws_bridge_changes_published_total` | counter | changes this replica stored in `GWS_CALLS` |
//! | `gws_bridge_duplicates_suppressed_total` | counter | changes already in the stream (a peer or an earlier try stored them) |
//! | `gws_bridge_changes_superseded_total` | counter | changes the call's history moved past while a newer one waited |
//! | `gws_bridge_changes_coalesced_total` | counter | changes merged away because an agent's buffer was full (NATS slow or away) |
//! | `gws_bridge_changes_pending` | gauge | changes waiting for JetStream |
//! | `gws_bridge_changes_unwritten_total` | counter | changes still waiting when a shutdown's drain ran out of time |
//! | `gws_bridge_heals_total` | counter | heals (the feed reconciled after a gap) |
//! | `gws_bridge_gaps_total` | counter | moments messages may have been lost |
//! | `gws_bridge_rehandshakes_total` | counter | Bayeux re-handshakes |
//! | `gws_bridge_relogins_total` | counter | HTTP sessions that expired and were logged in again |
//! | `gws_bridge_login_failures_total` | counter | failed logins (each retried with backoff) |
//! | `gws_bridge_agent_restarts_total` | counter | agent tasks started again after their feed ended for good or a task panicked (with backoff; the other agents go on) |
//! | `gws_bridge_publish_errors_total` | counter | JetStream writes that failed and were retried |
//! | `gws_bridge_kv_writes_total`, `gws_bridge_kv_conflicts_total` | counter | KV entries written; CAS refusals (a peer wrote first) |
//! | `gws_bridge_nats_connected` | gauge | 1 while the NATS connection is up |
//! | `gws_bridge_stale_agents` | gauge | agents whose store may be stale now (messages withheld or lost, not healed yet) |
//! | `gws_bridge_oldest_staleness_seconds` | gauge | how long the stalest of them has been so (0 when none is) |
//! | `gws_bridge_publish_latency_seconds` | histogram | from a stream publish to its ack |
//! | `gws_bridge_change_latency_seconds` | histogram | from receiving a change to its being in the stream and the KV |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The state of one agent's session.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SessionState {
    /// Logging in, connecting, catching up.
    Connecting,
    /// Following.
    Connected,
    /// The connection was lost; the client retries.
    Disconnected,
    /// The login failed; retried after a backoff.
    LoginFailed,
    /// Stopped (shutting down).
    Stopped,
}

impl SessionState {
    /// Every state, in order.
    pub const ALL: [SessionState; 5] = [
        SessionState::Connecting,
        SessionState::Connected,
        SessionState::Disconnected,
        SessionState::LoginFailed,
        SessionState::Stopped,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Connecting => "connecting",
            SessionState::Connected => "connected",
            SessionState::Disconnected => "disconnected",
            SessionState::LoginFailed => "login_failed",
            SessionState::Stopped => "stopped",
        }
    }
}

impl EncodeLabelValue for SessionState {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.name())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: SessionState,
}

/// The bridge's counters; cloning shares them.
#[derive(Clone)]
pub struct Metrics {
    pub(crate) inner: Arc<Inner>,
}

/// Exposed to the crate so the bridge's parts count directly.
pub(crate) struct Inner {
    registry: Registry,
    sessions: Family<StateLabel, Gauge>,
    pub notifications: Counter,
    pub published: Counter,
    pub duplicates: Counter,
    pub superseded: Counter,
    pub coalesced: Counter,
    pub pending: Gauge,
    pub unwritten: Counter,
    pub heals: Counter,
    pub gaps: Counter,
    pub rehandshakes: Counter,
    pub relogins: Counter,
    pub login_failures: Counter,
    pub agent_restarts: Counter,
    pub publish_errors: Counter,
    pub kv_writes: Counter,
    pub kv_conflicts: Counter,
    pub nats_connected: Gauge,
    stale_agents: Gauge,
    oldest_staleness: Gauge<f64, std::sync::atomic::AtomicU64>,
    publish_latency: Histogram,
    change_latency: Histogram,
    /// Agents whose login is failing now (for `/healthz`).
    failing: Mutex<std::collections::BTreeSet<String>>,
    /// Agents whose store may be stale, and since when.
    stale: Mutex<std::collections::BTreeMap<String, std::time::Instant>>,
    /// Sum and count of change latencies, for [`MetricsSnapshot`].
    latency_micros: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("snapshot", &self.snapshot())
            .finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The counters at one moment (for tests, logs and `/healthz`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Sessions per state, in [`SessionState::ALL`] order.
    pub sessions: [i64; 5],
    /// See the [module docs](self).
    pub notifications: u64,
    /// See the module docs.
    pub published: u64,
    /// See the module docs.
    pub duplicates: u64,
    /// See the module docs.
    pub superseded: u64,
    /// See the module docs.
    pub coalesced: u64,
    /// See the module docs.
    pub pending: i64,
    /// See the module docs.
    pub unwritten: u64,
    /// See the module docs.
    pub heals: u64,
    /// See the module docs.
    pub gaps: u64,
    /// See the module docs.
    pub rehandshakes: u64,
    /// See the module docs.
    pub relogins: u64,
    /// See the module docs.
    pub login_failures: u64,
    /// See the module docs.
    pub agent_restarts: u64,
    /// See the module docs.
    pub publish_errors: u64,
    /// See the module docs.
    pub kv_writes: u64,
    /// See the module docs.
    pub kv_conflicts: u64,
    /// See the module docs.
    pub nats_connected: bool,
    /// See the module docs.
    pub stale_agents: i64,
}

impl MetricsSnapshot {
    /// Sessions in `state`.
    pub fn sessions_in(&self, state: SessionState) -> i64 {
        let i = SessionState::ALL
            .iter()
            .position(|s| *s == state)
            .unwrap_or(0);
        self.sessions[i]
    }
}

impl Metrics {
    /// Fresh counters in their own registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gws_bridge");
        let sessions = Family::<StateLabel, Gauge>::default();
        registry.register("sessions", "Agent sessions by state", sessions.clone());
        for state in SessionState::ALL {
            // Every state shows, 0 included.
            let _ = sessions.get_or_create(&StateLabel { state });
        }
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let notifications = counter(
            &mut registry,
            "notifications",
            "Call changes the feeds delivered",
        );
        let published = counter(
            &mut registry,
            "changes_published",
            "Changes this replica stored in GWS_CALLS",
        );
        let duplicates = counter(
            &mut registry,
            "duplicates_suppressed",
            "Changes found already in the stream",
        );
        let superseded = counter(
            &mut registry,
            "changes_superseded",
            "Changes the call's history moved past while a newer one waited",
        );
        let coalesced = counter(
            &mut registry,
            "changes_coalesced",
            "Changes merged away because an agent's buffer was full",
        );
        let pending = gauge(
            &mut registry,
            "changes_pending",
            "Changes waiting for JetStream",
        );
        let unwritten = counter(
            &mut registry,
            "changes_unwritten",
            "Changes still waiting when a shutdown's drain ran out of time",
        );
        let heals = counter(&mut registry, "heals", "Heals after gaps");
        let gaps = counter(&mut registry, "gaps", "Moments messages may have been lost");
        let rehandshakes = counter(&mut registry, "rehandshakes", "Bayeux re-handshakes");
        let relogins = counter(
            &mut registry,
            "relogins",
            "Expired HTTP sessions logged in again",
        );
        let login_failures = counter(
            &mut registry,
            "login_failures",
            "Failed logins, each retried with backoff",
        );
        let agent_restarts = counter(
            &mut registry,
            "agent_restarts",
            "Agent tasks started again after their feed ended or a task panicked",
        );
        let publish_errors = counter(
            &mut registry,
            "publish_errors",
            "JetStream writes that failed and were retried",
        );
        let kv_writes = counter(&mut registry, "kv_writes", "KV entries written");
        let kv_conflicts = counter(
            &mut registry,
            "kv_conflicts",
            "KV writes refused because a peer wrote first",
        );
        let nats_connected = gauge(
            &mut registry,
            "nats_connected",
            "1 while the NATS connection is up",
        );
        let stale_agents = gauge(
            &mut registry,
            "stale_agents",
            "Agents whose store may be stale now (messages withheld or lost, not healed yet)",
        );
        let oldest_staleness = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "oldest_staleness_seconds",
            "How long the stalest agent's store has possibly been stale (0 when none is)",
            oldest_staleness.clone(),
        );
        // 100 µs to ~6.5 s.
        let publish_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register(
            "publish_latency_seconds",
            "From a stream publish to its ack",
            publish_latency.clone(),
        );
        let change_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register(
            "change_latency_seconds",
            "From receiving a change to its being in the stream and the KV",
            change_latency.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                sessions,
                notifications,
                published,
                duplicates,
                superseded,
                coalesced,
                pending,
                unwritten,
                heals,
                gaps,
                rehandshakes,
                relogins,
                login_failures,
                agent_restarts,
                publish_errors,
                kv_writes,
                kv_conflicts,
                nats_connected,
                stale_agents,
                oldest_staleness,
                publish_latency,
                change_latency,
                failing: Mutex::new(Default::default()),
                stale: Mutex::new(Default::default()),
                latency_micros: AtomicU64::new(0),
            }),
        }
    }

    /// The Prometheus text exposition (OpenMetrics) of every metric.
    pub fn encode(&self) -> String {
        // A duration that grows by itself: computed when it is read.
        let oldest = self
            .stale_agents_since()
            .into_iter()
            .map(|(_, since)| since.elapsed().as_secs_f64())
            .fold(0.0, f64::max);
        self.inner.oldest_staleness.set(oldest);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut sessions = [0; 5];
        for (i, state) in SessionState::ALL.iter().enumerate() {
            sessions[i] = self
                .inner
                .sessions
                .get_or_create(&StateLabel { state: *state })
                .get();
        }
        MetricsSnapshot {
            sessions,
            notifications: self.inner.notifications.get(),
            published: self.inner.published.get(),
            duplicates: self.inner.duplicates.get(),
            superseded: self.inner.superseded.get(),
            coalesced: self.inner.coalesced.get(),
            pending: self.inner.pending.get(),
            unwritten: self.inner.unwritten.get(),
            heals: self.inner.heals.get(),
            gaps: self.inner.gaps.get(),
            rehandshakes: self.inner.rehandshakes.get(),
            relogins: self.inner.relogins.get(),
            login_failures: self.inner.login_failures.get(),
            agent_restarts: self.inner.agent_restarts.get(),
            publish_errors: self.inner.publish_errors.get(),
            kv_writes: self.inner.kv_writes.get(),
            kv_conflicts: self.inner.kv_conflicts.get(),
            nats_connected: self.inner.nats_connected.get() > 0,
            stale_agents: self.inner.stale_agents.get(),
        }
    }

    /// An agent's store may be stale since `since`, or (`None`) is known complete again.
    pub(crate) fn agent_stale(&self, agent: &str, since: Option<std::time::Instant>) {
        let mut map = self.inner.stale.lock().unwrap_or_else(|p| p.into_inner());
        match since {
            Some(since) => {
                map.entry(agent.to_owned()).or_insert(since);
            }
            None => {
                map.remove(agent);
            }
        }
        self.inner.stale_agents.set(map.len() as i64);
    }

    /// The agents whose store may be stale now, and since when.
    pub fn stale_agents_since(&self) -> Vec<(String, std::time::Instant)> {
        let map = self.inner.stale.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(a, t)| (a.clone(), *t)).collect()
    }

    /// An agent's session moved from `from` (if any) to `to`.
    pub(crate) fn session_moved(&self, from: Option<SessionState>, to: SessionState) {
        if from == Some(to) {
            return;
        }
        if let Some(from) = from {
            self.inner
                .sessions
                .get_or_create(&StateLabel { state: from })
                .dec();
        }
        self.inner
            .sessions
            .get_or_create(&StateLabel { state: to })
            .inc();
    }

    /// An agent's login failed (`true`) or works again (`false`).
    pub(crate) fn login_failing(&self, agent: &str, failing: bool) {
        let mut set = self.inner.failing.lock().unwrap_or_else(|p| p.into_inner());
        if failing {
            set.insert(agent.to_owned());
        } else {
            set.remove(agent);
        }
    }

    /// The agents whose login is failing now.
    pub fn failing_agents(&self) -> Vec<String> {
        let set = self.inner.failing.lock().unwrap_or_else(|p| p.into_inner());
        set.iter().cloned().collect()
    }

    pub(crate) fn observe_publish(&self, took: Duration) {
        self.inner.publish_latency.observe(took.as_secs_f64());
    }

    pub(crate) fn observe_change(&self, took: Duration) {
        self.inner.change_latency.observe(took.as_secs_f64());
        self.inner.latency_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_should_name_every_metric() {
        let m = Metrics::new();
        m.inner.published.inc();
        m.session_moved(None, SessionState::Connecting);
        m.session_moved(Some(SessionState::Connecting), SessionState::Connected);
        m.observe_publish(Duration::from_millis(2));
        let text = m.encode();
        for want in [
            "gws_bridge_changes_published_total 1",
            "gws_bridge_sessions{state=\"connected\"} 1",
            "gws_bridge_sessions{state=\"connecting\"} 0",
            "gws_bridge_duplicates_suppressed_total 0",
            "gws_bridge_publish_latency_seconds_count 1",
            "gws_bridge_rehandshakes_total 0",
            "gws_bridge_heals_total 0",
            "# EOF",
        ] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
        assert_eq!(m.snapshot().sessions_in(SessionState::Connected), 1);
    }
}
