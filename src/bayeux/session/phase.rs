//! Where the session is, as one value: each phase carries exactly what is true in it, so a
//! `clientId` without a handshake, or a connect outstanding while disconnecting, cannot be
//! written down.

use std::time::Instant;

use super::ack::Ack;
use super::types::{RequestId, State, Termination};
use crate::bayeux::message::Message;

/// The session's phase; [`State`] is its public summary.
#[derive(Debug)]
pub(super) enum Phase {
    /// No `clientId`: handshakes go out on the long-poll slot until one succeeds.
    Handshaking {
        long_poll: LongPoll,
        /// Handshakes failed in a row in this phase.
        failures: u32,
        /// A handshake succeeded before: the next success is a re-handshake (a gap), and
        /// the limit on initial attempts no longer applies.
        again: bool,
        /// `ConnectionLost` was emitted and no connect has succeeded since: the next
        /// session's first failed connect does not report it again.
        outage: bool,
    },
    /// Handshaken: `/meta/connect` again and again on the long-poll slot.
    Handshaken {
        long_poll: LongPoll,
        client_id: String,
        /// The acknowledged-messages extension, when the server granted it to this
        /// `clientId`.
        ack: Option<Ack>,
        link: Link,
        /// A connect has succeeded on this `clientId`.
        connected: bool,
        /// The last time the server showed it held the session (the handshake or a
        /// connect answered, or a connect reply begun), for the `maxInterval` expiry rule.
        last_heard: Instant,
    },
    /// `/meta/disconnect` is queued or in flight on the batch slot; the long poll is given
    /// up.
    Disconnecting {
        client_id: String,
        /// Kept from the handshake: whether the server would redeliver a lost reply.
        ack: Option<Ack>,
    },
    /// Over; nothing more is sent, replies are ignored.
    Terminated {
        /// Why, until the `Terminated` event is queued: that happens at the end of the
        /// input that ended the session, so that the event stays last.
        unannounced: Option<Termination>,
    },
}

/// How the long poll of a handshaken session fares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// No connect has succeeded since the handshake; no outage reported.
    Opening,
    /// A connect succeeded: the server holds the next one for `advice.timeout`.
    Up,
    /// A connect failed and `ConnectionLost` was emitted; none has succeeded since.
    Lost,
}

/// The long-poll slot: when its next request goes out, or the one in flight. What it
/// carries (handshake or connect) follows from the phase.
#[derive(Debug)]
pub(super) enum LongPoll {
    /// The next request goes out at `at`; `retry` when that waits after a failure (the
    /// [`State::Backoff`] state).
    Due { at: Instant, retry: bool },
    /// The request in flight.
    Sent(Flight),
}

/// The handshake or connect in flight on the long-poll slot.
#[derive(Debug)]
pub(super) struct Flight {
    pub(super) id: RequestId,
    /// The message id of the handshake or connect it carries.
    pub(super) msg_id: String,
    /// Elements of its reply seen so far (`/meta/connect` answers aside), for the
    /// acknowledged-messages extension.
    pub(super) elements: usize,
    /// What of its reply the session answers once the reply is whole: meta replies and
    /// publish acknowledgements (a reply cut short answers none of them).
    pub(super) held: Vec<Message>,
}

impl Flight {
    pub(super) fn new(id: RequestId, msg_id: String) -> Self {
        Flight {
            id,
            msg_id,
            elements: 0,
            held: Vec::new(),
        }
    }
}

impl Phase {
    /// The public summary.
    pub(super) fn state(&self) -> State {
        match self {
            Phase::Handshaking {
                long_poll: LongPoll::Due { retry: true, .. },
                ..
            }
            | Phase::Handshaken {
                long_poll: LongPoll::Due { retry: true, .. },
                ..
            } => State::Backoff,
            // The first handshake, not sent yet: nothing has failed, nothing succeeded.
            Phase::Handshaking {
                long_poll: LongPoll::Due { .. },
                failures: 0,
                again: false,
                ..
            } => State::Unconnected,
            Phase::Handshaking { .. } => State::Handshaking,
            Phase::Handshaken { link: Link::Up, .. } => State::Connected,
            Phase::Handshaken { .. } => State::Connecting,
            Phase::Disconnecting { .. } => State::Disconnecting,
            Phase::Terminated { .. } => State::Terminated,
        }
    }

    pub(super) fn long_poll(&self) -> Option<&LongPoll> {
        match self {
            Phase::Handshaking { long_poll, .. } | Phase::Handshaken { long_poll, .. } => {
                Some(long_poll)
            }
            _ => None,
        }
    }

    pub(super) fn long_poll_mut(&mut self) -> Option<&mut LongPoll> {
        match self {
            Phase::Handshaking { long_poll, .. } | Phase::Handshaken { long_poll, .. } => {
                Some(long_poll)
            }
            _ => None,
        }
    }

    /// The request in flight on the long-poll slot, if it is `id`.
    pub(super) fn long_poll_flight(&mut self, id: RequestId) -> Option<&mut Flight> {
        match self.long_poll_mut()? {
            LongPoll::Sent(f) if f.id == id => Some(f),
            _ => None,
        }
    }

    pub(super) fn client_id(&self) -> Option<&str> {
        match self {
            Phase::Handshaken { client_id, .. } | Phase::Disconnecting { client_id, .. } => {
                Some(client_id)
            }
            _ => None,
        }
    }

    pub(super) fn ack(&self) -> Option<&Ack> {
        match self {
            Phase::Handshaken { ack, .. } | Phase::Disconnecting { ack, .. } => ack.as_ref(),
            _ => None,
        }
    }

    pub(super) fn is_terminated(&self) -> bool {
        matches!(self, Phase::Terminated { .. })
    }

    /// Ending, or ended: nothing new is to be asked of the server.
    pub(super) fn is_closing(&self) -> bool {
        matches!(self, Phase::Disconnecting { .. } | Phase::Terminated { .. })
    }
}
