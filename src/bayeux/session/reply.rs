//! Replies as they arrive: the driver hands the session each part of a reply (its head,
//! each element, its end or its failure) and gets one [`Verdict`] back, so the order of
//! the protocol's steps (deduplicating redeliveries, delivering data at once, answering meta
//! replies once the reply is whole) lives here and nowhere else.

use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use super::ack::{Fingerprint, Verdict as AckVerdict};
use super::phase::{LongPoll, Phase};
use super::types::{Failure, GapCause, RequestId, SessionEvent};
use super::{Event, Session, CONNECT};
use crate::bayeux::message::Message;

/// One part of the reply to a request, in the order it arrives.
// `Element` is most of what arrives; boxing its message would add an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum ReplyPart<'a> {
    /// The reply's head arrived with a success status: the server answered the request.
    Head,
    /// The next element of the reply array, parsed, and its exact text.
    Element {
        /// The element as a message.
        message: Message,
        /// Its text as received: what tells a redelivered message from another.
        text: &'a [u8],
    },
    /// The next element was over the size limit and was passed over unread.
    TooLarge {
        /// Its size in bytes, as far as it was read.
        size: u64,
        /// The limit it was over, in bytes.
        limit: usize,
    },
    /// The reply array ended, whole.
    End,
    /// No (further) reply: the request failed, timed out, the body broke off or was not
    /// Bayeux JSON. The request is over.
    Failed(Failure),
}

/// What the driver does with a [`ReplyPart`].
// `Message` dominates the size; it is the common case (every data message), so boxing it
// would add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Hand this data message to the subscribers now.
    Deliver(Message),
    /// Drop it: the server redelivered a message already delivered from a reply that was
    /// cut (the acknowledged-messages extension).
    Duplicate,
    /// Report this gap now (an element over the size limit), then go on reading.
    Gap(GapCause),
    /// The session took it: a meta reply or publish acknowledgement (answered once the reply
    /// is whole), the head, the end or the failure. What follows comes from
    /// [`Session::poll_request`] and [`Session::poll_event`].
    Taken,
    /// The session is over: drop it.
    Ignored,
}

/// Data messages go to subscribers as they arrive; everything else (meta replies, and
/// publish acknowledgements, which carry `successful`) is answered when the reply is whole:
/// a reply cut short answers none of it.
fn is_plain_data(m: &Message) -> bool {
    !m.is_meta() && m.successful.is_none()
}

impl Session {
    /// Part of the reply to request `id`, as it arrives; see [`ReplyPart`] and [`Verdict`].
    pub(crate) fn reply(&mut self, id: RequestId, part: ReplyPart<'_>, now: Instant) -> Verdict {
        let before = self.state();
        let verdict = match part {
            ReplyPart::Head => {
                self.connect_reply_started(id, now);
                Verdict::Taken
            }
            ReplyPart::Element { message, text } => self.reply_element(id, message, text),
            ReplyPart::TooLarge { size, limit } => {
                // Its place in the reply counts, redelivered or not; its size stands for it.
                if self.redelivered(id, || Fingerprint::TooLarge { size }) {
                    Verdict::Duplicate
                } else {
                    Verdict::Gap(GapCause::MessageTooLarge {
                        size: usize::try_from(size).unwrap_or(usize::MAX),
                        limit,
                    })
                }
            }
            ReplyPart::End => {
                self.reply_end(id, now);
                Verdict::Taken
            }
            ReplyPart::Failed(failure) => {
                self.failure(id, failure, now);
                Verdict::Taken
            }
        };
        self.settle(before);
        verdict
    }

    fn reply_element(&mut self, id: RequestId, message: Message, text: &[u8]) -> Verdict {
        let hasher = self.hasher.clone();
        let fingerprint = || {
            let mut h = hasher.build_hasher();
            h.write(text);
            Fingerprint::Text(h.finish())
        };
        // The connect's own answer is not one of the messages the server redelivers.
        if message.channel != CONNECT && self.redelivered(id, fingerprint) {
            tracing::debug!(channel = %message.channel, "dropping a message redelivered after a cut");
            return Verdict::Duplicate;
        }
        if self.phase.is_terminated() {
            return Verdict::Ignored;
        }
        if is_plain_data(&message) {
            return Verdict::Deliver(message);
        }
        self.hold(id, message);
        Verdict::Taken
    }

    /// Whether the next element of the reply to `id` was delivered before, from a reply that
    /// was cut: only the current connect's elements are counted, and only while the
    /// acknowledged-messages extension is on (`fingerprint` is computed only then).
    fn redelivered(&mut self, id: RequestId, fingerprint: impl FnOnce() -> Fingerprint) -> bool {
        let Phase::Handshaken {
            long_poll: LongPoll::Sent(flight),
            ack: Some(ack),
            ..
        } = &mut self.phase
        else {
            return false;
        };
        if flight.id != id {
            return false;
        }
        let position = flight.elements;
        flight.elements += 1;
        match ack.element(position, fingerprint()) {
            AckVerdict::Deliver => false,
            AckVerdict::Duplicate => true,
            AckVerdict::Mismatch => {
                self.emit(SessionEvent::Gap {
                    cause: GapCause::RedeliveryMismatch,
                });
                false
            }
        }
    }

    /// Keeps `m` for when the reply to `id` is whole.
    fn hold(&mut self, id: RequestId, m: Message) {
        if let Some(flight) = self.phase.long_poll_flight(id) {
            flight.held.push(m);
        } else if let Some(batch) = self.batch.as_mut().filter(|b| b.id == id) {
            batch.held.push(m);
        } else {
            match self.abandoned.iter_mut().find(|(a, _)| *a == id) {
                Some((_, held)) => held.push(m),
                None => self.abandoned.push((id, vec![m])),
            }
        }
    }

    /// The reply to `id` is whole: what it held is answered. Meta replies count only when
    /// they answer what is outstanding.
    fn reply_end(&mut self, id: RequestId, now: Instant) {
        if self.phase.is_terminated() || self.long_poll_reply(id, now) || self.batch_reply(id, now)
        {
            return;
        }
        // Abandoned (a re-handshake or disconnect happened meanwhile): what the server
        // delivered is still delivered; its meta replies describe a session given up.
        if let Some(i) = self.abandoned.iter().position(|(a, _)| *a == id) {
            let (_, held) = self.abandoned.swap_remove(i);
            for m in held {
                if !m.is_meta() {
                    self.events.push_back(Event::Message(m));
                }
            }
        }
    }

    /// Request `id` did not yield a whole reply: what it held is not answered.
    fn failure(&mut self, id: RequestId, failure: Failure, now: Instant) {
        if self.phase.is_terminated() {
            return;
        }
        if !self.long_poll_failure(id, failure.clone(), now) {
            self.batch_failure(id, failure, now);
        }
        self.abandoned.retain(|(a, _)| *a != id);
    }
}
