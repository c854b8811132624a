//! One agent in the bridge: a reader task that follows the agent's feed into a bounded
//! queue (never waiting on NATS, so the feed never has to coalesce), and a writer task that
//! writes the queue to JetStream, one change at a time, retrying with the same message id.
//!
//! One agent's trouble stays its own: a feed that ends for good is followed again after a
//! backoff, and a task that panics is started again after a backoff (the queue and the
//! session state live outside the tasks, so nothing is lost but the panicking step); both
//! count in `gws_bridge_agent_restarts_total`, and the other agents never notice. No input
//! aborts the process: the library decodes and diffs every notification in time and memory
//! in proportion to its size, and refuses what is over its documented limits (a gap, then a
//! heal).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::agents::Agent;
use super::metrics::{Metrics, SessionState};
use super::queue::{AgentQueue, Next};
use super::source::{self, FeedSettings, Seen};
use super::writer::{AgentWriter, Publisher, Written};
use gws_cometd::backoff::{Backoff, BackoffConfig};

/// Backoff between logins of an agent whose login failed (or whose feed ended).
const LOGIN_BACKOFF: BackoffConfig = BackoffConfig {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(60),
    factor: 2.0,
    jitter: true,
};

/// Backoff between starts of an agent task that panicked.
const RESTART_BACKOFF: BackoffConfig = BackoffConfig {
    initial: Duration::from_secs(1),
    max: Duration::from_secs(60),
    factor: 2.0,
    jitter: true,
};

/// Backoff between tries of a JetStream write.
const WRITE_BACKOFF: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(5),
    factor: 2.0,
    jitter: true,
};

/// What every agent shares.
#[derive(Clone)]
pub(crate) struct Shared {
    /// Set once the JetStream layout is made.
    pub publisher: watch::Receiver<Option<Publisher>>,
    pub metrics: Metrics,
    pub feed: FeedSettings,
    /// Changes an agent's queue holds before it coalesces.
    pub buffer: usize,
    /// True: stop following (disconnect the sessions) and drain.
    pub stop: watch::Receiver<bool>,
    /// Set when stopping: the writers give up at this instant.
    pub drain_until: watch::Receiver<Option<Instant>>,
}

struct AgentState {
    queue: Mutex<AgentQueue>,
    wake: Notify,
    reader_done: AtomicBool,
    /// The session's state as the metrics have it (kept here, so a restarted reader moves
    /// it on from where the last one left it).
    session: Mutex<Option<SessionState>>,
}

impl AgentState {
    fn queue(&self) -> MutexGuard<'_, AgentQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session moved `to`: the metrics follow.
    fn moved(&self, metrics: &Metrics, to: SessionState) {
        let mut current = self.session.lock().unwrap_or_else(|p| p.into_inner());
        metrics.session_moved(*current, to);
        *current = Some(to);
    }
}

/// The two tasks of one agent.
pub(crate) struct AgentTasks {
    pub reader: JoinHandle<()>,
    pub writer: JoinHandle<()>,
}

/// Starts following `agent`.
pub(crate) fn spawn(agent: Agent, shared: Shared) -> AgentTasks {
    let name = agent.user().to_owned();
    let state = Arc::new(AgentState {
        queue: Mutex::new(AgentQueue::new(shared.buffer)),
        wake: Notify::new(),
        reader_done: AtomicBool::new(false),
        session: Mutex::new(None),
    });
    let reader = {
        let (shared, state, name) = (shared.clone(), state.clone(), name.clone());
        tokio::spawn(async move {
            let run = || read(agent.clone(), shared.clone(), state.clone());
            supervised(&name, "reader", &shared.metrics, shared.stop.clone(), run).await;
            // Also when it stopped while waiting to start again.
            state.reader_done.store(true, Ordering::Release);
            state.wake.notify_one();
        })
    };
    let writer = tokio::spawn(async move {
        let run = || write(name.clone(), shared.clone(), state.clone());
        supervised(&name, "writer", &shared.metrics, shared.stop.clone(), run).await;
    });
    AgentTasks { reader, writer }
}

