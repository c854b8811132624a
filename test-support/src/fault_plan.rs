//! The fault schedule shared by the fault suite (`tests/it/faults_bayeux.rs`,
//! `tests/it/faults_gws/`): which faults the proxy of [`crate::fault_proxy`] injects, for how
//! long, and how the figures of a run are printed.
//!
//!
//! Each phase switches one fault on at its start, keeps it on for its length (resets repeat
//! every 700 ms; a cut phase ends as soon as its three cuts are done) and ends with
//! [`FaultProxy::clear`]: that moment is "the fault's end" from which recovery is measured. Figures are printed as lines starting
//! with `FAULT-SUITE` so that `cargo test --test it faults_bayeux -- --nocapture | grep
//! FAULT-SUITE` gives the table.

use std::time::Duration;

use crate::fault_proxy::{Cut, FaultProxy, Stats};

/// The faults a phase injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every live connection reset (RST), three times 700 ms apart.
    Reset,
    /// The next [`CUTS`] replies reset after 1 200 body bytes.
    CutReset,
    /// The next [`CUTS`] replies closed (FIN) after 700 body bytes.
    CutClose,
    /// No byte from the server for 4 s: longer than a connect's deadline.
    Stall,
    /// Every connection reset at once for 3 s (an outage shorter than `maxInterval`).
    Refuse,
    /// 250 ms more on every chunk, both ways, for 2 s.
    Latency,
    /// 10 KB/s from the server for 2.5 s: less than the published rate.
    Bandwidth,
}

/// One phase of the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// What it injects.
    pub fault: Fault,
    /// How long the fault stays on (for a cut phase: at most).
    pub length: Duration,
}

/// Replies a cut phase cuts.
pub const CUTS: u64 = 3;

/// The schedule: every fault once, in this order (about 20 s of faults).
pub fn schedule() -> Vec<Phase> {
    let phase = |fault, ms| Phase {
        fault,
        length: Duration::from_millis(ms),
    };
    vec![
        phase(Fault::Reset, 2_000),
        phase(Fault::CutReset, 6_000),
        phase(Fault::CutClose, 6_000),
        phase(Fault::Stall, 4_000),
        phase(Fault::Refuse, 3_000),
        phase(Fault::Latency, 2_000),
        phase(Fault::Bandwidth, 2_500),
    ]
}

/// How often a [`Fault::Reset`] phase resets the live connections.
pub const RESET_EVERY: Duration = Duration::from_millis(700);

impl Fault {
    /// The name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::CutReset => "cut-reset",
            Fault::CutClose => "cut-close",
            Fault::Stall => "stall-4s",
            Fault::Refuse => "refuse-3s",
            Fault::Latency => "latency-250ms",
            Fault::Bandwidth => "bandwidth-10KB/s",
        }
    }

    /// Switches the fault on.
    pub fn start(self, proxy: &FaultProxy) {
        match self {
            Fault::Reset => proxy.reset_all(),
            Fault::CutReset => proxy.cut_replies(CUTS as usize, 1_200, Cut::Reset),
            Fault::CutClose => proxy.cut_replies(CUTS as usize, 700, Cut::Close),
            Fault::Stall => proxy.stall(true),
            Fault::Refuse => proxy.refuse(true),
            Fault::Latency => proxy.latency(Duration::from_millis(250)),
            Fault::Bandwidth => proxy.bandwidth(Some(10_000)),
        }
    }

    /// Whether the proxy's counters show that the fault did something (`before` is their
    /// value when the phase started). Stalls, latency and bandwidth leave no count: always
    /// true; the caller checks their effect another way.
    pub fn happened(self, before: &Stats, after: &Stats) -> bool {
        match self {
            Fault::Reset => after.resets > before.resets,
            Fault::CutReset | Fault::CutClose => after.cuts > before.cuts,
            Fault::Refuse => after.refused > before.refused,
            Fault::Stall | Fault::Latency | Fault::Bandwidth => true,
        }
    }
}

/// Runs `phase` on `proxy`: switches the fault on, repeats resets, and clears every fault
/// when its length is over.
pub async fn run_phase(proxy: &FaultProxy, phase: Phase) {
    use tokio::time::{sleep, sleep_until, Instant};
    let end = Instant::now() + phase.length;
    let cuts = proxy.stats().cuts;
    phase.fault.start(proxy);
    match phase.fault {
        Fault::Reset => {
            while Instant::now() + RESET_EVERY < end {
                sleep(RESET_EVERY).await;
                proxy.reset_all();
            }
            sleep_until(end).await;
        }
        // Over once the last cut is done: recovery is measured from there.
        Fault::CutReset | Fault::CutClose => {
            while proxy.stats().cuts < cuts + CUTS && Instant::now() < end {
                sleep(Duration::from_millis(10)).await;
            }
        }
        _ => sleep_until(end).await,
    }
    if std::env::var_os("FAULT_SUITE_TRACE").is_some() {
        println!(
            "TRACE {} ended: {:?} (cuts at start {cuts})",
            phase.fault.name(),
            proxy.stats()
        );
    }
    proxy.clear();
}

/// One row of the table: what a fault cost on one server.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Which server and mode, e.g. `node+ack`.
    pub server: String,
    /// [`Fault::name`].
    pub fault: String,
    /// Messages published during the phase and never received (`None` for a feed: it
    /// hands out call changes, not messages).
    pub lost: Option<u64>,
    /// Received more than once.
    pub duplicated: Option<u64>,
    /// Received after a later one.
    pub reordered: Option<u64>,
    /// Gap events reported while the phase lasted (and until the next one).
    pub gaps: u64,
    /// Connection-lost events in the phase.
    pub outages: u64,
    /// Heals reported (`FeedEvent::Healed`) in the phase.
    pub heals: u64,
    /// From the fault's end to the first message published after it arriving, or (feed)
    /// to the store equal to the server's.
    pub recovery: Option<Duration>,
}

/// A count, or `-` when it does not apply.
fn count(n: Option<u64>) -> String {
    n.map_or("-".to_owned(), |n| n.to_string())
}

impl Row {
    /// Prints the row as one `FAULT-SUITE` line.
    pub fn print(&self) {
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| d.as_millis().to_string());
        println!(
            "FAULT-SUITE | {:<12} | {:<16} | lost {:>4} | dup {:>3} | reord {:>3} | gaps {:>3} | heals {:>3} | outages {:>3} | recovery_ms {:>5} |",
            self.server,
            self.fault,
            count(self.lost),
            count(self.duplicated),
            count(self.reordered),
            self.gaps,
            self.heals,
            self.outages,
            ms(self.recovery),
        );
    }
}
