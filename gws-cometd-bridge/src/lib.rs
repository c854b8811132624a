//! The bridge (feature `bridge`): many agents' [`CallFeed`](gws_cometd::gws::CallFeed)s in one
//! process, every call change into NATS JetStream, with active replicas and shards.
//!
//! | module | what it is |
//! |---|---|
//! | [`names`] | the `=XX` escaping of agent names and call ids into subject tokens; subjects, KV keys; the shard hash |
//! | [`agents`] | the agents file (`[api=v2|v3] user:password` per line) as [`Agent`]s, and [`Shard`]s |
//! | [`layout`] | the stream `GWS_CALLS` and the KV bucket `gws_calls`, made when absent |
//! | `protocol` | the per-call write protocol below as a pure decision, one unit test per guarantee |
//! | `writer` | [`Publisher`] and [`AgentWriter`]: the protocol's publishes |
//! | `reads` | the protocol's reads of the stream and the KV |
//! | `queue` | one agent's bounded buffer, coalesced per call beyond the bound |
//! | `agent` | one agent's two tasks: feed → buffer, buffer → JetStream |
//! | `source` | where the feed plugs in: one shared HTTP client, [`FeedEvent`](gws_cometd::gws::FeedEvent)s sorted for the bridge |
//! | [`metrics`] | the Prometheus registry |
//! | `http` | `/metrics` and `/healthz` |
//! | `runner` | [`Bridge`] and [`BridgeConfig`] |
//!
//! # JetStream layout
//!
//! - **Stream `GWS_CALLS`**, subjects `gws.calls.<agent>.<call id>` (each an escaped token,
//!   see [`names`]). Each message is one change: the JSON object `watch` prints (a
//!   [`CallChange`](gws_cometd::gws::CallChange): `callId`, `origin` for catch-up and heal
//!   changes, `notificationType`, `new`, `state`, `userData`, `removed`) with `"agent"` first,
//!   and `"coalesced": n` when it stands for n changes merged while NATS was away. Headers:
//!   `Nats-Msg-Id: <key>:<base>:<state>`, `Gws-State` (a fingerprint of the call after the change:
//!   the first 16 hex digits of a SHA-256 over its members but `duration`, which the
//!   server's list renders afresh; or `removed`), `Gws-Replica`.
//!   Limits retention, every message of a subject kept, 7 days, duplicate window 10 minutes
//!   (see [`LayoutConfig`]).
//! - **KV bucket `gws_calls`**, key `<agent>.<call id>` (escaped; both tokens, because the
//!   two agents of one internal call see the same call id): the latest call object exactly
//!   as GWS sent it; a delete marker when the call completes (or left the server's list).
//!   Each entry carries the header `Gws-Seq`, the `GWS_CALLS` sequence it reflects. Any
//!   service reads the current state of a call with `kv.get(key)` and follows changes with
//!   `kv.watch("<agent>.>")`. History 1, 1 day.
//!
//! # Exactly once with active replicas
//!
//! Two (or more) bridges follow the same agents, each with its own GWS sessions, and both
//! write. Per call, the subject's messages form **one linear history**:
//!
//! - Every publish carries `Nats-Expected-Last-Subject-Sequence: <base>`, the sequence of
//!   the subject's last message as the writer knows it. JetStream stores at most one
//!   message after a given base, so two writers (or a writer's timed-out try and its retry,
//!   or a try the client queued while disconnected and sent after reconnecting) never both
//!   land: the loser is refused (`WrongLastSequence`) and reads the subject after its base.
//!   If it finds its change's state there, a peer (or its own earlier try) stored it: it is
//!   counted as a duplicate suppressed and not published. The `Nats-Msg-Id` is
//!   deterministic (`<key>:<base>:<state>`), so servers that check ids before expectations
//!   (2.9) give the same answer as a duplicate.
//! - A replica that starts, or restarts, mid-call has no base: its catch-up changes (and
//!   any first change of a call it meets mid-life) are held against the stream, not
//!   against its own empty store. Before each feed session connects the bridge reads
//!   `GWS_CALLS`'s last sequence, the session's *floor*; a call met for the first time in
//!   the session is looked for among its messages after the floor (what peers wrote while
//!   the session started), else compared with its last message: the same state → already
//!   announced, nothing published. A catch-up found after the floor leaves the session's
//!   position at the floor, so the session's first notifications are matched from there
//!   too. A catch-up or heal change that is not there is dropped when notifications of the
//!   call already wait behind it (they carry the state step by step), and otherwise
//!   published only once it is `settle` old (default 1 s), so a live peer that is a little
//!   behind gets to publish the individual steps the catch-up would jump over; the peer's
//!   steps are then found, and the catch-up is a duplicate. After its catch-up, a session
//!   also looks for the agent's calls the KV still shows live (written before its floor)
//!   that GWS no longer lists: they ended while no replica followed the agent, and are
//!   written as removals (`"origin":"catchUp","removed":true`, the KV entry deleted).
//! - When a change's state is not in the history after its base (the peer saw something
//!   this replica missed, or the reverse), it is dropped as superseded if a newer change of
//!   the call waits behind it here, else published on top of the subject's last message
//!   once it is `settle` old. A change published over a state its replica did not see
//!   itself is computed again from the KV's call at that base, so each message describes
//!   the step from the message before it on the subject.
//! - **The KV never goes back.** A KV entry is written only with the revision it replaces
//!   (CAS), and only when the `Gws-Seq` it would carry is greater than the one there. The
//!   stream sequence is the ordering key: a lagging replica that wants to write an older
//!   state (A → B → A: content comparison alone would take the late B for new) finds a
//!   greater `Gws-Seq` and leaves the entry alone. Every replica that accounts for a message
//!   (published or found) makes sure the KV reflects it, so a writer that died between its
//!   stream publish and its KV write is covered by its peer.
//!
//! **What is guaranteed** (for replicas that receive the same notifications of a call, in
//! GWS's order, and a stream that keeps the call's messages). Each bullet is a unit test of
//! the write protocol without NATS, named after it (`protocol::tests::guaranteed::*`):
//!
//! - **No change is stored twice** (`no_change_is_stored_twice`), by any number of
//!   replicas, across NATS reconnects, server restarts and retries: the
//!   expected-last-subject-sequence does not depend on the duplicate window (the id adds a
//!   second guard within it);
//! - **every change received is in the stream** (`every_change_received_is_in_the_stream`)
//!   once the replica that received it has written it (within its buffer bound; see below)
//!   or found it there; killing one replica loses nothing the other one receives;
//! - **the KV never goes back** (`the_kv_never_goes_back`): the KV entry of a call is the
//!   call as of the newest message of its subject that any replica has finished writing,
//!   and never moves back to an older one.
//!
//! **What is not** (`protocol::tests::not_guaranteed::*`):
//!
//! - **a change only a killed replica received** (`a_change_only_a_killed_replica_received`;
//!   GWS sent it before the other's session existed) is in the stream only if the dead
//!   replica wrote it: the survivor's catch-up then publishes the net state;
//! - **replicas whose views differ** (`replicas_whose_views_differ`; one had a gap the
//!   other did not, both coalesced under load) keep one history per call, that of whichever
//!   wrote first, and a step only the other saw can be dropped as superseded (counted); a
//!   replica more than `settle` behind its peer can have its catch-up win over the peer's
//!   individual steps;
//! - **a state GWS never notified** (`a_state_gws_never_notified`; a gap) is only as good
//!   as the feed's heal;
//! - **changes beyond the buffer bound** (`changes_beyond_the_buffer_bound`) of an agent
//!   while NATS is unreachable are merged per call (counted as
//!   `gws_bridge_changes_coalesced_total`, logged), never dropped silently; what is still
//!   buffered when a shutdown's drain time runs out is counted as unwritten.
//!
//! # Faults
//!
//! NATS unreachable or slow: each agent's buffer holds up to
//! [`BridgeConfig::buffer_per_agent`] changes, in order; writes are retried with backoff,
//! each with the same message id and expectation. Past the bound, changes are merged per
//! call (the first waiting change of a call stays, the rest become one net change). A
//! restarted nats-server is reconnected to within a second and the buffers drain.
//!
//! # Shards and replicas
//!
//! `--shard K/N` (counted from 0) follows the agents whose name hashes to K
//! ([`names::shard_of`]: SHA-256 of the name, first 8 bytes big-endian, mod N). N
//! processes with `0/N` … `N-1/N` split one agents file; run two of each for replicas.

mod agent;
pub mod agents;
mod error;
mod http;
pub mod layout;
pub mod metrics;
pub mod names;
mod protocol;
mod queue;
mod reads;
mod runner;
mod source;
mod writer;

pub use agents::{Agent, AgentsFile, Permissions, Shard};
pub use error::BridgeError;
pub use layout::{LayoutConfig, BUCKET, STREAM, SUBJECTS};
pub use metrics::{Metrics, MetricsSnapshot, SessionState};
pub use names::{escape_token, shard_of, state_fingerprint, unescape_token, CallAddress};
pub use runner::{default_replica_name, Bridge, BridgeConfig, ShutdownReport};
pub use source::GwsApi;
pub use writer::{
    AgentWriter, ChangeItem, Publisher, Written, REPLICA_HEADER, SEQ_HEADER, STATE_HEADER,
};
