//! Where the CLI's words go: logs on stderr (text or JSON Lines), the one line a command ends
//! with when it fails, and the plain lines that tell a person what to run next.
//!
//! Without `RUST_LOG`, three kinds of library records are left out, because the commands
//! report the same things themselves: the Bayeux session events (presented by
//! [`SessionLog`], so that retries before the first connection are information), and the
//! ERROR records of a client or feed that stopped for good (the command's last line says
//! it, with what to check). A fatal end is then one line, not that line after a few
//! WARN/ERROR lines saying the same. `RUST_LOG` (e.g. `RUST_LOG=debug`) replaces this filter
//! entirely.

use std::sync::OnceLock;

use gws_cometd::bayeux::SessionEvent;
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

/// The filter when `RUST_LOG` is not set. The two library targets turned off are where the
/// library logs session events and the client's fatal end, which the CLI reports itself;
/// async-nats says every reconnect attempt at INFO, which the bridge's own warnings cover.
const DEFAULT_FILTER: &str =
    "info,gws_cometd::bayeux::session::types=off,gws_cometd::client::driver=off,async_nats=warn";

static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Sends logs to stderr in `format`, filtered by `RUST_LOG` or [`DEFAULT_FILTER`].
pub fn init(format: LogFormat) {
    use tracing_subscriber::filter::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let _ = FORMAT.set(format);
    let user_filter = std::env::var("RUST_LOG").ok().filter(|d| !d.is_empty());
    let filter = EnvFilter::new(user_filter.as_deref().unwrap_or(DEFAULT_FILTER));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Text => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .init();
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
                tracing::debug!(missed, "session events were dropped");
                return;
            }
            other => {
                tracing::debug!(?other, "client event");
                return;
            }
        };
        match event {
            SessionEvent::Handshaken { .. } => tracing::debug!("handshaken"),
            SessionEvent::Rehandshaken { .. } => {
                tracing::info!("re-handshaken: restoring the subscriptions")
            }
            SessionEvent::HandshakeFailed {
                attempt,
                cause,
                retry_in,
            } => {
                if !self.first(cause.to_string()) {
                    tracing::debug!(attempt, "handshake failed again: {cause}");
                } else if !self.connected_once {
                    match retry_in {
                        Some(delay) => tracing::info!(
                            attempt,
                            "handshake failed ({cause}); retrying in {delay:?}"
                        ),
                        None => tracing::debug!(attempt, "handshake failed: {cause}"),
                    }
                } else {
                    tracing::warn!(attempt, ?retry_in, "handshake failed: {cause}")
                }
            }
            SessionEvent::Connected => {
                self.outage.clear();
                self.connected_once = true;
                tracing::info!("connected");
            }
            SessionEvent::ConnectionLost { cause } => {
                if self.first(cause.to_string()) {
                    tracing::warn!("connection lost: {cause}")
                } else {
                    tracing::debug!("connection lost again: {cause}")
                }
            }
            SessionEvent::Subscribed { channel } => tracing::info!(%channel, "subscribed"),
            SessionEvent::SubscriptionDenied { channel, error } => {
                tracing::warn!(%channel, "subscription denied: {error}")
            }
            SessionEvent::Gap { cause } => gap(&cause.to_string()),
            _ => tracing::debug!(?event, "session event"),
        }
    }

    /// Whether `failure` is new in this outage.
    fn first(&mut self, failure: String) -> bool {
        self.outage.insert(failure)
    }
}

fn gap(cause: &str) {
    tracing::warn!("messages may have been lost ({cause})")
}

/// Logs a feed event that is neither a call change, a message nor a session event. The
/// feed itself logs catch-up, heals, failed reads, re-logins and GWS `ErrorMessage`s; what
/// it does not log is said here.
pub fn feed_event(event: &FeedEvent) {
    match event {
        FeedEvent::Gap { cause } => {
            tracing::warn!("messages may have been lost ({cause}); healing from the server's calls")
        }
        FeedEvent::Lagged { missed } => {
            tracing::warn!(missed, "fell behind: {missed} feed events were dropped")
        }
        FeedEvent::SessionStarted(started) => {
            if started.partial {
                tracing::warn!("StartContactCenterSession: partial success");
            } else {
                tracing::info!("StartContactCenterSession: started");
            }
        }
        other => tracing::debug!(?other, "feed event"),
    }
}
