//! What `tail` and `watch` share: which GWS to follow (or the built-in simulator), how long,
//! where to record, and how the session ends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gws_cometd::fixture::Recorder;
use gws_cometd::gws::rest::Credentials;
use gws_cometd::gws::{CallFeed, Delivery};

use super::api_args::ApiArgs;
use super::demo::{self, Activity, Demo};
use super::gws_args::password;
use super::hint::describe;
use super::http_args::HttpArgs;
use super::numbers;

/// The GWS to follow; none given means the built-in simulator.
#[derive(clap::Args, Debug, Clone)]
pub struct GwsTarget {
    /// GWS base URL, e.g. https://gws.example.com:8090: log in as --user (password from
    /// GWS_PASSWORD or --password-file) and follow /v2/me/calls. Without it, the built-in
    /// GWS simulator is started on loopback and followed the same way.
    #[arg(long = "gws", value_name = "BASE_URL", requires = "user")]
    pub base_url: Option<String>,
    /// GWS user name (with --gws).
    #[arg(long, value_name = "NAME", requires = "base_url")]
    pub user: Option<String>,
    /// A file whose first line is the GWS password (instead of GWS_PASSWORD).
    #[arg(long, value_name = "FILE", requires = "base_url")]
    pub password_file: Option<PathBuf>,
    /// Send StartContactCenterSession on this channel (e.g. voice) after logging in, as an
    /// agent desktop does: it assigns devices and logs the agent in. Repeat for several.
    /// Default: none; a passive observer must not (and nothing here ever logs the agent
    /// out).
    #[arg(long, value_name = "CHANNEL")]
    pub start_session: Vec<String>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// How long to follow and what to keep.
#[derive(clap::Args, Debug, Clone)]
pub struct Limits {
    /// Exit 0 right after the Nth line is written.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = numbers::positive)]
    pub count: Option<u64>,
    /// Stop after this many seconds (exit 1 if --count lines did not all arrive).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub duration: Option<f64>,
    /// Also write every notification reply body verbatim to this JSON Lines fixture
    /// (`replay` reads it).
    /// An existing FILE that is not empty is refused unless --force or --append says what
    /// to do with it.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// With --record: overwrite an existing FILE.
    #[arg(long, requires = "record", conflicts_with = "append")]
    pub force: bool,
    /// With --record: add to the end of an existing FILE (replay then reads both sessions).
    #[arg(long, requires = "record")]
    pub append: bool,
    /// Longest the network may add to a request before it counts as failed, in seconds.
    #[arg(long, default_value = "10", value_name = "SECS", allow_negative_numbers = true, value_parser = numbers::seconds)]
    pub max_network_delay: f64,
}

impl Limits {
    /// `--duration`, checked.
    pub fn duration(&self) -> Result<Option<Duration>, String> {
        self.duration.map(|d| seconds("duration", d)).transpose()
    }

    /// `--max-network-delay`, checked.
    pub fn max_network_delay(&self) -> Result<Duration, String> {
        seconds("max-network-delay", self.max_network_delay)
    }

    /// The `--record` file's recorder, opened now (so a bad path fails before connecting).
    /// An existing file that is not empty is never truncated unless `--force` says so.
    pub fn recorder(&self) -> Result<Option<Recorder>, String> {
        let Some(path) = self.record.as_deref() else {
            return Ok(None);
        };
        let file = open_record(path, self.force, self.append)?;
        let label = path.display().to_string();
        // Time stamps let `serve --replay` play the recording back at its own pace.
        Ok(Some(
            Recorder::new(std::io::BufWriter::new(file), label).with_time_stamps(),
        ))
    }
}

/// Opens `--record FILE`: appended to with `append`, truncated with `force`, otherwise
/// created, or refused when it exists and is not empty.
fn open_record(path: &Path, force: bool, append: bool) -> Result<std::fs::File, String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("--record {shown}: is a directory, not a file"));
    }
    let mut options = std::fs::OpenOptions::new();
    if append {
        options.append(true).create(true);
    } else {
        if !force {
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.is_file() && meta.len() > 0 {
                    return Err(format!(
                        "--record {shown}: the file exists and is not empty ({} bytes); \
                         refusing to overwrite it (--force overwrites it, --append adds to it)",
                        meta.len()
                    ));
                }
            }
        }
        options.write(true).create(true).truncate(true);
    }
    options
        .open(path)
        .map_err(|e| format!("--record {shown}: cannot open it: {e}"))
}

/// Resolves once `duration` has passed (`--duration`); without one, never.
pub async fn deadline(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

fn seconds(what: &str, secs: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("--{what} must be a non-negative number of seconds, got {secs}"))
}

/// Logs in to the target (starting the built-in simulator doing `activity` when there is
/// none) and connects a feed; the simulator, if any, lives as long as the returned [`Demo`].
pub async fn open_feed(
    target: &GwsTarget,
    activity: Activity,
    delivery: Delivery,
    devices: bool,
    limits: &Limits,
) -> Result<(CallFeed, Option<Demo>), String> {
    let max_delay = limits.max_network_delay()?;
    let options = target.http.options()?;
    let recorder = limits.recorder()?;
    let (base, credentials, demo) = match &target.base_url {
        Some(base) => {
            let user = target.user.clone().unwrap_or_default();
            let password = password(target.password_file.as_deref())?;
            (base.clone(), Credentials::new(user, password), None)
        }
        None => {
            let demo = demo::start(activity).await?;
            (demo.sim.base_url(), demo.credentials.clone(), Some(demo))
        }
    };
    let builder = CallFeed::builder(base, credentials)
        .delivery(delivery)
        .devices(devices)
        .max_network_delay(max_delay)
        .start_session(target.start_session.clone())
        .http_options(options);
    let builder = target.api.feed(builder)?;
    let mut builder = builder;
    if let Some(mut recorder) = recorder {
        builder =
            builder.on_reply(move |body| recorder.record(body).map_err(std::io::Error::other));
    }
    let feed = builder.connect().await.map_err(|e| describe(&e))?;
    Ok((feed, demo))
}
