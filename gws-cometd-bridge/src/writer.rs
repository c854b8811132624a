//! Writing one agent's changes to JetStream so that replicas publish each once: the stream
//! `GWS_CALLS` holds one linear history per call, and the KV entry follows the newest of it.
//! The argument is in the [bridge docs](super#exactly-once-with-active-replicas).
//!
//! Per call, a replica remembers its **base**: the stream sequence of the last message of
//! the call's subject it has accounted for (published itself, or found there), and that
//! message's state fingerprint (`Gws-State`, the hash of the call text). A change is written
//! as
//!
//! 1. without a base (a call first met mid-life, a catch-up), read the subject's last
//!    message: its state equal to the change's → already there, done;
//! 2. catch-up and heal changes wait until they are `settle` old before their first publish
//!    (a live peer that is a little behind gets to publish the steps they jump over);
//! 3. publish with `Nats-Expected-Last-Subject-Sequence: <base>` and
//!    `Nats-Msg-Id: <key>:<base>:<state>`. At most one message can follow a given base, so
//!    peers (and this replica's own timed-out tries) never fork or repeat the history;
//! 4. refused as `WrongLastSequence` → walk the subject after the base: a message with the
//!    change's state → a peer (or an earlier try) wrote it, done. None → the history moved
//!    on without it: dropped as superseded when a newer change of the call is queued here,
//!    held until `settle` old otherwise, then published on top of the subject's last;
//! 5. the KV entry is written only forward: each carries `Gws-Seq`, the stream sequence it
//!    reflects, and is replaced (CAS on its revision) only by a newer one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use tokio::time::Instant;

use super::error::BridgeError;
use super::layout::{self, Layout, LayoutConfig, BUCKET_PREFIX};
use super::metrics::Metrics;
use super::names::{escape_token, state_fingerprint, unescape_token, CallAddress};
use gws_cometd::gws::store::{change_between, CallChange, ChangeOrigin};

/// Header: the state fingerprint of the call after a stream message (16 hex digits, or
/// `removed`).
pub const STATE_HEADER: &str = "Gws-State";
/// Header: the replica that published a stream message.
pub const REPLICA_HEADER: &str = "Gws-Replica";
/// Header: the `GWS_CALLS` sequence a KV entry reflects.
pub const SEQ_HEADER: &str = "Gws-Seq";

/// A walk after a base reads at most this many messages of one subject.
const MAX_WALK: usize = 10_000;

/// One change to write, with the call as it leaves it.
#[derive(Clone, Debug)]
pub struct ChangeItem {
    /// The change, as the feed reported it (or as the buffer merged it).
    pub change: CallChange,
    /// The call's JSON text after the change, exactly as GWS sent it; `None` when it left.
    pub call: Option<Arc<str>>,
    /// When the bridge got it.
    pub received: Instant,
    /// How many feed changes it stands for (more than 1 when the buffer merged some).
    pub coalesced: u32,
    /// The state fingerprint of `call`.
    state: String,
    /// The stream sequence once the stream part is done (a retry then only does the KV).
    stream_seq: Option<u64>,
    /// `GWS_CALLS`'s last sequence just before the feed session that produced this change
    /// connected, when known (see [`ChangeItem::in_session`]).
    floor: Option<u64>,
}

impl ChangeItem {
    /// A change received now.
    pub fn new(change: CallChange, call: Option<Arc<str>>) -> Self {
        let state = state_fingerprint(call.as_deref());
        ChangeItem {
            change,
            call,
            received: Instant::now(),
            coalesced: 1,
            state,
            stream_seq: None,
            floor: None,
        }
    }

    /// Marks the change as coming from a feed session that connected when `GWS_CALLS`'s
    /// last sequence was `floor`. Messages of the call after the floor were published while
    /// (or after) this session started, so they are what its catch-up and its first
    /// notifications may repeat: a call this replica meets for the first time in the
    /// session is looked for among them, from the floor on, and a catch-up found there
    /// leaves the session's position at the floor, because notifications queued on the
    /// server before the catch-up was read arrive after it and are older than it.
    pub fn in_session(mut self, floor: u64) -> Self {
        self.floor = Some(floor);
        self
    }

    /// The call's id.
    pub fn call_id(&self) -> &str {
        &self.change.call_id
    }

