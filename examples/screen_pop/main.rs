//! A screen-pop service: follows one agent's calls and, when a change brings an
//! `AccountNumber` (the IVR attached it), prints the line a desktop would turn into the
//! customer's record.
//!
//! ```text
//! cargo run --example screen_pop                      # the built-in simulator, 3 pops
//! GWS_USER=agent1 GWS_PASSWORD=... cargo run --example screen_pop -- --gws https://gws.example:8090
//! cargo run --example screen_pop -- --pops 10         # stop after 10 pops (0: never)
//! ```
//!
//! Without `--gws` it starts the in-process GWS simulator (a living contact center, a call
//! every few seconds) and stops after 3 pops. With `--gws URL` it logs in with `GWS_USER`
//! and `GWS_PASSWORD` (never on the command line) and runs until Ctrl-C or `--pops`.
//!
//! The reaction is `service::react`, tested over a recorded fixture in `fixture_test.rs`
//! (`cargo test --example screen_pop`).

mod service;

#[cfg(test)]
mod fixture_test;

use std::process::ExitCode;

use gws_cometd::gws::{CallFeed, Credentials, FeedEvent};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};

/// What the command line said.
struct Args {
    gws: Option<String>,
    pops: Option<usize>,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        gws: None,
        pops: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--gws" => out.gws = Some(it.next().ok_or("--gws needs a URL")?),
            "--pops" => {
                let n = it.next().ok_or("--pops needs a number")?;
                out.pops = Some(n.parse().map_err(|_| format!("--pops {n}: not a number"))?);
            }
            other => {
                return Err(format!(
                    "unexpected argument {other:?} (try --gws URL, --pops N)"
                ))
            }
        }
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("screen_pop: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("screen_pop: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> gws_cometd::Result<()> {
    // The simulator is kept alive for the whole run (dropping it stops it).
    let (base_url, credentials, _sim, pops) = match args.gws {
        Some(url) => {
            let user = std::env::var("GWS_USER").unwrap_or_default();
            let password = std::env::var("GWS_PASSWORD").unwrap_or_default();
            (
                url,
                Credentials::new(user, password),
                None,
                args.pops.unwrap_or(0),
            )
        }
        None => {
            // `?` takes the simulator's io::Error into gws_cometd::Error.
            let sim = GwsSimServer::start(GwsServerConfig::new("agent", "secret")).await?;
            eprintln!(
                "following agent on the built-in simulator at {}",
                sim.base_url()
            );
            let url = sim.base_url();
            (
                url,
                Credentials::new("agent", "secret"),
                Some(sim),
                args.pops.unwrap_or(3),
            )
        }
    };
    let mut feed = CallFeed::builder(base_url, credentials).connect().await?;
    let mut popped = 0;
    loop {
        let event = tokio::select! {
            event = feed.next() => event,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(event) = event else { break };
        match event {
            FeedEvent::Call(event) => {
                if let Some(pop) = service::react(&event) {
                    println!("{pop}");
                    popped += 1;
                    if popped == pops {
                        break;
                    }
                }
            }
            FeedEvent::Stale { cause, .. } => eprintln!("may be missing changes: {cause}"),
            FeedEvent::Fresh { stale_for } => eprintln!("caught up after {stale_for:?}"),
            _ => {}
        }
    }
    feed.disconnect().await;
    Ok(())
}
