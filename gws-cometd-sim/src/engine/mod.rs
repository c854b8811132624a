//! The simulator's Bayeux protocol state: sessions, subscriptions, per-session queues and held
//! `/meta/connect` requests.
//!
//! Nothing here knows about HTTP: a batch of [`Message`]s and the caller's browser cookie go
//! in, the reply batch comes out. All state sits behind one mutex that is never held across
//! an await; each session has a [`Notify`] that wakes its held connect when a message is
//! queued, the session is dropped, or a newer connect replaces it.

mod connect;
mod expiry;
mod inspect;
mod meta;
mod publish;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::ack::AckQueue;
use crate::SimStats;
use gws_cometd::bayeux::{Advice, Message, Reconnect};

/// The error every real server sends for a session it does not know.
pub(crate) const UNKNOWN_CLIENT: &str = "402::Unknown client";

/// Timing and bounds of the engine.
#[derive(Clone, Debug)]
pub(crate) struct EngineConfig {
    pub long_poll_timeout: Duration,
    pub interval: Duration,
    pub max_interval: Duration,
    pub max_queue: usize,
    /// Whether sessions that ask get the acknowledged-messages extension.
    pub ack_extension: bool,
}

/// Per-request switches set by fault injection.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    /// Connect replies say `successful:false` with advice `reconnect:none`.
    pub advice_none: bool,
    /// Subscriptions to these channels are denied.
    pub deny: Vec<String>,
}

/// What the engine answers to one batch.
#[derive(Debug, Default)]
pub(crate) struct BatchReply {
    /// The reply messages, in order.
    pub messages: Vec<Message>,
    /// A new browser cookie value to set (only on a handshake that came without one).
    pub set_browser: Option<String>,
}

struct Session {
    /// The `BAYEUX_BROWSER` cookie this session is bound to.
    browser: String,
    /// The user the session belongs to (the GWS user of the HTTP session that made the
    /// handshake); `None` on the plain, unauthenticated endpoint.
    owner: Option<String>,
    subscriptions: BTreeSet<String>,
    /// Messages not yet in a connect reply.
    queue: VecDeque<Message>,
    /// With the acknowledged-messages extension: what was sent and not yet acknowledged.
    acks: Option<AckQueue>,
    wake: Arc<Notify>,
    /// Incremented by every connect; a held connect with an older number is superseded.
    connect_gen: u64,
    /// Connects currently held (0 or 1, briefly 2 while one replaces another).
    held: u32,
    /// When the last connect arrived or was answered; expiry counts from here.
    last_active: Instant,
    dropped: u64,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    stats: SimStats,
    client_log: VecDeque<(String, String)>,
    ids: u64,
    /// Sessions the server ended ([`Engine::end_sessions`]) whose client has not yet been
    /// told (by a `/meta/disconnect` in the reply to its next connect).
    ended: HashSet<String>,
}

/// The Bayeux server state machine of the simulator.
pub(crate) struct Engine {
    cfg: EngineConfig,
    state: Mutex<State>,
    hasher: RandomState,
    /// Woken on every subscription change or client publish (for test helpers).
    changed: Notify,
    shutdown: watch::Receiver<bool>,
}

fn reply_to(req: &Message) -> Message {
    let mut m = Message::new(req.channel.clone());
    m.id = req.id.clone();
    m.client_id = req.client_id.clone();
    m
}

