//! The simulator `tail` follows when neither `--url` nor `--gws` is given: the GWS simulator
//! on loopback with its default scenario (an inbound call rings, is answered and gets
//! `AccountNumber` attached), followed through the GWS flow like a real server.

use gws_cometd::gws::rest::Credentials;
use gws_cometd::sim::gws::GwsSim;
use gws_cometd::sim::{GwsServerConfig, GwsSimServer};

/// The demo agent.
const USER: &str = "agent";

/// Starts the simulator; returns it (stops on drop) and the credentials it accepts.
pub async fn start() -> Result<(GwsSimServer, Credentials), String> {
    // A fresh password per run: the simulator is reachable by anything on this host.
    let password = format!("demo-{:016x}", rand_u64());
    let mut config = GwsServerConfig::new(USER, password.clone());
    config.scenario = Some(GwsSim::one_call_scenario());
    let sim = GwsSimServer::start(config)
        .await
        .map_err(|e| format!("cannot start the built-in GWS simulator: {e}"))?;
    tracing::info!(base = %sim.base_url(), user = USER, "built-in GWS simulator started");
    Ok((sim, Credentials::new(USER, password)))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per process: enough for a throwaway local password.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}
