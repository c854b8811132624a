//! The per-call write protocol as a pure decision: given what this replica knows of a call
//! ([`Track`]), the change to write ([`Facts`]) and what the stream last answered
//! ([`Answer`]), what to do next ([`Step`]). No NATS, no clock reads, no awaits: the
//! [`writer`](super::writer) does the reads and publishes a [`Step`] asks for and feeds the
//! answers back, so each guarantee of the [bridge docs](super#exactly-once-with-active-replicas)
//! is a unit test below, named after its bullet.

use std::time::Duration;

use tokio::time::Instant;

/// The last stream message of a call this replica has accounted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Base {
    /// Its `GWS_CALLS` sequence (0: the subject is empty).
    pub seq: u64,
    /// Its `Gws-State` fingerprint (empty: unknown).
    pub state: String,
}

impl Base {
    pub const EMPTY: Base = Base {
        seq: 0,
        state: String::new(),
    };

    /// The position of a feed session's floor: messages after it are looked at again.
    fn floor(seq: u64) -> Base {
        Base {
            seq,
            state: String::new(),
        }
    }
}

/// The KV entry of a call as last seen: its revision and the stream sequence it reflects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KvSeen {
    pub revision: u64,
    pub seq: u64,
}

/// What this replica knows of one call.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Track {
    /// The floor of the feed session the track belongs to.
    pub floor: Option<u64>,
    pub base: Option<Base>,
    /// The state the feed's next change of this call is relative to.
    pub prev_state: Option<String>,
    pub kv: Option<KvSeen>,
}

impl Track {
    /// The message at `seq` holds the change's `state`: it is the base from now on.
    fn account(&mut self, seq: u64, state: &str, published: bool) -> Outcome {
        self.base = Some(Base {
            seq,
            state: state.to_owned(),
        });
        self.prev_state = Some(state.to_owned());
        Outcome::Accounted { seq, published }
    }

    /// Dropped: the feed's next change of the call is relative to this one's state.
    fn supersede(&mut self, state: &str) -> Outcome {
        self.prev_state = Some(state.to_owned());
        Outcome::Superseded
    }
}

/// The change to write, as the protocol sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Facts<'a> {
    /// Its state fingerprint.
    pub state: &'a str,
    /// A catch-up or heal change (not a notification).
    pub catching_up: bool,
    /// The feed met the call for the first time.
    pub new: bool,
    /// The floor of the feed session it comes from.
    pub floor: Option<u64>,
    /// When it is `settle` old.
    pub settled_at: Instant,
}

/// The moment of a decision.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    pub now: Instant,
    /// A newer change of the call waits behind this one.
    pub newer_queued: bool,
    pub settle: Duration,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read the subject's last message; answer [`Answer::Last`].
    ReadLast,
    /// Read the subject's messages after `after`, looking for the change's state; answer
    /// [`Answer::Walked`].
    Walk { after: u64 },
    /// Publish with `Nats-Expected-Last-Subject-Sequence: base.seq` and [`message_id`];
    /// answer [`Answer::Stored`] or [`Answer::Refused`].
    Publish { base: Base },
    /// The stream part is decided.
    Done(Outcome),
}

/// How the stream part of a write ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The message at `seq` holds the change: published by this replica, or found there.
    Accounted { seq: u64, published: bool },
    /// The history moved past it and a newer change of the call waits here.
    Superseded,
    /// Not yet: ask again at `until`.
    Hold { until: Instant, reason: HoldReason },
}

/// Why a change waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HoldReason {
    /// A catch-up or heal change (or one the history does not hold yet) is not `settle`
    /// old: a live peer may still publish the steps it covers.
    Settling,
    /// Refused more than [`MAX_REFUSALS`] times in a row: peers keep writing the call.
    Contended,
}

