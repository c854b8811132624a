//! The Bayeux endpoint: parses request batches, binds them to the `BAYEUX_BROWSER` cookie,
//! runs them through the [`Engine`] and writes the reply batch.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use hyper::header::SET_COOKIE;
use hyper::{Method, Request, Response, StatusCode};

use super::engine::{Engine, Policy};
use super::fault::ActiveFaults;
use super::server::{add_header, cookie, json_reply, text_reply, Route};
use gws_cometd::bayeux::Message;

/// The cookie the official CometD server binds sessions to.
pub(crate) const BROWSER_COOKIE: &str = "BAYEUX_BROWSER";

/// Serves Bayeux at each base path and everything below it (`/cometd/connect`, ...).
pub(crate) struct BayeuxRoute {
    pub engine: Arc<Engine>,
    pub bases: Vec<String>,
}

impl BayeuxRoute {
    /// Whether `path` is one of the base paths or below one.
    pub(crate) fn serves(&self, path: &str) -> bool {
        self.bases.iter().any(|b| {
            path.strip_prefix(b.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// Answers a Bayeux POST on behalf of `owner` (the authenticated user, if any).
    pub(crate) async fn answer(
        &self,
        req: &Request<Bytes>,
        faults: &ActiveFaults,
        owner: Option<&str>,
    ) -> Response<Bytes> {
        if req.method() != Method::POST {
            return text_reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "Bayeux long-polling takes POST",
            );
        }
        let batch = match Message::parse_batch(req.body()) {
            Ok(b) => b,
            Err(e) => {
                return text_reply(
                    StatusCode::BAD_REQUEST,
                    format!("invalid Bayeux message batch: {e}"),
                )
            }
        };
        let policy = Policy {
            advice_none: faults.advice_none,
            deny: faults.deny.clone(),
        };
        let reply = self
            .engine
            .handle_batch(batch, cookie(req.headers(), BROWSER_COOKIE), owner, &policy)
            .await;
        let mut r = json_reply(StatusCode::OK, Message::encode_batch(&reply.messages));
        if let Some(b) = reply.set_browser {
            add_header(
                &mut r,
                SET_COOKIE,
                &format!("{BROWSER_COOKIE}={b}; Path=/; HttpOnly"),
            );
        }
        r
    }
}

impl Route for BayeuxRoute {
    fn handle<'a>(
        &'a self,
        req: &'a Request<Bytes>,
        faults: &'a ActiveFaults,
    ) -> BoxFuture<'a, Option<Response<Bytes>>> {
        if !self.serves(req.uri().path()) {
            return futures::future::ready(None).boxed();
        }
        async move { Some(self.answer(req, faults, None).await) }.boxed()
    }
}
