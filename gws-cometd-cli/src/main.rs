//! The `gws-cometd` command-line tool: parsing and dispatch. Each subcommand lives in its own
//! module.
//!
//! | module | what it is |
//! |---|---|
//! | `tail`, `watch`, `replay`, `serve` | the commands of the same name |
//! | `user_data`, `call_control`, `operation` | the REST commands and how they run |
//! | `follow` | what `tail` and `watch` share: the target, limits, the feed |
//! | `demo` | the built-in simulator and the login commands printed for it and `serve` |
//! | `gws_args`, `http_args` | `--gws/--user/--password-file`, `--proxy/--cacert`, call ids |
//! | `pairs`, `json_errors` | `KEY=VALUE`/`KEY:=JSON`; serde_json's syntax errors in plain words |
//! | `log`, `hint`, `signal` | stderr (text/JSON), last-line hints, Ctrl-C and SIGTERM |
//! | `numbers`, `stdout_writer` | the checks every number option gets; stdout from a thread of its own |

// The doc comments of the arguments are clap's `--help` text, where a URL is shown as the
// user types it: no `<...>` around it for rustdoc's sake.
#![allow(rustdoc::bare_urls)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod api_args;
#[cfg(feature = "bridge")]
mod bridge;
mod call_control;
mod demo;
mod follow;
mod gws_args;
mod hint;
mod http_args;
mod json_errors;
mod log;
mod numbers;
mod operation;
mod pairs;
mod replay;
mod serve;
mod signal;
mod stdout_writer;
mod tail;
mod user_data;
mod watch;

/// Exit code: GWS refused the request (a non-zero `statusCode`), not everything asked for
/// arrived (`--count` within `--duration`), or a fixture to replay is empty.
const EXIT_REFUSED: u8 = 1;
/// Exit code: bad usage or input, unreachable server, refused login, or any other fatal
/// failure (clap's own usage errors exit 2 too).
const EXIT_FATAL: u8 = 2;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (also after Ctrl-C or SIGTERM, which disconnect cleanly)
  1  refused or incomplete: GWS answered a non-zero statusCode, fewer than --count lines
     arrived within --duration, or replay was given an empty fixture
  2  usage error, bad input, unreachable server, login refused, or another fatal failure;
     the last stderr line says what failed and what to check";

const FOLLOW_EXIT_CODES: &str = "\
Exit codes:
  0  done: --count lines written, --duration over, or stopped by Ctrl-C or SIGTERM (which
     disconnect cleanly), whatever stdout does
  1  incomplete: fewer than --count lines arrived within --duration
  2  usage error, a --record file that holds something (see --force, --append), unreachable
     server, login refused, or another fatal failure; the last stderr line says what failed";

const REPLAY_EXIT_CODES: &str = "\
Exit codes:
  0  replayed (also when stdout is closed early, as by | head)
  1  the fixture is empty: no lines to replay
  2  the fixture cannot be read: missing, a directory, binary, or a line that is not a
     fixture line (named as FILE:LINE:COLUMN); nothing is printed on stdout then";

const SERVE_EXIT_CODES: &str = "\
Exit codes:
  0  stopped by Ctrl-C or SIGTERM
  2  usage error, a bad scenario or users file, a --replay fixture that does not read
     (named as FILE:LINE:COLUMN; nothing is served then), no password, or the address
     cannot be listened on; the last stderr line says what failed";

const COMPLETIONS_AFTER_HELP: &str = "\
Install (then open a new shell):
  bash  gws-cometd completions bash > ~/.local/share/bash-completion/completions/gws-cometd
  zsh   gws-cometd completions zsh > ~/.zfunc/_gws-cometd   (with fpath+=~/.zfunc before
        compinit in ~/.zshrc)
  fish  gws-cometd completions fish > ~/.config/fish/completions/gws-cometd.fish

Exit codes:
  0  printed
  2  usage error, or stdout cannot be written";

const PAIRS_AFTER_HELP: &str = "\
Values (as httpie writes them):
  KEY=VALUE   VALUE is a string, always: AccountNumber=12345 sends \"12345\", Zip=007 \"007\"
  KEY:=JSON   a JSON value, checked and sent exactly as written: Priority:=2,
              Big:=123456789012345678901234567890, 'Journey:={\"IVR\":\"main\",\"Step\":3}',
              'Tags:=[\"a\",\"b\"]' (quote for the shell)
An argument without '=', with an empty key, or with invalid JSON after ':=' is refused before
anything is sent.

Exit codes:
  0  GWS answered statusCode 0
  1  GWS refused it (a non-zero statusCode, named in the error)
  2  not sent: bad arguments or call id, no password, login refused, server unreachable";

#[cfg(feature = "bridge")]
const BRIDGE_EXIT_CODES: &str = "\
Exit codes:
  0  stopped by Ctrl-C or SIGTERM with every change written
  1  stopped, but changes were left unwritten (NATS unreachable during the drain)
  2  usage error, unreadable or readable-by-others agents file, a nats-server older than 2.9,
     a stream or bucket without direct get; the last stderr line says what failed";

const OPERATION_AFTER_HELP: &str = "\
Exit codes:
  0  GWS answered statusCode 0
  1  GWS refused it (a non-zero statusCode, named in the error)
  2  not sent: bad arguments or call id, no password, login refused, server unreachable";

