//! `gws-cometd tail`: follow channels and print each data message as one JSON line.
//!
//! stdout carries exactly one compact line per data message,
//! `{"channel":"<channel>","data":<data exactly as received>}`, in arrival order; logs and
//! session events go to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use futures::StreamExt;
use gws_cometd::bayeux::{Message, SessionError};
use gws_cometd::client::{EventStream, Subscriber};
use gws_cometd::fixture::Recorder;
use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::{CallFeed, Delivery, FeedEvent, CALLS_CHANNEL, DEVICES_CHANNEL};
use gws_cometd::{Client, ClientEvent, Error};

use super::gws_args::password;

/// Messages buffered between the client and stdout.
const TAIL_BUFFER: usize = 128;

/// Arguments of `tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// A plain Bayeux endpoint, e.g. http://127.0.0.1:8089/cometd. Without --url or --gws,
    /// the built-in GWS simulator is started on loopback and followed as with --gws.
    #[arg(long, conflicts_with = "gws")]
    pub url: Option<String>,
    /// GWS base URL, e.g. https://gws.example.com:8090: log in as --user (password from
    /// GWS_PASSWORD or --password-file), follow /v2/me/calls, recover after re-handshakes.
    #[arg(long, value_name = "BASE_URL", requires = "user")]
    pub gws: Option<String>,
    /// GWS user name (with --gws).
    #[arg(long, value_name = "NAME", requires = "gws")]
    pub user: Option<String>,
    /// A file whose first line is the GWS password (instead of GWS_PASSWORD).
    #[arg(long, value_name = "FILE", requires = "gws")]
    pub password_file: Option<PathBuf>,
    /// Channel to subscribe to; repeat for several. `*` and `**` patterns allowed with
    /// --url; with GWS, /v2/me/calls and /v2/me/devices.
    #[arg(long = "channel", default_value = CALLS_CHANNEL)]
    pub channels: Vec<String>,
    /// Exit 0 right after the Nth message is written.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after this many seconds (exit 1 if --count messages did not all arrive).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Also write every reply body verbatim to this JSON Lines fixture.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Longest the network may add to a request before it counts as failed, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub max_network_delay: f64,
}

/// Runs `tail` on a single-threaded runtime (one long poll needs no more).
pub fn run(args: TailArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gws-cometd tail: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(tail(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gws-cometd tail: {e}");
            ExitCode::from(2)
        }
    }
}

fn seconds(what: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("--{what} must be a non-negative number of seconds, got {secs}"))
}

/// Where the lines come from: a plain Bayeux client, or the GWS call feed.
enum Source {
    Bayeux {
        client: Client,
        events: EventStream,
        messages: Subscriber,
    },
    Gws(Box<CallFeed>),
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
                events, messages, ..
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
                        Some(_) => {}
                        None => return Next::Ended,
                    },
                }
            },
            Source::Gws(feed) => loop {
                let Some(ev) = feed.next().await else {
                    return Next::Ended;
                };
                match ev {
                    FeedEvent::Session(ClientEvent::Terminated { error }) => {
                        return Next::Terminated(error)
                    }
                    FeedEvent::Message(raw) => return Next::Line(raw),
                    _ => {}
                }
            },
        }
    }

    /// A message already buffered, without waiting.
    fn try_next(&mut self) -> Option<Message> {
        match self {
            Source::Bayeux { messages, .. } => messages.try_next(),
            Source::Gws(_) => None,
        }
    }

    async fn disconnect(self) {
        match self {
            Source::Bayeux { client, .. } => client.disconnect().await,
            Source::Gws(mut feed) => feed.disconnect().await,
        }
    }
}

fn recorder(args: &TailArgs) -> Result<Option<Recorder>, String> {
    let recorder = args.record.as_deref().map(Recorder::create).transpose();
    recorder.map_err(|e| e.to_string())
}

async fn open_bayeux(url: &str, args: &TailArgs, max_delay: Duration) -> Result<Source, String> {
    let mut builder = Client::builder(url)
        .max_network_delay(max_delay)
        // tail writes each message at once: a short buffer keeps less in memory when a
        // large reply arrives, at no cost in throughput.
        .buffer_size(TAIL_BUFFER)
        .initial_handshake_attempts(Some(3));
    if let Some(mut recorder) = recorder(args)? {
        builder =
            builder.on_reply(move |body| recorder.record(body).map_err(std::io::Error::other));
    }
    let client = builder.build().map_err(describe)?;
    let events = client.events();
    let messages = client
        .subscribe_all(&args.channels)
        .await
        .map_err(describe)?;
    Ok(Source::Bayeux {
        client,
        events,
        messages,
    })
}

