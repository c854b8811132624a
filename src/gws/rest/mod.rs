//! The GWS REST session: log in, keep the `JSESSIONID` cookie and the CSRF token, read the
//! current calls, and run call operations.
//!
//! | module | what it is |
//! |---|---|
//! | `credentials` | [`Credentials`], [`Password`], [`Me`] |
//! | `operations` | the call operations ([`GwsSession::attach_user_data`], ...) and [`UserValue`] |
//! | `error` | [`RestError`] and [`GwsStatus`] |
//! | `v3` | the Workspace API v3: OAuth login, `initialize-workspace`, `current-session`, v3 operations and status codes |
//! | `kvlist` | user data as a v3 KVList (`str`, `int`, `kvlist`) |
//!
//! The session speaks one API generation, chosen with [`GwsSessionBuilder::api`] (default
//! [`Api::V2`]); the rules below are v2's, the `v3` module's docs say v3's.
//!
//! A [`GwsSession`] is a cheap, cloneable handle. It owns the cookie jar
//! ([`GwsSession::cookies`]) and the CSRF header ([`GwsSession::csrf_headers`]); the CometD
//! notification client shares both, so its POSTs ride on the same HTTP session.
//!
//! # Recovery rules
//!
//! * [`GwsSession::login`] sends HTTP Basic on `GET {base}/api/v2/me`. A 401 there is a wrong
//!   user name or password: it fails at once with [`RestError::Unauthorized`] and is never retried.
//! * Every reply may carry `X-CSRF-HEADER: <name>` and `X-CSRF-TOKEN: <token>`; the latest pair
//!   is kept and sent as `<name>: <token>` on every POST, PUT and DELETE.
//! * A REST call answered 401 (the HTTP session expired) or 403 naming the CSRF token logs in
//!   again once and is retried once. Concurrent callers that hit the same expiry share one
//!   login.
//!
//! # Secrets
//!
//! The password is a [`Password`], whose `Debug` prints `***` and which has no `Display`.
//! Neither [`GwsSession`]'s `Debug` nor any error or log line contains the password, a cookie
//! or a CSRF token.

mod contact_center;
mod credentials;
mod error;
mod kvlist;
mod operations;
mod v3;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

pub use self::contact_center::{ChannelStatus, ContactCenterSession};
pub use self::credentials::{Credentials, Me, Password};
pub use self::error::{GwsStatus, RestError};
pub use self::operations::UserValue;
use self::v3::V3Config;
pub use self::v3::{CURRENT_SESSION_ATTEMPTS, DEFAULT_CLIENT_ID};
use crate::gws::Api;
use crate::transport::endpoint;
use crate::transport::http::{new_client, new_login_client, request_error};
use crate::transport::{Cookies, HttpOptions, SharedHeaders, TransportError};

/// `Result` with [`RestError`].
pub type Result<T, E = RestError> = std::result::Result<T, E>;

/// Default deadline of one REST request: the same as the notification client's default
/// max network delay.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Replies larger than this are refused ([`TransportError::TooLarge`]).
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// Server messages quoted in errors are cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 200;

/// Operation names used in errors for the requests that are not user-data operations.
const OP_LOGIN: &str = "Login";
const OP_GET_CALLS: &str = "GetCalls";

/// A logged-in (or about to log in) GWS REST session. Cloning shares the session.
#[derive(Clone)]
pub struct GwsSession {
    inner: Arc<Inner>,
}

struct Inner {
    /// The base URL with its trailing slash removed, e.g. `http://host:8090`.
    base: Url,
    /// Which API the session speaks.
    api: Api,
    /// What a v3 login needs beyond the credentials.
    v3: V3Config,
    http: reqwest::Client,
    /// Sends the v3 login requests: follows no redirect, so each one's cookies are kept.
    login_http: reqwest::Client,
    cookies: Cookies,
    csrf: SharedHeaders,
    creds: Credentials,
    /// Serializes logins so concurrent expiries lead to one login, not a storm.
    login_lock: tokio::sync::Mutex<()>,
    /// How many logins have succeeded; 0 means never logged in.
    logins: AtomicU64,
    timeout: Duration,
}