    /// `next` folded into this one: the net change from before this to after `next`.
    pub(crate) fn merge(&mut self, before: Option<&str>, next: ChangeItem) {
        self.change = change_between(
            &next.change.call_id,
            before,
            next.call.as_deref(),
            next.change.origin,
            next.change.notification_type.clone(),
        );
        self.call = next.call;
        self.state = next.state;
        self.coalesced += next.coalesced;
        self.stream_seq = None;
    }

    fn settled_at(&self, settle: Duration) -> Instant {
        self.received + settle
    }
}

/// What [`AgentWriter::write`] did with a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// This replica stored it at `seq`.
    Published {
        /// Its stream sequence.
        seq: u64,
    },
    /// It was already there (a peer, or an earlier try of this replica, stored it at `seq`).
    Duplicate {
        /// The sequence of the copy already stored.
        seq: u64,
    },
    /// The call's history moved past it and a newer change of the call is queued here:
    /// dropped, the newer one carries the net change.
    Superseded,
    /// Not yet: try again at `until` (a catch-up or heal settling, or a change the history
    /// does not hold while a peer may still be about to write it).
    Hold {
        /// When to try again.
        until: Instant,
    },
}

/// The last stream message of a call this replica has accounted for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Base {
    seq: u64,
    state: String,
}

impl Base {
    const EMPTY: Base = Base {
        seq: 0,
        state: String::new(),
    };
}

/// The KV entry of a call as last seen: its revision and the stream sequence it reflects.
#[derive(Clone, Copy, Debug)]
struct KvSeen {
    revision: u64,
    seq: u64,
}

#[derive(Debug, Default)]
struct Track {
    /// The floor of the feed session the track belongs to.
    floor: Option<u64>,
    base: Option<Base>,
    /// The state the feed's next change of this call is relative to.
    prev_state: Option<String>,
    kv: Option<KvSeen>,
}

struct Inner {
    js: Context,
    layout: Layout,
    layout_config: LayoutConfig,
    replica: String,
    settle: Duration,
    metrics: Metrics,
}

/// The JetStream side shared by every agent of a bridge (and by replicas in tests).
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("replica", &self.inner.replica)
            .field("settle", &self.inner.settle)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Makes the layout (if absent) and a publisher named `replica` (it goes into every
    /// message's `Gws-Replica` header). `settle`: see the [bridge docs](super#exactly-once-with-active-replicas).
    pub async fn new(
        js: Context,
        layout: &LayoutConfig,
        replica: impl Into<String>,
        settle: Duration,
        metrics: Metrics,
    ) -> Result<Self, BridgeError> {
        let layout_config = layout.clone();
        let layout = layout::ensure(&js, layout).await?;
        Ok(Publisher {
            inner: Arc::new(Inner {
                js,
                layout,
                layout_config,
                replica: replica.into(),
                settle,
                metrics,
            }),
        })
    }

    /// A writer for `agent`'s calls.
    pub fn agent(&self, agent: &str) -> Result<AgentWriter, BridgeError> {
        let token = escape_token(agent).ok_or_else(|| BridgeError::InvalidName {
            what: "agent name",
            reason: "it is empty".into(),
        })?;
        Ok(AgentWriter {
            publisher: self.clone(),
            agent: agent.to_owned(),
            token,
            tracks: HashMap::new(),
        })
    }

    /// Makes the stream and the bucket again (someone deleted them).
    pub(crate) async fn repair_layout(&self) -> Result<(), BridgeError> {
        layout::ensure(&self.inner.js, &self.inner.layout_config)
            .await
            .map(|_| ())
    }

    /// `GWS_CALLS`'s last sequence now: the floor of a feed session about to connect
    /// ([`ChangeItem::in_session`]).
    pub async fn stream_floor(&self) -> Result<u64, BridgeError> {
        let mut stream = self.inner.layout.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| BridgeError::js("read the stream's last sequence", e))?;
        Ok(info.state.last_sequence)
    }

    /// The calls of `agent` that the KV holds as live, from before `floor`, and that `live`
    /// (the feed's store after its catch-up) does not have: they ended while no replica
    /// followed the agent. Each comes back as a removal (a catch-up change) to write, so
    /// the KV and the stream do not show them live until the KV's `max_age`. Entries written
    /// after the floor are left alone: their calls may have started after the catch-up.
    pub async fn ended_calls(
        &self,
        agent: &str,
        floor: u64,
        live: impl Fn(&str) -> bool,
    ) -> Result<Vec<ChangeItem>, BridgeError> {
        use async_nats::jetstream::consumer::{push, DeliverPolicy, ReplayPolicy};
        use futures::StreamExt;
        let token = escape_token(agent).ok_or_else(|| BridgeError::InvalidName {
            what: "agent name",
            reason: "it is empty".into(),
        })?;
        let prefix = format!("{BUCKET_PREFIX}{token}.");
        let kv_stream = &self.inner.layout.kv_stream;
        let consumer = kv_stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.inner.js.client().new_inbox(),
                filter_subject: format!("{prefix}>"),
                headers_only: true,
                deliver_policy: DeliverPolicy::LastPerSubject,
                replay_policy: ReplayPolicy::Instant,
                ..Default::default()
            })
            .await
            .map_err(|e| BridgeError::js("list an agent's KV entries", e))?;
        let pending = consumer.cached_info().num_pending;
        let mut out = Vec::new();
        if pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| BridgeError::js("list an agent's KV entries", e))?;
        for _ in 0..pending {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
            let m = match next {
                Ok(Some(Ok(m))) => m.message,
                Ok(Some(Err(e))) => return Err(BridgeError::js("list an agent's KV entries", e)),
                _ => break,
            };
            let Some(headers) = m.headers.as_ref() else {
                continue;
            };
            let seq: u64 = header(headers, SEQ_HEADER)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if header(headers, "KV-Operation").is_some() || seq == 0 || seq > floor {
                continue;
            }
            let Some(call_id) = m
                .subject
                .strip_prefix(prefix.as_str())
                .and_then(unescape_token)
            else {
                continue;
            };
            if live(&call_id) {
                continue;
            }
            let text = kv_stream
                .direct_get_last_for_subject(m.subject.as_str())
                .await
                .ok()
                .and_then(|e| String::from_utf8(e.payload.to_vec()).ok());
            let change =
                change_between(&call_id, text.as_deref(), None, ChangeOrigin::CatchUp, None);
            out.push(ChangeItem::new(change, None).in_session(floor));
        }
        Ok(out)
    }

    /// The metrics it counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// Writes one agent's changes, one at a time; see the [bridge docs](super#exactly-once-with-active-replicas).
