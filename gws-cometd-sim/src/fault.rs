//! Fault injection: what the simulator does wrong on purpose.

use std::collections::VecDeque;
use std::mem::discriminant;
use std::sync::Mutex;
use std::time::Duration;

/// A misbehaviour the simulator applies to subsequent requests until
/// [`SimServer::clear_faults`](super::SimServer::clear_faults), unless noted.
///
/// Faults that replace the reply ([`Fault::HttpStatus`], [`Fault::Malformed`],
/// [`Fault::Hold`], [`Fault::HoldRequests`]) stop the request before it reaches the Bayeux engine, so no session state
/// changes and no queued message is consumed. Faults that damage a reply
/// ([`Fault::Truncated`], [`Fault::ResetMidBody`]) process the request first: data in a
/// damaged connect reply is lost, as it would be behind a broken proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer every request with this HTTP status and a short text body.
    HttpStatus(u16),
    /// Answer only the next request with this HTTP status (several queue up in order).
    HttpStatusOnce(u16),
    /// Answer `200` with the body `[{"channel":` (not JSON).
    Malformed,
    /// Answer a valid reply cut in half: a well-framed body that is truncated JSON.
    Truncated,
    /// Never answer: hold the request open until the server stops (at most ten minutes).
    Hold,
    /// Like [`Fault::Hold`], for requests with this method to exactly this path only (e.g.
    /// `GET` `/api/v2/me`, to test a login deadline); the request is accepted and never
    /// answered. Several may be set at once.
    HoldRequests {
        /// `GET`, `POST`, ...
        method: String,
        /// The path, without query.
        path: String,
    },
    /// Answer requests with this method to exactly this path as usual, but send the answer
    /// `delay` after it was made: it tells the state as it was when the request arrived, as
    /// a reply slow to reach the client does (e.g. `GET` `/api/v2/me/calls`, to race a read
    /// against notifications). Several may be set at once.
    DelayReplies {
        /// `GET`, `POST`, ...
        method: String,
        /// The path, without query.
        path: String,
        /// How long the answer waits.
        delay: Duration,
    },
    /// Close the TCP connection right after each reply, without a `Connection: close`
    /// header.
    CloseAfterReply,
    /// Send the reply body in small chunks with this delay between them.
    SlowBody(Duration),
    /// Announce the full body length, send half of it, then reset the connection.
    ResetMidBody,
    /// Connect replies say `successful:false` with advice `{reconnect:"none"}`.
    AdviceNone,
    /// `/meta/subscribe` to this channel answers `successful:false`,
    /// `403:<channel>:Subscription denied`. Several channels may be denied at once.
    DenySubscribe(String),
}

/// The faults in force for one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActiveFaults {
    pub status: Option<u16>,
    pub malformed: bool,
    pub truncated: bool,
    pub hold: bool,
    /// `(method, path)` of requests to hold.
    pub hold_requests: Vec<(String, String)>,
    /// `(method, path, delay)` of replies to send late.
    pub delayed_replies: Vec<(String, String, Duration)>,
    pub close_after_reply: bool,
    pub slow_body: Option<Duration>,
    pub reset_mid_body: bool,
    pub advice_none: bool,
    pub deny: Vec<String>,
}

#[derive(Default)]
struct Faults {
    standing: Vec<Fault>,
    once: VecDeque<u16>,
}

/// The faults set on a server.
#[derive(Default)]
pub(crate) struct FaultSet {
    inner: Mutex<Faults>,
}

impl ActiveFaults {
    /// Whether a request with `method` to `path` is to be held unanswered.
    pub(crate) fn holds(&self, method: &str, path: &str) -> bool {
        self.hold
            || self
                .hold_requests
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path)
    }

    /// How long the answer to a request with `method` to `path` waits before it is sent.
    pub(crate) fn reply_delay(&self, method: &str, path: &str) -> Option<Duration> {
        self.delayed_replies
            .iter()
            .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && p == path)
            .map(|(_, _, d)| *d)
    }
}

