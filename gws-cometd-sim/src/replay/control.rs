//! The control handle of a running replay: play, pause, step, speed, and how far it got.
//!
//! One [`ReplayControl`] per user with a recording; every session of that user replaying
//! follows it. The state sits in a `watch` channel so a session waiting out a gap wakes the
//! moment it changes (a new speed shortens or lengthens the wait at once).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How fast a recording is played.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// A factor of the recorded pace: 1 is as recorded, 2 twice as fast, 0.5 half as fast.
    /// Always finite and above 0 (see [`Speed::factor`]).
    Factor(f64),
    /// No waiting between notifications.
    Max,
}

impl Speed {
    /// A factor of the recorded pace; `None` unless finite and above 0.
    pub fn factor(x: f64) -> Option<Speed> {
        (x.is_finite() && x > 0.0).then_some(Speed::Factor(x))
    }
}

impl std::str::FromStr for Speed {
    type Err = String;

    /// `max`, or a factor such as `1`, `2.5`, `0.5`.
    fn from_str(s: &str) -> Result<Speed, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        s.parse::<f64>()
            .ok()
            .and_then(Speed::factor)
            .ok_or_else(|| {
                format!("{s:?} is not a speed: say max, or a factor above 0 like 1 or 2.5")
            })
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Factor(x) => write!(f, "{x}x"),
            Speed::Max => f.write_str("max"),
        }
    }
}

/// What the control says now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Knobs {
    pub paused: bool,
    pub speed: Speed,
    /// Steps asked for, over the control's life: a paused session delivers one notification
    /// for each one it has not taken yet.
    pub steps: u64,
}

/// Where a replay stands, for a console or a test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayPosition {
    /// Notifications the latest session got so far (in this pass, with `--loop`).
    pub delivered: usize,
    /// Notifications in the recording.
    pub total: usize,
    /// Sessions that replay it now.
    pub sessions: usize,
    /// Times the latest session started the recording over (`--loop`).
    pub loops: u64,
}

struct Shared {
    knobs: watch::Sender<Knobs>,
    position: watch::Sender<ReplayPosition>,
    /// Counts the changes of either, for a console waiting on the next one.
    revision: watch::Sender<u64>,
}

/// Controls the replay of one user's recording: every session of the user that replays it
/// follows this handle. Cloning shares it.
///
/// ```
/// use gws_cometd_sim::replay::{ReplayControl, Speed};
/// let control = ReplayControl::new(Speed::Max, 12);
/// control.pause();
/// control.step(); // one notification, then paused again
/// control.set_speed(Speed::factor(2.0).unwrap());
/// control.play();
/// assert!(!control.is_paused());
/// assert_eq!(control.position().total, 12);
/// ```
#[derive(Clone)]
pub struct ReplayControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReplayControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayControl")
            .field("knobs", &*self.shared.knobs.borrow())
            .field("position", &*self.shared.position.borrow())
            .finish()
    }
}

impl ReplayControl {
    /// A control playing at `speed` a recording of `total` notifications.
    pub fn new(speed: Speed, total: usize) -> ReplayControl {
        let knobs = Knobs {
            paused: false,
            speed,
            steps: 0,
        };
        ReplayControl {
            shared: Arc::new(Shared {
                knobs: watch::Sender::new(knobs),
                position: watch::Sender::new(ReplayPosition {
                    total,
                    ..ReplayPosition::default()
                }),
                revision: watch::Sender::new(0),
            }),
        }
    }

    /// Plays on (after [`pause`](Self::pause)), at the current speed.
    pub fn play(&self) {
        self.shared.knobs.send_modify(|k| k.paused = false);
        self.bump();
    }

    /// Holds every session's next notification until [`play`](Self::play) or
    /// [`step`](Self::step). Notifications already queued still go out.
    pub fn pause(&self) {
        self.shared.knobs.send_modify(|k| k.paused = true);
        self.bump();
    }

    /// While paused: lets each session deliver its next notification at once, then hold
    /// again. No effect while playing.
    pub fn step(&self) {
        self.shared.knobs.send_modify(|k| k.steps += 1);
        self.bump();
    }

    /// Changes the pace; a gap being waited out is shortened or lengthened at once.
    pub fn set_speed(&self, speed: Speed) {
        self.shared.knobs.send_modify(|k| k.speed = speed);
        self.bump();
    }

    /// Whether paused.
    pub fn is_paused(&self) -> bool {
        self.shared.knobs.borrow().paused
    }

    /// The current pace.
    pub fn speed(&self) -> Speed {
        self.shared.knobs.borrow().speed
    }

    /// Where the replay stands.
    pub fn position(&self) -> ReplayPosition {
        *self.shared.position.borrow()
    }

