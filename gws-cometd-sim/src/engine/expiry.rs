//! Sessions ending without a disconnect: idle ones expire, all can be forgotten at once.

use tokio::time::Instant;

use super::Engine;

impl Engine {
    /// Drops every session; held connects answer `402::Unknown client`.
    pub(crate) fn forget_sessions(&self) {
        let mut st = self.lock();
        for (_, s) in st.sessions.drain() {
            s.wake.notify_waiters();
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Removes sessions that have had no connect held or received for `max_interval`.
    pub(crate) fn expire_idle(&self) {
        let now = Instant::now();
        let max = self.cfg.max_interval;
        let mut st = self.lock();
        let before = st.sessions.len();
        st.sessions.retain(|id, s| {
            let keep = s.held > 0 || now.saturating_duration_since(s.last_active) <= max;
            if !keep {
                tracing::debug!(client_id = %id, "session expired");
                s.wake.notify_waiters();
            }
            keep
        });
        let expired = before - st.sessions.len();
        st.stats.expired += expired as u64;
        drop(st);
        if expired > 0 {
            self.changed.notify_waiters();
        }
    }
}