async fn open_gws(
    base: &str,
    credentials: Credentials,
    args: &TailArgs,
    max_delay: Duration,
) -> Result<Source, String> {
    let mut devices = false;
    for channel in &args.channels {
        match channel.as_str() {
            CALLS_CHANNEL => {}
            DEVICES_CHANNEL => devices = true,
            other => {
                return Err(format!(
                    "--channel {other}: a GWS feed follows {CALLS_CHANNEL} and optionally \
                     {DEVICES_CHANNEL}; use --url for other channels"
                ))
            }
        }
    }
    // tail prints every message as received: no coalescing.
    let mut builder = CallFeed::builder(base, credentials)
        .delivery(Delivery::Messages)
        .devices(devices)
        .max_network_delay(max_delay);
    if let Some(mut recorder) = recorder(args)? {
        builder =
            builder.on_reply(move |body| recorder.record(body).map_err(std::io::Error::other));
    }
    let feed = builder.connect().await.map_err(describe)?;
    Ok(Source::Gws(Box::new(feed)))
}

async fn tail(args: TailArgs) -> Result<ExitCode, String> {
    let duration = args.duration.map(|d| seconds("duration", d)).transpose()?;
    let max_delay = seconds("max-network-delay", args.max_network_delay)?;

    // Without --url or --gws: the GWS simulator, kept alive until tail returns.
    let mut _sim = None;
    let mut source = match (&args.url, &args.gws) {
        (Some(url), _) => open_bayeux(url, &args, max_delay).await?,
        (None, Some(base)) => {
            let user = args.user.clone().unwrap_or_default();
            let password = password(args.password_file.as_deref())?;
            open_gws(base, Credentials::new(user, password), &args, max_delay).await?
        }
        (None, None) => {
            let (sim, credentials) = crate::cli::demo::start().await?;
            let base = sim.base_url();
            _sim = Some(sim);
            open_gws(&base, credentials, &args, max_delay).await?
        }
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
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    let outcome = loop {
        tokio::select! {
            biased;
            next = source.next() => {
                let m = match next {
                    Next::Line(m) => m,
                    Next::Terminated(error) => break Outcome::Terminated(error),
                    Next::Ended => break Outcome::Stopped,
                };
                let mut next = Some(m);
                let mut done = false;
                let mut failed = None;
                // Write everything already buffered, then flush once.
                while let Some(m) = next {
                    if let Err(e) = write_line(&mut out, &m) {
                        failed = Some(e);
                        break;
                    }
                    written += 1;
                    if args.count == Some(written) {
                        done = true;
                        break;
                    }
                    next = source.try_next();
                }
                if let Some(e) = failed.or_else(|| out.flush().err()) {
                    break Outcome::Stdout(e);
                }
                if done {
                    break Outcome::CountReached;
                }
            }
            _ = &mut ctrl_c => break Outcome::Interrupted,
            _ = &mut deadline => break Outcome::TimeUp,
        }
    };
    let _ = out.flush();
    drop(out);

    // Best effort: a server that is gone must not keep tail from exiting.
    let _ = tokio::time::timeout(Duration::from_secs(2), source.disconnect()).await;

    Ok(match outcome {
        Outcome::CountReached | Outcome::Interrupted => ExitCode::SUCCESS,
        Outcome::TimeUp => match args.count {
            None => ExitCode::SUCCESS,
            Some(n) => {
                eprintln!("gws-cometd tail: {written} of {n} messages arrived within the duration");
                ExitCode::FAILURE
            }
        },
        Outcome::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Outcome::Stdout(e) => {
            eprintln!("gws-cometd tail: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
        Outcome::Terminated(error) => {
            if matches!(*error, Error::Closed) {
                ExitCode::SUCCESS
            } else {
                eprintln!("gws-cometd tail: {error}{}", hint(&error));
                ExitCode::from(2)
            }
        }
        Outcome::Stopped => {
            eprintln!("gws-cometd tail: the client stopped");
            ExitCode::from(2)
        }
    })
}

enum Outcome {
    CountReached,
    Interrupted,
    TimeUp,
    Stdout(std::io::Error),
    Terminated(std::sync::Arc<Error>),
    Stopped,
}

/// The error and what to check next.
fn describe(error: Error) -> String {
    format!("{error}{}", hint(&error))
}

/// What to check next, for the errors that end `tail`.
fn hint(error: &Error) -> &'static str {
    match error {
        Error::Session(SessionError::Unreachable { .. }) => {
            " (check the URL and that the server is running)"
        }
        Error::Session(
            SessionError::ReconnectNone { .. } | SessionError::HandshakeRefused { .. },
        ) => " (the server will not accept this client; check the endpoint and credentials)",
        _ => "",
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
