//! [`Cookies`]: one session's cookie jar (`JSESSIONID`, `BAYEUX_BROWSER`, a load balancer's
//! affinity cookie), applied to each request by hand.
//!
//! Why not the HTTP client's cookie store: a `reqwest` client has one store, and a process
//! that follows many agents shares one client (its connection pool and TLS setup) while each
//! agent's session needs cookies of its own. Parsing is the `cookie` crate's. Values never
//! appear in `Debug` output or logs, and headers built from them are marked sensitive.
//!
//! Matching follows RFC 6265 for what a session meets: host-only cookies (a `Domain`
//! attribute is taken as the host that set it), path prefixes, `Secure`, and expiry by
//! `Max-Age` or `Expires`.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
use url::Url;

/// Cookies kept at most per jar: a server that sets more is misbehaving.
const MAX_COOKIES: usize = 64;

#[derive(Clone)]
struct Stored {
    host: String,
    name: String,
    value: String,
    path: String,
    secure: bool,
    expires: Option<SystemTime>,
}

/// A cookie jar for one session. Cloning shares it.
#[derive(Clone, Default)]
pub struct Cookies {
    inner: Arc<Mutex<Vec<Stored>>>,
}

/// Names only: values are secrets.
impl fmt::Debug for Cookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.lock().iter().map(|c| c.name.clone()).collect();
        f.debug_struct("Cookies").field("names", &names).finish()
    }
}

/// The path a cookie without `Path` gets: the request path up to its last `/`.
fn default_path(url: &Url) -> String {
    let path = url.path();
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}

fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

impl Cookies {
    /// An empty jar.
    pub fn new() -> Self {
        Cookies::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Stored>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `Cookie` header for a request to `url` (marked sensitive), or `None` when no
    /// cookie applies.
    pub fn header_for(&self, url: &Url) -> Option<HeaderValue> {
        let host = url.host_str()?;
        let now = SystemTime::now();
        let mut jar = self.lock();
        jar.retain(|c| c.expires.is_none_or(|at| at > now));
        let secure = url.scheme() == "https";
        let mut line = String::new();
        for c in jar.iter() {
            if c.host == host && (secure || !c.secure) && path_matches(&c.path, url.path()) {
                if !line.is_empty() {
                    line.push_str("; ");
                }
                line.push_str(&c.name);
                line.push('=');
                line.push_str(&c.value);
            }
        }
        let mut value = HeaderValue::from_str(&line)
            .ok()
            .filter(|_| !line.is_empty())?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Keeps the cookies a response to `url` sets (its `Set-Cookie` headers). Malformed ones
    /// are passed over.
    pub fn store(&self, url: &Url, headers: &HeaderMap) {
        let Some(host) = url.host_str() else { return };
        let now = SystemTime::now();
        let mut jar = self.lock();
        for header in headers.get_all(SET_COOKIE) {
            let Some(parsed) = header
                .to_str()
                .ok()
                .and_then(|h| cookie::Cookie::parse(h.to_owned()).ok())
            else {
                continue;
            };
            let expires = match (parsed.max_age(), parsed.expires_datetime()) {
                (Some(age), _) => {
                    let secs = u64::try_from(age.whole_seconds()).unwrap_or(0);
                    Some(now + Duration::from_secs(secs))
                }
                (None, Some(at)) => Some(SystemTime::from(at)),
                (None, None) => None,
            };
            let path = parsed
                .path()
                .filter(|p| p.starts_with('/'))
                .map_or_else(|| default_path(url), str::to_owned);
            let name = parsed.name().to_owned();
            jar.retain(|c| !(c.host == host && c.name == name && c.path == path));
            if expires.is_some_and(|at| at <= now) {
                continue;
            }
            if jar.len() >= MAX_COOKIES {
                jar.remove(0);
            }
            jar.push(Stored {
                host: host.to_owned(),
                name,
                value: parsed.value().to_owned(),
                path,
                secure: parsed.secure().unwrap_or(false),
                expires,
            });
        }
    }

    /// The names of the cookies kept, in the order set.
    pub fn names(&self) -> Vec<String> {
        self.lock().iter().map(|c| c.name.clone()).collect()
    }

    /// Forgets every cookie (a new HTTP session starts without the old one's).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn set(jar: &Cookies, at: &str, cookies: &[&str]) {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        jar.store(&url(at), &h);
    }

    fn sent(jar: &Cookies, to: &str) -> Option<String> {
        jar.header_for(&url(to))
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn cookies_go_back_to_their_host_and_path_only() {
        let jar = Cookies::new();
        set(
            &jar,
            "http://gws:8090/api/v2/me",
            &["JSESSIONID=abc; Path=/; HttpOnly", "LB=n1; Path=/api"],
        );
        assert_eq!(
            sent(&jar, "http://gws:8090/api/v2/notifications").as_deref(),
            Some("JSESSIONID=abc; LB=n1")
        );
        assert_eq!(
            sent(&jar, "http://gws:8090/apix").as_deref(),
            Some("JSESSIONID=abc")
        );
        assert_eq!(sent(&jar, "http://other:8090/api/v2/me"), None);
        // No Path: the request's directory.
        set(
            &jar,
            "http://gws:8090/cometd/handshake",
            &["BAYEUX_BROWSER=b1"],
        );
        assert!(sent(&jar, "http://gws:8090/cometd/connect")
            .unwrap()
            .contains("BAYEUX_BROWSER=b1"));
        assert!(!sent(&jar, "http://gws:8090/api")
            .unwrap()
            .contains("BAYEUX"));
        assert_eq!(jar.names(), ["JSESSIONID", "LB", "BAYEUX_BROWSER"]);
    }

    #[test]
    fn a_cookie_is_replaced_expired_or_kept_off_plain_http_as_told() {
        let jar = Cookies::new();
        set(
            &jar,
            "https://gws/api",
            &["S=1; Secure; Path=/", "A=1; Path=/"],
        );
        assert_eq!(sent(&jar, "https://gws/api").as_deref(), Some("S=1; A=1"));
        assert_eq!(sent(&jar, "http://gws/api").as_deref(), Some("A=1"));
        set(&jar, "https://gws/api", &["A=2; Path=/"]);
        assert_eq!(sent(&jar, "https://gws/x").as_deref(), Some("S=1; A=2"));
        set(&jar, "https://gws/api", &["A=gone; Path=/; Max-Age=0"]);
        set(
            &jar,
            "https://gws/api",
            &["S=old; Path=/; Expires=Wed, 21 Oct 2015 07:28:00 GMT"],
        );
        assert_eq!(sent(&jar, "https://gws/x"), None);
        jar.clear();
        assert!(jar.names().is_empty());
    }

    #[test]
    fn values_never_show_and_headers_are_sensitive() {
        let jar = Cookies::new();
        set(&jar, "http://gws/", &["JSESSIONID=s3cr3t-session; Path=/"]);
        assert!(!format!("{jar:?}").contains("s3cr3t"));
        assert!(jar.header_for(&url("http://gws/a")).unwrap().is_sensitive());
        set(&jar, "http://gws/", &["garbage", "=novalue"]);
        assert_eq!(jar.names(), ["JSESSIONID"]);
    }
}
