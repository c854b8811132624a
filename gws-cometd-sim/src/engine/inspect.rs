//! What tests and the server read back: counters, the client-publish log, who receives a
//! channel, and waits for a state to be reached.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::Engine;
use crate::SimStats;
use gws_cometd::bayeux::channel_matches;

impl Engine {
    /// Counters and a snapshot of sessions and subscriptions; `requests` (an HTTP count) is
    /// left for the server to fill in.
    pub(crate) fn stats(&self) -> SimStats {
        let st = self.lock();
        let mut stats = st.stats.clone();
        stats.sessions = st.sessions.len();
        stats.subscriptions = BTreeMap::new();
        for s in st.sessions.values() {
            for ch in &s.subscriptions {
                *stats.subscriptions.entry(ch.clone()).or_default() += 1;
            }
        }
        stats
    }

    pub(crate) fn client_log(&self) -> Vec<(String, String)> {
        self.lock().client_log.iter().cloned().collect()
    }

    /// The sessions (client id, owner) whose subscriptions match `channel`.
    pub(crate) fn sessions_receiving(&self, channel: &str) -> BTreeMap<String, String> {
        self.lock()
            .sessions
            .iter()
            .filter(|(_, s)| s.subscriptions.iter().any(|p| channel_matches(p, channel)))
            .filter_map(|(id, s)| Some((id.clone(), s.owner.clone()?)))
            .collect()
    }

    /// Messages queued for the session `client_id` and not yet in a connect reply; `None`
    /// when there is no such session.
    pub(crate) fn queued_for(&self, client_id: &str) -> Option<usize> {
        self.lock().sessions.get(client_id).map(|s| s.queue.len())
    }

    pub(super) fn subscriber_count(&self, channel: &str) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.subscriptions.contains(channel))
            .count()
    }

    /// Waits until `cond` holds, re-checking on every state change, for at most `timeout`.
    pub(crate) async fn wait_until(
        &self,
        timeout: Duration,
        cond: impl Fn(&Engine) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(self) {
                return true;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return cond(self),
            }
        }
    }

    pub(crate) async fn wait_for_subscribers(
        &self,
        channel: &str,
        n: usize,
        timeout: Duration,
    ) -> bool {
        self.wait_until(timeout, |e| e.subscriber_count(channel) >= n)
            .await
    }

    pub(crate) async fn wait_for_sessions(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |e| e.lock().sessions.len() == n)
            .await
    }

    pub(crate) async fn wait_for_client_publishes(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |e| e.lock().stats.client_publishes >= n as u64)
            .await
    }
}
