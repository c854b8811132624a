//! `gws-cometd serve`: runs the GWS simulator (REST + authenticated Bayeux) until Ctrl-C or
//! SIGTERM, and says how to log in to it.
//!
//! Who may log in: `--users FILE` (`user:password` lines), or one `--user` (default `agent`)
//! whose password comes from `GWS_PASSWORD` or `--password-file`; with none of these, a
//! random password is written to a private file that the printed commands name.
//!
//! What happens once a user subscribes: the living contact center, a `--scenario`, or with
//! `--replay` a recording served as recorded (see `gws_cometd_sim::replay`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::collections::BTreeMap;
use std::sync::Arc;

use gws_cometd_sim::gws::load_scenario;
use gws_cometd_sim::replay::{Recording, ReplayConfig, Speed, UNSTAMPED_GAP_MS};
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};

use super::demo::{generated_password, print_login, Login, PasswordFile};
use super::gws_args::{password, PASSWORD_ENV};
use super::log::cli_event;
use super::log::{fatal, say};
use super::numbers;
use super::signal::Stop;
use super::EXIT_FATAL;

/// Arguments of `serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The users who may log in: one `user:password` per line (blank lines and lines
    /// starting with # are skipped). Keep it readable by you only (chmod 600).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["user", "password_file"])]
    pub users: Option<PathBuf>,
    /// The one user who may log in (default agent), with the password from GWS_PASSWORD or
    /// --password-file; with neither, a random password written to a private file.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// A file whose first line is --user's password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Seed of the living contact center (the default activity): the same seed gives the
    /// same calls. Default: random, printed at start.
    #[arg(long, value_name = "N", conflicts_with = "scenario", allow_negative_numbers = true, value_parser = numbers::whole)]
    pub seed: Option<u64>,
    /// Run this scenario for each user once they subscribe to /v2/me/calls, instead of the
    /// living contact center (JSON Lines or a JSON array of steps).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Run --scenario again for every new CometD session that subscribes to /v2/me/calls
    /// (stopping it when that session ends), instead of once per user for the server's
    /// life: a restarted service under test sees the scenario from its start.
    #[arg(long, requires = "scenario")]
    pub scenario_per_session: bool,
    /// Serve a recording (a `watch --record` fixture) to any GWS client instead of the
    /// living contact center: the user's calls read answers the calls as the recording began,
    /// then every recorded notification comes in order, on its recorded channel, as recorded.
    /// Replayed per session: each new CometD session of the user that subscribes to
    /// /v2/me/calls (/workspace/v3/voice for a recording made with --api v3) gets the
    /// recording from its start; a client of the other API generation gets nothing replayed.
    /// A bare FILE is for the one configured user; USER=FILE (repeatable) gives each user
    /// their own. A fixture that does not read, or mixes v2 and v3 channels, is refused at
    /// start, nothing served.
    #[arg(long, value_name = "[USER=]FILE", conflicts_with_all = ["scenario", "seed"])]
    pub replay: Vec<String>,
    /// The --replay pace: a factor of the recorded pace (1 as recorded, 2 twice as fast), or
    /// max (no waiting). Fixtures recorded without time stamps play their replies carrying
    /// notifications one second apart at 1.
    #[arg(long, value_name = "X|max", requires = "replay", default_value = "1")]
    pub speed: Speed,
    /// Start the recording over after its last notification, for as long as the session
    /// lives.
    #[arg(long = "loop", requires = "replay")]
    pub looped: bool,
}

