//! Where the CLI's words go: logs on stderr (text or JSON Lines), the one line a command ends
//! with when it fails, and the plain lines that tell a person what to run next.
//!
//! Two kinds of library records are left out, with or without `RUST_LOG`, because the
//! commands report the same things themselves: the Bayeux session events (presented by
//! [`SessionLog`], so that retries before the first connection are information), and the
//! records of a client that stopped for good (the command's last line says it, with what to
//! check). Each session event is then said once, and a fatal end is one line, not that line
//! after a few WARN/ERROR lines saying the same. A `RUST_LOG` that names one of those
//! targets (e.g. `RUST_LOG=info,gws_cometd::client::driver=debug`) gets it back.
//!
//! Every line the CLI logs itself is under the running command's target,
//! `gws_cometd::cli::<command>` (`watch`, `tail`, `replay`, `serve`, `bridge`, and
//! `operation` for the REST commands).

use std::sync::OnceLock;

use gws_cometd::bayeux::{GapCause, SessionEvent};
use gws_cometd::gws::FeedEvent;
use gws_cometd::ClientEvent;

/// The log format, `--log-format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON formatter), for log shippers.
    Json,
}

/// The filter when `RUST_LOG` is not set. async-nats says every reconnect attempt at INFO,
/// which the bridge's own warnings cover.
const DEFAULT_FILTER: &str = "info,async_nats=warn";

/// Library targets turned off whatever `RUST_LOG` says (unless it names them): where the
/// library logs session events and the client's fatal end, which the commands report
/// themselves ([`SessionLog`], the last line), so that each is said once.
const SAID_BY_THE_COMMANDS: [&str; 2] = [
    "gws_cometd::bayeux::session::types",
    "gws_cometd::client::driver",
];

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The command running, which names the target of every line the CLI logs.
static COMMAND: OnceLock<Command> = OnceLock::new();

/// The commands, as log targets: each logs under `gws_cometd::cli::<command>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Watch,
    Tail,
    Replay,
    Serve,
    #[cfg(feature = "bridge")]
    Bridge,
    /// The REST commands: attach, update, delete-pair, delete-all, answer, hold, ...
    Operation,
}

/// The command running (set by [`init`]).
pub fn command() -> Command {
    COMMAND.get().copied().unwrap_or(Command::Operation)
}

/// Logs at `$level` under the running command's target, `gws_cometd::cli::<command>`
/// (tracing needs a target known at compile time, hence one arm per command).
macro_rules! cli_event {
    ($level:ident, $($arg:tt)+) => {
        match $crate::log::command() {
            $crate::log::Command::Watch => tracing::$level!(target: "gws_cometd::cli::watch", $($arg)+),
            $crate::log::Command::Tail => tracing::$level!(target: "gws_cometd::cli::tail", $($arg)+),
            $crate::log::Command::Replay => tracing::$level!(target: "gws_cometd::cli::replay", $($arg)+),
            $crate::log::Command::Serve => tracing::$level!(target: "gws_cometd::cli::serve", $($arg)+),
            #[cfg(feature = "bridge")]
            $crate::log::Command::Bridge => tracing::$level!(target: "gws_cometd::cli::bridge", $($arg)+),
            $crate::log::Command::Operation => tracing::$level!(target: "gws_cometd::cli::operation", $($arg)+),
        }
    };
}
pub(crate) use cli_event;

/// Sends logs to stderr in `format`, filtered by `RUST_LOG` or [`DEFAULT_FILTER`], with
/// [`SAID_BY_THE_COMMANDS`] off; the CLI's own lines are `command`'s.
pub fn init(format: LogFormat, command: Command) {
    use tracing_subscriber::filter::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let _ = FORMAT.set(format);
    let _ = COMMAND.set(command);
    let user_filter = std::env::var("RUST_LOG").ok().filter(|d| !d.is_empty());
    let filter = filter_directives(user_filter.as_deref());
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Text => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(EnvFilter::new(filter)))
        .init();
}

/// `RUST_LOG` (or [`DEFAULT_FILTER`]) with [`SAID_BY_THE_COMMANDS`] off, except a target
/// the user names.
fn filter_directives(user: Option<&str>) -> String {
    let mut filter = user.unwrap_or(DEFAULT_FILTER).to_owned();
    for target in SAID_BY_THE_COMMANDS {
        if !filter.contains(target) {
            filter.push_str(&format!(",{target}=off"));
        }
    }
    filter
}

fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// The line a failed command ends with: `gws-cometd COMMAND: MESSAGE` (an ERROR record in
/// JSON with `--log-format json`).
pub fn fatal(command: &str, message: &str) {
    match format() {
        LogFormat::Text => eprintln!("gws-cometd {command}: {message}"),
        LogFormat::Json => cli_event!(error, command, "{message}"),
    }
}

/// A line for the person at the terminal (how to log in, what to run): as is in text, an
/// INFO record in JSON; left out, like any INFO line, when the level is above INFO
/// (`RUST_LOG=warn`).
pub fn say(message: &str) {
    match format() {
        LogFormat::Text => {
            if said_at_info() {
                eprintln!("{message}")
            }
        }
        LogFormat::Json => cli_event!(info, "{message}"),
    }
}

