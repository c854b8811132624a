//! The meta channels a session manages itself with: handshake, subscribe, unsubscribe,
//! disconnect.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{reply_to, Engine, Policy, Session};
use crate::ack::{ack_ext, asks_for_acks, AckQueue};
use gws_cometd::bayeux::{ChannelName, Message, Reconnect};

impl Engine {
    pub(super) fn handshake(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
    ) -> (Message, Option<String>) {
        let mut st = self.lock();
        let new_browser = match browser {
            Some(_) => None,
            None => Some(self.random_hex(&mut st)),
        };
        let bound = browser
            .map(str::to_owned)
            .or_else(|| new_browser.clone())
            .unwrap_or_default();
        let id = self.random_hex(&mut st);
        let with_acks = self.cfg.ack_extension && asks_for_acks(req.ext.as_deref());
        st.sessions.insert(
            id.clone(),
            Session {
                browser: bound,
                owner: owner.map(str::to_owned),
                subscriptions: BTreeSet::new(),
                queue: VecDeque::new(),
                acks: with_acks.then(AckQueue::new),
                wake: Arc::new(Notify::new()),
                connect_gen: 0,
                held: 0,
                last_active: Instant::now(),
                dropped: 0,
            },
        );
        st.stats.handshakes += 1;
        drop(st);
        self.changed.notify_waiters();
        let mut m = reply_to(req);
        m.client_id = Some(id);
        m.successful = Some(true);
        m.version = Some("1.0".into());
        m.supported_connection_types = Some(vec!["long-polling".into()]);
        m.advice = Some(self.advice(Reconnect::Retry));
        if with_acks {
            m.ext = ack_ext(true);
        }
        (m, new_browser)
    }

    pub(super) fn subscribe(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
        policy: &Policy,
    ) -> Message {
        let mut st = self.lock();
        if !Self::session_ok(&st, req, browser, owner) {
            return Self::unknown_client(req, false);
        }
        let mut reply = reply_to(req);
        reply.subscription = req.subscription.clone();
        let channels: Vec<String> = req
            .subscription
            .as_ref()
            .map(|s| s.channels().map(str::to_owned).collect())
            .unwrap_or_default();
        for ch in &channels {
            *st.stats.subscribe_requests.entry(ch.clone()).or_default() += 1;
        }
        if channels.is_empty() {
            reply.successful = Some(false);
            reply.error = Some("403::Missing subscription".into());
            return reply;
        }
        let invalid: Vec<&str> = channels
            .iter()
            .filter(|c| ChannelName::new(c.as_str()).is_err() || c.starts_with("/meta/"))
            .map(String::as_str)
            .collect();
        if !invalid.is_empty() {
            reply.successful = Some(false);
            reply.error = Some(format!("403:{}:Invalid channel", invalid.join(",")));
            return reply;
        }
        let denied: Vec<&str> = channels
            .iter()
            .filter(|c| policy.deny.iter().any(|d| d == *c))
            .map(String::as_str)
            .collect();
        if !denied.is_empty() {
            reply.successful = Some(false);
            reply.error = Some(format!("403:{}:Subscription denied", denied.join(",")));
            return reply;
        }
        if let Some(s) = req
            .client_id
            .as_deref()
            .and_then(|id| st.sessions.get_mut(id))
        {
            s.subscriptions.extend(channels);
        }
        drop(st);
        self.changed.notify_waiters();
        reply.successful = Some(true);
        reply
    }

    pub(super) fn unsubscribe(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
    ) -> Message {
        let mut st = self.lock();
        if !Self::session_ok(&st, req, browser, owner) {
            return Self::unknown_client(req, false);
        }
        if let (Some(s), Some(sub)) = (
            req.client_id
                .as_deref()
                .and_then(|id| st.sessions.get_mut(id)),
            req.subscription.as_ref(),
        ) {
            for ch in sub.channels() {
                s.subscriptions.remove(ch);
            }
        }
        drop(st);
        self.changed.notify_waiters();
        let mut reply = reply_to(req);
        reply.subscription = req.subscription.clone();
        reply.successful = Some(true);
        reply
    }

    pub(super) fn disconnect(
        &self,
        req: &Message,
        browser: Option<&str>,
        owner: Option<&str>,
    ) -> Message {
        let mut st = self.lock();
        if !Self::session_ok(&st, req, browser, owner) {
            return Self::unknown_client(req, false);
        }
        if let Some(s) = req
            .client_id
            .as_deref()
            .and_then(|id| st.sessions.remove(id))
        {
            s.wake.notify_waiters();
        }
        st.stats.disconnects += 1;
        drop(st);
        self.changed.notify_waiters();
        let mut reply = reply_to(req);
        reply.successful = Some(true);
        reply
    }
}
