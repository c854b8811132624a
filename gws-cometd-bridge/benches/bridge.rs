//! The bridge at scale: N agents (default 5 000) on one bridge against the GWS simulator in
//! another process (this binary again, with `--sim-child`) and a real nats-server (a third;
//! tests/support/nats.rs installs and starts it). Reports the heap and RSS held per idle
//! agent session, the bridge process's CPU time per change from the wire to the JetStream
//! acks (stream and KV), and changes/s when every agent's call gets a burst of changes.
//!
//! ```text
//! cargo bench --bench bridge                           # 5 000 agents, 10 changes each
//! cargo bench --bench bridge -- --agents 1000 --changes 20
//! ```
//!
//! Without `--bench` (as under `cargo test --all-targets`) it runs a small round as a smoke
//! test. The counting allocator counts every allocation of this process: the simulator is
//! elsewhere, so the heap figure is the bridge's alone.

use gws_cometd_test_support::nats;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use gws_cometd::gws::rest::Credentials;
use gws_cometd_bridge::{Bridge, BridgeConfig, SessionState};
use gws_cometd_sim::gws::GwsSimConfig;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer, SimConfig};
use serde_json::value::RawValue;

/// Heap bytes live in this process.
static HEAP: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the only addition is an
// atomic counter update, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged; `ptr`/`layout` come from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PASSWORD: &str = "bench-pa55";

struct Config {
    agents: usize,
    changes: usize,
    sim_child: bool,
    /// Measure the feeds alone (one shared HTTP client, no bridge), for comparison.
    feeds_only: bool,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let bench = args.iter().any(|a| a == "--bench");
        let mut c = Config {
            agents: if bench { 5000 } else { 20 },
            changes: if bench { 10 } else { 3 },
            sim_child: false,
            feeds_only: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| -> Result<usize, String> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("{name} takes a number"))
            };
            match a.as_str() {
                "--agents" => c.agents = value("--agents")?,
                "--changes" => c.changes = value("--changes")?,
                "--sim-child" => c.sim_child = true,
                "--feeds-only" => c.feeds_only = true,
                _ => {} // cargo bench passes its own flags
            }
        }
        if c.agents == 0 {
            return Err("--agents must be at least 1".into());
        }
        Ok(c)
    }
}

fn agent(i: usize) -> String {
    format!("agent{i:04}")
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of this process.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every common platform.
    Some(Duration::from_millis((utime + stime) * 10))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bridge bench: {e}");
            return ExitCode::from(2);
        }
    };
    let result = if config.sim_child {
        sim_child(&config)
    } else {
        run(&config)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridge bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The simulator process: prints its base URL, then on `burst M` rings a call for every
/// agent and attaches M values to each, printing `done`; stops on `quit` or end of input.
fn sim_child(config: &Config) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut gws = GwsSimConfig::new(agent(0), PASSWORD);
        for i in 1..config.agents {
            gws = gws.with_user(agent(i), PASSWORD);
        }
        let mut c = GwsServerConfig::new(agent(0), PASSWORD);
        c.gws = gws;
        c.scenario = Some(Vec::new());
        c.sim = SimConfig {
            long_poll_timeout: Duration::from_secs(60),
            max_interval: Duration::from_secs(120),
            ..SimConfig::default()
        };
        let sim = GwsSimServer::start(c)
            .await
            .map_err(|e| format!("simulator: {e}"))?;
        println!("{}", sim.base_url());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            let mut words = line.split_whitespace();
            match (
                words.next(),
                words.next().and_then(|n| n.parse::<usize>().ok()),
            ) {
                (Some("burst"), Some(changes)) => {
                    let ids: Vec<String> = (0..config.agents)
                        .filter_map(|i| {
                            sim.gws()
                                .ring_inbound_for(&agent(i), "5115", &format!("{}", 7000 + i))
                        })
                        .collect();
                    for n in 0..changes {
                        for id in &ids {
                            let value =
                                RawValue::from_string(n.to_string()).map_err(|e| e.to_string())?;
                            sim.gws()
                                .attach_user_data(id, vec![("Step".into(), value)])
                                .map_err(|e| e.to_string())?;
                        }
                        tokio::task::yield_now().await;
                    }
                    println!("done");
                }
                (Some("quit"), _) => break,
                _ => eprintln!("sim child: unknown command {line:?}"),
            }
        }
        Ok(())
    })
}

