//! Sessions ending without a disconnect: idle ones expire, all can be forgotten at once.

use tokio::time::Instant;

use super::Engine;
use gws_cometd::bayeux::Message;

impl Engine {
    /// Drops the sessions `pick` selects (by client id); their held connects answer
    /// `402::Unknown client`.
    pub(crate) fn forget_sessions(&self, pick: impl Fn(&str) -> bool) {
        let mut st = self.lock();
        st.sessions.retain(|id, s| {
            let keep = !pick(id);
            if !keep {
                s.wake.notify_waiters();
            }
            keep
        });
        drop(st);
        self.changed.notify_waiters();
    }

    /// Ends the sessions `pick` selects (by client id) as a server does on its own: each
    /// one's held connect, or its next, is answered with a `/meta/disconnect`.
    pub(crate) fn end_sessions(&self, pick: impl Fn(&str) -> bool) {
        let mut st = self.lock();
        let ended: Vec<String> = st.sessions.keys().filter(|id| pick(id)).cloned().collect();
        for id in ended {
            if let Some(s) = st.sessions.remove(&id) {
                s.wake.notify_waiters();
            }
            st.ended.insert(id);
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// The answer owed to a session the server ended, if `batch` comes from one (checked
    /// before any other, as the HTTP session the batch rides on may be gone with it).
    pub(crate) fn answer_ended(&self, batch: &[Message]) -> Option<Vec<Message>> {
        let mut st = self.lock();
        let req = batch.iter().find(|m| {
            m.client_id
                .as_deref()
                .is_some_and(|id| st.ended.contains(id))
        })?;
        Some(Self::gone(&mut st, req))
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
