//! The Workspace API v3 (GWS 9, Genesys Multicloud CX) side of [`GwsSession`]: login,
//! `initialize-workspace`, the current calls and the call operations.
//!
//! # Login
//!
//! * With a client id and secret ([`GwsSessionBuilder::client_credentials`]): the password
//!   grant, `POST {base}/auth/v3/oauth/token` (`grant_type=password`, the client as HTTP
//!   Basic, `username`, `password`), then `initialize-workspace` with
//!   `Authorization: Bearer <access_token>`.
//! * Without: the authorization-code flow a browser takes.
//!   `GET {base}/auth/v3/oauth/authorize?response_type=code&client_id=..&redirect_uri=..`,
//!   form `POST {base}/auth/v3/sign-in` (`username`, `password`), redirects followed by hand
//!   (cookies kept) until one carries `code`, then `initialize-workspace?code=..&redirect_uri=..`.
//!   The client id is [`DEFAULT_CLIENT_ID`] and the redirect URI the base URL with a trailing
//!   `/`, unless given ([`GwsSessionBuilder::client_id`], [`GwsSessionBuilder::redirect_uri`]:
//!   a real GWS 9 wants the ones registered for the client). The redirect URI is never
//!   fetched: the code is read from the redirect itself.
//!
//! `initialize-workspace` sets the session cookie (`WORKSPACE_SESSIONID` on GWS 9,
//! `WWE_CODE` on Genesys's simulator); every cookie the server sets is kept in the session's
//! jar. An API key ([`GwsSessionBuilder::api_key`]) goes as `x-api-key` on every request.
//!
//! # Replies
//!
//! A v3 reply carries `{"status":{"code":N,"message":".."}}`. Code 0 (done) and 1 (accepted;
//! the effect follows as a notification) are success; any other code is
//! [`RestError::Gws`] with [`GwsStatus::from_code`], the same table as v2's `statusCode`
//! (2 invalid for the state, 3 forbidden, 4 internal error, 5 no permission, 6 not found,
//! ...), whatever the HTTP status. HTTP errors without a status are
//! [`TransportError::Status`].
//!
//! A REST request answered 401, or 403 without a v3 status (the session is gone), logs in
//! again once and is retried once, except that
//! `current-session`, which GWS refuses with 403 for a few seconds after the first handshake,
//! is first retried [`CURRENT_SESSION_ATTEMPTS`] times with backoff.

use std::fmt;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION,
};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use super::{truncate, GwsSession, GwsSessionBuilder, Me, Password, Reply, RestError, Result};
use super::{GwsStatus, OP_GET_CALLS, OP_LOGIN};
use crate::transport::http::request_error;
use crate::transport::TransportError;

/// The OAuth client id of the authorization-code flow when none is given.
pub const DEFAULT_CLIENT_ID: &str = "gws-cometd";

/// How often `current-session` is asked while it answers 403 right after the first
/// handshake, before the 403 is taken as a lost session.
pub const CURRENT_SESSION_ATTEMPTS: u32 = 5;

/// The first wait between two `current-session` attempts; it doubles each time.
const CURRENT_SESSION_BACKOFF: Duration = Duration::from_millis(250);

/// Redirects the authorization-code flow follows before giving up.
const MAX_REDIRECTS: usize = 8;

/// What a v3 session logs in with beyond the user's credentials. `Debug` shows no secret.
#[derive(Clone, Default)]
pub(super) struct V3Config {
    /// OAuth client id and secret: the password grant when present.
    pub(super) client: Option<(String, Password)>,
    /// Sent as `x-api-key` on every request.
    pub(super) api_key: Option<Password>,
    /// The authorization-code flow's client id, when not [`DEFAULT_CLIENT_ID`].
    pub(super) code_client_id: Option<String>,
    /// The authorization-code flow's redirect URI, when not the base URL.
    pub(super) redirect_uri: Option<String>,
}

impl V3Config {
    /// Refuses a redirect URI that is not an absolute URL (checked when the session is built,
    /// not at the first login).
    pub(super) fn check(&self) -> Result<()> {
        let Some(uri) = &self.redirect_uri else {
            return Ok(());
        };
        match Url::parse(uri) {
            Ok(url) if !url.cannot_be_a_base() => Ok(()),
            _ => Err(TransportError::InvalidUrl {
                url: uri.clone(),
                reason: "a redirect URI must be an absolute URL, e.g. \
                         https://app.example.com/callback"
                    .into(),
            }
            .into()),
        }
    }
}