fn run(config: &Config) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(measure(config))
}

async fn measure(config: &Config) -> Result<(), String> {
    let nats = nats::NatsServer::start()
        .await
        .map_err(|e| format!("nats-server: {e}"))?;
    eprintln!("bridge bench: nats-server at {}", nats.url());
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["--sim-child", "--agents", &config.agents.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the simulator process: {e}"))?;
    let mut to_child = child.stdin.take().ok_or("no stdin")?;
    let mut from_child = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    from_child
        .read_line(&mut line)
        .map_err(|e| format!("reading the simulator's URL: {e}"))?;
    let base = line.trim().to_owned();
    if !base.starts_with("http://") {
        return Err(format!("the simulator said {base:?}"));
    }

    eprintln!("bridge bench: simulator at {base}");
    let agents: Vec<Credentials> = (0..config.agents)
        .map(|i| Credentials::new(agent(i), PASSWORD))
        .collect();
    if config.feeds_only {
        let sent = (config.agents * (1 + config.changes)) as u64;
        let burst = |to_child: &mut std::process::ChildStdin| {
            writeln!(to_child, "burst {}", config.changes).map_err(|e| e.to_string())
        };
        let result = feeds_only(&base, agents, sent, || burst(&mut to_child)).await;
        let _ = writeln!(to_child, "quit");
        let _ = child.wait();
        return result;
    }
    let mut bc = BridgeConfig::new(base, agents, nats.url());
    bc.replica = "bench".into();
    let rss_before = rss_kib();
    let heap_before = HEAP.load(Ordering::Relaxed);
    let started = Instant::now();
    let bridge = Bridge::start(bc).await.map_err(|e| e.to_string())?;
    let n = config.agents as i64;
    let connected = tokio::time::timeout(Duration::from_secs(600), async {
        while bridge
            .metrics()
            .snapshot()
            .sessions_in(SessionState::Connected)
            < n
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if connected.is_err() {
        return Err(format!(
            "only {} of {n} sessions connected within 600 s",
            bridge
                .metrics()
                .snapshot()
                .sessions_in(SessionState::Connected)
        ));
    }
    let connect_time = started.elapsed();
    eprintln!("bridge bench: {n} sessions connected");
    // Every session settles into its held long poll.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let heap_idle = HEAP.load(Ordering::Relaxed) - heap_before;
    let rss_idle = rss_kib();

    let sent = (config.agents * (1 + config.changes)) as u64;
    let cpu_before = cpu_time();
    let t0 = Instant::now();
    writeln!(to_child, "burst {}", config.changes).map_err(|e| e.to_string())?;
    line.clear();
    from_child
        .read_line(&mut line)
        .map_err(|e| format!("waiting for the burst: {e}"))?;
    let burst_time = t0.elapsed();
    // Done once every change the feeds delivered is in JetStream (the feeds merge the
    // changes of a call that arrive together: see the report) and nothing more arrives.
    let written = tokio::time::timeout(Duration::from_secs(600), async {
        let mut report = Instant::now();
        let mut stable: Option<(u64, Instant)> = None;
        loop {
            let s = bridge.metrics().snapshot();
            let done = s.published + s.duplicates;
            if s.pending == 0 && done == s.notifications {
                match stable {
                    Some((n, since))
                        if n == done && since.elapsed() > Duration::from_millis(500) =>
                    {
                        return since;
                    }
                    Some((n, _)) if n == done => {}
                    _ => stable = Some((done, Instant::now())),
                }
            } else {
                stable = None;
            }
            if report.elapsed() > Duration::from_secs(10) {
                report = Instant::now();
                eprintln!("bridge bench: so far {s:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let cpu_after = cpu_time();
    let s = bridge.metrics().snapshot();
    let Ok(finished) = written else {
        return Err(format!("changes still waiting after 600 s ({s:?})"));
    };
    let elapsed = finished.duration_since(t0);
    let total = s.published + s.duplicates;

    let per = n as f64;
    println!(
        "bridge: {} agents, {} changes each (1 ring + attaches), one nats-server, simulator in another process",
        config.agents, config.changes
    );
    println!(
        "  login+connect+catch-up of all agents: {:.2} s",
        connect_time.as_secs_f64()
    );
    println!(
        "  heap per idle agent session: {:.1} KiB",
        heap_idle as f64 / per / 1024.0
    );
    if let (Some(a), Some(b)) = (rss_before, rss_idle) {
        println!(
            "  RSS growth per idle agent session: {:.1} KiB",
            b.saturating_sub(a) as f64 / per
        );
    }
    println!(
        "  notifications sent: {sent} in {:.3} s; changes the feeds delivered: {} (the rest merged per call by the feeds)",
        burst_time.as_secs_f64(),
        s.notifications
    );
    println!(
        "  changes in JetStream (stream + KV acked): {total} in {:.3} s = {:.0}/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        let cpu = (b - a).as_secs_f64() * 1e6;
        println!(
            "  bridge CPU, wire to acks: {:.1} µs per change in JetStream, {:.1} µs per notification received",
            cpu / total as f64,
            cpu / sent as f64
        );
    }
    println!(
        "  published {}, publish errors {}, coalesced {}",
        s.published, s.publish_errors, s.coalesced
    );
    let report = bridge.shutdown().await;
    let _ = writeln!(to_child, "quit");
    let _ = child.wait();
    if report.unwritten > 0 || s.coalesced > 0 {
        return Err(format!("{report:?}, coalesced {}", s.coalesced));
    }
    Ok(())
}

/// The heap of N idle feeds sharing one HTTP client, without the bridge, and their CPU
/// time per change in a burst (the feed's share of the bridge's figure).
async fn feeds_only(
    base: &str,
    agents: Vec<Credentials>,
    sent: u64,
    burst: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    use gws_cometd::gws::{CallFeed, FeedEvent};
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    let n = agents.len();
    let heap_before = HEAP.load(Ordering::Relaxed);
    let http =
        gws_cometd::transport::http::new_client(&Default::default()).map_err(|e| e.to_string())?;
    let mut feeds = Vec::with_capacity(n);
    for chunk in agents.chunks(64) {
        let wave = chunk.iter().map(|a| {
            CallFeed::builder(base.to_owned(), a.clone())
                .http_client(http.clone())
                .connect()
        });
        for f in futures::future::join_all(wave).await {
            feeds.push(f.map_err(|e| e.to_string())?);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let heap = HEAP.load(Ordering::Relaxed) - heap_before;
    println!(
        "feeds alone: {n} idle CallFeeds on one HTTP client: {:.1} KiB heap each",
        heap as f64 / n as f64 / 1024.0
    );
    let changes = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = feeds
        .into_iter()
        .map(|mut f| {
            let changes = changes.clone();
            tokio::spawn(async move {
                while let Some(ev) = f.next().await {
                    if let FeedEvent::Call(_) = ev {
                        changes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let cpu_before = cpu_time();
    let t0 = Instant::now();
    burst()?;
    let mut last = (0, Instant::now());
    while t0.elapsed() < Duration::from_secs(600) {
        let c = changes.load(Ordering::Relaxed);
        if c != last.0 {
            last = (c, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_after = cpu_time();
    let c = changes.load(Ordering::Relaxed);
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        // The 2 s of quiet at the end cost next to nothing.
        println!(
            "feeds alone: {sent} notifications sent, {c} changes delivered; CPU {:.1} µs per notification",
            (b - a).as_secs_f64() * 1e6 / sent as f64
        );
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}
