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
    /// v3: the OAuth client id. With its secret (GWS_CLIENT_SECRET or --client-secret-file),
    /// v3 logs in by the password grant; without, by the form sign-in and the authorization
    /// code as this client (default: gws-cometd; a real GWS 9 wants a registered one).
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// v3: a file whose first line is the --client-id's secret (instead of
    /// GWS_CLIENT_SECRET).
    #[arg(long, value_name = "FILE", requires = "client_id")]
    pub client_secret_file: Option<PathBuf>,
    /// v3, sign-in with the authorization code: the redirect URI registered for the
    /// --client-id (default: the --gws base URL). Never fetched: the code is read from the
    /// redirect.
    #[arg(long, value_name = "URI", value_parser = absolute_url)]
    pub redirect_uri: Option<String>,
    /// A file whose first line is an API key sent as `x-api-key` on every request (or
    /// GWS_API_KEY; some Multicloud CX deployments want one).
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
}

/// How v3 logs in, from the arguments and the environment.
#[derive(Debug, Default)]
struct V3Login {
    /// The password grant's client id and secret.
    grant: Option<(String, Password)>,
    /// The code flow's client id, when not the default.
    client_id: Option<String>,
    redirect_uri: Option<String>,
    api_key: Option<Password>,
}

impl ApiArgs {
    /// The v3 login settings; `v3` says whether any session speaks v3 (the bridge's agents
    /// may, whatever `--api` says).
    fn login(&self, v3: bool) -> Result<V3Login, String> {
        let only_v3 = |flag: &str| {
            format!("{flag} is for --api v3 (API v2 logs in with the user's password)")
        };
        let mut login = V3Login {
            api_key: secret(self.api_key_file.as_deref(), API_KEY_ENV)?,
            ..V3Login::default()
        };
        if let Some(id) = &self.client_id {
            if !v3 {
                return Err(only_v3("--client-id"));
            }
            match secret(self.client_secret_file.as_deref(), CLIENT_SECRET_ENV)? {
                Some(secret) => login.grant = Some((id.clone(), secret)),
                None => login.client_id = Some(id.clone()),
            }
        }
        if let Some(uri) = &self.redirect_uri {
            if !v3 {
                return Err(only_v3("--redirect-uri"));
            }
            if let Some((id, _)) = &login.grant {
                return Err(format!(
                    "--redirect-uri is for the sign-in with the authorization code, but \
                     --client-id {id} has a secret ({CLIENT_SECRET_ENV} or \
                     --client-secret-file), so v3 logs in by the password grant: drop one"
                ));
            }
            login.redirect_uri = Some(uri.clone());
        }
        Ok(login)
    }

    /// A feed builder with these settings.
    pub fn feed(&self, builder: CallFeedBuilder) -> Result<CallFeedBuilder, String> {
        Ok(builder.with_login(self.api, self.login(self.api == Api::V3)?))
    }

    /// The bridge's settings: `--api` for the agents whose line does not say, the v3 login
    /// for every v3 agent of the file; `any_v3` when some agent's line says `api=v3`.
    #[cfg(feature = "bridge")]
    pub fn bridge(&self, any_v3: bool) -> Result<gws_cometd_bridge::GwsApi, String> {
        let login = self.login(self.api == Api::V3 || any_v3)?;
        let mut api = gws_cometd_bridge::GwsApi::default();
        api.api = self.api;
        api.client_credentials = login.grant;
        api.client_id = login.client_id;
        api.redirect_uri = login.redirect_uri;
        api.api_key = login.api_key;
        Ok(api)
    }

    /// A REST session builder with these settings.
    pub fn session(&self, builder: GwsSessionBuilder) -> Result<GwsSessionBuilder, String> {
        Ok(builder.with_login(self.api, self.login(self.api == Api::V3)?))
    }
}

/// The generation and login setters the feed's builder shares with the REST session's.
trait WithLogin: Sized {
    fn with_login(self, api: Api, login: V3Login) -> Self;
}

macro_rules! with_login {
    ($($builder:ty),*) => {$(
        impl WithLogin for $builder {
            fn with_login(self, api: Api, login: V3Login) -> Self {
                let mut builder = self.api(api);
                if let Some((id, secret)) = login.grant {
                    builder = builder.client_credentials(id, secret);
                }
                if let Some(id) = login.client_id {
                    builder = builder.client_id(id);
                }
                if let Some(uri) = login.redirect_uri {
                    builder = builder.redirect_uri(uri);
                }
                if let Some(key) = login.api_key {
                    builder = builder.api_key(key);
                }
                builder
            }
        }
    )*};
}

with_login!(CallFeedBuilder, GwsSessionBuilder);

/// `--redirect-uri`: an absolute URL, said at once rather than at the first login.
fn absolute_url(s: &str) -> Result<String, String> {
    match url::Url::parse(s) {
        Ok(u) if !u.cannot_be_a_base() => Ok(s.to_owned()),
        _ => Err("not an absolute URL (e.g. https://app.example.com/callback)".into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(api: Api, redirect_uri: Option<&str>) -> ApiArgs {
        ApiArgs {
            api,
            client_id: None,
            client_secret_file: None,
            redirect_uri: redirect_uri.map(str::to_owned),
            api_key_file: None,
        }
    }

    #[test]
    fn v3_settings_are_refused_unless_some_session_speaks_v3() {
        let uri = Some("https://crm.example/cb");
        let e = args(Api::V2, uri).login(false).unwrap_err();
        assert!(e.starts_with("--redirect-uri is for --api v3"), "{e}");
        // The bridge: --api v2, but an agent of the file says api=v3.
        let login = args(Api::V2, uri).login(true).unwrap();
        assert_eq!(login.redirect_uri.as_deref(), uri);
        let login = args(Api::V3, uri).login(true).unwrap();
        assert_eq!(login.redirect_uri.as_deref(), uri);
    }

    #[test]
    fn a_client_id_with_a_secret_file_is_the_password_grant() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut a = args(Api::V3, None);
        a.client_id = Some("crm".into());
        a.client_secret_file = Some(file);
        let login = a.login(true).unwrap();
        let (id, secret) = login.grant.expect("the password grant");
        assert_eq!((id.as_str(), secret.expose_secret()), ("crm", "s3cret"));
        assert_eq!(login.client_id, None);
        a.redirect_uri = Some("https://crm.example/cb".into());
        let e = a.login(true).unwrap_err();
        assert!(e.contains("so v3 logs in by the password grant"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