    /// Waits until the latest session has delivered at least `n` notifications in its
    /// current pass, for at most `timeout`. Returns whether that happened.
    pub async fn wait_for_delivered(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.shared.position.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|p| p.delivered >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn knobs(&self) -> watch::Receiver<Knobs> {
        self.shared.knobs.subscribe()
    }

    pub(crate) fn update_position(&self, f: impl FnOnce(&mut ReplayPosition)) {
        let mut moved = false;
        self.shared.position.send_modify(|p| {
            let before = *p;
            f(p);
            moved = *p != before;
        });
        if moved {
            self.bump();
        }
    }

    /// How many times the knobs or the position changed so far.
    pub(crate) fn revision(&self) -> u64 {
        *self.shared.revision.borrow()
    }

    /// Waits until [`revision`](Self::revision) is no longer `seen`.
    pub(crate) async fn wait_revision_past(&self, seen: u64) {
        let mut rx = self.shared.revision.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = rx.wait_for(|r| *r != seen).await;
    }

    fn bump(&self) {
        self.shared.revision.send_modify(|r| *r = r.wrapping_add(1));
    }
}

/// A session's side of the control: waits out recorded gaps as the knobs say.
pub(crate) struct Pacer {
    knobs: watch::Receiver<Knobs>,
    /// Steps this session has taken (or that were asked for while it played).
    steps_seen: u64,
}

impl Pacer {
    pub fn new(control: &ReplayControl) -> Pacer {
        let knobs = control.knobs();
        let steps_seen = knobs.borrow().steps;
        Pacer { knobs, steps_seen }
    }

    /// Waits until the next notification may go: `gap` of recorded time at the current
    /// speed, or, while paused, until play or a step. Returns at once at speed max.
    pub async fn wait_turn(&mut self, gap: Duration) {
        // Recorded time still to wait; a speed change rescales what is left of it.
        let mut remaining = gap;
        loop {
            let knobs = *self.knobs.borrow_and_update();
            if knobs.paused {
                if knobs.steps > self.steps_seen {
                    self.steps_seen += 1;
                    return;
                }
                if self.knobs.changed().await.is_err() {
                    return;
                }
                continue;
            }
            // A step asked for while playing is not saved up for a later pause.
            self.steps_seen = knobs.steps;
            let Speed::Factor(x) = knobs.speed else {
                return;
            };
            if remaining.is_zero() {
                return;
            }
            let started = Instant::now();
            tokio::select! {
                _ = tokio::time::sleep(remaining.div_f64(x)) => return,
                changed = self.knobs.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    remaining = remaining.saturating_sub(started.elapsed().mul_f64(x));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long `wait_turn(gap)` takes, in paused time, while `meanwhile` acts on the control.
    async fn waited(
        control: &ReplayControl,
        gap: Duration,
        meanwhile: impl std::future::Future<Output = ()>,
    ) -> Duration {
        let mut pacer = Pacer::new(control);
        let start = Instant::now();
        tokio::join!(pacer.wait_turn(gap), meanwhile);
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_is_the_recorded_one_divided_by_the_speed() {
        let control = ReplayControl::new(Speed::factor(4.0).unwrap(), 3);
        let took = waited(&control, Duration::from_secs(2), async {}).await;
        assert_eq!(took, Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_speed_rescales_what_is_left_of_the_gap() {
        let control = ReplayControl::new(Speed::factor(1.0).unwrap(), 3);
        // 1 s of 4 s waited at 1x, the remaining 3 s at 3x: 1 s more.
        let took = waited(&control, Duration::from_secs(4), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            control.set_speed(Speed::factor(3.0).unwrap());
        })
        .await;
        assert_eq!(took, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn paused_waits_for_a_step_or_play_and_max_waits_not_at_all() {
        let control = ReplayControl::new(Speed::Max, 3);
        assert_eq!(
            waited(&control, Duration::from_secs(9), async {}).await,
            Duration::ZERO
        );
        control.pause();
        let took = waited(&control, Duration::ZERO, async {
            tokio::time::sleep(Duration::from_secs(7)).await;
            control.step();
        })
        .await;
        assert_eq!(took, Duration::from_secs(7));
        // One session's pacer: a step asked for while it played is not kept for a later
        // pause.
        let mut pacer = Pacer::new(&control);
        control.play();
        control.step();
        pacer.wait_turn(Duration::ZERO).await;
        control.pause();
        let start = Instant::now();
        tokio::join!(pacer.wait_turn(Duration::ZERO), async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            control.play();
        });
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test]
    async fn the_revision_moves_with_every_knob_and_every_real_move_of_the_position() {
        let control = ReplayControl::new(Speed::Max, 3);
        assert_eq!(control.revision(), 0);
        control.pause();
        control.step();
        control.set_speed(Speed::factor(2.0).unwrap());
        control.play();
        assert_eq!(control.revision(), 4);
        control.update_position(|p| p.delivered = 0);
        assert_eq!(control.revision(), 4, "the same position is no move");
        let waiting = control.wait_revision_past(4);
        control.update_position(|p| p.delivered = 1);
        waiting.await;
        assert_eq!(control.revision(), 5);
    }

    #[test]
    fn speeds_read_as_max_or_a_factor_above_zero() {
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert_eq!("2.5".parse::<Speed>(), Ok(Speed::Factor(2.5)));
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }
}
