//! A fixture loaded for serving: the calls at its start and the steps after it, each at its
//! recorded time.
//!
//! The file is read with the library's own fixture reader (no second parser): once through
//! [`gws_cometd::fixture::Replay`], which checks every line against the model as `replay`
//! does, so a line that would not replay is refused with `FILE:LINE:COL`; then through
//! [`Reader::next_batch`] for the messages themselves, kept whole so they can be served as
//! recorded.
//!
//! A recording serves the clients of the API generation it was made on, told by its
//! channels ([`Api::of_channel`]: its notifications' and the ones its session subscribed
//! to). One that holds both generations' channels is refused, naming the line where the
//! second generation first shows; one that holds neither is taken as v2.

use std::path::{Path, PathBuf};

use gws_cometd::bayeux::Message;
use gws_cometd::fixture::{FixtureError, Reader, Replay};
use gws_cometd::gws::Api;
use serde_json::value::RawValue;

/// The recorded gap between two replies carrying notifications when the fixture has no time
/// stamps (recorded before they were written): one second at speed 1.
pub const UNSTAMPED_GAP_MS: u64 = 1000;

/// The channels of the feed's snapshot lines (see `gws_cometd::fixture::snapshot_line`).
const CATCH_UP: &str = "/gws-cometd/catch-up";
const HEAL: &str = "/gws-cometd/heal";

/// One thing that happens during a replay.
#[derive(Debug)]
pub(crate) enum Step {
    /// A recorded notification, served to the session as it is.
    Deliver(Box<Message>),
    /// A read of the server's calls the recorder's feed made after the start (a heal): from
    /// here on, reads answer these calls.
    Snapshot(Vec<Box<RawValue>>),
}

/// A step and when it was recorded, in milliseconds from the first step.
#[derive(Debug)]
pub(crate) struct Timed {
    pub at_ms: u64,
    pub step: Step,
}

/// A recording ready to serve.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    /// The calls when the recording began: the recorder's catch-up read, or none.
    pub(crate) initial: Vec<Box<RawValue>>,
    pub(crate) steps: Vec<Timed>,
    stamped: bool,
    api: Api,
}

impl Recording {
    /// Reads the fixture at `path`. A fixture that does not read (or would not replay) is an
    /// error naming the file, the line and the column.
    pub fn open(path: impl AsRef<Path>) -> Result<Recording, FixtureError> {
        let path = path.as_ref();
        // Checked as `replay` checks it first: every call notification must fit the model.
        Replay::open(path)?.finish()?;
        let mut reader = Reader::open(path)?;
        let mut recording = Recording {
            path: path.to_owned(),
            initial: Vec::new(),
            steps: Vec::new(),
            stamped: false,
            api: Api::default(),
        };
        let mut generation = Generation::default();
        let mut clock = Clock::default();
        let mut caught_up = false;
        let mut replies = 0u64;
        while let Some(batch) = reader.next_batch() {
            let (line, messages) = batch?;
            let handshake = messages.iter().any(|m| m.channel == "/meta/handshake");
            let at_ms = match reader.time_stamp() {
                Some(stamp) => {
                    recording.stamped = true;
                    clock.at(stamp, handshake)
                }
                None => replies * UNSTAMPED_GAP_MS,
            };
            let mut delivered = false;
            for msg in messages {
                generation
                    .saw(&msg)
                    .map_err(|message| FixtureError::Parse {
                        path: path.to_owned(),
                        line,
                        column: 0,
                        message,
                    })?;
                if msg.channel.starts_with("/meta/") {
                    continue;
                }
                let snapshot = msg.channel == CATCH_UP || msg.channel == HEAL;
                if !snapshot {
                    delivered = true;
                    recording.steps.push(Timed {
                        at_ms,
                        step: Step::Deliver(Box::new(msg)),
                    });
                    continue;
                }
                let calls = snapshot_calls(&msg).map_err(|message| FixtureError::Parse {
                    path: path.to_owned(),
                    line,
                    column: 0,
                    message,
                })?;
                // The first catch-up is the state the recording began with (the feed reads
                // it once subscribed, so at most a few notifications precede it); any later
                // read is where the state stood then.
                if msg.channel == CATCH_UP && !caught_up {
                    recording.initial = calls;
                } else {
                    recording.steps.push(Timed {
                        at_ms,
                        step: Step::Snapshot(calls),
                    });
                }
                caught_up |= msg.channel == CATCH_UP;
            }
            replies += u64::from(delivered);
        }
        recording.api = generation.api.map_or(Api::default(), |(api, _)| api);
        Ok(recording)
    }