pub struct AgentWriter {
    publisher: Publisher,
    agent: String,
    token: String,
    tracks: HashMap<String, Track>,
}

impl std::fmt::Debug for AgentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentWriter")
            .field("agent", &self.agent)
            .field("calls", &self.tracks.len())
            .finish()
    }
}

enum Walk {
    Found(u64),
    NotFound(Base),
}

impl AgentWriter {
    /// The agent.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Writes `item` to the stream and the KV. `newer_queued` tells whether a newer change
    /// of the same call waits behind it. An error is transient (NATS unreachable, slow, the
    /// layout gone): call again with the same item, which keeps its message id.
    pub async fn write(
        &mut self,
        item: &mut ChangeItem,
        newer_queued: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Written, BridgeError> {
        let address = CallAddress::with_agent_token(&self.token, item.call_id())?;
        let written = match item.stream_seq {
            Some(seq) => Written::Duplicate { seq },
            None => match self.write_stream(&address, item, newer_queued).await? {
                w @ (Written::Published { seq } | Written::Duplicate { seq }) => {
                    item.stream_seq = Some(seq);
                    w
                }
                other => return Ok(other),
            },
        };
        let seq = item.stream_seq.unwrap_or_default();
        self.write_kv(&address, item, seq).await?;
        if item.call.is_none() {
            self.tracks.remove(item.call_id());
        }
        Ok(written)
    }

    async fn write_stream(
        &mut self,
        address: &CallAddress,
        item: &ChangeItem,
        newer_queued: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Written, BridgeError> {
        let p = self.publisher.inner.clone();
        let stream = &p.layout.stream;
        let call_id = item.call_id().to_owned();
        let track = self.tracks.entry(call_id.clone()).or_default();
        if track.floor != item.floor {
            // A new feed session: what this replica knew of the call may be stale.
            *track = Track {
                floor: item.floor,
                ..Track::default()
            };
        }
        let catching_up = item.change.origin != ChangeOrigin::Notification;
        let mut base = match (track.base.clone(), item.floor) {
            (Some(base), _) if !catching_up || base.state != item.state => base,
            (Some(base), _) => {
                // A catch-up or heal that finds the call as it says: nothing new.
                return Ok(self.accounted(&call_id, base.seq, item, false));
            }
            (None, _) if item.change.new && !catching_up => Base::EMPTY,
            (None, Some(floor)) => {
                match walk(stream, &address.subject, floor, &item.state).await? {
                    Walk::Found(seq) => {
                        let written = self.accounted(&call_id, seq, item, false);
                        if catching_up {
                            // The session's notifications may still repeat steps before it.
                            let track = self.tracks.entry(call_id.clone()).or_default();
                            track.base = Some(Base {
                                seq: floor,
                                state: String::new(),
                            });
                        }
                        return Ok(written);
                    }
                    Walk::NotFound(last) if last.seq <= floor => {
                        // Nothing since the session started: the last message is the base.
                        if last.state == item.state {
                            return Ok(self.accounted(&call_id, last.seq, item, false));
                        }
                        let track = self.tracks.entry(call_id.clone()).or_default();
                        track.base = Some(last.clone());
                        last
                    }
                    Walk::NotFound(last) => {
                        // Peers wrote since the session started, not this state (yet).
                        let track = self.tracks.entry(call_id.clone()).or_default();
                        track.base = Some(Base {
                            seq: floor,
                            state: String::new(),
                        });
                        if newer_queued() {
                            track.prev_state = Some(item.state.clone());
                            return Ok(Written::Superseded);
                        }
                        let settled = item.settled_at(p.settle);
                        if Instant::now() < settled {
                            return Ok(Written::Hold { until: settled });
                        }
                        last
                    }
                }
            }
            (None, None) => {
                let last = last_of(stream, &address.subject).await?;
                if last.state == item.state {
                    return Ok(self.accounted(&call_id, last.seq, item, false));
                }
                track.base = Some(last.clone());
                last
            }
        };
        if catching_up {
            if newer_queued() {
                // Notifications of the call wait behind it: they carry its state, step by
                // step (a session's first notifications can be older than its catch-up).
                let track = self.tracks.entry(call_id.clone()).or_default();
                track.prev_state = Some(item.state.clone());
                return Ok(Written::Superseded);
            }
            if Instant::now() < item.settled_at(p.settle) {
                return Ok(Written::Hold {
                    until: item.settled_at(p.settle),
                });
            }
        }
        let mut walks = 0;
        loop {
            let prev_state = self.tracks.get(&call_id).and_then(|t| t.prev_state.clone());
            let change = self.change_over(address, &base, prev_state, item).await;
            let payload = payload(&self.agent, &change, item.coalesced);
            let id = format!("{}:{}:{}", address.key, base.seq, item.state);
            let msg = PublishMessage::build()
                .payload(Bytes::from(payload))
                .message_id(&id)
                .expected_last_subject_sequence(base.seq)
                .header(STATE_HEADER, item.state.as_str())
                .header(REPLICA_HEADER, p.replica.as_str());
            let started = Instant::now();
            let ack = match p.js.send_publish(address.subject.clone(), msg).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) => {
                    p.metrics.observe_publish(started.elapsed());
                    let published = !ack.duplicate;
                    return Ok(self.accounted(&call_id, ack.sequence, item, published));
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    walks += 1;
                    match walk(stream, &address.subject, base.seq, &item.state).await? {
                        Walk::Found(seq) => return Ok(self.accounted(&call_id, seq, item, false)),
                        Walk::NotFound(last) => {
                            let track = self.tracks.entry(call_id.clone()).or_default();
                            track.base = Some(last.clone());
                            if newer_queued() {
                                track.prev_state = Some(item.state.clone());
                                return Ok(Written::Superseded);
                            }
                            let settled = item.settled_at(p.settle);
                            if Instant::now() < settled || walks > 3 {
                                return Ok(Written::Hold {
                                    until: settled.max(Instant::now() + p.settle),
                                });
                            }
                            base = last;
                        }
                    }
                }
                Err(e) => {
                    let missing = e.kind() == PublishErrorKind::StreamNotFound;
                    return Err(BridgeError::JetStream {
                        op: "publish",
                        reason: e.to_string(),
                        missing,
                    });
                }
            }
        }
    }

