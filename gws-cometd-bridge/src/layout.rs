//! The JetStream layout: the stream `GWS_CALLS` and the KV bucket `gws_calls`, made when
//! absent.
//!
//! | what | name | settings |
//! |---|---|---|
//! | stream | `GWS_CALLS` | subjects `gws.calls.>`; limits retention, file storage, discard old; every message of a subject kept (`max_messages_per_subject: -1`); `max_age` (default 7 days); `duplicate_window` (default 10 min); `allow_direct` (the bridge reads a subject's last and next messages) |
//! | KV bucket | `gws_calls` (stream `KV_gws_calls`, subjects `$KV.gws_calls.>`) | history 1, file storage, `max_age` (default 1 day: entries of calls whose end was never seen expire) |
//!
//! An existing stream or bucket is used as it is (retention is the operator's choice), but
//! a stream without `allow_direct` is refused: the bridge's protocol reads through it.

use std::time::Duration;

use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::Context;

use super::error::BridgeError;

/// The stream every change goes to.
pub const STREAM: &str = "GWS_CALLS";
/// The subjects of [`STREAM`].
pub const SUBJECTS: &str = "gws.calls.>";
/// The KV bucket of the latest call snapshots.
pub const BUCKET: &str = "gws_calls";
/// The stream behind [`BUCKET`].
pub(crate) const BUCKET_STREAM: &str = "KV_gws_calls";
/// The subject prefix of [`BUCKET`]'s keys.
pub(crate) const BUCKET_PREFIX: &str = "$KV.gws_calls.";

/// Retention of what the bridge creates (ignored for a stream or bucket that exists).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutConfig {
    /// How long changes stay in `GWS_CALLS` (default 7 days).
    pub stream_max_age: Duration,
    /// How long JetStream remembers a `Nats-Msg-Id` (default 10 minutes).
    pub duplicate_window: Duration,
    /// How long a KV entry lives without being written (default 1 day).
    pub kv_max_age: Duration,
    /// Copies of each (1 for a single server; 3 on a cluster).
    pub replicas: usize,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        LayoutConfig {
            stream_max_age: Duration::from_secs(7 * 24 * 3600),
            duplicate_window: Duration::from_secs(600),
            kv_max_age: Duration::from_secs(24 * 3600),
            replicas: 1,
        }
    }
}

impl LayoutConfig {
    /// The stream's configuration as the bridge creates it.
    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![SUBJECTS.to_owned()],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            max_age: self.stream_max_age,
            duplicate_window: self.duplicate_window.min(self.stream_max_age),
            max_messages_per_subject: -1,
            allow_direct: true,
            num_replicas: self.replicas.max(1),
            description: Some("gws-cometd bridge: every call change, per agent and call".into()),
            ..Default::default()
        }
    }

    /// The configuration of the bucket's stream (`KV_gws_calls`) as the bridge creates
    /// it: what a KV bucket is (one subject per key, rollups, no deletes through the stream
    /// API, direct get), written out so that making it needs no account-info request, whose
    /// nats-server 2.9 reply the NATS client cannot read.
    pub fn kv_stream_config(&self) -> stream::Config {
        stream::Config {
            name: BUCKET_STREAM.to_owned(),
            subjects: vec![format!("{BUCKET_PREFIX}>")],
            description: Some("gws-cometd bridge: the latest snapshot of every call".into()),
            max_messages_per_subject: 1,
            max_age: self.kv_max_age,
            storage: StorageType::File,
            discard: DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: self.replicas.max(1),
            ..Default::default()
        }
    }
}

/// The handles the bridge writes through.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub stream: stream::Stream,
    pub kv_stream: stream::Stream,
}

/// Gets or creates the stream and the bucket's stream. A layout the bridge cannot work with
/// is [`BridgeError::Layout`] (the operator must act; retrying cannot help); a request that
/// failed is [`BridgeError::JetStream`] (retried).
pub(crate) async fn ensure(js: &Context, config: &LayoutConfig) -> Result<Layout, BridgeError> {
    Ok(Layout {
        stream: get_or_create(js, config.stream_config(), "stream").await?,
        kv_stream: get_or_create(js, config.kv_stream_config(), "KV bucket").await?,
    })
}

/// The stream `config` names, created with `config` when absent, checked for direct get.
async fn get_or_create(
    js: &Context,
    config: stream::Config,
    what: &'static str,
) -> Result<stream::Stream, BridgeError> {
    let name = config.name.clone();
    let mut stream = match js.get_stream(&name).await {
        Ok(s) => s,
        Err(_) => match js.create_stream(config).await {
            Ok(s) => {
                tracing::info!(stream = %name, "created the {what}");
                s
            }
            // Another replica may have created it meanwhile.
            Err(create) => js.get_stream(&name).await.map_err(|_| {
                BridgeError::js("layout", format!("cannot create {what} {name}: {create}"))
            })?,
        },
    };
    let info = stream
        .info()
        .await
        .map_err(|e| BridgeError::js("layout", format!("cannot read {what} {name}: {e}")))?;
    if !info.config.allow_direct {
        return Err(BridgeError::Layout(format!(
            "{what} {name} exists without allow_direct; the bridge reads through direct get \
             (nats stream edit {name} --allow-direct)"
        )));
    }
    Ok(stream)
}
