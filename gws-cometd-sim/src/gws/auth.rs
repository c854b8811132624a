//! HTTP sessions of the simulated GWS: HTTP Basic login, the `JSESSIONID` cookie, session
//! expiry and CSRF tokens.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hyper::HeaderMap;

use super::{GwsSim, CSRF_HEADER};
use crate::server::cookie;

/// The cookie GWS keeps its HTTP session in.
const SESSION_COOKIE: &str = "JSESSIONID";

struct HttpSession {
    user: String,
    csrf: String,
    last_used: Instant,
}

/// The live HTTP sessions and the login refusals still due.
#[derive(Default)]
pub(super) struct Sessions {
    by_id: HashMap<String, HttpSession>,
    /// Logins still to refuse with HTTP 503 (see [`GwsSim::fail_logins`]).
    failing_logins: usize,
}

impl Sessions {
    /// The session `id` unless it is unknown or has expired (then it is forgotten); using it
    /// counts as activity.
    fn live(&mut self, id: &str, ttl: Option<Duration>) -> Option<&mut HttpSession> {
        let expired = match self.by_id.get(id) {
            None => return None,
            Some(s) => ttl.is_some_and(|ttl| s.last_used.elapsed() > ttl),
        };
        if expired {
            self.by_id.remove(id);
            return None;
        }
        let session = self.by_id.get_mut(id)?;
        session.last_used = Instant::now();
        Some(session)
    }

    /// Ends session `id`, if there is one.
    pub(super) fn end(&mut self, id: &str) {
        self.by_id.remove(id);
    }
}

/// An authenticated request: its session and, for a fresh login, the `Set-Cookie` value.
pub(super) struct Login {
    pub session_id: String,
    pub user: String,
    pub set_cookie: Option<String>,
}

impl GwsSim {
    /// The user of the HTTP session named by the request's `JSESSIONID` cookie, if that
    /// session is valid. Used to bind Bayeux sessions to HTTP sessions.
    pub fn session_of(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let ttl = self.inner.config.session_ttl;
        let mut state = self.state();
        state.auth.live(id, ttl).map(|s| s.user.clone())
    }

    /// Whether a state-changing request (such as a CometD POST) with these headers passes
    /// the CSRF check: always when CSRF is off, otherwise when it carries its session's
    /// token.
    pub fn csrf_ok(&self, headers: &HeaderMap) -> bool {
        if !self.inner.config.csrf {
            return true;
        }
        cookie(headers, SESSION_COOKIE).is_some_and(|id| self.csrf_matches(id, headers))
    }

    /// Makes the next `n` logins (requests with Basic credentials and no live session) fail
    /// with a bare HTTP 503, as a GWS node restarting behind a load balancer would.
    pub fn fail_logins(&self, n: usize) {
        self.state().auth.failing_logins = n;
    }

    /// Forgets every HTTP session: the next REST call answers 401 and
    /// [`GwsSim::session_of`] answers `None` until the client logs in again.
    pub fn expire_http_sessions(&self) {
        self.state().auth.by_id.clear();
    }

    /// Gives every HTTP session a new CSRF token, so requests with the old one get 403.
    pub fn rotate_csrf_tokens(&self) {
        for session in self.state().auth.by_id.values_mut() {
            session.csrf = random_token();
        }
    }

    /// Whether this request is a login (Basic credentials, no live session) that
    /// [`GwsSim::fail_logins`] says to refuse; counts it if so.
    pub(super) fn refuse_login(&self, headers: &HeaderMap) -> bool {
        let ttl = self.inner.config.session_ttl;
        let mut state = self.state();
        let auth = &mut state.auth;
        if auth.failing_logins == 0 || basic_credentials(headers).is_none() {
            return false;
        }
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            if auth.live(id, ttl).is_some() {
                return false;
            }
        }
        auth.failing_logins -= 1;
        true
    }

    /// The session of a valid cookie, or a new session opened by valid HTTP Basic (with its
    /// `Set-Cookie` value); `None` when neither.
    pub(super) fn authenticate(&self, headers: &HeaderMap) -> Option<Login> {
        let ttl = self.inner.config.session_ttl;
        let mut state = self.state();
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            if let Some(s) = state.auth.live(id, ttl) {
                return Some(Login {
                    session_id: id.to_owned(),
                    user: s.user.clone(),
                    set_cookie: None,
                });
            }
        }
        let (user, password) = basic_credentials(headers)?;
        if !self
            .inner
            .config
            .users
            .iter()
            .any(|(u, p)| *u == user && *p == password)
        {
            return None;
        }
        let id = random_token();
        state.stats.logins += 1;
        state.auth.by_id.insert(
            id.clone(),
            HttpSession {
                user: user.clone(),
                csrf: random_token(),
                last_used: Instant::now(),
            },
        );
        Some(Login {
            set_cookie: Some(format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly")),
            session_id: id,
            user,
        })
    }

    /// The CSRF token of session `id`.
    pub(super) fn csrf_token(&self, session_id: &str) -> Option<String> {
        self.state()
            .auth
            .by_id
            .get(session_id)
            .map(|s| s.csrf.clone())
    }

    /// Whether the request carries session `session_id`'s CSRF token (always, with CSRF off).
    pub(super) fn csrf_matches(&self, session_id: &str, headers: &HeaderMap) -> bool {
        if !self.inner.config.csrf {
            return true;
        }
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let state = self.state();
        matches!((state.auth.by_id.get(session_id), sent), (Some(s), Some(t)) if s.csrf == t)
    }
}

