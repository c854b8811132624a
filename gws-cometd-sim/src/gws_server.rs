//! The GWS simulator over HTTP: [`GwsSim`]'s REST routes and the Bayeux notification
//! endpoint on one hyper server, with Bayeux sessions bound to GWS users.
//!
//! | path | served by |
//! |---|---|
//! | `/api/v2/me...` | [`GwsSim::handle`] (login, calls, user data) |
//! | `/api/v2/notifications...` | Bayeux, for a valid `JSESSIONID` (else 401) and, with CSRF on, its token (else 403); the Bayeux session belongs to that user |
//! | `/auth/v3...`, `/workspace/v3...` | the Workspace API v3 ([`V3`]): OAuth login, initialize-workspace, current session, call operations |
//! | `/workspace/v3/notifications...` | Bayeux, for a valid `WORKSPACE_SESSIONID` (else 401) with `Content-Type: application/json` (else 415); the Bayeux session belongs to that user |
//! | `/cometd...` | plain Bayeux, no authentication |
//! | `/`, `/console/...` | the console in a browser (see `console`), with the REST API's credentials |
//!
//! Both generations share the users, the calls and the Bayeux engine: every change of a
//! call is published on v2's [`CALLS_CHANNEL`](crate::gws::CALLS_CHANNEL) and then on v3's `/workspace/v3/voice`.
//! Notifications of a call go only to its owner's Bayeux sessions. The first time one of a
//! user's sessions subscribes to [`CALLS_CHANNEL`](crate::gws::CALLS_CHANNEL) (or to `/workspace/v3/voice`), the
//! living contact center (or the configured scenario) starts for that user, once per user,
//! for the server's life; with [`GwsServerConfig::scenario_per_session`], the scenario
//! starts again for every new session that subscribes, and stops when that session ends.
//! With [`GwsServerConfig::replay`], each new session of a user with a recording gets the
//! recording instead, if it came on the recording's API generation (see [`crate::replay`]).
//! Once an HTTP session is gone (expired or [`GwsSim::expire_http_sessions`]), CometD
//! requests made with it get 401, so a client logs in again.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use gws_cometd::gws::Api;
use hyper::header::WWW_AUTHENTICATE;
use hyper::{Request, Response, StatusCode};
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

use super::bayeux_route::BayeuxRoute;
use super::console::{ConsoleRoute, Hub};
use super::engine::Engine;
use super::fault::ActiveFaults;
use super::gws::{GwsSim, GwsSimConfig, Publish, ScenarioStep, V3Restart, V3};
use super::gws_v3_server::{announce_initialization, V3NotificationsRoute, V3RestRoute};
use super::replay::{play, ReplayConfig, ReplayControl, Replays};
use super::server::{add_header, json_reply, Route};
use super::{SimConfig, SimServer};

/// The authenticated Bayeux endpoint.
const NOTIFICATIONS_PATH: &str = "/api/v2/notifications";

/// How long the scenario watcher sleeps when nothing changes (it wakes on every
/// subscription change; this only bounds a missed wake-up).
const WATCH_RECHECK: Duration = Duration::from_secs(60);

/// How a [`GwsSimServer`] listens and behaves.
#[derive(Clone, Debug)]
pub struct GwsServerConfig {
    /// Listening address and Bayeux timing.
    pub sim: SimConfig,
    /// Users, CSRF and HTTP session lifetime. `public_url` is replaced by the bound address.
    pub gws: GwsSimConfig,
    /// What happens for each user once they subscribe to [`CALLS_CHANNEL`](crate::gws::CALLS_CHANNEL): `None` (the
    /// default) runs the living contact center ([`GwsSim::run_living_center_for`]),
    /// `Some(steps)` runs this scenario instead, and `Some(vec![])` nothing.
    pub scenario: Option<Vec<ScenarioStep>>,
    /// Runs the scenario for every new Bayeux session that subscribes to [`CALLS_CHANNEL`](crate::gws::CALLS_CHANNEL)
    /// (for its user, from the start; stopped when that session ends) instead of once per
    /// user: a restarted client or service under test sees the scenario again. No effect on
    /// the living contact center.
    pub scenario_per_session: bool,
    /// The living contact center's seed: the same seed gives every user the same sequence
    /// of calls and operations. `None` picks one at random (logged, and shown by
    /// [`GwsSimServer::seed`]).
    pub seed: Option<u64>,
    /// Serve recordings instead of any other activity (see [`crate::replay`]): each new
    /// session of a user with a recording that subscribes to the calls channel of the
    /// recording's generation ([`CALLS_CHANNEL`](crate::gws::CALLS_CHANNEL) or `/workspace/v3/voice`) gets it from its
    /// start, and that user's call reads on that generation answer the recording's calls.
    /// Takes precedence over `scenario` and the living contact center.
    pub replay: Option<ReplayConfig>,
}

