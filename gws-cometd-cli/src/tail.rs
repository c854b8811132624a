//! `gws-cometd tail`: follow channels and print each data message as one JSON line.
//!
//! stdout carries exactly one compact line per data message,
//! `{"channel":"<channel>","data":<data exactly as received>}`, in arrival order; logs and
//! session events go to stderr.
//!
//! stdout is written from a thread of its own: a reader that stops reading costs neither the
//! session nor `--record`. Lines are taken from the session as they come (with GWS, tail
//! prints every message, so nothing can be coalesced); while stdout is
//! [`QUEUED_LINES`](super::stdout_writer::QUEUED_LINES) lines behind, new lines are dropped,
//! and stderr says when that starts, how many when it ends, and the total at exit.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use gws_cometd::bayeux::Message;
use gws_cometd::client::{EventStream, Subscriber};
use gws_cometd::gws::{CallFeed, Delivery, FeedEvent, CALLS_CHANNEL, DEVICES_CHANNEL};
use gws_cometd::transport::HttpTransport;
use gws_cometd::{Client, ClientBuilder, ClientEvent, Error};

use super::demo::{Activity, Demo};
use super::follow::{self, open_feed, GwsTarget, Limits};
use super::hint::describe;
use super::log::cli_event;
use super::log::{fatal, feed_event, SessionLog};
use super::signal::Stop;
use super::stdout_writer::{Offered, StdoutWriter};
use super::{EXIT_FATAL, EXIT_REFUSED};

/// How long a stop waits for a connection being made, and then for `/meta/disconnect`: a
/// server that is gone must not keep the command from exiting.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Messages buffered between the client and stdout.
const TAIL_BUFFER: usize = 128;

/// Arguments of `tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// A plain Bayeux endpoint, e.g. http://127.0.0.1:8089/cometd (no login). Without --url
    /// or --gws, the built-in GWS simulator is started on loopback and followed as with
    /// --gws.
    #[arg(long, conflicts_with_all = ["base_url", "start_session"])]
    pub url: Option<String>,
    #[command(flatten)]
    pub target: GwsTarget,
    /// Channel to print; repeat for several. The channels given replace the default
    /// (/v2/me/calls). `*` and `**` patterns allowed with --url; with GWS, /v2/me/calls
    /// and /v2/me/devices.
    #[arg(long = "channel", value_name = "CHANNEL")]
    pub channels: Vec<String>,
    #[command(flatten)]
    pub limits: Limits,
}

/// Runs `tail` on a single-threaded runtime (one long poll needs no more).
pub fn run(mut args: TailArgs) -> ExitCode {
    if args.channels.is_empty() {
        args.channels.push(CALLS_CHANNEL.to_owned());
    }
    super::gws_args::run_command("tail", tail(args))
}

/// Where the lines come from: a plain Bayeux client, or the GWS call feed.
enum Source {
    Bayeux {
        client: Client,
        events: EventStream,
        messages: Subscriber,
        log: SessionLog,
    },
    Gws {
        feed: Box<CallFeed>,
        /// Which of the feed's channels to print.
        calls: bool,
        devices: bool,
        log: SessionLog,
    },
}

/// What a source produced next.
// Moved once per line; boxing would add an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Next {
    Line(Message),
    Terminated(Arc<Error>),
    Ended,
}

impl Source {
    async fn next(&mut self) -> Next {
        match self {
            Source::Bayeux {
                events,
                messages,
                log,
                ..
            } => loop {
                tokio::select! {
                    biased;
                    m = messages.next() => match m {
                        Some(m) => return Next::Line(m),
                        // The client stopped: its Terminated event says why.
                        None => {
                            while let Some(ev) = events.next().await {
                                if let ClientEvent::Terminated { error } = ev {
                                    return Next::Terminated(error);
                                }
                            }
                            return Next::Ended;
                        }
                    },
                    ev = events.next() => match ev {
                        Some(ClientEvent::Terminated { error }) => return Next::Terminated(error),
                        Some(ev) => log.event(&ev),
                        None => return Next::Ended,
                    },
                }
            },
            Source::Gws {
                feed,
                calls,
                devices,
                log,
            } => loop {
                let Some(ev) = feed.next().await else {
                    return Next::Ended;
                };
                match ev {
                    FeedEvent::Session(ClientEvent::Terminated { error }) => {
                        return Next::Terminated(error)
                    }
                    FeedEvent::Session(ev) => log.event(&ev),
                    FeedEvent::Message(raw) => {
                        // The feed always follows the calls channel; only the chosen
                        // channels are printed.
                        let wanted = match raw.channel.as_str() {
                            CALLS_CHANNEL => *calls,
                            DEVICES_CHANNEL => *devices,
                            _ => true,
                        };
                        if wanted {
                            return Next::Line(raw);
                        }
                    }
                    other => feed_event(&other),
                }
            },
        }
    }