    /// The API generation the recording was made on: only that generation's clients get
    /// it (v2 when its channels name neither).
    pub fn api(&self) -> Api {
        self.api
    }

    /// The fixture file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many notifications the recording holds (0: a client gets the calls at its start
    /// and nothing else).
    pub fn notifications(&self) -> usize {
        self.steps
            .iter()
            .filter(|t| matches!(t.step, Step::Deliver(_)))
            .count()
    }

    /// How many calls were in progress when the recording began.
    pub fn calls_at_start(&self) -> usize {
        self.initial.len()
    }

    /// Whether the fixture carries time stamps; without them, replies carrying
    /// notifications are taken as [`UNSTAMPED_GAP_MS`] apart.
    pub fn is_stamped(&self) -> bool {
        self.stamped
    }

    /// How long the recording lasts at speed 1, from its first step to its last.
    pub fn duration(&self) -> std::time::Duration {
        let last = self.steps.last().map_or(0, |t| t.at_ms);
        std::time::Duration::from_millis(last)
    }
}

/// The generation a recording's channels name so far.
#[derive(Default)]
struct Generation {
    /// The generation and the channel that first named it.
    api: Option<(Api, String)>,
}

impl Generation {
    /// Takes the channels `msg` names (its own, or those it subscribes to); an error when
    /// one is of the other generation than those before.
    fn saw(&mut self, msg: &Message) -> Result<(), String> {
        let subscribed = msg.subscription.iter().flat_map(|s| s.channels());
        for channel in std::iter::once(msg.channel.as_str()).chain(subscribed) {
            let Some(api) = Api::of_channel(channel) else {
                continue;
            };
            match &self.api {
                None => self.api = Some((api, channel.to_owned())),
                Some((first, named_by)) if *first != api => {
                    return Err(format!(
                        "{channel} is an API {api} channel, but the recording is on API {first} \
                         ({named_by} before it): a recording serves one generation, record each \
                         with its own watch --record"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Turns time stamps into times from the first one, leaving out the time between the
/// sessions of a recording made of several (`--record --append`, a re-handshake): a new
/// session plays at most [`UNSTAMPED_GAP_MS`] after the line before it, not hours later.
#[derive(Default)]
struct Clock {
    first: Option<u64>,
    /// Recorded time left out so far.
    skipped: u64,
    last_at: u64,
    sessions: u32,
}

impl Clock {
    fn at(&mut self, stamp: u64, handshake: bool) -> u64 {
        let first = *self.first.get_or_insert(stamp);
        let mut at = stamp.saturating_sub(first).saturating_sub(self.skipped);
        if handshake {
            self.sessions += 1;
            let latest = self.last_at + UNSTAMPED_GAP_MS;
            if self.sessions > 1 && at > latest {
                self.skipped += at - latest;
                at = latest;
            }
        }
        self.last_at = self.last_at.max(at);
        at
    }
}

/// The calls a snapshot line lists, as recorded.
fn snapshot_calls(msg: &Message) -> Result<Vec<Box<RawValue>>, String> {
    #[derive(serde::Deserialize)]
    struct Data {
        calls: Vec<Box<RawValue>>,
    }
    let data = msg
        .data
        .as_deref()
        .ok_or_else(|| format!("a {} line without data", msg.channel))?;
    serde_json::from_str::<Data>(data.get())
        .map(|d| d.calls)
        .map_err(|e| format!("a {} line whose data is not a call list: {e}", msg.channel))
}
