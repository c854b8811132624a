//! Serving recordings (`watch --record` fixtures) to any GWS client: `serve --replay`.
//!
//! A user with a [`Recording`] logs in as usual. Their call read answers the calls as the
//! recording began (the recorder's catch-up read, byte for byte; none if it had none). Each
//! Bayeux session of theirs that subscribes to the calls channel gets the recording from its
//! start (per session: a restarted service sees it again): every recorded notification, in
//! order, on its recorded channel, each message served as recorded (its `data` byte for
//! byte: duplicate keys, big integers, unknown fields intact). Meanwhile a call read answers
//! the calls as of the point the latest session reached; a heal the recorder made
//! (`/gws-cometd/heal`) moves what reads answer, no more: a served session has no gap, so its
//! client sees the healed calls only if it reads. Operations sent during a replay are
//! answered by the simulator's own model and change nothing in the recording.
//!
//! A recording serves the clients of the API generation it was made on
//! ([`Recording::api`], told by its channels; one holding both is refused):
//!
//! | recording | login | call read | session subscribing to |
//! |---|---|---|---|
//! | v2 | HTTP Basic on `/api/v2/me` | `GET /api/v2/me/calls` | `/v2/me/calls` on `/api/v2/notifications` |
//! | v3 | either `/auth/v3` login, `initialize-workspace` | `GET /workspace/v3/current-session`, `GET /workspace/v3/voice/calls` | `/workspace/v3/voice` on `/workspace/v3/notifications` (the simulator's own `WorkspaceInitializationComplete` still comes to a session on `/workspace/v3/initialization`) |
//!
//! A client of the other generation is not translated to: its reads are the simulator's
//! (no calls), its sessions get nothing, and the server says so once at WARN naming the
//! user and the recording's generation.
//!
//! Pace: a recording's time stamps (written by `watch --record`) set the gaps, scaled by
//! [`Speed`]; a fixture without stamps plays its replies carrying notifications
//! [`UNSTAMPED_GAP_MS`] apart, and the time between two sessions of one recording
//! (`--record --append`) is left out. A session first waits up to a second for the user's catch-up
//! read, so a client that reads (as the GWS feed does) never gets a notification that races
//! it.
//!
//! | module | what it holds |
//! |---|---|
//! | `recording` | [`Recording`]: a fixture read (with the library's reader) into timed steps |
//! | `control` | [`ReplayControl`]: play, pause, step, speed, position; the pacer sessions follow |
//! | `player` | one session's replay, what the user's call reads answer meanwhile, and what the console is fed |

mod control;
mod player;
mod recording;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use control::{ReplayControl, ReplayPosition, Speed};
pub use recording::{Recording, UNSTAMPED_GAP_MS};

pub(crate) use player::{play, UserReplay};

/// Which users replay which recording, and how.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// Each user's recording. A user without one gets no activity (no living contact
    /// center either).
    pub recordings: BTreeMap<String, Arc<Recording>>,
    /// The pace at start; [`ReplayControl::set_speed`] changes it.
    pub speed: Speed,
    /// Start over after the last notification, for as long as the session lives.
    pub looped: bool,
}

impl ReplayConfig {
    /// `user` replays `recording` at the recorded pace, once per session.
    pub fn new(user: impl Into<String>, recording: Recording) -> ReplayConfig {
        ReplayConfig {
            recordings: BTreeMap::from([(user.into(), Arc::new(recording))]),
            speed: Speed::Factor(1.0),
            looped: false,
        }
    }
}

/// The running replays of a server, by user.
#[derive(Clone, Default)]
pub(crate) struct Replays {
    users: BTreeMap<String, Arc<UserReplay>>,
}

impl Replays {
    pub fn new(config: &ReplayConfig) -> Replays {
        let users = config
            .recordings
            .iter()
            .map(|(user, recording)| {
                let control = ReplayControl::new(config.speed, recording.notifications());
                let replay = UserReplay::new(recording.clone(), control, config.looped);
                (user.clone(), Arc::new(replay))
            })
            .collect();
        Replays { users }
    }

    pub fn user(&self, user: &str) -> Option<&Arc<UserReplay>> {
        self.users.get(user)
    }

    /// Has each user's latest replaying session feed `hub` what it passes on (see
    /// `player`).
    pub fn feed_console(&self, hub: &Arc<crate::console::Hub>) {
        for (user, replay) in &self.users {
            replay.feed_console(hub.clone(), user);
        }
    }

    pub fn control(&self, user: &str) -> Option<ReplayControl> {
        self.users.get(user).map(|u| u.control.clone())
    }
}
