//! `--api v2|v3` and the v3 login's own secrets, shared by every command that talks to GWS.
//! Secrets never come from the command line (they would show in `ps` and shell history):
//! the client secret from `GWS_CLIENT_SECRET` or `--client-secret-file`, the API key from
//! `GWS_API_KEY` or `--api-key-file`.

use std::path::{Path, PathBuf};

use gws_cometd::gws::rest::{GwsSessionBuilder, Password};
use gws_cometd::gws::{Api, CallFeedBuilder};

/// The environment variable the v3 client secret is read from.
pub const CLIENT_SECRET_ENV: &str = "GWS_CLIENT_SECRET";
/// The environment variable the API key is read from.
pub const API_KEY_ENV: &str = "GWS_API_KEY";

/// Which GWS generation, and how v3 logs in.
#[derive(clap::Args, Debug, Clone)]
pub struct ApiArgs {
    /// GWS API generation: v2 (GWS 8.5: /api/v2) or v3 (Workspace API, GWS 9 / Genesys
    /// Multicloud CX: /auth/v3 and /workspace/v3). With v3 the user is `tenant\user`
    /// (`\name` for an empty tenant).
    #[arg(long, value_name = "v2|v3", default_value = "v2")]
    pub api: Api,
    /// v3: log in by the OAuth password grant with this client id (its secret from
    /// GWS_CLIENT_SECRET or --client-secret-file). Without it, v3 signs in with the form
    /// and the authorization code.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// v3: a file whose first line is the --client-id's secret (instead of
    /// GWS_CLIENT_SECRET).
    #[arg(long, value_name = "FILE", requires = "client_id")]
    pub client_secret_file: Option<PathBuf>,
    /// A file whose first line is an API key sent as `x-api-key` on every request (or
    /// GWS_API_KEY; some Multicloud CX deployments want one).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

impl ApiArgs {
    /// The v3 client id and secret, when `--client-id` is given.
    fn client(&self) -> Result<Option<(String, Password)>, String> {
        let Some(id) = &self.client_id else {
            return Ok(None);
        };
        if self.api != Api::V3 {
            return Err(
                "--client-id is for --api v3 (API v2 logs in with the user's password)".into(),
            );
        }
        match secret(self.client_secret_file.as_deref(), CLIENT_SECRET_ENV)? {
            Some(secret) => Ok(Some((id.clone(), secret))),
            None => Err(format!(
                "--client-id {id}: no secret: set {CLIENT_SECRET_ENV} or pass --client-secret-file FILE"
            )),
        }
    }

    fn api_key(&self) -> Result<Option<Password>, String> {
        secret(self.api_key_file.as_deref(), API_KEY_ENV)
    }

    /// A feed builder with these settings.
    pub fn feed(&self, mut builder: CallFeedBuilder) -> Result<CallFeedBuilder, String> {
        builder = builder.api(self.api);
        if let Some((id, secret)) = self.client()? {
            builder = builder.client_credentials(id, secret);
        }
        if let Some(key) = self.api_key()? {
            builder = builder.api_key(key);
        }
        Ok(builder)
    }

    /// The bridge's settings: the same for every agent of the file.
    #[cfg(feature = "bridge")]
    pub fn bridge(&self) -> Result<gws_cometd_bridge::GwsApi, String> {
        let mut api = gws_cometd_bridge::GwsApi::default();
        api.api = self.api;
        api.client_credentials = self.client()?;
        api.api_key = self.api_key()?;
        Ok(api)
    }

    /// A REST session builder with these settings.
    pub fn session(&self, mut builder: GwsSessionBuilder) -> Result<GwsSessionBuilder, String> {
        builder = builder.api(self.api);
        if let Some((id, secret)) = self.client()? {
            builder = builder.client_credentials(id, secret);
        }
        if let Some(key) = self.api_key()? {
            builder = builder.api_key(key);
        }
        Ok(builder)
    }
}

/// The first line of `file`, else the variable `env` when it is set and not empty.
fn secret(file: Option<&Path>, env: &str) -> Result<Option<Password>, String> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            match text.lines().next() {
                Some(line) if !line.is_empty() => Ok(Some(Password::new(line))),
                _ => Err(format!("{} is empty", path.display())),
            }
        }
        None => Ok(std::env::var(env)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Password::new)),
    }
}
