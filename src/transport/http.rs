//! Long polling over HTTP/1.1 with `reqwest`: a cookie jar per session, optional Basic auth,
//! fixed and shared (refreshable) extra headers. Replies stream through as they arrive; the
//! client bounds each message, not the reply.
//!
//! ```
//! use gws_cometd::transport::HttpTransport;
//! use gws_cometd::Client;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let transport = HttpTransport::builder("http://127.0.0.1:8089/cometd")
//!     .basic_auth("agent", "secret")
//!     .header("X-Tenant", "blue")
//!     .build()?;
//! let client = Client::with_transport(transport).build()?;
//! # drop(client);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, COOKIE};
use url::Url;

use super::cookies::Cookies;
use super::endpoint::{self, redact_url};
use super::error::causes;
use super::{ReplyBody, SendFuture, Transport, TransportError};

/// Headers that another component may replace while the client runs, such as the GWS CSRF
/// header. Values should be marked sensitive ([`HeaderValue::set_sensitive`]).
pub type SharedHeaders = Arc<RwLock<HeaderMap>>;

/// Longest server message kept from a non-2xx reply.
const ERROR_BODY_LIMIT: usize = 2048;

/// Idle pooled connections are dropped well before common server keep-alive limits.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// How the HTTP client reaches servers: through which proxy, trusting which certificate
/// authorities. Without a proxy set here, `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
/// `NO_PROXY` from the environment apply.
#[derive(Clone, Default)]
pub struct HttpOptions {
    proxy: Option<(String, reqwest::Proxy)>,
    roots: Vec<reqwest::Certificate>,
}

/// The proxy without credentials, and how many extra certificate authorities.
impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field(
                "proxy",
                &self.proxy.as_ref().map(|(u, _)| endpoint::redact(u)),
            )
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

impl HttpOptions {
    /// Sends every request through the proxy at `url` (`http://`, `https://` or `socks5://`;
    /// `user:password@` in it authenticates), except for hosts `NO_PROXY` names.
    pub fn proxy(mut self, url: &str) -> Result<Self, TransportError> {
        let invalid = |reason: String| TransportError::InvalidUrl {
            url: endpoint::redact(url),
            reason,
        };
        let parsed = Url::parse(url.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https" | "socks5" | "socks5h") {
            return Err(invalid(format!(
                "a proxy URL is http, https or socks5, not {:?}",
                parsed.scheme()
            )));
        }
        let proxy = reqwest::Proxy::all(parsed.as_str())
            .map_err(|e| invalid(causes(&e)))?
            .no_proxy(reqwest::NoProxy::from_env());
        self.proxy = Some((url.to_owned(), proxy));
        Ok(self)
    }

    /// Also trusts the certificate authorities of a PEM file's text (a private CA).
    pub fn ca_certificates_pem(mut self, pem: &[u8]) -> Result<Self, TransportError> {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| TransportError::Config {
                what: "the CA certificates".into(),
                reason: causes(&e),
            })?;
        if certs.is_empty() {
            return Err(TransportError::Config {
                what: "the CA certificates".into(),
                reason: "no PEM certificate in it".into(),
            });
        }
        self.roots.extend(certs);
        Ok(self)
    }
}

/// An HTTP client as every HTTP request of this crate is made: no cookie store (each session
/// keeps its own [`Cookies`], so one client serves many sessions) and no client-wide timeout
/// (deadlines are per request; a long poll outlasts any REST deadline).
pub fn new_client(options: &HttpOptions) -> Result<reqwest::Client, TransportError> {
    let mut builder = reqwest::Client::builder().pool_idle_timeout(POOL_IDLE_TIMEOUT);
    if let Some((_, proxy)) = &options.proxy {
        builder = builder.proxy(proxy.clone());
    }
    for root in &options.roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build().map_err(|e| TransportError::Config {
        what: "the HTTP client".into(),
        reason: causes(&e),
    })
}

/// A client like [`new_client`]'s that never follows redirects: logins that must see each
/// redirect's `Location` and `Set-Cookie` (the OAuth authorization-code flow) send with it.
pub(crate) fn new_login_client(options: &HttpOptions) -> Result<reqwest::Client, TransportError> {
    let mut builder = reqwest::Client::builder()
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some((_, proxy)) = &options.proxy {
        builder = builder.proxy(proxy.clone());
    }
    for root in &options.roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build().map_err(|e| TransportError::Config {
        what: "the HTTP client for logging in".into(),
        reason: causes(&e),
    })
}

