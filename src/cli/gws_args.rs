//! The options every GWS command shares: base URL, user, and where the password comes from.

use std::path::PathBuf;

use gws_cometd::gws::rest::{Credentials, Password};

/// The environment variable the password is read from.
pub const PASSWORD_ENV: &str = "GWS_PASSWORD";

/// How to reach and log in to GWS. The password never comes from the command line (it would
/// show in `ps` and shell history): it is read from `GWS_PASSWORD` or `--password-file`.
#[derive(clap::Args, Debug, Clone)]
pub struct GwsArgs {
    /// GWS base URL, e.g. https://gws.example.com:8090 (REST at /api/v2/me, notifications
    /// at /api/v2/notifications).
    #[arg(long = "gws", value_name = "BASE_URL")]
    pub base_url: String,
    /// GWS user name (the agent).
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// A file whose first line is the password (instead of the GWS_PASSWORD variable).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

impl GwsArgs {
    /// The credentials: the password from `--password-file` if given, else `GWS_PASSWORD`.
    pub fn credentials(&self) -> Result<Credentials, String> {
        password(self.password_file.as_deref()).map(|pw| Credentials::new(&self.user, pw))
    }
}

/// Reads the password from `file` (its first line) or from `GWS_PASSWORD`.
pub fn password(file: Option<&std::path::Path>) -> Result<Password, String> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
            let line = text.lines().next().unwrap_or_default();
            if line.is_empty() {
                return Err(format!("the password file {} is empty", path.display()));
            }
            Ok(Password::new(line))
        }
        None => match std::env::var(PASSWORD_ENV) {
            Ok(pw) if !pw.is_empty() => Ok(Password::new(pw)),
            _ => Err(format!(
                "no password: set {PASSWORD_ENV} or pass --password-file FILE"
            )),
        },
    }
}

/// A single-threaded runtime for one command.
pub fn runtime(command: &str) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("gws-cometd {command}: cannot start the runtime: {e}"))
}