impl fmt::Debug for V3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3Config")
            .field("client_id", &self.client.as_ref().map(|(id, _)| id))
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("code_client_id", &self.code_client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl GwsSessionBuilder {
    /// Workspace API v3 only: log in by the OAuth password grant with this client id and
    /// secret (sent as HTTP Basic to `/auth/v3/oauth/token`). Without it, a v3 session logs in
    /// by form sign-in and the authorization-code flow. The secret is never printed.
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        secret: impl Into<Password>,
    ) -> Self {
        self.v3.client = Some((client_id.into(), secret.into()));
        self
    }

    /// Sends `x-api-key: <key>` on every request, REST and notifications (some Multicloud CX
    /// deployments want it). The key is never printed.
    pub fn api_key(mut self, key: impl Into<Password>) -> Self {
        self.v3.api_key = Some(key.into());
        self
    }

    /// Workspace API v3 only: the OAuth client id of the authorization-code flow (form
    /// sign-in), sent to `/auth/v3/oauth/authorize`. Default [`DEFAULT_CLIENT_ID`]; a real
    /// GWS 9 wants a client id registered there. Not used with
    /// [`client_credentials`](Self::client_credentials), whose own id the password grant
    /// sends.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.v3.code_client_id = Some(client_id.into());
        self
    }

    /// Workspace API v3 only: the redirect URI of the authorization-code flow, sent to
    /// `/auth/v3/oauth/authorize` and with the code to `initialize-workspace`. Default: the
    /// base URL with a trailing `/`; a real GWS 9 wants the one registered for the
    /// [`client_id`](Self::client_id). It is never fetched: the code is read from the
    /// redirect itself. [`build`](Self::build) refuses one that is not an absolute URL.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.v3.redirect_uri = Some(uri.into());
        self
    }
}

/// A login exchange's reply: status, `Location`, body.
struct LoginReply {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
}

/// The status every v3 reply may carry.
#[derive(Deserialize)]
struct V3Status {
    status: Option<V3StatusFields>,
}

#[derive(Deserialize)]
struct V3StatusFields {
    code: Option<i64>,
    message: Option<String>,
}

impl GwsSession {
    /// The API key header, when one was given.
    pub(crate) fn api_key(&self) -> Option<&str> {
        self.inner.v3.api_key.as_ref().map(Password::expose_secret)
    }