/// Sorts a `reqwest` error of a request to `url` into a [`TransportError`]. Its own text
/// (which quotes the URL) is left out; the URL is given without credentials.
pub(crate) fn request_error(url: &str, e: reqwest::Error, after: Duration) -> TransportError {
    let url = url.to_owned();
    if e.is_timeout() {
        return TransportError::Timeout { url, after };
    }
    let e = e.without_url();
    let detail = match std::error::Error::source(&e) {
        Some(source) => causes(source),
        None => e.to_string(),
    };
    if e.is_connect() {
        TransportError::Connect {
            url,
            detail,
            source: Box::new(e),
        }
    } else {
        TransportError::Interrupted {
            url,
            detail,
            source: Box::new(e),
        }
    }
}

/// The HTTP long-polling transport. Cloning shares it.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    cookies: Cookies,
    url: Url,
    endpoint: String,
    headers: HeaderMap,
    shared_headers: Option<SharedHeaders>,
    /// HTTP Basic credentials: reqwest's `basic_auth` encodes them on each request and marks
    /// the header sensitive, so they are never printed. Never shown by `Debug`.
    credentials: Option<(String, String)>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

/// Configures an [`HttpTransport`]; every setting is checked by [`build`](Self::build).
pub struct HttpTransportBuilder {
    url: String,
    basic_auth: Option<(String, String)>,
    headers: Vec<(String, String)>,
    shared_headers: Option<SharedHeaders>,
    cookies: Option<Cookies>,
    http_client: Option<reqwest::Client>,
    content_type: Option<String>,
}

/// Shows the endpoint without credentials, the user name and the header names only.
impl fmt::Debug for HttpTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransportBuilder")
            .field("url", &endpoint::redact(&self.url))
            .field("user", &self.basic_auth.as_ref().map(|(u, _)| u))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl HttpTransportBuilder {
    /// HTTP Basic credentials sent on every request. User info in the URL is used the same
    /// way when this is not set.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// An extra header sent on every request (its value is treated as a secret). Invalid
    /// names or values fail [`build`](Self::build).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The `Content-Type` of every POST (default `application/json;charset=UTF-8`). GWS 9's
    /// Workspace API v3 wants exactly `application/json`. An invalid value fails
    /// [`build`](Self::build).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Headers read anew for every request (e.g. a CSRF token that another component
    /// refreshes).
    pub fn shared_headers(mut self, headers: SharedHeaders) -> Self {
        self.shared_headers = Some(headers);
        self
    }

    /// The cookie jar to use, e.g. the REST session's. Default: a jar of the transport's
    /// own.
    pub fn cookies(mut self, cookies: Cookies) -> Self {
        self.cookies = Some(cookies);
        self
    }

    /// The `reqwest` client to send with, shared with other sessions: one client is one
    /// connection pool and one TLS setup. It must have no cookie store and no client-wide
    /// timeout (see [`new_client`]). Default: a client of the transport's own.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http_client = Some(http);
        self
    }

    /// Builds the transport. Fails on an unusable URL or header, or when the TLS stack
    /// cannot start.
    pub fn build(self) -> Result<HttpTransport, TransportError> {
        let mut url = endpoint::parse(&self.url)?;
        let credentials = self.basic_auth.or_else(|| endpoint::userinfo(&url));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let invalid = |reason: String| TransportError::Config {
                what: format!("header {name:?}"),
                reason,
            };
            let n = HeaderName::try_from(name.as_str()).map_err(|e| invalid(e.to_string()))?;
            let mut v = HeaderValue::try_from(value.as_str())
                .map_err(|_| invalid("the value is not a valid header value".into()))?;
            v.set_sensitive(true);
            headers.append(n, v);
        }
        let content_type = match &self.content_type {
            Some(ct) => HeaderValue::try_from(ct.as_str()).map_err(|_| TransportError::Config {
                what: "the Content-Type".into(),
                reason: format!("{ct:?} is not a valid header value"),
            })?,
            None => HeaderValue::from_static("application/json;charset=UTF-8"),
        };
        headers.insert(CONTENT_TYPE, content_type);
        let http = match self.http_client {
            Some(http) => http,
            None => new_client(&HttpOptions::default())?,
        };
        Ok(HttpTransport {
            inner: Arc::new(Inner {
                http,
                cookies: self.cookies.unwrap_or_default(),
                endpoint: redact_url(&url),
                url,
                headers,
                shared_headers: self.shared_headers,
                credentials,
            }),
        })
    }
}

