//! Headless Chromium driven by Playwright, for the console's tests: installed when missing
//! (`playwright-core` by `npm ci`, Debian's `chromium` by `apt-get`), then one Node script
//! per scenario (`gws-cometd-cli/tests/browser/console.mjs`), one browser at a time.
//!
//! Outside CI a browser that cannot be installed skips the test with a note on stderr;
//! under `CI=true` it fails it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use gws_cometd_test_support::{under_ci, within, workspace_root};
use tokio::process::Command;
use tokio::sync::{Mutex, MutexGuard, OnceCell};

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long an install may take.
const INSTALL: Duration = Duration::from_secs(600);
/// How long one scenario may take (a browser start included).
const SCENARIO: Duration = Duration::from_secs(90);

static READY: OnceCell<Result<(), String>> = OnceCell::const_new();
/// One browser at a time: the machine is small and the timings are asserted.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn status(what: &str, cmd: &mut Command) -> Result<(), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let status = tokio::time::timeout(INSTALL, cmd.status())
        .await
        .map_err(|_| format!("{what} took longer than {INSTALL:?}"))?
        .map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

async fn install() -> Result<(), String> {
    let root = workspace_root();
    if !root
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        if under_ci() {
            return Err(format!(
                "{} is missing; run `npm ci` in {} before the tests (CI=true: not installing here)",
                root.join("node_modules/playwright-core").display(),
                root.display()
            ));
        }
        eprintln!("browser: node_modules/playwright-core missing, running `npm ci` once");
        status(
            "npm ci",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&root),
        )
        .await?;
    }
    if !Path::new(CHROMIUM).is_file() {
        eprintln!("browser: {CHROMIUM} missing, installing Debian's chromium once");
        let apt = || {
            let mut c = Command::new("apt-get");
            c.args(["install", "-y", "--no-install-recommends", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        if status("apt-get install chromium", &mut apt())
            .await
            .is_err()
        {
            status(
                "apt-get update",
                Command::new("apt-get").arg("update").arg("-q"),
            )
            .await?;
            status("apt-get install chromium", &mut apt()).await?;
        }
    }
    Ok(())
}

/// The browser, installed once per test binary, and the right to use it now; `None` (with
/// a note) when it cannot be had outside CI.
pub async fn browser() -> Option<MutexGuard<'static, ()>> {
    match READY.get_or_init(install).await {
        Ok(()) => Some(ONE_AT_A_TIME.lock().await),
        Err(e) if under_ci() => panic!("browser: {e}"),
        Err(e) => {
            eprintln!("browser: {e}; skipping (under CI=true this fails)");
            None
        }
    }
}

fn script() -> PathBuf {
    workspace_root().join("gws-cometd-cli/tests/browser/console.mjs")
}

/// Runs scenario `name` of `console.mjs` with `args`; returns what it printed. The
/// password goes in the environment (`CONSOLE_PASSWORD`), not on the command line.
pub async fn scenario(name: &str, args: &serde_json::Value) -> serde_json::Value {
    let mut args = args.clone();
    let password = args
        .as_object_mut()
        .and_then(|a| a.remove("password"))
        .and_then(|p| p.as_str().map(str::to_owned))
        .unwrap_or_default();
    let child = Command::new("node")
        .arg(script())
        .arg(name)
        .arg(args.to_string())
        .current_dir(workspace_root())
        .env("CHROMIUM", CHROMIUM)
        .env("CONSOLE_PASSWORD", password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts (is Node.js installed?)");
    let out = within(
        &format!("browser scenario {name}"),
        SCENARIO,
        child.wait_with_output(),
    )
    .await
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser scenario {name} failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{name}: {e}: {stdout}\n{stderr}"))
}