    /// `{base}/<root...>/<segments>`, each segment percent-encoded.
    pub(super) fn url_under(&self, root: &[&str], segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(root).extend(segments);
        }
        url
    }

    /// `{base}/workspace/v3/<segments>`.
    pub(super) fn v3_url(&self, segments: &[&str]) -> Url {
        self.url_under(&["workspace", "v3"], segments)
    }

    /// The redirect URI of the authorization-code flow: the one given, else the base URL.
    fn redirect_uri(&self) -> String {
        match &self.inner.v3.redirect_uri {
            Some(uri) => uri.clone(),
            None => format!("{}/", self.base_url()),
        }
    }

    /// Logs in to v3 (see the [module docs](self)); the caller holds the login lock.
    pub(super) async fn login_v3_locked(&self) -> Result<Me> {
        let url = self.v3_url(&["initialize-workspace"]);
        let reply = match &self.inner.v3.client {
            Some((id, secret)) => {
                let token = self.password_grant(id, secret).await?;
                let mut bearer =
                    HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                        RestError::Malformed {
                            url: self
                                .url_under(&["auth", "v3", "oauth", "token"], &[])
                                .to_string(),
                            message: "the access token is not a valid header value".into(),
                        }
                    })?;
                bearer.set_sensitive(true);
                let req = self
                    .login_request(Method::GET, &url)
                    .header(AUTHORIZATION, bearer);
                self.login_send(&url, req).await?
            }
            None => {
                let code = self.authorization_code().await?;
                let mut with_code = url.clone();
                with_code
                    .query_pairs_mut()
                    .append_pair("code", &code)
                    .append_pair("redirect_uri", &self.redirect_uri());
                let req = self.login_request(Method::GET, &with_code);
                self.login_send(&url, req).await?
            }
        };
        if matches!(reply.status.as_u16(), 401 | 403) {
            return Err(RestError::Unauthorized {
                url: url.to_string(),
                status: reply.status.as_u16(),
                hint: format!(
                    "initialize-workspace refused user {:?}: check the user's roles",
                    self.user()
                ),
            });
        }
        let body = judge_v3(
            &url,
            Reply {
                status: reply.status,
                body: reply.body,
            },
            OP_LOGIN,
            None,
        )?;
        let me = read_me(&url, body)?;
        tracing::debug!(url = %url, user = %self.user(), "logged in (v3)");
        Ok(me)
    }

    /// The OAuth password grant: an access token for the user.
    async fn password_grant(&self, client_id: &str, secret: &Password) -> Result<String> {
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
        }
        let url = self.url_under(&["auth", "v3", "oauth", "token"], &[]);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "password")
            .append_pair("client_id", client_id)
            .append_pair("scope", "*")
            .append_pair("username", self.user())
            .append_pair("password", self.inner.creds.password().expose_secret())
            .finish();
        let req = self
            .login_request(Method::POST, &url)
            .basic_auth(client_id, Some(secret.expose_secret()))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        let reply = self.login_send(&url, req).await?;
        if matches!(reply.status.as_u16(), 400 | 401 | 403) {
            return Err(RestError::Unauthorized {
                url: url.to_string(),
                status: reply.status.as_u16(),
                hint: format!(
                    "password grant for user {:?} with client {client_id:?} refused: check the \
                     user name, password, client id and secret",
                    self.user()
                ),
            });
        }
        if !reply.status.is_success() {
            return Err(status_error(&url, reply.status, &reply.body));
        }
        let token: Token =
            serde_json::from_slice(&reply.body).map_err(|e| RestError::Malformed {
                url: url.to_string(),
                message: format!("not an OAuth token reply: {e}"),
            })?;
        Ok(token.access_token)
    }

    /// The authorization-code flow up to the code: authorize, sign in, follow redirects.
    async fn authorization_code(&self) -> Result<String> {
        let client_id = self
            .inner
            .v3
            .code_client_id
            .as_deref()
            .unwrap_or(DEFAULT_CLIENT_ID);
        let redirect_uri = self.redirect_uri();
        let mut authorize = self.url_under(&["auth", "v3", "oauth", "authorize"], &[]);
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri);
        // Already signed in (a cookie of an earlier login): the code comes at once.
        match self.follow(&authorize, Method::GET, None).await {
            Ok(Some(code)) => return Ok(code),
            Ok(None) => {}
            Err(RestError::Transport(TransportError::Status { status, body, .. }))
                if matches!(status, 400 | 401 | 403) =>
            {
                return Err(RestError::Unauthorized {
                    url: self
                        .url_under(&["auth", "v3", "oauth", "authorize"], &[])
                        .to_string(),
                    status,
                    hint: format!(
                        "the authorization server refused client {client_id:?} with redirect \
                         URI {redirect_uri:?} ({}): give the client id and redirect URI \
                         registered there (client_id, redirect_uri), or a client id and \
                         secret (client_credentials)",
                        oauth_reason(&body)
                    ),
                })
            }
            Err(e) => return Err(e),
        }
        let sign_in = self.url_under(&["auth", "v3", "sign-in"], &[]);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("username", self.user())
            .append_pair("password", self.inner.creds.password().expose_secret())
            .append_pair("client_id", client_id)
            .finish();
        let refused = |status: u16| RestError::Unauthorized {
            url: sign_in.to_string(),
            status,
            hint: format!(
                "sign-in as {:?} refused: check the user name (tenant\\user) and password",
                self.user()
            ),
        };
        match self.follow(&sign_in, Method::POST, Some(form)).await {
            Ok(Some(code)) => return Ok(code),
            Ok(None) => {}
            Err(RestError::Transport(TransportError::Status { status, .. }))
                if matches!(status, 400 | 401 | 403) =>
            {
                return Err(refused(status))
            }
            Err(e) => return Err(e),
        }
        // Signed in without a redirect to the code: ask for it again, now with the cookie.
        match self.follow(&authorize, Method::GET, None).await? {
            Some(code) => Ok(code),
            None => Err(refused(401)),
        }
    }

    /// Sends one login request and follows its redirects by hand, keeping cookies, until a
    /// redirect carries `code` (returned) or a reply is not a redirect (`None`; an HTTP
    /// error status is an error).
    async fn follow(
        &self,
        url: &Url,
        method: Method,
        form: Option<String>,
    ) -> Result<Option<String>> {
        let mut req = self.login_request(method, url);
        if let Some(form) = form {
            req = req
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form);
        }
        let mut reply = self.login_send(url, req).await?;
        let mut at = url.clone();
        for _ in 0..MAX_REDIRECTS {
            let Some(location) = reply.location.take() else {
                if reply.status.is_success() || reply.status.is_redirection() {
                    return Ok(None);
                }
                return Err(status_error(&at, reply.status, &reply.body));
            };
            let next = at.join(&location).map_err(|e| RestError::Malformed {
                url: at.to_string(),
                message: format!("a redirect to an unusable Location: {e}"),
            })?;
            if let Some((_, code)) = next.query_pairs().find(|(k, _)| k == "code") {
                return Ok(Some(code.into_owned()));
            }
            if let Some((_, error)) = next.query_pairs().find(|(k, _)| k == "error") {
                return Err(RestError::Unauthorized {
                    url: at.to_string(),
                    status: reply.status.as_u16(),
                    hint: format!("the login was refused: {}", truncate(&error)),
                });
            }
            if next.origin() != self.inner.base.origin() {
                return Ok(None);
            }
            at = next;
            let req = self.login_request(Method::GET, &at);
            reply = self.login_send(&at, req).await?;
        }
        Err(RestError::Malformed {
            url: url.to_string(),
            message: format!("more than {MAX_REDIRECTS} redirects without a code"),
        })
    }

    /// A login request: the login client (no automatic redirects), deadline, `Accept`,
    /// cookies, API key.
    fn login_request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        let mut req = self
            .inner
            .login_http
            .request(method, url.clone())
            .timeout(self.inner.timeout)
            .header(ACCEPT, "application/json");
        if let Some(cookie) = self.inner.cookies.header_for(url) {
            req = req.header(COOKIE, cookie);
        }
        self.with_api_key(req)
    }

    /// Adds `x-api-key` when the session has one.
    pub(super) fn with_api_key(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.api_key().and_then(|k| HeaderValue::try_from(k).ok()) {
            Some(mut key) => {
                key.set_sensitive(true);
                req.header("x-api-key", key)
            }
            None => req,
        }
    }

    async fn login_send(&self, url: &Url, req: reqwest::RequestBuilder) -> Result<LoginReply> {
        let net_error = |e: reqwest::Error| request_error(url.as_str(), e, self.inner.timeout);
        let mut resp = req.send().await.map_err(net_error)?;
        self.inner.cookies.store(resp.url(), resp.headers());
        let status = resp.status();
        tracing::debug!(url = %url, status = status.as_u16(), "GWS login reply");
        let location = location(resp.headers());
        let body = super::read_body(url.as_str(), &mut resp, net_error).await?;
        Ok(LoginReply {
            status,
            location,
            body,
        })
    }

    /// Every call the user has now, from `GET {base}/workspace/v3/current-session`
    /// (`data.user.activeSession.calls`), each as its exact JSON text.
    pub(super) async fn calls_v3(&self) -> Result<Vec<Box<RawValue>>> {
        #[derive(Deserialize)]
        struct Session<'a> {
            #[serde(borrow)]
            data: Option<Data<'a>>,
        }
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(borrow)]
            user: Option<User<'a>>,
        }
        #[derive(Deserialize)]
        struct User<'a> {
            #[serde(rename = "activeSession", borrow)]
            active_session: Option<Active<'a>>,
        }
        #[derive(Deserialize)]
        struct Active<'a> {
            #[serde(borrow, default)]
            calls: Vec<&'a RawValue>,
        }
        let url = self.v3_url(&["current-session"]);
        let mut wait = CURRENT_SESSION_BACKOFF;
        let mut attempt = 1;
        let reply = loop {
            let last = attempt >= CURRENT_SESSION_ATTEMPTS;
            let reply = self.exchange_v3(Method::GET, &url, None, last).await?;
            if reply.status != StatusCode::FORBIDDEN || last {
                break reply;
            }
            tracing::debug!(url = %url, attempt, retry_in = ?wait, "current-session refused (403) so soon after the handshake; asking again");
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
        };
        let body = judge_v3(&url, reply, OP_GET_CALLS, None)?;
        let session: Session = serde_json::from_slice(&body).map_err(|e| RestError::Malformed {
            url: url.to_string(),
            message: format!("not a current-session reply: {e}"),
        })?;
        let calls = session
            .data
            .and_then(|d| d.user)
            .and_then(|u| u.active_session)
            .map(|a| a.calls)
            .unwrap_or_default();
        Ok(calls.into_iter().map(RawValue::to_owned).collect())
    }

    /// `POST {base}/workspace/v3/voice/calls/{id}/{op}` with `{"data":<data>}`.
    pub(super) async fn operation_v3(
        &self,
        call_id: &str,
        op: &str,
        operation: &str,
        data: &str,
    ) -> Result<()> {
        let url = self.v3_url(&["voice", "calls", call_id, op]);
        let body = format!(r#"{{"data":{data}}}"#);
        let reply = self
            .exchange_v3(Method::POST, &url, Some(body), true)
            .await?;
        judge_v3(&url, reply, operation, Some(call_id)).map(drop)
    }

    /// A v3 REST exchange: a 401 (or, when `forbidden_relogs`, a 403 without a v3 status:
    /// one with a status is GWS refusing the operation itself) logs in again once and is
    /// retried once.
    async fn exchange_v3(
        &self,
        method: Method,
        url: &Url,
        body: Option<String>,
        forbidden_relogs: bool,
    ) -> Result<Reply> {
        self.exchange_with(method, url, body, |status, body| {
            status == StatusCode::UNAUTHORIZED
                || (forbidden_relogs && status == StatusCode::FORBIDDEN && !has_status(body))
        })
        .await
    }
}