fn failure(req: &Message, error: impl Into<String>) -> Message {
    let mut m = reply_to(req);
    m.successful = Some(false);
    m.error = Some(error.into());
    m
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Engine {
    pub(crate) fn new(cfg: EngineConfig, shutdown: watch::Receiver<bool>) -> Self {
        Engine {
            cfg,
            state: Mutex::new(State::default()),
            hasher: RandomState::new(),
            changed: Notify::new(),
            shutdown,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the simulator down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random_hex(&self, st: &mut State) -> String {
        st.ids += 1;
        let a = self.hasher.hash_one(st.ids);
        let b = self.hasher.hash_one(a ^ st.ids.rotate_left(32));
        format!("{a:016x}{b:08x}").chars().take(24).collect()
    }

    fn advice(&self, reconnect: Reconnect) -> Advice {
        Advice {
            reconnect: Some(reconnect),
            interval: Some(millis(self.cfg.interval)),
            timeout: Some(millis(self.cfg.long_poll_timeout)),
            max_interval: Some(millis(self.cfg.max_interval)),
            ..Advice::default()
        }
    }

    fn unknown_client(req: &Message, with_advice: bool) -> Message {
        let mut m = failure(req, UNKNOWN_CLIENT);
        if with_advice {
            m.advice = Some(Advice {
                reconnect: Some(Reconnect::Handshake),
                interval: Some(0),
                ..Advice::default()
            });
        }
        m
    }

    /// The answer to a connect of a session that is gone: the `/meta/disconnect` the server
    /// owes a session it ended (and a connect answer advising not to come back, as a
    /// CometD server answers then), or `402::Unknown client`.
    fn gone(st: &mut State, req: &Message) -> Vec<Message> {
        let id = req.client_id.as_deref().unwrap_or_default();
        if !st.ended.remove(id) {
            return vec![Self::unknown_client(req, true)];
        }
        let mut disconnect = Message::new("/meta/disconnect");
        disconnect.client_id = Some(id.to_owned());
        disconnect.successful = Some(true);
        let mut connect = reply_to(req);
        connect.successful = Some(true);
        connect.advice = Some(Advice {
            reconnect: Some(Reconnect::None),
            ..Advice::default()
        });
        vec![disconnect, connect]
    }

    /// The session of `req` if it exists, is bound to `browser` and belongs to `owner`.
    fn session_ok(st: &State, req: &Message, browser: Option<&str>, owner: Option<&str>) -> bool {
        match req.client_id.as_deref().and_then(|id| st.sessions.get(id)) {
            Some(s) => browser == Some(s.browser.as_str()) && s.owner.as_deref() == owner,
            None => false,
        }
    }

    /// Handles one request batch from `owner` (recorded on sessions it handshakes; other
    /// messages must come from their session's owner). Non-connect messages are answered in
    /// order; a `/meta/connect` is answered last, after the data messages it delivers.
    pub(crate) async fn handle_batch(
        &self,
        batch: Vec<Message>,
        browser: Option<&str>,
        owner: Option<&str>,
        policy: &Policy,
    ) -> BatchReply {
        self.expire_idle();
        let mut reply = BatchReply::default();
        let mut connect = None;
        let mut browser = browser.map(str::to_owned);
        for msg in batch {
            match msg.channel.as_str() {
                "/meta/connect" => {
                    // Only the last connect of a batch is held; earlier ones are answered.
                    if let Some(prev) = connect.replace(msg) {
                        let mut m = reply_to(&prev);
                        m.successful = Some(true);
                        reply.messages.push(m);
                    }
                }
                "/meta/handshake" => {
                    let (m, new_browser) = self.handshake(&msg, browser.as_deref(), owner);
                    if let Some(b) = new_browser {
                        browser = Some(b.clone());
                        reply.set_browser = Some(b);
                    }
                    reply.messages.push(m);
                }
                "/meta/subscribe" => {
                    reply
                        .messages
                        .push(self.subscribe(&msg, browser.as_deref(), owner, policy))
                }
                "/meta/unsubscribe" => {
                    reply
                        .messages
                        .push(self.unsubscribe(&msg, browser.as_deref(), owner))
                }
                "/meta/disconnect" => {
                    reply
                        .messages
                        .push(self.disconnect(&msg, browser.as_deref(), owner))
                }
                ch if ch.starts_with("/meta/") => reply
                    .messages
                    .push(failure(&msg, "400::Unknown meta channel")),
                _ => reply
                    .messages
                    .push(self.client_publish(msg, browser.as_deref(), owner)),
            }
        }
        if let Some(msg) = connect {
            let mut msgs = self.connect(&msg, browser.as_deref(), owner, policy).await;
            reply.messages.append(&mut msgs);
        }
        reply
    }
}