    /// The change to publish over `base`: the feed's, when it is relative to the state at
    /// `base`; else the change from the call as the KV holds it at `base` (a replica that
    /// joined mid-call, or whose history differs), so each message of a subject describes
    /// the step from the message before it.
    async fn change_over(
        &self,
        address: &CallAddress,
        base: &Base,
        prev_state: Option<String>,
        item: &ChangeItem,
    ) -> CallChange {
        let c = &item.change;
        if base.seq == 0 {
            if c.new || item.call.is_none() {
                return c.clone();
            }
            return change_between(
                &c.call_id,
                None,
                item.call.as_deref(),
                c.origin,
                c.notification_type.clone(),
            );
        }
        let relative = match &prev_state {
            Some(prev) => *prev == base.state,
            None => false,
        };
        if relative {
            return c.clone();
        }
        match kv_text_at(
            &self.publisher.inner.layout.kv_stream,
            &address.key,
            base.seq,
        )
        .await
        {
            Some(before) => change_between(
                &c.call_id,
                Some(&before),
                item.call.as_deref(),
                c.origin,
                c.notification_type.clone(),
            ),
            None => c.clone(),
        }
    }

    fn accounted(
        &mut self,
        call_id: &str,
        seq: u64,
        item: &ChangeItem,
        published: bool,
    ) -> Written {
        let track = self.tracks.entry(call_id.to_owned()).or_default();
        track.base = Some(Base {
            seq,
            state: item.state.clone(),
        });
        track.prev_state = Some(item.state.clone());
        if published {
            Written::Published { seq }
        } else {
            Written::Duplicate { seq }
        }
    }