/// 32 hex digits, unpredictable enough for a simulator's session ids and tokens.
pub(super) fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let _ = write!(out, "{:016x}", h.finish());
    }
    out
}

pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gws::test_support::*;

    #[test]
    fn basic_auth_on_me_opens_a_session_and_wrong_credentials_get_401() {
        let (sim, _) = sim();
        let resp = get(&sim, "/api/v2/me", &basic("agent", "wrong"));
        assert_eq!(resp.status(), 401);
        assert_eq!(
            header(&resp, "WWW-Authenticate"),
            Some(r#"Basic realm="gws""#)
        );
        assert!(header(&resp, "Set-Cookie").is_none());
        assert_eq!(get(&sim, "/api/v2/me", &HeaderMap::new()).status(), 401);

        let session = login(&sim);
        assert_eq!(sim.session_of(&session).as_deref(), Some("agent"));
        let me = get(&sim, "/api/v2/me", &session);
        assert_eq!(me.status(), 200);
        assert!(
            header(&me, "Set-Cookie").is_none(),
            "a valid cookie keeps its session"
        );
        assert!(body(&me).contains(r#""userName":"agent""#));
        assert!(sim.csrf_ok(&session));
    }

    #[test]
    fn state_changing_requests_need_the_sessions_csrf_token() {
        let (sim, _) = sim();
        let id = sim.ring_inbound("5115", "5001");
        let session = login(&sim);
        let path = format!("/api/v2/me/calls/{id}");
        let op = r#"{"operationName":"DeleteUserData"}"#;

        let mut without = session.clone();
        without.remove(CSRF_HEADER);
        let resp = post(&sim, &path, &without, op);
        assert_eq!(resp.status(), 403);
        assert_eq!(
            body(&resp),
            r#"{"statusCode":3,"statusMessage":"Missing or invalid Csrf token"}"#
        );
        assert!(!sim.csrf_ok(&without));

        assert_eq!(post(&sim, &path, &session, op).status(), 200);
        sim.rotate_csrf_tokens();
        assert_eq!(post(&sim, &path, &session, op).status(), 403);

        let (open, _) = sim_with(GwsSimConfig {
            csrf: false,
            ..GwsSimConfig::new("agent", "pw")
        });
        let id = open.ring_inbound("5115", "5001");
        let resp = get(&open, "/api/v2/me", &basic("agent", "pw"));
        assert!(header(&resp, "X-CSRF-HEADER").is_none());
        let cookie = header(&resp, "Set-Cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        assert_eq!(
            post(&open, &format!("/api/v2/me/calls/{id}"), &h, op).status(),
            200
        );
    }

    #[test]
    fn expired_sessions_are_refused_until_the_next_login() {
        let (sim, _) = sim();
        let session = login(&sim);
        sim.expire_http_sessions();
        assert_eq!(get(&sim, "/api/v2/me/calls", &session).status(), 401);
        assert_eq!(sim.session_of(&session), None);
        assert!(!sim.csrf_ok(&session));

        let (short, _) = sim_with(GwsSimConfig {
            session_ttl: Some(Duration::ZERO),
            ..GwsSimConfig::new("agent", "pw")
        });
        let session = login(&short);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(get(&short, "/api/v2/me/calls", &session).status(), 401);
    }

    #[test]
    fn config_debug_hides_the_password() {
        let config = GwsSimConfig::new("agent", "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
