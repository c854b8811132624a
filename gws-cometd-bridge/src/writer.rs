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
//!    message, or in a feed session with a floor the messages after the floor: the
//!    change's state there → already there, done (`without_a_base_the_last_message_decides`,
//!    `a_catch_up_found_after_the_floor_leaves_the_position_at_the_floor`; a new session
//!    forgets the old base: `a_new_session_starts_from_what_the_stream_holds`);
//! 2. catch-up and heal changes wait until they are `settle` old before their first publish
//!    (a live peer that is a little behind gets to publish the steps they jump over)
//!    (`catch_up_and_heal_changes_wait_until_settled`);
//! 3. publish with `Nats-Expected-Last-Subject-Sequence: <base>` and
//!    `Nats-Msg-Id: <key>:<base>:<state>`. At most one message can follow a given base, so
//!    peers (and this replica's own timed-out tries) never fork or repeat the history
//!    (`a_publish_names_its_base`);
//! 4. refused as `WrongLastSequence` → walk the subject after the base: a message with the
//!    change's state → a peer (or an earlier try) wrote it, done. None → the history moved
//!    on without it: dropped as superseded when a newer change of the call is queued here,
//!    held until `settle` old otherwise, then published on top of the subject's last
//!    (`a_refused_publish_walks_the_history_after_its_base`); refused more than
//!    [`MAX_REFUSALS`](super::protocol::MAX_REFUSALS) times in a row → held for `settle`
//!    (`a_change_refused_again_and_again_waits`);
//! 5. the KV entry is written only forward: each carries `Gws-Seq`, the stream sequence it
//!    reflects, and is replaced (CAS on its revision) only by a newer one
//!    (`the_kv_is_written_only_forward`).
//!
//! Every decision in these steps is made by the pure [`protocol`](super::protocol); the
//! tests named above are its unit tests, `protocol::tests::steps::*`, without NATS. This
//! module does the publishes its [`Step`]s ask for (the reads are in
//! [`reads`](super::reads)) and hands the stream's answers back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use tokio::time::Instant;

use super::error::BridgeError;
use super::layout::{self, Layout, LayoutConfig, BUCKET_PREFIX};
use super::metrics::Metrics;
use super::names::{escape_token, state_fingerprint, CallAddress};
use super::protocol::{
    basis, kv_step, message_id, Answer, Base, Basis, Facts, KvSeen, KvStep, Now, Outcome, Step,
    StreamWrite, Track,
};
use super::reads::{ended_before, kv_last, kv_text_at, last_of, walk};
use gws_cometd::gws::store::{change_between, CallChange, ChangeOrigin};