    /// Writes the KV entry for the stream message at `seq`, unless it already reflects `seq`
    /// or a later one.
    async fn write_kv(
        &mut self,
        address: &CallAddress,
        item: &ChangeItem,
        seq: u64,
    ) -> Result<(), BridgeError> {
        let p = self.publisher.inner.clone();
        let subject = format!("{BUCKET_PREFIX}{}", address.key);
        let mut seen = self.tracks.get(item.call_id()).and_then(|t| t.kv);
        loop {
            let current = match seen {
                Some(s) => s,
                None => kv_last(&p.layout.kv_stream, &subject).await?,
            };
            if current.seq >= seq {
                self.remember_kv(item.call_id(), current);
                return Ok(());
            }
            let mut msg = PublishMessage::build()
                .expected_last_subject_sequence(current.revision)
                .header(SEQ_HEADER, seq.to_string());
            msg = match item.call.as_deref() {
                Some(text) => msg.payload(Bytes::copy_from_slice(text.as_bytes())),
                None => msg.header("KV-Operation", "DEL"),
            };
            let ack = match p.js.send_publish(subject.clone(), msg).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match ack {
                Ok(ack) => {
                    p.metrics.inner.kv_writes.inc();
                    self.remember_kv(
                        item.call_id(),
                        KvSeen {
                            revision: ack.sequence,
                            seq,
                        },
                    );
                    return Ok(());
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    p.metrics.inner.kv_conflicts.inc();
                    seen = None;
                }
                Err(e) => {
                    if let Some(t) = self.tracks.get_mut(item.call_id()) {
                        // The write may land later: read before the next try.
                        t.kv = None;
                    }
                    let missing = e.kind() == PublishErrorKind::StreamNotFound;
                    return Err(BridgeError::JetStream {
                        op: "KV write",
                        reason: e.to_string(),
                        missing,
                    });
                }
            }
        }
    }

    fn remember_kv(&mut self, call_id: &str, seen: KvSeen) {
        if let Some(t) = self.tracks.get_mut(call_id) {
            t.kv = Some(seen);
        }
    }
}

/// The message payload: `{"agent":"<agent>", <the change's fields>}`, plus
/// `"coalesced":<n>` when it stands for several feed changes.
pub(crate) fn payload(agent: &str, change: &CallChange, coalesced: u32) -> Vec<u8> {
    let body = serde_json::to_vec(change).unwrap_or_else(|_| b"{}".to_vec());
    let mut out = Vec::with_capacity(body.len() + agent.len() + 32);
    out.extend_from_slice(b"{\"agent\":");
    // A string always serializes.
    let _ = serde_json::to_writer(&mut out, agent);
    if coalesced > 1 {
        out.extend_from_slice(format!(",\"coalesced\":{coalesced}").as_bytes());
    }
    match body.get(1..) {
        Some(rest) if rest.len() > 1 => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        _ => out.push(b'}'),
    }
    out
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.as_str())
}