impl fmt::Debug for GwsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GwsSession")
            .field("base", &self.inner.base.as_str())
            .field("api", &self.inner.api)
            .field("user", &self.inner.creds.user())
            .field("logins", &self.inner.logins.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Configures a [`GwsSession`].
pub struct GwsSessionBuilder {
    base_url: String,
    api: Api,
    v3: V3Config,
    credentials: Credentials,
    timeout: Duration,
    http: Option<reqwest::Client>,
    options: HttpOptions,
}

impl fmt::Debug for GwsSessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GwsSessionBuilder")
            .field("base_url", &endpoint::redact(&self.base_url))
            .field("api", &self.api)
            .field("user", &self.credentials.user())
            .field("v3", &self.v3)
            .field("timeout", &self.timeout)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl GwsSessionBuilder {
    /// The API generation to speak (default [`Api::V2`]). For [`Api::V3`] see
    /// [`client_credentials`](Self::client_credentials), [`client_id`](Self::client_id),
    /// [`redirect_uri`](Self::redirect_uri) and [`api_key`](Self::api_key).
    pub fn api(mut self, api: Api) -> Self {
        self.api = api;
        self
    }

    /// The deadline of each REST request, login included (default
    /// [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends with this client, shared with other sessions (see
    /// [`new_client`]); [`HttpOptions`] are then the
    /// client's.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Proxy and certificate authorities for a client of the session's own.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.options = options;
        self
    }

    /// Checks the URL and builds the session. Nothing is sent yet.
    pub fn build(self) -> Result<GwsSession> {
        let base = parse_base(&self.base_url)?;
        self.v3.check()?;
        let http = match self.http {
            Some(http) => http,
            None => new_client(&self.options)?,
        };
        let login_http = match self.api {
            Api::V3 => new_login_client(&self.options)?,
            _ => http.clone(),
        };
        Ok(GwsSession {
            inner: Arc::new(Inner {
                base,
                api: self.api,
                v3: self.v3,
                http,
                login_http,
                cookies: Cookies::new(),
                csrf: SharedHeaders::default(),
                creds: self.credentials,
                login_lock: tokio::sync::Mutex::new(()),
                logins: AtomicU64::new(0),
                timeout: self.timeout,
            }),
        })
    }
}

/// A reply whose status has not been judged yet.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

/// The status fields every GWS reply may carry.
#[derive(Deserialize)]
struct StatusFields {
    #[serde(rename = "statusCode")]
    status_code: Option<i64>,
    #[serde(rename = "statusMessage")]
    status_message: Option<String>,
}

impl GwsSession {
    /// A session for the GWS server at `base_url` (`http://host:8090`; a trailing `/` or
    /// `/api/v2` or `/workspace/v3` suffix is accepted and ignored), with the default settings
    /// (API v2; see [`GwsSession::builder`] and [`GwsSessionBuilder::api`]). Nothing is sent
    /// until the first request.
    ///
    /// Fails with [`TransportError::InvalidUrl`] for anything but an `http`/`https` URL without
    /// embedded credentials, query or fragment.
    pub fn new(base_url: &str, credentials: Credentials) -> Result<Self> {
        Self::builder(base_url, credentials).build()
    }

    /// A builder for a session with a deadline, a shared HTTP client or HTTP options.
    pub fn builder(base_url: &str, credentials: Credentials) -> GwsSessionBuilder {
        GwsSessionBuilder {
            base_url: base_url.to_owned(),
            api: Api::V2,
            v3: V3Config::default(),
            credentials,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            http: None,
            options: HttpOptions::default(),
        }
    }

    /// The HTTP client (shared by every session built with it): give it to the
    /// notification transport
    /// ([`HttpTransportBuilder::http_client`](crate::transport::HttpTransportBuilder::http_client))
    /// with [`GwsSession::cookies`], so both ride on one HTTP session and one pool.
    pub fn http_client(&self) -> reqwest::Client {
        self.inner.http.clone()
    }

    /// The session's cookie jar (the `JSESSIONID` cookie lives here).
    pub fn cookies(&self) -> Cookies {
        self.inner.cookies.clone()
    }

