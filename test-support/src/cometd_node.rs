//! Runs the official CometD Node.js server (npm `cometd-nodejs-server`, pinned by the
//! repository's `package.json`) as a child process on 127.0.0.1, and drives it through the
//! control API of `test-support/interop/cometd-server.js`.
//!
//!
//! When `node_modules/cometd-nodejs-server` is missing, `npm ci` runs once per test binary,
//! except under `CI=true`, where a missing install is an error: the peer must be installed by
//! the CI script, and a test that cannot start it fails instead of being skipped.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::{err, Result};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::{timeout, Instant};

/// How long the server may take to print `LISTENING <port>`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `npm ci` may take when the tests install the server themselves.
const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on every control request (a 20 000-message publish takes well under this).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a restart keeps retrying to bind the old port.
const REBIND_TIMEOUT: Duration = Duration::from_secs(10);

/// Server settings; `None` keeps the server's default (timeout 30 000 ms, interval 0 ms,
/// maxInterval 10 000 ms); `ack` is off by default.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// How long the server holds a `/meta/connect`, in ms.
    pub timeout_ms: Option<u64>,
    /// The `interval` advice, in ms.
    pub interval_ms: Option<u64>,
    /// How long a session lives without a `/meta/connect`, in ms.
    pub max_interval_ms: Option<u64>,
    /// Register the package's `AcknowledgedMessagesExtension` (`--ack`): clients that ask
    /// for it get lost or cut connect replies redelivered.
    pub ack: bool,
}

/// A numbered run of server-side messages for [`CometdNode::publish_seq`].
#[derive(Debug, Clone, Copy)]
pub struct Numbered {
    /// The first `seq`.
    pub start: u64,
    /// How many messages (`seq` = `start`..`start + count`).
    pub count: usize,
    /// Bytes of each data object's JSON.
    pub size: usize,
    /// One message, by `seq`, of another size: `(seq, bytes)`.
    pub big: Option<(u64, usize)>,
}

/// What `GET /control/sessions` reports.
#[derive(Debug, Clone, Deserialize)]
pub struct Sessions {
    /// Number of live sessions.
    pub sessions: usize,
    /// Their client ids.
    pub ids: Vec<String>,
    /// Subscribers per channel.
    pub channels: HashMap<String, usize>,
    /// Sessions whose `/meta/connect` the server is holding now.
    pub held: usize,
    /// Delivery statistics since the server started.
    pub stats: DrainStats,
}

impl Sessions {
    /// Number of sessions subscribed to `channel`.
    pub fn subscribers(&self, channel: &str) -> usize {
        self.channels.get(channel).copied().unwrap_or(0)
    }
}

/// How the server emptied its session queues into replies.
#[derive(Debug, Clone, Deserialize)]
pub struct DrainStats {
    /// Replies that carried at least one queued message.
    pub drains: u64,
    /// Messages carried by those replies.
    pub messages: u64,
    /// The most messages in one reply.
    #[serde(rename = "maxBatch")]
    pub max_batch: u64,
}

/// A running `cometd-nodejs-server`; killed when dropped.
pub struct CometdNode {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    options: NodeOptions,
    http: reqwest::Client,
}

impl CometdNode {
    /// Starts the server with its default settings on a free port.
    pub async fn start() -> Result<Self> {
        Self::start_with(NodeOptions::default()).await
    }

    /// Starts the server with `options` on a free port.
    pub async fn start_with(options: NodeOptions) -> Result<Self> {
        ensure_installed().await?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(CONTROL_TIMEOUT)
            .build()
            .map_err(|e| err(format!("building the control HTTP client: {e}")))?;
        let (child, stdin, port) = spawn(0, &options).await?;
        Ok(Self {
            child,
            stdin: Some(stdin),
            port,
            options,
            http,
        })
    }

    /// The Bayeux endpoint, `http://127.0.0.1:PORT/cometd`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/cometd", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Publishes `count` messages `{"seq":i,"pad":"..."}` (i = 0..count, each data object
    /// `size` bytes of JSON) on `channel`, server-side, in order.
    pub async fn publish(&self, channel: &str, count: usize, size: usize) -> Result<()> {
        let url = self.control("publish");
        let query = [
            ("channel", channel.to_string()),
            ("count", count.to_string()),
            ("size", size.to_string()),
        ];
        let req = self.http.post(url).query(&query);
        let reply: serde_json::Value = self.send(req, "publish").await?;
        expect_count(&reply, "published", count)
    }

