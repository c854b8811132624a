//! The simulator `tail` and `watch` follow when no server is given, and what `serve` and it
//! print on start: the base URL and the exact commands that act on its calls.
//!
//! The built-in simulator gets a fresh random password per run (it listens on loopback,
//! where any local user can reach it); the password is written to a file only its owner can
//! read, named in the printed commands (`--password-file`) and removed when the command
//! exits.

use std::path::{Path, PathBuf};

use gws_cometd::gws::rest::Credentials;
use gws_cometd_sim::gws::GwsSim;
use gws_cometd_sim::{GwsServerConfig, GwsSimServer};

use super::gws_args::PASSWORD_ENV;
use super::log::say;

/// The demo agent.
const USER: &str = "agent";

/// What the built-in simulator does once followed.
#[derive(Clone, Copy, Debug)]
pub enum Activity {
    /// One inbound call rings, is answered and gets `AccountNumber` attached (`tail`).
    OneCall,
    /// The living contact center: calls keep coming (`watch`).
    LivingCenter,
}

/// The running built-in simulator; it stops, and its password file is removed, on drop.
pub struct Demo {
    pub sim: GwsSimServer,
    pub credentials: Credentials,
    _password_file: PasswordFile,
}

/// Starts the simulator and says how to act on its calls.
pub async fn start(activity: Activity) -> Result<Demo, String> {
    let password = generated_password();
    let password_file = PasswordFile::write(&password)?;
    let mut config = GwsServerConfig::new(USER, password.clone());
    if let Activity::OneCall = activity {
        config.scenario = Some(GwsSim::one_call_scenario());
    }
    let sim = GwsSimServer::start(config)
        .await
        .map_err(|e| format!("cannot start the built-in GWS simulator: {e}"))?;
    let what = match sim.seed() {
        Some(seed) => format!("a living contact center, seed {seed}"),
        None => "one inbound call".to_owned(),
    };
    say(&format!(
        "built-in GWS simulator at {} ({what}); user {USER}, password in {} (removed on exit)",
        sim.base_url(),
        password_file.path().display()
    ));
    print_login(
        &sim.base_url(),
        USER,
        &Login::PasswordFile(password_file.path().to_owned()),
        false,
    );
    Ok(Demo {
        sim,
        credentials: Credentials::new(USER, password),
        _password_file: password_file,
    })
}

/// Where the printed commands get the password from.
pub enum Login {
    /// `--password-file FILE`.
    PasswordFile(PathBuf),
    /// `GWS_PASSWORD`, set to the password of `user` as given to `serve`.
    Env,
}

/// Prints the commands that follow and act on the calls of `user` at `base`; `watch_too`
/// adds the `watch` command (for `serve`, whose calls nobody follows yet).
pub fn print_login(base: &str, user: &str, login: &Login, watch_too: bool) {
    let program = program();
    let (prefix, password) = match login {
        Login::PasswordFile(path) => (
            String::new(),
            format!(
                " --password-file {}",
                shell_word(&path.display().to_string())
            ),
        ),
        Login::Env => (format!("{PASSWORD_ENV}=... "), String::new()),
    };
    let gws = format!("--gws {base} --user {}{password}", shell_word(user));
    if watch_too {
        say("follow the calls (one JSON line per change):");
        say(&format!("  {prefix}{program} watch {gws}"));
    }
    say("act on a call from another terminal (CALL_ID: the callId of a watch line):");
    say(&format!(
        "  {prefix}{program} attach {gws} CALL_ID Note=hello Priority:=2"
    ));
    say(&format!(
        "  {prefix}{program} answer {gws} CALL_ID    (also hold, retrieve, hangup)"
    ));
    say(&format!(
        "list the calls: curl -u {} '{base}/api/v2/me/calls?fields=*'",
        shell_word(user)
    ));
}

/// How this program was started, for commands that can be pasted as printed.
fn program() -> String {
    std::env::args()
        .next()
        .filter(|a| !a.is_empty() && !a.contains(char::is_whitespace))
        .unwrap_or_else(|| "gws-cometd".to_owned())
}

/// `word` quoted for a POSIX shell when it needs it.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A random password: 128 bits from two OS-seeded hashers, as hex.
pub fn generated_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        // Each RandomState is seeded from the OS's randomness.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        *w = h.finish();
    }
    format!("sim-{:016x}{:016x}", words[0], words[1])
}

/// A password in a file of a private directory, both removed on drop.
pub struct PasswordFile {
    dir: PathBuf,
    file: PathBuf,
}

impl PasswordFile {
    /// Writes `password` to `password` in a new directory under the temporary directory,
    /// readable by this user only.
    pub fn write(password: &str) -> Result<PasswordFile, String> {
        let dir = std::env::temp_dir().join(format!(
            "gws-cometd-{}-{}",
            std::process::id(),
            &generated_password()[4..12]
        ));
        let cannot =
            |e: std::io::Error| format!("cannot write the password file in {}: {e}", dir.display());
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(cannot)?;
        let file = dir.join("password");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&file).and_then(|mut f| {
            std::io::Write::write_all(&mut f, format!("{password}\n").as_bytes())
        });
        let created = PasswordFile {
            dir: dir.clone(),
            file,
        };
        written.map_err(cannot)?;
        Ok(created)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for PasswordFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
