//! How stale the store may be: from the first moment messages may have been withheld or lost
//! until the store is known complete again. No clock is read here: time is given.
//!
//! - **Withheld**: a connect failed or timed out, or a handshake failed. With the
//!   acknowledged-messages extension the server keeps what it could not deliver and sends it
//!   again on the next connect; without it what it sent is lost (the session reports a gap).
//!   Either way the store may lack something until a connect succeeds again.
//! - **Lost**: a gap. The store may lack something until a read of the server's calls has
//!   been applied.
//! - **Overdue**: withheld for longer than the bound. Redelivery is not coming (a middlebox
//!   that breaks every reply carrying a notification, say, while the server replays the same
//!   growing batch after every cut). That is a gap: the feed reads the server's calls, and
//!   reads them again each time the bound passes while it lasts, so the store trails the
//!   server by at most about the bound plus one read as long as the REST API answers.
//!
//! An episode ends when nothing is withheld and no read is owed: the store is then known
//! complete, and [`end`](Staleness::end) says for how long it may have been stale.

use std::time::{Duration, Instant};

/// See the [module docs](self).
#[derive(Debug)]
pub(super) struct Staleness {
    bound: Duration,
    /// The episode under way: since when, and the first thing that failed.
    episode: Option<(Instant, String)>,
    /// Since when messages may be withheld.
    withheld_since: Option<Instant>,
    /// When the last overdue read was asked for.
    last_overdue: Option<Instant>,
}

impl Staleness {
    /// Known complete; `bound` is how long withheld messages may take to come.
    pub(super) fn new(bound: Duration) -> Self {
        Staleness {
            bound,
            episode: None,
            withheld_since: None,
            last_overdue: None,
        }
    }

    /// The bound this was made with.
    pub(super) fn bound(&self) -> Duration {
        self.bound
    }

    /// What failed first in the episode under way.
    pub(super) fn cause(&self) -> Option<&str> {
        self.episode.as_ref().map(|(_, cause)| cause.as_str())
    }

    /// How long messages have been withheld at `now`, if they are.
    pub(super) fn withheld_for(&self, now: Instant) -> Option<Duration> {
        self.withheld_since
            .map(|since| now.saturating_duration_since(since))
    }

    /// Since when the store may be stale, if it may.
    pub(super) fn since(&self) -> Option<Instant> {
        self.episode.as_ref().map(|(since, _)| *since)
    }

    /// Messages may be withheld from `now` (a failed connect or handshake). Returns true
    /// when this starts an episode.
    pub(super) fn withheld(&mut self, now: Instant, cause: impl FnOnce() -> String) -> bool {
        self.withheld_since.get_or_insert(now);
        self.start(now, cause)
    }

    /// Messages may have been lost at `now` (a gap). Returns true when this starts an
    /// episode.
    pub(super) fn lost(&mut self, now: Instant, cause: impl FnOnce() -> String) -> bool {
        self.start(now, cause)
    }

    fn start(&mut self, now: Instant, cause: impl FnOnce() -> String) -> bool {
        if self.episode.is_some() {
            return false;
        }
        self.episode = Some((now, cause()));
        true
    }

    /// A connect succeeded: whatever was withheld has come (or, without the extension, was
    /// reported lost).
    pub(super) fn delivered(&mut self) {
        self.withheld_since = None;
        self.last_overdue = None;
    }

    /// Whether withheld messages are overdue at `now`: the bound has passed since they were
    /// first withheld, or since the last overdue read was asked for.
    pub(super) fn overdue(&self, now: Instant) -> bool {
        self.overdue_at().is_some_and(|at| now >= at)
    }

    /// An overdue read was asked for at `now`; the next is due a bound later.
    pub(super) fn overdue_handled(&mut self, now: Instant) {
        self.last_overdue = Some(now);
    }

    /// When withheld messages become overdue, if they are withheld.
    pub(super) fn overdue_at(&self) -> Option<Instant> {
        let withheld = self.withheld_since?;
        Some(self.last_overdue.unwrap_or(withheld) + self.bound)
    }

    /// Ends the episode if nothing is withheld and no read is `owed`: returns how long the
    /// store may have been stale and what failed first.
    pub(super) fn end(&mut self, now: Instant, owed: bool) -> Option<(Duration, String)> {
        if owed || self.withheld_since.is_some() {
            return None;
        }
        let (since, cause) = self.episode.take()?;
        Some((now.saturating_duration_since(since), cause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(2);

    fn cause(text: &str) -> impl FnOnce() -> String + '_ {
        move || text.to_owned()
    }

    #[test]
    fn a_redelivery_that_comes_ends_the_episode_without_a_read() {
        let t0 = Instant::now();
        let mut s = Staleness::new(BOUND);
        assert!(s.withheld(t0, cause("connect reply cut")));
        assert!(!s.withheld(t0 + BOUND / 4, cause("again")), "one episode");
        assert_eq!(s.since(), Some(t0));
        assert!(!s.overdue(t0 + BOUND / 2));
        s.delivered();
        let (stale_for, first) = s.end(t0 + BOUND / 2, false).unwrap();
        assert_eq!(stale_for, BOUND / 2);
        assert_eq!(first, "connect reply cut");
        assert_eq!(s.since(), None);
    }

    #[test]
    fn withheld_past_the_bound_is_overdue_again_each_bound_while_it_lasts() {
        let t0 = Instant::now();
        let mut s = Staleness::new(BOUND);
        s.withheld(t0, cause("cut"));
        assert_eq!(s.overdue_at(), Some(t0 + BOUND));
        assert!(!s.overdue(t0 + BOUND - Duration::from_millis(1)));
        assert!(s.overdue(t0 + BOUND));
        s.overdue_handled(t0 + BOUND);
        assert!(!s.overdue(t0 + BOUND + BOUND / 2));
        assert!(s.overdue(t0 + 2 * BOUND));
        // A read applied meanwhile does not end the episode: messages are still withheld.
        assert_eq!(s.end(t0 + 2 * BOUND, false), None);
        s.delivered();
        assert_eq!(s.overdue_at(), None);
        assert!(s.end(t0 + 3 * BOUND, false).is_some());
    }

    #[test]
    fn a_gap_ends_only_once_its_read_is_applied() {
        let t0 = Instant::now();
        let mut s = Staleness::new(BOUND);
        assert!(s.lost(t0, cause("re-handshake")));
        assert_eq!(
            s.overdue_at(),
            None,
            "nothing withheld: the heal is owed already"
        );
        assert_eq!(s.end(t0, true), None, "the read is owed");
        assert_eq!(
            s.end(t0 + BOUND, false),
            Some((BOUND, "re-handshake".to_owned()))
        );
    }

    #[test]
    fn known_complete_has_nothing_to_end() {
        let mut s = Staleness::new(BOUND);
        s.delivered();
        assert_eq!(s.end(Instant::now(), false), None);
        assert_eq!(s.since(), None);
    }
}