    /// Publishes the messages `{"seq":i,"pad":"..."}` that `run` describes on `channel`,
    /// server-side, in order, in one control request (the server publishes them without
    /// doing I/O in between).
    pub async fn publish_seq(&self, channel: &str, run: Numbered) -> Result<()> {
        let mut query = vec![
            ("channel", channel.to_string()),
            ("count", run.count.to_string()),
            ("size", run.size.to_string()),
            ("start", run.start.to_string()),
        ];
        if let Some((seq, bytes)) = run.big {
            query.push(("big", seq.to_string()));
            query.push(("bigSize", bytes.to_string()));
        }
        let req = self.http.post(self.control("publish")).query(&query);
        let reply: serde_json::Value = self.send(req, "publish").await?;
        expect_count(&reply, "published", run.count)
    }

    /// The server's effective settings, as `GET /control/options` reports them.
    pub async fn options(&self) -> Result<serde_json::Value> {
        let req = self.http.get(self.control("options"));
        self.send(req, "options").await
    }

    /// Publishes `data` once on `channel`, server-side.
    pub async fn publish_data(&self, channel: &str, data: &serde_json::Value) -> Result<()> {
        let req = self
            .http
            .post(self.control("publish"))
            .query(&[("channel", channel)])
            .header("content-type", "application/json")
            .body(data.to_string());
        let reply: serde_json::Value = self.send(req, "publish").await?;
        expect_count(&reply, "published", 1)
    }

    /// Removes every session, as an expiry would; the next request of each client gets
    /// `402::session_unknown`. A held `/meta/connect` is answered at once. Returns how many
    /// sessions were removed.
    pub async fn forget(&self) -> Result<usize> {
        let req = self.http.post(self.control("forget"));
        let reply: serde_json::Value = self.send(req, "forget").await?;
        reply
            .get("forgotten")
            .and_then(serde_json::Value::as_u64)
            .map(|n| n as usize)
            .ok_or_else(|| err(format!("forget: unexpected reply {reply}")))
    }

    /// Sessions, subscriptions per channel and delivery statistics.
    pub async fn sessions(&self) -> Result<Sessions> {
        let req = self.http.get(self.control("sessions"));
        self.send(req, "sessions").await
    }

    /// The data of every message clients published on `channel`, in arrival order.
    pub async fn received(&self, channel: &str) -> Result<Vec<serde_json::Value>> {
        let req = self
            .http
            .get(self.control("received"))
            .query(&[("channel", channel)]);
        self.send(req, "received").await
    }

    /// Waits until at least `n` sessions are subscribed to `channel`, for at most `limit`.
    pub async fn wait_for_subscribers(
        &self,
        channel: &str,
        n: usize,
        limit: Duration,
    ) -> Result<Sessions> {
        let what = format!("{n} subscriber(s) to {channel}");
        self.wait_for(&what, limit, |s| s.subscribers(channel) >= n)
            .await
    }

