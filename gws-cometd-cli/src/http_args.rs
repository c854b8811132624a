//! `--proxy` and `--cacert`: how every command that talks HTTP reaches its server.

use std::path::PathBuf;

use gws_cometd::transport::HttpOptions;

/// How to reach the server. Without `--proxy`, `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
/// `NO_PROXY` from the environment apply.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HttpArgs {
    /// Send every request through this proxy (http://HOST:PORT or https://HOST:PORT); hosts
    /// in NO_PROXY are reached directly. Without it, HTTPS_PROXY / HTTP_PROXY / ALL_PROXY
    /// apply. Proxy credentials go in HTTPS_PROXY, never on the command line.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Also trust the CA certificates in this PEM file (a private CA that signed the
    /// server's certificate).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

impl HttpArgs {
    /// The options, checked: a proxy URL carrying a password is refused (it would show in
    /// `ps` and the shell history), an unreadable or empty CA file is named.
    pub fn options(&self) -> Result<HttpOptions, String> {
        let mut options = HttpOptions::default();
        if let Some(proxy) = &self.proxy {
            if url::Url::parse(proxy.trim()).is_ok_and(|u| u.password().is_some()) {
                return Err(
                    "--proxy: a password in the proxy URL would show in `ps` and the shell \
                     history; put the URL with its credentials in HTTPS_PROXY instead"
                        .to_owned(),
                );
            }
            options = options.proxy(proxy).map_err(|e| format!("--proxy: {e}"))?;
        }
        if let Some(path) = &self.cacert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("--cacert: cannot read {}: {e}", path.display()))?;
            options = options
                .ca_certificates_pem(&pem)
                .map_err(|e| format!("--cacert {}: {e}", path.display()))?;
        }
        Ok(options)
    }
}