    /// The CSRF header to send on every POST; give it to the notification transport.
    pub fn csrf_headers(&self) -> SharedHeaders {
        self.inner.csrf.clone()
    }

    /// The CometD endpoint: `{base}/api/v2/notifications` or
    /// `{base}/workspace/v3/notifications`.
    pub fn notifications_url(&self) -> String {
        format!("{}{}", self.base_url(), self.inner.api.notifications_path())
    }

    /// The API generation the session speaks.
    pub fn api(&self) -> Api {
        self.inner.api
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str().trim_end_matches('/')
    }

    /// The user name the session logs in with.
    pub fn user(&self) -> &str {
        self.inner.creds.user()
    }

    /// Logs in. v2: `GET {base}/api/v2/me` with HTTP Basic; the server's `JSESSIONID` lands
    /// in the jar and its CSRF header (if any) in [`GwsSession::csrf_headers`]. v3: OAuth
    /// (password grant or authorization code), then `initialize-workspace`, whose session
    /// cookie lands in the jar (see [`DEFAULT_CLIENT_ID`] and the module docs).
    ///
    /// A wrong user name or password fails at once with [`RestError::Unauthorized`]; it is
    /// not retried.
    pub async fn login(&self) -> Result<Me> {
        let _guard = self.inner.login_lock.lock().await;
        let me = self.login_locked().await?;
        self.inner.logins.fetch_add(1, Ordering::AcqRel);
        Ok(me)
    }

    /// Every call the user has now: `GET {base}/api/v2/me/calls?fields=*`, or on v3
    /// `GET {base}/workspace/v3/current-session` (`data.user.activeSession.calls`; its 403
    /// right after the first handshake is retried [`CURRENT_SESSION_ATTEMPTS`] times with
    /// backoff). Each call is its exact JSON text, so duplicate `userData` keys and number
    /// spellings survive.
    pub async fn calls(&self) -> Result<Vec<Box<RawValue>>> {
        if self.inner.api == Api::V3 {
            return self.calls_v3().await;
        }
        #[derive(Deserialize)]
        struct Calls {
            #[serde(default)]
            calls: Vec<Box<RawValue>>,
        }
        let mut url = self.url(&["me", "calls"]);
        url.set_query(Some("fields=*"));
        let body = self
            .request(Method::GET, &url, None, OP_GET_CALLS, None)
            .await?;
        let calls: Calls = serde_json::from_slice(&body).map_err(|e| RestError::Malformed {
            url: url.to_string(),
            message: format!("not a GWS calls reply: {e}"),
        })?;
        Ok(calls.calls)
    }