/// What the stream answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The subject's last message ([`Base::EMPTY`] when none).
    Last(Base),
    /// The walk after a sequence.
    Walked(Walk),
    /// Stored at `seq`; `duplicate`: the server knew the message id.
    Stored { seq: u64, duplicate: bool },
    /// `WrongLastSequence`: the subject's last message is not the base.
    Refused,
}

/// What a walk after a sequence found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// A message with the change's state, at this sequence.
    Found(u64),
    /// None; the subject's last message.
    NotFound(Base),
}

/// Refusals of one write before it waits for the history to settle.
pub(crate) const MAX_REFUSALS: u32 = 3;

/// The deterministic `Nats-Msg-Id` of a change published over `base_seq`.
pub(crate) fn message_id(key: &str, base_seq: u64, state: &str) -> String {
    format!("{key}:{base_seq}:{state}")
}

/// Where the message a step publishes is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Basis {
    /// The feed's change: it is relative to the state at the base.
    AsFed,
    /// From nothing: the subject is empty and the feed's change is not a call's first.
    FromNothing,
    /// From the KV's call at this sequence (the feed's change when the KV has moved on).
    FromKvAt(u64),
}

/// The basis of the message published over `base`.
pub(crate) fn basis(base: &Base, prev_state: Option<&str>, new: bool, removed: bool) -> Basis {
    if base.seq == 0 {
        return if new || removed {
            Basis::AsFed
        } else {
            Basis::FromNothing
        };
    }
    if prev_state == Some(base.state.as_str()) {
        Basis::AsFed
    } else {
        Basis::FromKvAt(base.seq)
    }
}

/// The KV write of the message at `seq`, given the entry as last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KvStep {
    /// Not seen (or seen stale): read it.
    Read,
    /// It already reflects `seq` or a later message: leave it.
    UpToDate(KvSeen),
    /// Replace it only if it still is at `revision` (CAS).
    Write { revision: u64 },
}

/// The KV never goes back: an entry is replaced only by a newer sequence, only with the
/// revision it replaces.
pub(crate) fn kv_step(seen: Option<KvSeen>, seq: u64) -> KvStep {
    match seen {
        None => KvStep::Read,
        Some(s) if s.seq >= seq => KvStep::UpToDate(s),
        Some(s) => KvStep::Write {
            revision: s.revision,
        },
    }
}

/// Where one write's stream part is.
#[derive(Clone, Debug, Default)]
enum Phase {
    #[default]
    Start,
    ReadingLast,
    /// Looking for the change after the session's floor.
    WalkingFromFloor(u64),
    Publishing(Base),
    /// Refused: looking for the change after the base it was published over.
    WalkingAfterRefusal,
}

/// One change's stream write, one [`Step`] at a time; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct StreamWrite {
    phase: Phase,
    refusals: u32,
}

impl StreamWrite {
    /// The first step.
    pub(crate) fn start(&mut self, track: &mut Track, c: &Facts, at: Now) -> Step {
        if track.floor != c.floor {
            // A new feed session: what this replica knew of the call may be stale.
            *track = Track {
                floor: c.floor,
                ..Track::default()
            };
        }
        match (track.base.clone(), c.floor) {
            (Some(base), _) if !c.catching_up || base.state != c.state => {
                self.over(track, c, base, at)
            }
            // A catch-up or heal that finds the call as it says: nothing new.
            (Some(base), _) => Step::Done(track.account(base.seq, c.state, false)),
            (None, _) if c.new && !c.catching_up => self.over(track, c, Base::EMPTY, at),
            (None, Some(floor)) => {
                self.phase = Phase::WalkingFromFloor(floor);
                Step::Walk { after: floor }
            }
            (None, None) => {
                self.phase = Phase::ReadingLast;
                Step::ReadLast
            }
        }
    }