/// Whether a reply body carries a v3 `status.code`.
fn has_status(body: &[u8]) -> bool {
    serde_json::from_slice::<V3Status>(body)
        .ok()
        .and_then(|s| s.status)
        .is_some_and(|s| s.code.is_some())
}

/// An OAuth error reply's `error_description` (or `error`), else the body as it came.
fn oauth_reason(body: &str) -> String {
    #[derive(Deserialize)]
    struct OAuthError {
        error: Option<String>,
        error_description: Option<String>,
    }
    serde_json::from_str::<OAuthError>(body)
        .ok()
        .and_then(|e| e.error_description.or(e.error))
        .map_or_else(|| body.to_owned(), |reason| truncate(&reason))
}

fn location(headers: &HeaderMap) -> Option<String> {
    headers
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
}

/// The user `initialize-workspace` describes (`data.user`), or the whole reply.
fn read_me(url: &Url, body: Vec<u8>) -> Result<Me> {
    #[derive(Deserialize)]
    struct Reply {
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    struct Data {
        user: Option<Box<RawValue>>,
    }
    #[derive(Deserialize)]
    struct UserFields {
        id: Option<serde_json::Value>,
        #[serde(rename = "userName")]
        user_name: Option<String>,
    }
    let malformed = |e: serde_json::Error| RestError::Malformed {
        url: url.to_string(),
        message: format!("not an initialize-workspace reply: {e}"),
    };
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".to_vec()
    } else {
        body
    };
    let user = match serde_json::from_slice::<Reply>(&text)
        .map_err(malformed)?
        .data
        .and_then(|d| d.user)
    {
        Some(user) => user,
        None => serde_json::from_slice::<Box<RawValue>>(&text).map_err(malformed)?,
    };
    let fields: UserFields = serde_json::from_str(user.get()).unwrap_or(UserFields {
        id: None,
        user_name: None,
    });
    Ok(Me {
        id: fields.id.map(|id| match id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        }),
        user_name: fields.user_name,
        user,
    })
}

