//! Playing a recording to one Bayeux session, and what the user's call reads answer
//! meanwhile.
//!
//! Each session that subscribes gets its own player, from the recording's start. The
//! player keeps the calls as of the point it reached in a [`CallStore`]; the user's call
//! reads (`GET /api/v2/me/calls`, or v3's `current-session` and `voice/calls` for a v3
//! recording) answer the latest session's calls (before any session: the calls the
//! recording began with), so a catch-up or heal read agrees with what was delivered. A
//! client of the other generation is not the recording's: its reads are left to the
//! simulator, and the first one is said at WARN (see [`UserReplay::other_generation`]).
//!
//! The console sees the same session: the latest one feeds the console's hub what it
//! delivers, and the calls it starts each pass with and heals to (as a client's catch-up and
//! heal reads would show them to `watch`), and the console's calls list is what a call read
//! answers, read with [`UserReplay::peek_calls`], which a player does not take as the
//! client's catch-up read. With several sessions replaying, only the most recent one's is
//! shown, as only it moves what reads answer: an older session's client sees its own pass,
//! the console the newest client's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use gws_cometd::bayeux::Message;
use gws_cometd::gws::wire::{self, Notification};
use gws_cometd::gws::{Api, CallStore, ChangeOrigin};
use serde_json::value::RawValue;
use tokio::sync::watch;

use super::control::{Pacer, ReplayControl};
use super::recording::{Recording, Step};
use crate::console::Hub;
use crate::engine::Engine;

/// How long a new session's replay waits for the user's catch-up read before it delivers
/// anything: a client that reads (as the GWS feed does, once subscribed) gets the calls as
/// the recording began and then every notification, none of them racing the read; a client
/// that never reads waits this long once.
pub(crate) const CATCH_UP_WAIT: Duration = Duration::from_secs(1);

/// How long after the catch-up read the first notification waits: the read's reply must
/// reach the client first, or the client (the GWS feed does) takes the notification as
/// newer than the read and keeps it over the read.
pub(crate) const CATCH_UP_SETTLE: Duration = Duration::from_millis(100);

