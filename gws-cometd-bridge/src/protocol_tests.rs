//! One test per bullet of the [bridge docs](crate#exactly-once-with-active-replicas)'
//! "what is guaranteed" (module `guaranteed`) and "what is not" (module `not_guaranteed`),
//! named after it, and one per numbered step of the [writer docs](crate::writer) (module
//! `steps`). No NATS: the stream's answers are written out.

use super::*;

const SETTLE: Duration = Duration::from_secs(1);

/// A change received at `t0` in a session whose floor is `floor`.
struct Change {
    state: &'static str,
    catching_up: bool,
    new: bool,
    floor: Option<u64>,
    received: Instant,
}

impl Change {
    fn notification(state: &'static str) -> Self {
        Change {
            state,
            catching_up: false,
            new: false,
            floor: None,
            received: Instant::now(),
        }
    }

    fn catch_up(state: &'static str, floor: u64) -> Self {
        Change {
            catching_up: true,
            floor: Some(floor),
            ..Change::notification(state)
        }
    }

    fn facts(&self) -> Facts<'_> {
        Facts {
            state: self.state,
            catching_up: self.catching_up,
            new: self.new,
            floor: self.floor,
            settled_at: self.received + SETTLE,
        }
    }

    /// A moment `after` its arrival.
    fn at(&self, after: Duration, newer_queued: bool) -> Now {
        Now {
            now: self.received + after,
            newer_queued,
            settle: SETTLE,
        }
    }

    fn settled(&self) -> Now {
        self.at(SETTLE, false)
    }
}

fn base(seq: u64, state: &str) -> Base {
    Base {
        seq,
        state: state.to_owned(),
    }
}

fn known(floor: Option<u64>, at: Base) -> Track {
    Track {
        floor,
        prev_state: Some(at.state.clone()),
        base: Some(at),
        kv: None,
    }
}

fn publish(seq: u64, state: &str) -> Step {
    Step::Publish {
        base: base(seq, state),
    }
}

fn accounted(seq: u64, published: bool) -> Step {
    Step::Done(Outcome::Accounted { seq, published })
}

mod guaranteed {
    use super::*;

    /// No change is stored twice: every publish names its base, the same base on every
    /// try (and the same message id), and a refused one that finds its state after the
    /// base is counted, not published again.
    #[test]
    fn no_change_is_stored_twice() {
        let c = Change::notification("B");
        let mut track = known(None, base(5, "A"));
        for _ in 0..2 {
            // A try and its retry (after a timeout, a reconnect) ask for the same publish.
            let mut w = StreamWrite::default();
            assert_eq!(
                w.start(&mut track, &c.facts(), c.settled()),
                publish(5, "A")
            );
        }
        assert_eq!(message_id("a.c1", 5, "B"), message_id("a.c1", 5, "B"));
        assert_eq!(message_id("a.c1", 5, "B"), "a.c1:5:B");
        let mut w = StreamWrite::default();
        w.start(&mut track, &c.facts(), c.settled());
        let at = c.settled();
        let step = w.answer(&mut track, &c.facts(), Answer::Refused, at);
        assert_eq!(step, Step::Walk { after: 5 });
        let found = w.answer(&mut track, &c.facts(), Answer::Walked(Walk::Found(6)), at);
        assert_eq!(found, accounted(6, false));
        // The server knew the id (a try it stored before a timeout): not published twice.
        let mut w = StreamWrite::default();
        w.start(&mut track, &c.facts(), c.settled());
        let stored = Answer::Stored {
            seq: 6,
            duplicate: true,
        };
        assert_eq!(
            w.answer(&mut track, &c.facts(), stored, at),
            accounted(6, false)
        );
        assert_eq!(track.base, Some(base(6, "B")));
    }