    /// Polls `/control/sessions` every 20 ms until `ready` holds, for at most `limit`; the
    /// error names `what` was awaited and the server's last answer.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&Sessions) -> bool,
    ) -> Result<Sessions> {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.sessions().await?;
            if ready(&s) {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(err(format!(
                    "{what} expected within {limit:?}, server has {s:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit.
    pub async fn kill(&mut self) -> Result<()> {
        self.stdin = None;
        // An error here means it has already exited; `wait` below tells.
        let _ = self.child.start_kill();
        timeout(Duration::from_secs(10), self.child.wait())
            .await
            .map_err(|_| err("the Node server did not exit within 10 s of SIGKILL"))?
            .map_err(|e| err(format!("waiting for the Node server to exit: {e}")))?;
        Ok(())
    }

    /// Kills the server and starts a new one on the same port (retrying the bind for a few
    /// seconds). The new server knows none of the old sessions.
    pub async fn restart_same_port(&mut self) -> Result<()> {
        self.kill().await?;
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match spawn(self.port, &self.options).await {
                Ok((child, stdin, port)) => {
                    if port != self.port {
                        return Err(err(format!(
                            "restart asked for port {} and got {port}",
                            self.port
                        )));
                    }
                    self.child = child;
                    self.stdin = Some(stdin);
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(err(format!(
                        "restarting on port {} for {REBIND_TIMEOUT:?}: {e}",
                        self.port
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    fn control(&self, route: &str) -> String {
        format!("http://127.0.0.1:{}/control/{route}", self.port)
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T> {
        let resp = req
            .send()
            .await
            .map_err(|e| err(format!("control {what}: {e}")))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| err(format!("control {what}: reading the reply: {e}")))?;
        if !status.is_success() {
            return Err(err(format!("control {what}: HTTP {status}: {body}")));
        }
        serde_json::from_str(&body)
            .map_err(|e| err(format!("control {what}: unexpected reply {body:?}: {e}")))
    }
}

fn expect_count(reply: &serde_json::Value, key: &str, n: usize) -> Result<()> {
    match reply.get(key).and_then(serde_json::Value::as_u64) {
        Some(got) if got == n as u64 => Ok(()),
        _ => Err(err(format!("expected {key}={n}, server replied {reply}"))),
    }
}

fn installed(root: &Path) -> bool {
    root.join("node_modules/cometd-nodejs-server/package.json")
        .is_file()
}

/// Makes sure `node_modules/cometd-nodejs-server` exists: an error under CI, otherwise
/// `npm ci` once (concurrent tests wait for the first one's install).
pub async fn ensure_installed() -> Result<()> {
    static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let root = crate::workspace_root();
    if installed(&root) {
        return Ok(());
    }
    if crate::under_ci() {
        return Err(err(format!(
            "{} is missing; run `npm ci` in {} before the tests (CI=true: not installing here)",
            root.join("node_modules/cometd-nodejs-server").display(),
            root.display()
        )));
    }
    let _guard = INSTALL.lock().await;
    if installed(&root) {
        return Ok(());
    }
    eprintln!("cometd_node: node_modules missing, running `npm ci` once");
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let status = timeout(NPM_CI_TIMEOUT, npm.status())
        .await
        .map_err(|_| err(format!("`npm ci` took longer than {NPM_CI_TIMEOUT:?}")))?
        .map_err(|e| err(format!("running `npm ci` (is npm installed?): {e}")))?;
    if !status.success() || !installed(&root) {
        return Err(err(format!(
            "`npm ci` in {} failed ({status})",
            root.display()
        )));
    }
    Ok(())
}

/// Spawns `node test-support/interop/cometd-server.js` and reads its `LISTENING <port>` line.
async fn spawn(port: u16, options: &NodeOptions) -> Result<(Child, ChildStdin, u16)> {
    let root = crate::workspace_root();
    let mut cmd = Command::new("node");
    cmd.arg(root.join("test-support/interop/cometd-server.js"))
        .arg("--port")
        .arg(port.to_string());
    let flags = [
        ("--timeout", options.timeout_ms),
        ("--interval", options.interval_ms),
        ("--max-interval", options.max_interval_ms),
    ];
    for (flag, value) in flags {
        if let Some(v) = value {
            cmd.arg(flag).arg(v.to_string());
        }
    }
    if options.ack {
        cmd.arg("--ack");
    }
    // Closing stdin (on drop, or if this process dies) stops the server too.
    cmd.current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| err(format!("starting `node` (is Node.js installed?): {e}")))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| err("node stdin missing"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| err("node stdout missing"))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = timeout(START_TIMEOUT, lines.next_line()).await;
    let line = match first {
        Err(_) => {
            return Err(err(format!(
                "the Node CometD server printed no `LISTENING <port>` within {START_TIMEOUT:?}"
            )))
        }
        Ok(Err(e)) => return Err(err(format!("reading the Node server's stdout: {e}"))),
        Ok(Ok(None)) => {
            let status = timeout(Duration::from_secs(5), child.wait()).await;
            return Err(err(format!(
                "the Node CometD server exited before listening on port {port}: {status:?}"
            )));
        }
        Ok(Ok(Some(line))) => line,
    };
    let bound = line
        .strip_prefix("LISTENING ")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .ok_or_else(|| {
            err(format!(
                "unexpected first line from the Node server: {line:?}"
            ))
        })?;
    Ok((child, stdin, bound))
}
