//! `gws-cometd replay`.

use std::process::ExitCode;

/// Arguments of `replay`.
#[derive(clap::Args, Debug)]
pub struct ReplayArgs {}

/// Runs `replay`.
pub fn run(_args: ReplayArgs) -> ExitCode {
    eprintln!("gws-cometd replay: not built yet");
    ExitCode::FAILURE
}
