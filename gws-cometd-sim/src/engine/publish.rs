//! Messages into session queues: what a client publishes and what the server broadcasts.

use serde_json::value::RawValue;

use super::{failure, reply_to, Engine, Session};
use gws_cometd::bayeux::{channel_matches, ChannelName, Message};

impl Engine {
    pub(super) fn client_publish(
        &self,
        msg: Message,
        browser: Option<&str>,
        owner: Option<&str>,
    ) -> Message {
        {
            let st = self.lock();
            if !Self::session_ok(&st, &msg, browser, owner) {
                return Self::unknown_client(&msg, false);
            }
        }
        let Some(data) = msg.data.as_deref() else {
            return failure(&msg, format!("400:{}:Missing data", msg.channel));
        };
        if ChannelName::new(msg.channel.as_str()).map_or(true, |c| c.is_wildcard()) {
            return failure(&msg, format!("405:{}:Invalid channel", msg.channel));
        }
        {
            let mut st = self.lock();
            st.stats.client_publishes += 1;
            if st.client_log.len() >= self.cfg.max_queue.max(1) {
                st.client_log.pop_front();
            }
            st.client_log
                .push_back((msg.channel.clone(), data.get().to_owned()));
        }
        // Service channels reach the server only; everything else is broadcast.
        if !msg.channel.starts_with("/service/") {
            self.publish(&msg.channel, data);
        }
        self.changed.notify_waiters();
        let mut reply = reply_to(&msg);
        reply.client_id = None;
        reply.successful = Some(true);
        reply
    }

    /// Queues `data` on `channel` for every session with a matching subscription; returns
    /// how many sessions got it.
    pub(crate) fn publish(&self, channel: &str, data: &RawValue) -> usize {
        self.publish_where(&data_message(channel, data), |_, _| true)
    }

    /// Like [`publish`](Self::publish), but only to the sessions `owner` owns.
    pub(crate) fn publish_to(&self, owner: &str, channel: &str, data: &RawValue) -> usize {
        self.publish_where(&data_message(channel, data), |_, s| {
            s.owner.as_deref() == Some(owner)
        })
    }

    /// Queues `msg` as it is (every field kept, as a recording holds it) for the session
    /// `client_id` alone, if it is subscribed to the message's channel; returns whether it
    /// was queued.
    pub(crate) fn deliver_to_session(&self, client_id: &str, msg: &Message) -> bool {
        self.publish_where(msg, |id, _| id == client_id) == 1
    }

    /// Queues `data` on `channel` for the sessions of `owner` that `pick` selects (by client
    /// id) and that are NOT subscribed to `channel`, as a server that delivers without
    /// subscriptions does (GWS 9 on its v3 channels); returns how many got it. Together with
    /// [`publish_to`](Self::publish_to), every picked session gets the message once.
    pub(crate) fn push_unsubscribed(
        &self,
        owner: &str,
        channel: &str,
        data: &RawValue,
        pick: impl Fn(&str) -> bool,
    ) -> usize {
        self.queue_where(&data_message(channel, data), |id, s| {
            s.owner.as_deref() == Some(owner)
                && pick(id)
                && !s.subscriptions.iter().any(|p| channel_matches(p, channel))
        })
    }

    fn publish_where(&self, msg: &Message, to: impl Fn(&str, &Session) -> bool) -> usize {
        let channel = msg.channel.as_str();
        self.queue_where(msg, |id, s| {
            to(id, s) && s.subscriptions.iter().any(|p| channel_matches(p, channel))
        })
    }

    fn queue_where(&self, msg: &Message, to: impl Fn(&str, &Session) -> bool) -> usize {
        let mut st = self.lock();
        st.stats.published += 1;
        let max = self.cfg.max_queue.max(1);
        let mut count = 0;
        let mut dropped = 0;
        for (id, s) in st.sessions.iter_mut() {
            if !to(id, s) {
                continue;
            }
            if s.queue.len() >= max {
                s.queue.pop_front();
                s.dropped += 1;
                dropped += 1;
                if s.dropped == 1 || s.dropped % 1000 == 0 {
                    tracing::warn!(
                        client_id = %id,
                        dropped = s.dropped,
                        max_queue = max,
                        "session queue full: dropping the oldest message"
                    );
                }
            }
            s.queue.push_back(msg.clone());
            s.wake.notify_waiters();
            count += 1;
        }
        st.stats.dropped += dropped;
        count
    }
}

/// A data message as the server publishes it: the channel and the data, nothing else.
fn data_message(channel: &str, data: &RawValue) -> Message {
    let mut m = Message::new(channel);
    m.data = Some(data.to_owned());
    m
}