/// Longest a notification waits for the one before it to leave in a connect reply.
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// How often the session's queue is looked at meanwhile.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// Waits (at most [`DRAIN_WAIT`]) until nothing is queued for the session: each
/// notification then leaves in a reply of its own, as a live server sends them one change at
/// a time, so a client that merges changes arriving together (the GWS feed does, per call)
/// sees every one even at speed max.
async fn wait_drained(engine: &Engine, client_id: &str) {
    let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
    while engine.queued_for(client_id).is_some_and(|n| n > 0) {
        if tokio::time::Instant::now() >= deadline {
            tracing::debug!(
                client_id,
                "the session is not taking its notifications: going on"
            );
            return;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// One user's recording and what their call reads answer.
pub(crate) struct UserReplay {
    pub recording: Arc<Recording>,
    pub control: ReplayControl,
    pub looped: bool,
    /// The calls (a JSON array) a read answers before any session played: the recording's
    /// start.
    initial_listing: String,
    stage: Mutex<Stage>,
    /// Call reads answered, over the server's life: a player waits for the next one.
    reads: watch::Sender<u64>,
    /// The console's hub and the user's name there, once the server set it.
    console: OnceLock<(Arc<Hub>, String)>,
    /// Whether a client of the other generation was said at WARN.
    other_generation_said: AtomicBool,
}

/// What a player passed on, for the console's hub.
enum Fed<'a> {
    /// A notification it delivered.
    Notification(&'a Message),
    /// The calls a read would answer from now on: the recording's start (a pass begins,
    /// as a catch-up read shows it) or a heal point.
    Calls(&'a [Box<RawValue>], ChangeOrigin),
}

struct Stage {
    /// The latest session's player; only it moves what reads answer.
    latest: u64,
    /// The calls a read answers, as a JSON array of call objects as recorded.
    listing: String,
    sessions: usize,
}

fn lock(m: &Mutex<Stage>) -> MutexGuard<'_, Stage> {
    // A panic elsewhere must not stop reads from being answered.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A JSON array of `calls` as given.
fn listing<'a>(calls: impl Iterator<Item = &'a str>) -> String {
    let calls: Vec<&str> = calls.collect();
    format!("[{}]", calls.join(","))
}

/// The calls of `store`, each as last received.
fn store_listing(store: &CallStore) -> String {
    listing(store.calls().filter_map(|c| store.get_text(&c.id)))
}

impl UserReplay {
    pub fn new(recording: Arc<Recording>, control: ReplayControl, looped: bool) -> UserReplay {
        let initial_listing = listing(recording.initial.iter().map(|c| c.get()));
        UserReplay {
            recording,
            control,
            looped,
            stage: Mutex::new(Stage {
                latest: 0,
                listing: initial_listing.clone(),
                sessions: 0,
            }),
            initial_listing,
            reads: watch::Sender::new(0),
            console: OnceLock::new(),
            other_generation_said: AtomicBool::new(false),
        }
    }

    /// The API generation the recording serves.
    pub fn api(&self) -> Api {
        self.recording.api()
    }

    /// A client of `user` on `api`, the other generation than the recording's, logged in or
    /// subscribed: it gets nothing replayed (no translation between generations). Said once
    /// at WARN, naming the user and both generations.
    pub fn other_generation(&self, user: &str, api: Api) {
        if self.other_generation_said.swap(true, Ordering::Relaxed) {
            return;
        }
        let recorded = self.api();
        tracing::warn!(
            user,
            client_api = %api,
            recording_api = %recorded,
            fixture = %self.recording.path().display(),
            "{user} has an API {recorded} recording, but a client of theirs came on API {api}: \
             it gets no replayed activity (record on API {api} to serve it)"
        );
    }

    /// Has the latest session feed `hub` (as `user`'s) what it passes on; only the first
    /// hub set is kept.
    pub fn feed_console(&self, hub: Arc<Hub>, user: &str) {
        let _ = self.console.set((hub, user.to_owned()));
    }

    /// Answers `user`'s call read on `api`: the calls (a JSON array) as of the point the
    /// latest session reached; `None` for a read of the other generation (the simulator
    /// answers it).
    pub fn read_calls(&self, user: &str, api: Api) -> Option<String> {
        if api != self.api() {
            self.other_generation(user, api);
            return None;
        }
        let calls = lock(&self.stage).listing.clone();
        self.reads.send_modify(|n| *n += 1);
        Some(calls)
    }

    /// What a call read answers now, as a `{"statusCode":0,"calls":[..]}` listing (of calls
    /// in the recording's form), without counting as one: a session waiting for its
    /// client's catch-up read goes on waiting.
    pub fn peek_calls(&self) -> String {
        let calls = lock(&self.stage).listing.clone();
        format!(r#"{{"statusCode":0,"calls":{calls}}}"#)
    }

    /// A new session starts: it becomes the one reads follow.
    fn begin(&self) -> u64 {
        let mut stage = lock(&self.stage);
        stage.latest += 1;
        stage.sessions += 1;
        stage.listing = self.initial_listing.clone();
        let sessions = stage.sessions;
        self.control.update_position(|p| {
            p.sessions = sessions;
            p.delivered = 0;
            p.loops = 0;
        });
        stage.latest
    }

    /// The player `player` reached `store` (`delivered` notifications into pass `loops`),
    /// passing on `fed`: if it is the latest, reads and the console follow.
    fn update(&self, player: u64, store: &CallStore, delivered: usize, loops: u64, fed: Fed<'_>) {
        let mut stage = lock(&self.stage);
        if stage.latest == player {
            stage.listing = store_listing(store);
            // The listing first: a console woken by its hub reads the calls that go with it.
            if let Some((hub, user)) = self.console.get() {
                match fed {
                    Fed::Notification(msg) => {
                        let data = msg.data.as_deref().map_or("", |d| d.get());
                        let calls = msg.channel == self.api().calls_channel();
                        hub.note_replayed(user, data, calls);
                    }
                    Fed::Calls(calls, origin) => hub.reconcile(user, calls, origin),
                }
            }
            self.control.update_position(|p| {
                p.delivered = delivered;
                p.loops = loops;
            });
        }
    }

    /// A session's player stopped: its recording is over (reads keep answering where it
    /// ended), or its session ended (reads answer the recording's start again, as the next
    /// session will).
    fn end(&self, player: u64, session_gone: bool) {
        let mut stage = lock(&self.stage);
        if session_gone && stage.latest == player {
            stage.listing = self.initial_listing.clone();
        }
        stage.sessions = stage.sessions.saturating_sub(1);
        let sessions = stage.sessions;
        self.control.update_position(|p| p.sessions = sessions);
    }
}

/// Counts a player out when its task ends or is aborted (its session went away).
struct PlayerGuard<'a> {
    user: &'a UserReplay,
    id: u64,
    /// Set when the recording played to its end; otherwise the task was aborted.
    finished: bool,
}

impl Drop for PlayerGuard<'_> {
    fn drop(&mut self) {
        self.user.end(self.id, !self.finished);
    }
}

/// Plays `user`'s recording to the session `client_id`: waits for the catch-up read (at
/// most [`CATCH_UP_WAIT`]), then delivers each notification at its recorded time as the
/// control paces it, once or, with `looped`, again and again.
pub(crate) async fn play(user: Arc<UserReplay>, engine: Arc<Engine>, client_id: String) {
    let mut reads = user.reads.subscribe();
    reads.borrow_and_update();
    let id = user.begin();
    let mut guard = PlayerGuard {
        user: &user,
        id,
        finished: false,
    };
    let mut pacer = Pacer::new(&user.control);
    tracing::info!(
        client_id,
        fixture = %user.recording.path().display(),
        "replaying the recording to a new session"
    );
    // Only a read after this session's start counts: one before it was another session's.
    if let Ok(Ok(())) = tokio::time::timeout(CATCH_UP_WAIT, reads.changed()).await {
        tokio::time::sleep(CATCH_UP_SETTLE).await;
    }
    let mut loops = 0;
    loop {
        let now = std::time::Instant::now();
        let mut store = CallStore::new();
        store.reconcile(&user.recording.initial, now, ChangeOrigin::CatchUp, |_| {
            false
        });
        let mut delivered = 0;
        // Each pass starts from the calls the recording began with.
        let start = Fed::Calls(&user.recording.initial, ChangeOrigin::CatchUp);
        user.update(id, &store, delivered, loops, start);
        let mut last_at = 0;
        for timed in &user.recording.steps {
            let fed = match &timed.step {
                Step::Deliver(msg) => {
                    let gap = Duration::from_millis(timed.at_ms.saturating_sub(last_at));
                    last_at = timed.at_ms;
                    pacer.wait_turn(gap).await;
                    wait_drained(&engine, &client_id).await;
                    if !engine.deliver_to_session(&client_id, msg) {
                        tracing::debug!(client_id, channel = %msg.channel, "not subscribed: skipped");
                    }
                    if let Ok(Notification::Call(call)) = wire::decode(msg) {
                        store.apply(&call, std::time::Instant::now());
                    }
                    delivered += 1;
                    // At speed max, let the session's connect and other tasks run between
                    // notifications.
                    tokio::task::yield_now().await;
                    Fed::Notification(msg)
                }
                // Taken as reached right after the notification before it (it has no
                // wait of its own, so pause and step count notifications only).
                Step::Snapshot(calls) => {
                    reconcile_heal(&mut store, calls);
                    Fed::Calls(calls, ChangeOrigin::Heal)
                }
            };
            user.update(id, &store, delivered, loops, fed);
        }
        if !user.looped {
            tracing::info!(client_id, delivered, "the recording is over");
            guard.finished = true;
            return;
        }
        loops += 1;
        // The next pass starts one unstamped gap after the last step, at the current pace.
        pacer
            .wait_turn(Duration::from_millis(super::recording::UNSTAMPED_GAP_MS))
            .await;
    }
}

fn reconcile_heal(store: &mut CallStore, calls: &[Box<RawValue>]) {
    store.reconcile(calls, std::time::Instant::now(), ChangeOrigin::Heal, |_| {
        false
    });
}
