//! Receive-path benchmark of the whole `gws-cometd tail` process against the official CometD
//! Node.js server: 20 000 notifications of ~300 bytes over loopback, reporting messages/s,
//! CPU seconds (user + sys) and peak RSS of the tail process.
//!
//! ```text
//! cargo bench --bench tail_receive                      # gws-cometd tail, 5 runs, median
//! cargo bench --bench tail_receive -- --client js       # the official JavaScript client
//! cargo bench --bench tail_receive -- --client both --runs 3 --count 20000 --size 300
//! ```
//!
//! Each measured process is started through a copy of this binary in `--measure-child` mode,
//! whose only child it is: that copy's `getrusage(RUSAGE_CHILDREN)` after waiting holds
//! exactly the tail's CPU time and peak RSS. It also counts and checks the output lines
//! (outside the measured process). Without `--bench` (as under `cargo test --all-targets`)
//! it runs one short round per client, as a smoke test of the harness.

use gws_cometd_test_support::cometd_node;

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use cometd_node::CometdNode;
use nix::sys::resource::{getrusage, UsageWho};
use tokio::io::AsyncReadExt;

const MEASURE_FLAG: &str = "--measure-child";
/// Bound on one run, from spawn to exit.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(MEASURE_FLAG) {
        return measure_child(&args[1..]);
    }
    let config = match Config::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tail_receive: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tail_receive: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tail_receive: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Client {
    Rust,
    Js,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Rust => "gws-cometd tail",
            Client::Js => "JavaScript CometD client",
        }
    }

    fn command(self, url: &str, channel: &str, count: usize) -> Vec<String> {
        let count = count.to_string();
        match self {
            Client::Rust => vec![
                env!("CARGO_BIN_EXE_gws-cometd").to_string(),
                "tail".into(),
                "--url".into(),
                url.into(),
                "--channel".into(),
                channel.into(),
                "--count".into(),
                count,
            ],
            Client::Js => vec![
                "node".into(),
                gws_cometd_test_support::workspace_root()
                    .join("test-support/interop/js-tail.js")
                    .display()
                    .to_string(),
                "--url".into(),
                url.into(),
                "--channel".into(),
                channel.into(),
                "--count".into(),
                count,
            ],
        }
    }
}

#[derive(Debug)]
struct Config {
    clients: Vec<Client>,
    runs: usize,
    count: usize,
    size: usize,
}

impl Config {
    fn parse(args: &[String]) -> Result<Self, String> {
        // `cargo bench` passes `--bench`; without it this is a test-mode smoke run.
        let bench = args.iter().any(|a| a == "--bench");
        let mut config = if bench {
            Config {
                clients: vec![Client::Rust],
                runs: 5,
                count: 20_000,
                size: 300,
            }
        } else {
            Config {
                clients: vec![Client::Rust, Client::Js],
                runs: 1,
                count: 200,
                size: 300,
            }
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| format!("{name} needs a value"))
                    .cloned()
            };
            match arg.as_str() {
                "--client" => {
                    config.clients = match value("--client")?.as_str() {
                        "rust" => vec![Client::Rust],
                        "js" => vec![Client::Js],
                        "both" => vec![Client::Rust, Client::Js],
                        other => return Err(format!("--client rust|js|both, not {other:?}")),
                    }
                }
                "--runs" => config.runs = positive("--runs", &value("--runs")?)?,
                "--count" => config.count = positive("--count", &value("--count")?)?,
                "--size" => config.size = positive("--size", &value("--size")?)?,
                // Other arguments come from the cargo test/bench harness (filters, --bench).
                _ => {}
            }
        }
        Ok(config)
    }
}

fn positive(name: &str, text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name} must be a positive integer, not {text:?}")),
    }
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    /// From the start of the publish to the tail's exit.
    seconds: f64,
    cpu_user: f64,
    cpu_sys: f64,
    peak_rss_kb: i64,
}

impl Figures {
    fn cpu(&self) -> f64 {
        self.cpu_user + self.cpu_sys
    }
}