/// Runs the task `run` makes, on a task of its own, until it returns; one that panics is
/// counted, logged and started again after a backoff (unless the bridge is stopping).
async fn supervised<F, Fut>(
    agent: &str,
    what: &str,
    metrics: &Metrics,
    mut stop: watch::Receiver<bool>,
    run: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = Backoff::new(&RESTART_BACKOFF);
    loop {
        let started = Instant::now();
        let panic = match tokio::spawn(run()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => e.into_panic(),
            // Cancelled: the runtime is shutting down.
            Err(_) => return,
        };
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        metrics.inner.agent_restarts.inc();
        // A task that ran a good while before it failed starts again soon.
        if started.elapsed() > RESTART_BACKOFF.max {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::error!(agent = %agent, task = what, restart_in = ?delay, "the agent's {what} task panicked ({message}); starting it again, the other agents go on");
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Follows the agent's feed until told to stop; logs in again (with backoff) after a
/// failed login or an ended feed.
async fn read(agent: Agent, shared: Shared, state: Arc<AgentState>) {
    let name = agent.user().to_owned();
    let metrics = &shared.metrics;
    let mut stop = shared.stop.clone();
    let mut backoff = Backoff::new(&LOGIN_BACKOFF);
    while !*stop.borrow() {
        state.moved(metrics, SessionState::Connecting);
        let floor = session_floor(&shared).await;
        let connected = tokio::select! {
            // Boxed: only while logging in.
            c = Box::pin(source::connect(&shared.feed, agent.clone())) => c,
            _ = stop.wait_for(|s| *s) => break,
        };
        let delay = match connected {
            Ok(mut feed) => {
                metrics.login_failing(&name, false);
                backoff.reset();
                state.moved(metrics, SessionState::Connected);
                if let Followed::Stopped = follow(&mut feed, &shared, &state, &name, floor).await {
                    Box::pin(feed.disconnect()).await;
                    break;
                }
                // The feed ended (a fatal session error): start over after a pause.
                state.moved(metrics, SessionState::Disconnected);
                metrics.inner.agent_restarts.inc();
                backoff.next_delay()
            }
            Err(e) => {
                metrics.inner.login_failures.inc();
                metrics.login_failing(&name, true);
                state.moved(metrics, SessionState::LoginFailed);
                let delay = backoff.next_delay();
                tracing::warn!(agent = %name, retry_in = ?delay, "login failed: {e}");
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    state.moved(metrics, SessionState::Stopped);
    state.reader_done.store(true, Ordering::Release);
    state.wake.notify_one();
}

/// How following one feed session ended.
enum Followed {
    /// The bridge is stopping.
    Stopped,
    /// The feed ended.
    Ended,
}

/// Sorts one feed session's events into the queue, the metrics and the log.
async fn follow(
    feed: &mut gws_cometd::gws::CallFeed,
    shared: &Shared,
    state: &Arc<AgentState>,
    name: &str,
    floor: Option<u64>,
) -> Followed {
    let metrics = &shared.metrics;
    let mut stop = shared.stop.clone();
    loop {
        let event = tokio::select! {
            e = feed.next() => e,
            _ = stop.wait_for(|s| *s) => return Followed::Stopped,
        };
        let Some(event) = event else {
            return Followed::Ended;
        };
        match source::sort(event) {
            Seen::Change(item) => {
                metrics.inner.notifications.inc();
                let item = match floor {
                    Some(floor) => item.in_session(floor),
                    None => *item,
                };
                let merged = state.queue().push(item);
                metrics.inner.pending.inc();
                if merged > 0 {
                    metrics.inner.pending.dec_by(merged as i64);
                    metrics.inner.coalesced.inc_by(merged as u64);
                    tracing::warn!(
                        agent = %name,
                        merged,
                        "buffer full (JetStream slow or away): changes merged per call"
                    );
                }
                state.wake.notify_one();
            }
            Seen::Ready { calls } => {
                tracing::debug!(agent = %name, calls, "caught up");
                // A new feed starts from the server's calls: whatever an earlier one missed
                // is healed.
                metrics.agent_stale(name, None);
                if let Some(floor) = floor {
                    sweep_ended(shared, name, floor, feed.store_handle(), state.clone());
                }
            }
            other => log_event(other, name, state, metrics),
        }
    }
}

/// Counts and logs a feed event that is neither a change nor the end of the catch-up.
fn log_event(seen: Seen, name: &str, state: &AgentState, metrics: &Metrics) {
    match seen {
        Seen::Gap {
            rehandshake,
            over_limit,
        } => {
            metrics.inner.gaps.inc();
            if let Some(cause) = over_limit {
                tracing::warn!(agent = %name, "{cause}; healing from the server's calls");
            }
            if rehandshake {
                metrics.inner.rehandshakes.inc();
            }
        }
        Seen::Healed { changes } => {
            metrics.inner.heals.inc();
            tracing::info!(agent = %name, changes, "healed after a gap");
        }
        Seen::HealFailed(e) => {
            tracing::warn!(agent = %name, "reading the calls after a gap failed: {e}");
        }
        Seen::LoggedInAgain => {
            metrics.inner.relogins.inc();
        }
        Seen::Connected => state.moved(metrics, SessionState::Connected),
        Seen::ConnectionLost => state.moved(metrics, SessionState::Disconnected),
        Seen::Ended(e) => tracing::warn!(agent = %name, "the feed ended: {e}"),
        Seen::Lagged(missed) => {
            tracing::warn!(agent = %name, missed, "the feed dropped events (not call changes)");
        }
        Seen::Stale(since) => metrics.agent_stale(name, Some(since)),
        Seen::Fresh => metrics.agent_stale(name, None),
        Seen::Change(_) | Seen::Ready { .. } | Seen::Nothing => {}
    }
}

/// Writes the queue to JetStream until the reader is done and the queue empty, or the
/// drain time is up.
async fn write(agent: String, shared: Shared, state: Arc<AgentState>) {
    let metrics = &shared.metrics;
    let mut drain = shared.drain_until.clone();
    let mut ready = shared.publisher.clone();
    let publisher = tokio::select! {
        p = ready.wait_for(|p| p.is_some()) => match p {
            Ok(p) => p.clone(),
            Err(_) => None,
        },
        _ = wait_deadline(&mut drain) => None,
        // Stopping with nothing to write: no reason to wait for JetStream.
        _ = nothing_left(&state, shared.stop.clone()) => return,
    };
    let Some(publisher) = publisher else {
        give_up(&agent, &state, metrics);
        return;
    };
    let writer: AgentWriter = match publisher.agent(&agent) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(agent = %agent, "cannot publish this agent's calls: {e}");
            return;
        }
    };
    let mut writing = Writing {
        state,
        metrics: metrics.clone(),
        publisher,
        writer,
        failing: false,
        stop: shared.stop.clone(),
        drain,
    };
    while let Some(item) = writing.next_change().await {
        writing.write_change(item).await;
    }
}

/// The writer task's state between changes.
struct Writing {
    state: Arc<AgentState>,
    metrics: Metrics,
    publisher: Publisher,
    writer: AgentWriter,
    /// The last write failed (logged once, until one works again).
    failing: bool,
    stop: watch::Receiver<bool>,
    drain: watch::Receiver<Option<Instant>>,
}

impl Writing {
    /// The next change to write, once one is ready; `None` when the reader is done and the
    /// queue empty, or the drain time is up (what is left is then counted).
    async fn next_change(&mut self) -> Option<super::writer::ChangeItem> {
        loop {
            let stopping = *self.stop.borrow();
            if stopping {
                self.state.queue().release_holds();
            }
            let deadline = *self.drain.borrow();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                give_up(self.writer.agent(), &self.state, &self.metrics);
                return None;
            }
            let wake = self.state.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let next = self.state.queue().next(Instant::now());
            let until = match next {
                Next::Item(item) => return Some(*item),
                Next::At(t) => Some(t),
                Next::Empty if self.state.reader_done.load(Ordering::Acquire) => return None,
                Next::Empty => None,
            };
            let sleep = async {
                match until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = wake => {}
                _ = self.stop.changed(), if !stopping => {}
                _ = self.drain.changed() => {}
            }
        }
    }

    /// Writes `item`, retrying with backoff (and the same message id) until it is written,
    /// held, or the drain time runs out.
    async fn write_change(&mut self, mut item: super::writer::ChangeItem) {
        let call_id = item.call_id().to_owned();
        let mut backoff = Backoff::new(&WRITE_BACKOFF);
        loop {
            let newer = {
                let state = self.state.clone();
                let id = call_id.clone();
                move || state.queue().has_newer(&id)
            };
            // Boxed: the idle task stays small (a write's future is ~10 KB).
            let e = match Box::pin(self.writer.write(&mut item, &newer)).await {
                Ok(written) => return self.written(item, written),
                Err(e) => e,
            };
            let delay = backoff.next_delay();
            self.failed(&e, delay).await;
            let deadline = *self.drain.borrow();
            if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                // Out of time: leave it to the check in `next_change`.
                self.state.queue().hold(item, None);
                tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await;
                return;
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Counts what became of `item` and takes it off the queue (or holds it).
    fn written(&mut self, item: super::writer::ChangeItem, written: Written) {
        let metrics = &self.metrics;
        if self.failing {
            self.failing = false;
            tracing::info!(agent = self.writer.agent(), "JetStream writes work again");
        }
        match written {
            Written::Published { .. } => metrics.inner.published.inc(),
            Written::Duplicate { .. } => metrics.inner.duplicates.inc(),
            Written::Superseded => metrics.inner.superseded.inc(),
            Written::Hold { until } => {
                self.state.queue().hold(item, Some(until));
                return;
            }
        };
        if !matches!(written, Written::Superseded) {
            metrics.observe_change(item.received.elapsed());
        }
        self.state.queue().done(item.call_id());
        metrics.inner.pending.dec();
    }

    /// Counts and logs a failed write (once per failing spell); makes the layout again
    /// when it is gone.
    async fn failed(&mut self, e: &super::error::BridgeError, delay: Duration) {
        self.metrics.inner.publish_errors.inc();
        let agent = self.writer.agent();
        if !self.failing {
            self.failing = true;
            tracing::warn!(agent, retry_in = ?delay, "JetStream write failed, retrying with the same message id: {e}");
        } else {
            tracing::debug!(agent, retry_in = ?delay, "JetStream write failed again: {e}");
        }
        if e.is_missing_layout() {
            if let Err(e) = Box::pin(self.publisher.repair_layout()).await {
                tracing::warn!("making the JetStream layout again failed: {e}");
            }
        }
    }
}

/// `GWS_CALLS`'s last sequence before a feed session connects (see
/// [`ChangeItem::in_session`](super::writer::ChangeItem::in_session)); `None` while
/// JetStream is not ready or slow, and the session's changes are then matched against each
/// call's last message only.
async fn session_floor(shared: &Shared) -> Option<u64> {
    let mut ready = shared.publisher.clone();
    // At start the layout is usually made within milliseconds; NATS away must not hold
    // the sessions back for long.
    let wait = tokio::time::timeout(Duration::from_secs(3), ready.wait_for(|p| p.is_some()));
    let publisher = match wait.await {
        Ok(Ok(p)) => p.clone()?,
        _ => return None,
    };
    let read = tokio::time::timeout(Duration::from_secs(5), publisher.stream_floor());
    match Box::pin(read).await {
        Ok(Ok(floor)) => Some(floor),
        _ => None,
    }
}

/// After a catch-up: removes (in the background) the calls the KV still shows live that
/// ended while no replica followed the agent.
fn sweep_ended(
    shared: &Shared,
    agent: &str,
    floor: u64,
    store: Arc<Mutex<gws_cometd::gws::CallStore>>,
    state: Arc<AgentState>,
) {
    let Some(publisher) = shared.publisher.borrow().clone() else {
        return;
    };
    let metrics = shared.metrics.clone();
    let agent = agent.to_owned();
    tokio::spawn(async move {
        let live = |id: &str| {
            let store = store.lock().unwrap_or_else(|p| p.into_inner());
            store.get_text(id).is_some()
        };
        match Box::pin(publisher.ended_calls(&agent, floor, live)).await {
            Ok(ended) => {
                if !ended.is_empty() {
                    tracing::info!(agent = %agent, calls = ended.len(), "calls that ended while no replica followed the agent");
                }
                for item in ended {
                    metrics.inner.pending.inc();
                    let merged = state.queue().push(item);
                    metrics.inner.pending.dec_by(merged as i64);
                    metrics.inner.coalesced.inc_by(merged as u64);
                }
                state.wake.notify_one();
            }
            Err(e) => {
                tracing::warn!(agent = %agent, "could not look for calls that ended meanwhile: {e}")
            }
        }
    });
}

/// Waits until the bridge stops, this agent's reader is done and its queue is empty.
async fn nothing_left(state: &AgentState, mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        return std::future::pending().await;
    }
    loop {
        let wake = state.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        if state.reader_done.load(Ordering::Acquire) && state.queue().len() == 0 {
            return;
        }
        wake.await;
    }
}

/// Waits until the drain deadline passes (forever while there is none).
async fn wait_deadline(drain: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let deadline = *drain.borrow_and_update();
        match deadline {
            Some(d) => {
                tokio::time::sleep_until(d).await;
                return;
            }
            None => {
                if drain.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Shutting down with changes still queued: count and report them.
fn give_up(agent: &str, state: &AgentState, metrics: &Metrics) {
    let left = state.queue().len();
    if left > 0 {
        metrics.inner.unwritten.inc_by(left as u64);
        metrics.inner.pending.dec_by(left as i64);
        tracing::info!(
            agent,
            left,
            "shutting down with changes not written to JetStream"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands of agents sit idle in these two tasks: their futures must stay small (the
    /// write and the login are boxed).
    #[test]
    fn an_idle_agent_should_cost_little_in_its_tasks() {
        let (_ptx, prx) = watch::channel(None);
        let (_stx, srx) = watch::channel(false);
        let (_dtx, drx) = watch::channel(None);
        let shared = Shared {
            publisher: prx,
            metrics: Metrics::new(),
            feed: FeedSettings {
                base_url: "http://x".into(),
                http: reqwest::Client::new(),
                max_network_delay: Duration::from_secs(1),
                logins: Arc::new(tokio::sync::Semaphore::new(1)),
                api: Default::default(),
            },
            buffer: 10,
            stop: srx,
            drain_until: drx,
        };
        let state = Arc::new(AgentState {
            queue: Mutex::new(AgentQueue::new(10)),
            wake: Notify::new(),
            reader_done: AtomicBool::new(false),
            session: Mutex::new(None),
        });
        let agent = gws_cometd::gws::rest::Credentials::new("a", "b").into();
        let r = read(agent, shared.clone(), state.clone());
        let w = write("a".into(), shared, state);
        let (r, w) = (std::mem::size_of_val(&r), std::mem::size_of_val(&w));
        assert!(r < 4096 && w < 4096, "read {r} bytes, write {w} bytes");
    }

    /// A task that panics (one agent's bad step) is started again after a backoff and
    /// counted, until it returns; a second agent's task beside it runs on untouched.
    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_started_again_with_backoff_and_counted() {
        use std::sync::atomic::AtomicUsize;
        let metrics = Metrics::new();
        let (_stop_tx, stop) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let other = Arc::new(AtomicUsize::new(0));
        let ticking = {
            let other = other.clone();
            tokio::spawn(async move {
                loop {
                    other.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let started = Instant::now();
        let r = runs.clone();
        supervised("a", "reader", &metrics, stop, move || {
            let r = r.clone();
            async move {
                if r.fetch_add(1, Ordering::Relaxed) < 2 {
                    panic!("a bad notification");
                }
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::Relaxed), 3);
        assert_eq!(metrics.snapshot().agent_restarts, 2);
        // Two backoffs of at least the initial delay each.
        assert!(
            started.elapsed() >= 2 * RESTART_BACKOFF.initial,
            "{:?}",
            started.elapsed()
        );
        assert!(
            other.load(Ordering::Relaxed) >= 20,
            "the other agent went on"
        );
        ticking.abort();
    }

    /// Stopping while a panicked task waits to start again ends the wait.
    #[tokio::test(start_paused = true)]
    async fn stopping_ends_the_wait_to_start_again() {
        let metrics = Metrics::new();
        let (stop_tx, stop) = watch::channel(false);
        let supervisor = tokio::spawn(async move {
            supervised("a", "writer", &metrics, stop, || async { panic!("always") }).await;
            metrics.snapshot().agent_restarts
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop_tx.send(true).unwrap();
        let restarts = supervisor.await.unwrap();
        assert_eq!(restarts, 1);
    }
}