    /// Every change a replica received is in the stream once it has written it or found
    /// it there: one the history does not hold goes on top of the subject's last message
    /// once settled, and a held one is published on the next try.
    #[test]
    fn every_change_received_is_in_the_stream() {
        let c = Change::notification("C");
        let mut track = known(None, base(5, "A"));
        let mut w = StreamWrite::default();
        w.start(&mut track, &c.facts(), c.at(Duration::ZERO, false));
        let early = c.at(Duration::ZERO, false);
        w.answer(&mut track, &c.facts(), Answer::Refused, early);
        let walked = Answer::Walked(Walk::NotFound(base(9, "X")));
        let held = w.answer(&mut track, &c.facts(), walked, early);
        assert_eq!(
            held,
            Step::Done(Outcome::Hold {
                until: c.received + SETTLE,
                reason: HoldReason::Settling
            })
        );
        // The next try: over the last message, stored.
        let mut w = StreamWrite::default();
        assert_eq!(
            w.start(&mut track, &c.facts(), c.settled()),
            publish(9, "X")
        );
        let stored = Answer::Stored {
            seq: 10,
            duplicate: false,
        };
        assert_eq!(
            w.answer(&mut track, &c.facts(), stored, c.settled()),
            accounted(10, true)
        );
        // Settled already: published over the last message at once.
        let mut track = known(None, base(5, "A"));
        let mut w = StreamWrite::default();
        w.start(&mut track, &c.facts(), c.settled());
        w.answer(&mut track, &c.facts(), Answer::Refused, c.settled());
        let walked = Answer::Walked(Walk::NotFound(base(9, "X")));
        let step = w.answer(&mut track, &c.facts(), walked, c.settled());
        assert_eq!(step, publish(9, "X"));
    }

    /// The KV never goes back: an entry is replaced only by a newer stream sequence, and
    /// only at the revision it was read at.
    #[test]
    fn the_kv_never_goes_back() {
        assert_eq!(kv_step(None, 5), KvStep::Read);
        let newer = KvSeen {
            revision: 3,
            seq: 7,
        };
        assert_eq!(kv_step(Some(newer), 5), KvStep::UpToDate(newer));
        let same = KvSeen {
            revision: 3,
            seq: 5,
        };
        assert_eq!(kv_step(Some(same), 5), KvStep::UpToDate(same));
        let older = KvSeen {
            revision: 3,
            seq: 4,
        };
        assert_eq!(kv_step(Some(older), 5), KvStep::Write { revision: 3 });
    }
}

mod not_guaranteed {
    use super::*;

    /// A change only the killed replica received: the survivor's catch-up, which has no
    /// base, is held against the stream and published as the net state over the last
    /// message, computed from the KV's call there.
    #[test]
    fn a_change_only_a_killed_replica_received() {
        let c = Change::catch_up("C", 10);
        let mut track = Track::default();
        let mut w = StreamWrite::default();
        let early = c.at(Duration::ZERO, false);
        assert_eq!(
            w.start(&mut track, &c.facts(), early),
            Step::Walk { after: 10 }
        );
        let walked = Answer::Walked(Walk::NotFound(base(4, "A")));
        let held = w.answer(&mut track, &c.facts(), walked, early);
        assert!(matches!(held, Step::Done(Outcome::Hold { .. })), "{held:?}");
        let mut w = StreamWrite::default();
        assert_eq!(
            w.start(&mut track, &c.facts(), c.settled()),
            publish(4, "A")
        );
        let prev = track.prev_state.as_deref();
        assert_eq!(basis(&base(4, "A"), prev, false, false), Basis::FromKvAt(4));
    }

    /// Replicas whose views differ keep the history of whichever wrote first: a step only
    /// the other saw is dropped as superseded when a newer change waits, and a catch-up more
    /// than `settle` behind is published over the peer's steps.
    #[test]
    fn replicas_whose_views_differ() {
        let c = Change::notification("B");
        let mut track = known(None, base(5, "A"));
        let mut w = StreamWrite::default();
        let busy = c.settled();
        w.start(&mut track, &c.facts(), busy);
        w.answer(&mut track, &c.facts(), Answer::Refused, busy);
        let walked = Answer::Walked(Walk::NotFound(base(8, "Y")));
        let newer = c.at(SETTLE, true);
        let step = w.answer(&mut track, &c.facts(), walked, newer);
        assert_eq!(step, Step::Done(Outcome::Superseded));
        assert_eq!(
            track.prev_state.as_deref(),
            Some("B"),
            "the next is relative to it"
        );
        assert_eq!(track.base, Some(base(8, "Y")));

        let late = Change::catch_up("Z", 10);
        let mut track = Track::default();
        let mut w = StreamWrite::default();
        w.start(&mut track, &late.facts(), late.settled());
        let walked = Answer::Walked(Walk::NotFound(base(12, "Y")));
        let step = w.answer(&mut track, &late.facts(), walked, late.settled());
        assert_eq!(step, publish(12, "Y"));
    }

