//! The options every GWS command shares: base URL, user, where the password comes from, and
//! how to reach the server.

use std::path::PathBuf;

use gws_cometd::gws::rest::{Credentials, GwsSession, Password};

use super::api_args::ApiArgs;
use super::http_args::HttpArgs;

/// The environment variable the password is read from.
pub const PASSWORD_ENV: &str = "GWS_PASSWORD";

/// How to reach and log in to GWS. The password never comes from the command line (it would
/// show in `ps` and shell history): it is read from `GWS_PASSWORD` or `--password-file`.
#[derive(clap::Args, Debug, Clone)]
pub struct GwsArgs {
    /// GWS base URL, e.g. https://gws.example.com:8090 (v2: REST at /api/v2/me,
    /// notifications at /api/v2/notifications; v3: /auth/v3 and /workspace/v3).
    #[arg(long = "gws", value_name = "BASE_URL")]
    pub base_url: String,
    /// GWS user name (the agent).
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// A file whose first line is the password (instead of the GWS_PASSWORD variable).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

impl GwsArgs {
    /// The credentials: the password from `--password-file` if given, else `GWS_PASSWORD`.
    pub fn credentials(&self) -> Result<Credentials, String> {
        password(self.password_file.as_deref()).map(|pw| Credentials::new(&self.user, pw))
    }

    /// A REST session with these settings; nothing is sent yet.
    pub fn session(&self) -> Result<GwsSession, String> {
        let options = self.http.options()?;
        let builder =
            GwsSession::builder(&self.base_url, self.credentials()?).http_options(options);
        self.api
            .session(builder)?
            .build()
            .map_err(|e| e.to_string())
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

/// Checks a call id before anything is sent: GWS ids are letters and digits (a connId like
/// `0071025563e9f00f`, a callUuid like `01RCC3N118B1V0SL8O7GK2LAES00000R`), so an empty id,
/// one with spaces, control characters or `/`, or a bare `.`/`..` is a mistake (a shell
/// variable that was empty, a pasted URL), not a call.
pub fn check_call_id(id: &str) -> Result<(), String> {
    const MAX_CHARS: usize = 256;
    let problem = if id.is_empty() {
        Some("it is empty")
    } else if id.chars().count() > MAX_CHARS {
        Some("it is longer than 256 characters")
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains spaces or control characters")
    } else if id.contains(['/', '?', '#', '\\']) {
        Some("it contains '/', '?', '#' or '\\' (give the id, not a URL or path)")
    } else if id.chars().all(|c| c == '.') {
        Some("it is only dots")
    } else {
        None
    };
    match problem {
        Some(why) => Err(format!(
            "invalid call id {:?}: {why}",
            id.chars().take(80).collect::<String>()
        )),
        None => Ok(()),
    }
}

/// A single-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Runs `command`'s work on a runtime of its own; a failure is its one fatal line and exit 2.
pub fn run_command(
    command: &str,
    work: impl std::future::Future<Output = Result<std::process::ExitCode, String>>,
) -> std::process::ExitCode {
    match runtime().and_then(|rt| rt.block_on(work)) {
        Ok(code) => code,
        Err(e) => {
            super::log::fatal(command, &e);
            std::process::ExitCode::from(super::EXIT_FATAL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_that_cannot_be_calls_are_refused() {
        for ok in [
            "0071025563e9f00f",
            "01RCC3N118B1V0SL8O7GK2LAES00000R",
            "a-b_c.d",
        ] {
            assert_eq!(check_call_id(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            (" ", "spaces"),
            ("a b", "spaces"),
            ("a\u{7}", "control"),
            ("http://h/api/v2/me/calls/1", "'/'"),
            ("..", "dots"),
        ] {
            let err = check_call_id(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(check_call_id(&"x".repeat(257)).is_err());
    }
}
