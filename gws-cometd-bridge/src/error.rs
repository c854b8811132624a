//! [`BridgeError`]: what can stop the bridge from starting, and what a write to JetStream
//! ran into.

use std::path::PathBuf;

/// Why the bridge (or one of its parts) could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A name that has no NATS token (an empty agent name or call id).
    #[error("invalid {what}: {reason}")]
    InvalidName {
        /// What was named.
        what: &'static str,
        /// Why it cannot be used.
        reason: String,
    },
    /// The agents file could not be used. Never quotes a password.
    #[error("agents file {}: {reason}", path.display())]
    AgentsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number when it is one line.
        reason: String,
    },
    /// A `--shard K/N` that is not one.
    #[error("invalid shard {given:?}: {reason}")]
    InvalidShard {
        /// What was given.
        given: String,
        /// Why it is not a shard.
        reason: String,
    },
    /// The NATS URL or connection options were refused.
    #[error("NATS at {url}: {reason}")]
    Nats {
        /// The server URL (without credentials).
        url: String,
        /// Why.
        reason: String,
    },
    /// The stream or the KV bucket has a layout the bridge cannot work with: the operator
    /// must change it, retrying cannot help.
    #[error("JetStream layout: {0}")]
    Layout(String),
    /// The NATS server is older than the bridge needs.
    #[error(
        "NATS at {url}: nats-server {found} found, the bridge needs {needed} or later \
         (JetStream direct get)"
    )]
    UnsupportedServer {
        /// The server URL (without credentials).
        url: String,
        /// The version the server announced.
        found: String,
        /// The oldest version the bridge works with.
        needed: &'static str,
    },
    /// A JetStream request failed; retried with backoff by the bridge.
    #[error("JetStream {op}: {reason}")]
    JetStream {
        /// What was being done.
        op: &'static str,
        /// The failure.
        reason: String,
        /// Whether the stream (or bucket) is missing, so the layout must be made again.
        missing: bool,
    },
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint {addr}: {source}")]
    MetricsListen {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
    /// The GWS side refused the configuration (a bad URL, say).
    #[error(transparent)]
    Gws(#[from] gws_cometd::Error),
}

impl BridgeError {
    pub(crate) fn js(op: &'static str, e: impl std::fmt::Display) -> Self {
        BridgeError::JetStream {
            op,
            reason: e.to_string(),
            missing: false,
        }
    }

    /// True when the bridge cannot go on until an operator acts (an old server, a layout it
    /// cannot use): [`Bridge::failed`](crate::Bridge::failed) reports it.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            BridgeError::Layout(_) | BridgeError::UnsupportedServer { .. }
        )
    }

    /// True when the stream or bucket is missing (the bridge makes its layout again).
    pub fn is_missing_layout(&self) -> bool {
        matches!(self, BridgeError::JetStream { missing: true, .. })
    }
}