    /// The step after the stream's `answer` to the last one.
    pub(crate) fn answer(&mut self, track: &mut Track, c: &Facts, answer: Answer, at: Now) -> Step {
        match (std::mem::take(&mut self.phase), answer) {
            (Phase::ReadingLast, Answer::Last(last)) => self.on_last(track, c, last, at),
            (Phase::WalkingFromFloor(floor), Answer::Walked(walk)) => {
                self.on_floor_walk(track, c, floor, walk, at)
            }
            (Phase::Publishing(_), Answer::Stored { seq, duplicate }) => {
                Step::Done(track.account(seq, c.state, !duplicate))
            }
            (Phase::Publishing(base), Answer::Refused) => {
                self.refusals += 1;
                self.phase = Phase::WalkingAfterRefusal;
                Step::Walk { after: base.seq }
            }
            (Phase::WalkingAfterRefusal, Answer::Walked(walk)) => {
                self.on_refusal_walk(track, c, walk, at)
            }
            (phase, answer) => {
                // An executor bug: start over rather than guess.
                debug_assert!(false, "answer {answer:?} in phase {phase:?}");
                self.start(track, c, at)
            }
        }
    }

    /// Without a base, the subject's last message says whether the change is there.
    fn on_last(&mut self, track: &mut Track, c: &Facts, last: Base, at: Now) -> Step {
        if last.state == c.state {
            return Step::Done(track.account(last.seq, c.state, false));
        }
        track.base = Some(last.clone());
        self.over(track, c, last, at)
    }

    fn on_floor_walk(
        &mut self,
        track: &mut Track,
        c: &Facts,
        floor: u64,
        walk: Walk,
        at: Now,
    ) -> Step {
        match walk {
            Walk::Found(seq) => {
                let done = track.account(seq, c.state, false);
                if c.catching_up {
                    // The session's notifications may still repeat steps before it.
                    track.base = Some(Base::floor(floor));
                }
                Step::Done(done)
            }
            // Nothing since the session started: the last message is the base.
            Walk::NotFound(last) if last.seq <= floor => self.on_last(track, c, last, at),
            Walk::NotFound(last) => {
                // Peers wrote since the session started, not this state (yet).
                track.base = Some(Base::floor(floor));
                match wait_or_drop(track, c, at) {
                    Some(done) => done,
                    None => self.over(track, c, last, at),
                }
            }
        }
    }

    fn on_refusal_walk(&mut self, track: &mut Track, c: &Facts, walk: Walk, at: Now) -> Step {
        let last = match walk {
            Walk::Found(seq) => return Step::Done(track.account(seq, c.state, false)),
            Walk::NotFound(last) => last,
        };
        track.base = Some(last.clone());
        if at.newer_queued {
            return Step::Done(track.supersede(c.state));
        }
        if at.now < c.settled_at || self.refusals > MAX_REFUSALS {
            let reason = if at.now < c.settled_at {
                HoldReason::Settling
            } else {
                HoldReason::Contended
            };
            let until = c.settled_at.max(at.now + at.settle);
            return Step::Done(Outcome::Hold { until, reason });
        }
        self.publish(last)
    }

    /// Publishes over `base`, once a catch-up or heal change may be.
    fn over(&mut self, track: &mut Track, c: &Facts, base: Base, at: Now) -> Step {
        if c.catching_up {
            // Notifications of the call waiting behind it carry its state step by step (a
            // session's first notifications can be older than its catch-up).
            if let Some(done) = wait_or_drop(track, c, at) {
                return done;
            }
        }
        self.publish(base)
    }

    fn publish(&mut self, base: Base) -> Step {
        self.phase = Phase::Publishing(base.clone());
        Step::Publish { base }
    }
}

/// A change the history does not hold (yet): dropped when a newer one of the call waits,
/// held until `settle` old otherwise; `None` when it is to be published now.
fn wait_or_drop(track: &mut Track, c: &Facts, at: Now) -> Option<Step> {
    if at.newer_queued {
        return Some(Step::Done(track.supersede(c.state)));
    }
    (at.now < c.settled_at).then_some(Step::Done(Outcome::Hold {
        until: c.settled_at,
        reason: HoldReason::Settling,
    }))
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
