//! `gws-cometd watch`: follow one agent's calls and print one JSON line per change.
//!
//! stdout carries only [`CallChange`]s, one compact JSON object per line, in exactly the
//! format `replay` prints, so that `watch --record f` then `replay f` give the same lines
//! and a service can be tested against a replay and run against `watch`. It starts with the
//! calls already in progress (`"origin":"catchUp"`), then follows live changes; after a gap
//! the calls that differed come with `"origin":"heal"`. While the consumer is behind, a
//! call's changes are merged into one (the feed never lets a slow reader cost the session):
//! stdout is written from a thread of its own, and while it is behind the feed coalesces.
//! `--duration`, Ctrl-C and SIGTERM end the run whatever stdout does.
//!
//! Everything else goes to stderr as log lines (JSON ones with `--log-format json`):
//!
//! | what | stderr |
//! |---|---|
//! | the catch-up is done | INFO `caught up with the server's calls` (`calls`) |
//! | messages may have been lost (re-handshake, a reply lost, a message too large) | WARN, then INFO `healed from the server's calls` (`changes`) |
//! | reading the server's calls failed | WARN (retried with backoff) |
//! | the HTTP session expired | WARN, then INFO `logged in again` |
//! | a GWS `ErrorMessage` (a voice operation failed) | WARN `GWS reports an error: ...` (`code`) |
//! | a notification that does not fit the model | WARN (the store is unchanged) |

use std::process::ExitCode;

use gws_cometd::gws::{CallChange, CallFeed, Delivery, FeedEvent};
use gws_cometd::{ClientEvent, Error};

use super::demo::Activity;
use super::follow::{self, open_feed, GwsTarget, Limits};
use super::log::cli_event;
use super::log::{feed_event, SessionLog};
use super::signal::Stop;
use super::stdout_writer::StdoutWriter;
use super::tail::{Outcome, STOP_GRACE};

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
    super::gws_args::run_command("watch", watch(args))
}

/// What the feed produced next, for stdout.
enum Next {
    Change(CallChange),
    Terminated(std::sync::Arc<Error>),
    Ended,
}

/// The next change, presenting everything else on stderr.
async fn next(feed: &mut CallFeed, log: &mut SessionLog) -> Next {
    loop {
        let Some(ev) = feed.next().await else {
            return Next::Ended;
        };
        match ev {
            FeedEvent::Call(event) => return Next::Change(event.change),
            FeedEvent::Session(ClientEvent::Terminated { error }) => {
                return Next::Terminated(error)
            }
            FeedEvent::Session(ev) => log.event(&ev),
            other => feed_event(&other),
        }
    }
}

async fn watch(args: WatchArgs) -> Result<ExitCode, String> {
    let duration = args.limits.duration()?;
    let mut stop = Stop::new();
    let open = open_feed(
        &args.target,
        Activity::LivingCenter,
        Delivery::Changes,
        false,
        &args.limits,
    );
    tokio::pin!(open);
    // The simulator, if any, is kept alive until watch returns.
    let (mut feed, _demo) = tokio::select! {
        opened = &mut open => opened?,
        signal = stop.requested() => {
            // A session half made is finished (briefly) so it can be ended properly.
            if let Ok(Ok((mut feed, _demo))) = tokio::time::timeout(STOP_GRACE, open).await {
                let _ = tokio::time::timeout(STOP_GRACE, feed.disconnect()).await;
            }
            cli_event!(info, "{signal}: disconnected");
            return Ok(ExitCode::SUCCESS);
        }
    };
    // connect() returned once the session was up and the calls were read.
    let mut log = SessionLog::connected();

    // stdout is written by a thread of its own: a reader that stops reading holds up
    // neither the session nor --record nor the end of the run. While it is behind, no
    // change is taken from the feed, which coalesces them per call meanwhile.
    let mut out = StdoutWriter::start()?;
    let mut written: u64 = 0;
    let deadline = follow::deadline(duration);
    tokio::pin!(deadline);

    let outcome = loop {
        let permit = tokio::select! {
            biased;
            signal = stop.requested() => break Outcome::Interrupted(signal),
            _ = &mut deadline => break Outcome::TimeUp,
            permit = out.reserve() => match permit {
                Ok(permit) => permit,
                Err(e) => break Outcome::Stdout(e),
            },
        };
        let change = tokio::select! {
            biased;
            signal = stop.requested() => break Outcome::Interrupted(signal),
            _ = &mut deadline => break Outcome::TimeUp,
            next = next(&mut feed, &mut log) => match next {
                Next::Change(change) => change,
                Next::Terminated(error) => break Outcome::Terminated(error),
                Next::Ended => break Outcome::Stopped,
            },
        };
        match change_line(&change) {
            Ok(line) => {
                permit.send(line);
                written += 1;
            }
            Err(e) => break Outcome::Stdout(e),
        }
        if args.limits.count == Some(written) {
            break Outcome::CountReached;
        }
    };

    // Best effort, side by side: a server that is gone or a stdout nobody reads must not
    // keep watch from exiting.
    let (_, drained) = tokio::join!(
        tokio::time::timeout(STOP_GRACE, feed.disconnect()),
        out.finish()
    );
    let outcome = match (outcome, drained) {
        (Outcome::CountReached | Outcome::TimeUp, Err(e)) => Outcome::Stdout(e),
        (outcome, _) => outcome,
    };
    Ok(outcome.exit("watch", "changes", written, args.limits.count))
}

/// One change as a JSON line.
fn change_line(change: &CallChange) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(change)?;
    line.push(b'\n');
    Ok(line)
}
