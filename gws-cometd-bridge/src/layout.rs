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

use async_nats::jetstream::kv;
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

    /// The bucket's configuration as the bridge creates it.
    pub fn kv_config(&self) -> kv::Config {
        kv::Config {
            bucket: BUCKET.to_owned(),
            description: "gws-cometd bridge: the latest snapshot of every call".into(),
            history: 1,
            max_age: self.kv_max_age,
            storage: StorageType::File,
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

/// Gets or creates the stream and the bucket.
pub(crate) async fn ensure(js: &Context, config: &LayoutConfig) -> Result<Layout, BridgeError> {
    let layout = |e: String| BridgeError::Layout(e);
    let mut stream = match js.get_stream(STREAM).await {
        Ok(s) => s,
        Err(_) => match js.create_stream(config.stream_config()).await {
            Ok(s) => {
                tracing::info!(stream = STREAM, "created the stream");
                s
            }
            // Another replica may have created it meanwhile.
            Err(create) => js
                .get_stream(STREAM)
                .await
                .map_err(|_| layout(format!("cannot create stream {STREAM}: {create}")))?,
        },
    };
    let info = stream
        .info()
        .await
        .map_err(|e| layout(format!("cannot read stream {STREAM}: {e}")))?;
    if !info.config.allow_direct {
        return Err(layout(format!(
            "stream {STREAM} exists without allow_direct; the bridge reads through direct get \
             (nats stream edit {STREAM} --allow-direct)"
        )));
    }
    if js.get_key_value(BUCKET).await.is_err() {
        match js.create_key_value(config.kv_config()).await {
            Ok(_) => tracing::info!(bucket = BUCKET, "created the KV bucket"),
            Err(create) => {
                js.get_key_value(BUCKET)
                    .await
                    .map_err(|_| layout(format!("cannot create KV bucket {BUCKET}: {create}")))?;
            }
        }
    }
    let kv_stream = js
        .get_stream(BUCKET_STREAM)
        .await
        .map_err(|e| layout(format!("cannot read stream {BUCKET_STREAM}: {e}")))?;
    Ok(Layout { stream, kv_stream })
}