    /// A state GWS never notified is only as good as the feed's heal: a heal change is
    /// held until settled, dropped when notifications of the call wait behind it, and
    /// nothing when the call is as it says.
    #[test]
    fn a_state_gws_never_notified() {
        let heal = Change {
            floor: None,
            ..Change::catch_up("H", 0)
        };
        let mut track = known(None, base(5, "A"));
        let early = heal.at(Duration::ZERO, false);
        let step = StreamWrite::default().start(&mut track, &heal.facts(), early);
        assert!(matches!(step, Step::Done(Outcome::Hold { .. })), "{step:?}");
        let newer = heal.at(Duration::ZERO, true);
        let step = StreamWrite::default().start(&mut track, &heal.facts(), newer);
        assert_eq!(step, Step::Done(Outcome::Superseded));
        let step = StreamWrite::default().start(&mut track, &heal.facts(), heal.settled());
        assert_eq!(step, publish(5, "A"));
        let same = Change {
            floor: None,
            ..Change::catch_up("A", 0)
        };
        let mut track = known(None, base(5, "A"));
        let step = StreamWrite::default().start(&mut track, &same.facts(), same.settled());
        assert_eq!(step, accounted(5, false));
    }

    /// Changes beyond an agent's buffer bound are merged per call and counted, and what is
    /// still buffered at the end of a drain is all counted.
    #[test]
    fn changes_beyond_the_buffer_bound() {
        use crate::queue::AgentQueue;
        use crate::writer::ChangeItem;
        use gws_cometd::gws::store::{change_between, ChangeOrigin};
        let item = |n: u32| {
            let text = format!(r#"{{"id":"c1","state":"Established","userData":{{"N":{n}}}}}"#);
            let change = change_between("c1", None, Some(&text), ChangeOrigin::Notification, None);
            ChangeItem::new(change, Some(text.into()))
        };
        let mut q = AgentQueue::new(3);
        let merged: usize = (0..10).map(|n| q.push(item(n))).sum();
        assert_eq!(merged, 8, "every merge counted");
        assert_eq!(q.len(), 2, "what a drain that runs out counts as unwritten");
    }
}

mod steps {
    use super::*;

    /// 1. Without a base, the subject's last message decides: the change's state there →
    ///    already written.
    #[test]
    fn without_a_base_the_last_message_decides() {
        let c = Change::notification("A");
        let mut track = Track::default();
        let mut w = StreamWrite::default();
        assert_eq!(w.start(&mut track, &c.facts(), c.settled()), Step::ReadLast);
        let last = Answer::Last(base(3, "A"));
        let step = w.answer(&mut track, &c.facts(), last, c.settled());
        assert_eq!(step, accounted(3, false));
        // A call's first notification has the empty subject as its base.
        let first = Change {
            new: true,
            ..Change::notification("A")
        };
        let step =
            StreamWrite::default().start(&mut Track::default(), &first.facts(), first.settled());
        assert_eq!(step, Step::Publish { base: Base::EMPTY });
    }

    /// 1. (a session) A call met first in a session is looked for after the session's
    ///    floor; a catch-up found there leaves the position at the floor.
    #[test]
    fn a_catch_up_found_after_the_floor_leaves_the_position_at_the_floor() {
        let c = Change::catch_up("B", 10);
        let mut track = Track::default();
        let mut w = StreamWrite::default();
        assert_eq!(
            w.start(&mut track, &c.facts(), c.settled()),
            Step::Walk { after: 10 }
        );
        let found = Answer::Walked(Walk::Found(12));
        let step = w.answer(&mut track, &c.facts(), found, c.settled());
        assert_eq!(step, accounted(12, false));
        assert_eq!(track.base, Some(Base::floor(10)));
        assert_eq!(track.prev_state.as_deref(), Some("B"));
    }

    /// A new feed session forgets what this replica knew of the call.
    #[test]
    fn a_new_session_starts_from_what_the_stream_holds() {
        let c = Change::catch_up("B", 20);
        let mut track = known(Some(10), base(12, "B"));
        let step = StreamWrite::default().start(&mut track, &c.facts(), c.settled());
        assert_eq!(step, Step::Walk { after: 20 });
        assert_eq!((track.floor, track.base.clone()), (Some(20), None));
    }