impl HttpTransport {
    /// A builder for the Bayeux endpoint `url`, e.g. `http://127.0.0.1:8080/cometd` or
    /// `https://gws.example/api/v2/notifications`.
    pub fn builder(url: impl Into<String>) -> HttpTransportBuilder {
        HttpTransportBuilder {
            url: url.into(),
            basic_auth: None,
            headers: Vec::new(),
            shared_headers: None,
            cookies: None,
            http_client: None,
            content_type: None,
        }
    }
}

impl Inner {
    /// The POST carrying `body`, with every header the session sends.
    fn request(&self, body: Vec<u8>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body);
        if let Some((user, password)) = &self.credentials {
            req = req.basic_auth(user, Some(password));
        }
        if let Some(shared) = &self.shared_headers {
            let extra = shared.read().map(|h| h.clone()).unwrap_or_default();
            req = req.headers(extra);
        }
        if let Some(cookie) = self.cookies.header_for(&self.url) {
            req = req.header(COOKIE, cookie);
        }
        req
    }

    async fn send(self: Arc<Self>, body: Vec<u8>) -> Result<ReplyBody, TransportError> {
        // Deadlines are the client's; this one is never reached first.
        let mut resp = self
            .request(body)
            .send()
            .await
            .map_err(|e| request_error(&self.endpoint, e, Duration::ZERO))?;
        self.cookies.store(&self.url, resp.headers());
        let status = resp.status();
        if !status.is_success() {
            let body = read_truncated(&mut resp, ERROR_BODY_LIMIT)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(TransportError::Status {
                url: self.endpoint.clone(),
                status: status.as_u16(),
                body,
            });
        }
        Ok(streamed(resp))
    }
}

/// The body as a stream of chunks, as they arrive.
fn streamed(resp: reqwest::Response) -> ReplyBody {
    Box::pin(futures::stream::unfold(Some(resp), |state| async move {
        let mut resp = state?;
        match resp.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(resp))),
            Ok(None) => None,
            Err(e) => {
                let url = redact_url(resp.url());
                Some((Err(request_error(&url, e, Duration::ZERO)), None))
            }
        }
    }))
}

/// Reads at most `limit` bytes of an error reply's body.
async fn read_truncated(resp: &mut reqwest::Response, limit: usize) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        let room = limit - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() == limit {
            break;
        }
    }
    Some(buf.freeze())
}

impl Transport for HttpTransport {
    fn send(&self, body: Vec<u8>) -> SendFuture {
        Box::pin(self.inner.clone().send(body))
    }

    fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::AUTHORIZATION;

    #[test]
    fn credentials_in_the_url_become_a_sensitive_basic_header() {
        let t = HttpTransport::builder("http://agent:p%40ss@127.0.0.1:9/cometd")
            .build()
            .unwrap();
        assert_eq!(t.endpoint(), "http://127.0.0.1:9/cometd");
        let req = t.inner.request(Vec::new()).build().unwrap();
        let auth = &req.headers()[AUTHORIZATION];
        assert!(auth.is_sensitive());
        // base64 of "agent:p@ss".
        assert_eq!(auth, "Basic YWdlbnQ6cEBzcw==");
        assert!(!format!("{t:?}").contains("p@ss"));
    }

    #[test]
    fn the_builder_never_shows_secrets() {
        let b = HttpTransport::builder("http://agent:s3cret@127.0.0.1:9/cometd")
            .basic_auth("agent", "pa55word")
            .header("X-Token", "t0ken");
        let text = format!("{b:?}");
        for secret in ["s3cret", "pa55word", "t0ken"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("X-Token"), "{text}");
    }

    #[test]
    fn bad_headers_fail_the_build_naming_the_header() {
        let err = HttpTransport::builder("http://127.0.0.1:9/cometd")
            .header("bad name", "x")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("\"bad name\""), "{err}");
        let err = HttpTransport::builder("http://127.0.0.1:9/cometd")
            .header("X-Ok", "line\nbreak")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("X-Ok"), "{err}");
    }
}
