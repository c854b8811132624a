//! Many GWS sessions in one process: N agents (default 1 000), each with its own `CallFeed`
//! (REST login, CometD long poll, call store) against the GWS simulator, each receiving only
//! its own calls' notifications. Reports the heap held per idle session, the process RSS, and
//! notifications/s when every agent's call gets a burst of user-data changes.
//!
//! ```text
//! cargo bench --bench gws_sessions                        # 1 000 agents, 20 changes each
//! cargo bench --bench gws_sessions -- --agents 200 --changes 50
//! ```
//!
//! The simulator runs on its own runtime and threads; the feeds on another. A counting
//! allocator attributes each allocation to the side whose thread made it, so "heap per idle
//! session" is the feeds' heap only (sockets and kernel buffers are not heap; the RSS figure
//! covers both sides). Without `--bench` (as under `cargo test --all-targets`) it runs a
//! small round as a smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::ExitCode;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::{CallFeed, Delivery, FeedEvent, CALLS_CHANNEL};
use gws_cometd_sim::gws::GwsSimConfig;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer, SimConfig};
use serde_json::value::RawValue;

/// Heap bytes live, allocated by threads of the feeds' runtime.
static FEED_HEAP: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static FEED_THREAD: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; the only addition is an
// atomic counter update and a read of a const-initialized thread-local `Cell<bool>`, neither
// of which allocates or unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: `ptr` was allocated by `System` with this layout (every allocation goes
        // through `alloc`/`realloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged; `ptr`/`layout` come from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(delta: isize) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    if FEED_THREAD.try_with(Cell::get).unwrap_or(false) {
        FEED_HEAP.fetch_add(delta, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PASSWORD: &str = "bench-pa55";

struct Config {
    agents: usize,
    changes: usize,
}

impl Config {
    fn parse(args: &[String]) -> Result<Config, String> {
        let bench = args.iter().any(|a| a == "--bench");
        let mut c = if bench {
            Config {
                agents: 1000,
                changes: 20,
            }
        } else {
            Config {
                agents: 20,
                changes: 3,
            }
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
                "--bench" => {}
                other if other.starts_with("--") => {} // cargo bench passes its own flags
                _ => {}
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gws_sessions: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gws_sessions: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: &Config) -> Result<(), String> {
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sim")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let feed_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("feeds")
        .on_thread_start(|| FEED_THREAD.with(|f| f.set(true)))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let sim = sim_rt.block_on(async {
        let mut gws = GwsSimConfig::new(agent(0), PASSWORD);
        for i in 1..config.agents {
            gws = gws.with_user(agent(i), PASSWORD);
        }
        let mut c = GwsServerConfig::new(agent(0), PASSWORD);
        c.gws = gws;
        c.scenario = Some(Vec::new());
        c.sim = SimConfig {
            // Idle sessions stay idle for the whole measurement.
            long_poll_timeout: Duration::from_secs(60),
            max_interval: Duration::from_secs(120),
            ..SimConfig::default()
        };
        GwsSimServer::start(c).await
    });
    let sim = Arc::new(sim.map_err(|e| format!("simulator: {e}"))?);
    let base = sim.base_url();

    let rss_before = rss_kib();
    let heap_before = FEED_HEAP.load(Ordering::Relaxed);
    let started = Instant::now();
    let feeds = feed_rt.block_on(async {
        // Log in in waves so the simulator's accept queue is not the bottleneck.
        let mut feeds = Vec::with_capacity(config.agents);
        for chunk in (0..config.agents).collect::<Vec<_>>().chunks(100) {
            let wave = chunk.iter().map(|&i| connect(base.clone(), agent(i)));
            for f in join_all(wave).await {
                feeds.push(f?);
            }
        }
        Ok::<_, String>(feeds)
    })?;
    let connect_time = started.elapsed();
    // Let every session settle into its held long poll.
    let settle = sim_rt.block_on(async {
        sim.bayeux()
            .wait_for_subscribers("/v2/me/calls", config.agents, Duration::from_secs(60))
            .await
    });
    if !settle {
        return Err("not every agent subscribed within 60 s".into());
    }
    std::thread::sleep(Duration::from_millis(500));
    let heap_idle = FEED_HEAP.load(Ordering::Relaxed) - heap_before;
    let rss_idle = rss_kib();

    // Throughput: each agent's call rings, then gets `changes` attaches; every feed must see
    // exactly its own 1 + changes notifications.
    let per_agent = 1 + config.changes as u64;
    let received = Arc::new(AtomicU64::new(0));
    let foreign = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = feeds
        .into_iter()
        .enumerate()
        .map(|(i, feed)| {
            let (received, foreign) = (received.clone(), foreign.clone());
            feed_rt.spawn(follow(feed, i, per_agent, received, foreign))
        })
        .collect();
    let started = Instant::now();
    sim_rt.block_on(async {
        let ids: Vec<String> = (0..config.agents)
            .map(|i| {
                sim.gws()
                    .ring_inbound_for(&agent(i), "5115", &format!("{}", 7000 + i))
                    .expect("known agent")
            })
            .collect();
        for n in 0..config.changes {
            for id in &ids {
                let value = RawValue::from_string(n.to_string()).expect("a number");
                sim.gws()
                    .attach_user_data(id, vec![("Step".into(), value)])
                    .map_err(|e| e.to_string())?;
            }
            tokio::task::yield_now().await;
        }
        Ok::<_, String>(())
    })?;
    let all = feed_rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), join_all(tasks)).await });
    let elapsed = started.elapsed();
    if all.is_err() {
        return Err(format!(
            "only {} of {} notifications arrived within 120 s",
            received.load(Ordering::Relaxed),
            per_agent * config.agents as u64
        ));
    }
    let total = received.load(Ordering::Relaxed);
    if foreign.load(Ordering::Relaxed) > 0 {
        return Err(format!(
            "{} notifications reached the wrong agent",
            foreign.load(Ordering::Relaxed)
        ));
    }

    let n = config.agents as f64;
    println!(
        "gws_sessions: {} agents, {} changes each",
        config.agents, config.changes
    );
    println!(
        "  login+connect+subscribe of all agents: {:.2} s",
        connect_time.as_secs_f64()
    );
    println!(
        "  feed heap per idle session: {:.1} KiB",
        heap_idle as f64 / n / 1024.0
    );
    if let (Some(a), Some(b)) = (rss_before, rss_idle) {
        println!(
            "  process RSS growth per idle session (feeds + simulator): {:.1} KiB",
            (b.saturating_sub(a)) as f64 / n
        );
    }
    println!(
        "  notifications: {total} in {:.3} s = {:.0}/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn connect(base: String, user: String) -> Result<CallFeed, String> {
    // Every notification counted as it came: no coalescing. `connect` returns once the
    // feed is subscribed and caught up.
    CallFeed::builder(base, Credentials::new(user.clone(), PASSWORD))
        .delivery(Delivery::Messages)
        .connect()
        .await
        .map_err(|e| format!("{user}: {e}"))
}

async fn follow(
    mut feed: CallFeed,
    i: usize,
    expected: u64,
    received: Arc<AtomicU64>,
    foreign: Arc<AtomicU64>,
) {
    let dnis = format!("\"dnis\":\"{}\"", 7000 + i);
    let mut seen = 0;
    while seen < expected {
        match feed.next().await {
            Some(FeedEvent::Message(raw)) if raw.channel == CALLS_CHANNEL => {
                let mine = raw.data.as_deref().is_some_and(|d| d.get().contains(&dnis));
                if !mine {
                    foreign.fetch_add(1, Ordering::Relaxed);
                }
                seen += 1;
                received.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {}
            None => return,
        }
    }
    feed.disconnect().await;
}
