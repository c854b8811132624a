//! `gws-cometd tail`.

use std::process::ExitCode;

/// Arguments of `tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {}

/// Runs `tail`.
pub fn run(_args: TailArgs) -> ExitCode {
    eprintln!("gws-cometd tail: not built yet");
    ExitCode::FAILURE
}