/// The subject's last message, or [`Base::EMPTY`].
async fn last_of(stream: &Stream, subject: &str) -> Result<Base, BridgeError> {
    match stream.direct_get_last_for_subject(subject).await {
        Ok(m) => Ok(Base {
            seq: m.sequence,
            state: header(&m.headers, STATE_HEADER)
                .unwrap_or_default()
                .to_owned(),
        }),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(Base::EMPTY),
        Err(e) => Err(BridgeError::js("read the last message of a call", e)),
    }
}

/// Reads the subject's messages after `after`, looking for one with `state`.
async fn walk(
    stream: &Stream,
    subject: &str,
    after: u64,
    state: &str,
) -> Result<Walk, BridgeError> {
    let mut last = Base::EMPTY;
    let mut seq = after;
    for _ in 0..MAX_WALK {
        match stream
            .direct_get_next_for_subject(subject, Some(seq + 1))
            .await
        {
            Ok(m) => {
                let s = header(&m.headers, STATE_HEADER).unwrap_or_default();
                if s == state {
                    return Ok(Walk::Found(m.sequence));
                }
                seq = m.sequence;
                last = Base {
                    seq: m.sequence,
                    state: s.to_owned(),
                };
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(BridgeError::js("read a call's history", e)),
        }
    }
    if last.seq == 0 {
        // Refused, yet nothing after the base: the base itself was wrong (purged, say).
        last = last_of(stream, subject).await?;
    }
    Ok(Walk::NotFound(last))
}

/// The KV entry of `subject`: its revision and `Gws-Seq` (0 when absent or not written by a
/// bridge); revision 0 when there is none.
async fn kv_last(kv_stream: &Stream, subject: &str) -> Result<KvSeen, BridgeError> {
    match kv_stream.direct_get_last_for_subject(subject).await {
        Ok(m) => Ok(KvSeen {
            revision: m.sequence,
            seq: header(&m.headers, SEQ_HEADER)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        }),
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(KvSeen {
            revision: 0,
            seq: 0,
        }),
        Err(e) => Err(BridgeError::js("read a KV entry", e)),
    }
}

/// The call text the KV holds for `key`, if it reflects stream sequence `seq`.
async fn kv_text_at(kv_stream: &Stream, key: &str, seq: u64) -> Option<String> {
    let m = kv_stream
        .direct_get_last_for_subject(format!("{BUCKET_PREFIX}{key}"))
        .await
        .ok()?;
    let reflects = header(&m.headers, SEQ_HEADER).and_then(|s| s.parse::<u64>().ok()) == Some(seq);
    if !reflects || header(&m.headers, "KV-Operation").is_some() {
        return None;
    }
    String::from_utf8(m.payload.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str) -> CallChange {
        change_between(
            id,
            None,
            Some(r#"{"id":"c1","state":"Ringing"}"#),
            ChangeOrigin::Notification,
            None,
        )
    }

    #[test]
    fn a_payload_should_be_the_change_with_the_agent_first() {
        let p = payload("jdoe@x", &change("c1"), 1);
        let text = String::from_utf8(p).unwrap();
        assert!(
            text.starts_with(r#"{"agent":"jdoe@x","callId":"c1","#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["new"], true);
        assert!(v.get("coalesced").is_none());
        let p = payload("a", &change("c1"), 3);
        let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v["coalesced"], 3);
    }

    #[test]
    fn merging_should_give_the_net_change() {
        let a = r#"{"id":"c1","state":"Ringing"}"#;
        let b = r#"{"id":"c1","state":"Established","userData":{"K":"1"}}"#;
        let c = r#"{"id":"c1","state":"Established","userData":{"K":"2"}}"#;
        let mut first = ChangeItem::new(
            change_between("c1", Some(a), Some(b), ChangeOrigin::Notification, None),
            Some(b.into()),
        );
        let second = ChangeItem::new(
            change_between("c1", Some(b), Some(c), ChangeOrigin::Notification, None),
            Some(c.into()),
        );
        first.merge(Some(a), second);
        assert_eq!(first.coalesced, 2);
        assert_eq!(first.state, state_fingerprint(Some(c)));
        let st = first.change.state.as_ref().unwrap();
        assert_eq!(st.to, Some(gws_cometd::gws::CallState::Established));
        assert_eq!(first.change.user_data.added.len(), 1);
    }
}