/// Listen to Genesys Web Services call notifications over CometD, replay recorded fixtures,
/// act on calls, run a GWS simulator.
///
/// JSON Lines on stdout, logs on stderr. Passwords never on the command line: GWS_PASSWORD
/// or --password-file.
#[derive(Parser, Debug)]
#[command(name = "gws-cometd", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Log lines on stderr as text or as JSON (one object per line, for log shippers).
    /// RUST_LOG sets the level (default info).
    #[arg(long, global = true, value_enum, default_value_t = log::LogFormat::Text)]
    log_format: log::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Follow an agent's calls on GWS (or the built-in simulator) and print one JSON line
    /// per call change, starting with the calls in progress.
    #[command(after_help = FOLLOW_EXIT_CODES)]
    Watch(watch::WatchArgs),
    /// Follow a Bayeux endpoint or GWS (or the built-in simulator) and print every data
    /// message as one JSON line, exactly as received.
    #[command(after_help = FOLLOW_EXIT_CODES)]
    Tail(tail::TailArgs),
    /// Replay a JSON Lines fixture (a file, or - for stdin) through the call-state reducer
    /// and print the changes, as watch does.
    #[command(after_help = REPLAY_EXIT_CODES)]
    Replay(replay::ReplayArgs),
    /// AttachUserData: append pairs to a call's attached data (an existing key gets a
    /// second occurrence).
    #[command(after_help = PAIRS_AFTER_HELP)]
    Attach(user_data::PairsArgs),
    /// UpdateUserData: set pairs, replacing every occurrence of each key.
    #[command(after_help = PAIRS_AFTER_HELP)]
    Update(user_data::PairsArgs),
    /// DeleteUserDataPair: remove every occurrence of KEY from a call's attached data.
    #[command(after_help = OPERATION_AFTER_HELP)]
    DeletePair(user_data::DeletePairArgs),
    /// DeleteUserData: remove all of a call's attached data.
    #[command(after_help = OPERATION_AFTER_HELP)]
    DeleteAll(user_data::DeleteAllArgs),
    /// Answer a ringing call.
    #[command(after_help = OPERATION_AFTER_HELP)]
    Answer(call_control::CallArgs),
    /// Hold an established call.
    #[command(after_help = OPERATION_AFTER_HELP)]
    Hold(call_control::CallArgs),
    /// Retrieve a held call.
    #[command(after_help = OPERATION_AFTER_HELP)]
    Retrieve(call_control::CallArgs),
    /// Hang up a call.
    #[command(after_help = OPERATION_AFTER_HELP)]
    Hangup(call_control::CallArgs),
    /// Run the GWS simulator until Ctrl-C or SIGTERM, printing how to log in.
    #[command(after_help = SERVE_EXIT_CODES)]
    Serve(serve::ServeArgs),
    /// Print the shell completion script for SHELL on stdout.
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Follow every agent of a file and publish their call changes to NATS JetStream.
    #[cfg(feature = "bridge")]
    #[command(after_help = BRIDGE_EXIT_CODES)]
    Bridge(bridge::BridgeArgs),
}

/// Parses the command line, runs the subcommand, and maps its outcome to an exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match &cli.command {
        Command::Watch(_) => log::Command::Watch,
        Command::Tail(_) => log::Command::Tail,
        Command::Replay(_) => log::Command::Replay,
        Command::Serve(_) => log::Command::Serve,
        #[cfg(feature = "bridge")]
        Command::Bridge(_) => log::Command::Bridge,
        _ => log::Command::Operation,
    };
    log::init(cli.log_format, command);
    use call_control::Control;
    use user_data::Operation;
    match cli.command {
        Command::Watch(args) => watch::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Attach(args) => user_data::run(Operation::Attach(args)),
        Command::Update(args) => user_data::run(Operation::Update(args)),
        Command::DeletePair(args) => user_data::run(Operation::DeletePair(args)),
        Command::DeleteAll(args) => user_data::run(Operation::DeleteAll(args)),
        Command::Answer(args) => call_control::run(Control::Answer, args),
        Command::Hold(args) => call_control::run(Control::Hold, args),
        Command::Retrieve(args) => call_control::run(Control::Retrieve, args),
        Command::Hangup(args) => call_control::run(Control::Hangup, args),
        Command::Serve(args) => serve::run(args),
        Command::Completions { shell } => completions(shell),
        #[cfg(feature = "bridge")]
        Command::Bridge(args) => bridge::run(args),
    }
}

/// Prints the completion script for `shell`.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    use clap::CommandFactory;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gws-cometd", &mut script);
    let mut stdout = std::io::stdout().lock();
    match std::io::Write::write_all(&mut stdout, &script)
        .and_then(|_| std::io::Write::flush(&mut stdout))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            log::fatal("completions", &format!("cannot write to stdout: {e}"));
            ExitCode::from(EXIT_FATAL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn repeated_channels_replace_the_default() {
        let cli =
            Cli::try_parse_from(["gws-cometd", "tail", "--channel", "/v2/me/devices"]).unwrap();
        let Command::Tail(args) = cli.command else {
            panic!("tail")
        };
        assert_eq!(args.channels, ["/v2/me/devices"]);
    }

    #[test]
    fn no_command_takes_a_password_argument() {
        use clap::CommandFactory;
        for sub in Cli::command().get_subcommands() {
            for arg in sub.get_arguments() {
                assert_ne!(arg.get_long(), Some("password"), "{}", sub.get_name());
            }
        }
    }
}
