//! Long polling over HTTP/1.1 with `reqwest`: one cookie jar per client, optional Basic auth,
//! fixed and shared (refreshable) extra headers, and a limit on the reply size.

use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};
use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use url::Url;

use super::{ReplyBody, SendFuture, Transport};
use crate::bayeux::session::Failure;
use crate::error::Error;

/// Headers that another component may replace while the client runs, such as the GWS CSRF
/// header. Values should be marked sensitive ([`HeaderValue::set_sensitive`]).
pub type SharedHeaders = Arc<RwLock<HeaderMap>>;

/// Longest server message kept from a non-2xx reply.
const ERROR_BODY_LIMIT: usize = 2048;

/// The HTTP long-polling transport.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    url: Url,
    endpoint: String,
    headers: HeaderMap,
    shared_headers: Option<SharedHeaders>,
    max_reply_bytes: usize,
}

/// Settings of an [`HttpTransport`].
pub struct HttpTransportConfig {
    /// The Bayeux endpoint. User info in the URL is moved into a Basic `Authorization` header.
    pub url: String,
    /// Basic credentials `(user, password)`.
    pub basic_auth: Option<(String, String)>,
    /// Headers sent on every request.
    pub headers: HeaderMap,
    /// Headers read anew for every request.
    pub shared_headers: Option<SharedHeaders>,
    /// The cookie jar; `None` gives the transport a jar of its own. Ignored with
    /// `http_client`.
    pub cookie_jar: Option<Arc<Jar>>,
    /// An HTTP client to use (its cookie store included) instead of building one: clients
    /// are sizeable (TLS roots), so processes with many sessions share them.
    pub http_client: Option<reqwest::Client>,
    /// Replies larger than this fail with [`Failure::TooLarge`].
    pub max_reply_bytes: usize,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

/// The URL without user info, query or fragment, for logs and errors.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Parses and checks an endpoint URL: absolute `http` or `https` with a host.
pub(crate) fn parse_endpoint(url: &str) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: Url::parse(url)
            .map(|u| redact_url(&u))
            .unwrap_or_else(|_| url.chars().take(200).collect()),
        reason,
    };
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".into()));
    }
    Ok(parsed)
}

/// A Basic `Authorization` header value, marked sensitive so it is never printed.
pub(crate) fn basic_auth_header(user: &str, password: &str) -> HeaderValue {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut v = HeaderValue::from_str(&format!("Basic {token}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

impl HttpTransport {
    /// Builds the transport. Fails on an unusable URL or when the TLS stack cannot start.
    pub fn new(config: HttpTransportConfig) -> Result<Self, Error> {
        let mut url = parse_endpoint(&config.url)?;
        let mut headers = config.headers;
        let mut credentials = config.basic_auth;
        if !url.username().is_empty() && credentials.is_none() {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or(""));
            credentials = Some((user, password));
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if let Some((user, password)) = &credentials {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                basic_auth_header(user, password),
            );
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        let http = match config.http_client {
            Some(http) => http,
            None => reqwest::Client::builder()
                .cookie_provider(config.cookie_jar.unwrap_or_default())
                // Deadlines are enforced by the client per request; idle pooled connections
                // are dropped well before common server keep-alive limits.
                .pool_idle_timeout(std::time::Duration::from_secs(50))
                .build()
                .map_err(|e| Error::Network {
                    url: redact_url(&url),
                    message: format!("cannot build the HTTP client: {e}"),
                })?,
        };
        Ok(HttpTransport {
            inner: Arc::new(Inner {
                http,
                endpoint: redact_url(&url),
                url,
                headers,
                shared_headers: config.shared_headers,
                max_reply_bytes: config.max_reply_bytes,
            }),
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Describes a reqwest error with its causes, never with the URL (which the caller knows).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "reply body interrupted".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

impl Inner {
    async fn send(self: Arc<Self>, body: Vec<u8>) -> Result<ReplyBody, Failure> {
        let mut req = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body);
        if let Some(shared) = &self.shared_headers {
            let extra = shared.read().map(|h| h.clone()).unwrap_or_default();
            req = req.headers(extra);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| Failure::Network(describe(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_truncated(&mut resp, ERROR_BODY_LIMIT)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(Failure::HttpStatus {
                status: status.as_u16(),
                body,
            });
        }
        if resp
            .content_length()
            .is_some_and(|len| len > self.max_reply_bytes as u64)
        {
            return Err(Failure::TooLarge);
        }
        Ok(limited_body(resp, self.max_reply_bytes))
    }
}

/// The body as a stream of chunks, failing with `TooLarge` once the total passes `limit`.
fn limited_body(resp: reqwest::Response, limit: usize) -> ReplyBody {
    Box::pin(futures::stream::unfold(
        Some((resp, 0usize)),
        move |state| async move {
            let (mut resp, total) = state?;
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let total = total.saturating_add(chunk.len());
                    if total > limit {
                        return Some((Err(Failure::TooLarge), None));
                    }
                    Some((Ok(chunk), Some((resp, total))))
                }
                Ok(None) => None,
                Err(e) => Some((Err(Failure::Network(describe(&e))), None)),
            }
        },
    ))
}

/// Reads at most `limit` bytes of an error reply's body.
async fn read_truncated(resp: &mut reqwest::Response, limit: usize) -> Result<Bytes, Failure> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Failure::Network(describe(&e)))?
    {
        let room = limit - buf.len();
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() == limit {
            break;
        }
    }
    Ok(buf.freeze())
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

    #[test]
    fn endpoints_must_be_absolute_http_urls() {
        assert!(parse_endpoint("http://127.0.0.1:8080/cometd").is_ok());
        assert!(parse_endpoint("https://gws.example/api/v2/notifications").is_ok());
        for bad in ["", "127.0.0.1:8080", "ftp://h/x", "http://", "/cometd"] {
            assert!(
                matches!(parse_endpoint(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn redacted_urls_drop_credentials_and_query() {
        let u = Url::parse("http://agent:s3cret@h:1/cometd?token=abc").unwrap();
        let r = redact_url(&u);
        assert_eq!(r, "http://h:1/cometd");
        let err = parse_endpoint("gopher://agent:s3cret@h/x").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn credentials_in_the_url_become_a_sensitive_basic_header() {
        let t = HttpTransport::new(HttpTransportConfig {
            url: "http://agent:p%40ss@127.0.0.1:9/cometd".into(),
            basic_auth: None,
            headers: HeaderMap::new(),
            shared_headers: None,
            cookie_jar: None,
            http_client: None,
            max_reply_bytes: 1024,
        })
        .unwrap();
        assert_eq!(t.endpoint(), "http://127.0.0.1:9/cometd");
        let auth = &t.inner.headers[reqwest::header::AUTHORIZATION];
        assert!(auth.is_sensitive());
        assert_eq!(auth, &basic_auth_header("agent", "p@ss"));
        assert!(!format!("{t:?}").contains("p@ss"));
    }
}
