//! The server side of CometD's acknowledged-messages extension, for one session.
//!
//! A client that handshakes with `ext:{ack:true}` is answered `ext:{ack:true}`; from then on
//! every `/meta/connect` reply closes a batch and carries `ext:{ack:<batch>}`. Messages stay
//! queued here until a connect acknowledges their batch (`ext:{ack:N}` removes every batch
//! ≤ N), and every connect reply carries all of them again, oldest first, followed by the
//! newer ones: a reply that was cut on the way is delivered in full by the next one. A
//! connect whose acknowledgement leaves messages unacknowledged is answered at once. The
//! state lives and dies with the session.

use std::collections::VecDeque;

use serde_json::value::RawValue;

use gws_cometd::bayeux::Message;

/// Whether a handshake's `ext` asks for acknowledgements: `ack` exactly `true`.
pub(crate) fn asks_for_acks(ext: Option<&RawValue>) -> bool {
    ack_of(ext).is_some_and(|v| v == serde_json::Value::Bool(true))
}

/// The batch a connect's `ext` acknowledges (`ack` a non-negative integer).
pub(crate) fn acknowledged(ext: Option<&RawValue>) -> Option<u64> {
    ack_of(ext).and_then(|v| v.as_u64())
}

fn ack_of(ext: Option<&RawValue>) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct Ext {
        ack: Option<serde_json::Value>,
    }
    serde_json::from_str::<Ext>(ext?.get()).ok()?.ack
}

/// `ext:{ack:<value>}` as raw JSON.
pub(crate) fn ack_ext(value: impl std::fmt::Display) -> Option<Box<RawValue>> {
    RawValue::from_string(format!(r#"{{"ack":{value}}}"#)).ok()
}

/// One session's unacknowledged messages and batch counter.
#[derive(Debug)]
pub(crate) struct AckQueue {
    /// The batch the next connect reply closes; the first is 1.
    next_batch: u64,
    /// Sent (or about to be) and not yet acknowledged, oldest first, with their batch.
    unacked: VecDeque<(u64, Message)>,
}

/// A connect reply's share of the queue.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The batch number for `ext.ack`.
    pub number: u64,
    /// Every unacknowledged message, oldest first.
    pub messages: Vec<Message>,
    /// How many of them were sent before (redeliveries).
    pub redelivered: usize,
    /// Old messages dropped to stay within the bound.
    pub dropped: usize,
}

impl AckQueue {
    pub(crate) fn new() -> Self {
        AckQueue {
            next_batch: 1,
            unacked: VecDeque::new(),
        }
    }

    /// A connect acknowledged batch `n`: its messages and older ones are done.
    pub(crate) fn acknowledge(&mut self, n: u64) {
        while self.unacked.front().is_some_and(|(b, _)| *b <= n) {
            self.unacked.pop_front();
        }
    }

    /// Whether messages wait for an acknowledgement.
    pub(crate) fn has_unacked(&self) -> bool {
        !self.unacked.is_empty()
    }

    /// Closes the next batch for a connect reply: `fresh` messages join it, and the reply
    /// carries everything unacknowledged. At most `max` messages are kept; beyond that the
    /// oldest are dropped.
    pub(crate) fn close_batch(
        &mut self,
        fresh: impl IntoIterator<Item = Message>,
        max: usize,
    ) -> Batch {
        let number = self.next_batch;
        self.next_batch += 1;
        let redelivered = self.unacked.len();
        self.unacked.extend(fresh.into_iter().map(|m| (number, m)));
        let dropped = self.unacked.len().saturating_sub(max.max(1));
        self.unacked.drain(..dropped);
        Batch {
            number,
            messages: self.unacked.iter().map(|(_, m)| m.clone()).collect(),
            redelivered: redelivered.saturating_sub(dropped),
            dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u32) -> Message {
        let mut m = Message::new("/a");
        m.data = RawValue::from_string(n.to_string()).ok();
        m
    }

    fn data(b: &Batch) -> Vec<String> {
        b.messages
            .iter()
            .map(|m| m.data.as_ref().unwrap().get().to_owned())
            .collect()
    }

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn only_a_literal_true_asks_and_only_a_number_acknowledges() {
        assert!(asks_for_acks(Some(&raw(r#"{"ack":true}"#))));
        for no in [
            r#"{"ack":false}"#,
            r#"{"ack":"true"}"#,
            r#"{"ack":1}"#,
            r#"{}"#,
            "[]",
        ] {
            assert!(!asks_for_acks(Some(&raw(no))), "{no}");
        }
        assert!(!asks_for_acks(None));
        assert_eq!(acknowledged(Some(&raw(r#"{"ack":7,"other":1}"#))), Some(7));
        assert_eq!(acknowledged(Some(&raw(r#"{"ack":-1}"#))), None);
        assert_eq!(acknowledged(Some(&raw(r#"{"ack":true}"#))), None);
        assert_eq!(ack_ext(3).unwrap().get(), r#"{"ack":3}"#);
    }

    #[test]
    fn unacknowledged_messages_ride_every_reply_until_their_batch_is_acknowledged() {
        let mut q = AckQueue::new();
        let b1 = q.close_batch([msg(1), msg(2)], 100);
        assert_eq!(
            (b1.number, data(&b1), b1.redelivered),
            (1, vec!["1".into(), "2".into()], 0)
        );
        // The reply was lost: the client acknowledges nothing new.
        q.acknowledge(0);
        assert!(q.has_unacked());
        let b2 = q.close_batch([msg(3)], 100);
        assert_eq!(b2.number, 2);
        assert_eq!(data(&b2), ["1", "2", "3"]);
        assert_eq!(b2.redelivered, 2);
        q.acknowledge(2);
        assert!(!q.has_unacked());
        let b3 = q.close_batch([], 100);
        assert_eq!((b3.number, b3.messages.len()), (3, 0));
    }

    #[test]
    fn an_acknowledgement_removes_only_the_batches_it_names() {
        let mut q = AckQueue::new();
        q.close_batch([msg(1)], 100);
        q.close_batch([msg(2)], 100);
        q.acknowledge(1);
        let b = q.close_batch([], 100);
        assert_eq!(data(&b), ["2"]);
    }

    #[test]
    fn the_queue_is_bounded_by_dropping_the_oldest() {
        let mut q = AckQueue::new();
        q.close_batch([msg(1), msg(2)], 3);
        let b = q.close_batch([msg(3), msg(4)], 3);
        assert_eq!(data(&b), ["2", "3", "4"]);
        assert_eq!((b.dropped, b.redelivered), (1, 1));
    }
}
