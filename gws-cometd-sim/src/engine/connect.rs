//! The held `/meta/connect`: waits for queued messages, a newer connect, the long-poll
//! timeout or shutdown, and closes an acknowledged batch when it answers.

use std::time::Duration;

use tokio::time::Instant;

use super::{failure, reply_to, Engine, Policy};
use crate::ack::{ack_ext, acknowledged};
use gws_cometd::bayeux::{Advice, Message, Reconnect};

/// Keeps a session's `held` count right even when a held connect is cancelled (the client
/// went away and the HTTP layer dropped the request).
struct HeldGuard<'a> {
    engine: &'a Engine,
    client_id: String,
    armed: bool,
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let now = Instant::now();
            let mut st = self.engine.lock();
            if let Some(s) = st.sessions.get_mut(&self.client_id) {
                s.held = s.held.saturating_sub(1);
                s.last_active = now;
            }
        }
    }
}

impl Engine {
    pub(super) async fn connect(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
        policy: &Policy,
    ) -> Vec<Message> {
        let client_id = req.client_id.clone().unwrap_or_default();
        let (wake, my_gen, prompt) = {
            let mut st = self.lock();
            st.stats.connects += 1;
            if !Self::session_ok(&st, req, browser, owner) {
                return Self::gone(&mut st, req);
            }
            if policy.advice_none {
                let mut m = failure(req, "403::Reconnect refused");
                m.advice = Some(Advice {
                    reconnect: Some(Reconnect::None),
                    interval: Some(0),
                    ..Advice::default()
                });
                return vec![m];
            }
            let Some(s) = st.sessions.get_mut(&client_id) else {
                return vec![Self::unknown_client(req, true)];
            };
            s.connect_gen += 1;
            s.held += 1;
            s.last_active = Instant::now();
            // A connect that acknowledges a batch while older messages are still
            // unacknowledged gets them again at once (a reply went missing).
            let mut prompt = false;
            if let Some(acks) = s.acks.as_mut() {
                if let Some(n) = acknowledged(req.ext.as_deref()) {
                    acks.acknowledge(n);
                    prompt = acks.has_unacked();
                }
            }
            // Release any connect this session already has held.
            s.wake.notify_waiters();
            (s.wake.clone(), s.connect_gen, prompt)
        };
        let mut guard = HeldGuard {
            engine: self,
            client_id: client_id.clone(),
            armed: true,
        };
        let hold = req
            .advice
            .as_ref()
            .and_then(|a| a.timeout)
            .map_or(self.cfg.long_poll_timeout, |t| {
                Duration::from_millis(t).min(self.cfg.long_poll_timeout)
            });
        let deadline = Instant::now() + hold;
        let mut shutdown = self.shutdown.clone();
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let now = Instant::now();
                let stopping = *shutdown.borrow();
                let mut st = self.lock();
                let Some(s) = st.sessions.get_mut(&client_id) else {
                    guard.armed = false;
                    return Self::gone(&mut st, req);
                };
                let superseded = s.connect_gen != my_gen;
                if superseded || prompt || !s.queue.is_empty() || now >= deadline || stopping {
                    guard.armed = false;
                    s.held = s.held.saturating_sub(1);
                    s.last_active = now;
                    let mut m = reply_to(req);
                    m.successful = Some(true);
                    m.advice = Some(self.advice(Reconnect::Retry));
                    // A superseded connect closes no batch and takes nothing with it.
                    let (mut out, redelivered, dropped) = match s.acks.as_mut() {
                        _ if superseded => (Vec::new(), 0, 0),
                        None => (s.queue.drain(..).collect(), 0, 0),
                        Some(acks) => {
                            let batch = acks.close_batch(s.queue.drain(..), self.cfg.max_queue);
                            m.ext = ack_ext(batch.number);
                            (batch.messages, batch.redelivered, batch.dropped)
                        }
                    };
                    st.stats.delivered += out.len() as u64;
                    st.stats.redelivered += redelivered as u64;
                    st.stats.dropped += dropped as u64;
                    drop(st);
                    out.push(m);
                    return out;
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
                r = shutdown.changed() => {
                    if r.is_err() {
                        // The server handle is gone: answer now rather than spin.
                        tokio::time::sleep_until(deadline).await;
                    }
                }
            }
        }
    }
}
