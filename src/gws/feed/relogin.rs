//! When the feed logs in again. A GWS server that restarted has forgotten the HTTP session
//! the notification client rides on; depending on the server, the client then hears 401 or
//! 403 on CometD, a `/meta/disconnect` of the server's own, an `Unknown client` (402) for a
//! session it has just handshaken, or a refused handshake. Each calls for a new login; the
//! client's cookies are the session's, so its next handshake carries the new session.
//!
//! Logins in a row that no successful connect follows are paced by a backoff, and a
//! handshake refused even after a fresh login ends the feed (the refusal is about
//! something a login does not mend).

use std::time::Duration;

use crate::backoff::{Backoff, BackoffConfig};
use crate::bayeux::{Cause, SessionError};
use crate::error::Error;

/// What a stopped notification client calls for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum AfterStop {
    /// Log in again and open a new client.
    LogIn,
    /// The feed ends with the client's error.
    End,
}

/// The feed's logins since its last successful connect.
#[derive(Debug)]
pub(super) struct Relogins {
    backoff: Backoff,
    /// Logins since the last successful connect.
    unconnected: u32,
}

impl Default for Relogins {
    fn default() -> Self {
        Relogins {
            backoff: Backoff::new(&BackoffConfig::default()),
            unconnected: 0,
        }
    }
}

impl Relogins {
    /// Whether the server forgetting the Bayeux session (`cause`; `unconnected` when no
    /// connect had succeeded on it) calls for a new login: when the server ended it itself,
    /// or forgot it before its first connect. A session forgotten after connecting is only
    /// re-handshaken, as any Bayeux server restart asks.
    pub(super) fn wanted_after_forgotten(cause: &Cause, unconnected: bool) -> bool {
        unconnected || *cause == Cause::EndedByServer
    }

    /// What the client stopping with `error` calls for.
    pub(super) fn after_stop(&self, error: &Error) -> AfterStop {
        match error {
            e if e.is_auth() => AfterStop::LogIn,
            Error::Session(SessionError::HandshakeRefused { .. }) if self.unconnected == 0 => {
                AfterStop::LogIn
            }
            _ => AfterStop::End,
        }
    }

    /// How long to wait before the next login: nothing for the first since a connect.
    pub(super) fn delay(&mut self) -> Option<Duration> {
        (self.unconnected > 0).then(|| self.backoff.next_delay())
    }

    /// A login succeeded.
    pub(super) fn logged_in(&mut self) {
        self.unconnected = self.unconnected.saturating_add(1);
    }

    /// A connect succeeded: the next login, if any, starts a new episode.
    pub(super) fn connected(&mut self) {
        self.unconnected = 0;
        self.backoff.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bayeux::{Failure, FailureKind};

    fn refused() -> Error {
        Error::Session(SessionError::HandshakeRefused {
            error: "403::Handshake denied".into(),
        })
    }

    fn unauthorized() -> Error {
        Error::Session(SessionError::Unauthorized {
            failure: Failure::new(FailureKind::Unauthorized, "HTTP 401"),
        })
    }

    #[test]
    fn a_session_ended_by_the_server_or_forgotten_before_connecting_wants_a_login() {
        assert!(Relogins::wanted_after_forgotten(
            &Cause::EndedByServer,
            false
        ));
        let unknown = Cause::Unsuccessful {
            error: Some("402::Unknown client".into()),
        };
        assert!(Relogins::wanted_after_forgotten(&unknown, true));
        assert!(!Relogins::wanted_after_forgotten(&unknown, false));
    }

    #[test]
    fn refused_credentials_always_log_in_again_a_refused_handshake_once() {
        let mut r = Relogins::default();
        assert_eq!(r.after_stop(&unauthorized()), AfterStop::LogIn);
        assert_eq!(r.after_stop(&refused()), AfterStop::LogIn);
        r.logged_in();
        assert_eq!(r.after_stop(&unauthorized()), AfterStop::LogIn);
        assert_eq!(r.after_stop(&refused()), AfterStop::End);
        r.connected();
        assert_eq!(r.after_stop(&refused()), AfterStop::LogIn);
        let none = Error::Session(SessionError::ReconnectNone { error: None });
        assert_eq!(r.after_stop(&none), AfterStop::End);
    }

    #[test]
    fn logins_that_no_connect_follows_are_paced() {
        let mut r = Relogins::default();
        assert_eq!(r.delay(), None);
        r.logged_in();
        let first = r.delay().expect("a delay");
        r.logged_in();
        let second = r.delay().expect("a delay");
        assert!(first > Duration::ZERO && second > Duration::ZERO);
        r.connected();
        assert_eq!(r.delay(), None);
    }
}
