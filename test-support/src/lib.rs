//! What the workspace's integration tests share: real peers started on loopback, a fault
//! proxy, log capture, and one bounded wait.
//!
//! | module | what it is |
//! |---|---|
//! | [`nats`] | a real `nats-server -js` child process, installed once from PyPI when missing |
//! | [`cometd_node`] | the official CometD Node.js server (npm), driven over its stdin |
//! | [`fault_proxy`], [`fault_plan`] | a TCP proxy between a client and a server that cuts, stalls and delays on purpose |
//! | [`log_capture`] | every log line of the test process, captured in memory |
//! | [`wait`] | the one bounded wait: a test fails instead of hanging |
//!
//! Every peer binds 127.0.0.1 on a free port and stops when its handle is dropped. Under
//! `CI=true` a peer that cannot be installed or started is an error, never a skip.

use std::fmt;

pub mod adversarial;
pub mod cometd_node;
pub mod fault_plan;
pub mod fault_proxy;
pub mod log_capture;
pub mod nats;
pub mod wait;

pub use wait::{within, within_real};

/// What went wrong while installing, starting or driving a peer.
#[derive(Debug)]
pub struct HarnessError(String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

/// Result of the harness operations.
pub type Result<T> = std::result::Result<T, HarnessError>;

fn err(msg: impl Into<String>) -> HarnessError {
    HarnessError(msg.into())
}

/// True under `CI=true` (or `CI=1`), where a peer that cannot start is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The workspace root (where `package.json` and `node_modules` are).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