impl GwsServerConfig {
    /// One user, `127.0.0.1:0`, CSRF on, the living contact center with a random seed.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        GwsServerConfig {
            sim: SimConfig::default(),
            gws: GwsSimConfig::new(user, password),
            scenario: None,
            scenario_per_session: false,
            seed: None,
            replay: None,
        }
    }
}

/// What runs for each user from their first subscription.
#[derive(Clone)]
enum Activity {
    Scenario(Vec<ScenarioStep>),
    LivingCenter {
        seed: u64,
    },
    /// Always per session.
    Replay(Replays),
}

/// A running GWS simulator. Dropping it stops the server and every scenario;
/// [`GwsSimServer::shutdown`] stops it gracefully.
pub struct GwsSimServer {
    bayeux: SimServer,
    gws: GwsSim,
    v3: Arc<V3>,
    seed: Option<u64>,
    replays: Option<Replays>,
}

impl std::fmt::Debug for GwsSimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GwsSimServer")
            .field("addr", &self.bayeux.addr())
            .field("gws", &self.gws)
            .finish()
    }
}

impl GwsSimServer {
    /// Binds `config.sim.listen` and starts serving. Fails when the address cannot be bound
    /// (the error's kind says why, e.g. `AddrInUse`). The error is a plain
    /// [`std::io::Error`], so `?` takes it into `gws_cometd::Result` too (as
    /// [`gws_cometd::Error::Io`]):
    ///
    /// ```
    /// use gws_cometd::gws::{CallFeed, Credentials};
    /// use gws_cometd_sim::{GwsServerConfig, GwsSimServer};
    ///
    /// async fn follow() -> gws_cometd::Result<()> {
    ///     let sim = GwsSimServer::start(GwsServerConfig::new("agent", "secret")).await?;
    ///     let mut feed = CallFeed::builder(sim.base_url(), Credentials::new("agent", "secret"))
    ///         .connect()
    ///         .await?;
    ///     feed.disconnect().await;
    ///     Ok(())
    /// }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    /// #     .block_on(follow()).unwrap();
    /// ```
    pub async fn start(config: GwsServerConfig) -> std::io::Result<GwsSimServer> {
        let GwsServerConfig {
            sim,
            gws: mut gws_config,
            scenario,
            scenario_per_session,
            seed,
            replay,
        } = config;
        let replays = replay.as_ref().map(Replays::new);
        let activity = match (&replays, scenario) {
            (Some(replays), _) => Activity::Replay(replays.clone()),
            (None, Some(steps)) => Activity::Scenario(steps),
            (None, None) => Activity::LivingCenter {
                seed: seed.unwrap_or_else(|| fastrand::u64(..)),
            },
        };
        let mut made = None;
        let mut bayeux =
            SimServer::start_with(sim, |ext| {
                gws_config.public_url = format!("http://{}", ext.addr);
                let engine = ext.engine.clone();
                let v3_cell: Arc<OnceLock<Arc<V3>>> = Arc::default();
                let v3_of_publish = v3_cell.clone();
                let publish: Publish = Arc::new(move |user: &str, channel: &str, data: String| {
                    match RawValue::from_string(data) {
                        Ok(raw) => {
                            engine.publish_to(user, channel, &raw);
                            let unsubscribed = channel
                                .starts_with("/workspace/v3/")
                                .then(|| v3_of_publish.get()?.unsubscribed_delivery())
                                .flatten();
                            if let Some(clients) = unsubscribed {
                                engine.push_unsubscribed(user, channel, &raw, |id| {
                                    clients.contains(id)
                                });
                            }
                        }
                        Err(e) => tracing::warn!(channel, error = %e, "notification is not JSON"),
                    }
                });
                let (publish, hub) = Hub::tap(publish);
                if let Some(replays) = &replays {
                    replays.feed_console(&hub);
                }
                let gws = GwsSim::new(gws_config, publish);
                let v3 = Arc::new(V3::new(gws.clone()));
                let _ = v3_cell.set(v3.clone());
                made = Some((
                    gws.clone(),
                    v3.clone(),
                    ext.engine.clone(),
                    ext.shutdown.clone(),
                ));
                let rest: Arc<dyn Route> = Arc::new(RestRoute { gws: gws.clone() });
                let notifications: Arc<dyn Route> = Arc::new(NotificationsRoute {
                    gws: gws.clone(),
                    bayeux: BayeuxRoute {
                        engine: ext.engine.clone(),
                        bases: vec![NOTIFICATIONS_PATH.to_owned()],
                    },
                });
                let v3_rest: Arc<dyn Route> = Arc::new(V3RestRoute { v3: v3.clone() });
                let v3_notifications: Arc<dyn Route> =
                    Arc::new(V3NotificationsRoute::new(v3, ext.engine.clone()));
                let console = ConsoleRoute::route(gws, hub, replays.clone(), ext.shutdown.clone());
                vec![rest, notifications, v3_rest, v3_notifications, console]
            })
            .await?;
        let (gws, v3, engine, shutdown) =
            made.ok_or_else(|| std::io::Error::other("simulator routes were not built"))?;
        let seed = match &activity {
            Activity::LivingCenter { seed } => Some(*seed),
            Activity::Scenario(_) | Activity::Replay(_) => None,
        };
        if let Some(replays) = replays.clone() {
            gws.set_calls_source(Arc::new(move |user: &str, api| {
                replays.user(user)?.read_calls(user, api)
            }));
        }
        bayeux.spawn(announce_initialization(
            v3.clone(),
            engine.clone(),
            shutdown.clone(),
        ));
        if !matches!(&activity, Activity::Scenario(steps) if steps.is_empty()) {
            let per_session = matches!(activity, Activity::Replay(_))
                || (scenario_per_session && matches!(activity, Activity::Scenario(_)));
            bayeux.spawn(start_activities(
                gws.clone(),
                engine,
                activity,
                per_session,
                shutdown,
            ));
        }
        tracing::debug!(addr = %bayeux.addr(), ?seed, "GWS simulator listening");
        Ok(GwsSimServer {
            bayeux,
            gws,
            v3,
            seed,
            replays,
        })
    }