impl FaultSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `fault`, replacing a standing fault of the same kind (denials and held routes
    /// accumulate).
    pub(crate) fn set(&self, fault: Fault) {
        let mut f = self.lock();
        match fault {
            Fault::HttpStatusOnce(code) => f.once.push_back(code),
            Fault::DenySubscribe(_) | Fault::HoldRequests { .. } | Fault::DelayReplies { .. } => {
                if !f.standing.contains(&fault) {
                    f.standing.push(fault);
                }
            }
            other => {
                f.standing
                    .retain(|s| discriminant(s) != discriminant(&other));
                f.standing.push(other);
            }
        }
    }

    pub(crate) fn clear(&self) {
        let mut f = self.lock();
        f.standing.clear();
        f.once.clear();
    }

    /// The faults for the next request; consumes one [`Fault::HttpStatusOnce`].
    pub(crate) fn take(&self) -> ActiveFaults {
        let mut f = self.lock();
        let mut a = ActiveFaults {
            status: f.once.pop_front(),
            ..ActiveFaults::default()
        };
        for fault in &f.standing {
            match fault {
                Fault::HttpStatus(code) => {
                    a.status.get_or_insert(*code);
                }
                Fault::HttpStatusOnce(_) => {}
                Fault::Malformed => a.malformed = true,
                Fault::Truncated => a.truncated = true,
                Fault::Hold => a.hold = true,
                Fault::HoldRequests { method, path } => {
                    a.hold_requests.push((method.clone(), path.clone()))
                }
                Fault::DelayReplies {
                    method,
                    path,
                    delay,
                } => a
                    .delayed_replies
                    .push((method.clone(), path.clone(), *delay)),
                Fault::CloseAfterReply => a.close_after_reply = true,
                Fault::SlowBody(d) => a.slow_body = Some(*d),
                Fault::ResetMidBody => a.reset_mid_body = true,
                Fault::AdviceNone => a.advice_none = true,
                Fault::DenySubscribe(ch) => a.deny.push(ch.clone()),
            }
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_once_status_applies_to_one_request_and_wins_over_a_standing_one() {
        let f = FaultSet::default();
        f.set(Fault::HttpStatus(500));
        f.set(Fault::HttpStatusOnce(401));
        assert_eq!(f.take().status, Some(401));
        assert_eq!(f.take().status, Some(500));
        f.clear();
        assert_eq!(f.take().status, None);
    }

    #[test]
    fn a_fault_of_the_same_kind_replaces_the_previous_one_but_denials_add_up() {
        let f = FaultSet::default();
        f.set(Fault::SlowBody(Duration::from_millis(1)));
        f.set(Fault::SlowBody(Duration::from_millis(2)));
        f.set(Fault::DenySubscribe("/a".into()));
        f.set(Fault::DenySubscribe("/b".into()));
        let a = f.take();
        assert_eq!(a.slow_body, Some(Duration::from_millis(2)));
        assert_eq!(a.deny, ["/a", "/b"]);
    }

    #[test]
    fn delayed_replies_match_the_method_and_exact_path() {
        let f = FaultSet::default();
        f.set(Fault::DelayReplies {
            method: "GET".into(),
            path: "/api/v2/me/calls".into(),
            delay: Duration::from_millis(5),
        });
        let a = f.take();
        assert_eq!(
            a.reply_delay("get", "/api/v2/me/calls"),
            Some(Duration::from_millis(5))
        );
        assert_eq!(a.reply_delay("POST", "/api/v2/me/calls"), None);
        assert_eq!(a.reply_delay("GET", "/api/v2/me"), None);
        assert!(!a.holds("GET", "/api/v2/me/calls"), "delayed, not held");
    }

    #[test]
    fn held_routes_add_up_and_match_the_method_and_exact_path() {
        let f = FaultSet::default();
        let hold = |method: &str, path: &str| Fault::HoldRequests {
            method: method.into(),
            path: path.into(),
        };
        f.set(hold("GET", "/api/v2/me"));
        f.set(hold("GET", "/api/v2/me"));
        f.set(hold("POST", "/cometd"));
        let a = f.take();
        assert_eq!(a.hold_requests.len(), 2);
        assert!(a.holds("GET", "/api/v2/me"));
        assert!(a.holds("get", "/api/v2/me"));
        assert!(a.holds("POST", "/cometd"));
        assert!(!a.holds("POST", "/api/v2/me"));
        assert!(!a.holds("GET", "/api/v2/me/calls"));
        assert!(!a.holds("GET", "/api/v2/me/"));
        f.clear();
        assert!(!f.take().holds("GET", "/api/v2/me"));
    }
}