    /// `{base}/api/v2/<segments>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        self.url_under(&["api", "v2"], segments)
    }

    /// Sends a REST request, logging in first if needed and again once on an expired HTTP
    /// session or a rejected CSRF token; returns the body of a successful (`statusCode` 0)
    /// reply.
    async fn request(
        &self,
        method: Method,
        url: &Url,
        body: Option<String>,
        operation: &str,
        call_id: Option<&str>,
    ) -> Result<Vec<u8>> {
        let reply = self.exchange(method, url, body).await?;
        judge(url, reply, operation, call_id)
    }

    /// [`request`](Self::request) without judging the reply.
    async fn exchange(&self, method: Method, url: &Url, body: Option<String>) -> Result<Reply> {
        self.exchange_with(method, url, body, |status, body| {
            status == StatusCode::UNAUTHORIZED
                || (status == StatusCode::FORBIDDEN && mentions_csrf(body))
        })
        .await
    }

    /// Sends, logging in first if needed and again once when `lost(status, body)` says the
    /// session is gone; a 401 right after that login is an error.
    async fn exchange_with(
        &self,
        method: Method,
        url: &Url,
        body: Option<String>,
        lost: impl Fn(StatusCode, &[u8]) -> bool,
    ) -> Result<Reply> {
        if self.inner.logins.load(Ordering::Acquire) == 0 {
            self.relogin(0).await?;
        }
        let mut recovered = false;
        loop {
            let logins = self.inner.logins.load(Ordering::Acquire);
            let reply = self.send(method.clone(), url, body.clone(), false).await?;
            let expired = reply.status == StatusCode::UNAUTHORIZED;
            if lost(reply.status, &reply.body) && !recovered {
                tracing::info!(
                    url = %url,
                    status = reply.status.as_u16(),
                    reason = if expired { "HTTP session expired" } else { "refused" },
                    "logging in again"
                );
                recovered = true;
                self.relogin(logins).await?;
                continue;
            }
            if expired {
                return Err(RestError::Unauthorized {
                    url: url.to_string(),
                    status: 401,
                    hint: "refused again right after logging in: check the user's roles".into(),
                });
            }
            return Ok(reply);
        }
    }

    /// Logs in unless another caller already did since `seen_logins` was read.
    async fn relogin(&self, seen_logins: u64) -> Result<()> {
        let _guard = self.inner.login_lock.lock().await;
        if self.inner.logins.load(Ordering::Acquire) != seen_logins {
            return Ok(());
        }
        self.login_locked().await?;
        self.inner.logins.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn login_locked(&self) -> Result<Me> {
        match self.inner.api {
            Api::V3 => self.login_v3_locked().await,
            _ => self.login_v2_locked().await,
        }
    }

    async fn login_v2_locked(&self) -> Result<Me> {
        #[derive(Deserialize)]
        struct MeReply {
            user: Option<Box<RawValue>>,
        }
        #[derive(Deserialize)]
        struct UserFields {
            id: Option<serde_json::Value>,
            #[serde(rename = "userName")]
            user_name: Option<String>,
        }
        let url = self.url(&["me"]);
        let reply = self.send(Method::GET, &url, None, true).await?;
        match reply.status.as_u16() {
            401 => {
                return Err(RestError::Unauthorized {
                    url: url.to_string(),
                    status: 401,
                    hint: format!(
                        "login as {:?} refused: check the user name and password",
                        self.inner.creds.user()
                    ),
                })
            }
            403 => {
                return Err(RestError::Unauthorized {
                    url: url.to_string(),
                    status: 403,
                    hint: format!(
                        "user {:?} may not use this API: check its roles",
                        self.inner.creds.user()
                    ),
                })
            }
            _ => {}
        }
        let body = judge(&url, reply, OP_LOGIN, None)?;
        let malformed = |e: serde_json::Error| RestError::Malformed {
            url: url.to_string(),
            message: format!("not a GWS user reply: {e}"),
        };
        let user = match serde_json::from_slice::<MeReply>(&body)
            .map_err(malformed)?
            .user
        {
            Some(user) => user,
            // Some servers answer the user object itself.
            None => serde_json::from_slice::<Box<RawValue>>(&body).map_err(malformed)?,
        };
        let fields: UserFields = serde_json::from_str(user.get()).map_err(malformed)?;
        let id = fields.id.map(|id| match id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        tracing::debug!(url = %url, user = %self.inner.creds.user(), "logged in");
        Ok(Me {
            id,
            user_name: fields.user_name,
            user,
        })
    }

    /// One HTTP exchange: CSRF header on state-changing methods, CSRF answer kept, body read
    /// up to the limit. Transport failures become errors; HTTP statuses do not.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<String>,
        basic: bool,
    ) -> Result<Reply> {
        let mut req = self
            .inner
            .http
            .request(method.clone(), url.clone())
            // Per request, not on the client: the notification client may share it, and
            // its long polls outlast a REST deadline.
            .timeout(self.inner.timeout)
            .header(ACCEPT, "application/json");
        if method != Method::GET && method != Method::HEAD {
            let csrf = self
                .inner
                .csrf
                .read()
                .map(|h| h.clone())
                .unwrap_or_default();
            req = req.headers(csrf);
        }
        if let Some(cookie) = self.inner.cookies.header_for(url) {
            req = req.header(COOKIE, cookie);
        }
        req = self.with_api_key(req);
        if basic {
            req = req.basic_auth(
                self.inner.creds.user(),
                Some(self.inner.creds.password().expose_secret()),
            );
        }
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, "application/json;charset=UTF-8")
                .body(body);
        }
        let net_error = |e: reqwest::Error| request_error(url.as_str(), e, self.inner.timeout);
        let mut resp = req.send().await.map_err(net_error)?;
        self.inner.cookies.store(url, resp.headers());
        let status = resp.status();
        tracing::debug!(method = %method, url = %url, status = status.as_u16(), "GWS reply");
        self.keep_csrf(resp.headers());
        let body = read_body(url.as_str(), &mut resp, net_error).await?;
        Ok(Reply { status, body })
    }

    /// Keeps the CSRF header name and token the server announced, if any.
    fn keep_csrf(&self, headers: &HeaderMap) {
        let (Some(name), Some(token)) = (headers.get("x-csrf-header"), headers.get("x-csrf-token"))
        else {
            return;
        };
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            tracing::warn!("ignoring an X-CSRF-HEADER that is not a valid header name");
            return;
        };
        let Ok(mut token) = HeaderValue::from_bytes(token.as_bytes()) else {
            return;
        };
        token.set_sensitive(true);
        if let Ok(mut csrf) = self.inner.csrf.write() {
            if csrf.get(&name) != Some(&token) || csrf.len() != 1 {
                csrf.clear();
                csrf.insert(name, token);
            }
        }
    }
}