    async fn disconnect(self) {
        match self {
            Source::Bayeux { client, .. } => client.disconnect().await,
            Source::Gws { mut feed, .. } => feed.disconnect().await,
        }
    }
}

async fn open_bayeux(url: &str, args: &TailArgs) -> Result<Source, String> {
    let http = gws_cometd::transport::http::new_client(&args.target.http.options()?)
        .map_err(|e| e.to_string())?;
    let transport = HttpTransport::builder(url)
        .http_client(http)
        .build()
        .map_err(|e| e.to_string())?;
    let mut builder = ClientBuilder::new(transport)
        .max_network_delay(args.limits.max_network_delay()?)
        // tail writes each message at once: a short buffer keeps less in memory when a
        // large reply arrives, at no cost in throughput.
        .buffer_size(TAIL_BUFFER)
        .initial_handshake_attempts(Some(3));
    if let Some(mut recorder) = args.limits.recorder()? {
        builder =
            builder.on_reply(move |body| recorder.record(body).map_err(std::io::Error::other));
    }
    let client = builder.build().map_err(|e| describe(&e))?;
    let events = client.events();
    let messages = client
        .subscribe_all(&args.channels)
        .await
        .map_err(|e| describe(&e))?;
    Ok(Source::Bayeux {
        client,
        events,
        messages,
        log: SessionLog::default(),
    })
}

async fn open_gws(args: &TailArgs) -> Result<(Source, Option<Demo>), String> {
    let (mut calls, mut devices) = (false, false);
    for channel in &args.channels {
        match channel.as_str() {
            CALLS_CHANNEL => calls = true,
            DEVICES_CHANNEL => devices = true,
            other => {
                return Err(format!(
                    "--channel {other}: a GWS feed follows {CALLS_CHANNEL} and \
                     {DEVICES_CHANNEL}; use --url for other channels"
                ))
            }
        }
    }
    // tail prints every message as received: no coalescing.
    let (feed, demo) = open_feed(
        &args.target,
        Activity::OneCall,
        Delivery::Messages,
        devices,
        &args.limits,
    )
    .await?;
    let source = Source::Gws {
        feed: Box::new(feed),
        calls,
        devices,
        log: SessionLog::default(),
    };
    Ok((source, demo))
}