    /// 2. Catch-up and heal changes wait until they are `settle` old.
    #[test]
    fn catch_up_and_heal_changes_wait_until_settled() {
        let c = Change::catch_up("B", 10);
        let mut track = Track::default();
        let mut w = StreamWrite::default();
        let early = c.at(Duration::from_millis(10), false);
        w.start(&mut track, &c.facts(), early);
        let last = Answer::Walked(Walk::NotFound(base(7, "A")));
        let step = w.answer(&mut track, &c.facts(), last, early);
        let until = c.received + SETTLE;
        let reason = HoldReason::Settling;
        assert_eq!(step, Step::Done(Outcome::Hold { until, reason }));
    }

    /// 3. A publish carries its base as the expected last subject sequence, and the id
    ///    `<key>:<base>:<state>`.
    #[test]
    fn a_publish_names_its_base() {
        let c = Change::notification("B");
        let mut track = known(None, base(41, "A"));
        let step = StreamWrite::default().start(&mut track, &c.facts(), c.settled());
        assert_eq!(step, publish(41, "A"));
        assert_eq!(message_id("k", 41, "B"), "k:41:B");
        let prev = track.prev_state.as_deref();
        assert_eq!(basis(&base(41, "A"), prev, false, false), Basis::AsFed);
        assert_eq!(basis(&Base::EMPTY, None, false, false), Basis::FromNothing);
        assert_eq!(basis(&Base::EMPTY, None, true, false), Basis::AsFed);
    }

    /// 4. A refused publish walks the subject after its base: its state there → written by
    ///    a peer; not there → superseded when a newer change waits, else held until
    ///    settled, then published on top of the subject's last message.
    #[test]
    fn a_refused_publish_walks_the_history_after_its_base() {
        let c = Change::notification("B");
        let refused = |track: &mut Track, at: Now| {
            let mut w = StreamWrite::default();
            assert_eq!(w.start(track, &c.facts(), at), publish(5, "A"));
            let step = w.answer(track, &c.facts(), Answer::Refused, at);
            assert_eq!(step, Step::Walk { after: 5 });
            w
        };
        let last = || Answer::Walked(Walk::NotFound(base(7, "X")));
        let at = c.settled();
        let mut track = known(None, base(5, "A"));
        let found = Answer::Walked(Walk::Found(6));
        let step = refused(&mut track, at).answer(&mut track, &c.facts(), found, at);
        assert_eq!(step, accounted(6, false));
        let mut track = known(None, base(5, "A"));
        let newer = c.at(SETTLE, true);
        let step = refused(&mut track, newer).answer(&mut track, &c.facts(), last(), newer);
        assert_eq!(step, Step::Done(Outcome::Superseded));
        let mut track = known(None, base(5, "A"));
        let early = c.at(Duration::ZERO, false);
        let step = refused(&mut track, early).answer(&mut track, &c.facts(), last(), early);
        assert!(matches!(step, Step::Done(Outcome::Hold { .. })), "{step:?}");
        let mut track = known(None, base(5, "A"));
        let step = refused(&mut track, at).answer(&mut track, &c.facts(), last(), at);
        assert_eq!(step, publish(7, "X"));
    }

    /// 5. The KV is written only forward: read, then replaced at the revision read only by
    ///    a newer stream sequence; an entry already as new is left alone.
    #[test]
    fn the_kv_is_written_only_forward() {
        assert_eq!(kv_step(None, 9), KvStep::Read);
        let read = KvSeen {
            revision: 20,
            seq: 8,
        };
        assert_eq!(kv_step(Some(read), 9), KvStep::Write { revision: 20 });
        let written = KvSeen {
            revision: 21,
            seq: 9,
        };
        assert_eq!(kv_step(Some(written), 9), KvStep::UpToDate(written));
    }

    /// 4. Refused again and again (peers keep writing the call): the change waits for the
    ///    history to settle instead of racing on.
    #[test]
    fn a_change_refused_again_and_again_waits() {
        let c = Change::notification("B");
        let mut track = known(None, base(1, "A"));
        let mut w = StreamWrite::default();
        let at = c.settled();
        let mut step = w.start(&mut track, &c.facts(), at);
        for n in 0..=MAX_REFUSALS {
            assert!(matches!(step, Step::Publish { .. }), "{step:?}");
            w.answer(&mut track, &c.facts(), Answer::Refused, at);
            let walked = Answer::Walked(Walk::NotFound(base(u64::from(n) + 2, "X")));
            step = w.answer(&mut track, &c.facts(), walked, at);
        }
        assert_eq!(
            step,
            Step::Done(Outcome::Hold {
                until: at.now + SETTLE,
                reason: HoldReason::Contended
            })
        );
    }
}
