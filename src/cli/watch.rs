//! `gws-cometd watch`: follow one agent's calls and print one JSON line per change.
//!
//! stdout carries only [`CallChange`]s, one compact JSON object per line, in exactly the
//! format `replay` prints (so a service can be tested against `replay` of a recording and
//! run against `watch`). It starts with the calls already in progress (the catch-up), then
//! follows live notifications. Everything else goes to stderr as log lines (JSON ones with
//! `--log-format json`):
//!
//! | what | stderr |
//! |---|---|
//! | the catch-up is done | INFO `following N calls in progress` |
//! | data may have been lost (re-handshake, HTTP session expired) | WARN, then INFO when healed, with how many changes the heal printed |
//! | reading the server's calls failed | WARN (retried) |
//! | a GWS `ErrorMessage` (a voice operation failed) | WARN with `error_code` and `error_message` |
//! | a notification that does not fit the model | WARN (the store is unchanged) |

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gws_cometd::bayeux::SessionEvent;
use gws_cometd::gws::model::ErrorMessage;
use gws_cometd::gws::{CallChange, CallFeed, FeedEvent, CALLS_CHANNEL};
use gws_cometd::{ClientEvent, Error};

use super::demo::Activity;
use super::follow::{open_feed, GwsTarget, Limits};
use super::log::{fatal, session_event};
use super::signal::Stop;
use super::tail::Outcome;
use super::EXIT_FATAL;

/// Arguments of `watch`.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub target: GwsTarget,
    #[command(flatten)]
    pub limits: Limits,
}

/// Runs `watch`.
pub fn run(args: WatchArgs) -> ExitCode {
    let rt = match super::gws_args::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            fatal("watch", &e);
            return ExitCode::from(EXIT_FATAL);
        }
    };
    match rt.block_on(watch(args)) {
        Ok(code) => code,
        Err(e) => {
            fatal("watch", &e);
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// What the feed produced next, for stdout.
enum Next {
    /// Changes to print, in order.
    Changes(Vec<CallChange>),
    Terminated(std::sync::Arc<Error>),
    /// The catch-up failed.
    Failed(String),
    Ended,
}

/// Follows the feed, presenting what is not a change on stderr.
struct Follower {
    feed: CallFeed,
    connected_once: bool,
    /// Whether the calls in progress were read; done once `/v2/me/calls` is subscribed, so
    /// that nothing that happens after the read is missed.
    caught_up: bool,
}

impl Follower {
    /// The calls in progress now, as changes (every call is new to the empty store).
    async fn catch_up(&mut self) -> Result<Vec<CallChange>, String> {
        let calls = self
            .feed
            .session()
            .calls()
            .await
            .map_err(|e| format!("cannot read the calls in progress: {e}"))?;
        let changes = self.feed.store().reconcile(&calls, Instant::now());
        tracing::info!("following {} calls in progress", changes.len());
        Ok(changes)
    }

    async fn next(&mut self) -> Next {
        loop {
            let Some(ev) = self.feed.next().await else {
                return Next::Ended;
            };
            match ev {
                FeedEvent::Call {
                    change: Some(change),
                    ..
                } => return Next::Changes(vec![change]),
                FeedEvent::Recovered { changes } => {
                    tracing::warn!(
                        changes = changes.len(),
                        "a gap (re-handshake): notifications may have been lost; healed from \
                         the server's calls with {} changes",
                        changes.len()
                    );
                    return Next::Changes(changes);
                }
                FeedEvent::LoggedInAgain { changes } => {
                    tracing::info!(
                        changes = changes.len(),
                        "the HTTP session had expired; logged in again and healed: {} changes",
                        changes.len()
                    );
                    return Next::Changes(changes);
                }
                FeedEvent::RecoveryFailed(e) => {
                    tracing::warn!("could not read the server's calls to heal a gap: {e}");
                }
                FeedEvent::GwsError { message, .. } => gws_error(&message),
                FeedEvent::Other {
                    error: Some(error), ..
                } => tracing::warn!("skipped a notification: {error}"),
                FeedEvent::Session(ClientEvent::Terminated { error }) => {
                    return Next::Terminated(error)
                }
                FeedEvent::Session(ev) => {
                    session_event(&ev, &mut self.connected_once);
                    let calls_subscribed = matches!(
                        &ev,
                        ClientEvent::Session(SessionEvent::Subscribed { channel })
                            if channel.as_str() == CALLS_CHANNEL
                    );
                    if calls_subscribed && !self.caught_up {
                        self.caught_up = true;
                        return match self.catch_up().await {
                            Ok(changes) => Next::Changes(changes),
                            Err(e) => Next::Failed(e),
                        };
                    }
                }
                _ => {}
            }
        }
    }
}

/// A GWS `ErrorMessage`, as a service author needs it: code and text.
fn gws_error(message: &ErrorMessage) {
    let code = message.error_code.as_ref().map(|c| c.get().to_owned());
    tracing::warn!(
        error_code = code.as_deref().unwrap_or("none"),
        error_message = message.error_message.as_deref().unwrap_or(""),
        "GWS ErrorMessage: {}",
        message
            .error_message
            .as_deref()
            .unwrap_or("(no errorMessage)")
    );
}

async fn watch(args: WatchArgs) -> Result<ExitCode, String> {
    let duration = args.limits.duration()?;
    let mut stop = Stop::new();
    let open = open_feed(&args.target, Activity::LivingCenter, false, &args.limits);
    // The simulator, if any, is kept alive until watch returns.
    let (feed, _demo) = tokio::select! {
        opened = open => opened?,
        signal = stop.requested() => {
            tracing::info!("{signal}: stopping before the connection was made");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut follower = Follower {
        feed,
        connected_once: false,
        caught_up: false,
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut written: u64 = 0;
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);

    let outcome = loop {
        let changes = tokio::select! {
            biased;
            next = follower.next() => match next {
                Next::Changes(changes) => changes,
                Next::Terminated(error) => break Outcome::Terminated(error),
                Next::Failed(e) => break Outcome::Failed(e),
                Next::Ended => break Outcome::Stopped,
            },
            signal = stop.requested() => break Outcome::Interrupted(signal),
            _ = &mut deadline => break Outcome::TimeUp,
        };
        match write_changes(&mut out, &changes, &mut written, args.limits.count) {
            Ok(true) => break Outcome::CountReached,
            Ok(false) => {}
            Err(e) => break Outcome::Stdout(e),
        }
    };
    let _ = out.flush();
    drop(out);

    // Best effort: a server that is gone must not keep watch from exiting.
    let _ = tokio::time::timeout(Duration::from_secs(2), follower.feed.disconnect()).await;
    Ok(outcome.exit("watch", "changes", written, args.limits.count))
}

/// Writes the changes, one line each, and flushes; true once `count` lines are written.
fn write_changes(
    out: &mut impl Write,
    changes: &[CallChange],
    written: &mut u64,
    count: Option<u64>,
) -> std::io::Result<bool> {
    for change in changes {
        serde_json::to_writer(&mut *out, change)?;
        out.write_all(b"\n")?;
        *written += 1;
        if count == Some(*written) {
            out.flush()?;
            return Ok(true);
        }
    }
    out.flush()?;
    Ok(false)
}