async fn tail(args: TailArgs) -> Result<ExitCode, String> {
    let duration = args.limits.duration()?;
    let mut stop = Stop::new();

    let open = async {
        match &args.url {
            Some(url) => open_bayeux(url, &args).await.map(|s| (s, None)),
            None => open_gws(&args).await,
        }
    };
    tokio::pin!(open);
    // The simulator, if any, is kept alive until tail returns.
    let (mut source, _demo) = tokio::select! {
        opened = &mut open => opened?,
        signal = stop.requested() => {
            // A session half made is finished (briefly) so it can be ended properly.
            if let Ok(Ok((source, _demo))) = tokio::time::timeout(STOP_GRACE, open).await {
                let _ = tokio::time::timeout(STOP_GRACE, source.disconnect()).await;
            }
            cli_event!(info, "{signal}: disconnected");
            return Ok(ExitCode::SUCCESS);
        }
    };

    // stdout is written by a thread of its own: a reader that stops reading holds up
    // neither the session nor --record nor the end of the run. While it is
    // QUEUED_LINES behind, lines are dropped and counted on stderr.
    let mut out = StdoutWriter::start()?;
    let mut written: u64 = 0;
    let deadline = follow::deadline(duration);
    tokio::pin!(deadline);

    let outcome = loop {
        let m = tokio::select! {
            biased;
            signal = stop.requested() => break Outcome::Interrupted(signal),
            _ = &mut deadline => break Outcome::TimeUp,
            next = source.next() => match next {
                Next::Line(m) => m,
                Next::Terminated(error) => break Outcome::Terminated(error),
                Next::Ended => break Outcome::Stopped,
            },
        };
        let mut line = Vec::with_capacity(m.data.as_deref().map_or(4, |d| d.get().len()) + 64);
        if let Err(e) = write_line(&mut line, &m) {
            break Outcome::Stdout(e);
        }
        match out.offer(line).await {
            Ok(Offered::Queued) => written += 1,
            Ok(Offered::Dropped) => {}
            Err(e) => break Outcome::Stdout(e),
        }
        if args.limits.count == Some(written) {
            break Outcome::CountReached;
        }
    };
    let dropped = out.dropped();

    // Best effort, side by side: a server that is gone or a stdout nobody reads must not
    // keep tail from exiting.
    let (_, drained) = tokio::join!(
        tokio::time::timeout(STOP_GRACE, source.disconnect()),
        out.finish()
    );
    if dropped > 0 {
        cli_event!(
            warn,
            dropped,
            "{dropped} lines were dropped because stdout was not read"
        );
    }
    let outcome = match (outcome, drained) {
        (Outcome::CountReached | Outcome::TimeUp, Err(e)) => Outcome::Stdout(e),
        (outcome, _) => outcome,
    };
    Ok(outcome.exit("tail", "messages", written, args.limits.count))
}

/// How following ended.
pub enum Outcome {
    CountReached,
    Interrupted(&'static str),
    TimeUp,
    Stdout(std::io::Error),
    Terminated(Arc<Error>),
    Stopped,
}

impl Outcome {
    /// The exit code, after saying what went wrong if anything did.
    pub fn exit(self, command: &str, what: &str, written: u64, count: Option<u64>) -> ExitCode {
        match self {
            Outcome::CountReached => ExitCode::SUCCESS,
            Outcome::Interrupted(signal) => {
                cli_event!(info, "{signal}: disconnected");
                ExitCode::SUCCESS
            }
            Outcome::TimeUp => match count {
                None => ExitCode::SUCCESS,
                Some(n) => {
                    fatal(
                        command,
                        &format!("{written} of {n} {what} arrived within the duration"),
                    );
                    ExitCode::from(EXIT_REFUSED)
                }
            },
            Outcome::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Outcome::Stdout(e) => {
                fatal(command, &format!("cannot write to stdout: {e}"));
                ExitCode::from(EXIT_FATAL)
            }
            Outcome::Terminated(error) => {
                if matches!(*error, Error::Closed) {
                    ExitCode::SUCCESS
                } else {
                    fatal(command, &describe(&error));
                    ExitCode::from(EXIT_FATAL)
                }
            }
            Outcome::Stopped => {
                fatal(command, "the client stopped");
                ExitCode::from(EXIT_FATAL)
            }
        }
    }
}

/// Writes `{"channel":...,"data":...}` with `data` byte for byte as received.
fn write_line(out: &mut impl Write, m: &Message) -> std::io::Result<()> {
    out.write_all(b"{\"channel\":")?;
    serde_json::to_writer(&mut *out, &m.channel)?;
    out.write_all(b",\"data\":")?;
    out.write_all(m.data.as_deref().map_or("null", |d| d.get()).as_bytes())?;
    out.write_all(b"}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_data_exactly_as_received() {
        let m: Message = serde_json::from_str(
            r#"{"channel":"/v2/me/calls","data":{"a":"1","a":2,"n":9007199254740993}}"#,
        )
        .unwrap();
        let mut buf = Vec::new();
        write_line(&mut buf, &m).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\"channel\":\"/v2/me/calls\",\"data\":{\"a\":\"1\",\"a\":2,\"n\":9007199254740993}}\n"
        );
    }
}