    /// The control of `user`'s replay (play, pause, step, speed, position); `None` when
    /// the server replays nothing for that user.
    pub fn replay_control(&self, user: &str) -> Option<ReplayControl> {
        self.replays.as_ref()?.control(user)
    }

    /// The living contact center's seed (the configured one or the one picked at random);
    /// `None` when a scenario runs instead. Starting again with this seed repeats every
    /// user's calls.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The GWS base URL, `http://127.0.0.1:PORT`: REST at `{base}/api/v2/me`, Bayeux at
    /// `{base}/api/v2/notifications`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.bayeux.addr())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.bayeux.addr()
    }

    /// The GWS model: drive calls, expire HTTP sessions, rotate CSRF tokens.
    pub fn gws(&self) -> &GwsSim {
        &self.gws
    }

    /// The Workspace API v3 side: its sessions and fault modes.
    pub fn v3(&self) -> &V3 {
        &self.v3
    }

    /// Restarts the Workspace API v3 side as clients see a GWS 9 restart: every workspace
    /// session, token and code forgotten, and every v3 CometD session ended as `how` says.
    /// v2 sessions and the calls are kept.
    pub fn restart_v3(&self, how: V3Restart) {
        let clients = self.v3.restart(how);
        let engine = self.bayeux.engine();
        match how {
            V3Restart::Disconnect => engine.end_sessions(|id| clients.contains(id)),
            _ => engine.forget_sessions(|id| clients.contains(id)),
        }
    }

    /// The Bayeux side: faults, sessions, statistics, waiting for subscribers.
    pub fn bayeux(&self) -> &SimServer {
        &self.bayeux
    }

    /// Stops gracefully (see [`SimServer::shutdown`]); scenarios stop with it.
    pub async fn shutdown(self) {
        self.bayeux.shutdown().await;
    }
}

