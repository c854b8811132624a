//! `gws-cometd tail`: follow channels and print each data message as one JSON line.
//!
//! stdout carries exactly one compact line per data message,
//! `{"channel":"<channel>","data":<data exactly as received>}`, in arrival order; logs and
//! session events go to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use gws_cometd::bayeux::Message;
use gws_cometd::{Client, ClientEvent, Error};

/// Arguments of `tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Bayeux endpoint, e.g. http://127.0.0.1:8089/cometd. Without it, a built-in simulator
    /// is started on loopback and publishes a short demo call.
    #[arg(long)]
    pub url: Option<String>,
    /// Channel to subscribe to; repeat for several. `*` and `**` patterns allowed.
    #[arg(long = "channel", default_value = "/v2/me/calls")]
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

fn seconds(what: &str, secs: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(secs).map_err(|_| Error::InvalidUrl {
        url: String::new(),
        reason: format!("--{what} must be a non-negative number of seconds, got {secs}"),
    })
}

async fn tail(args: TailArgs) -> Result<ExitCode, Error> {
    let duration = args.duration.map(|d| seconds("duration", d)).transpose()?;
    let max_delay = seconds("max-network-delay", args.max_network_delay)?;

    // Without --url: the simulator, kept alive until tail returns.
    let (url, _sim) = match &args.url {
        Some(url) => (url.clone(), None),
        None => {
            let sim = crate::cli::demo::start(&args.channels).await?;
            (sim.url(), Some(sim))
        }
    };

    let mut builder = Client::builder(&url)
        .max_network_delay(max_delay)
        .initial_handshake_attempts(Some(3));
    if let Some(path) = &args.record {
        let mut recorder = gws_cometd::fixture::Recorder::create(path)?;
        builder =
            builder.on_reply(move |body| recorder.record(body).map_err(std::io::Error::other));
    }
    let client = builder.build()?;
    let mut events = client.events();
    let mut messages = client.subscribe_all(&args.channels)?;

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
            m = messages.next() => {
                let Some(m) = m else {
                    // The client stopped; its Terminated event says why.
                    break Outcome::Stopped;
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
                    next = messages.try_next();
                }
                if let Some(e) = failed.or_else(|| out.flush().err()) {
                    break Outcome::Stdout(e);
                }
                if done {
                    break Outcome::CountReached;
                }
            }
            ev = events.next() => match ev {
                Some(ClientEvent::Terminated { error }) => break Outcome::Terminated(error),
                Some(_) => {}
                None => break Outcome::Stopped,
            },
            _ = &mut ctrl_c => break Outcome::Interrupted,
            _ = &mut deadline => break Outcome::TimeUp,
        }
    };
    let _ = out.flush();
    drop(out);

    // Best effort: a server that is gone must not keep tail from exiting.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.disconnect()).await;

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

/// What to check next, for the errors that end `tail`.
fn hint(error: &Error) -> &'static str {
    match error {
        Error::Unreachable { .. } => " (check the URL and that the server is running)",
        Error::Unauthorized { .. } => "",
        Error::ReconnectNone { .. } | Error::HandshakeRefused(_) => {
            " (the server will not accept this client; check the endpoint and credentials)"
        }
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
