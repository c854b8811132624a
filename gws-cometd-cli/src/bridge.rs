//! `gws-cometd bridge`: follow every agent of a file on GWS and publish their call changes to
//! NATS JetStream (see `gws_cometd_bridge`).
//!
//! Exit codes: 0 after SIGTERM/Ctrl-C with everything written; 1 when the drain left changes
//! unwritten; 2 on bad arguments, an unreadable agents file, a bridge that cannot start, or
//! one that cannot go on until an operator acts (a nats-server older than 2.9, a stream
//! without direct get).
//! (Also in `--help`.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gws_cometd_bridge::{
    default_replica_name, AgentsFile, Bridge, BridgeConfig, LayoutConfig, Permissions, Shard,
};

use super::api_args::ApiArgs;
use super::http_args::HttpArgs;
use super::log::cli_event;
use super::log::fatal;
use super::numbers;
use super::signal::Stop;
use super::{EXIT_FATAL, EXIT_REFUSED};

/// Arguments of `bridge`.
#[derive(clap::Args, Debug)]
pub struct BridgeArgs {
    /// GWS base URL, e.g. https://gws.example.com:8090.
    #[arg(long = "gws", value_name = "BASE_URL")]
    pub base_url: String,
    /// The agents: one `user:password` per line (`#` comments), `api=v3 user:password` for
    /// one on another generation than --api's; must not be readable by group or others
    /// (chmod 600).
    #[arg(long, value_name = "FILE")]
    pub agents: PathBuf,
    /// Use an agents file that group or others may read, with a warning.
    #[arg(long)]
    pub allow_readable_agents_file: bool,
    /// NATS server URL(s), comma-separated.
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// Follow only the agents of shard K of N (K from 0): SHA-256 of the name, first 8 bytes
    /// big-endian, mod N.
    #[arg(long, value_name = "K/N", default_value = "0/1")]
    pub shard: Shard,
    /// This replica's name in the `Gws-Replica` header (default: host name and pid).
    #[arg(long, value_name = "NAME")]
    pub replica: Option<String>,
    /// Serve /metrics (Prometheus) and /healthz here, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Changes buffered per agent while NATS is slow or away, before merging per call.
    #[arg(long, default_value = "1000", value_name = "N", allow_negative_numbers = true, value_parser = numbers::positive_usize)]
    pub buffer: usize,
    /// Seconds a catch-up or heal change waits before it is published over a history that
    /// does not show it.
    #[arg(long, default_value = "1", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds_or_zero)]
    pub settle: f64,
    /// Seconds a JetStream ack may take before the write is retried (same message id).
    #[arg(long, default_value = "5", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub nats_timeout: f64,
    /// Seconds a shutdown waits for buffered changes.
    #[arg(long, default_value = "10", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub drain_timeout: f64,
    /// When creating GWS_CALLS: how long changes are kept, in seconds (default 7 days).
    #[arg(long, default_value = "604800", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub stream_max_age: f64,
    /// When creating GWS_CALLS: the duplicate window, in seconds.
    #[arg(long, default_value = "600", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub duplicate_window: f64,
    /// When creating the gws_calls bucket: how long an entry lives, in seconds.
    #[arg(long, default_value = "86400", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub kv_max_age: f64,
    /// When creating the stream and the bucket: copies on a JetStream cluster.
    #[arg(long, default_value = "1", value_name = "N", allow_negative_numbers = true, value_parser = numbers::positive_usize)]
    pub replicas: usize,
    /// Longest the network may add to a GWS request, in seconds.
    #[arg(long, default_value = "10", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub max_network_delay: f64,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

fn seconds(what: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("--{what} must be a non-negative number of seconds, got {secs}"))
}

/// Runs `bridge` until SIGTERM or Ctrl-C.
pub fn run(args: BridgeArgs) -> ExitCode {
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            fatal("bridge", &e);
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fatal("bridge", &format!("cannot start the runtime: {e}"));
            return ExitCode::from(EXIT_FATAL);
        }
    };
    rt.block_on(async move {
        // Listening before the sessions start: a signal while they log in is a clean stop.
        let mut stop = Stop::new();
        let agents = config.agents.len();
        let default_api = config.gws_api.api;
        let on_v3 = config
            .agents
            .iter()
            .filter(|a| a.api.unwrap_or(default_api) == gws_cometd::gws::Api::V3)
            .count();
        let mut bridge = match Bridge::start(config).await {
            Ok(b) => b,
            Err(e) => {
                fatal("bridge", &e.to_string());
                return ExitCode::from(EXIT_FATAL);
            }
        };
        cli_event!(info,
            agents,
            on_v3,
            shard = %args.shard,
            metrics = ?bridge.metrics_addr(),
            "bridge running"
        );
        let signal = tokio::select! {
            signal = stop.requested() => signal,
            failure = bridge.failed() => {
                // Nothing was written and nothing can be: stop without a drain.
                bridge.shutdown_within(Duration::ZERO).await;
                fatal("bridge", &failure.to_string());
                return ExitCode::from(EXIT_FATAL);
            }
        };
        cli_event!(
            info,
            "{signal}: disconnecting sessions, writing what is buffered"
        );
        let report = bridge.shutdown().await;
        if report.unwritten > 0 {
            fatal(
                "bridge",
                &format!(
                    "{} changes were not written to JetStream (check that NATS at {} is \
                     reachable)",
                    report.unwritten,
                    gws_cometd::transport::endpoint::redact(&args.nats)
                ),
            );
            return ExitCode::from(EXIT_REFUSED);
        }
        ExitCode::SUCCESS
    })
}

fn config(args: &BridgeArgs) -> Result<BridgeConfig, String> {
    let permissions = if args.allow_readable_agents_file {
        Permissions::Warn
    } else {
        Permissions::Refuse
    };
    let file = AgentsFile::load(&args.agents, permissions).map_err(|e| e.to_string())?;
    let total = file.agents.len();
    let gws_api = args.api.bridge(file.any_v3())?;
    let agents = file.shard(args.shard);
    cli_event!(
        info,
        "shard {}: {} of the {total} agents in {}",
        args.shard,
        agents.len(),
        args.agents.display()
    );
    let mut c = BridgeConfig::new(&args.base_url, agents, &args.nats);
    c.replica = args.replica.clone().unwrap_or_else(default_replica_name);
    c.metrics_listen = args.metrics_listen;
    c.buffer_per_agent = args.buffer.max(1);
    c.settle = seconds("settle", args.settle)?;
    c.nats_timeout = seconds("nats-timeout", args.nats_timeout)?;
    c.drain_timeout = seconds("drain-timeout", args.drain_timeout)?;
    c.max_network_delay = seconds("max-network-delay", args.max_network_delay)?;
    c.http_options = args.http.options()?;
    c.gws_api = gws_api;
    c.layout = LayoutConfig {
        stream_max_age: seconds("stream-max-age", args.stream_max_age)?,
        duplicate_window: seconds("duplicate-window", args.duplicate_window)?,
        kv_max_age: seconds("kv-max-age", args.kv_max_age)?,
        replicas: args.replicas.max(1),
    };
    Ok(c)
}
