//! The integration tests of this crate, in one binary (one link, one build).

mod browser;
mod support;

#[cfg(feature = "bridge")]
mod bridge_cli;
mod cli;
mod cli_environments;
mod cli_follow;
mod cli_replay;
mod cli_serve;
mod cli_serve_replay;
mod cli_serve_replay_v3;
mod cli_slips;
mod cli_stale;
mod cli_stuck_stdout;
mod cli_v3;
mod cli_values;
mod cli_words;
mod console;
mod replay;