/// Header: the state fingerprint of the call after a stream message (16 hex digits, or
/// `removed`).
pub const STATE_HEADER: &str = "Gws-State";
/// Header: the replica that published a stream message.
pub const REPLICA_HEADER: &str = "Gws-Replica";
/// Header: the `GWS_CALLS` sequence a KV entry reflects.
pub const SEQ_HEADER: &str = "Gws-Seq";

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
        use futures::StreamExt;
        let token = escape_token(agent).ok_or_else(|| BridgeError::InvalidName {
            what: "agent name",
            reason: "it is empty".into(),
        })?;
        let prefix = format!("{BUCKET_PREFIX}{token}.");
        let Some(entries) = self.kv_entries(&prefix).await? else {
            return Ok(Vec::new());
        };
        let mut entries = std::pin::pin!(entries);
        let mut out = Vec::new();
        while let Some(m) = entries.next().await {
            let m = m?;
            let Some(call_id) = ended_before(&m, &prefix, floor).filter(|id| !live(id)) else {
                continue;
            };
            let text = self
                .inner
                .layout
                .kv_stream
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

    /// The headers of the last KV entry of every subject under `prefix`, as they are now;
    /// `None` when there is none. Each item is read within 5 s, or the list ends there.
    async fn kv_entries(
        &self,
        prefix: &str,
    ) -> Result<
        Option<impl futures::Stream<Item = Result<async_nats::Message, BridgeError>>>,
        BridgeError,
    > {
        use async_nats::jetstream::consumer::{push, DeliverPolicy, ReplayPolicy};
        use futures::StreamExt;
        let consumer = self
            .inner
            .layout
            .kv_stream
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
        if pending == 0 {
            return Ok(None);
        }
        let messages = consumer
            .messages()
            .await
            .map_err(|e| BridgeError::js("list an agent's KV entries", e))?;
        let timed = futures::stream::unfold(messages, |mut messages| async move {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
            match next {
                Ok(Some(Ok(m))) => Some((Ok(m.message), messages)),
                Ok(Some(Err(e))) => Some((
                    Err(BridgeError::js("list an agent's KV entries", e)),
                    messages,
                )),
                _ => None,
            }
        });
        Ok(Some(timed.take(pending as usize)))
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
            // A retry after the KV write failed: the stream part is done.
            Some(seq) => Written::Duplicate { seq },
            None => match self.write_stream(&address, item, newer_queued).await? {
                Outcome::Accounted { seq, published } => {
                    item.stream_seq = Some(seq);
                    if published {
                        Written::Published { seq }
                    } else {
                        Written::Duplicate { seq }
                    }
                }
                Outcome::Superseded => return Ok(Written::Superseded),
                Outcome::Hold { until, reason } => {
                    tracing::debug!(agent = %self.agent, call = item.call_id(), ?reason, "change held");
                    return Ok(Written::Hold { until });
                }
            },
        };
        let seq = item.stream_seq.unwrap_or_default();
        self.write_kv(&address, item, seq).await?;
        if item.call.is_none() {
            self.tracks.remove(item.call_id());
        }
        Ok(written)
    }

    /// Runs the [`protocol`]'s steps for `item`: each read or publish it asks for, and its
    /// answer back.
    async fn write_stream(
        &mut self,
        address: &CallAddress,
        item: &ChangeItem,
        newer_queued: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Outcome, BridgeError> {
        let p = self.publisher.inner.clone();
        let facts = Facts {
            state: &item.state,
            catching_up: item.change.origin != ChangeOrigin::Notification,
            new: item.change.new,
            floor: item.floor,
            settled_at: item.settled_at(p.settle),
        };
        let now = || Now {
            now: Instant::now(),
            newer_queued: newer_queued(),
            settle: p.settle,
        };
        let mut write = StreamWrite::default();
        let mut step = write.start(self.track(item.call_id()), &facts, now());
        loop {
            let answer = match step {
                Step::Done(outcome) => return Ok(outcome),
                Step::ReadLast => Answer::Last(last_of(&p.layout.stream, &address.subject).await?),
                Step::Walk { after } => Answer::Walked(
                    walk(&p.layout.stream, &address.subject, after, &item.state).await?,
                ),
                Step::Publish { base } => self.publish(address, item, &base).await?,
            };
            step = write.answer(self.track(item.call_id()), &facts, answer, now());
        }
    }

    fn track(&mut self, call_id: &str) -> &mut Track {
        self.tracks.entry(call_id.to_owned()).or_default()
    }

    /// Publishes `item` over `base`: stored, or refused because `base` is not the subject's
    /// last message any more.
    async fn publish(
        &self,
        address: &CallAddress,
        item: &ChangeItem,
        base: &Base,
    ) -> Result<Answer, BridgeError> {
        let p = &self.publisher.inner;
        let change = self.change_over(address, base, item).await;
        let payload = payload(&self.agent, &change, item.coalesced);
        let msg = PublishMessage::build()
            .payload(Bytes::from(payload))
            .message_id(message_id(&address.key, base.seq, &item.state))
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
                Ok(Answer::Stored {
                    seq: ack.sequence,
                    duplicate: ack.duplicate,
                })
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Answer::Refused),
            Err(e) => Err(publish_error("publish", &e)),
        }
    }

    /// The change to publish over `base` (see [`basis`]): the feed's, or the step from the
    /// call as the KV holds it at `base`, so each message of a subject describes the step
    /// from the message before it.
    async fn change_over(
        &self,
        address: &CallAddress,
        base: &Base,
        item: &ChangeItem,
    ) -> CallChange {
        let c = &item.change;
        let prev_state = self
            .tracks
            .get(item.call_id())
            .and_then(|t| t.prev_state.as_deref());
        let before = match basis(base, prev_state, c.new, item.call.is_none()) {
            Basis::AsFed => return c.clone(),
            Basis::FromNothing => None,
            Basis::FromKvAt(seq) => {
                let kv = &self.publisher.inner.layout.kv_stream;
                match kv_text_at(kv, &address.key, seq).await {
                    Some(before) => Some(before),
                    None => return c.clone(),
                }
            }
        };
        change_between(
            &c.call_id,
            before.as_deref(),
            item.call.as_deref(),
            c.origin,
            c.notification_type.clone(),
        )
    }

    /// Writes the KV entry for the stream message at `seq`, unless it already reflects `seq`
    /// or a later one ([`kv_step`]).
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
            let revision = match kv_step(seen, seq) {
                KvStep::Read => {
                    seen = Some(kv_last(&p.layout.kv_stream, &subject).await?);
                    continue;
                }
                KvStep::UpToDate(current) => {
                    self.remember_kv(item.call_id(), Some(current));
                    return Ok(());
                }
                KvStep::Write { revision } => revision,
            };
            let mut msg = PublishMessage::build()
                .expected_last_subject_sequence(revision)
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
                    let written = KvSeen {
                        revision: ack.sequence,
                        seq,
                    };
                    self.remember_kv(item.call_id(), Some(written));
                    return Ok(());
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    p.metrics.inner.kv_conflicts.inc();
                    seen = None;
                }
                Err(e) => {
                    // The write may land later: read before the next try.
                    self.remember_kv(item.call_id(), None);
                    return Err(publish_error("KV write", &e));
                }
            }
        }
    }

    fn remember_kv(&mut self, call_id: &str, seen: Option<KvSeen>) {
        if let Some(t) = self.tracks.get_mut(call_id) {
            t.kv = seen;
        }
    }
}

/// A publish error other than a refused expectation: transient, or the layout gone.
fn publish_error(
    op: &'static str,
    e: &async_nats::jetstream::context::PublishError,
) -> BridgeError {
    BridgeError::JetStream {
        op,
        reason: e.to_string(),
        missing: e.kind() == PublishErrorKind::StreamNotFound,
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
