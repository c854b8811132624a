//! Where the CLI's words go: logs on stderr (text or JSON Lines), the one line a command ends
//! with when it fails, and the plain lines that tell a person what to run next.
//!
//! Without `RUST_LOG`, the library's own logging of Bayeux session events is left out: the
//! commands that follow a session present those events themselves ([`session_event`]), so
//! that retries before the first connection are information, and a fatal end is one line
//! saying what failed and what to check rather than that line after a few WARN/ERROR lines
//! saying the same. `RUST_LOG` (e.g. `RUST_LOG=debug`) replaces this filter entirely.

use std::sync::OnceLock;

use gws_cometd::bayeux::SessionEvent;
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

/// The filter when `RUST_LOG` is not set. The two library targets turned off are where the
/// library logs session events and the client's fatal end, which the CLI reports itself.
const DEFAULT_FILTER: &str =
    "info,gws_cometd::bayeux::session::types=off,gws_cometd::client::driver=off";

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Sends logs to stderr in `format`, filtered by `RUST_LOG` or [`DEFAULT_FILTER`].
pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let _ = FORMAT.set(format);
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn format() -> LogFormat {
    FORMAT.get().copied().unwrap_or_default()
}

/// The line a failed command ends with: `gws-cometd COMMAND: MESSAGE` (an ERROR record in
/// JSON with `--log-format json`).
pub fn fatal(command: &str, message: &str) {
    match format() {
        LogFormat::Text => eprintln!("gws-cometd {command}: {message}"),
        LogFormat::Json => tracing::error!(command, "{message}"),
    }
}

/// A line for the person at the terminal (how to log in, what to run): as is in text, an
/// INFO record in JSON.
pub fn say(message: &str) {
    match format() {
        LogFormat::Text => eprintln!("{message}"),
        LogFormat::Json => tracing::info!("{message}"),
    }
}

/// Logs a session event of a followed client. Until the first connection, a failed
/// handshake is information (the command retries, and says so in its last line if it gives
/// up); after it, losses and failures are warnings.
pub fn session_event(event: &ClientEvent, connected_once: &mut bool) {
    let ClientEvent::Session(event) = event else {
        return;
    };
    match event {
        SessionEvent::Handshaken { .. } => tracing::debug!("handshaken"),
        SessionEvent::Rehandshaken { .. } => {
            tracing::warn!("re-handshaken: messages published meanwhile may have been missed")
        }
        SessionEvent::HandshakeFailed {
            attempt,
            cause,
            retry_in,
        } => match (retry_in, *connected_once) {
            (Some(delay), false) => {
                tracing::info!(attempt, "handshake failed ({cause}); retrying in {delay:?}")
            }
            (None, false) => tracing::debug!(attempt, "handshake failed: {cause}"),
            _ => tracing::warn!(attempt, ?retry_in, "handshake failed: {cause}"),
        },
        SessionEvent::Connected => {
            tracing::info!("connected");
            *connected_once = true;
        }
        SessionEvent::ConnectionLost { cause } => tracing::warn!("connection lost: {cause}"),
        SessionEvent::Subscribed { channel } => tracing::info!(%channel, "subscribed"),
        SessionEvent::SubscriptionDenied { channel, error } => {
            tracing::warn!(%channel, "subscription denied: {error}")
        }
        _ => tracing::debug!(?event, "session event"),
    }
}