/// Judges a reply: a 2xx with `statusCode` 0 (or none) is success; a non-zero `statusCode`
/// is [`RestError::Gws`] whatever the HTTP status; other HTTP errors are
/// [`TransportError::Status`] with the server's `statusMessage`.
fn judge(url: &Url, reply: Reply, operation: &str, call_id: Option<&str>) -> Result<Vec<u8>> {
    let fields = serde_json::from_slice::<StatusFields>(&reply.body).ok();
    let message = fields
        .as_ref()
        .and_then(|f| f.status_message.as_deref())
        .map(truncate);
    if let Some(code) = fields.as_ref().and_then(|f| f.status_code) {
        if code != 0 {
            return Err(RestError::Gws {
                operation: operation.to_owned(),
                call_id: call_id.map(str::to_owned),
                status: GwsStatus::from_code(code),
                message,
            });
        }
    }
    if reply.status.is_success() {
        return Ok(reply.body);
    }
    if reply.status == StatusCode::UNAUTHORIZED {
        return Err(RestError::Unauthorized {
            url: url.to_string(),
            status: 401,
            hint: "check the user name and password".into(),
        });
    }
    Err(RestError::Transport(TransportError::Status {
        url: url.to_string(),
        status: reply.status.as_u16(),
        body: message.unwrap_or_else(|| truncate(&String::from_utf8_lossy(&reply.body))),
    }))
}

fn mentions_csrf(body: &[u8]) -> bool {
    String::from_utf8_lossy(body)
        .to_ascii_lowercase()
        .contains("csrf")
}

fn truncate(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(MAX_MESSAGE_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// Checks a base URL (`http`/`https` with a host, no credentials, query or fragment) and
/// drops a trailing `/`, `/api`, `/api/v2` or `/workspace/v3`.
fn parse_base(base_url: &str) -> Result<Url> {
    let invalid = |reason: &str| TransportError::InvalidUrl {
        url: endpoint::redact(base_url),
        reason: reason.to_owned(),
    };
    let mut url = endpoint::parse(base_url)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            invalid("credentials in the URL are not accepted: pass them as Credentials").into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment").into());
    }
    let path = url.path().trim_end_matches('/');
    let path = path
        .strip_suffix("/api/v2")
        .or_else(|| path.strip_suffix("/workspace/v3"))
        .or_else(|| path.strip_suffix("/api"))
        .unwrap_or(path)
        .to_owned();
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests;

/// A REST reply's body, refused past [`MAX_REPLY_BYTES`]: a reply that big is not GWS's.
pub(crate) async fn read_body(
    url: &str,
    resp: &mut reqwest::Response,
    net_error: impl Fn(reqwest::Error) -> TransportError,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(&net_error)? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(RestError::Transport(TransportError::TooLarge {
                url: url.to_owned(),
                limit: MAX_REPLY_BYTES,
                option: "a GWS REST reply (fixed)",
            }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
