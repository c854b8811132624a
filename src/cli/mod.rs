//! Command-line parsing and dispatch. Each subcommand lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "bridge")]
mod bridge;
mod demo;
mod gws_args;
mod pairs;
mod replay;
mod serve;
mod tail;
mod user_data;

/// Listen to Genesys Web Services call notifications over CometD, replay recorded fixtures,
/// run a GWS simulator.
#[derive(Parser, Debug)]
#[command(name = "gws-cometd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Follow a Bayeux endpoint (or the built-in simulator) and print every data message as
    /// one JSON line on stdout.
    Tail(tail::TailArgs),
    /// Replay a JSON Lines fixture through the call-state reducer.
    Replay(replay::ReplayArgs),
    /// AttachUserData: append KEY=VALUE pairs to a call's attached data (an existing key
    /// gets a second occurrence).
    Attach(user_data::PairsArgs),
    /// UpdateUserData: set KEY=VALUE pairs, replacing every occurrence of each key.
    Update(user_data::PairsArgs),
    /// DeleteUserDataPair: remove every occurrence of KEY from a call's attached data.
    DeletePair(user_data::DeletePairArgs),
    /// DeleteUserData: remove all of a call's attached data.
    DeleteAll(user_data::DeleteAllArgs),
    /// Run the GWS simulator until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Follow every agent of a file and publish their call changes to NATS JetStream.
    #[cfg(feature = "bridge")]
    Bridge(bridge::BridgeArgs),
}

/// Parses the command line, runs the subcommand, and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Tail(args) => tail::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Attach(args) => user_data::run(user_data::Operation::Attach(args)),
        Command::Update(args) => user_data::run(user_data::Operation::Update(args)),
        Command::DeletePair(args) => user_data::run(user_data::Operation::DeletePair(args)),
        Command::DeleteAll(args) => user_data::run(user_data::Operation::DeleteAll(args)),
        Command::Serve(args) => serve::run(args),
        #[cfg(feature = "bridge")]
        Command::Bridge(args) => bridge::run(args),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