/// Judges a v3 reply (see the [module docs](self)).
pub(super) fn judge_v3(
    url: &Url,
    reply: Reply,
    operation: &str,
    call_id: Option<&str>,
) -> Result<Vec<u8>> {
    let status = serde_json::from_slice::<V3Status>(&reply.body)
        .ok()
        .and_then(|s| s.status);
    if let Some(V3StatusFields {
        code: Some(code),
        message,
    }) = &status
    {
        if !matches!(code, 0 | 1) {
            return Err(RestError::Gws {
                operation: operation.to_owned(),
                call_id: call_id.map(str::to_owned),
                status: GwsStatus::from_code(*code),
                message: message.as_deref().map(truncate),
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
            hint: "refused again right after logging in: check the user's roles".into(),
        });
    }
    let message = status.and_then(|s| s.message).map(|m| truncate(&m));
    Err(RestError::Transport(TransportError::Status {
        url: url.to_string(),
        status: reply.status.as_u16(),
        body: message.unwrap_or_else(|| truncate(&String::from_utf8_lossy(&reply.body))),
    }))
}

fn status_error(url: &Url, status: StatusCode, body: &[u8]) -> RestError {
    RestError::Transport(TransportError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        body: truncate(&String::from_utf8_lossy(body)),
    })
}

#[cfg(test)]
#[path = "v3_tests.rs"]
mod tests;
