//! When the feed reads the server's calls: once after it starts (the catch-up), and after
//! every moment messages may have been lost (a heal). No clock is read here: time is given.
//!
//! - A read waits until the calls channel is subscribed on the current session, so that
//!   nothing published after the server's answer can be missed.
//! - Gaps in a burst give one read; a gap while a read is under way gives one more read
//!   after it (what was lost may be newer than that answer).
//! - A failed read is retried with backoff, for as long as it fails.

use std::time::Instant;

use crate::backoff::{Backoff, BackoffConfig};
use crate::gws::store::ChangeOrigin;

/// See the [module docs](self).
#[derive(Debug)]
pub(super) struct Healing {
    /// A read is owed, and of what kind.
    needed: Option<ChangeOrigin>,
    /// The kind of the read under way.
    in_flight: Option<ChangeOrigin>,
    /// A gap came while a read was under way.
    again: bool,
    subscribed: bool,
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// Failed reads in a row.
    failures: u32,
}

impl Healing {
    /// The schedule of a feed that has not caught up yet.
    pub(super) fn new() -> Self {
        Healing {
            needed: Some(ChangeOrigin::CatchUp),
            in_flight: None,
            again: false,
            subscribed: false,
            retry_at: None,
            backoff: Backoff::new(&BackoffConfig::default()),
            failures: 0,
        }
    }

    /// Messages may have been lost.
    pub(super) fn gap(&mut self) {
        if self.in_flight.is_some() {
            self.again = true;
        }
        // A catch-up still owed covers it.
        self.needed.get_or_insert(ChangeOrigin::Heal);
    }

    /// Whether the calls channel is subscribed on the current session.
    pub(super) fn subscribed(&mut self, yes: bool) {
        self.subscribed = yes;
    }

    /// The read to start now, if one is due.
    pub(super) fn due(&self, now: Instant) -> Option<ChangeOrigin> {
        if self.in_flight.is_some() || !self.subscribed {
            return None;
        }
        match self.retry_at {
            Some(at) if at > now => None,
            _ => self.needed,
        }
    }

    /// The read that was due has started.
    pub(super) fn started(&mut self) {
        self.in_flight = self.needed.take();
        self.retry_at = None;
    }

    /// The read under way answered and the store was brought in line.
    pub(super) fn succeeded(&mut self) {
        self.in_flight = None;
        self.failures = 0;
        self.backoff.reset();
        if std::mem::take(&mut self.again) {
            self.needed.get_or_insert(ChangeOrigin::Heal);
        }
    }

    /// The read under way failed at `now`: it is owed again, after a backoff. Returns how
    /// many reads failed in a row.
    pub(super) fn failed(&mut self, now: Instant) -> u32 {
        let origin = self.in_flight.take().unwrap_or(ChangeOrigin::Heal);
        // A catch-up that failed is still a catch-up.
        self.needed = Some(match self.needed {
            Some(ChangeOrigin::CatchUp) => ChangeOrigin::CatchUp,
            _ => origin,
        });
        self.again = false;
        self.retry_at = Some(now + self.backoff.next_delay());
        self.failures += 1;
        self.failures
    }

    /// Whether a read is owed or under way.
    pub(super) fn owed(&self) -> bool {
        self.needed.is_some() || self.in_flight.is_some() || self.again
    }

    /// When a retry is due, if one is waiting.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        if self.needed.is_some() && self.in_flight.is_none() {
            self.retry_at
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_catch_up_waits_for_the_subscription() {
        let t0 = Instant::now();
        let mut h = Healing::new();
        assert_eq!(h.due(t0), None);
        h.subscribed(true);
        assert_eq!(h.due(t0), Some(ChangeOrigin::CatchUp));
        h.started();
        assert_eq!(h.due(t0), None, "one read at a time");
        h.succeeded();
        assert_eq!(h.due(t0), None);
    }

    #[test]
    fn a_burst_of_gaps_is_one_heal_and_a_gap_during_a_read_is_one_more() {
        let t0 = Instant::now();
        let mut h = Healing::new();
        h.subscribed(true);
        h.started();
        h.succeeded();
        h.gap();
        h.gap();
        assert_eq!(h.due(t0), Some(ChangeOrigin::Heal));
        h.started();
        h.gap();
        h.gap();
        h.succeeded();
        assert_eq!(
            h.due(t0),
            Some(ChangeOrigin::Heal),
            "the gap came during the read"
        );
        h.started();
        h.succeeded();
        assert_eq!(h.due(t0), None);
    }

    #[test]
    fn a_gap_while_unsubscribed_waits_for_the_new_subscription() {
        let t0 = Instant::now();
        let mut h = Healing::new();
        h.subscribed(true);
        h.started();
        h.succeeded();
        h.subscribed(false);
        h.gap();
        assert_eq!(h.due(t0), None);
        h.subscribed(true);
        assert_eq!(h.due(t0), Some(ChangeOrigin::Heal));
    }

    #[test]
    fn failed_reads_are_retried_with_backoff_and_keep_their_kind() {
        let t0 = Instant::now();
        let mut h = Healing::new();
        h.subscribed(true);
        h.started();
        assert_eq!(h.failed(t0), 1);
        assert_eq!(h.due(t0), None, "backing off");
        let at = h.wake_at().unwrap();
        assert!(at > t0 && at <= t0 + Duration::from_secs(2));
        assert_eq!(h.due(at), Some(ChangeOrigin::CatchUp));
        h.started();
        assert_eq!(h.failed(at), 2);
        let again = h.wake_at().unwrap();
        h.started();
        h.succeeded();
        assert_eq!(h.wake_at(), None);
        assert!(again > at);
    }
}