/// Runs `serve`.
pub fn run(args: ServeArgs) -> ExitCode {
    match prepare(&args) {
        Ok((config, login)) => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    fatal("serve", &format!("cannot start the runtime: {e}"));
                    return ExitCode::from(EXIT_FATAL);
                }
            };
            rt.block_on(serve(config, login, args.listen))
        }
        Err(e) => {
            fatal("serve", &e);
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// How the printed commands log in, and the password file to keep while serving.
struct LoginHelp {
    user: String,
    login: Login,
    note: Option<String>,
    _generated: Option<PasswordFile>,
}

fn prepare(args: &ServeArgs) -> Result<(GwsServerConfig, LoginHelp), String> {
    let scenario = args
        .scenario
        .as_deref()
        .map(load_scenario)
        .transpose()
        .map_err(|e| format!("bad scenario: {e}"))?;
    let (users, help) = match &args.users {
        Some(file) => {
            let users = read_users(file)?;
            let user = users[0].0.clone();
            let note = format!(
                "(GWS_PASSWORD: the password of {user} in {})",
                file.display()
            );
            let help = LoginHelp {
                user,
                login: Login::Env,
                note: Some(note),
                _generated: None,
            };
            (users, help)
        }
        None => {
            let user = args.user.clone().unwrap_or_else(|| "agent".to_owned());
            if user.is_empty() {
                return Err("--user: the user name is empty".to_owned());
            }
            let given = args.password_file.is_some()
                || std::env::var(PASSWORD_ENV).is_ok_and(|p| !p.is_empty());
            if given {
                let pw = password(args.password_file.as_deref())?;
                let login = match &args.password_file {
                    Some(file) => Login::PasswordFile(file.clone()),
                    None => Login::Env,
                };
                let users = vec![(user.clone(), pw.expose_secret().to_owned())];
                let note = matches!(login, Login::Env)
                    .then(|| "(GWS_PASSWORD: as set for this serve)".to_owned());
                (
                    users,
                    LoginHelp {
                        user,
                        login,
                        note,
                        _generated: None,
                    },
                )
            } else {
                let pw = generated_password();
                let file = PasswordFile::write(&pw)?;
                let help = LoginHelp {
                    user: user.clone(),
                    login: Login::PasswordFile(file.path().to_owned()),
                    note: Some(format!(
                        "(a random password, in {}; removed when serve stops)",
                        file.path().display()
                    )),
                    _generated: Some(file),
                };
                (vec![(user, pw)], help)
            }
        }
    };
    let (first, first_pw) = users[0].clone();
    let mut config = GwsServerConfig::new(first, first_pw);
    config.gws.users = users;
    config.sim.listen = args.listen;
    config.scenario = scenario;
    config.scenario_per_session = args.scenario_per_session;
    config.seed = args.seed;
    config.replay = replay_config(args, &config.gws.users)?;
    Ok((config, help))
}

/// Reads the `--replay` fixtures, each for its user. A fixture that does not read is an
/// error naming `FILE:LINE:COL`, before anything is served.
fn replay_config(
    args: &ServeArgs,
    users: &[(String, String)],
) -> Result<Option<ReplayConfig>, String> {
    if args.replay.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    let mut recordings = BTreeMap::new();
    for given in &args.replay {
        let (user, file) = replay_target(given, &names)?;
        if recordings.contains_key(&user) {
            return Err(format!("--replay {given}: {user} already has a recording"));
        }
        let recording = Recording::open(&file).map_err(|e| format!("--replay: {e}"))?;
        say_what_is_replayed(&user, &recording);
        recordings.insert(user, Arc::new(recording));
    }
    Ok(Some(ReplayConfig {
        recordings,
        speed: args.speed,
        looped: args.looped,
    }))
}

/// `USER=FILE` when USER is a configured user, else a bare FILE for the one user.
fn replay_target(given: &str, users: &[&str]) -> Result<(String, PathBuf), String> {
    if let Some((user, file)) = given.split_once('=') {
        if users.contains(&user) && !file.is_empty() {
            return Ok((user.to_owned(), PathBuf::from(file)));
        }
        if !Path::new(given).exists() {
            return Err(format!(
                "--replay {given}: {user:?} is not a configured user (users: {})",
                users.join(", ")
            ));
        }
    }
    match users {
        [one] => Ok(((*one).to_owned(), PathBuf::from(given))),
        _ => Err(format!(
            "--replay {given}: for which user? Say --replay USER=FILE (users: {})",
            users.join(", ")
        )),
    }
}

fn say_what_is_replayed(user: &str, recording: &Recording) {
    let file = recording.path().display();
    let calls = recording.calls_at_start();
    if recording.notifications() == 0 {
        cli_event!(
            warn,
            "{file} (API {}) holds no notifications: {user} gets its {calls} call(s) at start \
             and nothing else",
            recording.api()
        );
        return;
    }
    let pace = if recording.is_stamped() {
        format!("{:.1}s at speed 1", recording.duration().as_secs_f64())
    } else {
        format!(
            "no time stamps: replies {}s apart at speed 1",
            UNSTAMPED_GAP_MS / 1000
        )
    };
    say(&format!(
        "replaying {file} (API {}) to {user}: {} notification(s), {calls} call(s) at start \
         ({pace})",
        recording.api(),
        recording.notifications()
    ));
}

/// Reads `user:password` lines; warns when others may read the file.
fn read_users(file: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the users file {}: {e}", file.display()))?;
    let mut users: Vec<(String, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{}:{}", file.display(), i + 1);
        let (user, pw) = line
            .split_once(':')
            .ok_or_else(|| format!("{at}: expected user:password"))?;
        if user.is_empty() || pw.is_empty() {
            return Err(format!("{at}: expected user:password, both non-empty"));
        }
        if users.iter().any(|(u, _)| u == user) {
            return Err(format!("{at}: user {user:?} is listed twice"));
        }
        users.push((user.to_owned(), pw.to_owned()));
    }
    if users.is_empty() {
        return Err(format!("the users file {} lists no user", file.display()));
    }
    warn_if_readable_by_others(file);
    Ok(users)
}

fn warn_if_readable_by_others(file: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                cli_event!(
                    warn,
                    "the users file {} can be read by other users (mode {mode:o}): chmod 600 {}",
                    file.display(),
                    file.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

async fn serve(config: GwsServerConfig, help: LoginHelp, listen: SocketAddr) -> ExitCode {
    let mut stop = Stop::new();
    let users = config.gws.users.len();
    let per_session = config.scenario_per_session;
    let replay = config
        .replay
        .as_ref()
        .map(|r| (r.speed, r.looped, r.recordings.len()));
    let server = match GwsSimServer::start(config).await {
        Ok(server) => server,
        Err(e) => {
            fatal(
                "serve",
                &format!("cannot listen on {listen}: {e} (pick another with --listen, or port 0)"),
            );
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let base = server.base_url();
    let activity = match (server.seed(), replay) {
        (_, Some((speed, looped, users))) => format!(
            "replaying {users} recording{} at {speed} speed, for every new session{}",
            if users == 1 { "" } else { "s" },
            if looped { ", looped" } else { "" }
        ),
        (Some(seed), _) => {
            format!("the living contact center, seed {seed}: repeat with --seed {seed}")
        }
        (None, _) if per_session => "the scenario, for every new session".to_owned(),
        (None, _) => "the scenario, once per user".to_owned(),
    };
    say(&format!(
        "GWS simulator at {base} ({users} user{}, {activity})",
        if users == 1 { "" } else { "s" }
    ));
    say(&format!(
        "  REST {base}/api/v2/me, CometD {base}/api/v2/notifications, unauthenticated CometD \
         {base}/cometd"
    ));
    say(&format!(
        "  Workspace API v3 for the same users and calls: {base}/auth/v3, {base}/workspace/v3 \
         (CometD {base}/workspace/v3/notifications): add --api v3 to the commands below"
    ));
    say(&format!(
        "  console {base}/ in a browser, with the same user and password"
    ));
    if let Some(note) = &help.note {
        say(&format!("log in as {} {note}", help.user));
    }
    print_login(&base, &help.user, &help.login, true);
    say("stop with Ctrl-C");
    let signal = stop.requested().await;
    cli_event!(info, "{signal}: stopping");
    server.shutdown().await;
    drop(help);
    ExitCode::SUCCESS
}