/// Whether the running command's INFO lines are shown.
fn said_at_info() -> bool {
    match command() {
        Command::Watch => tracing::enabled!(target: "gws_cometd::cli::watch", tracing::Level::INFO),
        Command::Tail => tracing::enabled!(target: "gws_cometd::cli::tail", tracing::Level::INFO),
        Command::Replay => {
            tracing::enabled!(target: "gws_cometd::cli::replay", tracing::Level::INFO)
        }
        Command::Serve => tracing::enabled!(target: "gws_cometd::cli::serve", tracing::Level::INFO),
        #[cfg(feature = "bridge")]
        Command::Bridge => {
            tracing::enabled!(target: "gws_cometd::cli::bridge", tracing::Level::INFO)
        }
        Command::Operation => {
            tracing::enabled!(target: "gws_cometd::cli::operation", tracing::Level::INFO)
        }
    }
}

/// Presents the session events of a followed client on stderr.
///
/// Until the first connection, a failed handshake is information: the command retries, and
/// its last line says so if it gives up. After it, losses and failures are warnings. Either
/// way each distinct failure is said once per outage (repeats are debug), until the next
/// successful connect.
#[derive(Debug, Default)]
pub struct SessionLog {
    connected_once: bool,
    outage: std::collections::HashSet<String>,
}

impl SessionLog {
    /// For a session already connected (a feed whose `connect` returned).
    pub fn connected() -> Self {
        SessionLog {
            connected_once: true,
            ..SessionLog::default()
        }
    }

    /// Logs one event.
    pub fn event(&mut self, event: &ClientEvent) {
        let event = match event {
            ClientEvent::Session(event) => event,
            ClientEvent::Lagged { missed } => {
                cli_event!(debug, missed, "session events were dropped");
                return;
            }
            other => {
                cli_event!(debug, ?other, "client event");
                return;
            }
        };
        let cause = |c: &dyn std::fmt::Display| c.to_string();
        match event {
            SessionEvent::Handshaken { .. } => cli_event!(debug, "handshaken"),
            SessionEvent::Rehandshaken { .. } => {
                cli_event!(info, "re-handshaken: restoring the subscriptions")
            }
            SessionEvent::HandshakeFailed {
                attempt,
                cause: failure,
                retry_in,
            } => {
                let cause = cause(failure);
                if !self.first(cause.clone()) {
                    cli_event!(debug, attempt, "handshake failed again: {cause}");
                } else if !self.connected_once {
                    match retry_in {
                        Some(delay) => cli_event!(
                            info,
                            attempt,
                            "handshake failed ({cause}); retrying in {delay:?}"
                        ),
                        None => cli_event!(debug, attempt, "handshake failed: {cause}"),
                    }
                } else {
                    cli_event!(warn, attempt, ?retry_in, "handshake failed: {cause}")
                }
            }
            SessionEvent::Connected => {
                self.outage.clear();
                self.connected_once = true;
                cli_event!(info, "connected");
            }
            SessionEvent::ConnectionLost { cause: failure } => {
                let cause = cause(failure);
                if self.first(cause.clone()) {
                    cli_event!(warn, "connection lost: {cause}")
                } else {
                    cli_event!(debug, "connection lost again: {cause}")
                }
            }
            SessionEvent::Forgotten { cause: c, .. } => {
                let c = cause(c);
                if self.first(format!("forgotten: {c}")) {
                    cli_event!(
                        info,
                        "the server forgot the session ({c}); handshaking again"
                    )
                } else {
                    cli_event!(debug, "the server forgot the session again ({c})")
                }
            }
            SessionEvent::Subscribed { channel } => cli_event!(info, %channel, "subscribed"),
            SessionEvent::SubscriptionDenied { channel, error } => {
                cli_event!(warn, %channel, "subscription denied: {error}")
            }
            SessionEvent::Gap { cause } => gap(&cause.to_string()),
            _ => cli_event!(debug, ?event, "session event"),
        }
    }

    /// Whether `failure` is new in this outage.
    fn first(&mut self, failure: String) -> bool {
        self.outage.insert(failure)
    }
}

fn gap(cause: &str) {
    cli_event!(warn, "messages may have been lost ({cause})")
}

/// Logs a feed event that is neither a call change, a message nor a session event. The
/// feed itself logs catch-up, heals, failed reads, re-logins and GWS `ErrorMessage`s; what
/// it does not log is said here.
pub fn feed_event(event: &FeedEvent) {
    match event {
        // Repeated each staleness bound while replies do not get through: the feed's own
        // "may be stale" warning said it once for the episode.
        FeedEvent::Gap {
            cause: cause @ GapCause::RedeliveryOverdue { .. },
        } => cli_event!(info, "{cause}; reading the server's calls"),
        FeedEvent::Gap { cause } => {
            cli_event!(
                warn,
                "messages may have been lost ({cause}); healing from the server's calls"
            )
        }
        FeedEvent::Lagged { missed } => {
            cli_event!(
                warn,
                missed,
                "fell behind: {missed} feed events were dropped"
            )
        }
        FeedEvent::SessionStarted(started) => {
            if started.partial {
                cli_event!(warn, "StartContactCenterSession: partial success");
            } else {
                cli_event!(info, "StartContactCenterSession: started");
            }
        }
        other => cli_event!(debug, ?other, "feed event"),
    }
}
