//! Stopping on request: Ctrl-C (SIGINT) and SIGTERM (what `kill`, systemd and container
//! runtimes send) both end a command cleanly, with `/meta/disconnect`, and exit 0.

use super::log::cli_event;

/// The stop signals, listened to from creation on: create it before connecting, so a signal
/// that arrives during the connection is a clean stop, not the default kill.
pub struct Stop {
    #[cfg(unix)]
    signals: Vec<(tokio::signal::unix::Signal, &'static str)>,
}

impl Stop {
    /// Starts listening. A handler that cannot be installed is said once and left out.
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut signals = Vec::new();
            for (kind, name) in [
                (SignalKind::interrupt(), "Ctrl-C"),
                (SignalKind::terminate(), "SIGTERM"),
            ] {
                match signal(kind) {
                    Ok(s) => signals.push((s, name)),
                    Err(e) => cli_event!(warn, "cannot listen for {name}: {e}"),
                }
            }
            Stop { signals }
        }
        #[cfg(not(unix))]
        Stop {}
    }

    /// Resolves on the next Ctrl-C or SIGTERM, naming it.
    pub async fn requested(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            let waits = self.signals.iter_mut().map(|(s, name)| {
                Box::pin(async move {
                    s.recv().await;
                    *name
                })
            });
            let waits: Vec<_> = waits.collect();
            if waits.is_empty() {
                return std::future::pending().await;
            }
            futures::future::select_all(waits).await.0
        }
        #[cfg(not(unix))]
        {
            if let Err(e) = tokio::signal::ctrl_c().await {
                cli_event!(warn, "cannot listen for Ctrl-C: {e}");
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}