/// Starts the activity for every user the first time one of their sessions subscribes to
/// the calls channel, or with `per_session` for every new session that does (stopping it
/// when the session ends). Its tasks live in a [`JoinSet`], so they end with this task.
async fn start_activities(
    gws: GwsSim,
    engine: Arc<Engine>,
    activity: Activity,
    per_session: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    // What an activity was started for: a user, or a session (its client id) with
    // `per_session`; the handle stops a session's scenario when the session is gone.
    let mut started: HashMap<String, AbortHandle> = HashMap::new();
    let mut running = JoinSet::new();
    // Who receives the calls now, each with the key it is started under, the user and the
    // generation it came on (a replay serves only its own generation's sessions).
    let receiving = |engine: &Engine| -> BTreeMap<String, (String, Api)> {
        let mut sessions = BTreeMap::new();
        for api in [Api::V3, Api::V2] {
            for (id, user) in engine.sessions_receiving(api.calls_channel()) {
                sessions.insert(id, (user, api));
            }
        }
        if per_session {
            sessions
        } else {
            sessions
                .into_values()
                .map(|(u, api)| (u.clone(), (u, api)))
                .collect()
        }
    };
    loop {
        {
            let changed = engine.wait_until(WATCH_RECHECK, |e| {
                let now = receiving(e);
                now.keys().any(|k| !started.contains_key(k))
                    || (per_session && started.keys().any(|k| !now.contains_key(k)))
            });
            tokio::select! {
                _ = changed => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
                Some(_) = running.join_next(), if !running.is_empty() => continue,
            }
        }
        let now = receiving(&engine);
        if per_session {
            started.retain(|session, task| {
                let keep = now.contains_key(session);
                if !keep {
                    tracing::info!(client_id = %session, "session gone: stopping its scenario");
                    task.abort();
                }
                keep
            });
        }
        for (key, (user, api)) in now {
            if started.contains_key(&key) {
                continue;
            }
            let task = match &activity {
                Activity::Scenario(steps) => {
                    if per_session {
                        tracing::info!(%user, client_id = %key, "starting the scenario for a new session");
                    } else {
                        tracing::info!(%user, "starting the scenario");
                    }
                    running.spawn(gws.scenario(user, steps.clone()))
                }
                Activity::LivingCenter { seed } => {
                    tracing::info!(%user, seed, "starting the living contact center");
                    running.spawn(gws.living_center(user, *seed))
                }
                Activity::Replay(replays) => match replays.user(&user) {
                    Some(replay) if replay.api() == api => {
                        running.spawn(play(replay.clone(), engine.clone(), key.clone()))
                    }
                    // Not translated: the session gets nothing, as a user without one does.
                    Some(replay) => {
                        replay.other_generation(&user, api);
                        running.spawn(async {})
                    }
                    // Nothing to replay for this user: nothing happens for them.
                    None => running.spawn(async {}),
                },
            };
            started.insert(key, task);
        }
    }
}

/// `/api/v2/me...` through [`GwsSim::handle`].
struct RestRoute {
    gws: GwsSim,
}

impl Route for RestRoute {
    fn handle<'a>(
        &'a self,
        req: &'a Request<Bytes>,
        _faults: &'a ActiveFaults,
    ) -> BoxFuture<'a, Option<Response<Bytes>>> {
        futures::future::ready(self.gws.handle(req)).boxed()
    }
}

/// `/api/v2/notifications...`: Bayeux for the user of a valid HTTP session.
struct NotificationsRoute {
    gws: GwsSim,
    bayeux: BayeuxRoute,
}

impl Route for NotificationsRoute {
    fn handle<'a>(
        &'a self,
        req: &'a Request<Bytes>,
        faults: &'a ActiveFaults,
    ) -> BoxFuture<'a, Option<Response<Bytes>>> {
        if !self.bayeux.serves(req.uri().path()) {
            return futures::future::ready(None).boxed();
        }
        async move {
            let Some(user) = self.gws.session_of(req.headers()) else {
                let mut r = json_reply(
                    StatusCode::UNAUTHORIZED,
                    r#"{"statusCode":20,"statusMessage":"Authentication required"}"#,
                );
                add_header(&mut r, WWW_AUTHENTICATE, r#"Basic realm="gws""#);
                return Some(r);
            };
            if !self.gws.csrf_ok(req.headers()) {
                return Some(json_reply(
                    StatusCode::FORBIDDEN,
                    r#"{"statusCode":3,"statusMessage":"Missing or invalid Csrf token"}"#,
                ));
            }
            Some(self.bayeux.answer(req, faults, Some(&user)).await)
        }
        .boxed()
    }
}
