//! What the scenarios share: the seeded driver of the simulator's calls, and the consumer
//! that keeps what the feed handed out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use gws_cometd::bayeux::SessionEvent;
use gws_cometd::gws::{CallFeed, FeedEvent};
use gws_cometd::ClientEvent;
use gws_cometd_sim::gws::GwsSim;
use tokio::sync::{oneshot, OwnedMutexGuard};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::{raw, DN, OP_EVERY, USER};

/// Changes the simulator's calls every `OP_EVERY` until dropped; [`Driver::pause`] holds it.
pub(super) struct Driver {
    gate: Arc<tokio::sync::Mutex<()>>,
    ops: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Driver {
    pub(super) fn start(gws: GwsSim, seed: u64) -> Driver {
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let ops = Arc::new(AtomicU64::new(0));
        let (g, o) = (gate.clone(), ops.clone());
        let task = tokio::spawn(async move {
            let mut rng = seeded(seed);
            loop {
                {
                    let _running = g.lock().await;
                    let n = o.fetch_add(1, Ordering::Relaxed);
                    step(&gws, &mut rng, n);
                }
                sleep(OP_EVERY).await;
            }
        });
        Driver { gate, ops, task }
    }

    /// Stops the driver between two operations until the guard is dropped.
    pub(super) async fn pause(&self) -> OwnedMutexGuard<()> {
        self.gate.clone().lock_owned().await
    }

    pub(super) fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The state of a small xorshift generator (never 0): the driver needs no more, and tests
/// have no RNG crate of their own.
fn seeded(seed: u64) -> u64 {
    seed | 1
}

/// A number in `0..n` from the xorshift generator `rng`.
fn roll(rng: &mut u64, n: u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng % n
}

/// One operation on the simulator's calls: keeps three to five calls up and changes one.
fn step(gws: &GwsSim, rng: &mut u64, n: u64) {
    let ids = gws.call_ids_for(USER);
    if ids.len() < 3 || (ids.len() < 5 && roll(rng, 12) == 0) {
        gws.ring_inbound(&format!("61{:04}", n % 10_000), DN);
        return;
    }
    let id = &ids[roll(rng, ids.len() as u64) as usize];
    let Some(text) = gws.call_json(id) else {
        return;
    };
    let state = serde_json::from_str::<serde_json::Value>(&text).expect("a call is JSON")["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let value = raw(format!("\"v{n}\""));
    // Errors are calls that changed state meanwhile: nothing to do then.
    let _ = match state.as_str() {
        "Ringing" => gws.answer(id),
        "Established" => match roll(rng, 12) {
            0 => gws.hold(id),
            1 => gws.hangup(id),
            2..=5 => gws.attach_user_data(id, vec![("Note".into(), value)]),
            6 => gws.delete_user_data_pair(id, "Note"),
            _ => gws.update_user_data(id, vec![(format!("K{}", n % 4), value)]),
        },
        "Held" => match roll(rng, 3) {
            0 => gws.retrieve(id),
            _ => gws.update_user_data(id, vec![("HeldNote".into(), value)]),
        },
        "Released" => gws.complete(id),
        _ => Ok(()),
    };
}

// ---------------------------------------------------------------------------------------
// What the feed's consumer saw.

/// Reads the feed until stopped, keeping every event with the time it was read.
pub(super) struct Consumer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Vec<(Instant, FeedEvent)>>,
}

impl Consumer {
    pub(super) fn start(mut feed: CallFeed) -> Consumer {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut log = Vec::new();
            loop {
                tokio::select! {
                    ev = feed.next() => match ev {
                        Some(FeedEvent::Session(ClientEvent::Terminated { error })) => {
                            panic!("the feed ended: {error}")
                        }
                        Some(ev) => log.push((Instant::now(), ev)),
                        None => panic!("the feed ended"),
                    },
                    _ = &mut stopped => break,
                }
            }
            feed.disconnect().await;
            log
        });
        Consumer { stop, task }
    }

    pub(super) async fn finish(self) -> Vec<(Instant, FeedEvent)> {
        let _ = self.stop.send(());
        self.task.await.expect("the consumer does not panic")
    }
}

pub(super) fn is_gap(ev: &FeedEvent) -> bool {
    matches!(ev, FeedEvent::Gap { .. })
}

pub(super) fn is_healed(ev: &FeedEvent) -> bool {
    matches!(ev, FeedEvent::Healed { .. })
}

pub(super) fn is_outage(ev: &FeedEvent) -> bool {
    matches!(
        ev,
        FeedEvent::Session(ClientEvent::Session(SessionEvent::ConnectionLost { .. }))
    )
}
