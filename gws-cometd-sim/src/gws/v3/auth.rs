//! The v3 Authentication API (`/auth/v3`): the authorization-code flow (authorize, form
//! sign-in, a redirect with `code`) and the token endpoint (password grant, code exchange).

use bytes::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::{form, query, user_name, Grant, SignInRequest, V3};
use crate::gws::auth::{basic_credentials, random_token};
use crate::json_string::quote;
use crate::server::{add_header, cookie, json_reply, reply};

/// The cookie that ties the sign-in form to its authorize request.
const AUTH_COOKIE: &str = "AUTH_SESSIONID";

/// How long tokens say they live (they never expire in the simulator).
const EXPIRES_IN: u64 = 43_199;

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Bytes> {
    json_reply(
        status,
        format!(
            r#"{{"error":{},"error_description":{}}}"#,
            quote(error),
            quote(description)
        ),
    )
}

/// The sign-in page: a form posting `username` and `password` to `/auth/v3/sign-in`.
fn sign_in_page(status: StatusCode, note: &str) -> Response<Bytes> {
    reply(
        status,
        "text/html;charset=UTF-8",
        format!(
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body>{note}\
             <form method=\"post\" action=\"/auth/v3/sign-in\">\
             <input name=\"username\" placeholder=\"tenant\\user\">\
             <input name=\"password\" type=\"password\">\
             <button type=\"submit\">Sign in</button></form></body></html>"
        ),
    )
}

impl V3 {
    /// Answers `/auth/v3/...`.
    pub(super) fn auth(&self, req: &Request<Bytes>, rest: &str) -> Response<Bytes> {
        match (req.method(), rest) {
            (&Method::GET, "/oauth/authorize") => self.authorize(req),
            (&Method::POST, "/sign-in") => self.sign_in(req),
            (&Method::POST, "/oauth/token") => self.token(req),
            _ => oauth_error(StatusCode::NOT_FOUND, "not_found", "No such endpoint"),
        }
    }

    /// `GET /auth/v3/oauth/authorize?response_type=code&client_id=..&redirect_uri=..`: the
    /// sign-in form, remembering where to redirect under a new `AUTH_SESSIONID` cookie.
    fn authorize(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let q = query(req);
        if q.get("response_type").map(String::as_str) != Some("code") {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_response_type",
                "response_type must be code",
            );
        }
        let Some(redirect_uri) = q.get("redirect_uri").filter(|u| !u.is_empty()) else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri is missing",
            );
        };
        let client_id = q.get("client_id").cloned().unwrap_or_default();
        let id = random_token();
        {
            let mut state = self.state();
            // A real server checks both against the client's registration, and never
            // redirects to an unregistered URI.
            let registered = state.clients.get(&client_id);
            if !state.clients.is_empty() && registered.is_none() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    &format!("Unknown client id {client_id:?}"),
                );
            }
            if registered.is_some_and(|r| r != redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("redirect_uri does not match the one registered for {client_id:?}"),
                );
            }
            state.sign_ins.insert(
                id.clone(),
                SignInRequest {
                    client_id: Some(client_id),
                    redirect_uri: redirect_uri.clone(),
                    state: q.get("state").cloned(),
                },
            );
        }
        let mut r = sign_in_page(StatusCode::OK, "");
        add_header(
            &mut r,
            SET_COOKIE,
            &format!("{AUTH_COOKIE}={id}; Path=/auth/v3; HttpOnly"),
        );
        r
    }

    /// `POST /auth/v3/sign-in` (form `username`, `password`): a 302 to the authorize
    /// request's `redirect_uri` with `code` (and its `state`); wrong credentials get the
    /// form again with 401. Without an authorize request, a `redirect_uri` form field
    /// serves.
    fn sign_in(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let f = form(req.body());
        let pending = cookie(req.headers(), AUTH_COOKIE)
            .and_then(|id| self.state().sign_ins.get(id).cloned())
            .or_else(|| {
                f.get("redirect_uri").map(|u| SignInRequest {
                    client_id: None,
                    redirect_uri: u.clone(),
                    state: f.get("state").cloned(),
                })
            });
        let Some(pending) = pending else {
            return sign_in_page(
                StatusCode::BAD_REQUEST,
                "<p>Start at /auth/v3/oauth/authorize.</p>",
            );
        };
        let (Some(name), Some(password)) = (f.get("username"), f.get("password")) else {
            return sign_in_page(StatusCode::BAD_REQUEST, "<p>Missing credentials.</p>");
        };
        let Some(user) = self.check(name, password) else {
            return sign_in_page(StatusCode::UNAUTHORIZED, "<p>Bad credentials.</p>");
        };
        let code = random_token();
        {
            let mut state = self.state();
            if let Some(id) = cookie(req.headers(), AUTH_COOKIE) {
                // Signed in: the authorize request is done with.
                state.sign_ins.remove(id);
            }
            state.codes.insert(
                code.clone(),
                Grant {
                    user,
                    client_id: pending.client_id.clone(),
                    redirect_uri: pending.redirect_uri.clone(),
                },
            );
        }
        let sep = if pending.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        let mut location = format!("{}{sep}code={code}", pending.redirect_uri);
        if let Some(state) = &pending.state {
            location.push_str("&state=");
            location.extend(utf8_percent_encode(state, NON_ALPHANUMERIC).map(str::to_owned));
        }
        let mut r = reply(StatusCode::FOUND, "text/plain;charset=UTF-8", "");
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                r.headers_mut().insert(LOCATION, v);
            }
            Err(_) => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri is not a valid URL",
                )
            }
        }
        r
    }

    /// `POST /auth/v3/oauth/token`: `grant_type=password` (`username`, `password`) or
    /// `authorization_code` (`code`, and the client and `redirect_uri` the code was issued
    /// for), the client as HTTP Basic (any client id and secret).
    fn token(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let basic = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "));
        let client_id = basic_credentials(req.headers()).map(|(id, _)| id);
        if !basic {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Full authentication is required: client credentials as HTTP Basic",
            );
        }
        let f = form(req.body());
        let user = match f.get("grant_type").map(String::as_str) {
            Some("password") => {
                let (Some(name), Some(password)) = (f.get("username"), f.get("password")) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "username and password are required",
                    );
                };
                self.check(name, password)
            }
            Some("authorization_code") => f
                .get("code")
                .and_then(|code| self.state().codes.remove(code))
                .filter(|g| {
                    (g.client_id.is_none() || g.client_id == client_id)
                        && f.get("redirect_uri") == Some(&g.redirect_uri)
                })
                .map(|g| g.user),
            _ => {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "grant_type must be password or authorization_code",
                )
            }
        };
        let Some(user) = user else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad credentials");
        };
        let token = random_token();
        self.state().tokens.insert(token.clone(), user);
        json_reply(
            StatusCode::OK,
            format!(
                r#"{{"access_token":{},"token_type":"bearer","expires_in":{EXPIRES_IN},"scope":"*"}}"#,
                quote(&token)
            ),
        )
    }

    /// The configured user `name` names (`user`, `\user` or `tenant\user`) if `password`
    /// is theirs.
    fn check(&self, name: &str, password: &str) -> Option<String> {
        let user = user_name(name);
        self.gws
            .config()
            .users
            .iter()
            .any(|(u, p)| u == user && p == password)
            .then(|| user.to_owned())
    }
}
