//! `gws-cometd serve`: runs the GWS simulator (REST + authenticated Bayeux) until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use gws_cometd::sim::gws::load_scenario;
use gws_cometd::sim::{GwsServerConfig, GwsSimServer};

/// Arguments of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The user name the simulator accepts.
    #[arg(long, default_value = "agent", value_name = "NAME")]
    pub user: String,
    /// That user's password.
    #[arg(long, value_name = "PW")]
    pub password: String,
    /// Scenario to run for each user once they subscribe to /v2/me/calls (JSON Lines or a
    /// JSON array of steps); default: one inbound call that rings, is answered and gets
    /// user data.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("listen", &self.listen)
            .field("user", &self.user)
            .field("password", &"***")
            .field("scenario", &self.scenario)
            .finish()
    }
}

/// Runs `serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    let scenario = match args.scenario.as_deref().map(load_scenario).transpose() {
        Ok(steps) => steps,
        Err(e) => {
            eprintln!("gws-cometd serve: bad scenario: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gws-cometd serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = GwsServerConfig::new(args.user.clone(), args.password);
    config.sim.listen = args.listen;
    config.scenario = scenario;
    rt.block_on(serve(config, &args.user, args.listen))
}

async fn serve(config: GwsServerConfig, user: &str, listen: SocketAddr) -> ExitCode {
    let server = match GwsSimServer::start(config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("gws-cometd serve: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = server.base_url();
    tracing::info!("GWS simulator at {base} (REST {base}/api/v2/me, CometD {base}/api/v2/notifications, unauthenticated CometD {base}/cometd)");
    tracing::info!("follow the calls: GWS_PASSWORD=... gws-cometd tail --gws {base} --user {user}");
    tracing::info!("change attached data: GWS_PASSWORD=... gws-cometd attach --gws {base} --user {user} CALL_ID KEY=VALUE");
    tracing::info!("list the calls: curl -u {user} {base}/api/v2/me/calls");
    tracing::info!("press Ctrl-C to stop");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("gws-cometd serve: cannot wait for Ctrl-C: {e}");
        server.shutdown().await;
        return ExitCode::FAILURE;
    }
    tracing::info!("stopping");
    server.shutdown().await;
    ExitCode::SUCCESS
}