async fn run(config: Config) -> Result<(), BoxError> {
    let node = CometdNode::start().await?;
    println!(
        "tail_receive: cometd-nodejs-server at {}, {} messages of {} bytes, {} run(s)",
        node.url(),
        config.count,
        config.size,
        config.runs
    );
    let mut round = 0;
    for &client in &config.clients {
        let mut all = Vec::with_capacity(config.runs);
        for i in 1..=config.runs {
            round += 1;
            // A fresh channel per run: a session left over from the previous run (its
            // disconnect is best effort) must neither count as subscribed nor cost delivery.
            let channel = format!("/bench/{round}");
            let f = run_once(&node, client, &channel, &config).await?;
            println!(
                "  {} run {i}/{}: {:>8.0} msg/s ({:.3} s), CPU {:.3} s (user {:.3} + sys {:.3}), peak RSS {:.1} MB",
                client.name(),
                config.runs,
                config.count as f64 / f.seconds,
                f.seconds,
                f.cpu(),
                f.cpu_user,
                f.cpu_sys,
                f.peak_rss_kb as f64 / 1024.0
            );
            all.push(f);
        }
        let rate = median(all.iter().map(|f| config.count as f64 / f.seconds));
        let cpu = median(all.iter().map(Figures::cpu));
        let rss = median(all.iter().map(|f| f.peak_rss_kb as f64 / 1024.0));
        println!(
            "{}: median of {} run(s): {:.0} msg/s, CPU {:.3} s, peak RSS {:.1} MB ({} messages of {} bytes)",
            client.name(),
            config.runs,
            rate,
            cpu,
            rss,
            config.count,
            config.size
        );
    }
    Ok(())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

async fn run_once(
    node: &CometdNode,
    client: Client,
    channel: &str,
    config: &Config,
) -> Result<Figures, BoxError> {
    let me = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(me);
    cmd.arg(MEASURE_FLAG)
        .arg(config.count.to_string())
        .arg("--")
        .args(client.command(&node.url(), channel, config.count))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let mut stdout = child.stdout.take().ok_or("measuring child has no stdout")?;

    let outcome = async {
        // A tail that dies before subscribing must fail the run at once, with its report.
        tokio::select! {
            ready = node.wait_for_subscribers(channel, 1, Duration::from_secs(30)) => {
                ready?;
            }
            status = child.wait() => {
                let mut report = String::new();
                stdout.read_to_string(&mut report).await?;
                return Err(format!(
                    "{} exited ({}) before subscribing: {}",
                    client.name(),
                    status?,
                    report.trim()
                )
                .into());
            }
        }
        let start = Instant::now();
        node.publish(channel, config.count, config.size).await?;
        let status = child.wait().await?;
        let seconds = start.elapsed().as_secs_f64();
        let mut report = String::new();
        stdout.read_to_string(&mut report).await?;
        if !status.success() {
            return Err(format!(
                "{} failed ({status}); its measuring wrapper said: {}",
                client.name(),
                report.trim()
            )
            .into());
        }
        parse_report(&report, seconds)
    };
    match tokio::time::timeout(RUN_TIMEOUT, outcome).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{} did not finish within {RUN_TIMEOUT:?} (killed)",
            client.name()
        )
        .into()),
    }
}

/// Parses `RESULT user=<s> sys=<s> maxrss_kb=<kb>` from the measuring wrapper.
fn parse_report(report: &str, seconds: f64) -> Result<Figures, BoxError> {
    let line = report
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("no RESULT line from the measuring wrapper: {report:?}"))?;
    let field = |name: &str| -> Result<f64, BoxError> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("{name} missing in {line:?}"))?
            .parse::<f64>()
            .map_err(|e| format!("{name} in {line:?}: {e}").into())
    };
    Ok(Figures {
        seconds,
        cpu_user: field("user")?,
        cpu_sys: field("sys")?,
        peak_rss_kb: field("maxrss_kb")? as i64,
    })
}

/// `--measure-child COUNT -- CMD ARGS...`: runs CMD as this process's only child, checks its
/// stdout is COUNT lines `{"channel":..,"data":{"seq":i,..}}` with i = 0, 1, ... in order,
/// and prints `RESULT user=.. sys=.. maxrss_kb=..` from `getrusage(RUSAGE_CHILDREN)`.
/// Exits non-zero when the child fails or its output is wrong.
fn measure_child(args: &[String]) -> ExitCode {
    match measure_child_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("ERROR {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure_child_inner(args: &[String]) -> Result<(), BoxError> {
    let (count, cmd) = match args {
        [count, dashes, program, rest @ ..] if dashes == "--" => {
            (count.parse::<usize>()?, (program, rest))
        }
        _ => return Err("usage: --measure-child COUNT -- CMD ARGS...".into()),
    };
    let mut child = std::process::Command::new(cmd.0)
        .args(cmd.1)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", cmd.0))?;
    let stdout = child.stdout.take().ok_or("child has no stdout")?;
    let mut lines = 0usize;
    let mut problem = None;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if problem.is_none() {
            problem = check_line(&line, lines).err();
        }
        lines += 1;
    }
    let status = child.wait()?;
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    if !status.success() {
        return Err(format!("exited with {status} after {lines} of {count} lines").into());
    }
    if let Some(p) = problem {
        return Err(p.into());
    }
    if lines != count {
        return Err(format!("{lines} lines on stdout, expected {count}").into());
    }
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    println!(
        "RESULT user={:.6} sys={:.6} maxrss_kb={}",
        secs(usage.user_time()),
        secs(usage.system_time()),
        usage.max_rss()
    );
    Ok(())
}

/// Line `index` must be `{"channel":..,"data":{"seq":index,..}}`.
fn check_line(line: &str, index: usize) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| format!("line {index} is not JSON ({e}): {line:.200}"))?;
    let ok = v.get("channel").is_some_and(serde_json::Value::is_string)
        && v.pointer("/data/seq").and_then(serde_json::Value::as_u64) == Some(index as u64);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "line {index} is not message seq {index}: {line:.200}"
        ))
    }
}
